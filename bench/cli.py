"""``python -m bench``: run the workloads on each backend, print a table, write JSON."""

from __future__ import annotations

import argparse
import dataclasses
import os
import tempfile
import time
import traceback
from collections.abc import Callable, Sequence
from pathlib import Path

from .databases import bench_database
from .report import Report
from .sizes import FULL, SMALL, Sizes
from .workloads import (
    Run,
    pools,
    w0_ceiling,
    w1_enqueue,
    w2_drain,
    w3_latency,
    w4_backlog,
    w7_retention,
    w8_queue_limits,
    w9_wait,
)

WORKLOADS: dict[str, Callable[[Run], None]] = {
    "W0": w0_ceiling.run,
    "W1": w1_enqueue.run,
    "W2": w2_drain.run,
    "W3": w3_latency.run,
    "W4": w4_backlog.run,
    "W5": pools.run_w5,
    "W6": pools.run_w6,
    "W2P": pools.run_w2p,
    "W9": w9_wait.run,
    "W7": w7_retention.run,
    "W8": w8_queue_limits.run,
}
BACKENDS = ("sqlite", "postgresql")
RESULTS_DIR = Path(__file__).resolve().parent / "results"
POSTGRES_ENV = ("JOBSVC_BENCH_POSTGRES_URL", "JOBSVC_TEST_POSTGRES_URL")


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument(
        "--small",
        action="store_true",
        help="a few seconds per backend: the CI smoke run (figures meaningless)",
    )
    parser.add_argument(
        "--backends",
        default=",".join(BACKENDS),
        help="comma-separated: sqlite, postgresql (default: both)",
    )
    parser.add_argument(
        "--only",
        default=",".join(WORKLOADS),
        help=f"comma-separated workloads to run (default: {','.join(WORKLOADS)})",
    )
    parser.add_argument(
        "--postgres-url",
        default=None,
        help="a PostgreSQL server to create the bench's database on (default: "
        "$JOBSVC_BENCH_POSTGRES_URL or $JOBSVC_TEST_POSTGRES_URL)",
    )
    parser.add_argument(
        "--w2-concurrency",
        default=None,
        help="comma-separated --concurrency values W2 sweeps (default: the size's)",
    )
    parser.add_argument(
        "--w2-workers",
        default=None,
        help="comma-separated worker-process counts W2 runs (default: 1,2)",
    )
    parser.add_argument(
        "--out-dir",
        type=Path,
        default=RESULTS_DIR,
        help="where the JSON goes (default: bench/results)",
    )
    return parser


def _postgres_url(given: str | None) -> str | None:
    return given or next((os.environ[name] for name in POSTGRES_ENV if os.environ.get(name)), None)


def _numbers(text: str) -> tuple[int, ...]:
    return tuple(int(part) for part in text.split(",") if part.strip())


def _with_overrides(sizes: Sizes, args: argparse.Namespace) -> Sizes:
    """Return ``sizes`` with the W2 sweep narrowed as the command line asks."""
    changes: dict[str, tuple[int, ...]] = {}
    if args.w2_concurrency:
        changes["w2_concurrency"] = _numbers(args.w2_concurrency)
    if args.w2_workers:
        changes["w2_workers"] = _numbers(args.w2_workers)
    return dataclasses.replace(sizes, **changes)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the suite; return 1 if any workload failed or failed its own checks."""
    args = _parser().parse_args(argv)
    sizes = _with_overrides(SMALL if args.small else FULL, args)
    report = Report("small" if args.small else "full")
    selected = [name.strip().upper() for name in args.only.split(",") if name.strip()]
    admin_url = _postgres_url(args.postgres_url)
    stamp = time.strftime("%Y%m%dT%H%M%S")
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="jobsvc-bench-") as tmp:
        for backend in (b.strip() for b in args.backends.split(",") if b.strip()):
            if backend == "postgresql" and admin_url is None:
                # CI must measure both; elsewhere a missing server is only a note.
                (report.errors if os.environ.get("CI") else report.notes).append(
                    "postgresql skipped: no --postgres-url or $JOBSVC_TEST_POSTGRES_URL"
                )
                continue
            _run_backend(backend, admin_url, Path(tmp), sizes, selected, report)
    print()
    print(report.table())
    path = report.write_json(args.out_dir, stamp)
    print(f"\n{report.mode} run took {time.monotonic() - started:.0f}s; results: {path}")
    for note in report.notes:
        print(f"NOTE: {note}")
    for error in report.errors:
        print(f"ERROR: {error}")
    return 1 if report.errors else 0


def _run_backend(
    backend: str,
    admin_url: str | None,
    tmp: Path,
    sizes: object,
    selected: list[str],
    report: Report,
) -> None:
    with bench_database(backend, admin_url, tmp) as database:
        for name in selected:
            print(f"{backend} {name} ...", flush=True)
            run = Run(database, sizes, report, tmp)  # type: ignore[arg-type]
            try:
                WORKLOADS[name](run)
            except Exception as exc:
                traceback.print_exc()
                report.errors.append(f"{backend} {name}: {type(exc).__name__}: {exc}")
            finally:
                run.close()
