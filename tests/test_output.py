"""Writes are all or nothing, land where they should, and never clobber what the user has."""

from __future__ import annotations

import os
import stat
import subprocess
import sys
import threading

import pytest

from scumble.core.records import output
from scumble.core.errors import ScumbleError, UsageError


def test_written_file_gets_normal_permissions(tmp_path):
    old = os.umask(0o022)
    try:
        output.write_bytes(b"data", tmp_path / "a.png")
    finally:
        os.umask(old)
    assert stat.S_IMODE((tmp_path / "a.png").stat().st_mode) == 0o644


def test_no_temp_file_left_when_the_write_fails(tmp_path, monkeypatch):
    def broken_fsync(fd):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "fsync", broken_fsync)
    with pytest.raises(ScumbleError, match="No space left on device"):
        output.write_bytes(b"x" * 1000, tmp_path / "full.png")
    assert list(tmp_path.iterdir()) == []


def test_fifo_is_written_directly_never_replaced(tmp_path):
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    received = []
    reader = threading.Thread(target=lambda: received.append(open(fifo, "rb").read()))
    reader.start()
    output.write_bytes(b"through the pipe", fifo)
    reader.join(5)
    assert received == [b"through the pipe"] and stat.S_ISFIFO(fifo.stat().st_mode)


def test_output_under_a_file_gives_one_line(run_cli, tiny_sd, tmp_path):
    (tmp_path / "plain").write_text("a file, not a folder")
    result = run_cli("txt2img", "x", "--model", tiny_sd, "--steps", 1, "-o", "plain/sub/")
    assert result.exit_code == 1
    assert "cannot create the output folder" in result.stderr and "Traceback" not in result.stderr
    assert (tmp_path / "plain").read_text() == "a file, not a folder"


def test_missing_output_folder_is_created(run_cli, tiny_sd, tmp_path):
    assert run_cli("txt2img", "x", "--model", tiny_sd, "--steps", 1, "--seed", 3, "-o", "new/deeper/").exit_code == 0
    assert [p.name for p in (tmp_path / "new" / "deeper").iterdir()] == ["00000-3-x.png"]


@pytest.mark.parametrize("prompt,name", [("../../x", "00000-1-x.png"), ("a/b\\c:d*e", "00000-1-a_b_c_d_e.png"), ("...", "00000-1-image.png"), ("", "00000-1-image.png")])
def test_names_from_prompts_stay_inside(tmp_path, prompt, name):
    plan = output.OutputPlan.from_option(str(tmp_path / "out") + "/", 2)
    target = plan.target(index=0, seed=1, prompt=prompt)
    assert target == (tmp_path / "out" / name).resolve()


def test_name_pattern_with_folders_stays_inside(tmp_path):
    plan = output.OutputPlan.from_option(str(tmp_path / "out") + "/", 2, "../{seed}/../../{prompt}")
    assert plan.target(index=0, seed=5, prompt="p").is_relative_to((tmp_path / "out").resolve())


def test_bad_name_pattern(tmp_path):
    plan = output.OutputPlan.from_option(str(tmp_path) + "/", 2, "{nope}")
    with pytest.raises(UsageError, match="fields are index, prompt, seed"):
        plan.target(index=0, seed=1, prompt="x")


def test_one_file_for_many_images_is_refused(tmp_path):
    with pytest.raises(UsageError, match="names one file, but this run makes 3 images"):
        output.OutputPlan.from_option(str(tmp_path / "a.png"), 3)
    with pytest.raises(UsageError, match="standard output takes one image"):
        output.OutputPlan.from_option("-", 2)
    with pytest.raises(UsageError, match="name a .png, .jpg or .webp file"):
        output.OutputPlan.from_option(str(tmp_path / "a.gif"), 1)


def test_dev_stdout_is_written_directly(tiny_sd, tmp_path):
    run = subprocess.run([sys.executable, "-m", "scumble", "txt2img", "x", "--model", str(tiny_sd), "--steps", "1", "--seed", "1", "-o", "/dev/stdout", "-q"], capture_output=True)
    assert run.returncode == 0, run.stderr
    assert run.stdout[:8] == b"\x89PNG\r\n\x1a\n"
