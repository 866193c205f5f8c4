"""Why a container of a pod cannot be created: typed errors carrying Kubernetes' reasons.

The pod building blocks (images, command, env, volumes) fail with one of these; the node
agent reports ``reason`` as the container's waiting reason (or, for volumes, as the
pod's event) and ``str(error)`` as the message, and retries when the inputs change. The
messages are the ones Kubernetes users know (``configmap "game-demo" not found``).
"""

from __future__ import annotations

from typing import ClassVar

__all__ = ["CommandError", "ConfigError", "ImageNotFoundError", "PodSetupError", "VolumeError"]


class PodSetupError(Exception):
    """Base: a container cannot be created as specified; ``reason`` is Kubernetes' word."""

    reason: ClassVar[str] = "CreateContainerError"


class ImageNotFoundError(PodSetupError):
    """The image is not in the node's image catalog and the container gives no command."""

    reason = "ErrImagePull"


class ConfigError(PodSetupError):
    """A ConfigMap, Secret, key or field the container's env refers to is missing or bad."""

    reason = "CreateContainerConfigError"


class CommandError(PodSetupError):
    """No command to run (neither the container nor its image gives one)."""

    reason = "CreateContainerError"


class VolumeError(PodSetupError):
    """A volume cannot be set up; the message is the kubelet's ``MountVolume.SetUp failed``."""

    reason = "FailedMount"
