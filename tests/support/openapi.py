"""The OpenAPI document the schemathesis runs fuzz, built as the app builds it."""

from __future__ import annotations

import tests.handlers  # noqa: F401 - registers the job types the test app accepts
from jobsvc.api.openapi import build_spec
from jobsvc.config import SETTINGS
from jobsvc.registry import registry

SCHEMATHESIS_EXAMPLES = 25  # per operation; keeps each run well under a minute
MAX_BATCH_JOBS = next(s.default for s in SETTINGS if s.name == "MAX_BATCH_JOBS")
# Built here rather than fetched from a fixture's app: schemathesis' lazy fixture loader does not
# run under pytest 9. test_openapi ties the served document to this one.
# A short longest wait: the fuzzer's ?wait= on a job that never ends must not hold it up.
FUZZ_MAX_WAIT_SECONDS = 0.01
DOCUMENT = build_spec(MAX_BATCH_JOBS, registry.names(), max_wait_seconds=FUZZ_MAX_WAIT_SECONDS)
