"""animate's finishing: motion-interpolated in-between frames and deflicker, in the video only, byte-identical on resume."""

from __future__ import annotations

from scumble.core.animation.deforum import from_deforum
from scumble.core.animation.video import probe


def run_animate(run_cli, model, *args):
    return run_cli("animate", "-p", "0: a red circle", "--model", model, "--steps", "0: (3)", "--seed", 1, "--fps", 4, "--zoom", "0: (1.05)", *args)


def test_interpolate_multiplies_the_frames_and_keeps_the_duration(run_cli, tiny_sd, tmp_path):
    assert run_animate(run_cli, tiny_sd, "--frames", 4, "-o", "plain.mp4").exit_code == 0
    result = run_animate(run_cli, tiny_sd, "--frames", 4, "--interpolate", 3, "-o", "smooth.mp4")
    assert result.exit_code == 0, result.stderr
    info = probe(tmp_path / "smooth.mp4")
    assert (info["frames"], info["fps"]) == (12, 12.0)
    assert len(list((tmp_path / "smooth.frames").glob("0*.png"))) == 4  # the frames on disk are the ones made


def test_deflicker_changes_the_video_not_the_frames(run_cli, tiny_sd, tmp_path):
    for name, extra in (("a.mp4", []), ("b.mp4", ["--deflicker"])):
        assert run_animate(run_cli, tiny_sd, "--frames", 6, "--cadence", 1, *extra, "-o", name).exit_code == 0
    assert probe(tmp_path / "b.mp4")["frames"] == 6
    assert (tmp_path / "a.mp4").read_bytes() != (tmp_path / "b.mp4").read_bytes()
    assert all((tmp_path / "a.frames" / f.name).read_bytes() == f.read_bytes() for f in (tmp_path / "b.frames").glob("0*.png"))


def test_resume_is_byte_identical_with_interpolation_and_deflicker(run_cli, tiny_sd, tmp_path):
    args = ["--frames", 6, "--cadence", 2, "--interpolate", 2, "--deflicker"]
    assert run_animate(run_cli, tiny_sd, *args, "-o", "full.webm").exit_code == 0
    assert run_animate(run_cli, tiny_sd, *args, "-o", "cut.webm").exit_code == 0
    for i in (3, 4, 5):
        (tmp_path / "cut.frames" / f"{i:09}.png").unlink()
    (tmp_path / "cut.webm").unlink()
    resumed = run_animate(run_cli, tiny_sd, *args, "-o", "cut.webm", "--resume")
    assert resumed.exit_code == 0, resumed.stderr
    assert (tmp_path / "cut.webm").read_bytes() == (tmp_path / "full.webm").read_bytes()


def test_gif_takes_the_filters_too(run_cli, tiny_sd, tmp_path):
    result = run_animate(run_cli, tiny_sd, "--frames", 3, "--interpolate", 2, "--deflicker", "-o", "a.gif", "--no-keep-frames")
    assert result.exit_code == 0, result.stderr
    assert probe(tmp_path / "a.gif")["frames"] == 6


def test_finishing_needs_a_video_and_a_sane_factor(run_cli, tiny_sd, tmp_path):
    folder = run_animate(run_cli, tiny_sd, "--frames", 2, "--interpolate", 2, "-o", "frames")
    assert folder.exit_code == 2 and "finish a video" in folder.stderr and not (tmp_path / "frames").exists()
    big = run_animate(run_cli, tiny_sd, "--frames", 2, "--interpolate", 9, "-o", "a.mp4")
    assert big.exit_code == 2 and "--interpolate" in big.stderr and "at most 8" in big.stderr


def test_deforum_frame_interpolation_maps_to_interpolate():
    base = {"max_frames": 10, "animation_mode": "2D", "prompts": {"0": "a red circle"}}
    rife = from_deforum(base | {"frame_interpolation_engine": "RIFE v4.6", "frame_interpolation_x_amount": 3})
    assert rife.values["interpolate"] == 3
    assert any("RIFE v4.6" in w and "minterpolate" in w for w in rife.warnings)
    assert "interpolate" not in from_deforum(base | {"frame_interpolation_engine": "None", "frame_interpolation_x_amount": 3}).values
