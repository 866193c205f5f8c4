"""``python -m raftstore.replication.bench``: latency/throughput of 3 in-process members on
loopback for several ``RaftConfig`` variants. Prints a table; not a test.

For each variant: sequential proposals on the leader and on a follower (median and p99
latency), then ``--concurrency`` tasks proposing on the leader for ``--seconds`` (writes/s).
"""

from __future__ import annotations

import argparse
import dataclasses
import socket
import statistics
import tempfile
import time
from contextlib import AsyncExitStack

import trio

from raftstore.replication import RaftConfig, RaftNode, open_raft_node
from raftstore.replication.listsm import ListStateMachine

VARIANTS: dict[str, RaftConfig] = {
    "defaults (ours)": RaftConfig(),
    "batch=True": RaftConfig(use_batch=True),
    "batch=True, heartbeat 20ms": RaftConfig(use_batch=True, append_entries_period=0.02),
    "tick 50ms": RaftConfig(tick_period=0.05),
    "tick 1ms": RaftConfig(tick_period=0.001),
    "heartbeat 100ms, elections 0.4-1.4s": RaftConfig(
        append_entries_period=0.1, election_timeout_min=0.4, election_timeout_max=1.4
    ),
    "fsync=True": RaftConfig(fsync=True),
    "pysyncobj defaults": RaftConfig(
        use_batch=True,
        tick_period=0.05,
        append_entries_period=0.1,
        election_timeout_min=0.4,
        election_timeout_max=1.4,
        connection_timeout=3.5,
    ),
}


def _address() -> str:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return f"127.0.0.1:{s.getsockname()[1]}"


async def _sequential(node: RaftNode, count: int) -> tuple[float, float]:
    samples = []
    for i in range(count):
        start = time.perf_counter()
        await node.propose(b"seq-%d" % i, timeout=10)
        samples.append(time.perf_counter() - start)
    samples.sort()
    return statistics.median(samples) * 1e3, samples[int(len(samples) * 0.99) - 1] * 1e3


async def _throughput(node: RaftNode, concurrency: int, seconds: float) -> float:
    done = 0
    deadline = trio.current_time() + seconds

    async def worker(w: int) -> None:
        nonlocal done
        i = 0
        while trio.current_time() < deadline:
            await node.propose(b"w%d-%d" % (w, i), timeout=10)
            done += 1
            i += 1

    start = time.perf_counter()
    async with trio.open_nursery() as nursery:
        for w in range(concurrency):
            nursery.start_soon(worker, w)
    return done / (time.perf_counter() - start)


async def _measure(name: str, config: RaftConfig, args: argparse.Namespace) -> None:
    addresses = [_address() for _ in range(3)]
    with tempfile.TemporaryDirectory() as root:
        async with AsyncExitStack() as stack:
            nodes = [
                await stack.enter_async_context(
                    open_raft_node(
                        self_address=a,
                        peers=addresses,
                        data_dir=f"{root}/{i}",
                        state_machine=ListStateMachine(),
                        config=config,
                    )
                )
                for i, a in enumerate(addresses)
            ]
            t0 = time.perf_counter()
            while not all(n.status().leader_id for n in nodes):  # noqa: ASYNC110
                await trio.sleep(0.005)
            elect = time.perf_counter() - t0
            lead = next(n for n in nodes if n.status().is_leader)
            follower = next(n for n in nodes if n is not lead)
            await follower.read_barrier(timeout=10)
            lp50, lp99 = await _sequential(lead, args.count)
            fp50, fp99 = await _sequential(follower, args.count)
            tput = await _throughput(lead, args.concurrency, args.seconds)
    print(
        f"| {name:38} | {elect * 1e3:7.0f} | {lp50:6.2f} | {lp99:6.2f} | {fp50:6.2f} "
        f"| {fp99:6.2f} | {tput:8.0f} |",
        flush=True,
    )


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--count", type=int, default=500)
    parser.add_argument("--concurrency", type=int, default=64)
    parser.add_argument("--seconds", type=float, default=3.0)
    parser.add_argument("--only", default="")
    args = parser.parse_args()
    print(
        "| variant                                | first leader ms | leader p50 ms | p99 "
        "| follower p50 ms | p99 | writes/s (64 concurrent) |"
    )
    print("|---|---|---|---|---|---|---|")
    for name, config in VARIANTS.items():
        if args.only and args.only not in name:
            continue
        await _measure(name, config, args)
    print("config defaults:", dataclasses.asdict(RaftConfig()))


if __name__ == "__main__":
    trio.run(main)
