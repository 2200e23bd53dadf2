"""Headless Chromium for the dashboard tests: Debian's ``chromium``, driven by Playwright.

Playwright never downloads a browser here: it is given the system's executable. The tests are
skipped (never failed) when the package is missing outside CI; under CI it must be there
(``.ci/run`` installs it).
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

CHROMIUM_CANDIDATES = ("/usr/bin/chromium", "/usr/bin/chromium-browser")
REPO = Path(__file__).resolve().parents[2]
SCREENSHOTS = REPO / "docs" / "screenshots"
UPDATE_SCREENSHOTS_ENV = "JOBSVC_UPDATE_SCREENSHOTS"  # 1: the test rewrites docs/screenshots


def chromium_path() -> str:
    """Return the system Chromium, or skip (fail under CI) when there is none."""
    for candidate in (os.environ.get("JOBSVC_CHROMIUM"), *CHROMIUM_CANDIDATES):
        if candidate and shutil.which(candidate):
            return candidate
    if os.environ.get("CI"):
        pytest.fail("Debian's chromium package is missing; .ci/run installs it")
    pytest.skip("the browser tests need Debian's chromium package (/usr/bin/chromium)")


@contextmanager
def browser() -> Iterator[Any]:
    """Yield a headless Chromium (Playwright's ``Browser``); closed afterwards."""
    os.environ.setdefault("PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD", "1")
    from playwright.sync_api import sync_playwright

    executable = chromium_path()
    with sync_playwright() as playwright:
        # --no-sandbox: CI runs as root, where Chromium's sandbox refuses to start.
        launched = playwright.chromium.launch(
            executable_path=executable, headless=True, args=["--no-sandbox"]
        )
        try:
            yield launched
        finally:
            launched.close()


def screenshot(page: Any, tmp_path: Path, name: str) -> Path:
    """Save a full-page screenshot in ``tmp_path`` (and in docs/screenshots when asked)."""
    path = tmp_path / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)
    if os.environ.get(UPDATE_SCREENSHOTS_ENV) == "1":
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(path, SCREENSHOTS / path.name)
    return path
