"""The API's one entry in ``app.extensions``: built at start, read by every view and hook."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from flask import current_app

from ..callbacks import CallbackPolicy
from ..services import Services
from ..waiting import EndedJobs
from .limits import ReadyCap
from .presence import TokenPresence
from .ratelimit import RateLimiter
from .schemas import CreateJobSchema

EXTENSION_KEY = "jobsvc"


@dataclass(frozen=True)
class ApiState:
    """The services, plus what only the API keeps: limits, caches, the prebuilt schema and docs.

    Everything here is built before the first request; nothing is written into the app later.
    """

    services: Services
    scopes: Mapping[str, str]  # the scope each declared endpoint needs (``endpoints``)
    rate_limiter: RateLimiter
    ready_cap: ReadyCap
    token_presence: TokenPresence
    # Built once: a marshmallow Schema deep-copies its fields on construction, which cost more
    # than validating the job. Loading does not mutate it, so threads may share it.
    create_schema: CreateJobSchema
    openapi: dict[str, Any]
    enqueued: Any  # metrics.EnqueueCounter: the jobs this process stored, by queue and type
    ended_jobs: EndedJobs  # waiting requests (?wait=) and the process's one listener
    callback_policy: CallbackPolicy  # the SSRF rules a callback_url must pass


def state() -> ApiState:
    """Return the current app's API state."""
    return current_app.extensions[EXTENSION_KEY]
