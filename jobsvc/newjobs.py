"""A validated enqueue request made into a ``NewJob``: the payload's size limit and the defaults.

The API's views and ``jobsvc.enqueue`` (the caller's own transaction) both come here, so a job
gets the same limits and defaults however it is enqueued.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from .errors import ValidationFailed
from .store import NewJob

# One encoder for every payload: json.dumps with arguments builds a new encoder per call.
_COMPACT_JSON = json.JSONEncoder(separators=(",", ":"))


def new_job(fields: dict[str, Any], config: Mapping[str, Any]) -> NewJob:
    """Return the job ``fields`` (as the schema loaded them) describe, with the defaults set."""
    payload_json = _COMPACT_JSON.encode(fields["payload"])
    payload_size = len(payload_json)
    if payload_size > config["JOBSVC_MAX_PAYLOAD_BYTES"]:
        raise ValidationFailed(
            {
                "payload": [
                    f"Is {payload_size} bytes as JSON; the limit is "
                    f"{config['JOBSVC_MAX_PAYLOAD_BYTES']}."
                ]
            }
        )
    if fields["max_attempts"] is None:
        fields["max_attempts"] = config["JOBSVC_MAX_ATTEMPTS"]
    if fields["timeout_seconds"] is None and config["JOBSVC_DEFAULT_TIMEOUT_SECONDS"] > 0:
        fields["timeout_seconds"] = config["JOBSVC_DEFAULT_TIMEOUT_SECONDS"]
    return NewJob(**fields, payload_json=payload_json)
