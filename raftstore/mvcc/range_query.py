"""Shaping a Range answer: count, revision filters, sort, limit, keys_only.

The store hands over the live records of the range at the read revision, in key order; this
module turns them into a ``RangeResponse`` the way etcd's applier does (apply.go Range):

1. ``count`` is the number of keys in the range *before* the min/max revision filters and
   before ``limit`` (etcd counts in the MVCC layer, then filters).
2. ``count_only`` stops there: no kvs, ``more`` false.
3. The min/max mod/create revision filters drop records (a bound of 0 means "no bound").
4. Sort: a ``sort_target`` other than KEY with ``sort_order`` NONE sorts ascending.
   Ties keep key order (our sort is stable; etcd's is not, so etcd leaves ties unspecified).
5. ``limit`` > 0 truncates and sets ``more`` if anything was cut.
6. ``keys_only`` blanks the values.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from proto.etcdserverpb import rpc_pb2
from raftstore.mvcc.record import Record

__all__ = ["build_range_response"]

_Req = rpc_pb2.RangeRequest
_SORT_KEYS: dict[int, Callable[[Record], object]] = {
    _Req.KEY: lambda r: r.key,
    _Req.VERSION: lambda r: r.version,
    _Req.CREATE: lambda r: r.create_revision,
    _Req.MOD: lambda r: r.main,
    _Req.VALUE: lambda r: r.value,
}


def build_range_response(
    request: rpc_pb2.RangeRequest, records: Sequence[Record], *, header_revision: int
) -> rpc_pb2.RangeResponse:
    response = rpc_pb2.RangeResponse(count=len(records))
    response.header.revision = header_revision
    if request.count_only:
        return response

    selected = list(records)
    if request.max_mod_revision:
        selected = [r for r in selected if r.main <= request.max_mod_revision]
    if request.min_mod_revision:
        selected = [r for r in selected if r.main >= request.min_mod_revision]
    if request.max_create_revision:
        selected = [r for r in selected if r.create_revision <= request.max_create_revision]
    if request.min_create_revision:
        selected = [r for r in selected if r.create_revision >= request.min_create_revision]

    order = request.sort_order
    if order == _Req.NONE and request.sort_target != _Req.KEY:
        order = _Req.ASCEND
    if order == _Req.DESCEND and request.sort_target == _Req.KEY:
        selected.reverse()
    elif order != _Req.NONE and request.sort_target != _Req.KEY:
        selected.sort(key=_SORT_KEYS[request.sort_target], reverse=order == _Req.DESCEND)  # type: ignore[arg-type]

    if 0 < request.limit < len(selected):
        del selected[request.limit :]
        response.more = True
    response.kvs.extend(r.to_kv(keys_only=request.keys_only) for r in selected)
    return response
