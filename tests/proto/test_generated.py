"""The checked-in generated modules match their .proto sources."""

from __future__ import annotations

from google.protobuf import descriptor_pb2

from proto import generate
from proto.etcdserverpb import rpc_pb2


def test_checked_in_modules_are_fresh():
    assert generate.stale_modules() == [], "run `python -m proto.generate` and commit"


def test_a_changed_field_number_counts_as_stale():
    original = descriptor_pb2.FileDescriptorProto.FromString(rpc_pb2.DESCRIPTOR.serialized_pb)
    changed = descriptor_pb2.FileDescriptorProto()
    changed.CopyFrom(original)
    changed.message_type[0].field[0].number = 99
    assert generate._normalized(original) == generate._normalized(original)
    assert generate._normalized(changed) != generate._normalized(original)


def test_etcd_wire_names():
    """Stock etcd clients call these exact method paths."""
    services = rpc_pb2.DESCRIPTOR.services_by_name
    assert services["KV"].full_name == "etcdserverpb.KV"
    assert [m.name for m in services["Watch"].methods] == ["Watch"]
    compare = rpc_pb2.Compare.DESCRIPTOR.fields_by_name
    assert compare["range_end"].number == 64
    assert rpc_pb2.WatchResponse.DESCRIPTOR.fields_by_name["events"].number == 11
