"""kubectl's verbs for Raftsman: ``raftsman get/apply/create/delete/label/annotate/patch/
scale/cordon/uncordon/taint/api-resources`` (and the node agent's ``logs/exec/top``).

Small modules, one topic each: :mod:`.config` finds the API server, :mod:`.session` runs
a verb against it and turns failures into kubectl's one-line errors, :mod:`.resources`
parses ``KIND NAME`` / ``kind/name`` arguments, :mod:`.manifests` reads ``-f`` files,
:mod:`.printers` renders tables and ``-o`` formats, and one module per verb.
"""

from __future__ import annotations

import click


def commands() -> list[click.Command]:
    from .apiresources import api_resources
    from .apply import apply, create, replace
    from .clusterinfo import cluster_info
    from .completion import completion
    from .delete import delete
    from .describe import describe
    from .drain import drain
    from .edit import edit
    from .events import events
    from .exec import exec_
    from .explain import explain
    from .get import get
    from .label import annotate, label
    from .logs import logs
    from .nodes import cordon, taint, uncordon
    from .patch import patch
    from .rollout import rollout
    from .scale import scale
    from .setcmd import set_
    from .top import top

    return [
        apply,
        create,
        delete,
        get,
        label,
        annotate,
        patch,
        scale,
        cordon,
        uncordon,
        taint,
        api_resources,
        rollout,
        set_,
        events,
        describe,
        drain,
        explain,
        completion,
        edit,
        replace,
        cluster_info,
        logs,
        exec_,
        top,
    ]
