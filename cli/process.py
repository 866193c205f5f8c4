"""What every long-running ``raftsman`` process shares: logging and signal handling."""

from __future__ import annotations

import logging
import signal
import sys
from collections.abc import Awaitable, Callable
from typing import Any

import trio

from proto import rpc


def setup_logging(component: str, *, verbose: bool = False) -> None:
    """One event per line on stderr: time, level, component, logger, message."""
    logging.basicConfig(
        level=logging.DEBUG if verbose else logging.INFO,
        stream=sys.stderr,
        format=f"%(asctime)s %(levelname)s component={component} logger=%(name)s %(message)s",
    )


def run_until_signalled(async_fn: Callable[..., Awaitable[Any]], *args: Any) -> None:
    """Run ``async_fn`` in trio (with gRPC) until it returns or SIGTERM/SIGINT arrives."""

    async def main() -> None:
        async with trio.open_nursery() as nursery:

            async def stop_on_signal() -> None:
                with trio.open_signal_receiver(signal.SIGTERM, signal.SIGINT) as signals:
                    async for signum in signals:
                        logging.getLogger(__name__).info(
                            "stopping on signal=%s", signal.Signals(signum).name
                        )
                        nursery.cancel_scope.cancel()
                        return

            nursery.start_soon(stop_on_signal)
            await async_fn(*args)
            nursery.cancel_scope.cancel()

    rpc.run(main)
