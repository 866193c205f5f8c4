"""The launcher: a whole local cluster as supervised OS processes under one directory.

``raftsman up`` plans a cluster (names, free loopback ports), writes the plan into the
cluster's state file, starts a detached supervisor process (``raftsman supervise``) and
waits until the cluster is ready. The supervisor owns the component processes: it starts
them, restarts a crashed one with backoff (:mod:`actors.runtime`), records pids, states and
restart counts in the state file, and stops them all on SIGTERM. ``raftsman down`` sends
that SIGTERM; ``raftsman status`` reads the state file and asks each store who leads.

Modules, one topic each:

* :mod:`.layout` -- where things live in a cluster directory
* :mod:`.roles` -- the per-role table: how to run, restart and stop a component
* :mod:`.state` -- the JSON state file (atomic writes) and the plan it starts from
* :mod:`.pids` -- is a recorded pid still that process; signalling process groups
* :mod:`.readiness` -- Maintenance.Status over plain sync gRPC: up, leader, ready
* :mod:`.clientconfig` -- the kubeconfig-like client config file
* :mod:`.supervisor` -- the supervisor program (trio)
* :mod:`.commands` -- the click commands ``up``, ``down``, ``status``, ``supervise``
"""
