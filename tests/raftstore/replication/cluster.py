"""Real-process raft members for the durability tests.

Each member is ``python -m raftstore.replication.demo`` in its own session (process group),
talking a line protocol over its stdin/stdout. Members are stopped by pid/process group only.
"""

from __future__ import annotations

import json
import os
import select
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[3]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class MemberDied(Exception):
    pass


class Member:
    def __init__(self, address: str, peers: list[str], data_dir: Path, *extra: str) -> None:
        self.address = address
        self.peers = peers
        self.data_dir = data_dir
        self.extra = extra
        self.proc: subprocess.Popen[bytes] | None = None
        self._buf = b""
        self.stderr_path = data_dir.with_suffix(".stderr")

    def start(self, timeout: float = 20.0) -> None:
        self.spawn()
        self.wait_ready(timeout)

    def spawn(self) -> None:
        self._buf = b""
        err = open(self.stderr_path, "ab")  # noqa: SIM115 - handed to the child
        self.proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "raftstore.replication.demo",
                "--self",
                self.address,
                "--peers",
                ",".join(self.peers),
                "--data-dir",
                str(self.data_dir),
                *self.extra,
            ],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=err,
            cwd=REPO,
            env={**os.environ, "PYTHONPATH": str(REPO)},
            start_new_session=True,
        )
        err.close()

    def wait_ready(self, timeout: float = 20.0) -> None:
        line = self._readline(timeout)
        assert line.startswith("ready "), line

    def _readline(self, timeout: float) -> str:
        assert self.proc is not None and self.proc.stdout is not None
        fd = self.proc.stdout.fileno()
        deadline = time.monotonic() + timeout
        while b"\n" not in self._buf:
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError(f"{self.address}: no reply within {timeout} s")
            ready, _, _ = select.select([fd], [], [], left)
            if ready:
                chunk = os.read(fd, 65536)
                if not chunk:
                    raise MemberDied(f"{self.address} exited: {self.proc.poll()}")
                self._buf += chunk
        line, self._buf = self._buf.split(b"\n", 1)
        return line.decode()

    def send(self, line: str) -> None:
        assert self.proc is not None and self.proc.stdin is not None
        self.proc.stdin.write(line.encode() + b"\n")
        self.proc.stdin.flush()

    def request(self, line: str, timeout: float = 10.0) -> str:
        self.send(line)
        return self._readline(timeout)

    def propose(self, payload: bytes, timeout: float = 3.0) -> str:
        return self.request(f"propose {payload.hex()} {timeout}", timeout + 5)

    def items(self) -> list[bytes]:
        reply = self.request("items")
        assert reply.startswith("items"), reply
        body = reply[len("items ") :]
        return [bytes.fromhex(h) for h in body.split(",") if h]

    def status(self) -> dict[str, Any]:
        reply = self.request("status")
        assert reply.startswith("status "), reply
        return dict(json.loads(reply[len("status ") :]))

    @property
    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def kill(self) -> None:
        """SIGKILL the member's process group (by its pid), then reap it."""
        if self.proc is None:
            return
        if self.proc.poll() is None:
            try:
                os.killpg(self.proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        self.proc.wait(timeout=10)
        for stream in (self.proc.stdin, self.proc.stdout):
            if stream is not None:
                try:
                    stream.close()
                except OSError:
                    pass
        self.proc = None


class Cluster:
    def __init__(self, root: Path, size: int = 3, extra: tuple[str, ...] = ()) -> None:
        self.addresses = [f"127.0.0.1:{free_port()}" for _ in range(size)]
        self.members = [
            Member(a, self.addresses, root / f"m{i}", *extra) for i, a in enumerate(self.addresses)
        ]

    def start(self) -> None:
        for m in self.members:
            m.spawn()
        for m in self.members:
            m.wait_ready()

    def kill_all(self) -> None:
        for m in self.members:
            m.kill()

    def leader(self, timeout: float = 15.0) -> Member:
        """Poll until the live members agree on one live leader."""
        deadline = time.monotonic() + timeout
        while True:
            live = [m for m in self.members if m.alive]
            leaders = {m.status()["leader_id"] for m in live}
            if len(leaders) == 1:
                (lid,) = leaders
                for m in live:
                    if m.address == lid and m.status()["is_leader"]:
                        return m
            if time.monotonic() > deadline:
                raise TimeoutError(f"no agreed leader among {[m.address for m in live]}")
            time.sleep(0.02)

    def propose_until_ok(self, payload: bytes, timeout: float = 20.0) -> Member:
        """Propose through whichever member is leader until one attempt is acknowledged.
        Only use with payloads whose duplicates the caller tolerates."""
        deadline = time.monotonic() + timeout
        while True:
            for m in self.members:
                if m.alive and m.propose(payload, timeout=1.0).startswith("ok"):
                    return m
            if time.monotonic() > deadline:
                raise TimeoutError(f"{payload!r} not acknowledged within {timeout} s")
            time.sleep(0.05)

    def wait_converged(self, marker: bytes, timeout: float = 20.0) -> list[list[bytes]]:
        """Poll until every live member applied ``marker``; return their lists."""
        deadline = time.monotonic() + timeout
        while True:
            lists = [m.items() for m in self.members if m.alive]
            if all(marker in items for items in lists):
                return lists
            if time.monotonic() > deadline:
                raise TimeoutError(f"{marker!r} not applied everywhere within {timeout} s")
            time.sleep(0.02)
