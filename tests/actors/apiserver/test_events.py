"""RecordEvent: repeats folded into one Event (count, lastTimestamp); Events expire."""

from __future__ import annotations

import pytest
import trio

from actors.apiserver import events
from proto import rpc
from proto.apiserver import apiserver_pb2 as pb
from proto.k8s import core_pb2
from tests.actors.apiserver.conftest import connect, pack, unpack


def event(ns: str, *, name: str = "web-1", reason: str = "BackOff", message: str = "again"):
    ev = core_pb2.Event()
    ev.involved_object.kind = "Pod"
    ev.involved_object.namespace = ns
    ev.involved_object.name = name
    ev.involved_object.uid = "u-1"
    ev.reason = reason
    ev.message = message
    ev.type = "Warning"
    ev.source.component = "node-agent"
    ev.source.host = "n1"
    return ev


async def record(api, ev):
    return unpack((await api.stub.RecordEvent(pb.RecordEventRequest(event=pack(ev)))).object)


def test_event_name_is_the_identity():
    a, b = event("ns"), event("ns")
    assert events.event_name(a) == events.event_name(b)
    assert events.event_name(a).startswith("web-1.")
    assert events.event_name(event("ns", message="other")) != events.event_name(a)


async def test_repeats_bump_count_and_last_timestamp(api, ns):
    first = await record(api, event(ns))
    assert first.count == 1 and first.metadata.namespace == ns
    assert first.first_timestamp == first.last_timestamp
    for _ in range(2):
        latest = await record(api, event(ns))
    assert latest.metadata.name == first.metadata.name and latest.count == 3
    assert latest.first_timestamp == first.first_timestamp
    assert latest.last_timestamp.ToDatetime() >= first.last_timestamp.ToDatetime()
    other = await record(api, event(ns, message="different"))
    assert other.metadata.name != first.metadata.name and other.count == 1
    items, _ = await api.list("events", ns)
    assert sorted(e.count for e in items) == [1, 3]
    with pytest.raises(rpc.InvalidArgument, match="an event needs involvedObject.kind"):
        await record(api, core_pb2.Event(reason="x"))


async def test_concurrent_recorders_on_two_servers_fold(start_apiserver, api, ns):
    other = await start_apiserver()
    async with connect(other) as api2, trio.open_nursery() as n:
        for i in range(10):
            n.start_soon(record, (api, api2)[i % 2], event(ns, name="racy"))
    items, _ = await api.list("events", ns)
    assert [e.count for e in items] == [10]


async def test_quiet_longer_than_the_window_starts_over(start_apiserver, ns):
    server = await start_apiserver(event_window=0.0)
    async with connect(server) as api:
        first = await record(api, event(ns, name="slow"))
        await trio.sleep(0.01)
        second = await record(api, event(ns, name="slow"))
    assert second.metadata.name == first.metadata.name and second.count == 1
    assert second.first_timestamp.ToDatetime() > first.first_timestamp.ToDatetime()


async def test_events_expire_after_their_ttl(start_apiserver, ns):
    server = await start_apiserver(event_ttl=2)
    async with connect(server) as api:
        recorded = await record(api, event(ns, name="short"))
        created = await api.create(
            core_pb2.Event(
                metadata={"name": "plain", "namespace": ns},
                involved_object={"kind": "Pod", "name": "x", "namespace": ns},
                reason="R",
            )
        )
        with trio.fail_after(20):
            while True:
                items, _ = await api.list("events", ns)
                if not items:
                    break
                await trio.sleep(0.2)
        with pytest.raises(rpc.NotFound):
            await api.get("events", recorded.metadata.name, ns)
        assert created.metadata.name == "plain"
