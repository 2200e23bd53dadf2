"""The API's one log line per request: plain text by default, JSON on request; no token."""

from __future__ import annotations

import json
import logging

from jobsvc.logjson import JsonFormatter
from tests.support.tokens import bearer, make_token


def _request_lines(caplog) -> list[logging.LogRecord]:
    return [record for record in caplog.records if record.name == "jobsvc.access"]


def test_each_request_logs_method_path_status_duration_and_the_tokens_name(app, client, caplog):
    token = make_token(app, "reporting", "read")
    with caplog.at_level(logging.INFO, logger="jobsvc.access"):
        client.get("/jobs?status=DONE", headers=bearer(token))
        client.get("/jobs", headers=bearer("jobsvc_not-a-token"))
    ok, refused = _request_lines(caplog)
    text = ok.getMessage()
    assert text.startswith("GET /jobs 200 ") and text.endswith("token=reporting")
    assert "status=DONE" not in text  # the path, not the query string
    assert refused.getMessage().startswith("GET /jobs 401 ")
    assert "token=None" in refused.getMessage()
    line = json.loads(JsonFormatter().format(ok))
    assert line["event"] == "request"
    assert (line["method"], line["path"], line["status"], line["token"]) == (
        "GET",
        "/jobs",
        200,
        "reporting",
    )
    assert line["duration"] >= 0 and line["logger"] == "jobsvc.access"
    assert token not in json.dumps(line) + text
