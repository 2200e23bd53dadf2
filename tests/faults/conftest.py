"""Fixtures of the fault-injection suite (the harness itself is ``service.py``)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from .service import FaultService


@pytest.fixture
def faulty(database_url: str, tmp_path: Path, backend: str) -> Iterator[FaultService]:
    """The service's processes on a clean database, ready to be hurt."""
    service = FaultService(database_url, tmp_path, backend)
    yield service
    service.close()
