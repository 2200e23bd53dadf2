"""A network namespace joined to the host by a veth pair, and a private PostgreSQL cluster on
the host's end of it: a worker run inside the namespace reaches the database over a link the
test may cut (nothing passes either way, no reset is sent: the peer is silently gone).

Needs root and ``ip`` (iproute2). The fixtures ``network`` and ``veth_postgres`` (conftest.py)
build and remove them.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest

from .private_postgres import PrivatePostgres, find_bin

PREFIX = 30
IP_TIMEOUT_SECONDS = 10


def _ip(*args: str, namespace: str | None = None) -> None:
    argv = ["ip", *args] if namespace is None else ["ip", "netns", "exec", namespace, "ip", *args]
    subprocess.run(argv, check=True, capture_output=True, timeout=IP_TIMEOUT_SECONDS)


def unavailable(reason: str) -> None:
    """Skip a namespace scenario that cannot run here (under CI: fail it)."""
    if os.environ.get("CI"):
        pytest.fail(f"the network namespace scenarios must run under CI: {reason}")
    pytest.skip(reason)


@dataclass(frozen=True)
class Partitionable:
    """A namespace joined to the host by a veth pair whose link the test may cut."""

    namespace: str
    host_link: str
    ns_link: str
    subnet: str  # a private /30 of our own
    host_address: str
    ns_address: str

    def cut(self) -> None:
        """Take the namespace's end of the link down: nothing passes either way any more."""
        _ip("link", "set", self.ns_link, "down", namespace=self.namespace)

    def restore(self) -> None:
        """Bring the namespace's end of the link back up."""
        _ip("link", "set", self.ns_link, "up", namespace=self.namespace)

    def command(self, argv: list[str]) -> list[str]:
        """Return ``argv`` run inside the namespace."""
        return ["ip", "netns", "exec", self.namespace, *argv]


@contextmanager
def partitionable() -> Iterator[Partitionable]:
    """Make a namespace and its veth pair; remove both afterwards."""
    if os.geteuid() != 0:
        unavailable("the network namespace scenarios need root (ip netns, veth)")
    if shutil.which("ip") is None:
        unavailable("the network namespace scenarios need the ip command (iproute2)")
    suffix = os.getpid() % 100000
    octet = 1 + os.getpid() % 250  # several sessions on one machine: likely distinct subnets
    base = f"10.213.{octet}"
    net = Partitionable(
        f"jobsvc-part-{suffix}",
        f"jpart{suffix}h",
        f"jpart{suffix}n",
        f"{base}.0/{PREFIX}",
        f"{base}.1",
        f"{base}.2",
    )
    try:
        _ip("netns", "add", net.namespace)
        _ip("link", "add", net.host_link, "type", "veth", "peer", "name", net.ns_link)
        _ip("link", "set", net.ns_link, "netns", net.namespace)
        _ip("addr", "add", f"{net.host_address}/{PREFIX}", "dev", net.host_link)
        _ip("link", "set", net.host_link, "up")
        _ip(
            "addr", "add", f"{net.ns_address}/{PREFIX}", "dev", net.ns_link, namespace=net.namespace
        )
        _ip("link", "set", net.ns_link, "up", namespace=net.namespace)
        _ip("link", "set", "lo", "up", namespace=net.namespace)
        yield net
    finally:
        # Deleting one end of a veth pair deletes both; the namespace goes with its processes.
        subprocess.run(["ip", "link", "del", net.host_link], capture_output=True, check=False)
        subprocess.run(["ip", "netns", "del", net.namespace], capture_output=True, check=False)


class VethPostgres(PrivatePostgres):
    """A private cluster that listens on the host's end of the veth pair only."""

    def __init__(self, bin_dir: Path, net: Partitionable) -> None:
        super().__init__(bin_dir, max_connections=100)
        self.host_address = net.host_address
        self.url = f"postgresql+psycopg://postgres@{net.host_address}:{self.port}/postgres"
        with (self.data / "pg_hba.conf").open("a") as hba:
            hba.write(f"host all all {net.subnet} trust\n")

    def start(self) -> None:
        options = (
            f"-p {self.port} -k {self.root} -c listen_addresses={self.host_address} "
            f"-c fsync=off -c max_connections={self.max_connections}"
        )
        log = str(self.root / "server.log")
        self._run("pg_ctl", "-D", str(self.data), "-l", log, "-o", options, "-w", "start")


@contextmanager
def veth_cluster(net: Partitionable) -> Iterator[VethPostgres]:
    """Start a private cluster on the host's end of ``net``; destroy it afterwards."""
    bin_dir = find_bin()
    if bin_dir is None:
        unavailable("no PostgreSQL server binaries (initdb, pg_ctl) under /usr/lib/postgresql")
    server = VethPostgres(bin_dir, net)
    try:
        server.start()
        yield server
    finally:
        server.destroy()
