"""The argv a container runs: image defaults, the container's command and args, as Kubernetes does.

Kubernetes' table (``command`` replaces the image's ENTRYPOINT, ``args`` its CMD):

==============  ===========  ==================================
command         args         runs
==============  ===========  ==================================
not given       not given    image command + image args
given           not given    command (the image's args are dropped)
not given       given        image command + args
given           given        command + args
==============  ===========  ==================================

``$(VAR)`` references in the container's command and args are expanded against its
environment first (:mod:`node_agent.pods.expand`); the image's defaults are not expanded.
The image is only needed when the container leaves its command out: an image the catalog
does not know is fine with a command (it runs on the host), and an
:class:`~node_agent.pods.errors.ImageNotFoundError` without. Finally a bare command name
that the image aliases (``python`` in the ``python`` image) becomes the host path it names.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from node_agent.pods.errors import CommandError
from node_agent.pods.expand import expand_all
from node_agent.pods.images import Image, ImageCatalog

__all__ = ["container_argv", "resolve_argv"]


def container_argv(
    image: Image | None, command: Sequence[str], args: Sequence[str]
) -> tuple[str, ...]:
    """Combine ``image`` defaults with an (already expanded) ``command`` and ``args``.

    ``image`` may be None only when ``command`` is given. Raises :class:`CommandError` when
    the result is empty (Kubernetes: "no command specified").
    """
    if command:
        argv = [*command, *args]
    else:
        if image is None:
            raise ValueError("an image is needed when the container gives no command")
        argv = [*image.command, *(args if args else image.args)]
    if not argv or not argv[0]:
        raise CommandError("no command specified")
    if image is not None and "/" not in argv[0] and argv[0] in image.aliases:
        argv[0] = image.aliases[argv[0]]
    return tuple(argv)


def resolve_argv(
    catalog: ImageCatalog,
    image_reference: str,
    command: Sequence[str],
    args: Sequence[str],
    env: Mapping[str, str],
) -> tuple[str, ...]:
    """The argv of a container: expand ``command``/``args`` with ``env``, add image defaults.

    Raises :class:`~node_agent.pods.errors.ImageNotFoundError` for an unknown image when
    the container gives no command, :class:`CommandError` when there is nothing to run.
    """
    image = catalog.lookup(image_reference)
    if not command and image is None:
        catalog.resolve(image_reference)  # raises, saying how to add the image
    return container_argv(image, expand_all(command, env), expand_all(args, env))
