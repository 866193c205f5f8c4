"""``raftsman patch KIND NAME -p PATCH``: a JSON merge patch (RFC 7386), in JSON or YAML.

kubectl's default is a strategic merge patch; Raftsman's API server applies merge
patches (``--type merge``), which is what ``--type strategic`` means here for every
field except lists, which a merge patch replaces as a whole (said in the help).
``--subresource status`` patches the status. Prints ``deployment.apps/web patched``,
or ``(no change)`` when the object came back at the same resourceVersion.
"""

from __future__ import annotations

import json
from typing import Any

import click
import yaml

from actors.client import ApiClient

from . import session, targets


def parse_patch(text: str) -> dict[str, Any]:
    try:
        doc = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise session.UsageProblem(f"unable to parse the patch {text!r}: {exc}") from None
    if not isinstance(doc, dict):
        raise session.UsageProblem(f"the patch must be a JSON object, not {json.dumps(doc)}")
    return doc


@click.command("patch")
@click.argument("args", nargs=-1)
@click.option("-p", "--patch", "patch_text", required=True, help="The patch, JSON or YAML.")
@click.option(
    "--type",
    "patch_type",
    type=click.Choice(["merge", "strategic"]),
    default="merge",
    show_default=True,
    help="merge: RFC 7386 (lists are replaced whole); strategic is accepted as merge.",
)
@click.option("--subresource", type=click.Choice(["status"]), default=None)
@click.option("-n", "--namespace", default="default", show_default=True)
@session.common_options
def patch(
    args: tuple[str, ...],
    patch_text: str,
    patch_type: str,
    subresource: str | None,
    namespace: str,
    server: str | None,
    cluster: str | None,
    verbose: bool,
    dir_: str | None,
) -> None:
    """Change fields of an object: raftsman patch deploy web -p '{"spec":{"replicas":3}}'."""
    options = session.Options.of(server=server, cluster=cluster, verbose=verbose, dir_=dir_)

    async def run(api: ApiClient) -> None:
        doc = parse_patch(patch_text)
        for target in await targets.resolve(api, args, namespace=namespace, verb="patch"):
            before = await api.get(target.info, target.name, namespace=target.namespace)
            after = await api.patch_merge(
                target.info,
                target.name,
                doc,
                namespace=target.namespace,
                status=subresource == "status",
            )
            same = before.metadata.resource_version == after.metadata.resource_version
            click.echo(f"{target.display} {'patched (no change)' if same else 'patched'}")

    session.run(options, run)
