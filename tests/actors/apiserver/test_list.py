"""List: selectors, namespaces, paging with continue, consistency across servers."""

from __future__ import annotations

import pytest
import trio

from proto import rpc
from tests.actors.apiserver.conftest import connect, make, pod


def names(items):
    return sorted(o.metadata.name for o in items)


async def _pods(api, ns):
    for name, labels in [
        ("a", {"app": "web", "tier": "front"}),
        ("b", {"app": "web", "tier": "back"}),
        ("c", {"app": "db"}),
        ("d", {}),
    ]:
        await api.create(pod(name, ns, **labels))
    await api.bind("a", "node-1", ns)
    await api.patch("pods", "c", '{"status": {"phase": "Running"}}', ns, status=True)


@pytest.mark.parametrize(
    ("selector", "expected"),
    [
        ("", ["a", "b", "c", "d"]),
        ("app=web", ["a", "b"]),
        ("app==web,tier!=back", ["a"]),
        ("app in (web,db)", ["a", "b", "c"]),
        ("app notin (web)", ["c", "d"]),
        ("tier", ["a", "b"]),
        ("!app", ["d"]),
    ],
)
async def test_label_selectors(api, ns, selector, expected):
    await _pods(api, ns)
    items, _ = await api.list("pods", ns, label_selector=selector)
    assert names(items) == expected


@pytest.mark.parametrize(
    ("selector", "expected"),
    [
        ("metadata.name=b", ["b"]),
        ("spec.nodeName=node-1", ["a"]),
        ("spec.nodeName=", ["b", "c", "d"]),
        ("status.phase=Running", ["c"]),
        ("status.phase!=Running,metadata.name!=d", ["a", "b"]),
    ],
)
async def test_field_selectors(api, ns, selector, expected):
    await _pods(api, ns)
    items, _ = await api.list("pods", ns, field_selector=selector)
    assert names(items) == expected


async def test_bad_selectors_are_invalid(api, ns):
    with pytest.raises(rpc.InvalidArgument, match="invalid label selector"):
        await api.list("pods", ns, label_selector="app in web")
    with pytest.raises(rpc.InvalidArgument, match="field label not supported: spec.nodeName"):
        await api.list("configmaps", ns, field_selector="spec.nodeName=x")


async def test_all_namespaces_and_namespace_field(api, ns, unique):
    other = make("Namespace", unique + "x")
    await api.create(other)
    await api.create(make("ConfigMap", "one", ns, mark=unique))
    await api.create(make("ConfigMap", "two", unique + "x", mark=unique))
    items, _ = await api.list("configmaps", label_selector=f"mark={unique}")
    assert sorted((o.metadata.namespace, o.metadata.name) for o in items) == [
        (ns, "one"),
        (unique + "x", "two"),
    ]
    items, _ = await api.list(
        "cm", field_selector=f"metadata.namespace={ns}", label_selector=f"mark={unique}"
    )
    assert names(items) == ["one"]


async def test_list_revision_is_the_store_revision(api, ns):
    created = await api.create(make("ConfigMap", "c", ns))
    items, response = await api.list("cm", ns)
    assert int(response.resource_version) >= int(created.metadata.resource_version)
    assert items[0].metadata.resource_version == created.metadata.resource_version


async def test_paging_with_continue_is_one_snapshot(api, ns):
    for i in range(7):
        await api.create(make("ConfigMap", f"c{i}", ns, parity=str(i % 2)))
    seen, token, revisions = [], "", set()
    while True:
        items, response = await api.list("cm", ns, limit=3, **{"continue": token})
        seen += names(items)
        revisions.add(response.resource_version)
        token = getattr(response, "continue")
        if not seen or len(seen) == 3:
            await api.create(make("ConfigMap", "c9", ns))  # after the snapshot: not listed
        if not token:
            break
        assert len(items) == 3
    assert seen == [f"c{i}" for i in range(7)]
    assert len(revisions) == 1
    odd, token = [], ""
    while True:
        items, response = await api.list(
            "cm", ns, limit=2, label_selector="parity=1", **{"continue": token}
        )
        odd += names(items)
        token = getattr(response, "continue")
        if not token:
            break
    assert odd == ["c1", "c3", "c5"]


async def test_bad_continue_tokens(api, ns):
    with pytest.raises(rpc.InvalidArgument, match="invalid continue token"):
        await api.list("cm", ns, limit=1, **{"continue": "garbage!"})
    await api.create(make("ConfigMap", "a", ns))
    await api.create(make("ConfigMap", "b", ns))
    _, response = await api.list("cm", ns, limit=1)
    with pytest.raises(rpc.InvalidArgument, match="another list"):
        await api.list("secrets", ns, limit=1, **{"continue": getattr(response, "continue")})


async def test_list_through_another_server_sees_every_write(api, start_apiserver, ns):
    other_server = await start_apiserver()
    async with connect(other_server) as other:
        for i in range(5):
            await api.create(make("ConfigMap", f"c{i}", ns))
            items, _ = await other.list("cm", ns)
            assert names(items) == [f"c{i}"]
            await other.delete("cm", f"c{i}", ns)
            items, _ = await api.list("cm", ns)
            assert names(items) == []


async def test_list_under_a_stream_of_writes_stays_complete(api, ns):
    done = False

    async def write() -> None:
        i = 0
        while not done:
            await api.create(make("ConfigMap", f"w{i}", ns))
            i += 1

    async with trio.open_nursery() as nursery:
        nursery.start_soon(write)
        previous = -1
        for _ in range(10):
            items, response = await api.list("cm", ns)
            assert len(items) >= previous  # never loses objects
            assert all(
                int(o.metadata.resource_version) <= int(response.resource_version) for o in items
            )
            previous = len(items)
        done = True
