"""Which callback URLs jobsvc may POST to: the SSRF rules, checked at enqueue and at delivery.

A callback's host must match ``JOBSVC_WEBHOOK_ALLOWED_HOSTS`` (none by default: every
callback_url is refused). The host is then resolved, and every address it resolves to must be
public: loopback, private, link-local, shared, reserved, multicast and unspecified addresses
are refused unless ``JOBSVC_WEBHOOK_ALLOW_PRIVATE`` is on or the address itself is listed.
The check runs again at each delivery, whose request goes to an address this check returned
(pinned), so a name that resolves elsewhere later (DNS rebinding) cannot reach inside.
"""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import SplitResult, urlsplit

from .errors import JobsvcError, ValidationFailed

SCHEMES = {"http": 80, "https": 443}
Address = ipaddress.IPv4Address | ipaddress.IPv6Address
Resolve = Callable[[str, int], list[str]]


class CallbackRefused(JobsvcError):
    """The callback URL is not one jobsvc may call."""


@dataclass(frozen=True)
class Target:
    """A callback URL that passed the rules, and the address to connect to."""

    url: str
    host: str
    port: int
    address: str  # the checked address the request goes to (never resolved again)


def resolve(host: str, port: int) -> list[str]:
    """Return every address ``host`` resolves to (A and AAAA)."""
    infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return list(dict.fromkeys(str(info[4][0]) for info in infos))


def _host_allowed(host: str, allowed: Sequence[str]) -> bool:
    for pattern in allowed:
        if pattern.startswith("*."):
            if host.endswith(pattern[1:]) and host != pattern[2:]:
                return True
        elif host == pattern.strip("[]"):
            return True
    return False


def _listed(address: Address, allowed: Sequence[str]) -> bool:
    for pattern in allowed:
        try:
            if ipaddress.ip_address(pattern.strip("[]")) == address:
                return True
        except ValueError:
            continue
    return False


@dataclass(frozen=True)
class CallbackPolicy:
    """The SSRF rules of one configuration."""

    allowed_hosts: tuple[str, ...]
    allow_private: bool
    resolver: Resolve = resolve

    @classmethod
    def from_config(cls, config: dict) -> CallbackPolicy:  # type: ignore[type-arg]
        """Return the policy of ``JOBSVC_WEBHOOK_ALLOWED_HOSTS`` and ``..._ALLOW_PRIVATE``."""
        return cls(
            tuple(config["JOBSVC_WEBHOOK_ALLOWED_HOSTS"]), config["JOBSVC_WEBHOOK_ALLOW_PRIVATE"]
        )

    def check(self, url: str) -> Target:
        """Return where ``url`` may be called, or raise ``CallbackRefused`` saying why."""
        parts = _split(url)
        host = (parts.hostname or "").lower()
        if not self.allowed_hosts:
            raise CallbackRefused(
                "webhooks are off: JOBSVC_WEBHOOK_ALLOWED_HOSTS lists no host callbacks may name"
            )
        if not _host_allowed(host, self.allowed_hosts):
            raise CallbackRefused(
                f"host {host!r} is not in JOBSVC_WEBHOOK_ALLOWED_HOSTS "
                f"({', '.join(self.allowed_hosts)})"
            )
        port = parts.port or SCHEMES[parts.scheme]
        try:
            addresses = self.resolver(host, port)
        except (OSError, UnicodeError) as exc:
            raise CallbackRefused(f"host {host!r} does not resolve: {exc}") from None
        if not addresses:
            raise CallbackRefused(f"host {host!r} resolves to no address")
        for text in addresses:
            address = ipaddress.ip_address(text.split("%")[0])
            if not (
                address.is_global or self.allow_private or _listed(address, self.allowed_hosts)
            ):
                raise CallbackRefused(
                    f"host {host!r} resolves to {address}, a loopback, private, link-local or "
                    "otherwise non-public address (JOBSVC_WEBHOOK_ALLOW_PRIVATE is off)"
                )
        return Target(url, host, port, addresses[0])


def check_callback_url(url: str, config: Mapping[str, Any], policy: CallbackPolicy) -> None:
    """Refuse a new job's ``callback_url`` as a 422 on that field: webhooks off (no signing
    secret) or a URL ``policy`` forbids. Every way to enqueue (API, CLI, ``jobsvc.enqueue``)
    calls it; the deliverer checks again at each delivery (DNS rebinding)."""
    if not config["JOBSVC_WEBHOOK_SECRET"]:
        raise ValidationFailed(
            {"callback_url": ["Webhooks are off: JOBSVC_WEBHOOK_SECRET is not set."]}
        )
    try:
        policy.check(url)
    except CallbackRefused as exc:
        raise ValidationFailed({"callback_url": [f"Refused: {exc.message}."]}) from None


def _split(url: str) -> SplitResult:
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 - raises ValueError on a port out of range
    except ValueError as exc:
        raise CallbackRefused(f"not a URL: {exc}") from None
    if parts.scheme not in SCHEMES:
        raise CallbackRefused("must be an http:// or https:// URL")
    if not parts.hostname:
        raise CallbackRefused("names no host")
    if parts.username is not None or parts.password is not None:
        raise CallbackRefused("may not carry a user name or password")
    return parts
