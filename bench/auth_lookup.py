"""Cost of the per-request token lookup: GET /jobs/{id} in-process, with and without auth.

Run on an empty database: ``.venv/bin/python bench/auth_lookup.py DATABASE_URL``
"""

from __future__ import annotations

import statistics
import sys
import time

from flask.testing import FlaskClient

from jobsvc import create_app
from jobsvc.api.auth import authorize
from jobsvc.tokens import hash_token, new_token

REQUESTS = 2000


def median_microseconds(client: FlaskClient, path: str, headers: dict[str, str] | None) -> float:
    """Return the median latency of ``REQUESTS`` GETs of ``path``."""
    times = []
    for _ in range(REQUESTS):
        start = time.perf_counter()
        response = client.get(path, headers=headers)
        times.append(time.perf_counter() - start)
        assert response.status_code == 200, response.status_code
    return statistics.median(times) * 1e6


def main(url: str) -> None:
    """Print the median per request: no auth hook, loopback mode, bearer token."""
    app = create_app(
        {"TESTING": True, "SQLALCHEMY_DATABASE_URI": url, "JOBSVC_RATE_LIMIT_PER_SECOND": 0.0}
    )
    client = app.test_client()
    path = f"/jobs/{client.post('/jobs', json={'type': 'x'}).json['id']}"
    hooks = app.before_request_funcs[None]
    hooks.remove(authorize)
    median_microseconds(client, path, None)  # warm up
    no_hook = median_microseconds(client, path, None)
    hooks.append(authorize)
    loopback = median_microseconds(client, path, None)
    token = new_token()
    app.extensions["jobsvc"].services.tokens.create("bench", hash_token(token), "read")
    bearer = median_microseconds(client, path, {"Authorization": f"Bearer {token}"})
    print(
        f"{url.split(':')[0]}: median GET {{id}} over {REQUESTS}: no auth hook {no_hook:.0f} us, "
        f"loopback mode {loopback:.0f} us, bearer token {bearer:.0f} us"
    )


if __name__ == "__main__":
    main(sys.argv[1])
