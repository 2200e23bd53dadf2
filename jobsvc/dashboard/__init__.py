"""The operator's dashboard at ``/dashboard``: server-rendered pages over the API's own stores.

Every asset (htmx, uPlot, the page's own script and style) is served from this package; no page
loads anything from another origin. Access follows the API's rule (``access``).
"""

from __future__ import annotations

from flask import Flask

from . import access, apidocs, views
from .views import bp

__all__ = ["bp", "register_dashboard"]


def register_dashboard(app: Flask) -> None:
    """Register the dashboard blueprint and its session signer on ``app``."""
    access.init_app(app)
    app.register_blueprint(views.bp)
    app.register_blueprint(apidocs.bp)
