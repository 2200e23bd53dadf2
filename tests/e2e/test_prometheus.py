"""A real Prometheus (Debian's package) scrapes the API and a worker; its query API reads back."""

from __future__ import annotations

import json
import os
import shutil
import subprocess

import pytest
import requests

from jobsvc.services import new_engine
from jobsvc.store import TokenStore
from jobsvc.tokens import hash_token, new_token
from tests.support.ports import free_port
from tests.support.settings import slow_e2e_backends
from tests.support.waiting import wait_until

PROMETHEUS = "/usr/bin/prometheus"


def _prometheus_binary() -> str:
    found = shutil.which(os.environ.get("JOBSVC_PROMETHEUS", PROMETHEUS))
    if found:
        return found
    if os.environ.get("CI"):
        pytest.fail("Debian's prometheus package is missing; .ci/run installs it")
    pytest.skip("this test needs Debian's prometheus package (/usr/bin/prometheus)")


def _config(api: str, worker: str, token: str) -> str:
    return f"""
global:
  scrape_interval: 1s
  scrape_timeout: 1s
scrape_configs:
  - job_name: jobsvc-api
    authorization:
      credentials: {token}
    static_configs:
      - targets: ["{api}"]
  - job_name: jobsvc-worker
    static_configs:
      - targets: ["{worker}"]
"""


def _query(base_url: str, expression: str) -> list[dict]:
    answer = requests.get(f"{base_url}/api/v1/query", params={"query": expression}, timeout=5)
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert body["status"] == "success", body
    return body["data"]["result"]


def _value(base_url: str, expression: str) -> float | None:
    result = _query(base_url, expression)
    return float(result[0]["value"][1]) if result else None


@slow_e2e_backends("postgresql")
def test_prometheus_scrapes_the_api_and_a_worker(service, migrated_database_url, tmp_path):
    binary = _prometheus_binary()
    service.env["JOBSVC_LOG_FORMAT"] = "json"  # and the logs' JSON lines are checked below
    api_url = service.start_api()
    metrics_port = free_port()
    service.start_worker("--metrics-port", str(metrics_port))
    ids = [service.post({"type": "test.echo", "queue": "mail", "payload": {}}) for _ in range(3)]
    ids.append(service.post({"type": "test.always_fails", "max_attempts": 1, "payload": {}}))
    service.wait_terminal(ids)
    token = new_token()
    engine = new_engine(migrated_database_url)
    try:
        TokenStore(engine).create("prometheus", hash_token(token), "read")
    finally:
        engine.dispose()

    config = tmp_path / "prometheus.yml"
    config.write_text(_config(api_url.removeprefix("http://"), f"127.0.0.1:{metrics_port}", token))
    port = free_port()
    log = (tmp_path / "prometheus.log").open("wb")
    prometheus = subprocess.Popen(
        [
            binary,
            f"--config.file={config}",
            f"--storage.tsdb.path={tmp_path / 'tsdb'}",
            f"--web.listen-address=127.0.0.1:{port}",
        ],
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    base_url = f"http://127.0.0.1:{port}"
    try:

        def ready() -> bool:
            try:
                return requests.get(f"{base_url}/-/ready", timeout=1).status_code == 200
            except requests.ConnectionError:
                return False

        wait_until(ready, timeout=30, interval=0.1, message="Prometheus did not start")
        finished = 'sum by (outcome) (jobsvc_jobs_finished_total{job="jobsvc-worker"})'
        wait_until(
            lambda: _query(base_url, finished),
            timeout=30,
            interval=0.2,
            message="Prometheus has no jobsvc_jobs_finished_total yet",
        )
        by_outcome = {
            row["metric"]["outcome"]: float(row["value"][1]) for row in _query(base_url, finished)
        }
        assert by_outcome == {"done": 3.0, "failed": 1.0}
        wait_until(
            lambda: _value(base_url, 'jobsvc_jobs{queue="mail",status="DONE"}') == 3.0,
            timeout=30,
            interval=0.2,
            message="the API's scrape-time gauge did not arrive",
        )
        assert _value(base_url, 'up{job="jobsvc-api"}') == 1.0
        assert _value(base_url, "sum(jobsvc_jobs_enqueued_total)") == 4.0
        assert _value(base_url, 'jobsvc_ready_jobs{queue="mail"}') == 0.0
        assert _value(base_url, "jobsvc_worker_last_heartbeat_timestamp_seconds") > 0
        durations = "sum(jobsvc_job_duration_seconds_count)"
        assert _value(base_url, durations) == 4.0
        assert _value(base_url, "sum(jobsvc_job_queue_wait_seconds_count)") == 4.0
        _check_json_logs(service, token, ids)
    finally:
        prometheus.terminate()
        prometheus.wait(15)
        log.close()


def _check_json_logs(service, token: str, ids: list[int]) -> None:
    """Both processes wrote one JSON object per line; the API one line per request."""
    api_lines = [
        json.loads(line) for line in service.log("api").splitlines() if line.startswith("{")
    ]
    scrapes = [line for line in api_lines if line.get("path") == "/metrics"]
    assert scrapes, service.log("api")[-2000:]
    assert {"method", "path", "status", "duration", "token"} <= scrapes[-1].keys()
    assert (scrapes[-1]["token"], scrapes[-1]["status"]) == ("prometheus", 200)
    assert token not in service.log("api")
    worker_lines = [
        json.loads(line) for line in service.log("worker1").splitlines() if line.startswith("{")
    ]
    done = [line for line in worker_lines if line.get("event") == "succeeded"]
    assert {line["job_id"] for line in done} == set(ids[:3])
    assert {"type", "queue", "attempt", "duration", "worker"} <= done[0].keys()
