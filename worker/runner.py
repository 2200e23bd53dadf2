"""The worker: its settings, and the runner that composes the units that serve jobs.

One owner per step: ``FetchLoop`` claims, ``Executor`` runs attempts on the slots,
``Maintenance`` heartbeats, rescues and times out, ``Completer`` writes outcomes in batches,
``Shutdown`` handles signals, the drain and the release, ``Events`` writes what happened.
"""

from __future__ import annotations

import os
import socket
import threading
import uuid
from dataclasses import dataclass

from jobsvc.registry import HandlerRegistry
from jobsvc.store import LeaseStore, Waker

from .completer import Completer
from .deliveries import Deliverer
from .events import Events
from .execution import MAX_JSON_DEPTH_DEFAULT, MAX_RESULT_BYTES_DEFAULT, ResultLimits
from .executor import Executor
from .fencing import Fence
from .fetcher import FetchLoop
from .logs import FLUSH_WAIT_SECONDS, flush_logs
from .maintenance import Maintenance
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
        deliverer: Deliverer | None = None,
    ) -> None:
        self.settings = settings
        self.deliverer = deliverer  # completion webhooks, on a thread of their own
        self.worker_id = worker_id or new_worker_id()
        self.waker = waker
        self.events = Events(self.worker_id)
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

    def install_signal_handlers(self) -> None:
        """First SIGTERM/SIGINT: drain and exit 0. A second one: exit at once."""
        self.shutdown.install_signal_handlers()

    def request_stop(self) -> None:
        """Stop claiming; running jobs get the grace period, then are released."""
        self.shutdown.request_stop()

    def run(self) -> int:
        """Serve jobs until stopped; return the process exit code."""
        self.events.started(self.settings.queues, self.settings.concurrency, os.getpid())
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
