"""Collecting figures, printing them as one table, and writing them as JSON."""

from __future__ import annotations

import json
import platform
import statistics
import subprocess
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any


@dataclass(frozen=True)
class Figure:
    """One measured number."""

    workload: str
    case: str
    metric: str
    backend: str
    value: float
    unit: str


@dataclass
class Report:
    """Every figure of one run, plus what the run was."""

    mode: str
    figures: list[Figure] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def add(
        self, workload: str, case: str, metric: str, backend: str, value: float, unit: str
    ) -> None:
        """Record one figure and echo it, so a long run shows progress."""
        self.figures.append(Figure(workload, case, metric, backend, round(value, 3), unit))
        print(f"  {backend:10} {workload:4} {case:38} {metric:14} {value:12.2f} {unit}", flush=True)

    def table(self) -> str:
        """Return the figures as a Markdown table, one column per backend."""
        backends = sorted({f.backend for f in self.figures}, key=["sqlite", "postgresql"].index)
        rows: dict[tuple[str, str, str, str], dict[str, float]] = {}
        for figure in self.figures:
            key = (figure.workload, figure.case, figure.metric, figure.unit)
            rows.setdefault(key, {})[figure.backend] = figure.value
        lines = [
            "| workload | case | metric | " + " | ".join(backends) + " | unit |",
            "|---|---|---|" + "---:|" * len(backends) + "---|",
        ]
        for (workload, case, metric, unit), values in rows.items():
            cells = " | ".join(_cell(values.get(b)) for b in backends)
            lines.append(f"| {workload} | {case} | {metric} | {cells} | {unit} |")
        return "\n".join(lines)

    def write_json(self, directory: Path, stamp: str) -> Path:
        """Write the run as ``<directory>/<stamp>.json``; return the path."""
        directory.mkdir(parents=True, exist_ok=True)
        path = directory / f"{stamp}.json"
        document = {
            "mode": self.mode,
            "machine": machine(),
            "errors": self.errors,
            "notes": self.notes,
            "figures": [asdict(f) for f in self.figures],
        }
        path.write_text(json.dumps(document, indent=2) + "\n")
        return path


def _cell(value: float | None) -> str:
    if value is None:
        return "-"
    return f"{value:,.0f}" if abs(value) >= 100 else f"{value:,.2f}"


def percentile(values: list[float], fraction: float) -> float:
    """Return the ``fraction`` quantile of ``values`` (nearest rank on the sorted list)."""
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(fraction * len(ordered)) - 1))]


def median(values: list[float]) -> float:
    """Return the median of ``values``."""
    return statistics.median(values)


def machine() -> dict[str, Any]:
    """Describe the machine the run used."""
    info: dict[str, Any] = {"python": platform.python_version(), "platform": platform.platform()}
    try:
        info["nproc"] = int(
            subprocess.run(["nproc"], capture_output=True, text=True, check=True).stdout
        )
        info["memory"] = subprocess.run(
            ["free", "-h"], capture_output=True, text=True, check=True
        ).stdout.splitlines()[1]
    except (OSError, subprocess.CalledProcessError, ValueError):
        pass
    return info
