"""Every async test runs with the one gRPC loop already open."""

from __future__ import annotations

import trio

from proto import rpc


async def test_loop_is_open_before_the_test_body():
    token = trio.lowlevel.current_trio_token()
    assert token in rpc._RUN_LOOPS
