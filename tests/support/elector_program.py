"""A leader-elected process for tests: it proves, in a file, when it acts.

::

    python -m tests.support.elector_program --server 127.0.0.1:PORT --identity a --out a.txt

campaigns for a Lease through the API server at ``--server`` and, while leading, appends
``<identity> <monotonic> <wall> acting`` to ``--out`` every ``--interval`` seconds, flushed
at once. ``time.monotonic()`` is the system-wide CLOCK_MONOTONIC on Linux, so lines of two
processes on one machine can be ordered by it. Every observed change of leader is logged
(stderr) as ``leader=<identity>``. SIGTERM / SIGINT stop it cleanly (releasing the Lease).

The timings default to a 2 s lease, 1.5 s renew deadline and 0.25 s retry period.
"""

from __future__ import annotations

import argparse
import logging
import time
from collections.abc import Sequence

import trio

from actors.client import open_api_client
from actors.controller.leaderelection import LeaderElectionConfig, run_leader_elected
from cli.process import run_until_signalled, setup_logging

logger = logging.getLogger("elector_program")


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m tests.support.elector_program")
    parser.add_argument("--server", required=True, help="API server HOST:PORT")
    parser.add_argument("--identity", required=True, help="holderIdentity of this candidate")
    parser.add_argument("--out", required=True, help="file to append 'acting' lines to")
    parser.add_argument("--lock-name", default="elector-program", help="Lease name")
    parser.add_argument("--lease-duration", type=float, default=2.0)
    parser.add_argument("--renew-deadline", type=float, default=1.5)
    parser.add_argument("--retry-period", type=float, default=0.25)
    parser.add_argument("--interval", type=float, default=0.05, help="seconds between lines")
    return parser.parse_args(argv)


async def run(args: argparse.Namespace) -> None:
    config = LeaderElectionConfig(
        lock_name=args.lock_name,
        identity=args.identity,
        lease_duration=args.lease_duration,
        renew_deadline=args.renew_deadline,
        retry_period=args.retry_period,
    )

    async def leading() -> None:
        logger.info("leading")
        # Blocking on purpose: each step happens whole between two checkpoints, so once
        # leadership is lost the next checkpoint is cancelled before another step.
        with open(args.out, "a", encoding="utf-8") as out:  # noqa: ASYNC230
            while True:
                out.write(f"{args.identity} {time.monotonic():.6f} {time.time():.6f} acting\n")
                out.flush()
                await trio.sleep(args.interval)

    def on_new_leader(identity: str) -> None:
        logger.info("leader=%s", identity)

    async with open_api_client(args.server, timeout=args.renew_deadline) as api:
        await run_leader_elected(api, config, leading, on_new_leader=on_new_leader)


def main(argv: Sequence[str] | None = None) -> None:
    args = parse_args(argv)
    setup_logging(f"elector-{args.identity}")
    run_until_signalled(run, args)


if __name__ == "__main__":
    main()
