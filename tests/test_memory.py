"""Long runs hold flat memory: 100 images of img2img and 200 frames of animate cost about what 10 and 20 do.

Peak RSS is read from the kernel (getrusage of a child that runs one scumble process), so each
measurement is one real process from start to finish, model load included.
"""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest
from PIL import Image

pytestmark = pytest.mark.slow

PEAK = "import resource, subprocess, sys; subprocess.run(sys.argv[1:], check=True, stdout=subprocess.DEVNULL); print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)"


def peak_rss_kb(*args) -> int:
    run = subprocess.run([sys.executable, "-c", PEAK, sys.executable, "-m", "scumble", *map(str, args)], capture_output=True, text=True)
    assert run.returncode == 0, run.stderr[-2000:]
    return int(run.stdout.strip())


def test_img2img_memory_is_flat_from_10_to_100_images(tiny_sd, tmp_path):
    rng = np.random.default_rng(0)
    peaks = {}
    for count in (10, 100):
        folder = tmp_path / f"in{count}"
        folder.mkdir()
        for i in range(count):
            Image.fromarray(rng.integers(0, 255, (32, 32, 3), dtype=np.uint8)).save(folder / f"{i:03}.png")
        peaks[count] = peak_rss_kb("img2img", folder, "-p", "x", "--model", tiny_sd, "--steps", 2, "--strength", 0.5, "-q", "-o", f"{tmp_path}/out{count}/")
        assert len(list((tmp_path / f"out{count}").glob("*.png"))) == count
    assert peaks[100] < 1.10 * peaks[10], peaks


def test_animate_memory_is_flat_from_20_to_200_frames(tiny_sd, tmp_path):
    peaks = {}
    for frames in (20, 200):
        video = tmp_path / f"a{frames}.mp4"
        peaks[frames] = peak_rss_kb("animate", "-p", "0: x", "--model", tiny_sd, "--frames", frames, "--cadence", 4, "--steps", "0: (2)", "--strength", "0: (0.5)", "-W", 32, "-H", 32, "-o", video, "--no-keep-frames", "-q")
        assert video.stat().st_size > 0
    assert peaks[200] < 1.10 * peaks[20], peaks
