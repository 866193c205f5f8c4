"""kubectl's verbs for Raftsman: ``raftsman get/apply/create/delete``.

Small modules, one topic each: :mod:`.config` finds the API server, :mod:`.session` runs
a verb against it and turns failures into kubectl's one-line errors, :mod:`.resources`
parses ``KIND NAME`` / ``kind/name`` arguments, :mod:`.manifests` reads ``-f`` files,
:mod:`.printers` renders tables and ``-o`` formats, and one module per verb.
"""

from __future__ import annotations

import click


def commands() -> list[click.Command]:
    from .apply import apply, create
    from .delete import delete
    from .get import get

    return [apply, create, delete, get]
