"""Exceptions a handler raises, or that the worker raises inside a handler's thread."""

from __future__ import annotations


class PermanentError(Exception):
    """The job cannot succeed however often it is retried: fail it now."""


class Interrupted(BaseException):
    """The worker stopped this attempt (timeout, lost lease, shutdown).

    A BaseException, so a handler's ``except Exception`` does not swallow it.
    """


class JobTimeout(Interrupted):
    """The attempt ran past the job's ``timeout_seconds``."""


class Cancelled(Interrupted):
    """The job was cancelled while this attempt ran."""


class LeaseUnrenewed(Interrupted):
    """The worker could not renew this attempt's lease; it stops before another may rescue it."""
