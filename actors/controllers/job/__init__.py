"""The Job controller: run pods until enough of them succeed.

A Job asks for ``completions`` successful pods (default 1; unset with ``parallelism``
set means "until any one succeeds, then let the others finish"), at most
``parallelism`` at a time (default 1). The controller (:class:`JobController`, machinery
in :mod:`.controller`) does what Kubernetes' job controller does:

* **Pods** are made from ``spec.template`` with a controller reference, the Job's
  generated labels (``batch.kubernetes.io/controller-uid``, ``job-name``) and the
  tracking finalizer; created in slow-start batches with expectations, so a lagging
  cache never causes an extra pod. Surplus pods (``parallelism`` lowered) are deleted.
* **Failures.** With ``restartPolicy: Never`` a failed pod counts in ``status.failed``
  and is replaced after an exponential delay (10 s, 20 s, ... capped at 6 min;
  :mod:`.backoff`). When ``failed`` exceeds ``backoffLimit`` (default 6) the Job fails
  with reason ``BackoffLimitExceeded``. With ``OnFailure`` the node agent restarts the
  containers in place and the *restarts* of running pods count against the same limit,
  as in Kubernetes. A pod deleted before it succeeded counts as failed.
* **Deadline.** ``activeDeadlineSeconds`` after ``startTime`` the Job fails with
  ``DeadlineExceeded``; its active pods are deleted.
* **Conditions.** ``SuccessCriteriaMet`` / ``FailureTarget`` as soon as the outcome is
  known, then ``Complete`` (with ``completionTime``) / ``Failed`` once every pod is
  counted and none is terminating; Events ``Completed``, ``BackoffLimitExceeded``,
  ``DeadlineExceeded``, ``SuccessfulCreate``, ``SuccessfulDelete``.
* **Status**: ``active``, ``ready``, ``terminating``, ``succeeded``, ``failed``,
  ``startTime``, ``completionTime``, ``completedIndexes``, ``uncountedTerminatedPods``.
* **Indexed** Jobs (``completionMode: Indexed``) give each pod an index 0..completions-1
  (annotation and label ``batch.kubernetes.io/job-completion-index``, environment
  variable ``JOB_COMPLETION_INDEX`` set to the value, hostname ``<job>-<index>``); the Job
  is complete when every index has a succeeded pod (:mod:`.indexes`).
* **suspend: true** deletes the active pods (not counted as failures) and sets
  ``Suspended``; resuming restarts the ``activeDeadlineSeconds`` clock.
* **ttlSecondsAfterFinished**: that long after ``Complete``/``Failed`` the Job is deleted
  with background propagation (the garbage collector removes its pods).

Counting is exact across controller restarts: see "Tracking" in :mod:`.controller`.
Pods are found by their controller reference; orphans matching the selector are not
adopted (Kubernetes would adopt them, which only matters with ``manualSelector``).
"""

from .backoff import DEFAULT_POD_FAILURE_BACKOFF, PodFailureBackoff, finish_time
from .controller import (
    JOB_COMPLETION_INDEX_ENV,
    TRACKING_FINALIZER,
    JobController,
    is_finished,
    new_controller,
    past_backoff_limit_on_failure,
)
from .indexes import COMPLETION_INDEX_KEY, format_indexes, parse_indexes

__all__ = [
    "COMPLETION_INDEX_KEY",
    "DEFAULT_POD_FAILURE_BACKOFF",
    "JOB_COMPLETION_INDEX_ENV",
    "TRACKING_FINALIZER",
    "JobController",
    "PodFailureBackoff",
    "finish_time",
    "format_indexes",
    "is_finished",
    "new_controller",
    "parse_indexes",
    "past_backoff_limit_on_failure",
]
