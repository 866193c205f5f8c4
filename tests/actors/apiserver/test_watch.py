"""Watch: order, resume, bookmarks, too-old, server-side selectors, several servers."""

from __future__ import annotations

import pytest
import trio

from proto import rpc
from proto.apiserver import apiserver_pb2 as pb
from tests.actors.apiserver.conftest import connect, make, pod, unpack

T = pb.WatchEvent


async def collect(stream, count, *, skip_bookmarks=True, timeout=10):
    out = []
    with trio.fail_after(timeout):
        while len(out) < count:
            event = await stream.receive()
            assert event is not None, "the watch ended"
            if skip_bookmarks and event.type == T.BOOKMARK:
                continue
            obj = unpack(event.object)
            out.append((T.Type.Name(event.type), obj.metadata.name, obj))
    return out


def watch(api, kind, namespace="", **kw):
    return api.stub.Watch(pb.WatchRequest(kind=kind, namespace=namespace, **kw))


async def test_events_in_order_and_resume(api, ns):
    start = await api.create(make("ConfigMap", "first", ns))
    async with watch(api, "cm", ns, resource_version=start.metadata.resource_version) as w:
        await api.create(make("ConfigMap", "a", ns))
        await api.patch("cm", "a", '{"data": {"k": "v"}}', ns)
        await api.delete("cm", "a", ns)
        await api.create(make("ConfigMap", "b", ns))
        events = await collect(w, 4)
    assert [(t, n) for t, n, _ in events] == [
        ("ADDED", "a"),
        ("MODIFIED", "a"),
        ("DELETED", "a"),
        ("ADDED", "b"),
    ]
    revisions = [int(o.metadata.resource_version) for _, _, o in events]
    assert revisions == sorted(revisions) and len(set(revisions)) == 4
    # Resume after the second event: exactly the rest, nothing repeated.
    resume = str(revisions[1])
    async with watch(api, "cm", ns, resource_version=resume) as w:
        rest = await collect(w, 2)
    assert [(t, n) for t, n, _ in rest] == [("DELETED", "a"), ("ADDED", "b")]


async def test_watch_from_zero_starts_with_current_objects(api, ns):
    await api.create(make("ConfigMap", "old", ns))
    async with watch(api, "cm", ns, resource_version="0") as w:
        first = await collect(w, 1)
        await api.create(make("ConfigMap", "new", ns))
        second = await collect(w, 1)
    assert [(t, n) for t, n, _ in first + second] == [("ADDED", "old"), ("ADDED", "new")]


async def test_bookmarks_carry_the_latest_revision(api, ns):
    created = await api.create(make("ConfigMap", "c", ns))
    rv = created.metadata.resource_version
    async with watch(api, "cm", ns, resource_version=rv, allow_bookmarks=True) as w:
        with trio.fail_after(10):
            event = await w.receive()
        assert event.type == T.BOOKMARK
        mark = unpack(event.object)
        assert mark.metadata.name == "" and int(mark.metadata.resource_version) >= int(rv)
        await api.create(make("ConfigMap", "d", ns))
        (added,) = await collect(w, 1)
        while True:
            with trio.fail_after(10):
                event = await w.receive()
            if event.type == T.BOOKMARK:
                break
        later = unpack(event.object).metadata.resource_version
        assert int(later) >= int(added[2].metadata.resource_version)
    async with watch(api, "cm", ns, resource_version=rv) as w:
        (only,) = await collect(w, 1, skip_bookmarks=False)
        assert only[1] == "d"  # no bookmarks unless asked for


async def test_too_old_resource_version(start_apiserver, ns, api):
    server = await start_apiserver(watch_window=3)
    async with connect(server) as small:
        first = await small.create(make("ConfigMap", "c0", ns))
        for i in range(1, 6):
            await small.create(make("ConfigMap", f"c{i}", ns))
        _, listed = await small.list("cm", ns)
        with pytest.raises(rpc.OutOfRange, match="too old resource version"):
            async with watch(small, "cm", ns, resource_version="1") as w:
                await w.receive()
        with pytest.raises(rpc.OutOfRange, match="too old resource version"):
            async with watch(
                small, "cm", ns, resource_version=first.metadata.resource_version
            ) as w:
                await w.receive()
        # The list's revision is always good to watch from.
        async with watch(small, "cm", ns, resource_version=listed.resource_version) as w:
            await small.create(make("ConfigMap", "after", ns))
            assert [n for _, n, _ in await collect(w, 1)] == ["after"]


async def test_selectors_apply_server_side(api, ns):
    start = await api.create(make("ConfigMap", "base", ns))
    rv = start.metadata.resource_version
    async with watch(api, "cm", ns, resource_version=rv, label_selector="app=web") as w:
        await api.create(make("ConfigMap", "other", ns, app="db"))
        await api.create(make("ConfigMap", "x", ns, app="db"))
        await api.patch("cm", "x", '{"metadata": {"labels": {"app": "web"}}}', ns)
        await api.patch("cm", "x", '{"data": {"k": "v"}}', ns)
        await api.patch("cm", "x", '{"metadata": {"labels": {"app": "db"}}}', ns)
        await api.delete("cm", "x", ns)
        await api.create(make("ConfigMap", "y", ns, app="web"))
        events = await collect(w, 4)
    assert [(t, n) for t, n, _ in events] == [
        ("ADDED", "x"),
        ("MODIFIED", "x"),
        ("DELETED", "x"),
        ("ADDED", "y"),
    ]
    # The DELETED for "stopped matching" carries the last matching state.
    assert events[2][2].metadata.labels["app"] == "web"
    assert int(events[2][2].metadata.resource_version) > int(events[1][2].metadata.resource_version)


async def test_field_selector_watch_for_a_node(api, ns):
    start = await api.create(pod("p0", ns))
    rv = start.metadata.resource_version
    async with watch(api, "pods", "", resource_version=rv, field_selector="spec.nodeName=n1") as w:
        await api.create(pod("p1", ns))
        await api.bind("p1", "n1", ns)
        await api.create(pod("p2", ns))
        await api.bind("p2", "n2", ns)
        await api.delete("pods", "p1", ns, grace_period_seconds=0)
        events = await collect(w, 2)
    assert [(t, n) for t, n, _ in events] == [("ADDED", "p1"), ("DELETED", "p1")]


async def test_namespace_scoping(api, ns, unique):
    await api.create(make("Namespace", unique + "o"))
    start = await api.create(make("ConfigMap", "s", ns))
    async with watch(api, "cm", ns, resource_version=start.metadata.resource_version) as w:
        await api.create(make("ConfigMap", "elsewhere", unique + "o"))
        await api.create(make("ConfigMap", "here", ns))
        events = await collect(w, 1)
    assert [(t, n) for t, n, _ in events] == [("ADDED", "here")]


async def test_two_servers_serve_the_same_history(api, start_apiserver, ns):
    other_server = await start_apiserver()
    async with connect(other_server) as other:
        start = await api.create(make("ConfigMap", "start", ns))
        rv = start.metadata.resource_version
        async with watch(api, "cm", ns, resource_version=rv) as w1:
            async with watch(other, "cm", ns, resource_version=rv) as w2:

                async def write(client, tag):
                    for i in range(5):
                        await client.create(make("ConfigMap", f"{tag}{i}", ns))
                        await client.patch("cm", f"{tag}{i}", '{"data": {"x": "1"}}', ns)

                async with trio.open_nursery() as nursery:
                    nursery.start_soon(write, api, "a")
                    nursery.start_soon(write, other, "b")
                seen1 = await collect(w1, 20)
                seen2 = await collect(w2, 20)
    key = [(t, n, o.metadata.resource_version) for t, n, o in seen1]
    assert key == [(t, n, o.metadata.resource_version) for t, n, o in seen2]
    assert [int(r) for _, _, r in key] == sorted(int(r) for _, _, r in key)


async def test_unknown_kind_and_bad_version(api, ns):
    with pytest.raises(rpc.InvalidArgument, match="unknown kind"):
        async with watch(api, "gizmos", ns) as w:
            await w.receive()
    with pytest.raises(rpc.InvalidArgument, match="invalid resourceVersion"):
        async with watch(api, "cm", ns, resource_version="abc") as w:
            await w.receive()
