"""Scenario: a network partition. A worker runs in a network namespace of its own, reaching a
private PostgreSQL cluster over a veth pair; its link is cut while its handlers run. It cannot
renew its leases, so it must stop its handlers before they expire: when a worker on the host
rescues the jobs, no first attempt may still be running. Counted from the handlers' own start
and end records, never from the workers' logs.

PostgreSQL only: SQLite serves one host and has no network to lose. Needs root and ``ip``.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.support.processes import Processes
from tests.support.waiting import wait_until

from .private_postgres import PrivatePostgres, find_bin
from .service import record, size

JOBS = size(4, 16)
WORK_SECONDS = size(6.0, 8.0)  # longer than the lease: the partitioned attempt must be stopped
LEASE = {"JOBSVC_LEASE_SECONDS": "2", "JOBSVC_HEARTBEAT_SECONDS": "0.4"}
HANDLERS = "tests.handlers,tests.cancel_handlers"
# A private /30 of our own: the host side, the namespace side.
SUBNET, HOST_ADDRESS, NS_ADDRESS, PREFIX = "10.213.7.0/30", "10.213.7.1", "10.213.7.2", 30
SETTLE_SECONDS = 60.0
IP_TIMEOUT_SECONDS = 10


def _ip(*args: str, namespace: str | None = None) -> None:
    argv = ["ip", *args] if namespace is None else ["ip", "netns", "exec", namespace, "ip", *args]
    subprocess.run(argv, check=True, capture_output=True, timeout=IP_TIMEOUT_SECONDS)


def _unavailable(reason: str) -> None:
    if os.environ.get("CI"):
        pytest.fail(f"the partition scenario must run under CI: {reason}")
    pytest.skip(reason)


@dataclass(frozen=True)
class Partitionable:
    """A namespace joined to the host by a veth pair whose link the test may cut."""

    namespace: str
    host_link: str
    ns_link: str

    def cut(self) -> None:
        """Take the namespace's end of the link down: nothing passes either way any more."""
        _ip("link", "set", self.ns_link, "down", namespace=self.namespace)

    def command(self, argv: list[str]) -> list[str]:
        """Return ``argv`` run inside the namespace."""
        return ["ip", "netns", "exec", self.namespace, *argv]


@pytest.fixture
def network() -> Iterator[Partitionable]:
    if os.geteuid() != 0:
        _unavailable("the partition scenario needs root (ip netns, veth)")
    if shutil.which("ip") is None:
        _unavailable("the partition scenario needs the ip command (iproute2)")
    suffix = os.getpid() % 100000
    net = Partitionable(f"jobsvc-part-{suffix}", f"jpart{suffix}h", f"jpart{suffix}n")
    try:
        _ip("netns", "add", net.namespace)
        _ip("link", "add", net.host_link, "type", "veth", "peer", "name", net.ns_link)
        _ip("link", "set", net.ns_link, "netns", net.namespace)
        _ip("addr", "add", f"{HOST_ADDRESS}/{PREFIX}", "dev", net.host_link)
        _ip("link", "set", net.host_link, "up")
        _ip("addr", "add", f"{NS_ADDRESS}/{PREFIX}", "dev", net.ns_link, namespace=net.namespace)
        _ip("link", "set", net.ns_link, "up", namespace=net.namespace)
        _ip("link", "set", "lo", "up", namespace=net.namespace)
        yield net
    finally:
        # Deleting one end of a veth pair deletes both; the namespace goes with its processes.
        subprocess.run(["ip", "link", "del", net.host_link], capture_output=True, check=False)
        subprocess.run(["ip", "netns", "del", net.namespace], capture_output=True, check=False)


class VethPostgres(PrivatePostgres):
    """A private cluster that listens on the host's end of the veth pair only."""

    def __init__(self, bin_dir: Path) -> None:
        super().__init__(bin_dir)
        self.url = f"postgresql+psycopg://postgres@{HOST_ADDRESS}:{self.port}/postgres"
        with (self.data / "pg_hba.conf").open("a") as hba:
            hba.write(f"host all all {SUBNET} trust\n")

    def start(self) -> None:
        options = (
            f"-p {self.port} -k {self.root} -c listen_addresses={HOST_ADDRESS} "
            "-c fsync=off -c max_connections=100"
        )
        log = str(self.root / "server.log")
        self._run("pg_ctl", "-D", str(self.data), "-l", log, "-o", options, "-w", "start")


@pytest.fixture
def veth_postgres(network: Partitionable) -> Iterator[VethPostgres]:
    bin_dir = find_bin()
    if bin_dir is None:
        _unavailable("no PostgreSQL server binaries (initdb, pg_ctl) under /usr/lib/postgresql")
    server = VethPostgres(bin_dir)
    try:
        server.start()
        yield server
    finally:
        server.destroy()


Run = tuple[float, float, int, str]  # start, end (inf: never ended), pid, how it ended


def _attempts(executions: list[dict]) -> dict[int, list[Run]]:
    """Per job, each attempt's run, from the handler's own start and end records."""
    ends = {(e["job_id"], e["token"]): e for e in executions if e["event"] == "end"}
    attempts: dict[int, list[Run]] = {}
    for e in executions:
        if e["event"] == "start":
            end = ends.get((e["job_id"], e["token"]), {"t": float("inf"), "how": "running"})
            attempts.setdefault(e["job_id"], []).append((e["t"], end["t"], e["pid"], end["how"]))
    return attempts


def _overlaps(runs: list[Run]) -> int:
    runs = sorted(runs)
    return sum(1 for a, b in zip(runs, runs[1:], strict=False) if b[0] < a[1])


def test_a_partitioned_worker_stops_its_handlers_before_they_are_rescued(
    network: Partitionable, veth_postgres: VethPostgres, tmp_path: Path
) -> None:
    service = Processes(veth_postgres.url, tmp_path)
    service.env.update({"JOBSVC_HANDLERS": HANDLERS, **LEASE})
    partitioned: subprocess.Popen[bytes] | None = None
    try:
        service.start_api()
        argv = [sys.executable, "-m", "worker", "--queues", "*", "--concurrency", str(JOBS)]
        partitioned = service._spawn(network.command(argv), "worker-partitioned")
        body = {"type": "cancel.stubborn", "payload": {"seconds": WORK_SECONDS}}
        ids = [service.post({**body, "max_attempts": 3}) for _ in range(JOBS)]

        def all_started_in_the_namespace() -> bool:
            pids = {e["job_id"]: e["pid"] for e in service.executions() if e["event"] == "start"}
            return set(pids) == set(ids) and set(pids.values()) == {partitioned.pid}

        wait_until(all_started_in_the_namespace, message="the partitioned worker did not start")
        network.cut()
        service.start_worker("--concurrency", str(JOBS))  # on the host: rescues once leases expire
        jobs = service.wait_terminal(ids, timeout=SETTLE_SECONDS)
        attempts = _attempts(service.executions())
        first = [runs for runs in attempts.values() if runs and runs[0][2] == partitioned.pid]
        fenced = sum(1 for runs in first if runs[0][3] == "LeaseUnrenewed")
        overlapping = sum(_overlaps(runs) for runs in attempts.values())
        lost = sum(1 for job in jobs if job["status"] != "DONE")
        rescued = sum(1 for job in jobs if job["attempts"] == 2)
        counters = {
            "jobs": JOBS,
            "fenced": fenced,
            "rescued": rescued,
            "overlapping": overlapping,
            "lost": lost,
        }
        print("[faults] partition[postgresql-private]:", counters)
        record("partition[postgresql-private]", **counters)
        assert (overlapping, lost) == (0, 0), counters
        assert fenced == rescued == JOBS, counters
    finally:
        if partitioned is not None and partitioned.poll() is None:
            partitioned.send_signal(signal.SIGKILL)  # its writes can never arrive: no drain
            partitioned.wait()
        service.stop_all()
