"""A real webhook receiver on a loopback port: records every POST, answers as told."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

# A secret in the Standard Webhooks format (whsec_ + base64 of 24 bytes), for tests only.
TEST_WEBHOOK_SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"  # noqa: S105 - a test value
HANG_SECONDS = 30.0  # how long a hanging answer holds the request (its client gives up first)


@dataclass(frozen=True)
class Received:
    """One POST the receiver got."""

    path: str
    headers: dict[str, str]
    body: bytes


class Receiver:
    """Answers each path with the statuses queued for it (then 200); ``"hang"`` never answers
    until ``release()``."""

    def __init__(self) -> None:
        self.received: list[Received] = []
        self._answers: dict[str, list[int | str]] = {}
        self._lock = threading.Lock()
        self._released = threading.Event()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("content-length", "0"))
                body = self.rfile.read(length)
                answer = receiver._record(self.path, dict(self.headers.items()), body)
                if answer == "hang":
                    receiver._released.wait(HANG_SECONDS)
                    return
                self.send_response(int(answer))
                self.send_header("content-length", "0")
                self.end_headers()

            def log_message(self, format: str, *args: object) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self.port = self._server.server_address[1]

    def url(self, path: str = "/hook") -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def answer(self, path: str, *answers: int | str) -> None:
        """Answer the next requests to ``path`` with ``answers`` in order, then 200."""
        with self._lock:
            self._answers[path] = list(answers)

    def release(self) -> None:
        """Let hanging requests end (without an answer)."""
        self._released.set()

    def to(self, path: str) -> list[Received]:
        with self._lock:
            return [r for r in self.received if r.path == path]

    def _record(self, path: str, headers: dict[str, str], body: bytes) -> int | str:
        with self._lock:
            self.received.append(Received(path, headers, body))
            queued = self._answers.get(path)
            return queued.pop(0) if queued else 200


@contextmanager
def receiving() -> Iterator[Receiver]:
    """Run a receiver on a free loopback port for the block."""
    receiver = Receiver()
    thread = threading.Thread(target=receiver._server.serve_forever, daemon=True)
    thread.start()
    try:
        yield receiver
    finally:
        receiver.release()
        receiver._server.shutdown()
        receiver._server.server_close()
