"""The node agent: Raftsman's kubelet and service proxy (``raftsman node-agent``).

A node agent makes the pods bound to its node run and keeps them healthy; see
docs/node-agent.md. Its packages, from the API server down to processes:

* :mod:`node_agent.agent` -- the kubelet proper: Node registration and Lease, one worker
  per pod (restart policy, backoff, probes, hooks, deletion, re-adoption), status
  reports, the agent's gRPC API (logs, exec, stats), many simulated nodes in one process;
* :mod:`node_agent.pods` -- from a Pod's spec to a runtime's container spec: images, env,
  ``$(VAR)`` expansion, command, volumes, limits;
* :mod:`node_agent.runtime` -- container runtimes behind one interface: ``process``
  (process groups under per-container shims that outlive the agent) and ``sim``;
* :mod:`node_agent.network` -- pod IPs from the node's podCIDR inside 127.0.0.0/8;
* :mod:`node_agent.proxy` -- the userspace TCP proxy for Services.
"""
