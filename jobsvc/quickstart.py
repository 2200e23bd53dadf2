"""``make run``: the API under waitress and one worker, in the foreground; Ctrl-C stops both."""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import time

from . import create_app

CHILD_STOP_SECONDS = 35.0


def main() -> int:
    """Migrate once, then run the API and a worker until one exits or Ctrl-C."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", default="8000")
    args = parser.parse_args()
    app = create_app()  # applies migrations before either child starts
    print(f"jobsvc: database {app.config['SQLALCHEMY_DATABASE_URI']}", flush=True)
    print(
        f"jobsvc: API on http://{args.host}:{args.port}  (Ctrl-C stops API and worker)", flush=True
    )
    # Fixed argv of our own entry points: nothing here comes from outside. Each child gets a
    # session of its own, so Ctrl-C reaches only this process, which then sends one SIGTERM: a
    # worker that got the terminal's SIGINT as well would take our SIGTERM as a second signal
    # and exit without draining.
    api = [sys.executable, "-m", "jobsvc.serve", "--host", args.host, "--port", args.port]
    worker = [sys.executable, "-m", "worker", "--queues", "*"]
    children = [subprocess.Popen(argv, start_new_session=True) for argv in (api, worker)]  # noqa: S603
    stop = False

    def _stop(signum: int, frame: object) -> None:
        nonlocal stop
        stop = True

    signal.signal(signal.SIGINT, _stop)
    signal.signal(signal.SIGTERM, _stop)
    while not stop and all(child.poll() is None for child in children):
        time.sleep(0.2)
    for child in children:
        if child.poll() is None:
            child.send_signal(signal.SIGTERM)
    deadline = time.monotonic() + CHILD_STOP_SECONDS
    for child in children:
        try:
            child.wait(max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            child.kill()
    return 0 if stop else 1


if __name__ == "__main__":
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    raise SystemExit(main())
