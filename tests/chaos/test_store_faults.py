"""Store faults on real clusters started by ``raftsman up``: the store heals and its
clients' history stays linearizable, with nothing acknowledged lost and no watch gap.

Each scenario runs the harness itself (:func:`chaos.experiment.run_experiment` or the
fault classes) against a fresh cluster under ``tmp_path`` and asserts on what it reports
and on what the cluster says afterwards.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import trio

from actors.client import Unreachable, open_api_client
from chaos.cluster import Pick, Selector
from chaos.experiment import parse_experiment, run_experiment
from chaos.faults import Kill, Partition
from chaos.invariants import store_invariants
from chaos.steady import StoresReady, StoreWritable, wait_steady
from chaos.workload import WorkloadConfig, run_workload
from cli.launcher import links
from proto.k8s import kinds
from tests.chaos.conftest import NO_CONTROL_PLANE, Launched, cli
from tests.support.processes import async_wait_for

pytestmark = pytest.mark.chaos

STORE_STEADY = ["stores-ready", "store-writable"]
WORKLOAD = {"clients": 4, "keys": 8}


def _explain(report: object, launched: Launched) -> str:
    return f"{report.to_text()}\n{launched.logs()}"  # type: ignore[attr-defined]


LEADER_KILL = """\
name: leader-kill
seed: 11
target: store:leader
fault: kill
count: 2
interval: 1.5
recovery_timeout: 30
steady_state: [stores-ready, store-writable]
workload: {clients: 4, keys: 8}
"""


async def test_store_leader_killed_during_concurrent_writes(
    launched: Launched, tmp_path: Path
) -> None:
    """Through the CLI, as a user runs it: progress lines, the report files, exit 0."""
    launched.up("--stores=3", "--apiservers=0", *NO_CONTROL_PLANE)
    spec = tmp_path / "leader-kill.yaml"
    spec.write_text(LEADER_KILL)
    report_path = tmp_path / "report.json"
    result = await trio.to_thread.run_sync(
        lambda: cli(
            "chaos",
            "run",
            str(spec),
            f"--dir={launched.dir}",
            f"--report={report_path}",
            check=False,
        )
    )
    assert result.returncode == 0, f"{result.stdout}\n{result.stderr}\n{launched.logs()}"
    assert "#1 kill -> store-" in result.stdout and "PASSED" in result.stdout
    report = json.loads(report_path.read_text())
    assert report["ok"] and report_path.with_suffix(".txt").exists()
    assert [(inv["name"], inv["ok"]) for inv in report["invariants"]] == [
        ("linearizable", True),
        ("no-lost-writes", True),
        ("watch-continuity", True),
    ]
    killed = [inj["processes"] for inj in report["injections"]]
    assert len(killed) == 2 and all(len(p) == 1 for p in killed)
    assert killed[0] != killed[1], "each injection kills the leader of that moment"
    assert all(inj["time_to_recover"] > 0 for inj in report["injections"])
    assert report["workload_counts"]["acked"] >= 5, report["workload"]
    restarted = {
        row["name"]: row["restarts"] for row in launched.status() if row["role"] == "store"
    }
    assert sum(restarted.values()) == 2, restarted


def test_chaos_run_without_a_cluster_says_so(tmp_path: Path) -> None:
    spec = tmp_path / "x.yaml"
    spec.write_text(LEADER_KILL)
    result = cli("chaos", "run", str(spec), f"--dir={tmp_path / 'none'}", check=False)
    assert result.returncode == 2
    assert "no cluster at" in result.stderr


async def test_whole_store_killed_at_once_and_restarted_three_times(launched: Launched) -> None:
    launched.up("--stores=3", "--apiservers=0", *NO_CONTROL_PLANE)
    experiment = parse_experiment(
        {
            "name": "kill-all",
            "seed": 12,
            "target": "store:all",
            "fault": "kill",
            "count": 3,
            "interval": 0.5,
            "recovery_timeout": 30,
            # Every member back (not just a majority) before the next kill hits all three.
            "steady_state": [*STORE_STEADY, "processes-up"],
            "workload": WORKLOAD,
        }
    )
    report = await run_experiment(launched.cluster, experiment)
    assert report.ok, _explain(report, launched)
    assert all(len(inj.processes) == 3 for inj in report.injections)
    assert len(report.injections) == 3
    assert report.workload_counts["acked"] >= 5, report.workload
    rows = [row for row in launched.status() if row["role"] == "store"]
    assert [row["restarts"] for row in rows] == [3, 3, 3]
    assert all(row["state"] == "up" for row in rows)


async def test_client_fails_over_when_its_apiserver_is_killed(launched: Launched) -> None:
    launched.up("--stores=1", "--apiservers=2", "--no-restart", *NO_CONTROL_PLANE)
    cluster = launched.cluster
    addresses = cluster.api_endpoints()
    async with open_api_client(addresses, timeout=5.0) as api:
        await api.list("Namespace")
        used = api.address
        [victim] = [p for p in cluster.processes("apiserver") if p.endpoint("api") == used]
        await Kill().start(cluster, [victim])
        await cluster.wait_gone([victim], timeout=10)

        # Reads move on by themselves.
        namespaces = await api.list("Namespace")
        assert {ns.metadata.name for ns in namespaces.items} >= {"default"}
        assert api.address != used

        # Writes are sent once: at most one attempt fails as Unreachable (nothing was
        # sent), the next goes to the API server that is left.
        config_map = kinds.by_kind("ConfigMap").new()
        config_map.metadata.name = "after-failover"  # type: ignore[attr-defined]
        config_map.metadata.namespace = "default"  # type: ignore[attr-defined]
        config_map.data["k"] = "v"  # type: ignore[attr-defined]
        try:
            created = await api.create(config_map)
        except Unreachable:
            created = await api.create(config_map)
        assert created.metadata.resource_version  # type: ignore[attr-defined]
        got = await api.get("ConfigMap", "after-failover", namespace="default")
        assert got.data["k"] == "v"  # type: ignore[attr-defined]
    states = {row["name"]: row["state"] for row in launched.status()}
    assert states[victim.name] in ("down", "failed")


async def test_partitioned_store_member_is_cut_off_and_heals(launched: Launched) -> None:
    launched.up("--stores=3", "--apiservers=1", "--fault-links", *NO_CONTROL_PLANE)
    cluster = launched.cluster
    steady = [StoresReady(), StoreWritable()]
    stop = trio.Event()
    async with trio.open_nursery() as nursery:
        result = await nursery.start(
            run_workload, cluster.store_endpoints(), WorkloadConfig(seed=13), stop
        )
        try:
            # 1. The leader loses every link (refused): the other two elect a new one.
            [old] = await cluster.select(Selector(role="store", pick=Pick.LEADER))
            heal = await Partition(mode="refuse").start(cluster, [old])
            assert heal is not None
            assert [r.process for r in links.RuleSet.read(cluster.dir).rules] == [old.name]

            async def new_leader() -> bool:
                leader = await cluster.store_leader()
                return leader is not None and leader.name != old.name

            await async_wait_for(new_leader, timeout=20, message="a leader among the others")
            ok, failing = await wait_steady(cluster, [StoreWritable()], timeout=20)
            assert ok, failing
            await heal()
            ok, failing = await wait_steady(cluster, steady, timeout=30)
            assert ok, failing

            # 2. A follower's links swallow everything (blackhole) for a while.
            [follower] = await cluster.select(Selector(role="store", pick=Pick.FOLLOWER))
            heal = await Partition(mode="blackhole").start(cluster, [follower])
            assert heal is not None
            ok, failing = await wait_steady(cluster, [StoreWritable()], timeout=20)
            assert ok, failing
            await heal()
            ok, failing = await wait_steady(cluster, steady, timeout=30)
            assert ok, failing
            assert links.RuleSet.read(cluster.dir).rules == ()
        finally:
            stop.set()
    verdicts = await store_invariants(cluster.store_endpoints(), result)
    assert all(v.ok for v in verdicts), "\n".join(v.line() for v in verdicts)
    assert len(result.acked) >= 5, result.summary()

    # The API server reaches the store through the proxies, and still does (a rejoining
    # member may still cost one election, 1-2 s, before it answers ready).
    async def serving() -> bool:
        return [p.name for p in await cluster.serving_apiservers()] == ["apiserver-0"]

    await async_wait_for(serving, timeout=15, message="the API server to serve again")
