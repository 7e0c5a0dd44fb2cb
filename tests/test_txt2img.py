"""txt2img end to end through the CLI, on tiny random-weight models."""

from __future__ import annotations

import io
import json

import numpy as np
import pytest
from PIL import Image

from helpers import pixels


def test_writes_png_of_requested_size_with_metadata(run_cli, tiny_sd, tmp_path):
    result = run_cli("txt2img", "a red circle", "--model", tiny_sd, "-W", 48, "-H", 32, "--steps", 3, "--seed", 7, "-o", "out.png")
    assert result.exit_code == 0, result.stderr
    image = Image.open(tmp_path / "out.png")
    assert image.size == (48, 32)
    params = image.text["parameters"]
    assert params.splitlines()[0] == "a red circle"
    assert "Steps: 3" in params and "Seed: 7" in params and "Size: 48x32" in params and "Sampler: Euler" in params
    record = json.loads(image.text["scumble"])
    assert record["seed"] == 7 and record["steps"] == 3 and record["model"]["kind"] == "folder"
    assert "seed 7" in result.stderr


def test_same_seed_same_pixels_and_other_seed_differs(run_cli, tiny_sd, tmp_path):
    for name, seed in (("a.png", 3), ("b.png", 3), ("c.png", 4)):
        assert run_cli("txt2img", "a blue star", "--model", tiny_sd, "--steps", 2, "--seed", seed, "-o", name).exit_code == 0
    a, b, c = (pixels(tmp_path / n) for n in ("a.png", "b.png", "c.png"))
    assert np.array_equal(a, b)
    assert np.abs(a.astype(int) - c.astype(int)).mean() > 1.0


def test_folder_output_names_seeds_and_batches(run_cli, tiny_sd, tmp_path):
    result = run_cli("txt2img", "a green square", "--model", tiny_sd, "--steps", 2, "--seed", 100, "--count", 3, "--batch-size", 2, "-o", "out/")
    assert result.exit_code == 0, result.stderr
    names = sorted(p.name for p in (tmp_path / "out").iterdir())
    assert names == ["00000-100-a_green_square.png", "00001-101-a_green_square.png", "00002-102-a_green_square.png"]
    record = json.loads(Image.open(tmp_path / "out" / names[1]).text["scumble"])
    assert record["batch"] == {"size": 2, "position": 1, "prompts": ["a green square"] * 2, "negative_prompts": ["", ""], "seeds": [100, 101]}


def test_replay_is_pixel_identical_even_from_inside_a_batch(run_cli, tiny_sd, tmp_path):
    assert run_cli("txt2img", "a pink hexagon", "--model", tiny_sd, "--steps", 3, "--seed", 11, "--count", 2, "--batch-size", 2, "--scheduler", "dpmpp_2m", "--noise-schedule", "karras", "-o", "batch/").exit_code == 0
    original = tmp_path / "batch" / "00001-12-a_pink_hexagon.png"
    result = run_cli("txt2img", "--replay", original, "--model", tiny_sd, "-o", "again.png")
    assert result.exit_code == 0, result.stderr
    assert np.array_equal(pixels(original), pixels(tmp_path / "again.png"))
    assert "Schedule type: Karras" in Image.open(original).text["parameters"]


def test_stdout_gets_png_bytes(run_cli, tiny_sd):
    result = run_cli("txt2img", "a cat", "--model", tiny_sd, "--steps", 1, "--seed", 1, "-o", "-", "-q")
    assert result.exit_code == 0
    image = Image.open(io.BytesIO(result.stdout_bytes))
    assert image.format == "PNG" and image.size == (32, 32)


def test_json_lines_on_stdout(run_cli, tiny_sd, tmp_path):
    result = run_cli("txt2img", "a dog", "--model", tiny_sd, "--steps", 1, "--seed", 5, "--count", 2, "-o", "j/", "--json")
    assert result.exit_code == 0
    lines = [json.loads(line) for line in result.stdout.splitlines()]
    assert [line["seed"] for line in lines] == [5, 6]
    assert all((tmp_path / "j").joinpath(line["path"]).exists() for line in lines)
    assert lines[0]["settings"]["prompt"] == "a dog"


def test_prompt_file_from_stdin_and_random_seed_reported(run_cli, tiny_sd, tmp_path):
    result = run_cli("txt2img", "--prompt-file", "-", "--model", tiny_sd, "--steps", 1, "-o", "p/", "--json", input="first prompt\n# a comment\n\nsecond prompt\n")
    assert result.exit_code == 0, result.stderr
    lines = [json.loads(line) for line in result.stdout.splitlines()]
    assert [line["settings"]["prompt"] for line in lines] == ["first prompt", "second prompt"]
    assert lines[1]["seed"] == lines[0]["seed"] + 1


def test_existing_file_is_not_overwritten(run_cli, tiny_sd, tmp_path):
    target = tmp_path / "keep.png"
    target.write_bytes(b"precious")
    result = run_cli("txt2img", "x", "--model", tiny_sd, "--steps", 1, "-o", target)
    assert result.exit_code == 1
    assert "already exists" in result.stderr and "--overwrite" in result.stderr
    assert target.read_bytes() == b"precious"
    assert run_cli("txt2img", "x", "--model", tiny_sd, "--steps", 1, "-o", target, "--overwrite").exit_code == 0
    assert Image.open(target).format == "PNG"
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".keep")] == []


def test_skip_existing_only_makes_what_is_missing(run_cli, tiny_sd, tmp_path):
    assert run_cli("txt2img", "y", "--model", tiny_sd, "--steps", 1, "--seed", 0, "--count", 3, "-o", "s/").exit_code == 0
    victim = tmp_path / "s" / "00001-1-y.png"
    kept = (tmp_path / "s" / "00000-0-y.png").stat().st_mtime_ns
    victim.unlink()
    result = run_cli("txt2img", "y", "--model", tiny_sd, "--steps", 1, "--seed", 0, "--count", 3, "-o", "s/", "--skip-existing", "--json")
    assert result.exit_code == 0
    assert [json.loads(line)["seed"] for line in result.stdout.splitlines()] == [1]
    assert victim.exists() and (tmp_path / "s" / "00000-0-y.png").stat().st_mtime_ns == kept


def test_a_run_with_nothing_to_make_never_loads_the_model(run_cli, tiny_sd, tmp_path):
    assert run_cli("txt2img", "y", "--model", tiny_sd, "--steps", 1, "--seed", 0, "--count", 2, "-o", "s/").exit_code == 0
    before = {p.name: p.read_bytes() for p in (tmp_path / "s").iterdir()}
    broken = tmp_path / "broken.safetensors"
    broken.write_bytes(b"\0" * 64)  # loading this model would fail: these runs must not get that far
    common = ("txt2img", "y", "--model", broken, "--steps", 1, "--seed", 0, "--count", 2, "-o", "s/")
    skipped = run_cli(*common, "--skip-existing", "--json")
    assert skipped.exit_code == 0, skipped.stderr
    refused = run_cli(*common)
    assert refused.exit_code == 1 and refused.stderr.count("already exists (pass --overwrite to replace it, or --skip-existing)") == 2
    assert {p.name: p.read_bytes() for p in (tmp_path / "s").iterdir()} == before
    loads = run_cli(*common, "--overwrite")
    assert loads.exit_code == 1 and "already exists" not in loads.stderr  # with something to make, the broken model is what fails


def test_size_not_multiple_of_eight_names_nearest(run_cli, tiny_sd, tmp_path):
    result = run_cli("txt2img", "x", "--model", tiny_sd, "-W", 100)
    assert result.exit_code == 2
    assert result.stderr.strip() == "error: --width 100: must be a positive multiple of 8 (nearest: 96 or 104)"
    assert list(tmp_path.glob("outputs/*")) == []


def test_unknown_scheduler_lists_choices(run_cli, tiny_sd):
    result = run_cli("txt2img", "x", "--model", tiny_sd, "--scheduler", "warp9")
    assert result.exit_code == 2
    assert "unknown scheduler 'warp9'" in result.stderr and "dpmpp_2m" in result.stderr and "unipc" in result.stderr
    assert "Traceback" not in result.stderr and len(result.stderr.strip().splitlines()) == 1


def test_noise_schedule_the_scheduler_cannot_do(run_cli, tiny_sd):
    result = run_cli("txt2img", "x", "--model", tiny_sd, "--scheduler", "ddim", "--noise-schedule", "karras")
    assert result.exit_code == 2
    assert "scheduler ddim cannot space its noise levels that way" in result.stderr and "euler" in result.stderr


def test_a1111_sampler_names_work(run_cli, tiny_sd, tmp_path):
    result = run_cli("txt2img", "x", "--model", tiny_sd, "--steps", 2, "--scheduler", "DPM++ 2M SDE", "--seed", 1, "-o", "a.png")
    assert result.exit_code == 0, result.stderr
    assert "Sampler: DPM++ 2M SDE" in Image.open(tmp_path / "a.png").text["parameters"]


def test_preset_fills_defaults_but_explicit_flags_win(run_cli, tiny_sd, tmp_path):
    assert run_cli("txt2img", "x", "--model", tiny_sd, "--preset", "fast", "--seed", 1, "-o", "p.png").exit_code == 0
    record = json.loads(Image.open(tmp_path / "p.png").text["scumble"])
    assert (record["steps"], record["scheduler"]) == (12, "dpmpp_2m")
    assert run_cli("txt2img", "x", "--model", tiny_sd, "--preset", "fast", "--steps", 3, "--seed", 1, "-o", "q.png").exit_code == 0
    assert json.loads(Image.open(tmp_path / "q.png").text["scumble"])["steps"] == 3


def test_user_preset_from_config_folder(run_cli, tiny_sd, tmp_path):
    folder = tmp_path / ".config" / "scumble" / "presets"
    folder.mkdir(parents=True)
    (folder / "mine.toml").write_text('description = "two steps"\nsteps = 2\ncfg = 3.5\n')
    listing = run_cli("presets")
    assert "mine" in listing.stdout and "two steps" in listing.stdout
    assert run_cli("txt2img", "x", "--model", tiny_sd, "--preset", "mine", "--seed", 1, "-o", "m.png").exit_code == 0
    record = json.loads(Image.open(tmp_path / "m.png").text["scumble"])
    assert (record["steps"], record["cfg"]) == (2, 3.5)


def test_unknown_preset(run_cli, tiny_sd):
    result = run_cli("txt2img", "x", "--model", tiny_sd, "--preset", "nope")
    assert result.exit_code == 2 and "unknown preset 'nope'" in result.stderr and "turbo" in result.stderr


def test_prompt_cannot_escape_output_folder(run_cli, tiny_sd, tmp_path):
    result = run_cli("txt2img", "../../x", "--model", tiny_sd, "--steps", 1, "--seed", 2, "-o", "inside/", "--json")
    assert result.exit_code == 0
    written = (tmp_path / "inside").resolve()
    path = (tmp_path / json.loads(result.stdout)["path"]).resolve()
    assert path.parent == written and path.name == "00000-2-x.png"


def test_sdxl_goes_through_the_same_core(run_cli, tiny_sdxl, tmp_path):
    result = run_cli("txt2img", "a yellow star", "--model", tiny_sdxl, "--steps", 2, "--seed", 3, "-W", 40, "-H", 32, "-o", "xl.png")
    assert result.exit_code == 0, result.stderr
    assert Image.open(tmp_path / "xl.png").size == (40, 32)
    again = run_cli("txt2img", "--replay", "xl.png", "--model", tiny_sdxl, "-o", "xl2.png")
    assert again.exit_code == 0
    assert np.array_equal(pixels(tmp_path / "xl.png"), pixels(tmp_path / "xl2.png"))


@pytest.mark.parametrize("args,message", [
    (["--steps", "0"], "--steps"),
    (["--seed", "-1"], "--seed -1: must be between 0"),
    (["--device", "cuda"], "--device cuda: no CUDA device"),
    (["--dtype", "fp16", "--device", "cpu"], "--dtype fp16: half precision is not supported on the CPU"),
    (["--offload", "model"], "--offload model"),
])
def test_bad_options_give_one_line(run_cli, tiny_sd, tmp_path, args, message):
    result = run_cli("txt2img", "x", "--model", tiny_sd, *args)
    assert result.exit_code == 2, result.stderr
    assert message in result.stderr and "Traceback" not in result.stderr
    assert not (tmp_path / "outputs").exists()


def test_cfg_cutoff_changes_the_image_and_counts_fewer_unet_rows(run_cli, tiny_sd, tmp_path):
    from scumble.core.loading.device import make_runtime
    from scumble.core.sampling.engine import Engine, ImageJob, Sampling

    engine = Engine.load(str(tiny_sd), make_runtime("cpu"))
    rows = []
    unet = engine.components["unet"]
    original = unet.forward
    unet.forward = lambda sample, *a, **k: rows.append(sample.shape[0]) or original(sample, *a, **k)
    full = engine.txt2img([ImageJob("x", seed=1)], Sampling(steps=10, cfg=7.0))[0]
    assert rows == [2] * 10
    rows.clear()
    cut = engine.txt2img([ImageJob("x", seed=1)], Sampling(steps=10, cfg=7.0, cfg_cutoff=0.3))[0]
    assert rows == [2] * 7 + [1] * 3
    assert not np.array_equal(np.asarray(full), np.asarray(cut))


def test_channels_last_gives_the_same_picture_closely(run_cli, tiny_sd, tmp_path):
    for name, extra in (("plain.png", []), ("cl.png", ["--channels-last"])):
        # fp32: a layout change reorders sums, which bf16's 8-bit mantissa would magnify past any tight bound
        assert run_cli("txt2img", "x", "--model", tiny_sd, "--steps", 3, "--seed", 2, "--dtype", "fp32", "-o", name, *extra).exit_code == 0
    assert np.abs(pixels(tmp_path / "plain.png").astype(int) - pixels(tmp_path / "cl.png").astype(int)).max() <= 2


def test_v_prediction_model_goes_through_the_same_core(run_cli, tmp_path):
    """SD 2.x-style v-prediction: the scheduler config says so, and every task follows it."""
    from helpers import build_sd

    model = build_sd(tmp_path / "v-model", prediction_type="v_prediction")
    assert run_cli("txt2img", "x", "--model", model, "--steps", 3, "--seed", 5, "-o", "v.png").exit_code == 0
    assert run_cli("txt2img", "x", "--model", model, "--steps", 3, "--seed", 5, "--scheduler", "dpmpp_2m", "-o", "v2.png").exit_code == 0
    record = json.loads(Image.open(tmp_path / "v2.png").text["scumble"])
    assert record["scheduler"] == "dpmpp_2m"
    from scumble.core.loading.device import make_runtime
    from scumble.core.sampling.engine import Engine, Sampling

    engine = Engine.load(str(model), make_runtime("cpu"))
    engine.use_scheduler(Sampling(scheduler="dpmpp_2m"))
    assert engine.pipeline("img2img").scheduler.config.prediction_type == "v_prediction"


@pytest.mark.parametrize("fast_bf16", [True, False])
def test_dtype_auto_on_the_cpu_follows_the_processor(monkeypatch, fast_bf16):
    import torch

    from scumble.core.loading import device

    monkeypatch.setattr(device, "bf16_supported", lambda: fast_bf16)
    chosen = device.resolve_dtype("auto", torch.device("cpu"))
    assert chosen == (torch.bfloat16 if fast_bf16 and device.CPU_AUTO_BF16 else torch.float32)
    assert device.resolve_dtype("auto", torch.device("cuda")) == torch.float16
    assert device.resolve_dtype("bf16", torch.device("cpu")) == torch.bfloat16


def test_the_dtype_used_is_recorded(run_cli, tiny_sd, tmp_path):
    from scumble.core.records import metadata

    for dtype in ("fp32", "bf16"):
        assert run_cli("txt2img", "x", "--model", tiny_sd, "--steps", 1, "--seed", 1, "--dtype", dtype, "-o", f"{dtype}.png").exit_code == 0
        assert metadata.read_image_metadata(tmp_path / f"{dtype}.png")["record"]["dtype"] == dtype
    assert not np.array_equal(pixels(tmp_path / "fp32.png"), pixels(tmp_path / "bf16.png"))


def test_replay_asks_for_the_recorded_dtype(run_cli, tiny_sd, tmp_path):
    assert run_cli("txt2img", "x", "--model", tiny_sd, "--steps", 2, "--seed", 1, "--dtype", "bf16", "-o", "a.png").exit_code == 0
    refused = run_cli("txt2img", "--replay", "a.png", "--model", tiny_sd, "--dtype", "fp32", "-o", "b.png")
    assert refused.exit_code == 2 and "pass --dtype bf16" in refused.stderr and not (tmp_path / "b.png").exists()
    assert run_cli("txt2img", "--replay", "a.png", "--model", tiny_sd, "--dtype", "bf16", "-o", "b.png").exit_code == 0
    assert np.array_equal(pixels(tmp_path / "a.png"), pixels(tmp_path / "b.png"))
