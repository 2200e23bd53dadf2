"""The processes pool: prefork child processes, one per slot, that only run handlers.

The parent keeps the claim loop, the heartbeats, the fence and the outcomes; each slot is a
parent thread that owns one child, sends it an attempt over a pipe and waits for the outcome.
A stop is real: SIGTERM, then SIGKILL after the kill grace; a child that dies (a stop, a crash,
``os._exit``, a segfault) is replaced, and only its own attempt is affected.

Children are started with ``forkserver``: a fresh, single-threaded server process imports the
pool's child code and the handler modules once, and forks each child from itself. So no lock
held by one of the parent's threads (logging, the completer, the database pool) is ever
inherited locked, as it could be with ``fork``; and unlike ``spawn``, a new child (at start,
after a crash, on recycling) costs a fork, not a second of imports.
"""

from __future__ import annotations

import itertools
import logging
import multiprocessing
import os
import queue
import signal
import sys
import threading
import time
from collections.abc import Callable
from multiprocessing.connection import Connection
from multiprocessing.process import BaseProcess
from typing import Any

from jobsvc.store import outcomes

from ..errors import Interrupted
from ..events import Events
from ..execution import Execution, ResultLimits
from . import PoolSettings, Report
from .child import CANCEL_SIGNAL, READY, ChildSettings, fresh_context, serve

logger = logging.getLogger(__name__)

START_METHOD = "forkserver"
RESPAWN_PAUSE_SECONDS = 1.0  # after a child failed to start
CLOSE_WAIT_SECONDS = 5.0  # at close, how long an idle child may take to exit
START_WAIT_SECONDS = 60.0  # at start, how long the worker waits for its children


class ProcessPool:
    """``size`` children, each served by a parent thread; attempts wait in one shared queue.

    By default one attempt per child waits claimed in that queue (``--prefetch``; Celery's
    prefetch at a multiplier of 1): a child that finishes starts the next at once instead of
    idling through a claim's round trip, which cost a CPU-bound drain (W6) a quarter of its
    rate. A waiting attempt's timeout counts from when a child begins it, and a shutdown
    releases it unstarted.
    """

    def __init__(
        self,
        size: int,
        settings: PoolSettings,
        traceback_limit: int,
        report: Report,
        limits: ResultLimits,
        events: Events,
    ) -> None:
        # No registry: each child builds its own from the handler modules.
        self.events = events
        self._settings = settings
        self._child = ChildSettings(
            handler_modules=settings.handler_modules,
            sys_path=tuple(sys.path),
            traceback_limit=traceback_limit,
            limits=limits,
        )
        self._report = report
        self.prefetch = size if settings.prefetch is None else settings.prefetch
        self._context = multiprocessing.get_context(START_METHOD)
        self._context.set_forkserver_preload([serve.__module__, *settings.handler_modules])
        self._queue: queue.SimpleQueue[Execution | None] = queue.SimpleQueue()
        self._names = itertools.count(1)
        self._slots = [_ChildSlot(self, f"child-slot-{next(self._names)}") for _ in range(size)]
        self._started = threading.Semaphore(0)
        for slot in self._slots:
            slot.start()
        # Claim only once the children are up: a job claimed earlier would wait for them
        # while its lease runs.
        deadline = time.monotonic() + START_WAIT_SECONDS
        for _ in self._slots:
            if not self._started.acquire(timeout=max(0.0, deadline - time.monotonic())):
                logger.warning("child processes still starting after %ss", START_WAIT_SECONDS)
                break

    def submit(self, execution: Execution) -> None:
        """Run ``execution`` in the next free child."""
        self._queue.put(execution)

    def stop(
        self,
        execution: Execution,
        exception: type[Interrupted],
        then: Callable[[], None] | None = None,
    ) -> None:
        """End the child running ``execution`` (SIGTERM, SIGKILL after the grace); ``then``
        runs once it is gone, or at once if no child runs the attempt."""
        execution.context.stop_requested.set()
        slot = execution.slot
        if not isinstance(slot, _ChildSlot) or not slot.kill(execution, then):
            if then is not None:
                then()

    def cancel_requested(self, execution: Execution) -> None:
        """Tell the child (a signal), so that ``ctx.cancelled`` turns true there too."""
        slot = execution.slot
        if isinstance(slot, _ChildSlot):
            slot.signal(execution, CANCEL_SIGNAL)

    def close(self) -> None:
        """Let every child exit once idle (a stuck one is killed after a while)."""
        for _ in self._slots:
            self._queue.put(None)

    # Used by the slots.
    def take(self) -> Execution | None:
        return self._queue.get()

    def report(self, execution: Execution, outcome: outcomes.Outcome) -> None:
        self._report(execution, outcome)

    def child_started(self) -> None:
        self._started.release()

    def new_child(self) -> tuple[BaseProcess, Connection]:
        parent_end, child_end = self._context.Pipe()
        process = self._context.Process(
            target=serve, args=(child_end, self._child), name="jobsvc-child", daemon=False
        )
        process.start()
        child_end.close()  # the child's death then reads as EOF on our end
        try:
            ready = parent_end.recv()  # once it imported the handler modules
        except EOFError:
            ready = None
        if ready != READY:
            parent_end.close()
            process.join()
            raise RuntimeError(f"the child process {_describe(process)} before it was ready")
        return process, parent_end

    @property
    def settings(self) -> PoolSettings:
        return self._settings


class _ChildSlot(threading.Thread):
    """One parent thread and the child it owns; the child is replaced whenever it ends."""

    def __init__(self, pool: ProcessPool, name: str) -> None:
        super().__init__(name=name, daemon=True)
        self._pool = pool
        self._lock = threading.Lock()
        self._process: BaseProcess | None = None
        self._connection: Connection | None = None
        self._current: Execution | None = None
        self._killing = False
        self._after_stop: list[Callable[[], None]] = []
        self._jobs = 0
        self._first = True

    def kill(self, execution: Execution, then: Callable[[], None] | None) -> bool:
        """SIGTERM the child if it runs ``execution``; return False if it does not."""
        with self._lock:
            if self._current is not execution or self._process is None:
                return False
            if then is not None:
                self._after_stop.append(then)
            if not self._killing:
                self._killing = True
                process = self._process
                _send(process, signal.SIGTERM)
                timer = threading.Timer(
                    self._pool.settings.kill_grace_seconds, _send, (process, signal.SIGKILL)
                )
                timer.daemon = True
                timer.start()
            return True

    def signal(self, execution: Execution, signum: int) -> None:
        with self._lock:
            if self._current is execution and self._process is not None and not self._killing:
                _send(self._process, signum)

    def run(self) -> None:
        try:
            while True:
                if self._process is None and not self._spawn():
                    continue
                execution = self._pool.take()
                if execution is None:
                    return
                try:
                    self._serve(execution)
                except Exception:
                    # The slot outlives any failure: a dead slot would leave the worker short.
                    logger.exception("%s: an attempt's bookkeeping failed", self.name)
        finally:
            self._retire()

    def _spawn(self) -> bool:
        try:
            process, connection = self._pool.new_child()
        except Exception:
            logger.exception("%s: cannot start a child process; trying again", self.name)
            threading.Event().wait(RESPAWN_PAUSE_SECONDS)
            return False
        with self._lock:
            self._process, self._connection, self._killing, self._jobs = (
                process,
                connection,
                False,
                0,
            )
        if self._first:
            self._first = False
            self._pool.child_started()
        return True

    def _serve(self, execution: Execution) -> None:
        connection, process = self._connection, self._process
        if connection is None or process is None:
            raise RuntimeError("a slot serves an attempt without a child")  # run() spawns first
        with self._lock:
            if not execution.begin(self):
                return  # resolved before it started (released, cancelled): never runs
            self._current = execution
        reply: Any = None
        try:
            connection.send((execution.job, fresh_context(execution.context)))
            reply = connection.recv()
        except (EOFError, OSError):
            pass  # the child died: stopped by us, or crashed
        with self._lock:
            self._current = None
            killing = self._killing
        self._jobs += 1
        if reply is None:
            how = self._reap(process)
            execution.unbind_thread()
            if execution.resolve():  # not stopped by the runner: it crashed by itself
                self._pool.events.process_died(execution.job, how)
                self._pool.report(execution, outcomes.process_died(execution.job, how))
            self._run_after_stop()
            return
        outcome, rss_kib = reply
        execution.unbind_thread()
        if execution.resolve():
            self._pool.report(execution, outcome)
        if killing:
            self._reap(process)
            self._run_after_stop()
        elif self._recycle_due(rss_kib):
            self._recycle(process, connection)

    def _recycle_due(self, rss_kib: int) -> bool:
        settings = self._pool.settings
        limit = settings.max_memory_per_child_kib
        if limit is not None and rss_kib > limit:
            logger.info(
                "%s: recycling its child: %d KiB resident, over --max-memory-per-child=%d KiB",
                self.name,
                rss_kib,
                limit,
            )
            return True
        if settings.max_jobs_per_child is not None and self._jobs >= settings.max_jobs_per_child:
            logger.info("%s: recycling its child after %d jobs", self.name, self._jobs)
            return True
        return False

    def _recycle(self, process: BaseProcess, connection: Connection) -> None:
        try:
            connection.send(None)
        except OSError:
            pass
        process.join(CLOSE_WAIT_SECONDS)
        self._reap(process)

    def _reap(self, process: BaseProcess) -> str:
        """Make sure ``process`` is gone (SIGKILL if need be); return how it ended."""
        process.join(self._pool.settings.kill_grace_seconds)
        if process.is_alive():
            _send(process, signal.SIGKILL)
            process.join()
        with self._lock:
            if self._process is process:
                if self._connection is not None:
                    self._connection.close()
                self._process, self._connection = None, None
        return _describe(process)

    def _run_after_stop(self) -> None:
        with self._lock:
            after, self._after_stop = self._after_stop, []
        for then in after:
            then()

    def _retire(self) -> None:
        process, connection = self._process, self._connection
        if process is None or connection is None:
            return
        try:
            connection.send(None)
        except OSError:
            pass
        self._reap(process)


def _send(process: BaseProcess, signum: int) -> None:
    pid = process.pid
    if pid is None:
        return
    try:
        if process.exitcode is None:  # not reaped yet: the pid is still this child's
            os.kill(pid, signum)
    except ProcessLookupError:
        pass


def _describe(process: BaseProcess) -> str:
    code = process.exitcode
    if code is None:
        return "ended"
    if code < 0:
        try:
            name = signal.Signals(-code).name
        except ValueError:
            name = f"signal {-code}"
        return f"was killed by {name}"
    return f"exited with code {code}"
