"""Experiment files: what they may say, and the error for each way they can be wrong.

Also loads every example under ``examples/chaos/`` so that none can rot.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from chaos.cluster import Pick, Selector
from chaos.experiment import ExperimentError, load_experiment, parse_experiment, parse_target
from chaos.faults import FaultError, Kill, Partition, Pause, parse_fault
from chaos.report import ExperimentReport, Injection
from chaos.steady import DeploymentAvailable, Leader, StoresReady, parse_check

pytestmark = pytest.mark.chaos

EXAMPLES = Path(__file__).resolve().parents[2] / "examples" / "chaos"


def minimal(**extra: Any) -> dict[str, Any]:
    return {"target": "store:leader", "fault": "kill", **extra}


def test_minimal_experiment_has_kubernetes_like_defaults() -> None:
    experiment = parse_experiment(minimal(), source="x.yaml")
    assert experiment.name == "x"
    assert experiment.count == 1 and experiment.duration is None
    assert experiment.steady_state == (StoresReady(),)
    assert experiment.workload is None and experiment.invariants == ()
    (action,) = experiment.actions
    assert action.target == Selector(role="store", pick=Pick.LEADER)
    assert action.fault == Kill()


def test_workload_brings_the_store_invariants_and_the_seed() -> None:
    experiment = parse_experiment(minimal(workload={"clients": 2, "keys": 4}, seed=9))
    assert experiment.invariants == ("linearizable", "no-lost-writes", "watch-continuity")
    assert experiment.workload is not None and experiment.workload.seed == 9


def test_targets_short_and_long_forms() -> None:
    assert parse_target("node-agent:node-1") == Selector(role="node-agent", name="node-1")
    assert parse_target("apiserver") == Selector(role="apiserver")
    assert parse_target({"role": "pod", "name": "default/web-*", "container": "c"}) == Selector(
        role="pod", name="default/web-*", container="c"
    )
    assert parse_target("store:all").pick is Pick.ALL


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ({"fault": "kill"}, "target is required"),
        ({"target": "store:leader"}, "fault is required"),
        (minimal(colour="red"), "unknown field.*colour"),
        (minimal(target="etcd:leader"), "role must be one of store, apiserver"),
        (minimal(target="apiserver:leader"), "pick 'leader' needs an elected role"),
        (minimal(target={"role": "store", "pick": "oldest"}), "pick must be one of any, all"),
        (minimal(target={"role": "pod"}), "a pod target needs name"),
        (minimal(fault="explode"), "fault kind must be one of kill, terminate, pause"),
        (minimal(fault={"kind": "pause", "duration": "long"}), "duration must be a number"),
        (minimal(fault={"kind": "pause", "length": 3}), "unknown field.*length"),
        (minimal(fault={"kind": "partition", "mode": "drop"}), "mode must be one of"),
        (minimal(count=-1), "count must be a whole number"),
        (minimal(interval="soon"), "interval must be a number"),
        (minimal(steady_state=["happy"]), "unknown check 'happy'"),
        (minimal(steady_state=[{"deployment": "web/"}]), "NAMESPACE/NAME"),
        (minimal(steady_state=[{"leader": "apiserver"}]), "leader: role must be"),
        (minimal(invariants=["linearizable"]), "needs a workload"),
        (minimal(invariants=["happiness"]), "unknown 'happiness'"),
        (minimal(workload={"clients": 0}), "clients and keys must be >= 1"),
        (minimal(workload={"threads": 3}), "workload:"),
        ({**minimal(), "actions": []}, "either actions or target"),
        ({"actions": [{"target": "store"}]}, r"actions\[0\]: needs exactly target and fault"),
    ],
)
def test_malformed_experiments_say_what_is_wrong(spec: dict[str, Any], message: str) -> None:
    with pytest.raises((ExperimentError, FaultError), match=message):
        parse_experiment(spec, source="bad.yaml")


def test_errors_name_the_file(tmp_path: Path) -> None:
    path = tmp_path / "broken.yaml"
    path.write_text("target: [unclosed\n")
    with pytest.raises(ExperimentError, match="broken.yaml: not valid YAML"):
        load_experiment(path)
    with pytest.raises(ExperimentError, match="cannot read"):
        load_experiment(tmp_path / "missing.yaml")
    path.write_text("- a list\n")
    with pytest.raises(ExperimentError, match="must be a YAML mapping"):
        load_experiment(path)


def test_faults_and_checks_from_their_short_forms() -> None:
    assert parse_fault("kill") == Kill()
    assert parse_fault({"kind": "pause", "duration": 2}) == Pause(duration=2)
    assert parse_fault({"kind": "partition", "mode": "blackhole"}) == Partition(mode="blackhole")
    assert parse_check({"leader": "scheduler"}) == Leader(role="scheduler")
    assert parse_check({"deployment": "web"}) == DeploymentAvailable(
        namespace="default", deployment="web"
    )
    assert Pause(duration=3).describe() == "pause for 3s"


@pytest.mark.parametrize("path", sorted(EXAMPLES.glob("*.yaml")), ids=lambda p: p.name)
def test_every_example_loads(path: Path) -> None:
    experiment = load_experiment(path)
    assert experiment.name == path.stem
    assert experiment.actions


def test_report_counts_recoveries_and_fails_on_any_unrecovered_fault() -> None:
    report = ExperimentReport(
        name="r", seed=1, cluster="/c", started="2026-01-01T00:00:00+00:00", steady_state=[]
    )
    for i, (at, back) in enumerate([(1.0, 1.5), (3.0, 4.0), (6.0, 6.25)]):
        report.injections.append(
            Injection(i, "kill", "store (leader)", injected_at=at, recovered_at=back)
        )
    stats = report.recovery_stats()["kill store (leader)"]
    assert (stats["count"], stats["min"], stats["median"], stats["max"]) == (3, 0.25, 0.5, 1.0)
    assert report.ok
    report.injections.append(Injection(3, "kill", "store (leader)", injected_at=8.0))
    assert not report.ok
    assert "NOT RECOVERED" in report.to_text()
    assert report.to_json()["injections"][3]["time_to_recover"] is None
