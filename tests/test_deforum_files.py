"""Deforum files that just work: random seeds, A1111 sampler names, short warnings, renames, clipped keyframes, --plan."""

from __future__ import annotations

import csv
import io
import json
import os
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from scumble.core.animation import deforum
from scumble.core.animation.keyframes import Schedule, ScheduleError
from scumble.core.errors import UsageError
from scumble.core.request.build import FLAGS, Layer, merge
from scumble.core.sampling.schedulers import find_scheduler, split_a1111
from scumble.core.images import raft

# The real export (sd-webui-deforum's test data, AGPL): read where it lies, never copied into the repository.
FIXTURES = Path(os.environ.get("SCUMBLE_DEFORUM_FIXTURES", "/work/shared/fixtures/deforum"))
REAL_EXPORT = FIXTURES / "simple.input_settings.txt"
SMALL = ["-W", 32, "-H", 32, "--steps", 1]

# Deforum's defaults (sd-webui-deforum scripts/deforum_helpers/args.py, the values of DeforumAnimArgs,
# DeforumArgs, LoopArgs, ParseqArgs and DeforumOutputArgs), plus prompts and the sampler under test.
DEFORUM_DEFAULTS = {
    "W": 512, "H": 512, "tiling": False, "restore_faces": False, "seed_resize_from_w": 0, "seed_resize_from_h": 0, "seed": -1,
    "sampler": "DPM++ 2M Karras", "steps": 25, "batch_name": "Deforum_{timestring}", "seed_behavior": "iter", "seed_iter_N": 1,
    "use_init": False, "strength": 0.8, "strength_0_no_init": True, "init_image": "https://deforum.github.io/a1/I1.png",
    "use_mask": False, "use_alpha_as_mask": False, "mask_file": "https://deforum.github.io/a1/M1.jpg", "invert_mask": False,
    "mask_contrast_adjust": 1.0, "mask_brightness_adjust": 1.0, "overlay_mask": True, "mask_overlay_blur": 4, "fill": "original",
    "full_res_mask": True, "full_res_mask_padding": 4, "reroll_blank_frames": "ignore", "reroll_patience": 10, "motion_preview_mode": False,
    "prompts": {"0": "tiny cute bunny, highly detailed", "30": "anthropomorphic clean cat", "60": "a beautiful coconut --neg photo, realistic", "90": "a beautiful durian"},
    "animation_prompts_positive": "", "animation_prompts_negative": "nsfw, nude",
    "animation_mode": "2D", "max_frames": 120, "border": "replicate", "angle": "0: (0)", "zoom": "0: (1.0025+0.002*sin(1.25*3.14*t/30))",
    "translation_x": "0: (0)", "translation_y": "0: (0)", "translation_z": "0: (1.75)", "transform_center_x": "0: (0.5)",
    "transform_center_y": "0: (0.5)", "rotation_3d_x": "0: (0)", "rotation_3d_y": "0: (0)", "rotation_3d_z": "0: (0)",
    "enable_perspective_flip": False, "perspective_flip_theta": "0: (0)", "perspective_flip_phi": "0: (0)", "perspective_flip_gamma": "0: (0)",
    "perspective_flip_fv": "0: (53)", "noise_schedule": "0: (0.065)", "strength_schedule": "0: (0.65)", "cfg_scale_schedule": "0: (7)",
    "enable_steps_scheduling": False, "steps_schedule": "0: (25)", "fov_schedule": "0: (70)", "aspect_ratio_schedule": "0: (1)",
    "aspect_ratio_use_old_formula": False, "near_schedule": "0: (200)", "far_schedule": "0: (10000)",
    "seed_schedule": '0:(s), 1:(-1), "max_f-2":(-1), "max_f-1":(s)', "pix2pix_img_cfg_scale_schedule": "0:(1.5)",
    "enable_subseed_scheduling": False, "subseed_schedule": "0: (1)", "subseed_strength_schedule": "0: (0)", "enable_sampler_scheduling": False,
    "sampler_schedule": '0: ("Euler a")', "use_noise_mask": False, "mask_schedule": '0: ("{video_mask}")', "noise_mask_schedule": '0: ("{video_mask}")',
    "enable_checkpoint_scheduling": False, "checkpoint_schedule": '0: ("model1.ckpt"), 100: ("model2.safetensors")',
    "enable_clipskip_scheduling": False, "clipskip_schedule": "0: (2)", "enable_noise_multiplier_scheduling": True,
    "noise_multiplier_schedule": "0: (1.05)", "resume_from_timestring": False, "resume_timestring": "20230129210106",
    "enable_ddim_eta_scheduling": False, "ddim_eta_schedule": "0: (0)", "enable_ancestral_eta_scheduling": False, "ancestral_eta_schedule": "0: (1)",
    "amount_schedule": "0: (0.1)", "kernel_schedule": "0: (5)", "sigma_schedule": "0: (1)", "threshold_schedule": "0: (0)",
    "color_coherence": "LAB", "color_coherence_image_path": "", "color_coherence_video_every_N_frames": 1, "color_force_grayscale": False,
    "legacy_colormatch": False, "diffusion_cadence": 2, "optical_flow_cadence": "None", "cadence_flow_factor_schedule": "0: (1)",
    "optical_flow_redo_generation": "None", "redo_flow_factor_schedule": "0: (1)", "noise_type": "perlin", "perlin_w": 8, "perlin_h": 8,
    "perlin_octaves": 4, "perlin_persistence": 0.5, "use_depth_warping": True, "depth_algorithm": "Midas-3-Hybrid", "midas_weight": 0.2,
    "padding_mode": "border", "sampling_mode": "bicubic", "save_depth_maps": False, "video_init_path": "https://deforum.github.io/a1/V1.mp4",
    "extract_nth_frame": 1, "extract_from_frame": 0, "extract_to_frame": -1, "overwrite_extracted_frames": False, "use_mask_video": False,
    "video_mask_path": "https://deforum.github.io/a1/VM1.mp4", "hybrid_comp_alpha_schedule": "0:(0.5)", "hybrid_comp_mask_blend_alpha_schedule": "0:(0.5)",
    "hybrid_comp_mask_contrast_schedule": "0:(1)", "hybrid_comp_mask_auto_contrast_cutoff_high_schedule": "0:(100)",
    "hybrid_comp_mask_auto_contrast_cutoff_low_schedule": "0:(0)", "hybrid_flow_factor_schedule": "0:(1)", "hybrid_generate_inputframes": False,
    "hybrid_generate_human_masks": "None", "hybrid_use_first_frame_as_init_image": True, "hybrid_motion": "None", "hybrid_motion_use_prev_img": False,
    "hybrid_flow_consistency": False, "hybrid_consistency_blur": 2, "hybrid_flow_method": "RAFT", "hybrid_use_init_image": False,
    "hybrid_comp_mask_type": "None", "hybrid_comp_mask_equalize": "None",
    "use_looper": False, "init_images": "", "image_strength_schedule": "0:(0.75)", "blendFactorMax": "0:(0.35)", "blendFactorSlope": "0:(0.25)",
    "tweening_frames_schedule": "0:(20)", "color_correction_factor": "0:(0.075)", "parseq_manifest": None, "parseq_use_deltas": True,
    "parseq_non_schedule_overrides": True, "skip_video_creation": False, "fps": 15, "make_gif": False, "delete_imgs": False, "delete_input_frames": False,
    "image_path": "C:/SD/20230124234916_%09d.png", "add_soundtrack": "None", "soundtrack_path": "https://deforum.github.io/a1/A1.mp3",
    "r_upscale_video": False, "r_upscale_factor": "x2", "r_upscale_model": "realesr-animevideov3", "r_upscale_keep_imgs": True,
    "store_frames_in_ram": False, "frame_interpolation_engine": "None", "frame_interpolation_x_amount": 2, "frame_interpolation_slow_mo_enabled": False,
    "frame_interpolation_slow_mo_amount": 2, "frame_interpolation_keep_imgs": False, "frame_interpolation_use_upscaled": False,
    **{f"cn_{i}_{k}": v for i in range(1, 6) for k, v in {"enabled": False, "module": "none", "model": "None", "weight": "0:(1)", "guidance_start": "0:(0.0)", "guidance_end": "0:(1.0)"}.items()},
}


def write(tmp_path: Path, name: str, data: dict) -> str:
    (tmp_path / name).write_text(json.dumps(data))
    return name


def warnings(result) -> list[str]:
    return [line for line in result.stderr.splitlines() if line.startswith("warning: ")]


def one_error_line(result) -> str:
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("error: ") and "unexpected" not in lines[0] and "Traceback" not in result.stderr
    return lines[0]


def record(tmp_path: Path, name: str) -> dict:
    return json.loads((tmp_path / name / "settings.json").read_text())


def frames(tmp_path: Path, folder: str) -> list[np.ndarray]:
    return [np.asarray(Image.open(p)) for p in sorted((tmp_path / folder).glob("0*.png"))]


def files_under(root: Path) -> set[str]:
    return {str(p.relative_to(root)) for p in root.rglob("*") if p.is_file() and ".cache" not in p.parts and ".config" not in p.parts and p.name not in ("defaults.json", "d.json")}


# ---------------------------------------------------------------- 1. seeds: -1 is random, reported, recorded, resumable


def test_seed_minus_one_is_reported_recorded_and_the_reported_seed_makes_the_same_video(run_cli, tiny_sd, tmp_path):
    args = ["animate", "-p", "0: a red circle", "--model", tiny_sd, "--frames", 3, "--zoom", "0: (1.05)", *SMALL]
    runs = []
    for name in ("a", "b"):
        result = run_cli(*args, "--seed", -1, "-o", f"{name}.mp4", "--json")
        assert result.exit_code == 0, result.stderr
        seed = json.loads(result.stdout)["seed"]
        assert f"seed {seed} (random; --seed {seed} makes this again)" in result.stderr
        assert record(tmp_path, f"{name}.frames")["seed"] == seed
        runs.append(seed)
    assert runs[0] != runs[1]
    plans = [json.loads(run_cli(*args, "--seed", -1, "--plan", "--json").stdout) for _ in range(2)]
    assert [row["seed"] for row in plans[0]] != [row["seed"] for row in plans[1]]
    again = run_cli(*args, "--seed", runs[0], "-o", "c.mp4")
    assert again.exit_code == 0, again.stderr
    assert "(random" not in again.stderr and f"seed {runs[0]}" in again.stderr
    assert (tmp_path / "c.mp4").read_bytes() == (tmp_path / "a.mp4").read_bytes()
    assert all(np.array_equal(x, y) for x, y in zip(frames(tmp_path, "a.frames"), frames(tmp_path, "c.frames")))


def test_resume_of_a_random_seed_run_reuses_its_seed_and_iter_counts_on_from_it(run_cli, tiny_sd, tmp_path):
    args = ["animate", "-p", "0: a red circle", "--model", tiny_sd, "--frames", 4, "--angle", "0: (5)", "--seed", -1, *SMALL]
    first = run_cli(*args, "-o", "cut.mp4", "--json")
    assert first.exit_code == 0, first.stderr
    seed = json.loads(first.stdout)["seed"]
    for i in (2, 3):
        (tmp_path / "cut.frames" / f"{i:09}.png").unlink()
    (tmp_path / "cut.mp4").unlink()
    resumed = run_cli(*args, "-o", "cut.mp4", "--resume", "--json")
    assert resumed.exit_code == 0, resumed.stderr
    assert "settings differ" not in resumed.stderr and "resumed at frame 2" in resumed.stderr
    assert f"seed {seed} (the random seed the interrupted run drew)" in resumed.stderr and json.loads(resumed.stdout)["seed"] == seed
    full = run_cli("animate", "-p", "0: a red circle", "--model", tiny_sd, "--frames", 4, "--angle", "0: (5)", "--seed", seed, *SMALL, "-o", "full.mp4")
    assert full.exit_code == 0, full.stderr
    assert (tmp_path / "cut.mp4").read_bytes() == (tmp_path / "full.mp4").read_bytes()
    plan = json.loads(run_cli("animate", "-p", "0: x", "--frames", 4, "--seed", seed, "--plan", "--json").stdout)
    assert [row["seed"] for row in plan] == [(seed + i) % 2**32 for i in range(4)]


# ---------------------------------------------------------------- 2. A1111 sampler names, old and new, wherever a sampler is named

A1111_NAMES = [
    ("Euler a", "euler_a", None), ("Euler", "euler", None), ("LMS", "lms", None), ("Heun", "heun", None), ("DPM2", "dpm2", None),
    ("DPM2 a", "dpm2_a", None), ("DPM++ 2M", "dpmpp_2m", None), ("DPM++ 2M SDE", "dpmpp_2m_sde", None), ("DPM++ SDE", "dpmpp_sde", None),
    ("DDIM", "ddim", None), ("PLMS", "pndm", None), ("UniPC", "unipc", None), ("LCM", "lcm", None),
    ("LMS Karras", "lms", "karras"), ("DPM2 Karras", "dpm2", "karras"), ("DPM2 a Karras", "dpm2_a", "karras"),
    ("DPM++ 2M Karras", "dpmpp_2m", "karras"), ("DPM++ SDE Karras", "dpmpp_sde", "karras"), ("DPM++ 2M SDE Karras", "dpmpp_2m_sde", "karras"),
    ("DPM++ 2M SDE Exponential", "dpmpp_2m_sde", "exponential"), ("Euler Exponential", "euler", "exponential"), ("Heun Beta", "heun", "beta"),
    ("DPM++ 2M Automatic", "dpmpp_2m", "karras"), ("DPM++ 2M SDE Automatic", "dpmpp_2m_sde", "exponential"), ("dpmpp_2m_karras", "dpmpp_2m", "karras"),
]


@pytest.mark.parametrize("name,scheduler,noise", A1111_NAMES)
def test_every_a1111_sampler_name_maps_to_a_scheduler_and_noise_schedule(name, scheduler, noise):
    assert find_scheduler(name).name == scheduler
    values, _ = merge("txt2img", [Layer(FLAGS, {"scheduler": name})])
    expected = scheduler if noise else name  # a plain name is kept as written; a name with a schedule is split
    assert (values["scheduler"], values["noise_schedule"].text) == (expected, noise or "default")
    values, origin = merge("animate", [Layer("--settings s.toml", {"scheduler": name})])
    assert values["scheduler"] == expected and origin["noise_schedule"] == ("--settings s.toml" if noise else "default")


def test_split_a1111_strips_a_trailing_schedule_label_only():
    assert split_a1111("DPM++ 2M Karras") == ("DPM++ 2M", "karras")
    assert split_a1111("Euler a SGM Uniform") == ("Euler a", "sgm_uniform")
    assert split_a1111("Euler a Align Your Steps GITS") == ("Euler a", "align_your_steps_gits")
    assert split_a1111("DPM++ 2M SDE") == ("DPM++ 2M SDE", None) and split_a1111("DDIM") == ("DDIM", None)
    assert split_a1111("Nonsense Karras") == ("Nonsense Karras", None)


def test_simple_and_sgm_uniform_mean_trailing_timesteps():
    values, _ = merge("txt2img", [Layer(FLAGS, {"scheduler": "Euler a Simple"})])
    assert (values["scheduler"], values["timestep_spacing"], values["noise_schedule"].text) == ("euler_a", "trailing", "default")
    values, _ = merge("animate", [Layer(FLAGS, {"scheduler": "Euler SGM Uniform"})])
    assert values["timestep_spacing"] == "trailing"


def test_the_schedule_a_name_carries_is_a_value_of_its_layer():
    higher, _ = merge("txt2img", [Layer("--settings s.toml", {"scheduler": "DPM++ 2M Karras"}), Layer(FLAGS, {"noise_schedule": "exponential"})])
    assert (higher["scheduler"], higher["noise_schedule"].text) == ("dpmpp_2m", "exponential")
    lower, origin = merge("txt2img", [Layer("--preset p", {"noise_schedule": "beta"}), Layer(FLAGS, {"scheduler": "Euler Karras"})])
    assert (lower["noise_schedule"].text, origin["noise_schedule"]) == ("karras", FLAGS)
    with pytest.raises(UsageError, match=r"--settings s.toml: scheduler = 'DPM\+\+ 2M Karras' means noise schedule karras, and noise_schedule = 'beta' disagrees"):
        merge("txt2img", [Layer("--settings s.toml", {"scheduler": "DPM++ 2M Karras", "noise_schedule": "beta"})])
    with pytest.raises(UsageError, match="schedule type KL Optimal has no diffusers equivalent"):
        merge("txt2img", [Layer(FLAGS, {"scheduler": "DPM++ 2M KL Optimal"})])


def test_conflicting_flags_and_unknown_names_are_one_usage_line(run_cli, tiny_sd):
    conflict = run_cli("txt2img", "x", "--model", tiny_sd, "--scheduler", "DPM++ 2M Karras", "--noise-schedule", "exponential")
    assert conflict.exit_code == 2
    assert "--scheduler 'DPM++ 2M Karras' means noise schedule karras, and --noise-schedule exponential disagrees" in one_error_line(conflict)
    unknown = run_cli("txt2img", "x", "--model", tiny_sd, "--scheduler", "DPM++ 3M SDE")
    assert unknown.exit_code == 2
    assert "unknown scheduler 'DPM++ 3M SDE'; closest: DPM++ 2M SDE, DPM++ SDE" in one_error_line(unknown)
    typo = run_cli("txt2img", "x", "--model", tiny_sd, "--scheduler", "eulr_a")
    assert "closest: euler_a" in one_error_line(typo)


def test_txt2img_with_an_old_a1111_name_records_both_halves(run_cli, tiny_sd, tmp_path):
    result = run_cli("txt2img", "a red circle", "--model", tiny_sd, "--steps", 2, "--seed", 3, "-W", 32, "-H", 32, "--scheduler", "DPM++ 2M Karras", "-o", "k.png")
    assert result.exit_code == 0, result.stderr
    info = Image.open(tmp_path / "k.png").text
    ours = json.loads(info["scumble"])
    assert (ours["scheduler"], ours["noise_schedule"]) == ("dpmpp_2m", "karras")
    assert "Sampler: DPM++ 2M, Schedule type: Karras" in info["parameters"]


def test_deforum_sampler_and_forge_schedule_type(run_cli, tiny_sd, tmp_path):
    base = {"max_frames": 2, "animation_mode": "2D", "strength_schedule": "0: (0.65)", "diffusion_cadence": 1, "seed": 4, "prompts": {"0": "a red circle"}}
    simple = run_cli("animate", "--settings", write(tmp_path, "simple.json", base | {"sampler": "Euler", "scheduler": "Simple"}), "--model", tiny_sd, *SMALL, "-o", "s")
    assert simple.exit_code == 0, simple.stderr
    assert (record(tmp_path, "s")["scheduler"], record(tmp_path, "s")["timestep_spacing"]) == ("euler", "trailing")
    karras = run_cli("animate", "--settings", write(tmp_path, "k.json", base | {"sampler": "DPM++ 2M", "scheduler": "Karras"}), "--model", tiny_sd, *SMALL, "-o", "k")
    assert karras.exit_code == 0, karras.stderr
    assert (record(tmp_path, "k")["scheduler"], record(tmp_path, "k")["noise_schedule"]) == ("dpmpp_2m", "karras") and not warnings(karras)
    # No diffusers equivalent, or one the scheduler cannot do: warned, and the sampler's own spacing renders.
    for name, forge, said in (("kl", "KL Optimal", "schedule type KL Optimal has no diffusers equivalent"), ("ea", "Karras", "euler_a cannot space its noise levels the Karras way")):
        result = run_cli("animate", "--settings", write(tmp_path, f"{name}.json", base | {"sampler": "Euler a", "scheduler": forge}), "--model", tiny_sd, *SMALL, "-o", name)
        assert result.exit_code == 0, result.stderr
        assert [line for line in warnings(result) if said in line] and len(warnings(result)) == 1
        assert (record(tmp_path, name)["scheduler"], record(tmp_path, name)["noise_schedule"]) == ("Euler a", "default")
    bad = run_cli("animate", "--settings", write(tmp_path, "bad.json", base | {"sampler": "DPM++ 3M SDE"}), "--model", tiny_sd, *SMALL, "-o", "bad")
    assert bad.exit_code == 2
    line = one_error_line(bad)
    assert "(Deforum): sampler: unknown scheduler 'DPM++ 3M SDE'; closest: DPM++ 2M SDE" in line and "--scheduler" not in line.split(";")[0]


# ---------------------------------------------------------------- 3, 4, 5, 7. real files render; warnings grouped and short


@pytest.mark.skipif(not REAL_EXPORT.is_file(), reason="the Deforum fixtures are not here (set SCUMBLE_DEFORUM_FIXTURES)")
def test_the_real_export_renders_quietly_and_debug_lists_every_ignored_key(run_cli, tiny_sd, tmp_path, monkeypatch):
    result = run_cli("animate", "--settings", REAL_EXPORT, "--model", tiny_sd, "--frames", 2, "-W", 32, "-H", 32, "-o", "real.mp4")
    assert result.exit_code == 0, result.stderr
    assert warnings(result) == []  # ~200 keys, all at their default or of a switched-off feature
    settings = record(tmp_path, "real.frames")
    assert (settings["frames"], settings["width"], settings["seed"], settings["scheduler"]) == (2, 32, 1, "Euler a")
    assert (settings["strength"], settings["color_coherence"], settings["noise"]) == ("0: (1-(0.65))", "lab", "0: (0.04)")
    monkeypatch.setenv("SCUMBLE_DEBUG", "")  # --debug sets it for the process; restored after the test
    debug = run_cli("--debug", "animate", "--settings", REAL_EXPORT, "--frames", 2, "--plan", "--csv")
    assert debug.exit_code == 0, debug.stderr
    every = warnings(debug)
    read = set(deforum.DIRECT) | deforum.CONSUMED | deforum.CN_KEYS
    assert {line.split("not read: ")[1].split(" = ")[0] for line in every} == set(json.loads(REAL_EXPORT.read_text())) - read
    assert f"warning: {REAL_EXPORT}: Deforum key not read: hybrid_comp_mask_type = 'None'" in every and all("Deforum key not read: " in line for line in every)


@pytest.mark.parametrize("count", [1, 2])
def test_deforum_defaults_render_at_one_and_two_frames(run_cli, tiny_sd, tmp_path, count):
    result = run_cli("animate", "--settings", write(tmp_path, "defaults.json", DEFORUM_DEFAULTS), "--model", tiny_sd, "--frames", count, *SMALL, "-o", "d.mp4", "--json")
    assert result.exit_code == 0, result.stderr
    assert "error" not in result.stderr and "--noise-schedule" not in result.stderr
    assert warnings(result) == ["warning: defaults.json: noise multiplier: noise_multiplier_schedule '0: (1.05)' is not applied (the initial noise is not scaled)"]
    settings = record(tmp_path, "d.frames")
    seed = json.loads(result.stdout)["seed"]
    assert settings["seed"] == seed and f"seed {seed} (random" in result.stderr
    assert (settings["scheduler"], settings["noise_schedule"], settings["frames"], settings["cadence"]) == ("dpmpp_2m", "karras", count, 2)
    assert (settings["strength"], settings["negative_prompt"], settings["fps"]) == ("0: (1-(0.65))", "nsfw, nude", 15.0)
    assert len(frames(tmp_path, "d.frames")) == count


def test_seed_schedule_keyframes_outside_a_short_run_are_left_out_with_one_warning(run_cli, tmp_path):
    name = write(tmp_path, "defaults.json", DEFORUM_DEFAULTS | {"seed": 7, "seed_behavior": "schedule"})
    for count in (1, 2):
        result = run_cli("animate", "--settings", name, "--frames", count, "--plan", "--json")
        assert result.exit_code == 0, result.stderr
        [line] = [w for w in warnings(result) if "seed_schedule" in w]
        assert "keyframe 3 ('\"max_f-2\":(-1)')" in line and f"outside frames 0..{count - 1}, left out" in line
        assert json.loads(result.stdout)[0]["seed"] == 7
    four = run_cli("animate", "--settings", name, "--frames", 4, "--plan", "--json")
    seeds = [row["seed"] for row in json.loads(four.stdout)]
    assert not [w for w in warnings(four) if "seed_schedule" in w] and seeds[0] == seeds[2] == seeds[3] == 7 != seeds[1]  # max_f-1 is frame 2


def test_keyframes_past_the_end_or_before_zero_are_clipped():
    schedule = Schedule("0: (1), 5: (3), -2: (9), 1: (2)", 3, name="zoom")
    assert schedule.values == [1.0, 2.0, 2.0]
    with pytest.raises(ScheduleError, match="no keyframe falls within frames 0..1"):
        Schedule("5: (1)", 2, name="zoom")


def test_a_flag_schedule_past_the_end_warns_and_renders_the_plan(run_cli, tmp_path):
    result = run_cli("animate", "-p", "0: x", "--frames", 2, "--zoom", "0: (1.0), 10: (2.0)", "--plan", "--csv")
    assert result.exit_code == 0, result.stderr
    assert warnings(result) == ["warning: zoom: keyframe 2 ('10: (2.0)') at frame 10: outside frames 0..1, left out (as Deforum does)"]
    assert [row["zoom"] for row in csv.DictReader(io.StringIO(result.stdout))] == ["1.0", "1.0"]


@pytest.mark.skipif(raft.unavailable() is None, reason="RAFT runs here, so a file's RAFT is not replaced by DIS")
def test_features_that_change_the_video_are_one_line_each(run_cli, tmp_path):
    data = DEFORUM_DEFAULTS | {
        "animation_mode": "3D", "translation_z": "0: (2.5)", "depth_algorithm": "Zoe", "parseq_manifest": '{"rendered_frames": [{"frame": 0, "noise_multiplier": 1.05}, {"frame": 1, "noise_multiplier": 1}]}',
        "hybrid_motion": "Optical Flow", "cn_1_enabled": True, "cn_1_module": "canny", "cn_1_model": "control_canny", "cn_2_enabled": True,
        "enable_noise_multiplier_scheduling": False, "use_looper": True, "add_soundtrack": "File", "seed_iter_N": 3,
    }
    result = run_cli("animate", "--settings", write(tmp_path, "d.json", data), "--frames", 2, "--plan", "--json")
    assert result.exit_code == 0, result.stderr
    lines = [w.removeprefix("warning: d.json: ") for w in warnings(result)]
    assert lines == [
        "ControlNet unit 1: model 'control_canny' is not a file or folder here; the unit is not applied (give --controlnet PATH)",
        "ControlNet unit 2: model 'None' is not a file or folder here; the unit is not applied (give --controlnet PATH)",
        "3D: depth_algorithm 'Zoe' is not run: the camera moves through flat depth unless --depth-model names a transformers depth model (e.g. Intel/zoedepth-nyu-kitti)",
        f"hybrid video: hybrid_flow_method 'RAFT' runs as DIS ({raft.unavailable()})",
        "guided images: use_looper (init_images, image_strength_schedule) not supported",
        "seed: seed_iter_N 3 ignored (iter adds 1 every key frame)",
        "video: add_soundtrack 'File' from a URL (scumble downloads nothing: pass --soundtrack FILE) not supported",
        "Parseq: fields not used: noise_multiplier",
    ]
    assert all(len(line) < 200 for line in lines)


@pytest.mark.parametrize("old,new", [("Match Frame 0 LAB", "lab"), ("Match Frame 0 HSV", "hsv"), ("Match Frame 0 RGB", "rgb")])
def test_color_coherence_old_spellings(old, new):
    assert deforum.from_deforum(DEFORUM_DEFAULTS | {"color_coherence": old}).values["color_coherence"] == new


def test_renamed_keys_and_values_render_and_are_recorded(run_cli, tiny_sd, tmp_path):
    old = {k: v for k, v in DEFORUM_DEFAULTS.items() if k != "enable_perspective_flip"} | {
        "flip_2d_perspective": True, "perspective_flip_theta": "0: (10)", "color_coherence": "Match Frame 0 HSV",
        "hybrid_composite": False, "optical_flow_cadence": False, "use_zoe_depth": True, "histogram_matching": False, "seed": 5,
        "enable_noise_multiplier_scheduling": False, "cn_1_weight": 1.0,
    }
    result = run_cli("animate", "--settings", write(tmp_path, "d.json", old), "--model", tiny_sd, "--frames", 2, *SMALL, "-o", "r")
    assert result.exit_code == 0, result.stderr
    assert warnings(result) == []  # hybrid_composite False is "None", optical flow False is "None", Zoe only matters in 3D
    settings = record(tmp_path, "r")
    assert (settings["perspective_flip"], settings["perspective_flip_theta"], settings["color_coherence"]) == (True, "0: (10)", "hsv")
    plan = run_cli("animate", "--settings", "d.json", "--frames", 2, "--plan", "--json")
    assert json.loads(plan.stdout)[1]["perspective_flip_theta"] == 10.0


def test_an_unused_schedule_out_of_its_range_is_not_refused(run_cli, tmp_path):
    data = DEFORUM_DEFAULTS | {"perspective_flip_fv": "0: (0)", "seed": 2}
    result = run_cli("animate", "--settings", write(tmp_path, "d.json", data), "--frames", 2, "--plan", "--json")
    assert result.exit_code == 0, result.stderr
    flipped = run_cli("animate", "--settings", "d.json", "--frames", 2, "--perspective-flip", "--plan", "--json")
    assert flipped.exit_code == 0 and json.loads(flipped.stdout)[0]["perspective_flip_fv"] == 53.0


# ---------------------------------------------------------------- 6. --plan


def test_plan_prints_every_frame_without_loading_a_model_or_writing(run_cli, tmp_path):
    write(tmp_path, "defaults.json", DEFORUM_DEFAULTS | {"seed": 11, "enable_perspective_flip": True, "perspective_flip_phi": "0: (t*2)"})
    before = files_under(tmp_path)
    args = ["animate", "--settings", "defaults.json", "--model", str(tmp_path / "no-such-model"), "--frames", 5, "-o", "never.mp4", "--plan"]
    table = run_cli(*args, "--csv")
    assert table.exit_code == 0, table.stderr
    rows = list(csv.DictReader(io.StringIO(table.stdout)))
    assert [r["frame"] for r in rows] == ["0", "1", "2", "3", "4"] and [r["key"] for r in rows] == ["true", "false", "true", "false", "true"]
    assert [r["seed"] for r in rows[:3]] == ["11", "12", "12"]  # iter: +1 per key frame; a frame between two keys has the next one's
    assert rows[0]["prompt"] == "tiny cute bunny, highly detailed" and rows[0]["negative"] == "nsfw, nude"
    assert (rows[0]["strength"], rows[0]["steps"], rows[0]["cfg"]) == ("0.35", "25", "7.0")
    assert [float(r["perspective_flip_phi"]) for r in rows] == [0.0, 2.0, 4.0, 6.0, 8.0]
    assert {"zoom", "angle", "translation_x", "translation_y", "noise", "contrast", "perspective_flip_fv"} <= set(rows[0]) and "seed_schedule" not in rows[0]
    as_json = json.loads(run_cli(*args, "--json").stdout)
    assert [r["seed"] for r in as_json] == [int(r["seed"]) for r in rows] and as_json[1]["key"] is False
    readable = run_cli(*args)
    assert readable.exit_code == 0 and readable.stdout.splitlines()[0].split()[:5] == ["frame", "key", "prompt", "negative", "seed"]
    assert len(readable.stdout.splitlines()) == 6
    assert files_under(tmp_path) == before


def test_plan_format_flags_are_checked(run_cli):
    both = run_cli("animate", "-p", "0: x", "--plan", "--csv", "--json")
    assert both.exit_code == 2 and "give --json or --csv, not both" in one_error_line(both)
    alone = run_cli("animate", "-p", "0: x", "--csv")
    assert alone.exit_code == 2 and "--csv goes with --plan" in one_error_line(alone)
