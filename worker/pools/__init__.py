"""Execution pools: what runs the handlers of the attempts the executor hands out.

The executor (claims, deadlines, outcomes) does not know which pool runs; each pool keeps the
same small contract, ``Pool``:

- ``submit(execution)``: run the attempt's handler soon; when it ends, call ``report(execution,
  outcome)`` if ``execution.resolve()`` says this side won, and ``execution.unbind_thread()``
  once the handler no longer runs (maintenance confirms a cancelled attempt's stop from it).
- ``stop(execution, exception, then)``: the runner resolved the attempt (timeout, cancel, lost
  lease, shutdown): stop its handler by the pool's means and give its place to a fresh one;
  call ``then`` once the handler can no longer run (at once where the pool cannot wait for it).
- ``cancel_requested(execution)``: the job was cancelled: tell a cooperative handler.
- ``close()``: let every slot end once idle.
- ``prefetch``: how many attempts beyond its slots the pool wants waiting, so that a slot
  freed by a finished attempt starts the next one without waiting for a claim.

``threads`` (the default) runs each handler on one of ``--concurrency`` threads; ``processes``
runs it in one of ``--concurrency`` prefork child processes; ``asyncio`` runs ``async def``
handlers as tasks on one event loop.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

from jobsvc.registry import HandlerRegistry
from jobsvc.store import Outcome

from ..errors import Interrupted
from ..events import Events
from ..execution import Execution, ResultLimits

POOLS = ("threads", "processes", "asyncio")
KILL_GRACE_SECONDS_DEFAULT = 1.0

Report = Callable[[Execution, Outcome], None]


class Pool(Protocol):
    prefetch: int

    def submit(self, execution: Execution) -> None: ...

    def stop(
        self,
        execution: Execution,
        exception: type[Interrupted],
        then: Callable[[], None] | None = None,
    ) -> None: ...

    def cancel_requested(self, execution: Execution) -> None: ...

    def close(self) -> None: ...


@dataclass(frozen=True)
class PoolSettings:
    """Which pool runs the handlers, and the processes pool's recycling rules."""

    kind: str = "threads"
    handler_modules: tuple[str, ...] = ()  # what a child process imports (processes only)
    max_jobs_per_child: int | None = None
    prefetch: int | None = None  # processes only; None: one per child
    max_memory_per_child_kib: int | None = None
    kill_grace_seconds: float = KILL_GRACE_SECONDS_DEFAULT  # SIGTERM, then SIGKILL after this


def open_pool(
    settings: PoolSettings,
    size: int,
    registry: HandlerRegistry,
    traceback_limit: int,
    report: Report,
    limits: ResultLimits,
    events: Events,
) -> Pool:
    """Start the pool ``settings.kind`` names, with ``size`` slots."""
    if settings.kind == "threads":
        from .threads import SlotPool

        return SlotPool(size, registry, traceback_limit, report, limits)
    if settings.kind == "processes":
        from .processes import ProcessPool

        return ProcessPool(size, settings, traceback_limit, report, limits, events)
    if settings.kind == "asyncio":
        from .asyncio_loop import LoopPool

        return LoopPool(size, registry, traceback_limit, report, limits)
    raise ValueError(f"--pool={settings.kind!r} is refused: expected one of {', '.join(POOLS)}")
