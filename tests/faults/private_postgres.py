"""A throwaway PostgreSQL cluster of our own, so a scenario may stop and restart it without
touching the shared server other tests use."""

from __future__ import annotations

import glob
import os
import shutil
import subprocess
import tempfile
from pathlib import Path

from tests.support.ports import free_port

BIN_GLOB = "/usr/lib/postgresql/*/bin"
OS_USER = "postgres"  # initdb refuses to run as root
COMMAND_TIMEOUT_SECONDS = 60


def find_bin() -> Path | None:
    """Return the newest PostgreSQL server bin directory with initdb and pg_ctl, if any."""
    for candidate in sorted(glob.glob(BIN_GLOB), reverse=True):
        path = Path(candidate)
        if (path / "initdb").exists() and (path / "pg_ctl").exists():
            return path
    return None


class PrivatePostgres:
    """initdb into a temp dir, run on a free loopback port; stop, start and restart on demand."""

    def __init__(self, bin_dir: Path, max_connections: int = 200) -> None:
        self.bin_dir = bin_dir
        self.max_connections = max_connections
        self.root = Path(tempfile.mkdtemp(prefix="jobsvc-pg-"))
        self.data = self.root / "data"
        self.port = free_port()
        self.url = f"postgresql+psycopg://postgres@127.0.0.1:{self.port}/postgres"
        if os.geteuid() == 0:
            shutil.chown(self.root, OS_USER)
        self._run("initdb", "-D", str(self.data), "-A", "trust", "-U", "postgres", "--no-sync")

    def _run(self, program: str, *args: str) -> None:
        argv = [str(self.bin_dir / program), *args]
        if os.geteuid() == 0:
            argv = ["runuser", "-u", OS_USER, "--", *argv]
        subprocess.run(argv, check=True, capture_output=True, timeout=COMMAND_TIMEOUT_SECONDS)

    def start(self) -> None:
        options = (
            f"-p {self.port} -k {self.root} -c listen_addresses=127.0.0.1 "
            f"-c fsync=off -c max_connections={self.max_connections}"
        )
        self._run(
            "pg_ctl",
            "-D",
            str(self.data),
            "-l",
            str(self.root / "server.log"),
            "-o",
            options,
            "-w",
            "start",
        )

    def stop(self, mode: str = "fast") -> None:
        self._run("pg_ctl", "-D", str(self.data), "-m", mode, "-w", "stop")

    def destroy(self) -> None:
        try:
            self.stop("immediate")
        except subprocess.CalledProcessError:
            pass  # already down
        shutil.rmtree(self.root, ignore_errors=True)
