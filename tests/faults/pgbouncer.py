"""A PgBouncer of our own in transaction pooling mode, on a free port, in front of a server."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import tempfile
from pathlib import Path

import psycopg
import pytest

from tests.support.ports import free_port
from tests.support.waiting import wait_until

OS_USER = "postgres"  # pgbouncer refuses to run as root
START_TIMEOUT_SECONDS = 15.0
SERVER_POOL_SIZE = 4  # few server connections: many clients' transactions share each one


class PgBouncer:
    """``pgbouncer`` with ``pool_mode = transaction`` forwarding every database to one server."""

    def __init__(self, server_host: str, server_port: int, server_user: str) -> None:
        binary = shutil.which("pgbouncer") or "/usr/sbin/pgbouncer"
        if not os.path.exists(binary):
            if os.environ.get("CI"):
                pytest.fail("pgbouncer must be installed under CI (.ci/run installs it)")
            pytest.skip("no pgbouncer (Debian package pgbouncer)")
        self.binary = binary
        self.root = Path(tempfile.mkdtemp(prefix="jobsvc-pgbouncer-"))
        self.port = free_port()
        self.log = self.root / "pgbouncer.log"
        # auth_type any: the test server trusts loopback; user= makes every client that user.
        (self.root / "pgbouncer.ini").write_text(
            "[databases]\n"
            f"* = host={server_host} port={server_port} user={server_user}\n"
            "[pgbouncer]\n"
            "listen_addr = 127.0.0.1\n"
            f"listen_port = {self.port}\n"
            "unix_socket_dir =\n"
            "auth_type = any\n"
            f"admin_users = {OS_USER}\n"
            "pool_mode = transaction\n"
            f"default_pool_size = {SERVER_POOL_SIZE}\n"
            "max_client_conn = 500\n"
            f"logfile = {self.log}\n"
        )
        if os.geteuid() == 0:
            shutil.chown(self.root, OS_USER)
        self._process: subprocess.Popen[bytes] | None = None

    def url(self, database: str) -> str:
        return f"postgresql+psycopg://{OS_USER}@127.0.0.1:{self.port}/{database}"

    def start(self) -> None:
        argv = [self.binary, str(self.root / "pgbouncer.ini")]
        if os.geteuid() == 0:
            argv = ["runuser", "-u", OS_USER, "--", *argv]
        self._process = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        wait_until(
            self._answers,
            timeout=START_TIMEOUT_SECONDS,
            interval=0.05,
            message=f"pgbouncer did not start: {self.root}",
        )

    def _admin(self) -> psycopg.Connection:
        # The admin console speaks the simple query protocol only: a client-side cursor.
        return psycopg.connect(
            f"host=127.0.0.1 port={self.port} user={OS_USER} dbname=pgbouncer",
            autocommit=True,
            cursor_factory=psycopg.ClientCursor,
        )

    def _answers(self) -> bool:
        try:
            with self._admin() as admin:
                admin.execute("SHOW VERSION")
            return True
        except psycopg.OperationalError:
            return False

    def server_connections(self) -> int:
        """Return how many server connections PgBouncer holds open now."""
        with self._admin() as admin:
            return len(admin.execute("SHOW SERVERS").fetchall())

    def close(self) -> None:
        if self._process is not None and self._process.poll() is None:
            self._process.send_signal(signal.SIGTERM)  # runuser forwards it
            try:
                self._process.wait(10)
            except subprocess.TimeoutExpired:
                self._process.kill()
                self._process.wait()
        shutil.rmtree(self.root, ignore_errors=True)
