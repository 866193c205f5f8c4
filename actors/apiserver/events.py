"""Events: recorded once, then counted, and forgotten an hour after the last repeat.

A component that sees the same thing happen again and again (a pod's image pull
failing every ten seconds) must not write an Event each time: Kubernetes' client-side
correlator folds repeats into one Event whose ``count`` and ``lastTimestamp`` grow. Here
the API server does the folding (``RecordEvent``), so every client gets it for free and
two API servers fold into the same Event:

* An Event's identity is what makes it "the same": involvedObject, type, reason,
  message and source. :func:`event_name` derives the Event's name from a hash of
  them, so a repeat finds its Event with one read and racing recorders (on any API
  server) meet on one key: the first creates it, the rest bump it through
  compare-and-swap.
* A repeat within :data:`DEFAULT_WINDOW` of ``lastTimestamp`` bumps ``count`` and
  ``lastTimestamp``; a repeat after a longer quiet starts over (``count`` 1, new
  ``firstTimestamp``), as the correlator would start a new Event.

Expiry is the store's job: Event writes carry a lease (:mod:`.storage`), so an Event is
deleted :data:`DEFAULT_TTL` seconds after its last write, by the store, with no
cleanup task in any API server. Plain ``Create`` of an Event still works (and expires
the same way); it just does not fold repeats.
"""

from __future__ import annotations

import hashlib
import json
from datetime import datetime, timedelta
from typing import Any

from proto import rpc
from proto.k8s import core_pb2

DEFAULT_TTL = 3600  # Kubernetes' --event-ttl
DEFAULT_WINDOW = 600.0  # Kubernetes' correlator: repeats within 10 minutes are folded
MAX_NAME = 253
_DIGEST = 16


def _identity(ev: core_pb2.Event) -> dict[str, Any]:
    o = ev.involved_object
    return {
        "involvedObject": [o.api_version, o.kind, o.namespace, o.name, o.uid, o.field_path],
        "type": ev.type,
        "reason": ev.reason,
        "message": ev.message,
        "source": [ev.source.component, ev.source.host],
    }


def event_name(ev: core_pb2.Event) -> str:
    """``<involvedObject.name>.<16 hex digits of the identity's hash>``."""
    text = json.dumps(_identity(ev), sort_keys=True)
    digest = hashlib.sha256(text.encode()).hexdigest()[:_DIGEST]
    base = ev.involved_object.name[: MAX_NAME - _DIGEST - 1].rstrip(".-") or "event"
    return f"{base}.{digest}"


def check(ev: core_pb2.Event) -> None:
    o = ev.involved_object
    missing = [f"involvedObject.{f}" for f, v in (("kind", o.kind), ("name", o.name)) if not v]
    missing += [f for f in ("reason",) if not getattr(ev, f)]
    if missing:
        raise rpc.InvalidArgument(f"an event needs {', '.join(missing)}")


def fresh(ev: core_pb2.Event, *, namespace: str, name: str, at: datetime) -> core_pb2.Event:
    """The Event to create for the first of a series."""
    out = core_pb2.Event()
    out.CopyFrom(ev)
    out.metadata.Clear()
    out.metadata.name = name
    out.metadata.namespace = namespace
    out.metadata.labels.update(ev.metadata.labels)
    out.metadata.annotations.update(ev.metadata.annotations)
    out.type = ev.type or "Normal"
    out.count = 1
    out.first_timestamp.FromDatetime(at)
    out.last_timestamp.FromDatetime(at)
    return out


def repeat(current: core_pb2.Event, *, at: datetime, window: float) -> core_pb2.Event:
    """``current`` (a copy the caller may change) after one more occurrence at ``at``."""
    last = current.last_timestamp.ToDatetime(tzinfo=at.tzinfo)
    if at - last > timedelta(seconds=window):
        current.count = 1
        current.first_timestamp.FromDatetime(at)
    else:
        current.count = max(current.count, 1) + 1
    current.last_timestamp.FromDatetime(at)
    return current
