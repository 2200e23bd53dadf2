"""The workloads W0-W4; each takes a ``Run`` and adds its figures to the report."""

from __future__ import annotations

import random
from dataclasses import dataclass
from pathlib import Path

from jobsvc.retry import RetryPolicy
from jobsvc.store import LeaseStore, worker_engine

from ..databases import BenchDatabase
from ..report import Report
from ..sizes import Sizes

LEASE_SECONDS = 30.0
QUEUES = ("default",)  # what `python -m worker` serves by default


@dataclass
class Run:
    """What one workload needs: the database, the sizes, where figures and logs go."""

    database: BenchDatabase
    sizes: Sizes
    report: Report
    log_dir: Path
    measured_memory: bool = False  # the worker's peak RSS is taken once per backend
    _lease_store: LeaseStore | None = None

    @property
    def backend(self) -> str:
        return self.database.backend

    def add(self, workload: str, case: str, metric: str, value: float, unit: str) -> None:
        """Record one figure for this run's backend."""
        self.report.add(workload, case, metric, self.backend, value, unit)

    def lease_store(self) -> LeaseStore:
        """Return a lease store on the run's database, as a worker builds it (its engine too)."""
        if self._lease_store is None:
            self._lease_store = LeaseStore(
                worker_engine(self.database.engine), RetryPolicy(2.0, 600.0, random.Random())
            )
        return self._lease_store

    def close(self) -> None:
        """Close the connections of the worker-like engine, if one was made."""
        if self._lease_store is not None and self._lease_store.engine is not self.database.engine:
            self._lease_store.engine.dispose()
