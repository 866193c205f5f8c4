"""Container lifecycle hooks: postStart and preStop handlers.

A container's ``lifecycle.postStart`` runs right after the container starts, and
``lifecycle.preStop`` right before the agent sends it SIGTERM; either is one handler:
``exec`` a command in the container, ``httpGet`` one of its URLs, or ``sleep``. The pod
worker calls :func:`run_handler` and acts on the outcome (a failed postStart kills the
container; a failed preStop is recorded and the stop goes on).

Kubernetes' behaviour kept here (pkg/kubelet/lifecycle/handlers.go):
    * exec fails on a non-zero exit code; its output is part of the message.
    * httpGet fails only when no HTTP response arrives (connection refused, reset,
      timeout); any status code, even 500, is a completed hook. The port may be a name
      and defaults to 80 when unset; the host defaults to the pod IP; redirects to the
      same host are followed.
    * sleep waits ``seconds``; cut off by the timeout (the grace period of a stopping
      pod) it fails.
    * tcpSocket is accepted by the API for compatibility and always fails when run.

The caller gives the ``timeout`` (for preStop: what is left of the grace period); no
handler outlives it.
"""

from __future__ import annotations

import shlex

import trio

from node_agent.agent.probes import (
    ActionError,
    HttpError,
    ProbeContext,
    http_get,
    http_target,
)
from node_agent.runtime.base import ContainerRuntimeError
from proto.k8s import core_pb2

__all__ = ["run_handler"]

_MAX_OUTPUT = 10 * 1024


async def run_handler(
    handler: core_pb2.LifecycleHandler, ctx: ProbeContext, *, timeout: float
) -> tuple[bool, str]:
    """Run ``handler`` within ``timeout`` seconds: (succeeded, message).

    The message says what ran and, on failure, why it failed; it never raises for a bad
    handler or an unreachable container.
    """
    if handler.HasField("exec"):
        return await _exec(handler.exec, ctx, timeout)
    if handler.HasField("http_get"):
        return await _http(handler.http_get, ctx, timeout)
    if handler.HasField("sleep"):
        return await _sleep(handler.sleep.seconds, timeout)
    if handler.HasField("tcp_socket"):
        return (
            False,
            "tcpSocket is not supported as a lifecycle handler; use exec, httpGet or sleep",
        )
    return False, "the lifecycle handler has no action: set exec, httpGet or sleep"


async def _exec(action: core_pb2.ExecAction, ctx: ProbeContext, timeout: float) -> tuple[bool, str]:
    argv = list(action.command)
    if not argv:
        return False, "Exec lifecycle hook failed - error: exec.command is empty"
    text = shlex.join(argv)
    try:
        with trio.fail_after(timeout):
            code, output = await ctx.exec(argv, timeout)
    except (trio.TooSlowError, TimeoutError):
        return False, f"Exec lifecycle hook ({text}) did not finish within {timeout:g}s"
    except ContainerRuntimeError as exc:
        return False, f"Exec lifecycle hook ({text}) failed - error: {exc}"
    message = output[:_MAX_OUTPUT].decode(errors="replace").strip()
    if code == 0:
        return True, message
    return False, (
        f"Exec lifecycle hook ({text}) failed - error: command exited with code {code}, "
        f"message: {message!r}"
    )


async def _http(
    action: core_pb2.HTTPGetAction, ctx: ProbeContext, timeout: float
) -> tuple[bool, str]:
    kind = action.port.WhichOneof("value")
    if kind is None or (kind == "str_val" and not action.port.str_val):
        defaulted = core_pb2.HTTPGetAction()
        defaulted.CopyFrom(action)
        defaulted.port.int_val = 80
        action = defaulted
    try:
        target = http_target(action, ctx, field="httpGet")
    except ActionError as exc:
        return False, f"HTTP lifecycle hook failed - error: {exc}"
    try:
        with trio.fail_after(timeout):
            response = await http_get(target)
    except trio.TooSlowError:
        return False, (
            f'HTTP lifecycle hook ({target.path}) failed - error: Get "{target.url}": '
            f"no response within {timeout:g}s"
        )
    except HttpError as exc:
        return False, (
            f'HTTP lifecycle hook ({target.path}) failed - error: Get "{target.url}": {exc}'
        )
    return True, f"GET {response.url}: {response.status} {response.reason}".rstrip()


async def _sleep(seconds: int, timeout: float) -> tuple[bool, str]:
    if seconds < 0:
        return False, f"sleep.seconds must not be negative, got {seconds}"
    if seconds > timeout:
        await trio.sleep(timeout)
        return False, (
            f"Sleep lifecycle hook ({seconds}s) was cut off after {timeout:g}s "
            "(the container is being stopped)"
        )
    await trio.sleep(seconds)
    return True, f"slept {seconds}s"
