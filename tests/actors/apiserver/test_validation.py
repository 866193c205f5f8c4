"""Validation: a corpus of bad objects with the exact field paths Kubernetes reports."""

from __future__ import annotations

import copy

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from actors.apiserver.defaults import apply_defaults
from actors.apiserver.validation import (
    MAX_OBJECT_BYTES,
    ErrorType,
    FieldError,
    selector_matches,
    validate,
)
from proto.k8s import codec, kinds, meta_pb2


def _obj(doc):
    return codec.decode(doc, strict=True).obj


def _errors(doc, *, old=None, defaults=True):
    obj = _obj(doc)
    if defaults:
        obj = apply_defaults(obj)
    old_obj = None
    if old is not None:
        old_obj = apply_defaults(_obj(old)) if defaults else _obj(old)
    return [str(e) for e in validate(obj, old=old_obj)]


def _paths(doc, **kw):
    obj = apply_defaults(_obj(doc))
    return [e.path for e in validate(obj, **kw)]


POD = {
    "apiVersion": "v1",
    "kind": "Pod",
    "metadata": {"name": "web", "labels": {"app": "web"}},
    "spec": {
        "containers": [
            {
                "name": "web",
                "image": "nginx:1.25",
                "ports": [{"containerPort": 80, "name": "http"}],
                "resources": {
                    "requests": {"cpu": "250m", "memory": "64Mi"},
                    "limits": {"cpu": "0.5", "memory": "1G"},
                },
                "livenessProbe": {"httpGet": {"path": "/", "port": "http"}},
                "volumeMounts": [{"name": "data", "mountPath": "/data"}],
            }
        ],
        "volumes": [{"name": "data", "emptyDir": {}}],
    },
}

DEPLOYMENT = {
    "apiVersion": "apps/v1",
    "kind": "Deployment",
    "metadata": {"name": "web"},
    "spec": {
        "replicas": 3,
        "selector": {"matchLabels": {"app": "web"}},
        "template": {
            "metadata": {"labels": {"app": "web", "tier": "front"}},
            "spec": copy.deepcopy(POD["spec"]),
        },
    },
}

SERVICE = {
    "apiVersion": "v1",
    "kind": "Service",
    "metadata": {"name": "web"},
    "spec": {
        "selector": {"app": "web"},
        "ports": [{"name": "http", "port": 80, "targetPort": "http"}],
    },
}

JOB = {
    "apiVersion": "batch/v1",
    "kind": "Job",
    "metadata": {"name": "pi"},
    "spec": {
        "template": {
            "spec": {"containers": [{"name": "pi", "image": "perl"}], "restartPolicy": "Never"}
        }
    },
}


def _with(doc, path, value):
    """A deep copy of ``doc`` with ``value`` at ``path`` (dotted; ints index lists)."""
    out = copy.deepcopy(doc)
    target = out
    keys = path.split(".")
    for key in keys[:-1]:
        target = target[int(key)] if key.isdigit() else target[key]
    last = keys[-1]
    if value is _DELETE:
        del target[last]
    elif last.isdigit():
        target[int(last)] = value
    else:
        target[last] = value
    return out


_DELETE = object()


@pytest.mark.parametrize("doc", [POD, DEPLOYMENT, SERVICE, JOB])
def test_good_objects_have_no_errors(doc):
    assert _errors(doc) == []
    assert _errors(doc, defaults=False) == []


@pytest.mark.parametrize(
    ("doc", "expected"),
    [
        # names
        (_with(POD, "metadata.name", "Web_1"), ["metadata.name"]),
        (_with(POD, "metadata", {}), ["metadata.name"]),
        (_with(POD, "metadata", {"generateName": "web-"}), []),
        (_with(SERVICE, "metadata.name", "1web"), ["metadata.name"]),
        (
            _with(POD, "metadata.labels", {"bad key!": "x", "ok": "not ok!", "a/b/c": "x"}),
            ["metadata.labels", "metadata.labels", "metadata.labels"],
        ),
        (_with(POD, "metadata.annotations", {"example.com/": "x"}), ["metadata.annotations"]),
        (_with(POD, "metadata.namespace", "Prod"), ["metadata.namespace"]),
        # containers
        (_with(POD, "spec.containers", []), ["spec.containers"]),
        (_with(POD, "spec.containers.0.image", ""), ["spec.containers[0].image"]),
        (_with(POD, "spec.containers.0.name", "Web"), ["spec.containers[0].name"]),
        (
            _with(POD, "spec.containers.0.ports.0.containerPort", 0),
            ["spec.containers[0].ports[0].containerPort"],
        ),
        (
            _with(POD, "spec.containers.0.ports.0.containerPort", 65536),
            ["spec.containers[0].ports[0].containerPort"],
        ),
        (
            _with(POD, "spec.containers.0.ports.0.name", "http_port"),
            ["spec.containers[0].ports[0].name"],
        ),
        (
            _with(POD, "spec.containers.0.ports.0.protocol", "ICMP"),
            ["spec.containers[0].ports[0].protocol"],
        ),
        (
            _with(POD, "spec.containers.0.imagePullPolicy", "Sometimes"),
            ["spec.containers[0].imagePullPolicy"],
        ),
        (_with(POD, "spec.restartPolicy", "Sometimes"), ["spec.restartPolicy"]),
        (
            _with(POD, "spec.terminationGracePeriodSeconds", -1),
            ["spec.terminationGracePeriodSeconds"],
        ),
        (_with(POD, "spec.activeDeadlineSeconds", 0), ["spec.activeDeadlineSeconds"]),
        # quantities
        (
            _with(POD, "spec.containers.0.resources.requests.cpu", "1x"),
            ["spec.containers[0].resources.requests[cpu]"],
        ),
        (
            _with(POD, "spec.containers.0.resources.limits.memory", "-1Gi"),
            ["spec.containers[0].resources.limits[memory]"],
        ),
        (
            _with(POD, "spec.containers.0.resources.requests.cpu", "2"),
            ["spec.containers[0].resources.requests"],
        ),
        # probes
        (
            _with(POD, "spec.containers.0.livenessProbe", {"periodSeconds": 3}),
            ["spec.containers[0].livenessProbe"],
        ),
        (
            _with(POD, "spec.containers.0.livenessProbe.successThreshold", 2),
            ["spec.containers[0].livenessProbe.successThreshold"],
        ),
        (
            _with(POD, "spec.containers.0.livenessProbe.httpGet.port", 0),
            ["spec.containers[0].livenessProbe.httpGet.port"],
        ),
        (
            _with(POD, "spec.containers.0.livenessProbe.httpGet.scheme", "FTP"),
            ["spec.containers[0].livenessProbe.httpGet.scheme"],
        ),
        (
            _with(POD, "spec.containers.0.livenessProbe.tcpSocket", {"port": 80}),
            ["spec.containers[0].livenessProbe"],
        ),
        (
            _with(POD, "spec.containers.0.livenessProbe.failureThreshold", -3),
            ["spec.containers[0].livenessProbe.failureThreshold"],
        ),
        # volumes
        (
            _with(POD, "spec.containers.0.volumeMounts.0.name", "missing"),
            ["spec.containers[0].volumeMounts[0].name"],
        ),
        (_with(POD, "spec.volumes", [{"name": "data"}]), ["spec.volumes[0]"]),
        (
            _with(
                POD, "spec.volumes", [{"name": "data", "emptyDir": {}, "hostPath": {"path": "/x"}}]
            ),
            ["spec.volumes[0]"],
        ),
        (
            _with(
                POD,
                "spec.volumes",
                [{"name": "data", "emptyDir": {}}, {"name": "data", "emptyDir": {}}],
            ),
            ["spec.volumes[1].name"],
        ),
        (
            _with(
                POD,
                "spec.volumes",
                [
                    {
                        "name": "data",
                        "configMap": {
                            "name": "c",
                            "defaultMode": 1000,
                            "items": [{"key": "k", "path": "../x"}],
                        },
                    }
                ],
            ),
            ["spec.volumes[0].configMap.items[0].path", "spec.volumes[0].configMap.defaultMode"],
        ),
        (
            _with(POD, "spec.volumes", [{"name": "data", "emptyDir": {"sizeLimit": "lots"}}]),
            ["spec.volumes[0].emptyDir.sizeLimit"],
        ),
        # env
        (
            _with(POD, "spec.containers.0.env", [{"name": "1 BAD"}]),
            ["spec.containers[0].env[0].name"],
        ),
        (
            _with(
                POD,
                "spec.containers.0.env",
                [
                    {
                        "name": "A",
                        "value": "x",
                        "valueFrom": {"fieldRef": {"fieldPath": "status.podIP"}},
                    }
                ],
            ),
            ["spec.containers[0].env[0].valueFrom"],
        ),
        (
            _with(
                POD,
                "spec.containers.0.env",
                [{"name": "A", "valueFrom": {"secretKeyRef": {"name": "s"}}}],
            ),
            ["spec.containers[0].env[0].valueFrom.secretKeyRef.key"],
        ),
        # scheduling
        (
            _with(POD, "spec.tolerations", [{"key": "k", "operator": "Exists", "value": "v"}]),
            ["spec.tolerations[0].operator"],
        ),
        (
            _with(
                POD,
                "spec.tolerations",
                [{"key": "k", "effect": "NoSchedule", "tolerationSeconds": 5}],
            ),
            ["spec.tolerations[0].effect"],
        ),
        (_with(POD, "spec.tolerations", [{"value": "v"}]), ["spec.tolerations[0].operator"]),
        (
            _with(
                POD,
                "spec.affinity",
                {
                    "nodeAffinity": {
                        "requiredDuringSchedulingIgnoredDuringExecution": {
                            "nodeSelectorTerms": [
                                {
                                    "matchExpressions": [
                                        {"key": "cores", "operator": "Gt", "values": ["many"]},
                                        {"key": "zone", "operator": "In"},
                                        {"key": "x", "operator": "Near"},
                                    ]
                                }
                            ]
                        }
                    }
                },
            ),
            [
                "spec.affinity.nodeAffinity.requiredDuringSchedulingIgnoredDuringExecution.nodeSelectorTerms[0].matchExpressions[0].values[0]",
                "spec.affinity.nodeAffinity.requiredDuringSchedulingIgnoredDuringExecution.nodeSelectorTerms[0].matchExpressions[1].values",
                "spec.affinity.nodeAffinity.requiredDuringSchedulingIgnoredDuringExecution.nodeSelectorTerms[0].matchExpressions[2].operator",
            ],
        ),
        (
            _with(
                POD,
                "spec.affinity",
                {
                    "podAntiAffinity": {
                        "requiredDuringSchedulingIgnoredDuringExecution": [
                            {"labelSelector": {"matchLabels": {"app": "web"}}}
                        ],
                        "preferredDuringSchedulingIgnoredDuringExecution": [
                            {"weight": 0, "podAffinityTerm": {"topologyKey": "zone"}}
                        ],
                    }
                },
            ),
            [
                "spec.affinity.podAntiAffinity.requiredDuringSchedulingIgnoredDuringExecution[0].topologyKey",
                "spec.affinity.podAntiAffinity.preferredDuringSchedulingIgnoredDuringExecution[0].weight",
            ],
        ),
        (_with(POD, "spec.nodeSelector", {"disk": "fast ssd"}), ["spec.nodeSelector"]),
        # workloads
        (_with(DEPLOYMENT, "spec.selector", _DELETE), ["spec.selector"]),
        (_with(DEPLOYMENT, "spec.selector", {}), ["spec.selector"]),
        (
            _with(DEPLOYMENT, "spec.selector.matchLabels.app", "api"),
            ["spec.template.metadata.labels"],
        ),
        (
            _with(
                DEPLOYMENT,
                "spec.selector",
                {"matchExpressions": [{"key": "app", "operator": "Exists", "values": ["x"]}]},
            ),
            ["spec.selector.matchExpressions[0].values"],
        ),
        (
            _with(
                DEPLOYMENT,
                "spec.selector",
                {"matchExpressions": [{"key": "app", "operator": "Has"}]},
            ),
            ["spec.selector.matchExpressions[0].operator", "spec.template.metadata.labels"],
        ),
        (_with(DEPLOYMENT, "spec.replicas", -1), ["spec.replicas"]),
        (
            _with(DEPLOYMENT, "spec.template.spec.restartPolicy", "Never"),
            ["spec.template.spec.restartPolicy"],
        ),
        (
            _with(
                DEPLOYMENT,
                "spec.template.spec.containers",
                [{"name": "a", "image": "x"}, {"name": "a", "image": "y"}],
            ),
            ["spec.template.spec.containers[1].name"],
        ),
        (
            _with(
                DEPLOYMENT,
                "spec.strategy",
                {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": 0, "maxUnavailable": "0%"}},
            ),
            ["spec.strategy.rollingUpdate.maxUnavailable"],
        ),
        (
            _with(
                DEPLOYMENT, "spec.strategy", {"type": "Recreate", "rollingUpdate": {"maxSurge": 1}}
            ),
            ["spec.strategy.rollingUpdate"],
        ),
        (
            _with(DEPLOYMENT, "spec.strategy", {"rollingUpdate": {"maxSurge": "lots"}}),
            ["spec.strategy.rollingUpdate.maxSurge"],
        ),
        (_with(DEPLOYMENT, "spec.progressDeadlineSeconds", 5), []),
        (
            _with(JOB, "spec.template.spec.restartPolicy", "Always"),
            ["spec.template.spec.restartPolicy"],
        ),
        (
            _with(JOB, "spec.template.spec.restartPolicy", _DELETE),
            ["spec.template.spec.restartPolicy"],
        ),
        (_with(JOB, "spec.backoffLimit", -1), ["spec.backoffLimit"]),
        (
            {
                "apiVersion": "batch/v1",
                "kind": "CronJob",
                "metadata": {"name": "c"},
                "spec": {"schedule": "every minute", "jobTemplate": {"spec": JOB["spec"]}},
            },
            ["spec.schedule"],
        ),
        (
            {
                "apiVersion": "batch/v1",
                "kind": "CronJob",
                "metadata": {"name": "c"},
                "spec": {
                    "schedule": "*/5 * * * 1-5",
                    "concurrencyPolicy": "Sometimes",
                    "jobTemplate": {"spec": JOB["spec"]},
                },
            },
            ["spec.concurrencyPolicy"],
        ),
        (
            {
                "apiVersion": "batch/v1",
                "kind": "CronJob",
                "metadata": {"name": "c"},
                "spec": {"schedule": "61 * * * *", "jobTemplate": {"spec": JOB["spec"]}},
            },
            ["spec.schedule"],
        ),
        (
            {
                "apiVersion": "batch/v1",
                "kind": "CronJob",
                "metadata": {"name": "c"},
                "spec": {
                    "schedule": "0 9 * * MON-FRI",
                    "timeZone": "Mars/Olympus",
                    "jobTemplate": {"spec": JOB["spec"]},
                },
            },
            ["spec.timeZone"],
        ),
        (
            {
                "apiVersion": "batch/v1",
                "kind": "CronJob",
                "metadata": {"name": "c"},
                "spec": {
                    "schedule": "0 9 * * MON-FRI",
                    "timeZone": "Europe/Paris",
                    "jobTemplate": {"spec": JOB["spec"]},
                },
            },
            [],
        ),
        (
            {
                "apiVersion": "apps/v1",
                "kind": "DaemonSet",
                "metadata": {"name": "d"},
                "spec": {
                    "selector": {"matchLabels": {"a": "b"}},
                    "template": {"metadata": {"labels": {"a": "c"}}, "spec": POD["spec"]},
                    "updateStrategy": {"type": "Sometimes"},
                },
            },
            ["spec.template.metadata.labels", "spec.updateStrategy.type"],
        ),
        # services
        (_with(SERVICE, "spec.ports", []), ["spec.ports"]),
        (_with(SERVICE, "spec.ports.0.port", 0), ["spec.ports[0].port"]),
        (_with(SERVICE, "spec.ports.0.targetPort", 70000), ["spec.ports[0].targetPort"]),
        (_with(SERVICE, "spec.ports.0.targetPort", "not_a_name"), ["spec.ports[0].targetPort"]),
        (_with(SERVICE, "spec.ports.0.nodePort", 30080), ["spec.ports[0].nodePort"]),
        (
            _with(_with(SERVICE, "spec.type", "NodePort"), "spec.ports.0.nodePort", 80),
            ["spec.ports[0].nodePort"],
        ),
        (
            _with(SERVICE, "spec.ports", [{"port": 80}, {"port": 81}]),
            ["spec.ports[0].name", "spec.ports[1].name"],
        ),
        (
            _with(SERVICE, "spec.ports", [{"name": "a", "port": 80}, {"name": "a", "port": 80}]),
            ["spec.ports[1].name", "spec.ports[1]"],
        ),
        (_with(SERVICE, "spec.type", "Magic"), ["spec.type"]),
        (_with(SERVICE, "spec.clusterIP", "10.0.0.300"), ["spec.clusterIP"]),
        (_with(SERVICE, "spec.sessionAffinity", "Sticky"), ["spec.sessionAffinity"]),
        # data kinds
        (
            {
                "apiVersion": "v1",
                "kind": "ConfigMap",
                "metadata": {"name": "c"},
                "data": {"bad key": "x", "ok": "y"},
                "binaryData": {"ok": "eA=="},
            },
            ["data[bad key]", "binaryData[ok]"],
        ),
        (
            {
                "apiVersion": "v1",
                "kind": "Secret",
                "metadata": {"name": "s"},
                "type": "kubernetes.io/tls",
                "data": {"tls.crt": "eA=="},
            },
            ["data[tls.key]"],
        ),
        ({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "a.b"}}, ["metadata.name"]),
        (
            {
                "apiVersion": "v1",
                "kind": "Node",
                "metadata": {"name": "n", "namespace": "default"},
                "spec": {"taints": [{"key": "k", "effect": "Sometimes"}], "podCIDR": "nope"},
            },
            ["metadata.namespace", "spec.taints[0].effect", "spec.podCIDR"],
        ),
        (
            {
                "apiVersion": "v1",
                "kind": "Endpoints",
                "metadata": {"name": "e"},
                "subsets": [{"addresses": [{"ip": "x"}], "ports": [{"port": 0}]}],
            },
            ["subsets[0].addresses[0].ip", "subsets[0].ports[0].port"],
        ),
        (
            {
                "apiVersion": "coordination.k8s.io/v1",
                "kind": "Lease",
                "metadata": {"name": "l"},
                "spec": {"leaseDurationSeconds": 0},
            },
            ["spec.leaseDurationSeconds"],
        ),
    ],
)
def test_bad_objects(doc, expected):
    assert _paths(doc) == expected


def test_messages_read_like_kubernetes():
    errors = _errors(_with(POD, "spec.containers.0.ports.0.containerPort", 70000))
    assert errors == [
        "spec.containers[0].ports[0].containerPort: must be between 1 and 65535, inclusive"
    ]
    errors = _errors(_with(POD, "spec.restartPolicy", "Sometimes"))
    assert errors == [
        'spec.restartPolicy: Unsupported value: "Sometimes": supported values: "Always", "OnFailure", "Never"'
    ]
    errors = _errors(
        _with(POD, "spec.containers", [{"name": "a", "image": "x"}, {"name": "a", "image": "y"}])
    )
    assert errors == ['spec.containers[1].name: Duplicate value: "a"']
    errors = _errors(_with(POD, "spec.containers.0.image", ""))
    assert errors == ["spec.containers[0].image: Required value"]
    errors = _errors(_with(DEPLOYMENT, "spec.selector.matchLabels.app", "api"))
    assert errors == ["spec.template.metadata.labels: `selector` does not match template `labels`"]
    errors = _errors(_with(POD, "spec.containers.0.resources.requests.cpu", "2"))
    assert errors == [
        "spec.containers[0].resources.requests: must be less than or equal to cpu limit of 0.5"
    ]
    errors = _errors(_with(POD, "spec.containers.0.volumeMounts.0.name", "missing"))
    assert errors == ['spec.containers[0].volumeMounts[0].name: Not found: "missing"']
    error = FieldError("spec.replicas", ErrorType.INVALID, "must be greater than or equal to 0", -1)
    assert error.message == "must be greater than or equal to 0"


def test_init_containers_share_the_name_space_and_may_not_probe():
    doc = _with(
        POD,
        "spec.initContainers",
        [{"name": "web", "image": "busybox", "readinessProbe": {"exec": {"command": ["true"]}}}],
    )
    assert _paths(doc) == ["spec.initContainers[0].readinessProbe", "spec.containers[0].name"]
    sidecar = _with(
        POD,
        "spec.initContainers",
        [
            {
                "name": "log",
                "image": "busybox",
                "restartPolicy": "Always",
                "readinessProbe": {"exec": {"command": ["true"]}},
            }
        ],
    )
    assert _paths(sidecar) == []


def test_oversize_objects():
    big = _with(POD, "metadata.annotations", {"note": "x" * (MAX_OBJECT_BYTES + 1)})
    errors = validate(apply_defaults(_obj(big)))
    assert [(e.path, e.type) for e in errors] == [
        ("", ErrorType.TOO_LONG),
        ("metadata.annotations", ErrorType.TOO_LONG),
    ]
    cm = {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": "c"},
        "data": {"a": "x" * (600 * 1024), "b": "y" * (600 * 1024)},
    }
    assert [e.path for e in validate(_obj(cm))] == ["", ""]


# -- Updates -----------------------------------------------------------------------------------


def test_pod_updates_may_change_only_images_deadline_and_add_tolerations():
    new = _with(POD, "spec.containers.0.image", "nginx:1.26")
    new = _with(new, "spec.activeDeadlineSeconds", 60)
    new = _with(
        new, "spec.tolerations", [{"key": "k", "operator": "Exists", "effect": "NoExecute"}]
    )
    assert _errors(new, old=POD) == []
    changed = _with(POD, "spec.containers.0.ports.0.containerPort", 81)
    assert [e.split(":")[0] for e in _errors(changed, old=POD)] == ["spec"]
    assert _paths(_with(POD, "metadata.name", "other"), old=apply_defaults(_obj(POD))) == [
        "metadata.name"
    ]
    longer = _with(POD, "spec.activeDeadlineSeconds", 120)
    shorter = _with(POD, "spec.activeDeadlineSeconds", 60)
    assert _paths(longer, old=apply_defaults(_obj(shorter))) == ["spec.activeDeadlineSeconds"]
    assert _paths(POD, old=apply_defaults(_obj(shorter))) == ["spec.activeDeadlineSeconds"]


def test_selector_is_immutable():
    new = _with(DEPLOYMENT, "spec.selector.matchLabels", {"app": "web", "tier": "front"})
    assert _paths(new, old=apply_defaults(_obj(DEPLOYMENT))) == ["spec.selector"]
    assert _paths(_with(DEPLOYMENT, "spec.replicas", 9), old=apply_defaults(_obj(DEPLOYMENT))) == []


def test_other_immutable_fields():
    with_ip = _with(SERVICE, "spec.clusterIP", "10.96.0.10")
    assert _paths(
        _with(SERVICE, "spec.clusterIP", "10.96.0.11"), old=apply_defaults(_obj(with_ip))
    ) == ["spec.clusterIP"]
    cm = {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": "c"},
        "data": {"a": "1"},
        "immutable": True,
    }
    assert _paths(_with(cm, "data", {"a": "2"}), old=apply_defaults(_obj(cm))) == ["data"]
    assert _paths(
        _with(JOB, "spec.template.spec.containers.0.image", "perl:2"), old=apply_defaults(_obj(JOB))
    ) == ["spec.template"]
    assert [str(e) for e in validate(_obj(cm), old=_obj(SERVICE))] == [
        "kind: may not change the kind of an object (was Service)"
    ]


def test_selector_matches():
    sel = meta_pb2.LabelSelector(match_labels={"app": "web"})
    sel.match_expressions.add(key="tier", operator="In", values=["front", "back"])
    sel.match_expressions.add(key="canary", operator="DoesNotExist")
    assert selector_matches(sel, {"app": "web", "tier": "front"})
    assert not selector_matches(sel, {"app": "web", "tier": "db"})
    assert not selector_matches(sel, {"app": "web", "tier": "front", "canary": "1"})
    assert selector_matches(meta_pb2.LabelSelector(), {})


# -- Fuzzing: decode + default + validate never raises -------------------------------------

_scalars = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**40), max_value=2**40)
    | st.text(max_size=6)
)
_names = st.sampled_from(
    [
        "name",
        "image",
        "containers",
        "initContainers",
        "ports",
        "containerPort",
        "port",
        "targetPort",
        "nodePort",
        "protocol",
        "labels",
        "matchLabels",
        "matchExpressions",
        "key",
        "operator",
        "values",
        "selector",
        "template",
        "metadata",
        "spec",
        "replicas",
        "restartPolicy",
        "resources",
        "requests",
        "limits",
        "cpu",
        "volumes",
        "emptyDir",
        "volumeMounts",
        "mountPath",
        "livenessProbe",
        "httpGet",
        "tolerations",
        "effect",
        "affinity",
        "nodeAffinity",
        "strategy",
        "rollingUpdate",
        "maxSurge",
        "maxUnavailable",
        "type",
        "data",
        "schedule",
        "jobTemplate",
        "taints",
        "subsets",
        "addresses",
        "ip",
    ]
)
_doc = st.recursive(
    _scalars,
    lambda children: st.lists(children, max_size=3) | st.dictionaries(_names, children, max_size=5),
    max_leaves=40,
)


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.sampled_from(kinds.KINDS), st.dictionaries(_names, _doc, max_size=5), st.booleans())
def test_decode_and_validate_never_raise(info, body, default):
    doc = {**body, "apiVersion": info.api_version, "kind": info.kind}
    try:
        obj = codec.decode(doc).obj
    except codec.DecodeError:
        return
    if default:
        obj = apply_defaults(obj)
    errors = validate(obj)
    assert all(isinstance(e, FieldError) and isinstance(str(e), str) for e in errors)
    validate(obj, old=obj)
