"""``python -m raftstore.replication.demo``: one raft member with a ``ListStateMachine``,
driven by a line protocol on stdin/stdout. Used by the durability tests (real processes,
SIGKILL) and handy for poking at a cluster by hand.

Requests, one per line; one reply line each, in order::

    propose <hex> <timeout>   -> ok <result> | err <ErrorClass> <message>
    barrier <timeout>         -> ok | err ...
    items                     -> items <hex>,<hex>,...      (the applied list)
    status                    -> status <json>
    add <host:port> <timeout> / remove <host:port> <timeout> -> ok | err ...
    snapshot                  -> ok

The first line written is ``ready <self address>`` once the member listens.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import logging
import os
import sys

import trio

from raftstore.replication import RaftConfig, ReplicationError, open_raft_node
from raftstore.replication.listsm import ListStateMachine
from raftstore.replication.node import RaftNode


def _reply(line: str) -> None:
    sys.stdout.write(line + "\n")
    sys.stdout.flush()


async def _handle(node: RaftNode, sm: ListStateMachine, words: list[str]) -> str:
    cmd, args = words[0], words[1:]
    try:
        if cmd == "propose":
            result = await node.propose(bytes.fromhex(args[0]), timeout=float(args[1]))
            return f"ok {result}"
        if cmd == "barrier":
            await node.read_barrier(timeout=float(args[0]))
            return "ok"
        if cmd == "items":
            return "items " + ",".join(item.hex() for item in sm.items())
        if cmd == "status":
            return "status " + json.dumps(dataclasses.asdict(node.status()))
        if cmd == "add":
            await node.add_member(args[0], timeout=float(args[1]))
            return "ok"
        if cmd == "remove":
            await node.remove_member(args[0], timeout=float(args[1]))
            return "ok"
        if cmd == "snapshot":
            node.force_snapshot()
            return "ok"
    except ReplicationError as exc:
        return f"err {type(exc).__name__} {exc}".replace("\n", " ")
    return f"err BadRequest {cmd!r}"


async def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m raftstore.replication.demo")
    parser.add_argument("--self", dest="self_address", required=True)
    parser.add_argument("--peers", default="", help="comma-separated host:port")
    parser.add_argument("--data-dir", required=True)
    parser.add_argument("--snapshot-every", type=int, default=RaftConfig().snapshot_every_entries)
    parser.add_argument("--fsync", action="store_true")
    opts = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr)
    config = RaftConfig(snapshot_every_entries=opts.snapshot_every, fsync=opts.fsync)
    sm = ListStateMachine()
    peers = [p for p in opts.peers.split(",") if p]
    async with open_raft_node(
        self_address=opts.self_address,
        peers=peers,
        data_dir=opts.data_dir,
        state_machine=sm,
        config=config,
    ) as node:
        _reply(f"ready {node.self_id}")
        stdin = trio.lowlevel.FdStream(os.dup(sys.stdin.fileno()))
        buffer = b""
        while True:
            chunk = await stdin.receive_some(65536)
            if not chunk:
                return
            buffer += chunk
            while b"\n" in buffer:
                line, buffer = buffer.split(b"\n", 1)
                words = line.decode().split()
                if words:
                    _reply(await _handle(node, sm, words))


if __name__ == "__main__":
    trio.run(main)
