"""The node agent's service proxy: a userspace TCP load balancer for Services.

Every Service gets a ClusterIP from 127.96.0.0/16 and every pod an IP from its node's
/24 of 127.64.0.0/12; Linux answers all of 127.0.0.0/8 on loopback, so without root and
without iptables a process can *listen on* a ClusterIP and *connect to* a pod IP. The
proxy does exactly that.

How traffic flows
    ::

        client ──connect──▶ ClusterIP:port (127.96.x.y:p)
                             │  listener of this node agent's proxy
                             │  (SO_REUSEPORT: the kernel spreads connections over the
                             │   proxies of every node agent on this host)
                             ▼
                 Balancer of the Service port: round robin over ready endpoints,
                 or sticky per client IP (sessionAffinity: ClientIP)
                             │  connect; on refusal or timeout try the next endpoint
                             ▼
                 pod IP:targetPort (127.64.n.m:p) ◀── bytes copied both ways ──▶ client

    A NodePort Service is also listened on at ``node_address:nodePort``. The target port
    comes from the Endpoints object (the endpoints controller has resolved named
    targetPorts to numbers): the EndpointPort with the Service port's name.

Guarantees
    * **Level-triggered.** :meth:`ServiceProxy.update` takes the full current Services and
      Endpoints and converges before it returns.
    * **Refused when there is nothing behind.** A Service port without ready endpoints
      is not listened on, so a connection to it fails at once with ECONNREFUSED instead
      of being accepted and closed; the listener opens again when endpoints appear. (This
      is also why sharing a port with other proxies works: the kernel may hand a
      connection to *any* listener, so only a proxy able to forward may listen.)
    * **Live endpoint changes, unbroken connections.** New connections use the endpoints
      of the latest update; connections already open are never cut by an update, even
      when their endpoint or Service went away (as in kube-proxy's userspace mode).
      Stopping the proxy cuts them all.
    * **Only ready endpoints** (``addresses``, never ``notReadyAddresses``). An endpoint
      that refuses, or does not answer within ``connect_timeout``, is skipped and the
      next one tried, up to all of them; if none answers the client's connection is
      reset.
    * **One bad port never stops the rest.** A port the proxy cannot listen on (below
      ``net.ipv4.ip_unprivileged_port_start`` without root, already in use, address not
      local) is logged once with the remedy, reported by
      :meth:`ServiceProxy.port_status`, retried periodically; every other port is served.
    * **Bounded memory per connection**: one chunk in flight per direction; half-closes
      are propagated (see :mod:`.relay`).
    * Every listener and connection is a task in the nursery of
      :meth:`ServiceProxy.run`; nothing outlives it.

What differs from kube-proxy
    * No iptables/IPVS and no root: the proxy listens on the ClusterIP itself (kube-proxy's
      old userspace mode listened on a random port and redirected to it with iptables).
    * TCP only: UDP and SCTP ports are skipped with a warning and status ``Skipped``.
    * Endpoints see the proxy's address as the client address, not the real client's
      (as in the userspace mode); sessionAffinity uses the real client IP.
    * NodePorts listen on the one ``node_address`` given, not on every local address.
    * ``externalIPs``, load balancer IPs, ``externalTrafficPolicy: Local``,
      ``internalTrafficPolicy`` and topology hints are not implemented.
    * The ClientIP affinity timeout is one setting of the proxy (default 10800 s, as
      Kubernetes'): the Service schema has no ``sessionAffinityConfig`` yet.
    * Several node agents on one host each run a proxy on the same ClusterIP:port; round
      robin is per proxy, and ClientIP affinity stays consistent across them because a
      new client is assigned by hashing its IP (see :mod:`.balancer`). SO_REUSEPORT
      sharing needs every agent to run as the same user.
"""

from node_agent.proxy.balancer import DEFAULT_AFFINITY_TIMEOUT, Balancer
from node_agent.proxy.listener import BindFunction, ListenError, ListenFailure
from node_agent.proxy.proxy import PortState, PortStatus, ServiceCounters, ServiceProxy
from node_agent.proxy.table import (
    Backend,
    Frontend,
    FrontendKind,
    PortPlan,
    ServicePortName,
    build_plan,
)

__all__ = [
    "DEFAULT_AFFINITY_TIMEOUT",
    "Backend",
    "Balancer",
    "BindFunction",
    "Frontend",
    "FrontendKind",
    "ListenError",
    "ListenFailure",
    "PortPlan",
    "PortState",
    "PortStatus",
    "ServiceCounters",
    "ServicePortName",
    "ServiceProxy",
    "build_plan",
]
