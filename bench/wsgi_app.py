"""The real API plus one trivial endpoint, so W1 can compare with the framework's own ceiling."""

from __future__ import annotations

from flask import Response, jsonify

from jobsvc import create_app

from .services import TRIVIAL_PATH

app = create_app()


def trivial() -> Response:
    """Answer a constant JSON body: Flask + waitress and nothing of jobsvc's."""
    return jsonify({"ok": True})


app.add_url_rule(TRIVIAL_PATH, "bench_trivial", trivial, methods=["GET"])
