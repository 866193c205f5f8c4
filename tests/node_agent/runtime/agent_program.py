"""A stand-in node agent for adoption tests: starts one container, prints its id, idles.

``python -m tests.node_agent.runtime.agent_program STATE_DIR ROOT_DIR LOG_PATH ARGV...``
"""

from __future__ import annotations

import sys
from pathlib import Path

import trio

from node_agent.runtime.base import ContainerSpec
from node_agent.runtime.process import ProcessRuntime


async def main(args: list[str]) -> None:
    state_dir, root_dir, log_path, *argv = args
    runtime = ProcessRuntime(state_dir=Path(state_dir))
    container_id = await runtime.start(
        ContainerSpec(
            pod_uid="uid-agent",
            pod_namespace="default",
            pod_name="adopted",
            container_name="main",
            attempt=0,
            argv=tuple(argv),
            root_dir=Path(root_dir),
            log_path=Path(log_path),
            env={"PATH": "/usr/bin:/bin"},
            labels={"started-by": "agent-program"},
        )
    )
    print(f"started {container_id}", flush=True)
    await trio.sleep_forever()


if __name__ == "__main__":
    trio.run(main, sys.argv[1:])
