"""Label and field selector parsing and matching (pure)."""

from __future__ import annotations

import pytest

from actors.apiserver.merge_patch import merge
from actors.apiserver.selectors import compile_filter, parse_labels
from proto import rpc
from proto.k8s import core_pb2

LABELS = {"app": "web", "tier": "front", "example.com/team": "a"}


@pytest.mark.parametrize(
    ("selector", "matches"),
    [
        ("", True),
        ("app=web", True),
        ("app==web", True),
        ("app!=web", False),
        ("missing!=x", True),
        ("app in (web, db)", True),
        ("app in (db)", False),
        ("app notin (db)", True),
        ("missing notin (db)", True),
        ("tier", True),
        ("!tier", False),
        ("!missing", True),
        ("example.com/team=a,app=web", True),
        ("app=web,tier=back", False),
        (" app = web , tier ", True),
        ("missing=", False),
    ],
)
def test_label_selector_matching(selector, matches):
    assert parse_labels(selector).matches(LABELS) is matches


@pytest.mark.parametrize(
    "selector",
    ["app in web", "app in (", "app in ()", "!", "a=b=c", "a b", "-x=y", "a=b,", "a=(b)"],
)
def test_bad_label_selectors(selector):
    with pytest.raises(rpc.InvalidArgument, match="invalid label selector"):
        parse_labels(selector)


def test_field_selectors_bind_to_the_kind():
    pod = core_pb2.Pod()
    pod.metadata.name = "web"
    pod.spec.node_name = "n1"
    pod.status.phase = "Running"
    descriptor = core_pb2.Pod.DESCRIPTOR
    assert compile_filter(descriptor, "", "spec.nodeName=n1,status.phase==Running").matches(pod)
    assert not compile_filter(descriptor, "", "metadata.name!=web").matches(pod)
    assert compile_filter(descriptor, "", "metadata.namespace=").matches(pod)
    for bad, message in [
        ("spec.bogus=1", "field label not supported: spec.bogus"),
        ("spec.containers=x", "not a scalar"),
        ("spec.nodeName", "needs =, == or !="),
        ("=x", "bad field"),
    ]:
        with pytest.raises(rpc.InvalidArgument, match=message):
            compile_filter(descriptor, "", bad)
    with pytest.raises(rpc.InvalidArgument, match="field label not supported"):
        compile_filter(core_pb2.ConfigMap.DESCRIPTOR, "", "spec.nodeName=n1")


@pytest.mark.parametrize(
    ("target", "patch", "result"),
    [  # RFC 7386, appendix A
        ({"a": "b"}, {"a": "c"}, {"a": "c"}),
        ({"a": "b"}, {"b": "c"}, {"a": "b", "b": "c"}),
        ({"a": "b"}, {"a": None}, {}),
        ({"a": "b", "b": "c"}, {"a": None}, {"b": "c"}),
        ({"a": ["b"]}, {"a": "c"}, {"a": "c"}),
        ({"a": "c"}, {"a": ["b"]}, {"a": ["b"]}),
        ({"a": {"b": "c"}}, {"a": {"b": "d", "c": None}}, {"a": {"b": "d"}}),
        ({"a": [{"b": "c"}]}, {"a": [1]}, {"a": [1]}),
        (["a", "b"], ["c", "d"], ["c", "d"]),
        ({"a": "b"}, ["c"], ["c"]),
        ({"e": None}, {"a": 1}, {"e": None, "a": 1}),
        ([1, 2], {"a": "b", "c": None}, {"a": "b"}),
        ({}, {"a": {"bb": {"ccc": None}}}, {"a": {"bb": {}}}),
    ],
)
def test_merge_patch_rfc_examples(target, patch, result):
    assert merge(target, patch) == result
