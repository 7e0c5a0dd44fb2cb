"""animate: motion maths, schedules per frame, video files, resume bit for bit, Deforum settings."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
from PIL import Image

from scumble.core.images import motion
from scumble.core.animation.frames import frame_seed, plan_frames
from scumble.core.request.build import FLAGS, Layer, animation_request


def AnimationSettings(**values):
    """Animation settings built as the CLI builds them: through the request builder, every value checked."""
    return animation_request([Layer(FLAGS, values)])[1]
from scumble.core.animation.keyframes import Schedule
from scumble.core.animation.video import probe


def test_zoom_one_angle_zero_is_identity():
    frame = np.random.default_rng(0).integers(0, 255, (32, 48, 3), dtype=np.uint8)
    matrix = motion.motion_matrix(48, 32, zoom=1.0, angle=0.0, tx=0.0, ty=0.0)
    assert np.allclose(matrix, np.eye(3))
    assert np.array_equal(motion.warp(frame, matrix), frame)
    assert np.allclose(motion.perspective_matrix(48, 32, 0, 0, 0, 53), np.eye(3), atol=1e-9)


def test_zoom_enlarges_about_the_centre_and_translation_moves():
    frame = np.zeros((64, 64, 3), np.uint8)
    frame[28:36, 28:36] = 255
    zoomed = motion.warp(frame, motion.motion_matrix(64, 64, 2.0, 0, 0, 0))
    assert (zoomed[..., 0] > 127).sum() == pytest.approx(4 * 64, rel=0.15)
    moved = motion.warp(frame, motion.motion_matrix(64, 64, 1.0, 0, 10, 0))
    assert moved[32, 42, 0] == 255 and moved[32, 30, 0] == 0


def test_angle_rotates_counter_clockwise_in_degrees():
    frame = np.zeros((64, 64, 3), np.uint8)
    frame[30:34, 50:60] = 255  # a bar to the right of centre
    turned = motion.warp(frame, motion.motion_matrix(64, 64, 1.0, 90, 0, 0))
    ys, xs = np.nonzero(turned[..., 0] > 127)
    assert ys.mean() < 20 and abs(xs.mean() - 32) < 3  # now above the centre


def test_color_coherence_pulls_colours_back():
    reference = np.zeros((16, 16, 3), np.uint8)
    reference[..., 0] = 200
    drifted = np.zeros((16, 16, 3), np.uint8)
    drifted[..., 0] = 120
    for mode in ("rgb", "lab", "hsv"):
        assert abs(int(motion.match_colors(drifted, reference, mode)[..., 0].mean()) - 200) < 8


def test_noise_is_seeded_and_bounded():
    a = motion.noise_image(32, 32, 5, "perlin")
    assert np.array_equal(a, motion.noise_image(32, 32, 5, "perlin")) and not np.array_equal(a, motion.noise_image(32, 32, 6, "perlin"))
    assert a.min() >= 0 and a.max() <= 255 and a.std() > 5


def test_perlin_octave_is_gradient_noise():
    """Zero on every lattice point, smooth between them, and each channel its own field."""
    angles = np.random.default_rng(0).uniform(0, 2 * np.pi, (3, 40 // 8 + 2, 48 // 8 + 2))
    octave = motion._perlin_octave(40, 48, 8, angles)
    assert octave.shape == (3, 40, 48)
    assert np.abs(octave[:, ::8, ::8]).max() < 1e-6
    assert np.abs(np.diff(octave, axis=2)).max() < 0.25 < np.abs(octave).max() * 2
    assert not np.allclose(octave[0], octave[1])


@pytest.mark.parametrize("behavior,expected", [
    ("iter", [10, 11, 12, 13, 14]),
    ("fixed", [10] * 5),
    ("ladder", [10, 12, 11, 13, 12]),
    ("alternate", [10, 11, 10, 11, 10]),
])
def test_seed_behaviors(behavior, expected):
    settings = AnimationSettings(seed=10, seed_behavior=behavior, frames=5)
    assert [frame_seed(settings, i, i, Schedule("0: (s)", 5, 10)) for i in range(5)] == expected


def test_seed_schedule_with_random_is_reproducible():
    settings = AnimationSettings(seed=3, seed_behavior="schedule", frames=6, seed_schedule='0:(s), 1:(-1), "max_f-1":(s)')
    seeds = [p.seed for p in plan_frames(settings)]
    assert seeds[0] == 3 and seeds[5] == 3 and seeds[1] != seeds[2] and seeds == [p.seed for p in plan_frames(settings)]


def test_prompts_carry_forward_and_neg_splits():
    settings = AnimationSettings(frames=6, prompts={"0": "a red circle --neg blurry", "max_f/2": "a blue star"}, negative_prompt="dark")
    plans = plan_frames(settings)
    assert [p.prompt for p in plans] == ["a red circle"] * 2 + ["a blue star"] * 4  # max_f/2 = 2.5 -> frame 2
    assert plans[0].negative_prompt == "blurry, dark" and plans[4].negative_prompt == "dark"


def test_cadence_marks_every_nth_and_the_last_frame_as_keys():
    assert [p.index for p in plan_frames(AnimationSettings(frames=8, cadence=3)) if p.key] == [0, 3, 6, 7]


# ---------------------------------------------------------------- through the CLI


def run_animate(run_cli, model, *args):
    return run_cli("animate", "-p", "0: a red circle", "-p", "4: a blue star", "--model", model, "--steps", "0: (3)", "--seed", 1, *args)


def test_mp4_has_the_right_frames_fps_size_and_codec(run_cli, tiny_sd, tmp_path):
    result = run_animate(run_cli, tiny_sd, "--frames", 6, "--fps", 8, "-o", "a.mp4", "--zoom", "0: (1.05)", "--angle", "0: (3)")
    assert result.exit_code == 0, result.stderr
    info = probe(tmp_path / "a.mp4")
    assert (info["frames"], info["fps"], info["size"], info["codec"]) == (6, 8.0, (32, 32), "h264")
    assert info["pix_fmt"].startswith("yuv420p")
    assert sorted(p.name for p in (tmp_path / "a.frames").iterdir())[:2] == ["000000000.png", "000000001.png"]
    settings = json.loads((tmp_path / "a.frames" / "settings.json").read_text())
    assert settings["frames"] == 6 and settings["zoom"] == "0: (1.05)"
    assert not list(tmp_path.glob(".*partial*"))


@pytest.mark.parametrize("name,codec", [("b.webm", "vp9"), ("c.gif", "gif")])
def test_webm_and_gif(run_cli, tiny_sd, tmp_path, name, codec):
    result = run_animate(run_cli, tiny_sd, "--frames", 3, "-o", name, "--no-keep-frames")
    assert result.exit_code == 0, result.stderr
    info = probe(tmp_path / name)
    assert info["frames"] == 3 and info["codec"] == codec
    assert not (tmp_path / (name.split(".")[0] + ".frames")).exists()


def test_folder_of_frames_and_contact_sheet(run_cli, tiny_sd, tmp_path):
    result = run_animate(run_cli, tiny_sd, "--frames", 5, "-o", "frames", "--contact-sheet", 2, "--cadence", 2)
    assert result.exit_code == 0, result.stderr
    assert len(list((tmp_path / "frames").glob("0*.png"))) == 5
    assert Image.open(tmp_path / "frames" / "contact_sheet.png").size == (3 * 32, 32)


def test_motion_shows_between_frames(run_cli, tiny_sd, tmp_path):
    assert run_animate(run_cli, tiny_sd, "--frames", 3, "-o", "m", "--strength", "0: (0.3)", "--noise", "0: (0)").exit_code == 0
    frames = [np.asarray(Image.open(tmp_path / "m" / f"{i:09}.png")).astype(int) for i in range(3)]
    assert np.abs(frames[1] - frames[0]).mean() > 0.5


def test_bad_schedule_is_refused_before_any_frame(run_cli, tiny_sd, tmp_path):
    result = run_animate(run_cli, tiny_sd, "--zoom", "0: (1.0), 10: (1.0+__import__('os'))", "-o", "x.mp4")
    assert result.exit_code == 2
    assert "zoom: keyframe 2" in result.stderr and "character" in result.stderr
    assert list(tmp_path.iterdir()) == [tmp_path / ".cache"] or not any(p.name.startswith("x") for p in tmp_path.iterdir())


def test_existing_output_is_not_overwritten(run_cli, tiny_sd, tmp_path):
    (tmp_path / "keep.mp4").write_bytes(b"mine")
    result = run_animate(run_cli, tiny_sd, "--frames", 2, "-o", "keep.mp4")
    assert result.exit_code == 1 and "--overwrite" in result.stderr and (tmp_path / "keep.mp4").read_bytes() == b"mine"
    broken = tmp_path / "broken.safetensors"
    broken.write_bytes(b"\0" * 64)  # refused before the model loads: this one would fail to
    result = run_animate(run_cli, broken, "--frames", 2, "-o", "keep.mp4")
    assert result.exit_code == 1 and "keep.mp4: already exists (pass --overwrite" in result.stderr and (tmp_path / "keep.mp4").read_bytes() == b"mine"


def test_resume_refuses_different_settings(run_cli, tiny_sd, tmp_path):
    assert run_animate(run_cli, tiny_sd, "--frames", 3, "-o", "r.mp4").exit_code == 0
    result = run_animate(run_cli, tiny_sd, "--frames", 3, "-o", "r.mp4", "--resume", "--zoom", "0: (1.1)")
    assert result.exit_code == 2 and "settings differ" in result.stderr and "zoom" in result.stderr


def test_resume_redoes_a_truncated_last_frame_bit_for_bit(run_cli, tiny_sd, tmp_path):
    args = ["--frames", 7, "--cadence", 2, "--zoom", "0: (1.04)"]
    assert run_animate(run_cli, tiny_sd, *args, "-o", "full.mp4").exit_code == 0
    assert run_animate(run_cli, tiny_sd, *args, "-o", "cut.mp4").exit_code == 0
    frames = tmp_path / "cut.frames"
    for i in (5, 6):
        (frames / f"{i:09}.png").unlink()
    truncated = frames / "000000004.png"
    truncated.write_bytes(truncated.read_bytes()[:50])
    (tmp_path / "cut.mp4").unlink()
    result = run_animate(run_cli, tiny_sd, *args, "-o", "cut.mp4", "--resume")
    assert result.exit_code == 0, result.stderr
    assert "resumed at frame" in result.stderr
    assert (tmp_path / "cut.mp4").read_bytes() == (tmp_path / "full.mp4").read_bytes()


@pytest.mark.parametrize("motion", [
    ["--animation-mode", "3D", "--translation-z", "0: (8)", "--rotation-3d-y", "0: (2)", "--border", "reflect"],
    ["--optical-flow-cadence", "dis", "--zoom", "0: (1.04)", "--angle", "0: (2)"],
], ids=["3D", "optical-flow-cadence"])
def test_resume_in_3d_and_with_optical_flow_cadence_is_bit_for_bit(run_cli, tiny_sd, tmp_path, motion):
    args = ["--frames", 7, "--cadence", 2, *motion]
    assert run_animate(run_cli, tiny_sd, *args, "-o", "full.mp4").exit_code == 0
    assert run_animate(run_cli, tiny_sd, *args, "-o", "cut.mp4").exit_code == 0
    frames = tmp_path / "cut.frames"
    for i in (4, 5, 6):
        (frames / f"{i:09}.png").unlink()
    (tmp_path / "cut.mp4").unlink()
    result = run_animate(run_cli, tiny_sd, *args, "-o", "cut.mp4", "--resume")
    assert result.exit_code == 0, result.stderr
    assert "resumed at frame 3" in result.stderr  # frame 2 is the last key frame kept; 3 is moved from it again
    assert (tmp_path / "cut.mp4").read_bytes() == (tmp_path / "full.mp4").read_bytes()


@pytest.mark.slow
def test_kill_9_at_a_random_frame_then_resume_gives_the_same_video(tiny_sd, tmp_path):
    """A real process, killed hard part-way; the resumed video equals an uninterrupted one byte for byte."""
    base = [sys.executable, "-m", "scumble", "animate", "-p", "0: a red circle", "--model", str(tiny_sd), "--steps", "0: (6)", "--seed", "2", "--frames", "16", "--cadence", "2", "--angle", "0: (2)", "-q"]
    env = dict(os.environ, HF_HUB_OFFLINE="1")
    subprocess.run(base + ["-o", str(tmp_path / "full.mp4")], check=True, env=env)
    victim = subprocess.Popen(base + ["-o", str(tmp_path / "cut.mp4")], env=env)
    frames = tmp_path / "cut.frames"
    target = int(np.random.default_rng(int(time.time())).integers(3, 12))
    deadline = time.time() + 120
    while time.time() < deadline and len(list(frames.glob("0*.png"))) < target and victim.poll() is None:
        time.sleep(0.02)
    victim.send_signal(signal.SIGKILL)
    victim.wait()
    assert not (tmp_path / "cut.mp4").exists()
    resumed = subprocess.run(base + ["-o", str(tmp_path / "cut.mp4"), "--resume"], env=env, capture_output=True, text=True)
    assert resumed.returncode == 0, resumed.stderr
    assert (tmp_path / "cut.mp4").read_bytes() == (tmp_path / "full.mp4").read_bytes()
    assert not list(tmp_path.glob(".*partial*"))


def test_deforum_style_settings_file(run_cli, tiny_sd, tmp_path):
    """A settings file in Deforum's export format (written here; the real export lives outside the repo)."""
    deforum = {
        "W": 32, "H": 32, "seed": 5, "seed_behavior": "schedule", "sampler": "Euler a", "steps": 1,
        "animation_mode": "2D", "max_frames": 4, "border": "wrap", "angle": "0:(0)", "zoom": "0:(1.0025+0.002*sin(1.25*3.14*t/30))",
        "translation_x": "0:(0)", "translation_y": "0:(0)", "noise_schedule": "0: (0.04)", "strength_schedule": "0: (0.65)",
        "contrast_schedule": "0: (1.0)", "cfg_scale_schedule": "0: (7)", "seed_schedule": '0:(s), 1:(-1), "max_f-2":(-1), "max_f-1":(s)',
        "diffusion_cadence": 1, "color_coherence": "LAB", "noise_type": "perlin", "prompts": {"0": "a red circle --neg blurry", "2": "a blue star"},
        "use_depth_warping": True, "hybrid_motion": "None", "fov_schedule": "0: (70)",
    }
    (tmp_path / "deforum.txt").write_text(json.dumps(deforum))
    result = run_cli("animate", "--settings", "deforum.txt", "--model", tiny_sd, "-o", "d.mp4")
    assert result.exit_code == 0, result.stderr
    assert not [line for line in result.stderr.splitlines() if line.startswith("warning:")]  # its ignored keys are all at defaults or switched off
    settings = json.loads((tmp_path / "d.frames" / "settings.json").read_text())
    assert settings["strength"] == "0: (1-(0.65))" and settings["border"] == "wrap" and settings["scheduler"] == "Euler a"
    assert probe(tmp_path / "d.mp4")["frames"] == 4


def test_own_settings_file_and_flags_win(run_cli, tiny_sd, tmp_path):
    (tmp_path / "s.toml").write_text('frames = 3\nfps = 6\nzoom = "0: (1.02)"\n[prompts]\n0 = "a green square"\n')
    result = run_cli("animate", "--settings", "s.toml", "--fps", 4, "--model", tiny_sd, "--steps", "0: (2)", "-o", "s.mp4")
    assert result.exit_code == 0, result.stderr
    info = probe(tmp_path / "s.mp4")
    assert info["frames"] == 3 and info["fps"] == 4.0
    (tmp_path / "bad.toml").write_text("frames = 3\nwarp_speed = 9\n")
    bad = run_cli("animate", "--settings", "bad.toml", "--model", tiny_sd)
    assert bad.exit_code == 2 and "unknown options warp_speed" in bad.stderr


@pytest.mark.parametrize("preset", ["zoom-in", "orbit", "drift", "pulse", "fast"])
def test_animation_presets(run_cli, tiny_sd, tmp_path, preset):
    result = run_animate(run_cli, tiny_sd, "--frames", 2, "--preset", preset, "-o", f"{preset}.mp4")
    assert result.exit_code == 0, result.stderr
    settings = json.loads((tmp_path / f"{preset}.frames" / "settings.json").read_text())
    assert settings["steps"] == "0: (3)"  # the explicit flag beats the preset
    if preset == "orbit":
        assert settings["angle"] == "0: (1.5)"


def test_video_input(run_cli, tiny_sd, tmp_path):
    from scumble.core.animation.video import VideoWriter

    with VideoWriter(tmp_path / "source.mp4", fps=10) as video:
        for i in range(6):
            video.add(np.full((32, 32, 3), 40 * i, np.uint8))
    result = run_animate(run_cli, tiny_sd, "--frames", 3, "--video-input", "source.mp4", "--extract-nth-frame", 2, "-o", "v")
    assert result.exit_code == 0, result.stderr
    assert len(list((tmp_path / "v").glob("0*.png"))) == 3
    short = run_animate(run_cli, tiny_sd, "--frames", 5, "--video-input", "source.mp4", "--extract-nth-frame", 2, "-o", "w")
    assert short.exit_code == 1 and "fewer than --frames 5" in short.stderr


def test_ci_recipe_script_renders_offline(tiny_sd, tmp_path):
    """The documented CI recipe, run as CI would: a script, a settings file, a video artifact."""
    import shutil
    from pathlib import Path

    root = Path(__file__).resolve().parent.parent
    settings = tmp_path / "ci.toml"
    settings.write_text((root / "docs" / "ci" / "animation.toml").read_text().replace("frames = 24", "frames = 4").replace("width = 128", "width = 32").replace("height = 128", "height = 32"))
    env = dict(os.environ, SCUMBLE_MODEL=str(tiny_sd), PATH=os.path.dirname(sys.executable) + os.pathsep + os.environ["PATH"])
    assert shutil.which("scumble", path=env["PATH"])
    run = subprocess.run(["bash", str(root / "docs" / "ci" / "animate.sh"), str(settings), str(tmp_path / "ci.mp4")], env=env, capture_output=True, text=True)
    assert run.returncode == 0, run.stderr
    assert probe(tmp_path / "ci.mp4")["frames"] == 4
    assert json.loads((tmp_path / "ci.json").read_text())["frames"] == 4


@pytest.mark.slow
def test_ctrl_c_leaves_a_playable_video_of_the_frames_so_far(tiny_sd, tmp_path):
    cmd = [sys.executable, "-m", "scumble", "animate", "-p", "0: a red circle", "--model", str(tiny_sd), "--steps", "0: (8)", "--frames", "200", "-o", str(tmp_path / "v.mp4")]
    # As from a terminal: a test run started in the background (nohup, `&`) ignores SIGINT, and a child would inherit that.
    restore_ctrl_c = lambda: signal.signal(signal.SIGINT, signal.SIG_DFL)  # noqa: E731
    proc = subprocess.Popen(cmd, stderr=subprocess.PIPE, text=True, env=dict(os.environ, HF_HUB_OFFLINE="1"), preexec_fn=restore_ctrl_c)
    deadline = time.time() + 600  # start-up and five frames: seconds alone, minutes on a machine shared with other jobs
    while time.time() < deadline and len(list((tmp_path / "v.frames").glob("0*.png"))) < 5:
        time.sleep(0.05)
    assert len(list((tmp_path / "v.frames").glob("0*.png"))) >= 5, "five frames were not made in 600 s"
    proc.send_signal(signal.SIGINT)
    _, stderr = proc.communicate(timeout=240)  # the frame in flight finishes first; a shared CI machine can be slow
    assert proc.returncode == 130, stderr
    kept = len(list((tmp_path / "v.frames").glob("0*.png")))
    assert 5 <= kept < 200 and "continue with --resume" in stderr and "Traceback" not in stderr
    assert probe(tmp_path / "v.mp4")["frames"] == kept


def test_ffprobe_reads_our_mp4(run_cli, tiny_sd, tmp_path):
    import shutil

    if not shutil.which("ffprobe"):
        pytest.skip("ffprobe is not installed (CI installs Debian's ffmpeg for it)")
    assert run_animate(run_cli, tiny_sd, "--frames", 5, "--fps", 10, "-o", "p.mp4").exit_code == 0
    out = subprocess.run(["ffprobe", "-v", "error", "-select_streams", "v:0", "-count_frames", "-show_entries", "stream=codec_name,width,height,r_frame_rate,nb_read_frames,pix_fmt", "-of", "json", str(tmp_path / "p.mp4")], capture_output=True, text=True, check=True).stdout
    stream = json.loads(out)["streams"][0]
    assert (stream["codec_name"], stream["width"], stream["height"], stream["r_frame_rate"], stream["nb_read_frames"], stream["pix_fmt"]) == ("h264", 32, 32, "10/1", "5", "yuv420p")
