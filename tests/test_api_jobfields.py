"""The enqueue fields are declared once: the schema, the quick path and NewJob read them."""

from __future__ import annotations

import dataclasses
import json
from datetime import UTC, datetime

from jobsvc.api.quickload import quick_load
from jobsvc.api.schemas import CreateJobSchema
from jobsvc.jobfields import ENQUEUE_FIELD_NAMES, ENQUEUE_FIELDS, batch_row
from jobsvc.store import NewJob
from jobsvc.store.insertion import batch_parameter

JOBS = [
    NewJob(type="noop", payload={"a": [1, "é"]}, queue="default", priority=0, max_attempts=3),
    NewJob(
        type="t.x",
        payload={},
        queue="q",
        priority=-5,
        max_attempts=1,
        run_at=datetime(2030, 1, 2, 3, 4, 5, 600_000, tzinfo=UTC),
        timeout_seconds=0.5,
        payload_json="{}",
    ),
]


def test_the_schema_has_the_declared_fields_in_order():
    assert tuple(CreateJobSchema().fields) == ENQUEUE_FIELD_NAMES


def test_new_job_carries_every_declared_field():
    names = tuple(field.name for field in dataclasses.fields(NewJob))
    assert names == (*ENQUEUE_FIELD_NAMES, "payload_json")
    optional = {field.name for field in ENQUEUE_FIELDS if field.store_optional}
    assert {
        field.name for field in dataclasses.fields(NewJob) if field.default is None
    } == optional | {"payload_json"}


def test_the_insert_batch_is_what_the_declaration_encodes():
    # store/insertion.py builds its batch from batch_row and its columns from the names.
    assert json.loads(batch_parameter(JOBS)) == [batch_row(job) for job in JOBS]
    # A field without a column of its own (depends_on: edges in job_dependencies) stays out.
    columns = [field.name for field in ENQUEUE_FIELDS if field.column]
    assert columns == list(batch_row(JOBS[0]))
    assert "depends_on" not in columns


def test_absent_fields_take_their_declared_defaults():
    loaded = quick_load({"type": "noop"}, None)
    assert loaded == CreateJobSchema().load({"type": "noop"})
    assert loaded == {
        field.name: field.default_value() for field in ENQUEUE_FIELDS if not field.required
    } | {"type": "noop"}
