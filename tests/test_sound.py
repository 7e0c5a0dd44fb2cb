"""Sound: a soundtrack muxed into animate's video (and kept on resume), and `schedules audio` from a track's loudness."""

from __future__ import annotations

import json
import re
import shutil
import subprocess

import numpy as np
import pytest

from scumble.core.animation import audio
from scumble.core.animation.video import probe
from helpers import resumes_byte_identical


def ffmpeg() -> str:
    import imageio_ffmpeg

    return imageio_ffmpeg.get_ffmpeg_exe()


def tone(path, seconds: float = 2.0, quiet_until: float = 1.0, quiet: float = 0.2):
    """A 440 Hz tone at `quiet` amplitude until `quiet_until` s, then at full amplitude: a known envelope."""
    volume = f"volume='if(lt(t,{quiet_until}),{quiet},1.0)':eval=frame"
    subprocess.run([ffmpeg(), "-hide_banner", "-loglevel", "error", "-y", "-f", "lavfi", "-i", f"sine=frequency=440:duration={seconds}:sample_rate=22050", "-af", volume, str(path)], check=True)
    return path


def audio_seconds(path) -> float:
    """The audio stream's own duration, as ffmpeg decodes it."""
    return len(audio.decode(path)) / audio.SAMPLE_RATE


def run_animate(run_cli, model, *args):
    return run_cli("animate", "-p", "0: a red circle", "--model", model, "--steps", "0: (3)", "--seed", 1, "--fps", 4, *args)


def test_schedules_audio_follows_a_known_envelope(run_cli, tmp_path):
    tone(tmp_path / "t.wav")
    result = run_cli("schedules", "audio", "t.wav", "--fps", 4, "--map", "1.0+0.05*x")
    assert result.exit_code == 0, result.stderr
    keys = {int(k): float(v) for k, v in re.findall(r"(\d+):\(([\d.]+)\)", result.stdout)}
    # Quiet (x = 0.2) for the first second's 4 frames, loud (x = 1) for the last 4; a boundary frame may straddle.
    assert keys[0] == pytest.approx(1.01, abs=1e-3) and keys[3] == pytest.approx(1.01, abs=1e-3)
    assert keys[max(keys)] == pytest.approx(1.05, abs=1e-3) and max(keys) == 7
    onsets = run_cli("schedules", "audio", "t.wav", "--fps", 4, "--measure", "onsets")
    values = {int(k): float(v) for k, v in re.findall(r"(\d+):\(([\d.]+)\)", onsets.stdout)}
    assert max(values, key=values.get) == 4 and values[4] == 1.0  # the one rise in loudness is the beat


@pytest.mark.parametrize("mapping,message", [("__import__('os')", "only calls to"), ("x.real", "attribute is not allowed"), ("y+1", "unknown name 'y'")])
def test_schedules_audio_map_is_never_executed(run_cli, tmp_path, mapping, message):
    tone(tmp_path / "t.wav")
    result = run_cli("schedules", "audio", "t.wav", "--map", mapping)
    assert result.exit_code == 2 and message in result.stderr and "Traceback" not in result.stderr


def test_soundtrack_is_muxed_cut_to_the_video_and_kept_on_resume(run_cli, tiny_sd, tmp_path):
    tone(tmp_path / "t.wav", seconds=5.0)
    args = ["--frames", 6, "--cadence", 2, "--zoom", "0: (1.04)", "--soundtrack", "t.wav"]
    result = run_animate(run_cli, tiny_sd, *args, "-o", "full.mp4")
    assert result.exit_code == 0, result.stderr
    assert probe(tmp_path / "full.mp4")["frames"] == 6
    assert audio_seconds(tmp_path / "full.mp4") == pytest.approx(6 / 4, abs=0.05)  # cut to the video, not the 5 s track
    resumes_byte_identical(lambda *a: run_animate(run_cli, tiny_sd, *a), args, tmp_path, "full.mp4", (4, 5))
    assert not list(tmp_path.glob(".*.mp4"))


def test_soundtrack_offset_and_webm(run_cli, tiny_sd, tmp_path):
    tone(tmp_path / "t.wav", seconds=3.0, quiet_until=1.0, quiet=0.0)  # silent for its first second
    for name, offset in (("plain.webm", 0), ("later.webm", 1.0)):
        result = run_animate(run_cli, tiny_sd, "--frames", 2, "--soundtrack", "t.wav", "--soundtrack-offset", offset, "-o", name, "--no-keep-frames")
        assert result.exit_code == 0, result.stderr
    opening = {name: np.sqrt(np.mean(audio.decode(tmp_path / name)[: audio.SAMPLE_RATE // 4] ** 2)) for name in ("plain.webm", "later.webm")}
    assert opening["plain.webm"] < 0.01 < 0.06 < opening["later.webm"]  # lavfi's sine peaks at 1/8: RMS 0.088


def test_ffprobe_finds_the_audio_stream_with_the_right_duration(run_cli, tiny_sd, tmp_path):
    if not shutil.which("ffprobe"):
        pytest.skip("ffprobe is not installed (CI installs Debian's ffmpeg for it)")
    tone(tmp_path / "t.wav", seconds=4.0)
    assert run_animate(run_cli, tiny_sd, "--frames", 8, "--soundtrack", "t.wav", "-o", "s.mp4").exit_code == 0
    out = subprocess.run(["ffprobe", "-v", "error", "-show_entries", "stream=codec_type,codec_name,duration", "-of", "json", str(tmp_path / "s.mp4")], capture_output=True, text=True, check=True).stdout
    streams = {s["codec_type"]: s for s in json.loads(out)["streams"]}
    assert streams["audio"]["codec_name"] == "aac" and float(streams["audio"]["duration"]) == pytest.approx(2.0, abs=0.05)
    assert float(streams["video"]["duration"]) == pytest.approx(2.0, abs=0.01)


@pytest.mark.parametrize("output,extra,code,message", [
    ("a.gif", [], 2, "a .gif video has no sound"),
    ("frames", [], 2, "frames in a folder have no sound"),
    ("a.mp4", ["--soundtrack-offset", 60], 2, "the track is only 2.00 s long"),
])
def test_soundtrack_refusals_leave_nothing(run_cli, tiny_sd, tmp_path, output, extra, code, message):
    tone(tmp_path / "t.wav")
    result = run_animate(run_cli, tiny_sd, "--frames", 2, "--soundtrack", "t.wav", *extra, "-o", output)
    assert result.exit_code == code and message in result.stderr, result.stderr
    assert sorted(p.name for p in tmp_path.iterdir() if not p.name.startswith(".")) == ["t.wav"]


def test_soundtrack_that_is_not_sound(run_cli, tiny_sd, tmp_path):
    (tmp_path / "t.wav").write_bytes(b"not audio at all")
    result = run_animate(run_cli, tiny_sd, "--frames", 2, "--soundtrack", "t.wav", "-o", "a.mp4")
    assert result.exit_code == 1 and "no audio stream" in result.stderr and "\n" not in result.stderr.strip()
    missing = run_animate(run_cli, tiny_sd, "--frames", 2, "--soundtrack", "none.wav", "-o", "a.mp4")
    assert missing.exit_code == 2 and "no such file" in missing.stderr
    assert not (tmp_path / "a.mp4").exists()


def test_deforum_soundtrack_keys_map_to_soundtrack():
    from scumble.core.animation.deforum import from_deforum

    base = {"max_frames": 10, "animation_mode": "2D", "prompts": {"0": "a red circle"}}
    assert from_deforum(base | {"add_soundtrack": "File", "soundtrack_path": "song.mp3"}).values["soundtrack"] == "song.mp3"
    assert from_deforum(base | {"add_soundtrack": "Init Video", "video_init_path": "in.mp4"}).values["soundtrack"] == "in.mp4"
    missing = from_deforum(base | {"add_soundtrack": "File", "soundtrack_path": ""})
    assert "soundtrack" not in missing.values and any("add_soundtrack 'File' without a file" in w for w in missing.warnings)
    assert "soundtrack" not in from_deforum(base | {"add_soundtrack": "None", "soundtrack_path": "song.mp3"}).values
