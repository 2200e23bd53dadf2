"""Tokens across real processes: the CLI creates and revokes, a running API obeys at once."""

from __future__ import annotations

import subprocess
import sys

import requests

from tests.support.processes import REPO
from tests.support.settings import slow_e2e_backends

# Real worker processes; what differs by backend is the store, which the fast tests
# cover on both: one backend in `make test`, both at full size.
pytestmark = slow_e2e_backends("sqlite")

JOB = {"type": "test.echo", "payload": {"n": 1}}


def _flask(service, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "flask", "--app", "jobsvc", "jobs", "token", *args],
        cwd=REPO,
        env=service.env,
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_cli_token_opens_the_api_and_its_revocation_closes_it_at_once(service):
    base = service.start_api()
    assert requests.post(f"{base}/jobs", json=JOB, timeout=10).status_code == 201  # loopback
    created = _flask(service, "create", "--name", "e2e", "--scopes", "enqueue,read")
    assert created.returncode == 0, created.stderr
    token = created.stdout.strip().splitlines()[-1]
    auth = {"Authorization": f"Bearer {token}"}
    # The token lookup is never cached; "do tokens exist" is, for at most a second.
    response = requests.post(f"{base}/jobs", json=JOB, headers=auth, timeout=10)
    assert response.status_code == 201, response.text
    assert (
        requests.get(f"{base}/jobs/{response.json()['id']}", headers=auth, timeout=10).status_code
        == 200
    )
    assert requests.get(f"{base}/health", timeout=10).status_code == 200
    revoked = _flask(service, "revoke", "e2e")
    assert revoked.returncode == 0, revoked.stderr
    refused = requests.get(f"{base}/jobs", headers=auth, timeout=10)
    assert refused.status_code == 401
    assert refused.headers["WWW-Authenticate"].startswith("Bearer")
    api_log = (service.tmp_path / "api.log").read_text()
    assert token not in api_log and token not in created.stderr
