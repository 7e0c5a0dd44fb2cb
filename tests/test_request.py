"""One request per run: every door (flag, preset, settings file, replayed record) is held to the same limits."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from PIL import Image, PngImagePlugin

from scumble.core.errors import UsageError
from scumble.core.request.build import FLAGS, Layer, animation_request, image_request, merge
from scumble.core.request.options import OPTIONS, options_for


def files_under(root: Path) -> set[str]:
    return {str(p.relative_to(root)) for p in root.rglob("*") if p.is_file() and ".cache" not in p.parts and ".config" not in p.parts}


def one_error_line(result) -> str:
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("error: ") and "unexpected" not in lines[0] and "Traceback" not in result.stderr
    return lines[0]


def write_user_preset(tmp_path: Path, name: str, text: str) -> None:
    folder = tmp_path / ".config" / "scumble" / "presets"
    folder.mkdir(parents=True, exist_ok=True)
    (folder / f"{name}.toml").write_text(text)


def record_png(path: Path, record: dict) -> None:
    info = PngImagePlugin.PngInfo()
    info.add_text("scumble", json.dumps(record))
    Image.new("RGB", (32, 32)).save(path, pnginfo=info)


# ---------------------------------------------------------------- the same value through every door


def test_flag_refuses_the_value_and_names_the_flag(run_cli, tiny_sd, tmp_path):
    before = files_under(tmp_path)
    result = run_cli("txt2img", "x", "--model", tiny_sd, "--width", 100000)
    assert result.exit_code == 2
    assert one_error_line(result) == "error: --width 100000: must be 0 (native size) or between 8 and 4096"
    assert files_under(tmp_path) == before


def test_preset_refuses_the_value_and_names_the_preset(run_cli, tiny_sd, tmp_path):
    write_user_preset(tmp_path, "huge", "width = 100000\n")
    before = files_under(tmp_path)
    result = run_cli("txt2img", "x", "--model", tiny_sd, "--preset", "huge")
    assert result.exit_code == 2
    assert one_error_line(result) == "error: --preset huge: width = 100000: must be 0 (native size) or between 8 and 4096"
    assert files_under(tmp_path) == before


def test_settings_file_refuses_the_value_and_names_the_file(run_cli, tiny_sd, tmp_path):
    (tmp_path / "s.toml").write_text("width = 100000\n")
    before = files_under(tmp_path)
    result = run_cli("animate", "--settings", "s.toml", "--model", tiny_sd, "-o", "a.mp4")
    assert result.exit_code == 2
    assert one_error_line(result) == "error: --settings s.toml: width = 100000: must be 0 (native size) or between 8 and 4096"
    assert files_under(tmp_path) == before


def test_deforum_file_refuses_the_value_and_names_the_file(run_cli, tiny_sd, tmp_path):
    (tmp_path / "d.json").write_text(json.dumps({"max_frames": 2, "animation_mode": "2D", "diffusion_cadence": 1, "W": 100000, "H": 64, "prompts": {"0": "x"}}))
    before = files_under(tmp_path)
    result = run_cli("animate", "--settings", "d.json", "--model", tiny_sd, "-o", "a.mp4")
    assert result.exit_code == 2
    assert one_error_line(result) == "error: --settings d.json (Deforum): width = 100000: must be 0 (native size) or between 8 and 4096"
    assert files_under(tmp_path) == before


def test_replayed_record_refuses_the_value_and_names_the_image(run_cli, tiny_sd, tmp_path):
    made = run_cli("txt2img", "a red circle", "--model", tiny_sd, "--steps", 2, "--seed", 1, "-o", "made.png")
    assert made.exit_code == 0, made.stderr
    record = json.loads(Image.open(tmp_path / "made.png").text["scumble"])
    record["width"] = 100000
    record_png(tmp_path / "forged.png", record)
    before = files_under(tmp_path)
    result = run_cli("txt2img", "--replay", "forged.png", "--model", tiny_sd, "-o", "again.png")
    assert result.exit_code == 2
    assert one_error_line(result) == "error: --replay forged.png: width = 100000: must be 0 (native size) or between 8 and 4096"
    assert files_under(tmp_path) == before


@pytest.mark.parametrize("change,message", [
    ({"steps": 1000000}, "steps = 1000000: must be at most 1,000"),
    ({"batch": {"size": 3000, "position": 0, "prompts": ["x"] * 3000, "negative_prompts": [""] * 3000, "seeds": [1] * 3000}}, "batch size 3000: must be a whole number between 1 and 64"),
    ({"steps": None}, "its record lacks steps"),
    ({"cfg": "loud"}, "cfg = loud: must be a number"),
    ({"task": "paint"}, "its record names no task scumble knows"),
    ({"scheduler": "warp9"}, "unknown scheduler 'warp9'"),
])
def test_a_replayed_record_is_held_to_the_flags_limits(run_cli, tiny_sd, tmp_path, change, message):
    made = run_cli("txt2img", "a red circle", "--model", tiny_sd, "--steps", 2, "--seed", 1, "-o", "made.png")
    assert made.exit_code == 0, made.stderr
    record = json.loads(Image.open(tmp_path / "made.png").text["scumble"])
    for key, value in change.items():
        if value is None:
            record.pop(key)
        else:
            record[key] = value
    record_png(tmp_path / "forged.png", record)
    before = files_under(tmp_path)
    result = run_cli("txt2img", "--replay", "forged.png", "--model", tiny_sd, "-o", "again.png")
    assert result.exit_code == 2
    assert message in one_error_line(result)
    assert files_under(tmp_path) == before


def test_a_schedule_from_a_preset_that_leaves_the_limits_mid_run_names_the_preset(run_cli, tiny_sd, tmp_path):
    write_user_preset(tmp_path, "wild", '[animate]\ncfg = "0: (7 + 40*t)"\n')
    before = files_under(tmp_path)
    result = run_cli("animate", "-p", "0: x", "--preset", "wild", "--frames", 4, "--model", tiny_sd, "-o", "w.mp4")
    assert result.exit_code == 2
    line = one_error_line(result)
    assert "--preset wild [animate]" in line and "cfg: at frame 3 reaches 127, outside [0, 100]" in line
    assert files_under(tmp_path) == before


# ---------------------------------------------------------------- the builder itself


def test_layers_merge_in_order_and_flags_win():
    values, origin = merge("txt2img", [Layer("--preset p", {"steps": 12, "cfg": 3}, shared=True), Layer(FLAGS, {"steps": 30})])
    assert (values["steps"], values["cfg"], values["width"]) == (30, 3.0, 0)
    assert (origin["steps"], origin["cfg"], origin["width"]) == (FLAGS, "--preset p", "default")


def test_a_shared_preset_key_for_another_task_is_skipped_but_a_typo_is_not():
    values, _ = merge("txt2img", [Layer("--preset p", {"strength": 0.3, "zoom": "0: (1.1)"}, shared=True)])
    assert "strength" not in values
    with pytest.raises(UsageError, match=r"--preset p: unknown options stepz"):
        merge("txt2img", [Layer("--preset p", {"stepz": 3}, shared=True)])


def test_a_million_unknown_keys_make_one_short_line():
    with pytest.raises(UsageError) as caught:
        merge("animate", [Layer("--settings big.json", {f"k{i}": 1 for i in range(1_000_000)})])
    assert len(str(caught.value)) < 300 and "and 999,995 more" in str(caught.value)


def test_the_request_is_frozen_and_parsed_once():
    request = image_request("img2img", [Layer(FLAGS, {"prompt": "x", "strength": 0.5, "steps": 10, "noise_schedule": "cosine:tau=2"})], inputs=["a.png"])
    assert request.denoise.steps_run == 5 and request.denoise.num_inference_steps == 10
    assert request.sampling.noise_schedule.continuous.params["tau"] == 2.0
    with pytest.raises(Exception):
        request.seed = 3


def test_a_random_seed_is_drawn_once_and_kept_in_the_request():
    request = image_request("txt2img", [Layer(FLAGS, {})], prompts=["x"])
    assert 0 <= request.seed < 2**32


def test_animation_schedules_arrive_parsed_and_a_plain_number_is_a_constant():
    _, settings = animation_request([Layer(FLAGS, {"zoom": 1.02, "steps": 6, "frames": 3})])
    assert settings.zoom.text == "0: (1.02)" and settings.steps.evaluate(3) == [6.0, 6.0, 6.0]


def test_every_option_default_passes_its_own_check():
    for option in OPTIONS:
        if option.default is not None:
            option.kind.convert(option.default)
    assert set(options_for("animate")) >= {"zoom", "strength", "frames", "model"}
