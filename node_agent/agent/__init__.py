"""The node agent (Raftsman's kubelet): a node's pods, turned into running containers.

Modules (each documents its own guarantees):

* :mod:`.agent` -- :class:`~.agent.NodeAgent` and :func:`~.agent.run_node_agent`: the wiring;
* :mod:`.sim` -- many simulated nodes in one process (:func:`~.sim.run_sim_nodes`);
* :mod:`.node`, :mod:`.lease`, :mod:`.hostinfo` -- the Node object, its Lease, host facts;
* :mod:`.pods` -- the pod manager: pod events to workers, re-adoption, orphans;
* :mod:`.podworker` -- one task per pod converging its containers on its spec, with
  :mod:`.sequencing` (which container to start, restart or leave: pure policy),
  :mod:`.attempts` (following a running attempt with its hooks and probes) and
  :mod:`.termination` (grace periods, stopping, clean-up, deleting the Pod);
* :mod:`.eviction` -- emptyDir sizeLimit measured and enforced by evicting the pod;
* :mod:`.containers`, :mod:`.podstatus` -- container and pod status as Kubernetes shows it;
* :mod:`.containerspec` -- a container of a pod to the runtime's spec;
* :mod:`.backoff` -- CrashLoopBackOff; :mod:`.status` -- coalesced status writes;
* :mod:`.context` -- the seams between workers and the node's services;
* :mod:`.probes`, :mod:`.hooks` -- probes and lifecycle hooks; :mod:`.lookup`,
  :mod:`.service` -- the agent's gRPC API (logs, exec, stats).

The package imports nothing itself; import the module you need.
"""
