"""etcd's Watch stream on raftstore: many watches per stream, cancel, progress, slow readers."""

from __future__ import annotations

import queue
import threading
import time
import uuid
from collections.abc import Iterator

import grpc
import pytest

from proto.etcdserverpb import rpc_pb2, rpc_pb2_grpc
from tests.raftstore.server.helpers import put


class WatchStream:
    """One bidirectional Watch call driven from a test thread."""

    def __init__(self, endpoint: str) -> None:
        self._channel = grpc.insecure_channel(endpoint)
        self._requests: queue.Queue[rpc_pb2.WatchRequest | None] = queue.Queue()
        self._call = rpc_pb2_grpc.WatchStub(self._channel).Watch(self._iter(), timeout=60)

    def _iter(self) -> Iterator[rpc_pb2.WatchRequest]:
        while (request := self._requests.get()) is not None:
            yield request

    def send(self, request: rpc_pb2.WatchRequest) -> None:
        self._requests.put(request)

    def receive(self) -> rpc_pb2.WatchResponse:
        return next(self._call)

    def close(self) -> None:
        self._call.cancel()
        self._requests.put(None)
        self._channel.close()


@pytest.fixture
def stream(store1) -> Iterator[WatchStream]:
    s = WatchStream(store1.endpoints[0])
    yield s
    s.close()


def create(key: bytes, *, prefix: bool = True, start: int = 0) -> rpc_pb2.WatchRequest:
    end = key[:-1] + bytes([key[-1] + 1]) if prefix else b""
    return rpc_pb2.WatchRequest(
        create_request=rpc_pb2.WatchCreateRequest(key=key, range_end=end, start_revision=start)
    )


def test_two_watches_on_one_stream_then_cancel_one(store1, stream):
    p = f"/ws/{uuid.uuid4().hex[:6]}"
    stream.send(create(f"{p}/a/".encode()))
    first = stream.receive()
    stream.send(create(f"{p}/b/".encode()))
    second = stream.receive()
    assert first.created and second.created and first.watch_id != second.watch_id
    endpoint = store1.endpoints[0]
    put(endpoint, f"{p}/a/1", "x")
    put(endpoint, f"{p}/b/1", "y")
    got = {}
    while len(got) < 2:
        response = stream.receive()
        for event in response.events:
            got[response.watch_id] = event.kv.key.decode()
    assert got == {first.watch_id: f"{p}/a/1", second.watch_id: f"{p}/b/1"}

    stream.send(
        rpc_pb2.WatchRequest(cancel_request=rpc_pb2.WatchCancelRequest(watch_id=first.watch_id))
    )
    cancelled = stream.receive()
    assert cancelled.canceled and cancelled.watch_id == first.watch_id
    put(endpoint, f"{p}/a/2", "ignored")
    put(endpoint, f"{p}/b/2", "seen")
    response = stream.receive()
    assert response.watch_id == second.watch_id
    assert [e.kv.key.decode() for e in response.events] == [f"{p}/b/2"]


def test_progress_request_reports_the_current_revision(store1, stream):
    stream.send(create(b"/progress/"))
    assert stream.receive().created
    revision = put(store1.endpoints[0], "/elsewhere/progress", "x")
    stream.send(rpc_pb2.WatchRequest(progress_request=rpc_pb2.WatchProgressRequest()))
    response = stream.receive()
    assert response.watch_id == -1 and not response.events
    assert response.header.revision >= revision


def test_a_watcher_that_does_not_read_never_slows_writers(store1, stream):
    """Writes go on at full speed while a watcher reads nothing; it then gets all, in order."""
    p = f"/slow/{uuid.uuid4().hex[:6]}/"
    stream.send(create(p.encode()))
    assert stream.receive().created
    endpoint = store1.endpoints[0]
    count = 300
    done = threading.Event()

    def write() -> None:
        with grpc.insecure_channel(endpoint) as channel:
            kv = rpc_pb2_grpc.KVStub(channel)
            for i in range(count):
                kv.Put(rpc_pb2.PutRequest(key=f"{p}{i:04d}".encode(), value=b"v" * 512), timeout=10)
        done.set()

    started = time.monotonic()
    writer = threading.Thread(target=write)
    writer.start()
    assert done.wait(60), "writes stalled behind an unread watch"
    writer.join()
    assert time.monotonic() - started < 60
    keys: list[str] = []
    while len(keys) < count:
        keys.extend(e.kv.key.decode() for e in stream.receive().events)
    assert keys == [f"{p}{i:04d}" for i in range(count)]
