"""The HTTP API: blueprints, the access check, the error mapping, built on ``Services``."""

from __future__ import annotations

from flask import Flask

from ..callbacks import CallbackPolicy
from ..services import Services
from ..store.dialects import dialect_for
from ..waiting import EndedJobs
from . import auth, health, jobs, metrics, openapi, queues, requestlog
from . import schedules as schedules_api
from .endpoints import scopes
from .limits import ReadyCap
from .presence import TokenPresence
from .problems import register_error_handlers
from .ratelimit import RateLimiter
from .routing import JobIdConverter
from .schemas import CreateJobSchema
from .state import EXTENSION_KEY, ApiState

BLUEPRINTS = (
    jobs.bp,
    queues.bp,
    schedules_api.bp,
    health.bp,
    metrics.bp,
    openapi.bp,
)


def build_state(services: Services) -> ApiState:
    """Build everything the API keeps beside the services, before any request."""
    config = services.config
    return ApiState(
        services=services,
        scopes=scopes(),
        rate_limiter=RateLimiter(
            config["JOBSVC_RATE_LIMIT_PER_SECOND"],
            config["JOBSVC_RATE_LIMIT_BURST"],
            clock=services.clock,
        ),
        ready_cap=ReadyCap(
            services.jobs, config["JOBSVC_MAX_READY_PER_QUEUE"], clock=services.clock
        ),
        token_presence=TokenPresence(services.tokens, clock=services.clock),
        create_schema=CreateJobSchema(known_types=services.job_types),
        openapi=openapi.build_spec(
            config["JOBSVC_MAX_BATCH_JOBS"],
            services.job_types,
            webhooks=bool(
                config["JOBSVC_WEBHOOK_SECRET"] and config["JOBSVC_WEBHOOK_ALLOWED_HOSTS"]
            ),
            max_wait_seconds=config["JOBSVC_MAX_WAIT_SECONDS"],
        ),
        ended_jobs=EndedJobs(
            services.jobs,
            lambda: dialect_for(services.engine).open_end_watch(),
            config["JOBSVC_MAX_WAITERS"],
        ),
        callback_policy=CallbackPolicy.from_config(config),
        enqueued=metrics.EnqueueCounter(config["JOBSVC_METRICS_MAX_QUEUES"]),
    )


def register_api(app: Flask, services: Services) -> None:
    """Register every blueprint, the access check and the error mapping on ``app``."""
    app.url_map.converters["jobid"] = JobIdConverter
    register_error_handlers(app)
    requestlog.register(app)  # first: refused requests are logged too
    app.before_request(auth.authorize)
    for blueprint in BLUEPRINTS:
        app.register_blueprint(blueprint)
    app.extensions[EXTENSION_KEY] = build_state(services)
    if not app.testing:
        auth.warn_when_open(services.tokens)
