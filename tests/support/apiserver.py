"""A real API server as a process (``raftsman apiserver``), for integration tests.

``with apiserver_process(store_endpoints, log_dir) as server:`` starts ``python -m cli.main
apiserver`` on a free loopback port in its own process group, waits until it answers
gRPC health checks, and stops it (by process group) when the block ends. ``server.kill()``
SIGKILLs it mid-test.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

from tests.support import processes
from tests.support.ports import LOOPBACK, free_port

START_TIMEOUT = 30.0


@dataclass
class ApiServerProcess:
    process: processes.Process
    port: int

    @property
    def address(self) -> str:
        return f"{LOOPBACK}:{self.port}"

    def kill(self) -> None:
        self.process.kill()

    def healthy(self) -> bool:
        with grpc.insecure_channel(self.address) as channel:
            try:
                reply = health_pb2_grpc.HealthStub(channel).Check(
                    health_pb2.HealthCheckRequest(), timeout=1
                )
            except grpc.RpcError:
                return False
            return bool(reply.status == health_pb2.HealthCheckResponse.SERVING)


@contextmanager
def apiserver_process(
    store_endpoints: Sequence[str], log_dir: Path, *, extra_args: Sequence[str] = ()
) -> Iterator[ApiServerProcess]:
    port = free_port()
    argv = [
        sys.executable,
        "-m",
        "cli.main",
        "apiserver",
        "--etcd-servers=" + ",".join(f"http://{e}" for e in store_endpoints),
        f"--listen={LOOPBACK}:{port}",
        *extra_args,
    ]
    with processes.running(argv, log_path=log_dir / f"apiserver-{port}.log") as process:
        server = ApiServerProcess(process=process, port=port)

        def up() -> bool:
            if not process.alive:
                raise RuntimeError(f"apiserver exited early:\n{process.log_text()}")
            return server.healthy()

        processes.wait_for(up, timeout=START_TIMEOUT, message=f"apiserver on {server.address}")
        yield server
