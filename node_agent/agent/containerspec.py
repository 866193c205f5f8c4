"""From a container of a Pod to the runtime's ContainerSpec, in the kubelet's order.

The kubelet creates a container in steps whose failures users know by name; the first
step that fails decides the waiting reason:

1. the image (``ErrImagePull``): the node's image catalog must know it, unless the
   container gives its own command (:mod:`node_agent.pods.images`);
2. the configuration (``CreateContainerConfigError``): env from values, ConfigMaps,
   Secrets and the downward API (:mod:`node_agent.pods.env`), limits
   (:mod:`node_agent.pods.limits`);
3. the command (``CreateContainerError``): image defaults, command, args and ``$(VAR)``
   expansion (:mod:`node_agent.pods.command`);
4. the mounts (``CreateContainerConfigError`` in Kubernetes for a bad subPath; here the
   volume's ``FailedMount``): the pod's volumes, already set up, as runtime mounts.

Every failure is a :class:`~node_agent.pods.errors.PodSetupError` carrying its reason;
nothing is started and nothing is left behind, so the caller simply tries again later.

Layout on the node (``data_dir`` of the agent): logs go to
``<logs_dir>/<namespace>_<pod>_<uid>/<container>/<attempt>.log``, a container's root to
``<pods_dir>/<uid>/containers/<name>/root`` (:class:`~node_agent.pods.volumes.PodVolumes`).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from node_agent.pods.command import resolve_argv
from node_agent.pods.env import container_env
from node_agent.pods.images import DEFAULT_PATH, ImageCatalog
from node_agent.pods.limits import container_limits
from node_agent.pods.sources import ObjectSource
from node_agent.pods.volumes import container_mounts
from node_agent.runtime.base import ContainerSpec
from node_agent.runtime.logs import container_log_path
from proto.k8s import core_pb2

__all__ = ["BuiltSpec", "LABEL_KIND", "LABEL_NODE", "build_container_spec"]

LABEL_NODE = "raftsman.io/node"
LABEL_KIND = "raftsman.io/container-kind"
"""``init`` or ``app``: which list of the pod spec the container comes from."""


@dataclass(frozen=True)
class BuiltSpec:
    spec: ContainerSpec
    warnings: tuple[str, ...] = ()


async def build_container_spec(
    pod: core_pb2.Pod,
    container: core_pb2.Container,
    *,
    init: bool,
    attempt: int,
    node_name: str,
    catalog: ImageCatalog,
    sources: ObjectSource,
    volume_paths: Mapping[str, Path],
    root_dir: Path,
    logs_dir: Path,
    pod_ip: str,
    host_ip: str,
    node_allocatable: Mapping[str, str] | None = None,
) -> BuiltSpec:
    """The runtime spec of ``container`` (attempt ``attempt``) of ``pod``.

    Raises a :class:`~node_agent.pods.errors.PodSetupError` subclass (module docstring).
    """
    image = catalog.lookup(container.image)
    if image is None and not container.command:
        catalog.resolve(container.image)  # raises ImageNotFoundError with the remedy
    env = await container_env(
        pod,
        container,
        sources=sources,
        pod_ip=pod_ip,
        host_ip=host_ip,
        image_env=dict(image.env) if image is not None else {"PATH": DEFAULT_PATH},
        node_allocatable=node_allocatable,
    )
    limits = container_limits(container)
    argv = resolve_argv(catalog, container.image, container.command, container.args, env.variables)
    mounts = container_mounts(container, volume_paths)
    meta = pod.metadata
    working_dir = container.working_dir or (image.working_dir if image is not None else None)
    spec = ContainerSpec(
        pod_uid=meta.uid,
        pod_namespace=meta.namespace,
        pod_name=meta.name,
        container_name=container.name,
        attempt=attempt,
        argv=argv,
        root_dir=root_dir,
        log_path=container_log_path(
            logs_dir, meta.namespace, meta.name, meta.uid, container.name, attempt
        ),
        env=env.environ,
        working_dir=working_dir or None,
        mounts=mounts,
        limits=limits,
        image=container.image,
        labels={LABEL_NODE: node_name, LABEL_KIND: "init" if init else "app"},
    )
    return BuiltSpec(spec, env.warnings)
