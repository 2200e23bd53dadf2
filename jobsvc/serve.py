"""``python -m jobsvc.serve``: the API under waitress with limits fit to face the internet.

waitress's defaults suit a development server: 100 connections in all (a hundred idle keep-alive
clients or slow senders lock everyone out), idle channels kept 120 s, and a request body of up to
1 GiB spooled to disk before the app can refuse it. Here the connection limit is high and polled
with ``poll()`` (``select()`` stops at 1,024 descriptors), the body limit is the app's own
``JOBSVC_MAX_BODY_BYTES`` (an oversized body is refused from its Content-Length, never spooled),
and waitress's threads match the database pool, so a request never waits for a connection
behind another thread's. Requests that wait for a job to end (``?wait=``) hold a thread but no
connection; waitress gets ``JOBSVC_MAX_WAITERS`` threads more for them, and a waiter past that
number is answered at once, so waiters never take the threads other requests need. Proxy
headers are trusted only from the address given.
"""

from __future__ import annotations

import argparse
import logging
import resource
import sys
from collections.abc import Sequence
from typing import Any

logger = logging.getLogger(__name__)

DEFAULT_THREADS = 8  # at most the PostgreSQL pool (pool_size + max_overflow, see store/engine)
DEFAULT_CONNECTION_LIMIT = 4096
DEFAULT_CHANNEL_TIMEOUT_SECONDS = 30
SPARE_DESCRIPTORS = 256  # for the database pool, log files and the listening sockets
PROXY_HEADERS = "x-forwarded-for x-forwarded-proto x-forwarded-host x-forwarded-port"


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m jobsvc.serve",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "--host",
        default="127.0.0.1",
        help="address to listen on (default: 127.0.0.1; 0.0.0.0 for every one)",
    )
    parser.add_argument("--port", type=int, default=8000)
    parser.add_argument(
        "--threads",
        type=int,
        default=DEFAULT_THREADS,
        help=f"request threads (default: {DEFAULT_THREADS})",
    )
    parser.add_argument(
        "--connection-limit",
        type=int,
        default=DEFAULT_CONNECTION_LIMIT,
        help=f"open connections at once, idle ones included (default: {DEFAULT_CONNECTION_LIMIT})",
    )
    parser.add_argument(
        "--channel-timeout",
        type=int,
        default=DEFAULT_CHANNEL_TIMEOUT_SECONDS,
        help=f"seconds an idle connection is kept (default: {DEFAULT_CHANNEL_TIMEOUT_SECONDS})",
    )
    parser.add_argument(
        "--trusted-proxy",
        default=None,
        help="the address of a reverse proxy whose X-Forwarded-* headers to "
        "believe (default: none, the headers are ignored)",
    )
    parser.add_argument(
        "--trusted-proxy-count",
        type=int,
        default=1,
        help="proxies in front of the API that append to X-Forwarded-For",
    )
    return parser


def _check(args: argparse.Namespace) -> str | None:
    for name in ("threads", "connection_limit", "channel_timeout", "trusted_proxy_count"):
        if getattr(args, name) < 1:
            return f"--{name.replace('_', '-')} must be at least 1, got {getattr(args, name)}"
    if not 0 < args.port < 65536:
        return f"--port must be 1 to 65535, got {args.port}"
    return None


def ensure_descriptors(connection_limit: int) -> int:
    """Raise the soft open-file limit toward the hard one so every connection can be held."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    wanted = connection_limit + SPARE_DESCRIPTORS
    if soft != resource.RLIM_INFINITY and soft < wanted:
        new_soft = wanted if hard == resource.RLIM_INFINITY else min(wanted, hard)
        resource.setrlimit(resource.RLIMIT_NOFILE, (new_soft, hard))
        soft = new_soft
    usable = connection_limit if soft == resource.RLIM_INFINITY else soft - SPARE_DESCRIPTORS
    return max(1, min(connection_limit, usable))


def waitress_options(
    args: argparse.Namespace, max_body_bytes: int, max_waiters: int = 0
) -> dict[str, Any]:
    """Return the keyword arguments ``waitress.serve`` gets for ``args``."""
    options: dict[str, Any] = {
        "host": args.host,
        "port": args.port,
        "threads": args.threads + max_waiters,
        "connection_limit": ensure_descriptors(args.connection_limit),
        "channel_timeout": args.channel_timeout,
        "asyncore_use_poll": True,
        "max_request_body_size": max_body_bytes,
        "ident": "jobsvc",
        "clear_untrusted_proxy_headers": True,
    }
    if args.trusted_proxy:
        options.update(
            trusted_proxy=args.trusted_proxy,
            trusted_proxy_count=args.trusted_proxy_count,
            trusted_proxy_headers=PROXY_HEADERS,
        )
    return options


def main(argv: Sequence[str] | None = None) -> int:
    """Serve the API until SIGTERM or Ctrl-C."""
    args = _parser().parse_args(argv)
    problem = _check(args)
    if problem:
        print(f"jobsvc.serve: {problem}", file=sys.stderr)
        return 2
    import waitress

    from . import create_app

    app = create_app()
    options = waitress_options(
        args, app.config["JOBSVC_MAX_BODY_BYTES"], app.config["JOBSVC_MAX_WAITERS"]
    )
    logger.info(
        "serving on http://%s:%s: %d threads (%d for waiting requests), up to %d connections, "
        "bodies up to %d bytes, proxy headers %s",
        args.host,
        args.port,
        options["threads"],
        app.config["JOBSVC_MAX_WAITERS"],
        options["connection_limit"],
        options["max_request_body_size"],
        f"from {args.trusted_proxy}" if args.trusted_proxy else "ignored",
    )
    waitress.serve(app, **options)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
