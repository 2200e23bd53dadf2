"""The deployment units in deploy/: systemd units verified, supervisord run for real."""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import requests

from jobsvc.config import SETTINGS
from tests.support.ports import free_port
from tests.support.processes import REPO
from tests.support.settings import slow_e2e_backends

DEPLOY = REPO / "deploy"
VENV = Path(sys.executable).parent.parent
UNITS = ["jobsvc-api.service", "jobsvc-worker@.service"]
SHUTDOWN_GRACE_DEFAULT = next(s.default for s in SETTINGS if s.name == "SHUTDOWN_GRACE_SECONDS")


def _needs(tool: str, package: str) -> pytest.MarkDecorator:
    # Under CI the tool must be there (.ci/run installs it); elsewhere its tests skip.
    missing = shutil.which(tool) is None and not os.environ.get("CI")
    return pytest.mark.skipif(missing, reason=f"needs {tool} (Debian's {package} package)")


def _unit_settings(text: str) -> dict[str, str]:
    return dict(re.findall(r"^(\w+)=(.*)$", text, flags=re.MULTILINE))


@_needs("systemd-analyze", "systemd")
@pytest.mark.parametrize("unit", UNITS)
def test_systemd_unit_verifies_clean(unit, tmp_path):
    # The units name /opt/jobsvc/venv; verify checks that every command exists, so point them at
    # this test's own virtualenv.
    rendered = tmp_path / unit
    rendered.write_text(
        (DEPLOY / "systemd" / unit).read_text().replace("/opt/jobsvc/venv", str(VENV))
    )
    name = unit.replace("@.", "@default.")
    run = subprocess.run(
        ["systemd-analyze", "verify", name],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert run.returncode == 0 and not run.stderr.strip(), run.stderr


def test_worker_unit_outlasts_the_drain_and_restarts_on_failure():
    settings = _unit_settings((DEPLOY / "systemd" / "jobsvc-worker@.service").read_text())
    assert settings["KillMode"] == "mixed"
    assert settings["Restart"] == "on-failure"
    assert float(settings["TimeoutStopSec"]) > SHUTDOWN_GRACE_DEFAULT


WORKER_METRICS = ("http://127.0.0.1:9400/metrics", "http://127.0.0.1:9401/metrics")


class Supervisor:
    """supervisord with deploy/supervisor/jobsvc.conf included, in a folder of its own."""

    def __init__(self, tmp_path: Path, database_url: str, port: int) -> None:
        self.tmp_path = tmp_path
        self.conf = tmp_path / "supervisord.conf"
        self.conf.write_text(f"""
[unix_http_server]
file={tmp_path}/supervisor.sock
[supervisord]
logfile={tmp_path}/supervisord.log
pidfile={tmp_path}/supervisord.pid
childlogdir={tmp_path}
nodaemon=false
[rpcinterface:supervisor]
supervisor.rpcinterface_factory = supervisor.rpcinterface:make_main_rpcinterface
[supervisorctl]
serverurl=unix://{tmp_path}/supervisor.sock
[include]
files={DEPLOY / "supervisor" / "jobsvc.conf"}
""")
        self.env = {
            **os.environ,
            "JOBSVC_HOME": str(REPO),
            "JOBSVC_VENV": str(VENV),
            "JOBSVC_PORT": str(port),
            "JOBSVC_LOG_DIR": str(tmp_path),
            "DATABASE_URL": database_url,
            "JOBSVC_HANDLERS": "tests.handlers",
            "PYTHONPATH": str(REPO),
            "JOBSVC_HEARTBEAT_SECONDS": "0.5",
            "JOBSVC_LEASE_SECONDS": "3",
        }

    def start(self) -> None:
        subprocess.run(["supervisord", "-c", str(self.conf)], env=self.env, check=True, timeout=30)

    def ctl(self, *args: str) -> str:
        run = subprocess.run(
            ["supervisorctl", "-c", str(self.conf), *args],
            env=self.env,
            capture_output=True,
            text=True,
            timeout=120,
        )
        return run.stdout

    def pids(self) -> dict[str, int]:
        pids = {}
        for line in self.ctl("status").splitlines():
            match = re.match(r"(\S+)\s+RUNNING\s+pid (\d+)", line)
            if match:
                pids[match.group(1)] = int(match.group(2))
        return pids

    def shutdown(self) -> None:
        self.ctl("shutdown")
        pidfile = self.tmp_path / "supervisord.pid"
        if pidfile.exists():
            try:
                os.kill(int(pidfile.read_text()), signal.SIGKILL)
            except (ProcessLookupError, ValueError):
                pass


def _wait_for(condition, timeout: float, what: str):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}")


@_needs("supervisord", "supervisor")
@slow_e2e_backends("sqlite")  # one backend in `make test`, both at full size
def test_supervisord_runs_the_api_and_two_workers_restarts_a_killed_one_and_drains(
    database_url, tmp_path
):
    port = free_port()
    supervisor = Supervisor(tmp_path, database_url, port)
    supervisor.start()
    try:
        pids = _wait_for(lambda: _all_running(supervisor), 60, "the API and two workers RUNNING")
        base = f"http://127.0.0.1:{port}"
        _wait_for(lambda: _healthy(base), 30, "the API to answer")
        for metrics in WORKER_METRICS:  # each worker serves its own, as the conf says
            _wait_for(lambda: _serves_metrics(metrics), 30, f"worker metrics on {metrics}")  # noqa: B023
        victim = "jobsvc-worker:jobsvc-worker-0"
        os.kill(pids[victim], signal.SIGKILL)
        _wait_for(
            lambda: supervisor.pids().get(victim) not in (None, pids[victim]),
            60,
            "supervisord to restart the killed worker",
        )
        job = requests.post(
            f"{base}/jobs", json={"type": "test.sleep", "payload": {"seconds": 1.5}}, timeout=10
        )
        job_url = f"{base}/jobs/{job.json()['id']}"
        _wait_for(
            lambda: requests.get(job_url, timeout=10).json()["status"] == "RUNNING",
            30,
            "a worker to start the job",
        )
        stopped = supervisor.ctl("stop", "jobsvc-worker:*")
        assert stopped.count("stopped") == 2, stopped
        assert requests.get(job_url, timeout=10).json()["status"] == "DONE"  # drained, not cut
        log = (tmp_path / "supervisord.log").read_text()
        assert len(re.findall(r"stopped: jobsvc-worker-\d \(exit status 0\)", log)) == 2, log
    finally:
        supervisor.shutdown()


def _all_running(supervisor: Supervisor) -> dict[str, int] | None:
    pids = supervisor.pids()
    return pids if len(pids) == 3 else None


def _serves_metrics(url: str) -> bool:
    try:
        response = requests.get(url, timeout=2)
    except requests.ConnectionError:
        return False
    return response.status_code == 200 and "jobsvc_worker_last_heartbeat" in response.text


def _healthy(base: str) -> bool:
    try:
        return requests.get(f"{base}/health", timeout=2).status_code == 200
    except requests.ConnectionError:
        return False
