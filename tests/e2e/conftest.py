"""Real processes for end-to-end tests: the API and workers on a database of their own."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.processes import Processes


@pytest.fixture
def service(migrated_database_url: str, tmp_path: Path) -> Iterator[Processes]:
    """The service's processes for one test; every one still running is stopped after it."""
    processes = Processes(migrated_database_url, tmp_path)
    yield processes
    processes.stop_all()
