"""URL converters of the API."""

from __future__ import annotations

from werkzeug.routing import BaseConverter


class JobIdConverter(BaseConverter):
    """A job id segment: ASCII digits only, so ``/jobs/batch`` never routes as a job id.

    The value stays a string; the view checks its range and answers 404 past it.
    """

    regex = r"[0-9]{1,19}"
