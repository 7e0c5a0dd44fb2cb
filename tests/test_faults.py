"""Every subcommand, walked through bad input: one clear line, a non-zero exit, no traceback, no new or changed file."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image


def snapshot(root: Path) -> dict:
    return {str(p.relative_to(root)): (p.stat().st_size, p.stat().st_mtime_ns) for p in root.rglob("*") if ".cache" not in p.parts and ".config" not in p.parts}


@pytest.fixture
def workspace(tmp_path, tiny_sd):
    Image.fromarray(np.random.default_rng(0).integers(0, 255, (32, 32, 3), dtype=np.uint8)).save(tmp_path / "good.png")
    (tmp_path / "empty.png").write_bytes(b"")
    (tmp_path / "text.png").write_text("not an image at all")
    (tmp_path / "truncated.png").write_bytes((tmp_path / "good.png").read_bytes()[:1500])
    Image.fromarray(np.full((32, 32), 255, np.uint8)).save(tmp_path / "mask.png")
    (tmp_path / "emptydir").mkdir()
    (tmp_path / "existing.png").write_bytes(b"keep me")
    (tmp_path / "bad.toml").write_text("frames = [unclosed")
    (tmp_path / "a_file").write_text("x")
    broken = tmp_path / "broken-model"
    broken.mkdir()
    (broken / "model_index.json").write_text((Path(tiny_sd) / "model_index.json").read_text())
    return tmp_path


M = "MODEL"  # replaced by the tiny model's folder

CASES = [
    # (subcommand args, expected text in the one line, exit code)
    (["txt2img", "x", "--model", M, "-W", "33"], "--width 33: must be a positive multiple of 8 (nearest: 32 or 40)", 2),
    (["txt2img", "x", "--model", M, "--steps", "0"], "--steps", 2),
    (["txt2img", "x", "--model", M, "--cfg", "abc"], "Invalid value for '--cfg'", 2),
    (["txt2img", "x", "--model", M, "--scheduler", "nope"], "unknown scheduler 'nope'", 2),
    (["txt2img", "x", "--model", M, "--noise-schedule", "wobbly"], "unknown schedule 'wobbly'", 2),
    (["txt2img", "x", "--model", M, "-o", "existing.png"], "existing.png: already exists", 1),
    (["txt2img", "x", "--model", M, "-o", "a_file/out.png"], "cannot create the output folder", 1),
    (["txt2img", "--prompt-file", "missing.txt", "--model", M], "--prompt-file missing.txt: no such file", 1),
    (["txt2img", "x", "--model", "broken-model"], "is missing its 'scheduler' component", 1),
    (["txt2img", "x", "--model", "nowhere/at-all"], "could not load this hub id", 1),
    (["txt2img", "x", "--model", "empty.png"], "not a model file", 1),
    (["img2img", "missing.png", "-p", "x", "--model", M], "missing.png: no such file or folder", 1),
    (["img2img", "empty.png", "-p", "x", "--model", M], "empty.png: not an image", 1),
    (["img2img", "text.png", "-p", "x", "--model", M], "text.png: not an image", 1),
    (["img2img", "truncated.png", "-p", "x", "--model", M], "truncated.png: unreadable or truncated image", 1),
    (["img2img", "emptydir", "-p", "x", "--model", M], "emptydir: no images in this folder", 1),
    (["img2img", "good.png", "-p", "x", "--model", M, "--strength", "2"], "--strength 2.0: must be in (0, 1]", 2),
    (["img2img", "good.png", "--model", M], "give --prompt, or --captions", 2),
    (["img2img", "good.png", "-p", "x", "--model", M, "-o", "existing.png"], "existing.png: already exists", 1),
    (["inpaint", "good.png", "-p", "x", "--model", M], "--mask is required", 2),
    (["inpaint", "good.png", "--mask", "missing.png", "-p", "x", "--model", M], "--mask missing.png: no such file or folder", 1),
    (["inpaint", "good.png", "--mask", "text.png", "-p", "x", "--model", M], "text.png: not an image", 1),
    (["inpaint", "good.png", "--mask", "mask.png", "--fill", "paint", "-p", "x", "--model", M], "--fill: unknown mode 'paint'", 2),
    (["animate", "-p", "0: x", "--zoom", "0: (1.0+)", "--model", M], "zoom: keyframe 1", 2),
    (["animate", "-p", "0: x", "--angle", "0: (__import__('os'))", "--model", M], "angle: keyframe 1", 2),
    (["animate", "-p", "0: x", "--frames", "0", "--model", M], "--frames 0: must be at least 1", 2),
    (["animate", "-p", "0: x", "--border", "melt", "--model", M], "--border: unknown mode 'melt'", 2),
    (["animate", "-p", "0: x", "--model", M, "-o", "out.avi"], "give a .mp4, .webm or .gif file", 2),
    (["animate", "--settings", "bad.toml", "--model", M], "--settings bad.toml: not valid TOML", 1),
    (["animate", "--settings", "missing.toml", "--model", M], "--settings missing.toml: no such file", 1),
    (["animate", "-p", "0: x", "--model", M, "--resume", "-o", "never.mp4"], "--resume: no interrupted run", 2),
    (["animate", "-p", "0: x", "--model", M, "--video-input", "missing.mp4"], "--video-input missing.mp4: no such file", 1),
    (["animate", "-p", "0: x", "--model", M, "--video-input", "text.png"], "not a video ffmpeg can read", 1),
    (["info", "missing.png"], "missing.png: no such file", 1),
    (["info", "text.png"], "not a readable image", 1),
]


@pytest.mark.parametrize("args,message,code", CASES, ids=[" ".join(c[0])[:60] for c in CASES])
def test_bad_input(run_cli, workspace, tiny_sd, args, message, code):
    before = snapshot(workspace)
    result = run_cli(*[str(tiny_sd) if a == M else a for a in args])
    lines = [line for line in result.stderr.strip().splitlines() if line.strip()]
    assert result.exit_code == code, result.stderr
    assert "Traceback" not in result.stderr and "Traceback" not in result.stdout
    assert any(message in line for line in lines), result.stderr
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    assert snapshot(workspace) == before


@pytest.mark.skipif(os.geteuid() != 0, reason="mounting a tmpfs needs root")
def test_disk_full_mid_write_leaves_nothing(tiny_sd, tmp_path):
    mount = tmp_path / "full"
    mount.mkdir()
    if subprocess.run(["mount", "-t", "tmpfs", "-o", "size=4k", "tmpfs", str(mount)], capture_output=True).returncode:
        pytest.skip("cannot mount a tmpfs here")
    try:
        run = subprocess.run(
            [sys.executable, "-m", "scumble", "txt2img", "noise", "--model", str(tiny_sd), "--steps", "1", "--seed", "1", "-W", "64", "-H", "64", "-o", str(mount / "out.png")],
            capture_output=True, text=True,
        )
        assert run.returncode == 1
        assert "No space left on device" in run.stderr and "Traceback" not in run.stderr
        assert list(mount.iterdir()) == []
    finally:
        subprocess.run(["umount", str(mount)])


@pytest.mark.slow
def test_kill_9_mid_batch_then_skip_existing_finishes_bit_identical(tiny_sd, tmp_path):
    """A folder run killed without warning resumes with --skip-existing to exactly the uninterrupted result."""
    import signal
    import time

    sketches = tmp_path / "sketches"
    sketches.mkdir()
    rng = np.random.default_rng(0)
    for i in range(16):
        Image.fromarray(rng.integers(0, 255, (64, 64, 3), dtype=np.uint8)).save(sketches / f"s{i:02}.png")
    command = [sys.executable, "-m", "scumble", "img2img", str(sketches), "-p", "a sketch", "--model", str(tiny_sd), "--steps", "40", "--strength", "0.9", "--seed", "7", "-q"]

    subprocess.run([*command, "-o", str(tmp_path / "clean") + "/"], check=True, capture_output=True)
    killed = tmp_path / "killed"
    process = subprocess.Popen([*command, "-o", str(killed) + "/"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and len(list(killed.glob("*.png"))) < 3:
        time.sleep(0.005)
    process.send_signal(signal.SIGKILL)
    process.wait()
    done_before = sorted(p.name for p in killed.glob("*.png"))
    assert 3 <= len(done_before) < 16, "the run must be killed part-way"

    resumed = subprocess.run([*command, "-o", str(killed) + "/", "--skip-existing", "--json"], capture_output=True, text=True)
    assert resumed.returncode == 0, resumed.stderr
    written = [Path(json.loads(line)["path"]).name for line in resumed.stdout.splitlines()]
    assert sorted(written + done_before) == sorted(p.name for p in (tmp_path / "clean").glob("*.png"))  # each input exactly once
    assert sorted(p.name for p in killed.iterdir()) == sorted(p.name for p in (tmp_path / "clean").iterdir())  # no temp file survives
    for image in (tmp_path / "clean").glob("*.png"):
        assert np.array_equal(np.asarray(Image.open(image)), np.asarray(Image.open(killed / image.name))), image.name
