"""animate never loses what the user had: --overwrite, failed runs, SIGTERM, outputs that cannot be written, bad records."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from PIL import Image
from scumble.core.animation.video import probe


def run_animate(run_cli, model, *args):
    return run_cli("animate", "-p", "0: a red circle", "--model", model, "--steps", "0: (2)", "--seed", 1, *args)


def snapshot(root: Path) -> dict[str, bytes | None]:
    """Every file and folder under root (the CLI's cache aside), with each file's bytes."""
    return {
        str(p.relative_to(root)): (p.read_bytes() if p.is_file() else None)
        for p in sorted(root.rglob("*"))
        if p.relative_to(root).parts[0] not in (".cache", ".config")
    }


def hidden(root: Path) -> list[Path]:
    return [p for p in root.rglob(".*") if p.relative_to(root).parts[0] not in (".cache", ".config")]


def one_error(result, exit_code: int = 1) -> str:
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert result.exit_code == exit_code, result.stderr
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    assert "unexpected" not in lines[0] and "Traceback" not in result.stderr
    return lines[0]


def users_files(folder: Path) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "notes.txt").write_text("call the framer on monday\n")
    Image.new("RGB", (8, 8), "blue").save(folder / "holiday.png")
    Image.new("RGB", (8, 8), "red").save(folder / "2024.png")  # a number, but not a frame name of ours
    (folder / "sub").mkdir()
    (folder / "sub" / "000000000.png").write_bytes(b"not ours: it is in a sub-folder")


def frame_names(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.glob("0*.png") if p.is_file())


# ---------------------------------------------------------------- 1: --overwrite replaces only what this run writes


def test_overwrite_keeps_the_users_files_in_the_frames_folder(run_cli, tiny_sd, tmp_path):
    shots = tmp_path / "out" / "shots"
    users_files(shots)
    before = snapshot(shots)
    refused = run_animate(run_cli, tiny_sd, "--frames", 3, "-o", "out/shots")
    assert "--overwrite" in one_error(refused) and snapshot(shots) == before

    assert run_animate(run_cli, tiny_sd, "--frames", 3, "-o", "out/shots", "--overwrite").exit_code == 0
    assert frame_names(shots) == ["000000000.png", "000000001.png", "000000002.png"]
    assert {k: v for k, v in snapshot(shots).items() if k in before} == before

    shorter = run_animate(run_cli, tiny_sd, "--frames", 2, "-o", "out/shots", "--overwrite", "--seed", 7)
    assert shorter.exit_code == 0, shorter.stderr
    assert frame_names(shots) == ["000000000.png", "000000001.png"]  # the old run's frame 2 went
    assert '"frames": 2' in (shots / "settings.json").read_text()
    assert set(snapshot(shots)) == set(before) | {"000000000.png", "000000001.png", "settings.json"}
    assert {k: v for k, v in snapshot(shots).items() if k in before} == before

    (shots / "000000001.png").unlink()  # --resume redoes it, and clears only frames of ours after the last key (not 2024.png)
    resumed = run_animate(run_cli, tiny_sd, "--frames", 2, "-o", "out/shots", "--resume", "--seed", 7)
    assert resumed.exit_code == 0, resumed.stderr
    assert frame_names(shots) == ["000000000.png", "000000001.png"]
    assert {k: v for k, v in snapshot(shots).items() if k in before} == before
    assert not hidden(tmp_path)


def test_overwrite_into_the_current_folder_keeps_the_project(run_cli, tiny_sd, tmp_path):
    (tmp_path / "README.md").write_text("# my project\n")
    (tmp_path / "src").mkdir()
    (tmp_path / "src" / "app.py").write_text("print('hello')\n")
    before = snapshot(tmp_path)
    handlers = signal.getsignal(signal.SIGTERM), signal.getsignal(signal.SIGINT)

    result = run_animate(run_cli, tiny_sd, "--frames", 2, "-o", ".", "--overwrite")
    assert result.exit_code == 0, result.stderr
    assert set(snapshot(tmp_path)) == set(before) | {"000000000.png", "000000001.png", "settings.json"}
    assert {k: v for k, v in snapshot(tmp_path).items() if k in before} == before
    assert (signal.getsignal(signal.SIGTERM), signal.getsignal(signal.SIGINT)) == handlers  # the run's handlers are gone again


def test_overwrite_leaves_a_settings_json_that_is_not_ours(run_cli, tiny_sd, tmp_path):
    (tmp_path / "settings.json").write_text('{"theme": "dark"}\n')
    before = snapshot(tmp_path)
    line = one_error(run_animate(run_cli, tiny_sd, "--frames", 2, "-o", ".", "--overwrite"))
    assert "settings.json" in line and "not written by scumble" in line
    assert snapshot(tmp_path) == before


def test_no_keep_frames_removes_only_our_files(run_cli, tiny_sd, tmp_path):
    assert run_animate(run_cli, tiny_sd, "--frames", 2, "-o", "v.mp4").exit_code == 0
    (tmp_path / "v.frames" / "notes.txt").write_text("mine\n")
    result = run_animate(run_cli, tiny_sd, "--frames", 2, "-o", "v.mp4", "--overwrite", "--no-keep-frames")
    assert result.exit_code == 0, result.stderr
    assert [p.name for p in (tmp_path / "v.frames").iterdir()] == ["notes.txt"]
    assert (tmp_path / "v.frames" / "notes.txt").read_text() == "mine\n"
    assert probe(tmp_path / "v.mp4")["frames"] == 2
    assert not hidden(tmp_path)


def test_a_failed_run_removes_only_its_own_files(run_cli, tiny_sd, tmp_path):
    shots = tmp_path / "shots"
    users_files(shots)
    (shots / "000000000.png").mkdir()  # a folder where frame 0 must go: the run fails writing it
    (shots / "000000000.png" / "keep.txt").write_text("mine\n")
    before = snapshot(shots)
    line = one_error(run_animate(run_cli, tiny_sd, "--frames", 2, "-o", "shots", "--overwrite"))
    assert "000000000.png" in line
    assert snapshot(shots) == before  # its settings.json went again; nothing of the user's did
    assert not hidden(tmp_path)


# ---------------------------------------------------------------- 2: check everything first, replace last


@pytest.mark.parametrize("flag,source", [
    ("--init-image", "missing.png"),
    ("--init-image", "notes.txt"),
    ("--video-input", "missing.mp4"),
    ("--video-input", "notes.txt"),
])
def test_a_failing_overwrite_leaves_the_previous_run_alone(run_cli, tiny_sd, tmp_path, flag, source):
    assert run_animate(run_cli, tiny_sd, "--frames", 3, "-o", "v.mp4").exit_code == 0
    (tmp_path / "notes.txt").write_text("not a picture\n")
    before = snapshot(tmp_path)
    assert len([k for k in before if k.startswith("v.frames/0")]) == 3 and before["v.mp4"]
    line = one_error(run_animate(run_cli, tiny_sd, "--frames", 2, "-o", "v.mp4", "--overwrite", flag, source))
    assert source in line
    assert snapshot(tmp_path) == before


def test_overwrite_keeps_the_old_video_until_the_new_one_is_complete(run_cli, tiny_sd, tmp_path):
    assert run_animate(run_cli, tiny_sd, "--frames", 3, "-o", "v.mp4").exit_code == 0
    old_video = (tmp_path / "v.mp4").read_bytes()
    (tmp_path / "v.frames" / "000000001.png").unlink()
    (tmp_path / "v.frames" / "000000001.png").mkdir()  # the new run fails at frame 1, its video already begun
    line = one_error(run_animate(run_cli, tiny_sd, "--frames", 3, "-o", "v.mp4", "--overwrite", "--seed", 9))
    assert "000000001.png" in line
    assert (tmp_path / "v.mp4").read_bytes() == old_video
    assert not hidden(tmp_path)  # no temporary video left beside it
    assert frame_names(tmp_path / "v.frames") == ["000000000.png"]  # the new run's frame 0, kept for --resume


# ---------------------------------------------------------------- 3: SIGTERM stops like Ctrl-C


@pytest.mark.slow
def test_sigterm_leaves_a_playable_video_and_no_temporary(tiny_sd, tmp_path):
    cmd = [sys.executable, "-m", "scumble", "animate", "-p", "0: a red circle", "--model", str(tiny_sd), "--steps", "0: (8)", "--frames", "200", "-o", str(tmp_path / "v.mp4")]
    env = dict(os.environ, HF_HUB_OFFLINE="1", XDG_CACHE_HOME=str(tmp_path / "cache"))
    proc = subprocess.Popen(cmd, stderr=subprocess.PIPE, text=True, env=env)
    first = tmp_path / "v.frames" / "000000000.png"
    deadline = time.time() + 120
    while time.time() < deadline and not first.exists() and proc.poll() is None:
        time.sleep(0.02)
    proc.send_signal(signal.SIGTERM)
    _, stderr = proc.communicate(timeout=60)
    assert proc.returncode == 130, stderr
    assert "Traceback" not in stderr and "continue with --resume" in stderr
    assert not hidden(tmp_path), hidden(tmp_path)
    kept = len(frame_names(tmp_path / "v.frames"))
    assert kept < 200
    if kept:
        assert probe(tmp_path / "v.mp4")["frames"] == kept
    else:
        assert not (tmp_path / "v.mp4").exists()


# ---------------------------------------------------------------- 4: outputs that cannot be written


def test_output_under_a_file_is_refused(run_cli, tiny_sd, tmp_path):
    (tmp_path / "existing.txt").write_text("mine\n")
    before = snapshot(tmp_path)
    for output in ("existing.txt/v.mp4", "existing.txt/frames"):
        line = one_error(run_animate(run_cli, tiny_sd, "--frames", 2, "-o", output))
        assert "existing.txt" in line and "not a folder" in line
        assert snapshot(tmp_path) == before


@pytest.mark.skipif(not os.path.exists("/dev/full"), reason="no /dev/full here")
def test_output_to_a_device_is_refused(run_cli, tiny_sd, tmp_path):
    for output in ("/dev/full", "/dev/full/v.mp4"):
        line = one_error(run_animate(run_cli, tiny_sd, "--frames", 2, "-o", output))
        assert "/dev/full" in line and "not a folder" in line
    assert not list(tmp_path.glob("*"))


def test_unwritable_folder_is_refused(run_cli, tiny_sd, tmp_path):
    if os.geteuid() != 0:
        ro = tmp_path / "ro"
        ro.mkdir()
        ro.chmod(0o555)
        try:
            line = one_error(run_animate(run_cli, tiny_sd, "--frames", 2, "-o", "ro/v.mp4"))
        finally:
            ro.chmod(0o755)
        assert "cannot write in ro" in line and not list(ro.iterdir())
        return
    # Root writes anywhere: the run goes in a process that has given up root's right to ignore permissions.
    import ctypes

    libc = ctypes.CDLL(None, use_errno=True)

    def without_dac_override():
        for capability in (1, 2):  # CAP_DAC_OVERRIDE, CAP_DAC_READ_SEARCH, dropped for good before exec
            if libc.prctl(24, capability, 0, 0, 0) != 0:  # PR_CAPBSET_DROP
                raise OSError(ctypes.get_errno(), "prctl")

    ro = tmp_path / "ro"
    ro.mkdir()
    ro.chmod(0o555)
    env = dict(os.environ, HF_HUB_OFFLINE="1", XDG_CACHE_HOME=str(tmp_path / "cache"))
    cmd = [sys.executable, "-m", "scumble", "animate", "-p", "0: a red circle", "--model", str(tiny_sd), "--steps", "0: (2)", "--frames", "2", "-o", "ro/v.mp4"]
    try:
        run = subprocess.run(cmd, cwd=tmp_path, env=env, preexec_fn=without_dac_override, capture_output=True, text=True, timeout=300, check=False)
    except subprocess.SubprocessError:
        pytest.skip("running as root without the right to drop capabilities")
    finally:
        ro.chmod(0o755)
    lines = [line for line in run.stderr.splitlines() if line.strip()]
    assert run.returncode == 1 and len(lines) == 1 and lines[0].startswith("error: "), run.stderr
    assert "cannot write in ro" in lines[0] and not list(ro.iterdir())


# ---------------------------------------------------------------- 5: --resume with a record that is not one


@pytest.mark.parametrize("content", [b'{"frames": 2,', b"[1, 2]", b"\xff\xfe\x00garbage", b""])
def test_resume_with_a_bad_settings_json_names_it(run_cli, tiny_sd, tmp_path, content):
    (tmp_path / "r.frames").mkdir()
    (tmp_path / "r.frames" / "settings.json").write_bytes(content)
    before = snapshot(tmp_path)
    line = one_error(run_animate(run_cli, tiny_sd, "--frames", 2, "-o", "r.mp4", "--resume"))
    assert "r.frames/settings.json" in line and "--resume" in line
    assert snapshot(tmp_path) == before
