"""The body of a processes-pool child: import the handler modules, then run one attempt at a
time as the parent sends them, and send back each outcome with the child's memory use.

The child never touches the database: the parent claims, heartbeats, fences and records.
"""

from __future__ import annotations

import ctypes
import dataclasses
import os
import signal
import sys
from dataclasses import dataclass
from multiprocessing.connection import Connection
from types import FrameType

from jobsvc.registry import load_handler_modules, registry
from jobsvc.store import outcomes

from ..context import JobContext
from ..execution import ResultLimits, run_handler

PR_SET_PDEATHSIG = 1
CANCEL_SIGNAL = signal.SIGUSR1  # the parent's "your job was cancelled" (ctx.cancelled)
READY = "ready"
_current: JobContext | None = None


@dataclass(frozen=True)
class ChildSettings:
    """What a child needs to run handlers as the parent would."""

    handler_modules: tuple[str, ...]
    sys_path: tuple[str, ...]
    traceback_limit: int
    limits: ResultLimits


def serve(connection: Connection, settings: ChildSettings) -> None:
    """Run attempts from ``connection`` until it closes or sends None."""
    _die_with_parent()
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C reaches the whole group: the parent
    # decides (drain, then release). SIGTERM keeps its default: it ends the child even while
    # a handler holds the GIL in C code, where a Python-level handler would never run.
    signal.signal(CANCEL_SIGNAL, _on_cancel)
    for path in reversed(settings.sys_path):
        if path not in sys.path:
            sys.path.insert(0, path)
    load_handler_modules(settings.handler_modules)
    connection.send(READY)  # the parent starts the first timeout only from here
    global _current
    while True:
        try:
            message = connection.recv()
        except EOFError:
            return  # the parent is gone
        if message is None:
            return
        job, context = message
        _current = context
        try:
            outcome = run_handler(job, context, registry, settings.traceback_limit, settings.limits)
        except BaseException as exc:  # noqa: B036 - the attempt still ends with an outcome
            outcome = outcomes.crashed(job, exc)
        finally:
            _current = None
        try:
            connection.send((outcome, rss_kib()))
        except Exception as exc:  # an outcome that cannot be pickled
            connection.send((outcomes.crashed(job, exc), rss_kib()))


def fresh_context(context: JobContext) -> JobContext:
    """Return ``context`` without what only the parent holds (its stop Event): picklable."""
    return dataclasses.replace(context)


def rss_kib() -> int:
    """Return this process's resident memory now, in KiB (0 where unknown)."""
    try:
        with open("/proc/self/statm", "rb") as statm:
            pages = int(statm.read().split()[1])
        return pages * os.sysconf("SC_PAGE_SIZE") // 1024
    except (OSError, ValueError, IndexError):
        return 0


def _on_cancel(signum: int, frame: FrameType | None) -> None:
    context = _current
    if context is not None:
        context.mark_cancelled()


def _die_with_parent() -> None:
    # A worker killed with SIGKILL cannot stop its children: the kernel does (Linux). Our
    # parent is the fork server, which exits when the worker does; so a handler never outlives
    # the worker whose lease it ran under.
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
    except (OSError, AttributeError):
        pass
