"""Real processes: a bad setting stops each of them cleanly, the backlog cap against a draining
worker, the API started before its database, one SQLite file for every process."""

from __future__ import annotations

import os
import re
import stat
import subprocess
import sys
import time
import venv
from pathlib import Path

import pytest
import requests

from tests.faults.private_postgres import PrivatePostgres, find_bin
from tests.support.ports import free_port
from tests.support.processes import REPO, START_TIMEOUT_SECONDS

EXIT_CONFIG_ERROR = 2
JOB = {"type": "test.echo", "payload": {}}


def _commands(port: int) -> dict[str, list[str]]:
    return {
        "worker": [sys.executable, "-m", "worker", "--queues", "*"],
        "jobsvc.serve": [sys.executable, "-m", "jobsvc.serve", "--port", str(port)],
        "waitress": [sys.executable, "-m", "waitress", f"--listen=127.0.0.1:{port}", "wsgi:app"],
        "flask-cli": [sys.executable, "-m", "flask", "--app", "jobsvc", "jobs", "token", "list"],
    }


BAD_ENVIRONMENTS = [
    pytest.param(
        {"JOBSVC_DEFAULT_TIMEOUT_SECONDS": "inf"},
        "JOBSVC_DEFAULT_TIMEOUT_SECONDS='inf'",
        id="timeout-inf",
    ),
    pytest.param(
        {"JOBSVC_DEFAULT_TIMEOUT_SECONDS": "-5"},
        "JOBSVC_DEFAULT_TIMEOUT_SECONDS='-5'",
        id="timeout-negative",
    ),
    pytest.param(
        {"JOBSVC_LEASE_SECONDS": "0.5", "JOBSVC_HEARTBEAT_SECONDS": "10"},
        "below half of JOBSVC_LEASE_SECONDS=0.5",
        id="heartbeat-over-half-lease",
    ),
    pytest.param(
        {"DATABASE_URL": "mysql://u:hunter2@h/db"},
        "DATABASE_URL='mysql://u:***@h/db'",
        id="database-url",
    ),
]


@pytest.mark.parametrize("program", ["worker", "jobsvc.serve", "waitress", "flask-cli"])
@pytest.mark.parametrize(("bad", "words"), BAD_ENVIRONMENTS)
def test_a_bad_setting_stops_every_process_with_code_2_and_no_traceback(
    tmp_path, program, bad, words
):
    env = {
        **os.environ,
        "PYTHONPATH": str(REPO),
        "JOBSVC_HANDLERS": "tests.handlers",
        "DATABASE_URL": f"sqlite:///{tmp_path / 'jobsvc.sqlite3'}",
        **bad,
    }
    done = subprocess.run(
        _commands(free_port())[program],
        cwd=REPO,
        env=env,
        timeout=60,
        capture_output=True,
        text=True,
    )
    assert done.returncode == EXIT_CONFIG_ERROR, done.stderr
    assert words in done.stderr and "Traceback" not in done.stderr, done.stderr
    assert "hunter2" not in done.stderr + done.stdout


def test_a_worker_with_empty_queues_is_refused(tmp_path):
    env = {
        **os.environ,
        "PYTHONPATH": str(REPO),
        "DATABASE_URL": f"sqlite:///{tmp_path / 'jobsvc.sqlite3'}",
    }
    done = subprocess.run(
        [sys.executable, "-m", "worker", "--queues", ""],
        cwd=REPO,
        env=env,
        timeout=60,
        capture_output=True,
        text=True,
    )
    assert done.returncode == EXIT_CONFIG_ERROR
    assert "--queues=''" in done.stderr and "Traceback" not in done.stderr


def test_the_backlog_cap_never_refuses_a_queue_a_worker_drains(service):
    service.env["JOBSVC_MAX_READY_PER_QUEUE"] = "3"
    base = service.start_api()
    service.start_worker()
    # The worker drains from its first claim on: wait for that (its start-up took over 0.6 s
    # on a loaded machine, and the posts below then met a full queue that nobody drained yet).
    service.wait_terminal([service.post(JOB)], timeout=60)
    statuses = []
    for _ in range(8):
        statuses.append(requests.post(f"{base}/jobs", json=JOB, timeout=10).status_code)
        time.sleep(0.2)
    assert statuses == [201] * 8
    # The cap still holds when nobody drains the queue.
    full = [
        requests.post(f"{base}/jobs", json={**JOB, "queue": "undrained"}, timeout=10)
        for _ in range(6)
    ]
    assert [r.status_code for r in full][:3] == [201, 201, 201]
    assert 503 in [r.status_code for r in full[3:]]


@pytest.mark.skipif(find_bin() is None, reason="needs PostgreSQL server binaries (initdb)")
def test_the_api_waits_for_a_database_that_is_not_up_yet(service):
    server = PrivatePostgres(find_bin())  # initialised, not started: nobody listens on its port
    try:
        service.env["DATABASE_URL"] = server.url
        port = free_port()
        api = service._spawn([sys.executable, "-m", "jobsvc.serve", "--port", str(port)], "api")
        log = service.tmp_path / "api.log"
        deadline = time.monotonic() + START_TIMEOUT_SECONDS
        while "database unavailable at start-up" not in log.read_text():
            assert api.poll() is None, log.read_text()
            assert time.monotonic() < deadline, log.read_text()
            time.sleep(0.1)
        time.sleep(1.0)
        assert api.poll() is None, log.read_text()
        server.start()
        deadline = time.monotonic() + START_TIMEOUT_SECONDS
        while True:
            assert api.poll() is None, log.read_text()
            try:
                if requests.get(f"http://127.0.0.1:{port}/health", timeout=1).status_code == 200:
                    break
            except requests.ConnectionError:
                pass
            assert time.monotonic() < deadline, log.read_text()
            time.sleep(0.1)
        created = requests.post(f"http://127.0.0.1:{port}/jobs", json=JOB, timeout=10)
        assert created.status_code == 201
        assert "Traceback" not in log.read_text()
        assert f"database postgresql+psycopg://postgres@127.0.0.1:{server.port}/postgres" in (
            log.read_text()
        )
    finally:
        service.stop_all()
        server.destroy()


# -- one SQLite file for every process, whatever the install mode --------------------------------


def _site_packages(python: Path) -> str:
    code = "import sysconfig; print(sysconfig.get_paths()['purelib'])"
    return subprocess.run(
        [str(python), "-c", code], capture_output=True, text=True, check=True
    ).stdout.strip()


@pytest.fixture(scope="module")
def installed(tmp_path_factory) -> Path:
    """A venv with jobsvc installed from a wheel (not editable); dependencies from ours."""
    root = tmp_path_factory.mktemp("installed")
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--quiet",
            "--no-deps",
            "--no-build-isolation",
            "-w",
            str(root / "dist"),
            str(REPO),
        ],
        check=True,
        capture_output=True,
        timeout=300,
    )
    (wheel,) = (root / "dist").glob("jobsvc-*.whl")
    venv.create(root / "venv", with_pip=False)
    python = root / "venv" / "bin" / "python"
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "--python",
            str(python),
            "install",
            "--quiet",
            "--no-deps",
            str(wheel),
        ],
        check=True,
        capture_output=True,
        timeout=300,
    )
    return python


def test_cli_api_and_worker_share_one_private_sqlite_file(installed, tmp_path):
    python = installed
    data_home = tmp_path / "data"
    # Our venv's packages on PYTHONPATH: no .pth files run from there, so jobsvc itself comes
    # from the wheel (or, for the CLI run in the checkout, from the checkout, as a user's would).
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith("JOBSVC_") and key != "DATABASE_URL"
    }
    env.update(
        XDG_DATA_HOME=str(data_home),
        PYTHONPATH=_site_packages(Path(sys.executable)),
        JOBSVC_HANDLERS="tests.handlers",
        PYTHONUNBUFFERED="1",
    )
    created = subprocess.run(
        [
            str(python),
            "-m",
            "flask",
            "--app",
            "jobsvc",
            "jobs",
            "token",
            "create",
            "--name",
            "ops",
            "--scopes",
            "admin",
        ],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert created.returncode == 0, created.stderr
    token = created.stdout.strip().splitlines()[-1]
    expected = data_home / "jobsvc" / "jobsvc.sqlite3"
    assert f"database sqlite:///{expected}" in created.stderr

    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (elsewhere / "tests").symlink_to(REPO / "tests")  # the handler module, and nothing else
    port = free_port()
    with (
        (tmp_path / "api.log").open("wb") as api_log,
        (tmp_path / "worker.log").open("wb") as worker_log,
    ):
        api = subprocess.Popen(
            [str(python), "-m", "jobsvc.serve", "--port", str(port)],
            cwd=elsewhere,
            env=env,
            stdout=api_log,
            stderr=subprocess.STDOUT,
        )
        worker = subprocess.Popen(
            [str(python), "-m", "worker", "--queues", "*"],
            cwd=elsewhere,
            env=env,
            stdout=worker_log,
            stderr=subprocess.STDOUT,
        )
    try:
        headers = {"Authorization": f"Bearer {token}"}
        base = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + START_TIMEOUT_SECONDS
        while True:
            try:
                if requests.get(f"{base}/health", timeout=1).status_code == 200:
                    break
            except requests.ConnectionError:
                assert api.poll() is None, (tmp_path / "api.log").read_text()
                assert time.monotonic() < deadline
                time.sleep(0.1)
        job = requests.post(f"{base}/jobs", json=JOB, headers=headers, timeout=10)
        assert job.status_code == 201, job.text  # the CLI's token is the API's
        deadline = time.monotonic() + START_TIMEOUT_SECONDS
        while (
            requests.get(f"{base}/jobs/{job.json()['id']}", headers=headers, timeout=10).json()[
                "status"
            ]
            != "DONE"
        ):
            assert time.monotonic() < deadline, (tmp_path / "worker.log").read_text()
            time.sleep(0.1)
    finally:
        for child in (api, worker):
            child.terminate()
            child.wait(30)
    for name in ("api.log", "worker.log"):
        assert f"database sqlite:///{expected}" in (tmp_path / name).read_text()
    assert stat.S_IMODE(expected.parent.stat().st_mode) == 0o700
    files = [
        path
        for path in expected.parent.iterdir()
        if re.fullmatch(r"jobsvc\.sqlite3(-wal|-shm|\.migrate-lock)?", path.name)
    ]
    assert expected in files
    for path in files:
        assert stat.S_IMODE(path.stat().st_mode) == 0o600, path
