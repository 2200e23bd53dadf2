"""The API's reference at ``/docs``: Swagger UI from the ``swagger-ui-bundle`` wheel's files.

Nothing is fetched from another site. The page needs the dashboard's access (a session, or a
loopback client while no token exists) and reads the same OpenAPI document as ``/openapi.json``
from ``/docs/openapi.json``, so it loads in a browser that has no bearer token to send; "Try it
out" calls send the token given to Swagger UI's "Authorize" button.
"""

from __future__ import annotations

from flask import Blueprint, Response, g, jsonify, redirect, render_template, request, url_for
from swagger_ui_bundle import swagger_ui_path

from ..api.state import state
from . import access
from .access import NeedsLogin, Refused

bp = Blueprint(
    "apidocs",
    __name__,
    url_prefix="/docs",
    static_folder=swagger_ui_path,
    static_url_path="/swagger-ui",
    template_folder="templates",
)


@bp.before_request
def _identify() -> Response | None:
    if request.endpoint == "apidocs.static":
        return None
    try:
        g.viewer = access.identify()
    except NeedsLogin:
        return redirect(url_for("dashboard.login", next="/dashboard/"))
    return None


@bp.after_request
def _cookie(response: Response) -> Response:
    to_write = g.pop("session_to_write", None)
    if to_write is not None:
        access.write_session(response, to_write)
    return response


@bp.errorhandler(Refused)
def _refused(error: Refused) -> tuple[str, int]:
    return render_template("dashboard/refused.html", message=error.message), error.status


@bp.route("")
@bp.route("/")
def docs() -> str:
    """Swagger UI over the API's OpenAPI document."""
    return render_template("dashboard/apidocs.html")


@bp.route("/openapi.json")
def document() -> Response:
    """The OpenAPI document of ``/openapi.json``, for a browser with a dashboard session."""
    return jsonify(state().openapi)
