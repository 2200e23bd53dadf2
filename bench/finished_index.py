"""What ``ix_jobs_finished`` costs the completion: W2 with and without it, alternating.

The index (migration 0004_ops) serves the dashboard's per-minute chart and retention's
deletes; every completion adds an entry to it. This drains the same backlog (20,000 no-op
jobs, one worker at the default --concurrency) on one database, dropping and re-creating the
index between drains, so both variants run side by side on the same code and machine::

    JOBSVC_TEST_POSTGRES_URL=postgresql://postgres@127.0.0.1:5432/test \\
        .venv/bin/python -m bench.finished_index --backends postgresql,sqlite --rounds 4
"""

from __future__ import annotations

import argparse
import os
import tempfile
from pathlib import Path

from sqlalchemy import text

from .databases import bench_database
from .report import Report, median
from .sizes import FULL
from .workloads import Run
from .workloads.w2_drain import _drain_once

CREATE = "CREATE INDEX ix_jobs_finished ON jobs (finished_at, status) WHERE finished_at IS NOT NULL"
CONCURRENCY = 32  # the worker's default


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backends", default="postgresql,sqlite")
    parser.add_argument("--rounds", type=int, default=4)
    args = parser.parse_args()
    admin_url = os.environ.get("JOBSVC_BENCH_POSTGRES_URL") or os.environ.get(
        "JOBSVC_TEST_POSTGRES_URL"
    )
    for backend in args.backends.split(","):
        tmp = Path(tempfile.mkdtemp(prefix="jobsvc-finished-index-"))
        with bench_database(backend, admin_url, tmp) as database:
            run = Run(database, FULL, Report("full"), tmp)
            rates: dict[str, list[float]] = {"with": [], "without": []}
            for _ in range(args.rounds):
                for variant in rates:
                    with database.engine.begin() as connection:
                        connection.execute(text("DROP INDEX IF EXISTS ix_jobs_finished"))
                        if variant == "with":
                            connection.execute(text(CREATE))
                    rates[variant].append(_drain_once(run, 1, CONCURRENCY))
            run.close()
        ratios = [w / o for w, o in zip(rates["with"], rates["without"], strict=True)]
        for variant, figures in rates.items():
            shown = ", ".join(f"{rate:,.0f}" for rate in figures)
            print(f"{backend} {variant} the index: median {median(figures):,.0f} jobs/s ({shown})")
        print(f"{backend} with / without, per round: median {median(ratios):.2f} x")


if __name__ == "__main__":
    main()
