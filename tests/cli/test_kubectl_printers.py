"""Golden tables and the pure parts of the CLI verbs (no server): fixed objects, fixed now."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from cli.kubectl import apply, config, printers, resources
from cli.kubectl.session import UsageProblem
from proto.k8s import codec, kinds

NOW = 1_700_000_000.0


def obj(doc: dict[str, Any], *, age: float = 300.0) -> Any:
    message = codec.decode(doc).obj
    message.metadata.creation_timestamp.FromSeconds(int(NOW - age))
    return message


def pod(name: str, ns: str = "default", **extra: Any) -> Any:
    doc = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name, "namespace": ns}}
    doc.update(extra)
    doc.setdefault(
        "spec", {"containers": [{"name": "a", "image": "x"}, {"name": "b", "image": "y"}]}
    )
    return obj(doc, age=extra.pop("age", 300.0) if "age" in extra else 300.0)


@pytest.mark.parametrize(
    ("seconds", "text"),
    [(-5, "<invalid>"), (-1, "0s"), (0, "0s"), (5, "5s"), (119, "119s"), (120, "2m"),
     (200, "3m20s"), (600, "10m"), (179 * 60, "179m"), (3 * 3600, "3h"), (3 * 3600 + 60, "3h1m"),
     (10 * 3600, "10h"), (2 * 86400, "2d"), (2 * 86400 + 3600, "2d1h"), (30 * 86400, "30d"),
     (3 * 365 * 86400, "3y"), (3 * 365 * 86400 + 86400, "3y1d"), (9 * 365 * 86400, "9y")],
)  # fmt: skip
def test_human_age_matches_kubectl(seconds: float, text: str) -> None:
    assert printers.human_age(seconds) == text


def test_pod_table() -> None:
    running = pod(
        "web-1",
        status={
            "phase": "Running",
            "podIP": "127.1.0.5",
            "containerStatuses": [
                {"name": "a", "ready": True, "restartCount": 2},
                {"name": "b", "ready": False, "restartCount": 1},
            ],
        },
    )
    running.spec.node_name = "node-1"
    pending = pod("db")
    info = kinds.by_kind("Pod")
    assert printers.table(info, [running, pending], now=NOW) == (
        "NAME    READY   STATUS    RESTARTS   AGE\n"
        "web-1   1/2     Running   3          5m\n"
        "db      0/2     Pending   0          5m"
    )
    assert printers.table(info, [running, pending], now=NOW, wide=True, all_namespaces=True) == (
        "NAMESPACE   NAME    READY   STATUS    RESTARTS   AGE   IP          NODE\n"
        "default     web-1   1/2     Running   3          5m    127.1.0.5   node-1\n"
        "default     db      0/2     Pending   0          5m    <none>      <none>"
    )


def test_deployment_service_node_namespace_configmap_tables() -> None:
    deploy = obj(
        {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "web"},
         "spec": {"replicas": 3}, "status": {"readyReplicas": 2, "updatedReplicas": 3,
                                             "availableReplicas": 2}},
        age=2 * 86400 + 7200,
    )  # fmt: skip
    assert printers.table(kinds.by_kind("Deployment"), [deploy], now=NOW) == (
        "NAME   READY   UP-TO-DATE   AVAILABLE   AGE\nweb    2/3     3            2           2d2h"
    )
    svc = obj(
        {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "web"},
         "spec": {"clusterIP": "127.96.0.10", "ports": [{"port": 80, "protocol": "TCP"},
                                                       {"port": 53, "protocol": "UDP"}]}},
        age=45,
    )  # fmt: skip
    assert printers.table(kinds.by_kind("Service"), [svc], now=NOW) == (
        "NAME   TYPE        CLUSTER-IP    EXTERNAL-IP   PORT(S)         AGE\n"
        "web    ClusterIP   127.96.0.10   <none>        80/TCP,53/UDP   45s"
    )
    node = obj(
        {"apiVersion": "v1", "kind": "Node",
         "metadata": {"name": "n1", "labels": {"node-role.kubernetes.io/control-plane": ""}},
         "status": {"conditions": [{"type": "Ready", "status": "True"}],
                    "nodeInfo": {"kubeletVersion": "v0.1.0"}}},
        age=3600,
    )  # fmt: skip
    assert printers.table(kinds.by_kind("Node"), [node], now=NOW) == (
        "NAME   STATUS   ROLES           AGE   VERSION\nn1     Ready    control-plane   60m   v0.1.0"
    )
    ns = obj({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "default"}}, age=9)
    assert printers.table(kinds.by_kind("Namespace"), [ns], now=NOW) == (
        "NAME      STATUS   AGE\ndefault   Active   9s"
    )
    cm = obj(
        {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c", "labels": {"a": "1"}},
         "data": {"x": "1", "y": "2"}},
        age=9,
    )  # fmt: skip
    assert printers.table(kinds.by_kind("ConfigMap"), [cm], now=NOW, show_labels=True) == (
        "NAME   DATA   AGE   LABELS\nc      2      9s    a=1"
    )


def test_generic_table_and_kind_prefix() -> None:
    lease = obj(
        {"apiVersion": "coordination.k8s.io/v1", "kind": "Lease", "metadata": {"name": "l"},
         "spec": {"holderIdentity": "node-1"}},
        age=1,
    )  # fmt: skip
    assert printers.table(kinds.by_kind("Lease"), [lease], now=NOW, with_kind=True) == (
        "NAME                          HOLDER   AGE\nlease.coordination.k8s.io/l   node-1   1s"
    )
    event = obj(
        {"apiVersion": "v1", "kind": "Event", "metadata": {"name": "e"}, "type": "Warning",
         "reason": "BackOff", "message": "restarting", "involvedObject": {"kind": "Pod", "name": "p"}},
        age=1,
    )  # fmt: skip
    assert printers.table(kinds.by_kind("Event"), [event], now=NOW) == (
        "LAST SEEN   TYPE      REASON    OBJECT   MESSAGE\n1s          Warning   BackOff   pod/p    restarting"
    )


def test_list_document_and_names() -> None:
    a, b = pod("a"), pod("b")
    listed = printers.as_document([a, b], single=False)
    assert listed["kind"] == "List" and [i["metadata"]["name"] for i in listed["items"]] == [
        "a",
        "b",
    ]
    assert printers.as_document([a], single=True)["kind"] == "Pod"
    assert printers.name_line(kinds.by_kind("Deployment"), a) == "deployment.apps/a"


def test_resource_arguments() -> None:
    [req] = resources.parse(["po", "a", "b"])
    assert req.info.kind == "Pod" and req.names == ("a", "b")
    mixed = resources.parse(["deploy/web", "svc/web", "deployment/api"])
    assert [(r.info.kind, r.names) for r in mixed] == [
        ("Deployment", ("web", "api")),
        ("Service", ("web",)),
    ]
    assert [r.info.kind for r in resources.parse(["all"])][:2] == ["Pod", "Service"]
    assert [r.info.kind for r in resources.parse(["cm,ns,no"])] == [
        "ConfigMap",
        "Namespace",
        "Node",
    ]
    with pytest.raises(UsageProblem, match='resource type "flurbs"'):
        resources.parse(["flurbs"])
    with pytest.raises(UsageProblem):
        resources.parse(["pods", "svc/web"])


def test_three_way_patch() -> None:
    live = {"spec": {"replicas": 3, "paused": False, "template": {"containers": [
        {"name": "a", "image": "x", "imagePullPolicy": "IfNotPresent"}]}}}  # fmt: skip
    want = {"spec": {"replicas": 3, "template": {"containers": [{"name": "a", "image": "x"}]}}}
    assert apply.three_way(want, want, live) == {}  # defaults on the live side are fine
    assert apply.three_way(None, want, live) == {}
    bumped = {"spec": {"replicas": 4, "template": want["spec"]["template"]}}
    assert apply.three_way(want, bumped, live) == {"spec": {"replicas": 4}}
    original = {"spec": {"replicas": 3, "paused": False, "template": want["spec"]["template"]}}
    assert apply.three_way(original, want, live) == {"spec": {"paused": None}}
    new_image = {"spec": {"replicas": 3, "template": {"containers": [{"name": "a", "image": "y"}]}}}
    assert apply.three_way(want, new_image, live) == {
        "spec": {"template": {"containers": [{"name": "a", "image": "y"}]}}
    }


def test_config_resolution(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.delenv(config.SERVER_ENV, raising=False)
    monkeypatch.delenv(config.CLUSTER_ENV, raising=False)
    assert config.resolve(server="a:1,b:2", name=None).addresses == ("a:1", "b:2")
    monkeypatch.setenv(config.SERVER_ENV, "c:3")
    assert config.resolve(server=None, name=None) == config.Target(("c:3",), "$RAFTSMAN_SERVER")
    monkeypatch.delenv(config.SERVER_ENV)
    with pytest.raises(config.ConfigError, match="raftsman up"):
        config.resolve(server=None, name=None)
    path = tmp_path / ".raftsman" / "dev" / "config"
    path.parent.mkdir(parents=True)
    path.write_text(
        "apiVersion: v1\nkind: Config\ncurrent-context: dev\n"
        "clusters:\n- name: dev\n  cluster:\n    server: 127.0.0.1:9\n"
        "    servers: [127.0.0.1:9, 127.0.0.1:10]\n"
        "contexts:\n- name: dev\n  context:\n    cluster: dev\n"
    )
    monkeypatch.setenv(config.CLUSTER_ENV, "dev")
    assert config.resolve(server=None, name=None).addresses == ("127.0.0.1:9", "127.0.0.1:10")
    assert config.resolve(server=None, name=None, dir_=str(path.parent)).source == str(path)


def _status(doc: dict) -> str:
    base = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p"},
            "spec": {"containers": [{"name": "a", "image": "i"}, {"name": "b", "image": "i"}]}}  # fmt: skip
    base.update(doc)
    return printers._pod_status(obj(base, age=1))


def test_pod_status_column_like_kubectl() -> None:
    crash = {"state": {"waiting": {"reason": "CrashLoopBackOff"}}}
    running = {"state": {"running": {}}, "ready": True}
    done = {"state": {"terminated": {"exitCode": 0, "reason": "Completed"}}}
    killed = {"state": {"terminated": {"exitCode": 137, "signal": 9}}}
    assert _status({"status": {"phase": "Running", "containerStatuses": [running, crash]}}) == (
        "CrashLoopBackOff"
    )
    assert (
        _status({"status": {"phase": "Succeeded", "containerStatuses": [done, done]}})
        == "Completed"
    )
    assert (
        _status({"status": {"phase": "Failed", "containerStatuses": [killed, done]}}) == "Signal:9"
    )
    assert _status({"status": {"phase": "Running", "containerStatuses": [done, running],
                               "conditions": [{"type": "Ready", "status": "False"}]}}) == "NotReady"  # fmt: skip
    init = {"spec": {"initContainers": [{"name": "i1", "image": "i"}, {"name": "i2", "image": "i"}],
                     "containers": [{"name": "a", "image": "i"}]},
            "status": {"phase": "Pending", "initContainerStatuses": [done, running]}}  # fmt: skip
    assert _status(init) == "Init:1/2"
    failed_init = {"status": {"phase": "Pending", "initContainerStatuses": [
        {"state": {"terminated": {"exitCode": 1, "reason": "Error"}}}]}}  # fmt: skip
    assert _status(failed_init) == "Init:Error"
    gone = {"metadata": {"name": "p", "deletionTimestamp": "2026-01-01T00:00:00Z"},
            "status": {"phase": "Running"}}  # fmt: skip
    assert _status(gone) == "Terminating"
    assert _status({"status": {}}) == "Pending"
