"""ClusterIPs, nodePorts and node pod CIDRs: allocated uniquely across every API server.

The problem: several API servers, stateless, share one store, and two of them may give
the same address to two Services at the same moment. Kubernetes keeps a bitmap of the
whole range in one key and compare-and-swaps it; that makes every allocation in the
cluster conflict with every other. Here each allocated value is its own key:

* ``/registry/ranges/serviceips/<ip>`` for a clusterIP,
* ``/registry/ranges/servicenodeports/<port>`` for a nodePort,
* ``/registry/ranges/podcidrs/<a.b.c.d>-<len>`` for a Node's ``spec.podCIDR``,

whose value is the store key of the Service holding it. The keys a Service holds
(:func:`claims`) are created in the *same* transaction that writes the Service, each
guarded by ``create_revision == 0``, and deleted in the same transaction that deletes
it or stops holding them (:mod:`.storage`). So an address is held exactly while a
Service naming it exists, and of two servers racing for one address exactly one
transaction succeeds; the other learns which key was taken (:class:`ClaimTaken`).

Choosing: :class:`Allocator` draws a random free value, avoiding the values it knows
to be taken; when a draw loses a race it re-reads the allocated keys (one keys-only
range read) and draws again, so a nearly full range still converges. A value the user
asked for is checked against the range here and against the store by the write itself:
``spec.clusterIP: Invalid value: "10.0.0.1": provided IP is not in the valid range. The
range of valid IPs is 127.96.0.0/16`` or ``... provided IP is already allocated``
(Kubernetes' wording).

Pod CIDRs: a Node created without ``spec.podCIDR`` gets a free /24 (by default), drawn at
random, of the cluster CIDR (``127.64.0.0/12``: 4,096 nodes of 253 pods, all on
loopback), so a node agent can give its pods addresses as soon as its Node exists. Kubernetes does this
in the controller manager (``--allocate-node-cidrs``); doing it in the write that creates
the Node means no node ever waits for a controller to be elected. A podCIDR, once set,
stays for the Node's life (an update that omits it keeps it), and is freed with the Node.

Which Services hold what, as in Kubernetes: every type but ExternalName holds a
clusterIP unless it is headless (``clusterIP: None``); NodePort and LoadBalancer hold a
nodePort per port. On update an omitted clusterIP or nodePort keeps the stored one, and
a change of type to ClusterIP drops the nodePorts it held.
"""

from __future__ import annotations

import ipaddress
import random
from dataclasses import dataclass, field
from typing import Any

from actors.apiserver import admission
from proto import rpc
from proto.k8s import kinds
from proto.k8s.kinds import KindInfo
from raftstore.client import Client, prefix_end

DEFAULT_SERVICE_CLUSTER_IP_RANGE = "127.96.0.0/16"
NODE_PORT_RANGE = (30000, 32767)
IP_PREFIX = "/registry/ranges/serviceips/"
PORT_PREFIX = "/registry/ranges/servicenodeports/"
POD_CIDR_PREFIX = "/registry/ranges/podcidrs/"
DEFAULT_CLUSTER_CIDR = "127.64.0.0/12"
DEFAULT_NODE_CIDR_MASK = 24
LOOPBACK = ipaddress.IPv4Network("127.0.0.0/8")
_NODE_PORT_TYPES = ("NodePort", "LoadBalancer")
_NODE = kinds.by_kind("Node").message


class ClaimTaken(Exception):
    """An allocation key another object holds: ``key``, held by ``owner`` (a store key)."""

    def __init__(self, key: bytes, owner: bytes) -> None:
        super().__init__(f"{key.decode()} is held by {owner.decode()}")
        self.key = key
        self.owner = owner


def parse_range(cidr: str) -> ipaddress.IPv4Network:
    """A service IP range; ``ValueError`` unless a network inside 127.0.0.0/8 with at
    least one usable address (every 127.x address reaches loopback without root)."""
    try:
        network = ipaddress.ip_network(cidr, strict=True)
    except ValueError as exc:
        raise ValueError(f"invalid service IP range {cidr!r}: {exc}") from None
    if not isinstance(network, ipaddress.IPv4Network) or not network.subnet_of(LOOPBACK):
        raise ValueError(f"the service IP range {cidr} must lie inside {LOOPBACK}")
    if network.num_addresses < 4:
        raise ValueError(f"the service IP range {cidr} is too small (at least a /30)")
    return network


def ip_key(ip: str) -> bytes:
    return f"{IP_PREFIX}{ip}".encode()


def port_key(port: int) -> bytes:
    return f"{PORT_PREFIX}{port}".encode()


def cidr_key(cidr: str) -> bytes:
    return (POD_CIDR_PREFIX + cidr.replace("/", "-")).encode()


def _is_ip(value: str) -> bool:
    try:
        ipaddress.IPv4Address(value)
    except ValueError:
        return False
    return True


def _holds_ip(spec: Any) -> bool:
    return spec.type != "ExternalName" and spec.cluster_ip != "None"


def claims(info: KindInfo, obj: Any) -> frozenset[bytes]:
    """The allocation keys ``obj`` holds (a Service's clusterIP and nodePorts, a Node's
    podCIDR; none for other kinds)."""
    if info.kind == "Node":
        cidr = obj.spec.pod_cidr
        return frozenset({cidr_key(cidr)}) if cidr else frozenset()
    if info.kind != "Service":
        return frozenset()
    spec = obj.spec
    keys = set()
    if _holds_ip(spec) and _is_ip(spec.cluster_ip):
        keys.add(ip_key(spec.cluster_ip))
    if spec.type in _NODE_PORT_TYPES:
        keys.update(port_key(p.node_port) for p in spec.ports if p.node_port)
    return frozenset(keys)


def keep_allocated(new: Any, old: Any) -> None:
    """On update: what ``new`` (a Service or Node) leaves out of ``old``'s allocation it
    keeps.

    Runs before defaults and validation, so an omitted type means ClusterIP."""
    a, b = new.spec, old.spec
    if isinstance(new, _NODE):
        if not a.pod_cidr and b.pod_cidr:
            a.pod_cidr = b.pod_cidr
            del a.pod_cidrs[:]
            a.pod_cidrs.extend(b.pod_cidrs)
        return
    new_type = a.type or "ClusterIP"
    if new_type != "ExternalName" and not a.cluster_ip and b.cluster_ip:
        a.cluster_ip = b.cluster_ip
        del a.cluster_ips[:]
        a.cluster_ips.extend(b.cluster_ips)
    if new_type == "ExternalName" and a.cluster_ip == b.cluster_ip:
        a.cluster_ip = ""
        del a.cluster_ips[:]
    old_ports = {(p.port, p.protocol or "TCP"): p.node_port for p in b.ports if p.node_port}
    for port in a.ports:
        held = old_ports.get((port.port, port.protocol or "TCP"), 0)
        if new_type in _NODE_PORT_TYPES and not port.node_port:
            port.node_port = held
        elif new_type not in _NODE_PORT_TYPES and port.node_port == held:
            port.node_port = 0


@dataclass
class Allocator:
    """Fills in a Service's clusterIP and nodePorts (see the module doc).

    ``taken`` is what this server last saw allocated; it is a hint for drawing, never
    trusted: the store's transaction decides.
    """

    client: Client
    service_ips: ipaddress.IPv4Network = field(
        default_factory=lambda: parse_range(DEFAULT_SERVICE_CLUSTER_IP_RANGE)
    )
    node_ports: tuple[int, int] = NODE_PORT_RANGE
    rng: random.Random = field(default_factory=random.Random)
    taken: set[bytes] = field(default_factory=set)
    cluster_cidr: ipaddress.IPv4Network = field(
        default_factory=lambda: parse_range(DEFAULT_CLUSTER_CIDR)
    )
    node_cidr_mask: int = DEFAULT_NODE_CIDR_MASK

    def assign_node(self, node: Any, *, old: Any | None = None) -> None:
        """Give ``node`` a podCIDR if it has none (``old``'s, else the first free one)."""
        spec = node.spec
        if not spec.pod_cidr and spec.pod_cidrs:
            spec.pod_cidr = spec.pod_cidrs[0]
        if not spec.pod_cidr:
            if old is not None and old.spec.pod_cidr:
                spec.pod_cidr = old.spec.pod_cidr
            else:
                spec.pod_cidr = self._draw_cidr()
        if not spec.pod_cidrs:
            spec.pod_cidrs.append(spec.pod_cidr)

    def _draw_cidr(self) -> str:
        """A free subnet, drawn at random like a clusterIP: nodes registering together
        (a whole cluster starting) then rarely race for the same one."""
        base = int(self.cluster_cidr.network_address)
        step = 1 << (32 - self.node_cidr_mask)
        count = self.cluster_cidr.num_addresses // step
        start = self.rng.randrange(count)
        for i in range(count):
            subnet = ipaddress.IPv4Network(
                (base + ((start + i) % count) * step, self.node_cidr_mask)
            )
            if cidr_key(str(subnet)) not in self.taken:
                return str(subnet)
        raise rpc.ResourceExhausted(
            f"failed to allocate a podCIDR: cluster CIDR {self.cluster_cidr} has no free "
            f"/{self.node_cidr_mask} left; delete some Nodes or widen --cluster-cidr"
        )

    def assign(self, svc: Any, *, old: Any | None = None) -> None:
        """Choose what ``svc`` (defaulted and valid) still needs; refuse requested values
        outside the ranges. Values ``old`` (the stored Service) holds are not checked."""
        spec = svc.spec
        held = claims(kinds.by_kind("Service"), old) if old is not None else frozenset()
        if _holds_ip(spec):
            if not spec.cluster_ip and spec.cluster_ips:
                spec.cluster_ip = spec.cluster_ips[0]
            if not spec.cluster_ip:
                spec.cluster_ip = self._draw_ip()
            elif ip_key(spec.cluster_ip) not in held:
                self._check_ip(svc, spec.cluster_ip)
        if spec.cluster_ip and not spec.cluster_ips:
            spec.cluster_ips.append(spec.cluster_ip)
        if spec.type in _NODE_PORT_TYPES:
            used = {p.node_port for p in spec.ports if p.node_port}
            for port in spec.ports:
                if not port.node_port:
                    port.node_port = self._draw_port(used)
                    used.add(port.node_port)

    def _check_ip(self, svc: Any, ip: str) -> None:
        net = self.service_ips
        address = ipaddress.IPv4Address(ip) if _is_ip(ip) else None
        if address not in net or address in (net.network_address, net.broadcast_address):
            raise admission.invalid(
                svc,
                [
                    f'spec.clusterIP: Invalid value: "{ip}": provided IP is not in the '
                    f"valid range. The range of valid IPs is {self.service_ips}"
                ],
            )

    def _draw_ip(self) -> str:
        net = self.service_ips
        size = net.num_addresses - 2  # no network or broadcast address
        start = self.rng.randrange(size)
        for i in range(size):
            ip = str(net.network_address + 1 + (start + i) % size)
            if ip_key(ip) not in self.taken:
                return ip
        raise rpc.ResourceExhausted(
            f"failed to allocate a serviceIP: range {net} is full; delete some Services"
        )

    def _draw_port(self, used: set[int]) -> int:
        low, high = self.node_ports
        size = high - low + 1
        start = self.rng.randrange(size)
        for i in range(size):
            port = low + (start + i) % size
            if port not in used and port_key(port) not in self.taken:
                return port
        raise rpc.ResourceExhausted(
            f"failed to allocate a nodePort: range {low}-{high} is full; delete some Services"
        )

    def refused(self, requested: Any, taken: ClaimTaken) -> rpc.RpcError | None:
        """The error for a write that lost ``taken``: the user's own request (``requested``
        asked for the value) is refused; a drawn value is redrawn (None)."""
        self.taken.add(taken.key)
        spec = requested.spec
        if isinstance(requested, _NODE):
            if spec.pod_cidr and taken.key == cidr_key(spec.pod_cidr):
                return admission.invalid(
                    requested,
                    [
                        f'spec.podCIDR: Invalid value: "{spec.pod_cidr}": provided CIDR is already allocated'
                    ],
                )
            return None
        if taken.key == ip_key(spec.cluster_ip) or taken.key in {
            ip_key(ip) for ip in spec.cluster_ips
        }:
            return admission.invalid(
                requested,
                [
                    f'spec.clusterIP: Invalid value: "{spec.cluster_ip}": '
                    f"provided IP is already allocated"
                ],
            )
        for i, port in enumerate(spec.ports):
            if port.node_port and taken.key == port_key(port.node_port):
                return admission.invalid(
                    requested,
                    [
                        f"spec.ports[{i}].nodePort: Invalid value: {port.node_port}: "
                        f"provided port is already allocated"
                    ],
                )
        return None

    async def refresh(self) -> None:
        """Re-read every allocated key (after a draw lost a race)."""
        taken: set[bytes] = set()
        for prefix in (IP_PREFIX.encode(), PORT_PREFIX.encode(), POD_CIDR_PREFIX.encode()):
            result = await self.client.get(prefix, range_end=prefix_end(prefix), keys_only=True)
            taken.update(kv.key for kv in result.kvs)
        self.taken = taken
