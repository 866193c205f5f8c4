"""The Deployment controller: declarative rollouts of a pod template over ReplicaSets.

* :mod:`.hashing` -- the pod-template hash that names ReplicaSets (``web-7d4b9c8f6d``)
* :mod:`.rollout` -- pure rollout arithmetic: maxSurge/maxUnavailable, the next sizes of
  the new and old ReplicaSets, proportional scaling, revisions
* :mod:`.conditions` -- Available / Progressing / ReplicaFailure and the progress deadline
* :mod:`.sync` -- :class:`DeploymentController`: claim ReplicaSets, roll, scale, status
* :mod:`.rollback` -- :func:`rollback_template`, what ``rollout undo`` calls

``new_controller(ctx)`` is the controller manager's entry point.
"""

from .hashing import POD_TEMPLATE_HASH_LABEL, compute_hash
from .rollback import RollbackError, RollbackResult, rollback_template
from .sync import DeploymentController, new_controller

__all__ = [
    "POD_TEMPLATE_HASH_LABEL",
    "DeploymentController",
    "RollbackError",
    "RollbackResult",
    "compute_hash",
    "new_controller",
    "rollback_template",
]
