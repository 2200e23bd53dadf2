"""The asyncio pool: ``async def`` handlers as tasks on one event loop, on a thread of its own.

``--concurrency`` bounds how many run at once: the fetch loop claims no more than the free
slots, and a semaphore holds the rest back should more ever arrive. A stop (timeout, cancel,
lost lease, shutdown) cancels the task.

A plain ``def`` handler is refused at start: on the loop it would block every other task, and
on a thread beside it a cancel could not stop it the way this pool promises.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
import threading
from collections.abc import Callable
from typing import Any

from jobsvc.registry import HandlerRegistry
from jobsvc.store import outcomes

from ..errors import Interrupted
from ..execution import Execution, ResultLimits, encoded, raised
from . import Report

logger = logging.getLogger(__name__)


def sync_handlers(registry: HandlerRegistry) -> list[str]:
    """Return the job types whose handlers are not ``async def``."""
    return sorted(
        name for name in registry.names() if not inspect.iscoroutinefunction(registry.get(name))
    )


class LoopPool:
    """One event loop thread running every attempt as a task."""

    prefetch = 0  # a task per attempt claimed: nothing claimed waits

    def __init__(
        self,
        size: int,
        registry: HandlerRegistry,
        traceback_limit: int,
        report: Report,
        limits: ResultLimits,
    ) -> None:
        refused = sync_handlers(registry)
        if refused:
            raise ValueError(
                "--pool asyncio runs async def handlers only; these job types have plain def "
                f"handlers: {', '.join(refused)} (run them under --pool threads, which runs "
                "async def handlers too)"
            )
        self._registry = registry
        self._traceback_limit = traceback_limit
        self._report = report
        self._limits = limits
        self._loop = asyncio.new_event_loop()
        self._semaphore = asyncio.Semaphore(size)
        self._tasks: dict[int, asyncio.Task[None]] = {}  # job id -> its task (loop thread only)
        self._thread = threading.Thread(target=self._run_loop, name="asyncio-pool", daemon=True)
        self._thread.start()

    def submit(self, execution: Execution) -> None:
        """Start ``execution``'s handler as a task on the loop."""
        self._loop.call_soon_threadsafe(self._start, execution)

    def stop(
        self,
        execution: Execution,
        exception: type[Interrupted],
        then: Callable[[], None] | None = None,
    ) -> None:
        """Cancel the attempt's task; ``then`` runs at once (a task may delay its end)."""
        execution.context.stop_requested.set()
        if not self._loop.is_closed():
            self._loop.call_soon_threadsafe(self._cancel, execution.job.id)
        if then is not None:
            then()

    def cancel_requested(self, execution: Execution) -> None:
        """Nothing to forward: the handler shares ``ctx`` with the runner."""

    def close(self) -> None:
        """Stop the loop once its running tasks are cancelled."""
        if not self._loop.is_closed():
            self._loop.call_soon_threadsafe(self._loop.stop)

    def _run_loop(self) -> None:
        asyncio.set_event_loop(self._loop)
        try:
            self._loop.run_forever()
        finally:
            for task in list(self._tasks.values()):
                task.cancel()

    def _start(self, execution: Execution) -> None:
        if not execution.begin(self._thread):
            return  # resolved before it started (released, cancelled): never runs
        job_id = execution.job.id
        self._tasks[job_id] = self._loop.create_task(self._attempt(execution))

    def _cancel(self, job_id: int) -> None:
        task = self._tasks.get(job_id)
        if task is not None:
            task.cancel()

    async def _attempt(self, execution: Execution) -> None:
        job = execution.job
        try:
            async with self._semaphore:
                outcome = await self._outcome(execution)
        except asyncio.CancelledError:
            outcome = None  # stopped by the runner, which reported the attempt
        except BaseException as exc:  # noqa: B036 - the attempt still ends with an outcome
            outcome = outcomes.crashed(job, exc)
        finally:
            self._tasks.pop(job.id, None)
            execution.unbind_thread()
        if outcome is not None and execution.resolve():
            self._report(execution, outcome)

    async def _outcome(self, execution: Execution) -> outcomes.Outcome:
        job = execution.job
        function: Any = self._registry.get(job.type)
        if function is None:
            return outcomes.unknown_type(job, self._registry.names())
        try:
            result = await function(job.payload, execution.context)
        except asyncio.CancelledError:
            if execution.resolved:
                raise  # our stop
            # The handler's own CancelledError (a cancelled inner task): a failed attempt.
            return raised(job, asyncio.CancelledError("cancelled inside the handler"), 0)
        except BaseException as exc:  # noqa: B036 - SystemExit in a handler fails the attempt
            return raised(job, exc, self._traceback_limit)
        return encoded(job, result, self._limits)
