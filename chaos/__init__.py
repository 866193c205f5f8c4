"""The chaos harness: inject faults into a local cluster and check that it heals.

* :mod:`chaos.cluster` -- a cluster started by ``raftsman up``, its processes and leaders;
  targets resolved by role and verified by pid start time before any signal.
* :mod:`chaos.faults` -- typed faults (kill, terminate, pause, restart, partition, delay,
  disk), each with its way back.
* :mod:`chaos.steady` -- steady-state checks: what "recovered" means.
* :mod:`chaos.workload` -- concurrent store clients that record what they saw.
* :mod:`chaos.linearizability` -- a Wing-Gong/Lowe checker for their history, per key.
* :mod:`chaos.invariants` -- linearizable, no lost writes, watch continuity, no pod on two
  nodes, no container left over, Deployments back to their replicas.
* :mod:`chaos.experiment` -- experiment files and the runner; :mod:`chaos.report` -- the
  report.

``raftsman chaos run FILE`` and ``raftsman chaos soak`` (:mod:`cli.chaos`) drive them;
docs/chaos.md is the user's guide.
"""
