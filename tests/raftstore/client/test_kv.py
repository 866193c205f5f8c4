"""Put, get, delete, ranges and revisions against a real store."""

from __future__ import annotations

import pytest

from raftstore.client import Client, Sort, SortOrder, SortTarget, open_client

pytestmark = [pytest.mark.usefixtures("rpc_loop"), pytest.mark.needs_etcd]


async def test_put_get_delete_round_trip(client: Client, prefix: str) -> None:
    put = await client.put(prefix + "a", "one")
    got = await client.get(prefix + "a")
    assert got.count == 1 and not got.more
    (kv,) = got.kvs
    assert (kv.key, kv.value) == ((prefix + "a").encode(), b"one")
    assert kv.create_revision == kv.mod_revision == put.revision
    assert kv.version == 1 and kv.lease == 0
    assert got.revision >= put.revision

    deleted = await client.delete(prefix + "a", prev_kv=True)
    assert deleted.deleted == 1
    assert [p.value for p in deleted.prev_kvs] == [b"one"]
    assert (await client.get(prefix + "a")).kvs == ()
    assert (await client.delete(prefix + "a")).deleted == 0


async def test_str_and_bytes_are_interchangeable(client: Client, prefix: str) -> None:
    await client.put((prefix + "k").encode(), b"\xff\x00binary")
    got = await client.get(prefix + "k")
    assert got.kv is not None and got.kv.value == b"\xff\x00binary"


async def test_put_prev_kv(client: Client, prefix: str) -> None:
    first = await client.put(prefix + "k", "v1", prev_kv=True)
    assert first.prev_kv is None
    second = await client.put(prefix + "k", "v2", prev_kv=True)
    assert second.prev_kv is not None and second.prev_kv.value == b"v1"
    assert second.prev_kv.mod_revision == first.revision


async def test_versions_and_revisions(client: Client, prefix: str) -> None:
    key = prefix + "k"
    r1 = await client.put(key, "1")
    r2 = await client.put(key, "2")
    kv = (await client.get(key)).kv
    assert kv is not None
    assert (kv.create_revision, kv.mod_revision, kv.version) == (r1.revision, r2.revision, 2)
    assert r2.revision > r1.revision

    d = await client.delete(key)
    assert d.revision > r2.revision
    r3 = await client.put(key, "3")
    kv = (await client.get(key)).kv
    assert kv is not None
    # A delete ends the key's life: the next put starts a new one.
    assert (kv.create_revision, kv.mod_revision, kv.version) == (r3.revision, r3.revision, 1)

    # Reading at an older revision sees the key as it was then.
    old = await client.get(key, revision=r1.revision)
    assert old.kv is not None and old.kv.value == b"1"
    assert (await client.get(key, revision=d.revision)).kvs == ()


async def test_prefix_range_limit_and_counts(client: Client, prefix: str) -> None:
    for name in ("a", "b", "c", "d"):
        await client.put(prefix + name, name.upper())
    await client.put(prefix.rstrip("/") + "0", "outside")  # sorts after the prefix

    everything = await client.get(prefix, prefix=True)
    assert [kv.key for kv in everything.kvs] == [(prefix + n).encode() for n in "abcd"]
    assert everything.count == 4

    ranged = await client.get(prefix + "b", range_end=prefix + "d")
    assert [kv.value for kv in ranged.kvs] == [b"B", b"C"]

    limited = await client.get(prefix, prefix=True, limit=2)
    assert [kv.value for kv in limited.kvs] == [b"A", b"B"]
    assert limited.more and limited.count == 4

    keys = await client.get(prefix, prefix=True, keys_only=True)
    assert [kv.value for kv in keys.kvs] == [b""] * 4

    counted = await client.get(prefix, prefix=True, count_only=True)
    assert counted.kvs == () and counted.count == 4

    serial = await client.get(prefix + "a", serializable=True)
    assert serial.kv is not None and serial.kv.value == b"A"

    await client.delete(prefix, prefix=True)
    assert (await client.get(prefix, prefix=True, count_only=True)).count == 0
    assert (await client.get(prefix.rstrip("/") + "0")).count == 1


async def test_sort(client: Client, prefix: str) -> None:
    for name, value in (("a", "3"), ("b", "1"), ("c", "2")):
        await client.put(prefix + name, value)
    await client.put(prefix + "a", "3")  # a is now the newest write
    desc = await client.get(prefix, prefix=True, sort=Sort(SortTarget.KEY, SortOrder.DESCEND))
    assert [kv.key[-1:] for kv in desc.kvs] == [b"c", b"b", b"a"]
    by_value = await client.get(prefix, prefix=True, sort=Sort(SortTarget.VALUE))
    assert [kv.value for kv in by_value.kvs] == [b"1", b"2", b"3"]
    by_mod = await client.get(
        prefix, prefix=True, sort=Sort(SortTarget.MOD, SortOrder.DESCEND), limit=1
    )
    assert [kv.key[-1:] for kv in by_mod.kvs] == [b"a"]


async def test_status_and_members(client: Client) -> None:
    status = await client.status()
    assert status.version and status.leader != 0 and status.header.revision >= 1
    members = await client.member_list()
    assert len(members) == 1
    assert members[0].client_urls


async def test_http_urls_are_accepted(rpc_loop: None, store, prefix: str) -> None:
    async with open_client([f"http://{store.endpoints[0]}/"]) as client:
        await client.put(prefix + "k", "v")
        assert (await client.get(prefix + "k")).count == 1


async def test_bad_endpoints_are_rejected(rpc_loop: None) -> None:
    for bad in (["nohost"], ["ftp://h:1"], [], "127.0.0.1:2379"):
        with pytest.raises((ValueError, TypeError)):
            async with open_client(bad):
                pass
