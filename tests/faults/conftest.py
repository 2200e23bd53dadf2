"""Fixtures of the fault-injection suite (the harness itself is ``service.py``)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from .netns import Partitionable, VethPostgres, partitionable, veth_cluster
from .service import FaultService


@pytest.fixture
def faulty(database_url: str, tmp_path: Path, backend: str) -> Iterator[FaultService]:
    """The service's processes on a clean database, ready to be hurt."""
    service = FaultService(database_url, tmp_path, backend)
    yield service
    service.close()


@pytest.fixture
def network() -> Iterator[Partitionable]:
    """A network namespace joined to the host by a veth pair (root and ``ip`` needed)."""
    with partitionable() as net:
        yield net


@pytest.fixture
def veth_postgres(network: Partitionable) -> Iterator[VethPostgres]:
    """A private PostgreSQL cluster on the host's end of ``network``."""
    with veth_cluster(network) as server:
        yield server
