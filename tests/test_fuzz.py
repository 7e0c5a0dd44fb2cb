"""Generated hostile values through every door, in a child process under a memory limit (tests/fuzz_doors.py)."""

from __future__ import annotations

import os
import resource
import subprocess
import sys
from pathlib import Path

import pytest

MEMORY_LIMIT = 6 * 1024**3  # address space: torch maps a lot of it; a runaway allocation still fails fast


def _limit() -> None:
    resource.setrlimit(resource.RLIMIT_AS, (MEMORY_LIMIT, MEMORY_LIMIT))


@pytest.mark.slow
def test_hostile_values_through_every_door(tiny_sd, tmp_path):
    work = tmp_path / "work"
    work.mkdir()
    script = Path(__file__).with_name("fuzz_doors.py")
    env = os.environ | {"PYTHONPATH": os.pathsep.join([str(Path(__file__).parent), os.environ.get("PYTHONPATH", "")])}
    result = subprocess.run([sys.executable, str(script), str(tiny_sd), str(work), "400"], capture_output=True, text=True, env=env, preexec_fn=_limit, timeout=900)
    assert result.returncode == 0, result.stderr[-3000:]
    assert result.stderr.strip().endswith("ok")
