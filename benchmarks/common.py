"""Helpers the benchmarks share: timing subprocesses the way a user would run them."""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
import time


def wall(cmd: list[str], repeat: int = 5, env: dict | None = None) -> float:
    """Median wall time of a command, in seconds; fails loudly if the command fails."""
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env={**os.environ, **(env or {})})
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def python(*args: str) -> list[str]:
    return [sys.executable, *args]


def scumble(*args: str) -> list[str]:
    return [sys.executable, "-m", "scumble", *args]


def row(label: str, seconds: float, baseline: float) -> str:
    return f"{label:<44} {seconds:8.3f}s  {seconds / baseline:6.3f}x"
