"""Real processes for end-to-end tests: the API and workers on a database of their own."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.ports import free_port  # noqa: F401 - old import path, kept for merges
from tests.support.processes import REPO, START_TIMEOUT_SECONDS, Processes  # noqa: F401
from tests.support.settings import TERMINAL  # noqa: F401 - old import path, kept for merges


@pytest.fixture
def service(migrated_database_url: str, tmp_path: Path) -> Iterator[Processes]:
    """The service's processes for one test; every one still running is stopped after it."""
    processes = Processes(migrated_database_url, tmp_path)
    yield processes
    processes.stop_all()
