"""The stock etcdctl (ETCDCTL_API=3, Debian's etcd-client) against a raftstore member."""

from __future__ import annotations

import json
import os
import subprocess
import uuid

import pytest

from tests.support.processes import wait_for
from tests.support.raftstore import StoreCluster

pytestmark = pytest.mark.needs_etcd


def ctl(store: StoreCluster, *args: str, stdin: str | None = None, check: bool = True) -> str:
    result = subprocess.run(
        ["etcdctl", f"--endpoints={','.join(store.endpoints)}", "--command-timeout=10s", *args],
        input=stdin,
        capture_output=True,
        text=True,
        env={**os.environ, "ETCDCTL_API": "3"},
        timeout=30,
    )
    if check and result.returncode != 0:
        raise AssertionError(f"etcdctl {' '.join(args)} failed: {result.stderr}")
    return result.stdout if check else result.stdout + result.stderr


@pytest.fixture
def p() -> str:
    return f"/ctl/{uuid.uuid4().hex[:8]}/"


def test_put_get_and_json(store1, p):
    assert ctl(store1, "put", f"{p}a", "1").strip() == "OK"
    assert ctl(store1, "get", f"{p}a").splitlines() == [f"{p}a", "1"]
    doc = json.loads(ctl(store1, "get", f"{p}a", "-w", "json"))
    kv = doc["kvs"][0]
    assert kv["version"] == 1 and kv["create_revision"] == kv["mod_revision"]
    assert doc["header"]["revision"] >= kv["mod_revision"]


def test_prefix_keys_only_serializable_and_revision(store1, p):
    ctl(store1, "put", f"{p}a", "1")
    first = json.loads(ctl(store1, "get", f"{p}a", "-w", "json"))["kvs"][0]["mod_revision"]
    ctl(store1, "put", f"{p}a", "2")
    ctl(store1, "put", f"{p}b", "3")
    assert ctl(store1, "get", "--prefix", p).splitlines() == [f"{p}a", "2", f"{p}b", "3"]
    assert ctl(store1, "get", "--prefix", "--keys-only", p).split() == [f"{p}a", f"{p}b"]
    assert ctl(store1, "get", "--consistency=s", f"{p}b").splitlines() == [f"{p}b", "3"]
    assert ctl(store1, "get", f"--rev={first}", f"{p}a").splitlines() == [f"{p}a", "1"]
    assert ctl(store1, "get", "--prefix", "--limit=1", p).splitlines() == [f"{p}a", "2"]


def test_delete_key_and_prefix(store1, p):
    for k in ("a", "b", "c"):
        ctl(store1, "put", f"{p}{k}", k)
    assert ctl(store1, "del", f"{p}a").strip() == "1"
    assert ctl(store1, "del", "--prefix", p).strip() == "2"
    assert ctl(store1, "get", "--prefix", p) == ""


def test_txn_interactive(store1, p):
    ctl(store1, "put", f"{p}k", "v1")
    script = f'value("{p}k") = "v1"\n\nput {p}r yes\n\nput {p}r no\n\n'
    out = ctl(store1, "txn", stdin=script)
    assert out.splitlines()[0] == "SUCCESS"
    assert ctl(store1, "get", f"{p}r").splitlines() == [f"{p}r", "yes"]
    script = f'value("{p}k") = "other"\n\nput {p}r yes\n\nput {p}r no\n\n'
    assert ctl(store1, "txn", stdin=script).splitlines()[0] == "FAILURE"
    assert ctl(store1, "get", f"{p}r").splitlines() == [f"{p}r", "no"]


def test_watch_prefix_from_revision(store1, p):
    ctl(store1, "put", f"{p}w1", "a")
    start = json.loads(ctl(store1, "get", f"{p}w1", "-w", "json"))["kvs"][0]["mod_revision"]
    ctl(store1, "put", f"{p}w2", "b")
    ctl(store1, "del", f"{p}w1")
    watcher = subprocess.Popen(
        ["etcdctl", f"--endpoints={store1.endpoints[0]}", "watch", "--prefix", f"--rev={start}", p],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env={**os.environ, "ETCDCTL_API": "3"},
        start_new_session=True,
    )
    try:
        assert watcher.stdout is not None
        lines: list[str] = []
        stdout = watcher.stdout
        wait_for(
            lambda: lines.append(stdout.readline().strip()) or len(lines) >= 8,
            timeout=20,
            message="watch output",
        )
    finally:
        watcher.kill()
        watcher.wait()
    assert lines == ["PUT", f"{p}w1", "a", "PUT", f"{p}w2", "b", "DELETE", f"{p}w1"]


def test_lease_lifecycle(store1, p):
    out = ctl(store1, "lease", "grant", "30")
    lease = out.split()[1]
    ctl(store1, "put", f"--lease={lease}", f"{p}leased", "v")
    assert "keepalived with TTL(30)" in ctl(store1, "lease", "keep-alive", "--once", lease)
    ttl = ctl(store1, "lease", "timetolive", "--keys", lease)
    assert "granted with TTL(30s)" in ttl and f"{p}leased" in ttl
    assert lease in ctl(store1, "lease", "list")
    assert "revoked" in ctl(store1, "lease", "revoke", lease)
    assert ctl(store1, "get", f"{p}leased") == ""
    assert "already expired" in ctl(store1, "lease", "timetolive", lease)


def test_lease_expiry_deletes_keys(store1, p):
    lease = ctl(store1, "lease", "grant", "2").split()[1]
    ctl(store1, "put", f"--lease={lease}", f"{p}short", "v")
    wait_for(lambda: ctl(store1, "get", f"{p}short") == "", timeout=15, message="lease expiry")


def test_member_list_endpoint_status_and_health(store1):
    member = store1.members[0]
    fields = ctl(store1, "member", "list").strip().split(", ")
    peer_url = f"http://127.0.0.1:{member.peer_port}"
    assert fields[1:] == ["started", "s0", peer_url, member.client_url, "false"]
    status = json.loads(ctl(store1, "endpoint", "status", "-w", "json"))[0]["Status"]
    assert status["leader"] == status["header"]["member_id"]
    assert status["raftIndex"] >= status["raftAppliedIndex"] > 0
    assert "is healthy" in ctl(store1, "endpoint", "health", check=False)


def test_compaction(store1, p):
    ctl(store1, "put", f"{p}c", "1")
    old = json.loads(ctl(store1, "get", f"{p}c", "-w", "json"))["kvs"][0]["mod_revision"]
    ctl(store1, "put", f"{p}c", "2")
    rev = json.loads(ctl(store1, "get", f"{p}c", "-w", "json"))["header"]["revision"]
    assert f"compacted revision {rev}" in ctl(store1, "compaction", str(rev))
    out = ctl(store1, "get", f"--rev={old}", f"{p}c", check=False)
    assert "required revision has been compacted" in out
    assert ctl(store1, "get", f"{p}c").splitlines() == [f"{p}c", "2"]
