"""The kinds table and the manifest codec: round trips, errors with field paths, fuzzing."""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from proto.k8s import apps_pb2, codec, core_pb2, kinds

# -- Manifests shaped like Kubernetes' documentation examples ----------------------------

DEPLOYMENT = """
apiVersion: apps/v1
kind: Deployment
metadata:
  name: nginx-deployment
  labels:
    app: nginx
spec:
  replicas: 3
  selector:
    matchLabels:
      app: nginx
  strategy:
    type: RollingUpdate
    rollingUpdate:
      maxUnavailable: 25%
      maxSurge: 1
  template:
    metadata:
      labels:
        app: nginx
    spec:
      containers:
      - name: nginx
        image: nginx:1.14.2
        ports:
        - containerPort: 80
        resources:
          requests:
            cpu: 250m
            memory: 64Mi
          limits:
            cpu: "0.5"
            memory: 128Mi
      affinity:
        nodeAffinity:
          requiredDuringSchedulingIgnoredDuringExecution:
            nodeSelectorTerms:
            - matchExpressions:
              - key: cores
                operator: Gt
                values: ["3"]
        podAntiAffinity:
          preferredDuringSchedulingIgnoredDuringExecution:
          - weight: 100
            podAffinityTerm:
              labelSelector:
                matchExpressions:
                - key: app
                  operator: In
                  values: [nginx]
              topologyKey: kubernetes.io/hostname
      tolerations:
      - key: example-key
        operator: Exists
        effect: NoExecute
        tolerationSeconds: 3600
"""

SERVICE = """
apiVersion: v1
kind: Service
metadata:
  name: nginx-service
spec:
  selector:
    app.kubernetes.io/name: proxy
  ports:
  - name: name-of-service-port
    protocol: TCP
    port: 80
    targetPort: http-web-svc
"""

JOB = """
apiVersion: batch/v1
kind: Job
metadata:
  name: pi
spec:
  backoffLimit: 4
  completions: 0
  template:
    spec:
      containers:
      - name: pi
        image: perl:5.34.0
        command: ["perl", "-Mbignum=bpi", "-wle", "print bpi(2000)"]
      restartPolicy: Never
"""

CONFIGMAP_POD = """
apiVersion: v1
kind: ConfigMap
metadata:
  name: game-demo
data:
  player_initial_lives: "3"
  ui_properties_file_name: user-interface.properties
  game.properties: |
    enemy.types=aliens,monsters
    player.maximum-lives=5
---
apiVersion: v1
kind: Pod
metadata:
  name: configmap-demo-pod
spec:
  containers:
  - name: demo
    image: alpine
    command: ["sleep", "3600"]
    env:
    - name: PLAYER_INITIAL_LIVES
      valueFrom:
        configMapKeyRef:
          name: game-demo
          key: player_initial_lives
    - name: MY_POD_IP
      valueFrom:
        fieldRef:
          fieldPath: status.podIP
    volumeMounts:
    - name: config
      mountPath: /config
      readOnly: true
  volumes:
  - name: config
    configMap:
      name: game-demo
      items:
      - key: game.properties
        path: game.properties
  - name: cache
    emptyDir: {}
"""

PROBES_POD = """
apiVersion: v1
kind: Pod
metadata:
  labels:
    test: liveness
  name: liveness-http
spec:
  containers:
  - name: liveness
    image: registry.k8s.io/e2e-test-images/agnhost:2.40
    args:
    - liveness
    livenessProbe:
      httpGet:
        path: /healthz
        port: 8080
        httpHeaders:
        - name: Custom-Header
          value: Awesome
      initialDelaySeconds: 3
      periodSeconds: 3
    readinessProbe:
      tcpSocket:
        port: 8080
      initialDelaySeconds: 15
      periodSeconds: 10
    startupProbe:
      exec:
        command: [cat, /tmp/healthy]
      failureThreshold: 30
      periodSeconds: 10
    lifecycle:
      preStop:
        exec:
          command: ["/bin/sh", "-c", "nginx -s quit"]
status:
  phase: Running
  podIP: 10.1.2.3
  startTime: "2024-05-01T10:00:00Z"
  containerStatuses:
  - name: liveness
    ready: true
    restartCount: 2
    state:
      running:
        startedAt: "2024-05-01T10:00:05Z"
    lastState:
      terminated:
        exitCode: 137
        reason: Error
        containerID: containerd://abc
"""

SECRET = """
apiVersion: v1
kind: Secret
metadata:
  name: secret-basic-auth
type: kubernetes.io/basic-auth
stringData:
  username: admin
  password: t0p-Secret
data:
  token: aGVsbG8gd29ybGQ=
"""

CRONJOB_LEASE_NODE = """
apiVersion: batch/v1
kind: CronJob
metadata:
  name: hello
spec:
  schedule: "* * * * *"
  jobTemplate:
    spec:
      template:
        spec:
          containers:
          - name: hello
            image: busybox:1.28
          restartPolicy: OnFailure
---
apiVersion: coordination.k8s.io/v1
kind: Lease
metadata:
  name: scheduler
  namespace: kube-system
spec:
  holderIdentity: node-1
  leaseDurationSeconds: 15
  renewTime: "2024-05-01T10:00:00.123456Z"
---
apiVersion: v1
kind: Node
metadata:
  name: node-1
spec:
  podCIDR: 10.0.0.0/24
  taints:
  - key: dedicated
    value: gpu
    effect: NoSchedule
status:
  capacity:
    cpu: "4"
    memory: 8Gi
  addresses:
  - type: InternalIP
    address: 127.0.0.2
  nodeInfo:
    machineID: abc
    kubeletVersion: v0.1.0
---
apiVersion: apps/v1
kind: DaemonSet
metadata:
  name: agent
spec:
  selector:
    matchLabels: {app: agent}
  updateStrategy:
    type: RollingUpdate
    rollingUpdate: {maxUnavailable: 1}
  template:
    metadata:
      labels: {app: agent}
    spec:
      containers:
      - {name: agent, image: agent}
"""

EXAMPLES = [DEPLOYMENT, SERVICE, JOB, CONFIGMAP_POD, PROBES_POD, SECRET, CRONJOB_LEASE_NODE]


def _canonical(doc):
    """What a manifest means, for comparing: the values kubectl would show back."""
    if isinstance(doc, dict):
        return {k: _canonical(v) for k, v in doc.items()}
    if isinstance(doc, list):
        return [_canonical(v) for v in doc]
    return doc


@pytest.mark.parametrize("text", EXAMPLES)
def test_documentation_examples_round_trip(text):
    for doc in codec.load_manifests(text):
        decoded = codec.decode(doc, strict=True)
        assert decoded.warnings == ()
        encoded = codec.encode(decoded.obj)
        # completions: 0 is an explicit zero of an `optional` field and survives the trip
        assert encoded == doc
        assert list(encoded)[:2] == ["apiVersion", "kind"]
        again = codec.decode(encoded, strict=True).obj
        assert again == decoded.obj


def test_values_take_kubernetes_shapes():
    deployment = codec.decode(codec.load_manifests(DEPLOYMENT)[0]).obj
    assert isinstance(deployment, apps_pb2.Deployment)
    assert deployment.spec.replicas == 3
    rolling = deployment.spec.strategy.rolling_update
    assert rolling.max_unavailable.str_val == "25%"
    assert rolling.max_surge.int_val == 1
    container = deployment.spec.template.spec.containers[0]
    assert container.resources.limits["cpu"] == "0.5"
    service = codec.decode(codec.load_manifests(SERVICE)[0]).obj
    assert service.spec.ports[0].target_port.str_val == "http-web-svc"
    secret = codec.decode(codec.load_manifests(SECRET)[0]).obj
    assert secret.data["token"] == b"hello world"
    assert secret.string_data["username"] == "admin"
    pod = codec.decode(codec.load_manifests(PROBES_POD)[0]).obj
    assert pod.status.pod_ip == "10.1.2.3"
    assert pod.status.start_time.seconds > 0
    assert pod.status.container_statuses[0].last_state.terminated.exit_code == 137


def test_yaml_numbers_become_quantity_strings():
    doc = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "p"},
        "spec": {
            "containers": [
                {
                    "name": "c",
                    "image": "i",
                    "resources": {"limits": {"cpu": 0.5, "memory": 1, "x": 2.0}},
                }
            ]
        },
    }
    pod = codec.decode(doc).obj
    assert dict(pod.spec.containers[0].resources.limits) == {"cpu": "0.5", "memory": "1", "x": "2"}


def test_int64_fields_encode_as_numbers_and_unquoted_timestamps_stay_strings():
    [doc] = codec.load_manifests(
        "apiVersion: v1\nkind: Pod\nmetadata:\n  name: p\n  creationTimestamp: 2024-01-01T00:00:00Z\n"
        "spec:\n  terminationGracePeriodSeconds: 30\n  activeDeadlineSeconds: 9000000000\n"
    )
    assert doc["metadata"]["creationTimestamp"] == "2024-01-01T00:00:00Z"
    out = codec.encode(codec.decode(doc).obj)
    assert out["spec"] == {"terminationGracePeriodSeconds": 30, "activeDeadlineSeconds": 9000000000}
    assert out["metadata"]["creationTimestamp"] == "2024-01-01T00:00:00Z"


def test_empty_submessages_survive_and_optional_zero_is_kept():
    pod = core_pb2.Pod(api_version="v1", kind="Pod")
    pod.spec.volumes.add(name="v").empty_dir.SetInParent()
    pod.spec.termination_grace_period_seconds = 0
    assert codec.encode(pod)["spec"] == {
        "volumes": [{"name": "v", "emptyDir": {}}],
        "terminationGracePeriodSeconds": 0,
    }


def test_load_manifests_skips_empty_documents_and_expands_lists():
    text = '---\n---\napiVersion: v1\nkind: List\nitems:\n- {apiVersion: v1, kind: ConfigMap, metadata: {name: a}}\n- {apiVersion: v1, kind: ConfigMap, metadata: {name: b}}\n---\n{"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "n"}}\n'
    docs = codec.load_manifests(text)
    assert [d["metadata"]["name"] for d in docs] == ["a", "b", "n"]


def test_load_manifests_errors():
    with pytest.raises(codec.DecodeError, match="invalid YAML"):
        codec.load_manifests("a: [")
    with pytest.raises(codec.DecodeError) as e:
        codec.load_manifests("- 1\n---\nkind: x\n")
    assert e.value.path == "[0]"


# -- Bad manifests: exact field paths -----------------------------------------------------

BASE_POD = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p"}}


@pytest.mark.parametrize(
    ("doc", "expected"),
    [
        (
            {"apiVersion": "apps/v1", "kind": "Deployment", "spec": {"replicas": "three"}},
            [("spec.replicas", 'expected an integer, got "three"')],
        ),
        (
            {
                "apiVersion": "apps/v1",
                "kind": "Deployment",
                "spec": {"replicas": 1.5, "paused": "yes"},
            },
            [
                ("spec.replicas", "expected an integer, got 1.5"),
                ("spec.paused", 'expected a boolean, got "yes"'),
            ],
        ),
        (
            {
                **BASE_POD,
                "spec": {"containers": [{"name": "a", "ports": [{"containerPort": True}]}, 7]},
            },
            [
                ("spec.containers[0].ports[0].containerPort", "expected an integer, got true"),
                ("spec.containers[1]", "expected an object, got 7"),
            ],
        ),
        (
            {**BASE_POD, "spec": {"containers": {"name": "a"}}},
            [("spec.containers", "expected an array, got an object")],
        ),
        (
            {**BASE_POD, "metadata": {"labels": {"a": 1}}},
            [("metadata.labels[a]", "expected a string, got 1")],
        ),
        ({**BASE_POD, "metadata": "p"}, [("metadata", 'expected an object, got "p"')]),
        (
            {**BASE_POD, "spec": {"priority": 2**40}},
            [("spec.priority", "1099511627776 is out of range [-2147483648, 2147483647]")],
        ),
        (
            {"apiVersion": "v1", "kind": "Secret", "data": {"k": "not base64!"}},
            [("data[k]", 'illegal base64 data: "not base64!"')],
        ),
        (
            {
                "apiVersion": "v1",
                "kind": "Service",
                "spec": {"ports": [{"port": 80, "targetPort": True}]},
            },
            [("spec.ports[0].targetPort", "expected an integer or a string, got true")],
        ),
        (
            {**BASE_POD, "status": {"startTime": "yesterday"}},
            [("status.startTime", 'expected an RFC 3339 time, got "yesterday"')],
        ),
        ({"kind": "Pod"}, [("apiVersion", "required")]),
        ({"apiVersion": "v1", "kind": 3}, [("kind", "expected a string, got 3")]),
        (
            {"apiVersion": "apps/v1", "kind": "Deploymnt"},
            [("kind", 'unknown kind "Deploymnt" in apiVersion apps/v1; did you mean Deployment?')],
        ),
        (
            {"apiVersion": "extensions/v1beta1", "kind": "Deployment"},
            [("apiVersion", "kind Deployment is served as apps/v1, not extensions/v1beta1")],
        ),
    ],
)
def test_bad_manifests(doc, expected):
    with pytest.raises(codec.DecodeError) as e:
        codec.decode(doc)
    assert [(i.path, i.message) for i in e.value.issues] == expected
    assert e.value.path == expected[0][0]


def test_not_an_object():
    with pytest.raises(codec.DecodeError, match="expected an object, got an array"):
        codec.decode([])


def test_unknown_fields_warn_or_fail_when_strict():
    doc = {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "d"},
        "spec": {
            "template": {"spec": {"containers": [{"name": "c", "imagePullPolcy": "Always"}]}},
            "replica": 3,
        },
    }
    decoded = codec.decode(doc)
    assert [str(w) for w in decoded.warnings] == [
        "spec.template.spec.containers[0].imagePullPolcy: unknown field",
        "spec.replica: unknown field",
    ]
    assert decoded.obj.spec.template.spec.containers[0].name == "c"
    with pytest.raises(codec.DecodeError) as e:
        codec.decode(doc, strict=True)
    assert [i.path for i in e.value.issues] == [
        "spec.template.spec.containers[0].imagePullPolcy",
        "spec.replica",
    ]


def test_null_means_unset():
    pod = codec.decode({**BASE_POD, "spec": {"nodeName": None, "containers": None}}).obj
    assert not pod.spec.node_name and not pod.spec.containers


def test_decode_into_a_part():
    template = core_pb2.PodTemplateSpec()
    warnings = codec.decode_into(
        {"spec": {"hostname": "h", "bogus": 1}}, template, path="spec.template"
    )
    assert template.spec.hostname == "h"
    assert [str(w) for w in warnings] == ["spec.template.spec.bogus: unknown field"]


# -- The kinds table -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "kind"),
    [
        ("po", "Pod"),
        ("pods", "Pod"),
        ("Pod", "Pod"),
        ("POD", "Pod"),
        ("deploy", "Deployment"),
        ("deployments.apps", "Deployment"),
        ("Deployment.apps", "Deployment"),
        ("rs", "ReplicaSet"),
        ("svc", "Service"),
        ("ep", "Endpoints"),
        ("no", "Node"),
        ("ns", "Namespace"),
        ("cm", "ConfigMap"),
        ("ev", "Event"),
        ("ds", "DaemonSet"),
        ("cj", "CronJob"),
        ("jobs.batch", "Job"),
        ("lease", "Lease"),
        ("leases.coordination.k8s.io", "Lease"),
        ("pods.core", "Pod"),
        ("secret", "Secret"),
    ],
)
def test_lookup(name, kind):
    assert kinds.lookup(name).kind == kind


def test_lookup_unknown_lists_close_matches():
    with pytest.raises(kinds.UnknownKind) as e:
        kinds.lookup("deploymnets")
    assert e.value.suggestions[0] == "deployments"
    assert str(e.value).startswith('unknown kind "deploymnets"; did you mean deployments')
    with pytest.raises(kinds.UnknownKind):
        kinds.lookup("pods.apps")


def test_table_is_consistent():
    assert len({k.kind for k in kinds.KINDS}) == len(kinds.KINDS)
    for info in kinds.KINDS:
        fields = info.message.DESCRIPTOR.fields_by_name
        assert [fields[n].number for n in ("api_version", "kind", "metadata")] == [1, 2, 3]
        assert ("spec" in fields) == info.has_spec
        assert ("status" in fields) == info.has_status
        assert info.group == info.api_version.rpartition("/")[0]
        assert kinds.by_resource(info.resource) is info
        assert kinds.by_message(info.message) is info
        assert kinds.by_api_version_kind(info.api_version, info.kind) is info
        obj = info.new()
        assert codec.encode(obj) == {"apiVersion": info.api_version, "kind": info.kind}


# -- Fuzzing ----------------------------------------------------------------------------------

_scalars = st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=8)
_json = st.recursive(
    _scalars,
    lambda children: (
        st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=8), children, max_size=4)
    ),
    max_leaves=20,
)
_FIELD_NAMES = st.sampled_from(
    [
        "metadata",
        "spec",
        "status",
        "data",
        "stringData",
        "name",
        "labels",
        "containers",
        "ports",
        "containerPort",
        "image",
        "replicas",
        "selector",
        "matchLabels",
        "template",
        "targetPort",
        "resources",
        "limits",
        "volumes",
        "emptyDir",
        "startTime",
        "strategy",
        "rollingUpdate",
        "maxSurge",
        "subsets",
        "addresses",
        "tolerations",
        "affinity",
        "schedule",
        "jobTemplate",
    ]
)
_shaped = st.recursive(
    _scalars,
    lambda children: (
        st.lists(children, max_size=3) | st.dictionaries(_FIELD_NAMES, children, max_size=5)
    ),
    max_leaves=30,
)
_kind = st.sampled_from([(k.api_version, k.kind) for k in kinds.KINDS])


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    _kind,
    st.dictionaries(_FIELD_NAMES | st.text(max_size=5), _shaped | _json, max_size=5),
    st.booleans(),
)
def test_decode_never_raises_anything_but_decode_error(kind, body, strict):
    doc = {**body, "apiVersion": kind[0], "kind": kind[1]}
    try:
        decoded = codec.decode(doc, strict=strict)
    except codec.DecodeError as e:
        assert e.issues
        return
    again = codec.decode(codec.encode(decoded.obj), strict=True).obj
    assert again == decoded.obj


@settings(max_examples=100, deadline=None)
@given(_json)
def test_decode_of_arbitrary_json(doc):
    try:
        codec.decode(doc)
    except codec.DecodeError:
        pass
