"""Running one verb: connect, run it in trio, report failures the way kubectl does.

* An error from the server: ``Error from server (NotFound): pods "x" not found``.
* No server reachable: one line naming the address(es) tried and where they came from,
  and ``start a cluster with: raftsman up``.
* A bad argument or manifest: ``error: ...``.

Each is one line on stderr and exit status 1; ``--verbose`` adds the traceback. A verb
that reports several per-object errors itself (``apply`` of many documents) returns
False and exits 1 after the others were done.
"""

from __future__ import annotations

import sys
import traceback
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, NoReturn, TypeVar

import click

from actors.client import ApiClient, ApiError, Unreachable, open_api_client
from proto import rpc
from proto.k8s import kinds
from proto.k8s.codec import DecodeError

from .config import ConfigError, Target, resolve

TIMEOUT = 15.0
T = TypeVar("T")


class UsageProblem(Exception):
    """A request that makes no sense before asking the server (``error: ...``)."""


@dataclass(frozen=True, kw_only=True)
class Options:
    server: str | None
    cluster: str | None
    verbose: bool
    dir: str | None = None

    @classmethod
    def of(
        cls, *, server: str | None, cluster: str | None, verbose: bool, dir_: str | None
    ) -> Options:
        return cls(server=server, cluster=cluster, verbose=verbose, dir=dir_)


def server_error(exc: rpc.RpcError) -> str:
    reason = exc.reason if isinstance(exc, ApiError) else type(exc).__name__
    return f"Error from server ({reason}): {exc.message}"


def _fail(message: str, verbose: bool) -> NoReturn:
    if verbose:
        traceback.print_exc()
    click.echo(message, err=True)
    sys.exit(1)


def _unwrapped(fn: Callable[..., T], *args: Any) -> T:
    """``fn(*args)``, re-raising a lone exception from trio's exception groups as itself."""
    try:
        return fn(*args)
    except BaseExceptionGroup as group:
        leaf: BaseException = group
        while isinstance(leaf, BaseExceptionGroup) and len(leaf.exceptions) == 1:
            leaf = leaf.exceptions[0]
        if leaf is group:
            raise
        raise leaf from None


def run(options: Options, verb: Callable[[ApiClient], Awaitable[bool | None]]) -> None:
    """Run ``verb`` with a client of the cluster's API server; exit 1 on failure."""
    target: Target | None = None
    try:
        target = resolve(server=options.server, name=options.cluster, dir_=options.dir)

        async def main() -> bool | None:
            assert target is not None
            async with open_api_client(target.addresses, timeout=TIMEOUT) as api:
                return await verb(api)

        ok = _unwrapped(rpc.run, main)
    except Unreachable as exc:
        assert target is not None
        _fail(
            f"error: cannot reach the API server at {', '.join(exc.addresses)} "
            f"(from {target.source}); start a cluster with: raftsman up",
            options.verbose,
        )
    except ApiError as exc:
        _fail(server_error(exc), options.verbose)
    except (ConfigError, UsageProblem, kinds.UnknownKind) as exc:
        _fail(f"error: {exc}", options.verbose)
    except DecodeError as exc:
        _fail(f"error: {exc}", options.verbose)
    if ok is False:
        sys.exit(1)


def common_options(fn: Callable[..., None]) -> Callable[..., None]:
    """``--server``, ``--name`` (cluster), ``--dir`` and ``--verbose``; the verb passes
    them on as :class:`Options` (``Options.of(**kw)``)."""
    fn = click.option(
        "--dir",
        "dir_",
        default=None,
        metavar="DIR",
        help="Cluster directory whose DIR/config to use (as `raftsman up --dir`).",
    )(fn)

    fn = click.option(
        "--server",
        "-s",
        default=None,
        metavar="HOST:PORT",
        help="API server address(es) [default: $RAFTSMAN_SERVER, else the cluster's config].",
    )(fn)
    fn = click.option(
        "--name",
        "cluster",
        default=None,
        metavar="CLUSTER",
        help="Cluster whose ~/.raftsman/CLUSTER/config to use [$RAFTSMAN_CLUSTER, else local].",
    )(fn)
    return click.option("--verbose", "-v", is_flag=True, help="Show tracebacks.")(fn)
