"""The worker: its settings, and the runner that composes the units that serve jobs.

One owner per step: ``FetchLoop`` claims, ``Executor`` runs attempts on the pool
(threads, processes or asyncio: ``worker/pools``),
``Maintenance`` heartbeats, rescues and times out, ``Completer`` writes outcomes in batches,
``Shutdown`` handles signals, the drain and the release, ``Events`` writes what happened.
"""

from __future__ import annotations

import os
import socket
import threading
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime

from jobsvc.models import JobStatus
from jobsvc.registry import HandlerRegistry
from jobsvc.schedules import ScheduleSpec
from jobsvc.store import LeaseStore, NewJob, Waker
from jobsvc.store.housekeeping import HousekeepingStore
from jobsvc.store.schedules import ScheduleStore

from .completer import Completer
from .deliveries import Deliverer
from .events import Events
from .execution import MAX_JSON_DEPTH_DEFAULT, MAX_RESULT_BYTES_DEFAULT, ResultLimits
from .executor import Executor
from .fencing import Fence
from .fetcher import FetchLoop
from .housekeeping import PriorityAging, Retention
from .logs import FLUSH_WAIT_SECONDS, flush_logs
from .maintenance import Chore, Maintenance
from .metrics import MeteredEvents, WorkerMetrics
from .pools import PoolSettings
from .scheduler import Scheduler
from .shutdown import Shutdown, StopFlag

CANCEL_POLL_SECONDS = 0.5  # without notifications: how often running jobs are checked for cancel


@dataclass(frozen=True)
class WorkerSettings:
    """How a worker runs; built from the app config and the command line."""

    queues: tuple[str, ...] | None  # None: every queue
    concurrency: int
    burst: bool
    lease_seconds: float
    heartbeat_seconds: float
    poll_seconds: float
    shutdown_grace_seconds: float
    traceback_bytes: int
    max_result_bytes: int = MAX_RESULT_BYTES_DEFAULT
    max_json_depth: int = MAX_JSON_DEPTH_DEFAULT
    cancel_grace_seconds: float = 5.0
    pool: PoolSettings = PoolSettings()  # which pool runs the handlers (--pool)
    priority_aging_seconds: float = 0.0  # 0: off
    # Seconds each terminal status is kept after it finished; a missing or 0 one: forever.
    retain_seconds: Mapping[JobStatus, float] = field(default_factory=dict)
    max_attempts: int = 3  # of a schedule's jobs (JOBSVC_MAX_ATTEMPTS)
    timeout_seconds: float | None = None  # of a schedule's jobs (JOBSVC_DEFAULT_TIMEOUT_SECONDS)


def new_worker_id() -> str:
    """Return a name for this worker process that is unique across hosts."""
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:6]}"


class Runner:
    """Runs jobs until told to stop (or, in burst mode, until nothing is ready)."""

    def __init__(
        self,
        store: LeaseStore,
        waker: Waker,
        registry: HandlerRegistry,
        settings: WorkerSettings,
        worker_id: str | None = None,
        *,
        schedules: ScheduleStore | None = None,
        housekeeping: HousekeepingStore | None = None,
        metrics: WorkerMetrics | None = None,
        deliverer: Deliverer | None = None,
    ) -> None:
        self.settings = settings
        self.deliverer = deliverer  # completion webhooks, on a thread of their own
        self.worker_id = worker_id or new_worker_id()
        self.waker = waker
        self.metrics = metrics
        # With metrics, every event is also counted; without, the events cost what they did.
        self.events = (
            Events(self.worker_id) if metrics is None else MeteredEvents(self.worker_id, metrics)
        )
        wake, stop = threading.Event(), StopFlag()  # something to look at; no new claims
        self._stop = stop
        self.completer = Completer(store, self.events)
        self.executor = Executor(
            settings.concurrency,
            registry,
            settings.traceback_bytes,
            self.completer,
            self.events,
            wake,
            ResultLimits(settings.max_result_bytes, settings.max_json_depth),
            settings.pool,
        )
        self.fence = Fence(
            self.executor,
            self.events,
            lease_seconds=settings.lease_seconds,
            heartbeat_seconds=settings.heartbeat_seconds,
        )
        self.maintenance = Maintenance(
            store,
            self.executor,
            self.completer,
            self.events,
            lease_seconds=settings.lease_seconds,
            heartbeat_seconds=settings.heartbeat_seconds,
            fence=self.fence,
            # PostgreSQL NOTIFYs a cancel; the heartbeat is then only the fallback.
            cancel_check_seconds=(
                settings.heartbeat_seconds if waker.notices_cancels else CANCEL_POLL_SECONDS
            ),
            cancel_grace_seconds=settings.cancel_grace_seconds,
            chores=self._chores(registry, schedules, housekeeping),
        )
        self.fetcher = FetchLoop(
            store,
            waker,
            self.executor,
            self.maintenance,
            queues=settings.queues,
            worker_id=self.worker_id,
            lease_seconds=settings.lease_seconds,
            poll_seconds=settings.poll_seconds,
            burst=settings.burst,
            wake=wake,
            stop=stop,
        )
        self.shutdown = Shutdown(
            self.executor,
            self.maintenance,
            self.completer,
            self.events,
            grace_seconds=settings.shutdown_grace_seconds,
            wake=wake,
            stop=stop,
        )

    def _chores(
        self,
        registry: HandlerRegistry,
        schedules: ScheduleStore | None,
        housekeeping: HousekeepingStore | None,
    ) -> list[Chore]:
        """The maintenance's chores beside the leases, for the stores this runner was given."""
        chores: list[Chore] = []
        if schedules is not None and registry.schedules():
            chores.append(Scheduler(schedules, registry.schedules(), self._tick_job, self.events))
        if housekeeping is not None and self.settings.priority_aging_seconds:
            aging = self.settings.priority_aging_seconds
            chores.append(PriorityAging(housekeeping, self.events, aging))
        if housekeeping is not None and schedules is not None:
            retain = self.settings.retain_seconds
            chores.append(Retention(housekeeping, schedules, self.events, retain))
        return chores

    def _tick_job(self, spec: ScheduleSpec, tick_at: datetime) -> NewJob:
        """The job of one tick of ``spec``: its payload, due at the tick."""
        return NewJob(
            type=spec.name,
            payload=spec.payload,
            queue=spec.queue,
            priority=0,
            run_at=tick_at,
            max_attempts=self.settings.max_attempts,
            timeout_seconds=self.settings.timeout_seconds,
        )

    def install_signal_handlers(self) -> None:
        """First SIGTERM/SIGINT: drain and exit 0. A second one: exit at once."""
        self.shutdown.install_signal_handlers()

    def request_stop(self) -> None:
        """Stop claiming; running jobs get the grace period, then are released."""
        self.shutdown.request_stop()

    def run(self) -> int:
        """Serve jobs until stopped; return the process exit code."""
        self.events.started(
            self.settings.queues, self.settings.concurrency, os.getpid(), self.settings.pool.kind
        )
        self.fence.start()
        if self.deliverer is not None:
            self.deliverer.start()
        try:
            self.fetcher.run()
            self.shutdown.drain()
        finally:
            self._stop.set()  # from here a signal exits at once
            self.fetcher.close()
            self.fence.close()
            self.executor.close()
            self.completer.close()
            if self.deliverer is not None:
                self.deliverer.close()
            self.waker.close()
        self.events.stopped()
        flush_logs(FLUSH_WAIT_SECONDS)
        return 0
