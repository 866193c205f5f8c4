"""Defaults match Kubernetes', never override what the author wrote, and are idempotent."""

from __future__ import annotations

from actors.apiserver.defaults import apply_defaults
from proto.k8s import codec


def _defaulted(doc):
    obj = codec.decode(doc, strict=True).obj
    out = apply_defaults(obj)
    assert apply_defaults(out) == out, "idempotent"
    return codec.encode(out)


def _pod(spec, **extra):
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p"}, "spec": spec, **extra}


def test_pod_defaults():
    out = _defaulted(
        _pod(
            {
                "containers": [
                    {
                        "name": "a",
                        "image": "nginx",
                        "ports": [{"containerPort": 80}],
                        "livenessProbe": {"httpGet": {"port": 80}},
                        "env": [
                            {"name": "IP", "valueFrom": {"fieldRef": {"fieldPath": "status.podIP"}}}
                        ],
                    },
                    {"name": "b", "image": "nginx:1.25"},
                    {"name": "c", "image": "registry:5000/app:latest"},
                    {"name": "d", "image": "registry:5000/app"},
                    {"name": "e", "image": "app@sha256:abc"},
                ],
                "volumes": [
                    {"name": "cm", "configMap": {"name": "x"}},
                    {"name": "s", "secret": {"secretName": "y"}},
                ],
            }
        )
    )
    assert out["metadata"]["namespace"] == "default"
    spec = out["spec"]
    assert spec["restartPolicy"] == "Always"
    assert spec["terminationGracePeriodSeconds"] == 30
    assert spec["dnsPolicy"] == "ClusterFirst"
    assert spec["schedulerName"] == "default-scheduler"
    pulls = [c["imagePullPolicy"] for c in spec["containers"]]
    assert pulls == ["Always", "IfNotPresent", "Always", "Always", "IfNotPresent"]
    a = spec["containers"][0]
    assert a["ports"] == [{"containerPort": 80, "protocol": "TCP"}]
    assert a["livenessProbe"] == {
        "httpGet": {"path": "/", "port": 80, "scheme": "HTTP"},
        "timeoutSeconds": 1,
        "periodSeconds": 10,
        "successThreshold": 1,
        "failureThreshold": 3,
    }
    assert a["env"][0]["valueFrom"]["fieldRef"] == {"apiVersion": "v1", "fieldPath": "status.podIP"}
    assert a["terminationMessagePath"] == "/dev/termination-log"
    assert spec["volumes"][0]["configMap"]["defaultMode"] == 420
    assert spec["volumes"][1]["secret"]["defaultMode"] == 420
    assert spec["tolerations"] == [
        {
            "key": "node.kubernetes.io/not-ready",
            "operator": "Exists",
            "effect": "NoExecute",
            "tolerationSeconds": 300,
        },
        {
            "key": "node.kubernetes.io/unreachable",
            "operator": "Exists",
            "effect": "NoExecute",
            "tolerationSeconds": 300,
        },
    ]


def test_explicit_values_win():
    out = _defaulted(
        {
            **_pod(
                {
                    "containers": [{"name": "a", "image": "nginx", "imagePullPolicy": "Never"}],
                    "restartPolicy": "Never",
                    "terminationGracePeriodSeconds": 0,
                    "tolerations": [
                        {
                            "key": "node.kubernetes.io/unreachable",
                            "operator": "Exists",
                            "effect": "NoExecute",
                            "tolerationSeconds": 10,
                        }
                    ],
                }
            ),
            "metadata": {"name": "p", "namespace": "prod"},
        }
    )
    spec = out["spec"]
    assert out["metadata"]["namespace"] == "prod"
    assert spec["restartPolicy"] == "Never"
    assert spec["terminationGracePeriodSeconds"] == 0
    assert spec["containers"][0]["imagePullPolicy"] == "Never"
    assert [t["key"] for t in spec["tolerations"]] == [
        "node.kubernetes.io/unreachable",
        "node.kubernetes.io/not-ready",
    ]
    assert spec["tolerations"][0]["tolerationSeconds"] == 10


def test_tolerate_everything_needs_no_default_tolerations():
    out = _defaulted(
        _pod({"containers": [{"name": "a", "image": "i"}], "tolerations": [{"operator": "Exists"}]})
    )
    assert out["spec"]["tolerations"] == [{"operator": "Exists"}]


def test_apply_defaults_is_pure():
    obj = codec.decode(_pod({"containers": [{"name": "a", "image": "i"}]})).obj
    before = obj.SerializeToString(deterministic=True)
    apply_defaults(obj)
    assert obj.SerializeToString(deterministic=True) == before


def test_deployment_defaults():
    out = _defaulted(
        {
            "apiVersion": "apps/v1",
            "kind": "Deployment",
            "metadata": {"name": "d"},
            "spec": {
                "selector": {"matchLabels": {"app": "a"}},
                "template": {
                    "metadata": {"labels": {"app": "a"}},
                    "spec": {"containers": [{"name": "a", "image": "i:1"}]},
                },
            },
        }
    )
    spec = out["spec"]
    assert spec["replicas"] == 1
    assert spec["strategy"] == {
        "type": "RollingUpdate",
        "rollingUpdate": {"maxUnavailable": "25%", "maxSurge": "25%"},
    }
    assert spec["revisionHistoryLimit"] == 10
    assert spec["progressDeadlineSeconds"] == 600
    assert spec["template"]["spec"]["restartPolicy"] == "Always"
    assert "tolerations" not in spec["template"]["spec"], (
        "admission adds them to pods, not templates"
    )


def test_zero_replicas_and_recreate_are_kept():
    out = _defaulted(
        {
            "apiVersion": "apps/v1",
            "kind": "Deployment",
            "metadata": {"name": "d"},
            "spec": {"replicas": 0, "strategy": {"type": "Recreate"}},
        }
    )
    assert out["spec"]["replicas"] == 0
    assert out["spec"]["strategy"] == {"type": "Recreate"}


def test_replica_set_and_daemon_set_defaults():
    rs = _defaulted(
        {"apiVersion": "apps/v1", "kind": "ReplicaSet", "metadata": {"name": "r"}, "spec": {}}
    )
    assert rs["spec"]["replicas"] == 1
    ds = _defaulted(
        {"apiVersion": "apps/v1", "kind": "DaemonSet", "metadata": {"name": "r"}, "spec": {}}
    )
    assert ds["spec"]["updateStrategy"] == {
        "type": "RollingUpdate",
        "rollingUpdate": {"maxUnavailable": 1, "maxSurge": 0},
    }
    assert ds["spec"]["revisionHistoryLimit"] == 10


def test_service_defaults():
    out = _defaulted(
        {
            "apiVersion": "v1",
            "kind": "Service",
            "metadata": {"name": "s"},
            "spec": {
                "ports": [{"port": 80}, {"port": 443, "targetPort": "https", "name": "https"}]
            },
        }
    )
    spec = out["spec"]
    assert spec["type"] == "ClusterIP"
    assert spec["sessionAffinity"] == "None"
    assert spec["ports"][0] == {"protocol": "TCP", "port": 80, "targetPort": 80}
    assert spec["ports"][1]["targetPort"] == "https"
    node_port = _defaulted(
        {
            "apiVersion": "v1",
            "kind": "Service",
            "metadata": {"name": "s"},
            "spec": {"type": "NodePort"},
        }
    )
    assert node_port["spec"]["externalTrafficPolicy"] == "Cluster"


def test_job_and_cron_job_defaults():
    job = _defaulted(
        {"apiVersion": "batch/v1", "kind": "Job", "metadata": {"name": "j"}, "spec": {}}
    )
    spec = job["spec"]
    assert (spec["parallelism"], spec["completions"], spec["backoffLimit"]) == (1, 1, 6)
    assert spec["completionMode"] == "NonIndexed"
    assert spec["suspend"] is False
    assert "restartPolicy" not in spec["template"]["spec"], "a Job's author must choose"
    only_parallelism = _defaulted(
        {
            "apiVersion": "batch/v1",
            "kind": "Job",
            "metadata": {"name": "j"},
            "spec": {"parallelism": 5},
        }
    )
    assert "completions" not in only_parallelism["spec"]
    cj = _defaulted(
        {
            "apiVersion": "batch/v1",
            "kind": "CronJob",
            "metadata": {"name": "c"},
            "spec": {"schedule": "@daily"},
        }
    )
    spec = cj["spec"]
    assert spec["concurrencyPolicy"] == "Allow"
    assert spec["successfulJobsHistoryLimit"] == 3
    assert spec["failedJobsHistoryLimit"] == 1
    assert spec["jobTemplate"]["spec"]["backoffLimit"] == 6


def test_cluster_scoped_and_data_kinds():
    ns = _defaulted({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "n"}})
    assert "namespace" not in ns["metadata"]
    assert ns["metadata"]["labels"] == {"kubernetes.io/metadata.name": "n"}
    secret = _defaulted({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "s"}})
    assert secret["type"] == "Opaque"
    node = _defaulted(
        {
            "apiVersion": "v1",
            "kind": "Node",
            "metadata": {"name": "n"},
            "status": {"capacity": {"cpu": "2"}},
        }
    )
    assert node["status"]["allocatable"] == {"cpu": "2"}


def test_default_toleration_seconds_are_configurable():
    from actors.apiserver.defaults import DEFAULT_TOLERATION_SECONDS, configure_default_tolerations

    configure_default_tolerations(not_ready=3, unreachable=2)
    try:
        out = _defaulted(_pod({"containers": [{"name": "a", "image": "i"}]}))
        seconds = {t["key"]: t["tolerationSeconds"] for t in out["spec"]["tolerations"]}
        assert seconds == {"node.kubernetes.io/not-ready": 3, "node.kubernetes.io/unreachable": 2}
    finally:
        configure_default_tolerations(
            not_ready=DEFAULT_TOLERATION_SECONDS, unreachable=DEFAULT_TOLERATION_SECONDS
        )
