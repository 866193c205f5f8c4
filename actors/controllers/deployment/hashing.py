"""The pod-template hash that names a Deployment's ReplicaSets (``web-7d4b9c8f6d``).

A Deployment owns one ReplicaSet per distinct pod template it has had. Kubernetes names
each ``<deployment>-<hash>`` and labels it (its selector, its template, so its pods)
``pod-template-hash: <hash>``, which keeps the ReplicaSets' pod sets disjoint even though
they all match the Deployment's own selector. The hash must be *stable*: the same
template must give the same name in every process and release, or a restarted controller
would not find the ReplicaSet it made and would make another.

Kubernetes' ``ComputeHash`` runs FNV-32a over a deterministic dump of the template and,
when ``status.collisionCount`` is set, over that count as 4 little-endian bytes; the
32-bit sum is printed in decimal and each digit mapped to a character of
``bcdfghjklmnpqrstvwxz2456789`` (``rand.SafeEncodeString``: no vowels, no look-alikes,
so no accidental words). We do the same over the template's deterministic protobuf
encoding (map entries sorted by key). The value differs from Kubernetes' (its dump is Go's
``spew`` output) but has the same properties: stable, changes when the template changes,
and moves to a fresh name when ``collisionCount`` is bumped after a collision.
"""

from __future__ import annotations

from typing import Any

__all__ = ["POD_TEMPLATE_HASH_LABEL", "SAFE_ALPHABET", "compute_hash", "fnv32a", "safe_encode"]

POD_TEMPLATE_HASH_LABEL = "pod-template-hash"
SAFE_ALPHABET = "bcdfghjklmnpqrstvwxz2456789"

_FNV32_OFFSET = 0x811C9DC5
_FNV32_PRIME = 0x01000193


def fnv32a(data: bytes, state: int = _FNV32_OFFSET) -> int:
    """FNV-1a, 32 bits, of ``data`` continuing from ``state``."""
    h = state
    for byte in data:
        h ^= byte
        h = (h * _FNV32_PRIME) & 0xFFFFFFFF
    return h


def safe_encode(text: str) -> str:
    """Each character mapped into :data:`SAFE_ALPHABET` (Kubernetes' SafeEncodeString)."""
    return "".join(SAFE_ALPHABET[ord(c) % len(SAFE_ALPHABET)] for c in text)


def compute_hash(template: Any, collision_count: int | None = None) -> str:
    """The hash of a PodTemplateSpec (without any ``pod-template-hash`` label it carries),
    salted with ``collision_count`` when given."""
    clean = type(template)()
    clean.CopyFrom(template)
    clean.metadata.labels.pop(POD_TEMPLATE_HASH_LABEL, None)
    h = fnv32a(clean.SerializeToString(deterministic=True))
    if collision_count is not None:
        h = fnv32a((collision_count & 0xFFFFFFFF).to_bytes(4, "little"), h)
    return safe_encode(str(h))
