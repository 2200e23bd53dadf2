"""One attempt in flight, and turning what its handler did into an outcome."""

from __future__ import annotations

import asyncio
import ctypes
import json
import threading
import time
from dataclasses import dataclass, field
from types import CoroutineType
from typing import Any

from jobsvc.registry import HandlerRegistry
from jobsvc.store import ClaimedJob, Outcome, outcomes

from .context import JobContext
from .errors import Interrupted, PermanentError

MAX_RESULT_BYTES_DEFAULT = 1_048_576
MAX_JSON_DEPTH_DEFAULT = 32
# One encoder for every result: ``json.dumps(..., allow_nan=False)`` built one per call.
_ENCODER = json.JSONEncoder(allow_nan=False)
_slot_locals = threading.local()


@dataclass
class Execution:
    """One attempt in flight. Exactly one party resolves it: the slot or the runner."""

    job: ClaimedJob
    context: JobContext
    started: float | None = None  # when a slot began it; the timeout counts from here
    thread_id: int | None = None
    slot: Any = None  # what runs it: a slot thread, a child process's slot, the loop
    _resolved: bool = False
    _lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def deadline(self) -> float | None:
        if self.job.timeout_seconds is None or self.started is None:
            return None
        return self.started + self.job.timeout_seconds

    def elapsed(self) -> float | None:
        """Return how long the attempt has run, in seconds (None if no slot began it)."""
        return None if self.started is None else time.monotonic() - self.started

    def resolve(self) -> bool:
        """Return True to the first caller only: that one reports the outcome."""
        with self._lock:
            if self._resolved:
                return False
            self._resolved = True
            return True

    def resolve_unstarted(self) -> bool:
        """Like ``resolve``, but only while no slot has begun the attempt (so it never will)."""
        with self._lock:
            if self._resolved or self.started is not None:
                return False
            self._resolved = True
            return True

    @property
    def resolved(self) -> bool:
        return self._resolved

    def begin(self, slot: threading.Thread) -> bool:
        """Bind the attempt to the calling slot thread; False if it was resolved meanwhile
        (released at shutdown, cancelled) and must not run."""
        with self._lock:
            if self._resolved:
                return False
            self.slot = slot
            self.thread_id = threading.get_ident()
            self.started = time.monotonic()
            return True

    def raise_in_thread(self, exception: type[Interrupted]) -> None:
        """Raise ``exception`` in the thread ``begin`` bound, at its next bytecode, if the
        handler still runs there."""
        # Under the lock, so the exception can only target this attempt's handler (or the
        # slot's bookkeeping right after it, which expects it), never the slot's next job.
        with self._lock:
            if self.thread_id is not None:
                ctypes.pythonapi.PyThreadState_SetAsyncExc(
                    ctypes.c_ulong(self.thread_id), ctypes.py_object(exception)
                )

    def unbind_thread(self) -> None:
        """Record that the handler returned (or its process died); no stop may target it any
        more."""
        with self._lock:
            self.thread_id = None


@dataclass(frozen=True)
class ResultLimits:
    """What a handler's result may be: its JSON size and nesting (JOBSVC_MAX_RESULT_BYTES,
    JOBSVC_MAX_JSON_DEPTH)."""

    max_bytes: int = MAX_RESULT_BYTES_DEFAULT
    max_depth: int = MAX_JSON_DEPTH_DEFAULT


_DEFAULT_LIMITS = ResultLimits()


def run_handler(
    job: ClaimedJob,
    context: JobContext,
    registry: HandlerRegistry,
    traceback_limit: int,
    limits: ResultLimits = _DEFAULT_LIMITS,
) -> Outcome:
    """Run ``job``'s handler and return the outcome of the attempt."""
    function = registry.get(job.type)
    if function is None:
        return outcomes.unknown_type(job, registry.names())
    try:
        result = function(job.payload, context)
        if type(result) is CoroutineType:  # an ``async def`` handler: run it here
            result = _event_loop().run_until_complete(result)
    except Interrupted:
        raise
    except BaseException as exc:  # noqa: B036 - SystemExit in a handler fails the attempt,
        # it must not end the slot's thread and leave the job RUNNING under a live heartbeat.
        return raised(job, exc, traceback_limit)
    return encoded(job, result, limits)


def raised(job: ClaimedJob, exc: BaseException, traceback_limit: int) -> Outcome:
    """Return the failure of ``job``'s attempt whose handler raised ``exc``."""
    permanent = isinstance(exc, PermanentError)
    return outcomes.failed(job, exc, permanent=permanent, traceback_limit=traceback_limit)


def encoded(job: ClaimedJob, result: Any, limits: ResultLimits) -> Outcome:
    """Return the success of ``job`` with ``result`` encoded once (the store reuses the text),
    or the permanent failure saying why the result cannot be stored."""
    try:
        result_json = _ENCODER.encode(result)
    except RecursionError:
        return outcomes.too_deep(job, limits.max_depth)
    except Interrupted:
        raise
    except BaseException as exc:  # noqa: B036 - whatever a result's encoding raises
        return outcomes.not_json(job, exc)
    if len(result_json) > limits.max_bytes:  # ASCII only (ensure_ascii): chars are bytes
        return outcomes.too_large(job, len(result_json), limits.max_bytes)
    # Nesting needs at least one bracket per level: count them (C speed) before walking.
    if result_json.count("[") + result_json.count("{") > limits.max_depth and _deeper_than(
        result, limits.max_depth
    ):
        return outcomes.too_deep(job, limits.max_depth)
    return outcomes.succeeded(job, result, result_json)


def _deeper_than(value: Any, depth: int) -> bool:
    if isinstance(value, dict):
        children: Any = value.values()
    elif isinstance(value, list | tuple):
        children = value
    else:
        return False
    return depth <= 0 or any(_deeper_than(child, depth - 1) for child in children)


def _event_loop() -> asyncio.AbstractEventLoop:
    # One loop per slot thread, made on its first async job and reused by the next ones.
    loop: asyncio.AbstractEventLoop | None = getattr(_slot_locals, "loop", None)
    if loop is None or loop.is_closed():
        loop = asyncio.new_event_loop()
        _slot_locals.loop = loop
    return loop
