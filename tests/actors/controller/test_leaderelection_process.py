"""A frozen leader (SIGSTOP) is replaced, and once resumed (SIGCONT) it does not act.

Real processes: a raftstore member, a ``raftsman apiserver`` and two
``tests.support.elector_program`` candidates (lease 2 s, renew deadline 1.5 s, retry
0.25 s). Each candidate appends a timestamped line to its own file for every step it takes
while leading; the timestamps are CLOCK_MONOTONIC, which all processes on the machine
share, so the two files can be ordered against each other.
"""

from __future__ import annotations

import os
import signal
import sys
import time
from pathlib import Path

from cli.launcher.readiness import apiserver_ready
from tests.support import processes
from tests.support.ports import free_port
from tests.support.raftstore import raftstore_cluster

ROOT = Path(__file__).resolve().parents[3]
LEASE, RENEW, RETRY = 2.0, 1.5, 0.25


def acting_times(path: Path) -> list[float]:
    """Monotonic times of the complete 'acting' lines in ``path``."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return []
    times = []
    for line in text.splitlines(keepends=True):
        fields = line.split()
        if line.endswith("\n") and len(fields) == 4 and fields[3] == "acting":
            times.append(float(fields[1]))
    return times


def elector(server: str, identity: str, out: Path) -> list[str]:
    return [
        sys.executable,
        "-m",
        "tests.support.elector_program",
        f"--server={server}",
        f"--identity={identity}",
        f"--out={out}",
        f"--lease-duration={LEASE}",
        f"--renew-deadline={RENEW}",
        f"--retry-period={RETRY}",
    ]


def test_a_frozen_leader_is_replaced_and_stays_silent_after_it_resumes(tmp_path: Path) -> None:
    a_out, b_out = tmp_path / "a.txt", tmp_path / "b.txt"
    with raftstore_cluster(tmp_path / "store", size=1) as store:
        server = f"127.0.0.1:{free_port()}"
        argv = [sys.executable, "-m", "cli.main", "apiserver",
                f"--etcd-servers={','.join(store.endpoints)}", f"--listen={server}"]  # fmt: skip
        with processes.running(argv, log_path=tmp_path / "apiserver.log", cwd=ROOT) as api:
            processes.wait_for(
                lambda: apiserver_ready(server),
                timeout=30,
                message=lambda: f"the apiserver to serve:\n{api.log_text()}",
            )
            with (
                processes.running(
                    elector(server, "a", a_out), log_path=tmp_path / "a.log", cwd=ROOT
                ) as a,
                processes.running(
                    elector(server, "b", b_out), log_path=tmp_path / "b.log", cwd=ROOT
                ) as b,
            ):
                processes.wait_for(
                    lambda: acting_times(a_out) or acting_times(b_out),
                    timeout=20,
                    message=lambda: f"a leader:\n{a.log_text()}\n{b.log_text()}",
                )
                # Name the processes by role: whichever acts first is the leader.
                leader, standby = (a, b) if acting_times(a_out) else (b, a)
                leader_out, standby_out = (a_out, b_out) if leader is a else (b_out, a_out)
                leader_id = "a" if leader is a else "b"
                processes.wait_for(
                    lambda: f"leader={leader_id}" in standby.log_text(),
                    timeout=20,
                    message=lambda: f"the standby to see the leader:\n{standby.log_text()}",
                )
                assert acting_times(standby_out) == []

                os.killpg(leader.pid, signal.SIGSTOP)
                frozen_at = time.monotonic()
                try:
                    processes.wait_for(
                        lambda: acting_times(standby_out),
                        timeout=LEASE + 4 * RETRY + 2.0,
                        message=lambda: f"the standby to take over:\n{standby.log_text()}",
                    )
                    took_over = acting_times(standby_out)[0]
                    before_resume = acting_times(leader_out)
                finally:
                    os.killpg(leader.pid, signal.SIGCONT)
                resumed_at = time.monotonic()

                # The standby waited out the lease: it started after the leader's last
                # step, and not before a lease duration of silence could have passed.
                assert before_resume and max(before_resume) < took_over
                assert took_over - frozen_at >= LEASE - RETRY - RENEW / 2

                # The resumed leader notices it lost the lease and follows the new one...
                processes.wait_for(
                    lambda: (
                        "stopped leading" in leader.log_text()
                        and "leader=" + ("b" if leader is a else "a") in leader.log_text()
                    ),
                    timeout=10,
                    message=lambda: f"the old leader to stand down:\n{leader.log_text()}",
                )
                # ...and within a window of several retry periods it never acts again,
                # while the new leader keeps acting.
                window_end = time.monotonic() + 6 * RETRY
                while time.monotonic() < window_end:
                    assert acting_times(leader_out) == before_resume, (
                        f"resumed at {resumed_at:.3f}, acted again:\n{leader.log_text()}"
                    )
                    time.sleep(0.05)
                standby_steps = acting_times(standby_out)
                assert standby_steps[-1] > resumed_at and leader.alive
