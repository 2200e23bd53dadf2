"""``python -m bench.inprocess``: the app's own cost per request, without a server or client.

Calls the WSGI app directly with one prepared ``environ`` per request: the trivial endpoint and
``POST /jobs``. Uses ``$DATABASE_URL`` (migrated on start, like the API); prints µs per request.
With ``--profile``, prints cProfile's top entries for ``POST /jobs`` too.
"""

from __future__ import annotations

import argparse
import cProfile
import io
import itertools
import json
import pstats
import sys
import time
from collections.abc import Callable
from typing import Any

BODY = json.dumps({"type": "noop", "payload": {"n": 1}}).encode()


def _environ(
    method: str, path: str, data: bytes, headers: dict[str, str] | None = None
) -> dict[str, Any]:
    return {
        **(headers or {}),
        "REQUEST_METHOD": method,
        "PATH_INFO": path,
        "SCRIPT_NAME": "",
        "QUERY_STRING": "",
        "SERVER_NAME": "127.0.0.1",
        "SERVER_PORT": "8000",
        "SERVER_PROTOCOL": "HTTP/1.1",
        "REMOTE_ADDR": "127.0.0.1",
        "HTTP_HOST": "127.0.0.1:8000",
        "wsgi.url_scheme": "http",
        "wsgi.input": io.BytesIO(data),
        "wsgi.errors": sys.stderr,
        "wsgi.multithread": True,
        "wsgi.multiprocess": False,
        "wsgi.run_once": False,
        "CONTENT_TYPE": "application/json",
        "CONTENT_LENGTH": str(len(data)),
    }


def _caller(
    app: Any, method: str, path: str, data: bytes, expect: str, keyed: bool = False
) -> Callable[[], None]:
    keys = itertools.count()
    run = f"{time.time_ns()}-"  # a fresh key per request, unique across runs on one database

    def call() -> None:
        statuses: list[str] = []
        headers = {"HTTP_IDEMPOTENCY_KEY": f"{run}{next(keys)}"} if keyed else None
        environ = _environ(method, path, data, headers)
        b"".join(app(environ, lambda status, *_: statuses.append(status)))
        if not statuses[0].startswith(expect):
            raise AssertionError(f"{method} {path} answered {statuses[0]}")

    return call


def _per_call_us(call: Callable[[], None], count: int) -> float:
    for _ in range(min(200, count)):
        call()
    start = time.perf_counter()
    for _ in range(count):
        call()
    return (time.perf_counter() - start) / count * 1e6


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.inprocess", description=__doc__)
    parser.add_argument("--requests", type=int, default=5000)
    parser.add_argument("--profile", action="store_true")
    parser.add_argument(
        "--keyed", action="store_true", help="also POST /jobs with a fresh Idempotency-Key each"
    )
    args = parser.parse_args(argv)
    from .services import TRIVIAL_PATH
    from .wsgi_app import app

    trivial = _caller(app, "GET", TRIVIAL_PATH, b"", "200")
    post = _caller(app, "POST", "/jobs", BODY, "201")
    trivial_us, post_us = _per_call_us(trivial, args.requests), _per_call_us(post, args.requests)
    print(f"trivial endpoint: {trivial_us:.0f} us/request")
    print(f"POST /jobs:       {post_us:.0f} us/request ({post_us - trivial_us:.0f} us more)")
    if args.keyed:
        keyed = _caller(app, "POST", "/jobs", BODY, "201", keyed=True)
        keyed_us = _per_call_us(keyed, args.requests)
        print(f"POST /jobs with an Idempotency-Key: {keyed_us:.0f} us/request")
    if args.profile:
        profiler = cProfile.Profile()
        profiler.runcall(lambda: [post() for _ in range(args.requests)])
        pstats.Stats(profiler).sort_stats("cumulative").print_stats(40)
    return 0


if __name__ == "__main__":
    sys.exit(main())
