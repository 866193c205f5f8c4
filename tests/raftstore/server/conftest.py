from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.raftstore import StoreCluster, raftstore_cluster


@pytest.fixture
def store3(tmp_path: Path) -> Iterator[StoreCluster]:
    """A fresh 3-member raftstore for one test, which may kill and restart members."""
    with raftstore_cluster(tmp_path, size=3) as cluster:
        yield cluster


@pytest.fixture(scope="module")
def store1(tmp_path_factory: pytest.TempPathFactory) -> Iterator[StoreCluster]:
    """One raftstore member shared by a module's tests (use distinct keys per test)."""
    with raftstore_cluster(tmp_path_factory.mktemp("raftstore1"), size=1) as cluster:
        yield cluster
