"""The delivery unit: POSTs completion webhooks from the outbox, on a thread of its own.

It never takes a job slot: one thread, one ``httpx.Client`` with timeouts, tries one at a time
(a slow receiver delays other webhooks, never jobs). Each try re-checks the callback URL
against the SSRF rules (a name may resolve elsewhere by now) and connects to the address that
check returned, with the original host in ``Host`` and TLS's SNI, so DNS cannot change it
between the check and the connection. Redirects are not followed.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from datetime import UTC, datetime
from urllib.parse import urlsplit, urlunsplit

import httpx

from jobsvc.callbacks import CallbackPolicy, CallbackRefused, Target
from jobsvc.errors import DatabaseUnavailable
from jobsvc.store.deliveries import DeliveryStore, DueDelivery
from jobsvc.webhooks import Signer, job_document

logger = logging.getLogger(__name__)

CLAIM_BATCH = 20  # deliveries leased at once
LEASE_MARGIN_SECONDS = 2.0  # a try's lease: its timeout plus this
USER_AGENT = "jobsvc-webhooks"


def _pinned(target: Target) -> tuple[str, dict[str, str], dict[str, str]]:
    """Return the URL to the checked address, its Host header and its request extensions."""
    parts = urlsplit(target.url)
    address = f"[{target.address}]" if ":" in target.address else target.address
    url = urlunsplit((parts.scheme, f"{address}:{target.port}", parts.path or "/", parts.query, ""))
    host = parts.netloc.rsplit("@", 1)[-1]
    extensions = {"sni_hostname": target.host} if parts.scheme == "https" else {}
    return url, {"host": host}, extensions


class Deliverer:
    """Delivers due webhooks until stopped."""

    def __init__(
        self,
        store: DeliveryStore,
        policy: CallbackPolicy,
        signer: Signer,
        *,
        timeout_seconds: float,
        max_attempts: int,
        poll_seconds: float,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self._store = store
        self._policy = policy
        self._signer = signer
        self._timeout_seconds = timeout_seconds
        self._max_attempts = max_attempts
        self._poll_seconds = poll_seconds
        self._clock = clock
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._client = httpx.Client(
            timeout=httpx.Timeout(timeout_seconds),
            follow_redirects=False,
            trust_env=False,  # no proxy from the environment: the SSRF check names the peer
            headers={"user-agent": USER_AGENT},
        )

    def start(self) -> None:
        """Start the delivery thread."""
        self._thread = threading.Thread(target=self._run, name="jobsvc-webhooks", daemon=True)
        self._thread.start()

    def close(self) -> None:
        """Stop after the try in flight (whose row stays pending if it does not finish)."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(self._timeout_seconds + 1.0)
        self._client.close()

    def run_once(self) -> int:
        """Try every delivery due now; return how many were tried."""
        due = self._store.claim_due(CLAIM_BATCH, self._timeout_seconds + LEASE_MARGIN_SECONDS)
        for delivery in due:
            if self._stop.is_set():
                break  # the rest stay pending; their lease runs out and another try comes
            self._deliver(delivery)
        return len(due)

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                tried = self.run_once()
            except DatabaseUnavailable as exc:
                logger.warning("webhooks: database unavailable: %s", exc)
                tried = 0
            except Exception:  # the unit must outlive any one delivery's surprise
                logger.exception("webhooks: delivery loop failed")
                tried = 0
            if not tried:
                self._stop.wait(self._poll_seconds)

    def _deliver(self, delivery: DueDelivery) -> None:
        try:
            target = self._policy.check(delivery.callback_url)
        except CallbackRefused as exc:
            self._store.failed(delivery, f"refused: {exc.message}", final=True)
            logger.warning("webhook of job %s refused: %s", delivery.job_id, exc.message)
            return
        signed = self._signer.sign(
            f"jobsvc-delivery-{delivery.id}", job_document(delivery.job), self._clock()
        )
        url, host, extensions = _pinned(target)
        try:
            # Streamed and closed unread: only the status counts, and a receiver's answer,
            # however large, never costs the worker memory.
            with self._client.stream(
                "POST",
                url,
                content=signed.body.encode(),
                headers={**signed.headers, **host},
                extensions=extensions,
            ) as response:
                status = response.status_code
        except httpx.HTTPError as exc:
            self._failed(delivery, f"{type(exc).__name__}: {exc}")
            return
        if 200 <= status < 300:
            self._store.delivered(delivery)
            logger.info("webhook of job %s delivered (try %s)", delivery.job_id, delivery.attempt)
        else:
            self._failed(delivery, f"HTTP {status}")

    def _failed(self, delivery: DueDelivery, error: str) -> None:
        final = delivery.attempt >= self._max_attempts
        self._store.failed(delivery, error, final=final)
        logger.warning(
            "webhook of job %s failed (try %s of %s): %s",
            delivery.job_id,
            delivery.attempt,
            self._max_attempts,
            error,
        )
