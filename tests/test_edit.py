"""img2img and inpaint through the CLI on tiny random-weight models: single images, folders, bad inputs."""

from __future__ import annotations

import io
import json

import numpy as np
import pytest
from PIL import Image

from helpers import pixels
from scumble.core.sampling import strength as denoise
from scumble.core.images import pixels as imaging
from scumble.core.errors import UsageError


def make_image(path, size=(32, 32), color=(200, 40, 40), seed=0):
    rng = np.random.default_rng(seed)
    array = np.full((size[1], size[0], 3), color, np.uint8)
    array[size[1] // 4 : size[1] // 2, size[0] // 4 : size[0] // 2] = rng.integers(0, 255, 3)
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(array).save(path)
    return path


def make_mask(path, size=(32, 32), box=(8, 8, 24, 24)):
    mask = np.zeros((size[1], size[0]), np.uint8)
    x0, y0, x1, y1 = box
    mask[y0:y1, x0:x1] = 255
    Image.fromarray(mask).save(path)
    return path


# ---------------------------------------------------------------- strength arithmetic


@pytest.mark.parametrize("steps,strength,expected", [(20, 0.75, 15), (20, 1.0, 20), (10, 0.3, 3), (50, 0.02, 1)])
def test_steps_run_follows_diffusers(steps, strength, expected):
    plan = denoise.plan(steps, strength, exact=False)
    assert (plan.num_inference_steps, plan.steps_run) == (steps, expected)


@pytest.mark.parametrize("steps,strength", [(20, 0.75), (10, 0.3), (7, 0.11), (30, 0.999), (1, 0.01), (25, 0.35)])
def test_exact_steps_runs_exactly_the_steps_asked(steps, strength):
    plan = denoise.plan(steps, strength, exact=True)
    n, run = plan.num_inference_steps, plan.steps_run
    assert run == steps and denoise.steps_run(n, strength) == steps


def test_zero_steps_is_an_error_that_says_what_to_change():
    with pytest.raises(UsageError) as info:
        denoise.plan(20, 0.04, exact=False)
    assert "runs no denoising step" in str(info.value) and "at least 0.05" in str(info.value) and "--steps to at least 25" in str(info.value)


def test_img2img_runs_the_planned_number_of_unet_calls(tiny_sd):
    from scumble.core.loading.device import make_runtime
    from scumble.core.sampling.engine import Engine, ImageJob, Sampling

    engine = Engine.load(str(tiny_sd), make_runtime("cpu"))
    calls = []
    original = engine.components["unet"].forward
    engine.components["unet"].forward = lambda *a, **k: calls.append(1) or original(*a, **k)
    image = Image.new("RGB", (32, 32), (100, 50, 50))
    for strength, exact, expected in ((0.5, False, 5), (0.5, True, 10), (0.3, True, 10)):
        calls.clear()
        engine.img2img([ImageJob("x", seed=1)], [image], Sampling(steps=10, cfg=0.0), denoise.plan(10, strength, exact))
        assert len(calls) == expected, (strength, exact)


# ---------------------------------------------------------------- resizing and masks


def test_resize_modes():
    image = np.zeros((20, 40, 3), np.uint8)
    image[:, :20] = 255
    assert imaging.resize(image, 16, 16, "just").shape == (16, 16, 3)
    cropped = imaging.resize(image, 16, 16, "crop")
    assert cropped.shape == (16, 16, 3) and cropped[:, 0].mean() == 255 and cropped[:, -1].mean() == 0
    filled = imaging.resize(image, 16, 16, "fill")
    assert filled.shape == (16, 16, 3) and filled[0, 0].mean() == 255 and filled[-1, -1].mean() == 0


def test_feather_uses_a1111_kernel():
    mask = np.zeros((41, 41), np.uint8)
    mask[:, :20] = 255  # last white column: 19
    blurred = imaging.feather(mask, 4)
    reach = int(2.5 * 4 + 0.5)  # kernel 21: the blur reaches 10 px past the edge and no further
    assert blurred[20, 19 + reach] > 0 and blurred[20, 19 + reach + 1] == 0


def test_paste_back_keeps_outside_pixels_exactly():
    rng = np.random.default_rng(0)
    original, generated = rng.integers(0, 255, (2, 16, 16, 3), dtype=np.uint8)
    soft = np.zeros((16, 16), np.uint8)
    soft[4:12, 4:12] = 255
    soft = imaging.feather(soft, 2)
    out = imaging.paste_back(original, generated, soft)
    assert np.array_equal(out[soft == 0], original[soft == 0])
    assert np.array_equal(out[soft == 255], generated[soft == 255])


def test_mask_box_widens_to_aspect_and_stays_inside():
    mask = np.zeros((100, 200), np.uint8)
    mask[40:60, 10:20] = 255
    x0, y0, x1, y1 = imaging.mask_box(mask, 5, aspect=1.0)
    assert x1 - x0 == y1 - y0 == 30 and x0 >= 0 and (x0, y0) == (0, 35)


# ---------------------------------------------------------------- img2img CLI


def test_img2img_single_file_changes_pixels_and_records_strength(run_cli, tiny_sd, tmp_path):
    source = make_image(tmp_path / "in.png")
    result = run_cli("img2img", source, "-p", "a red circle", "--model", tiny_sd, "--strength", 0.5, "--steps", 4, "--seed", 3, "-o", "out.png")
    assert result.exit_code == 0, result.stderr
    out = Image.open(tmp_path / "out.png")
    assert out.size == (32, 32)
    assert np.abs(pixels(tmp_path / "out.png").astype(int) - pixels(source).astype(int)).mean() > 1
    assert "Denoising strength: 0.5" in out.text["parameters"]
    record = json.loads(out.text["scumble"])
    assert record["task"] == "img2img" and record["steps_run"] == 2 and record["inputs"]["image"] == str(source.resolve())


def test_img2img_is_deterministic(run_cli, tiny_sd, tmp_path):
    source = make_image(tmp_path / "in.png")
    for name in ("a.png", "b.png"):
        assert run_cli("img2img", source, "-p", "x", "--model", tiny_sd, "--steps", 3, "--seed", 5, "-o", name).exit_code == 0
    assert np.array_equal(pixels(tmp_path / "a.png"), pixels(tmp_path / "b.png"))


def test_img2img_folder_mirrors_names_and_subfolders(run_cli, tiny_sd, tmp_path):
    for name in ("a.png", "b.jpg", "sub/c.png"):
        make_image(tmp_path / "sketches" / name, seed=len(name))
    (tmp_path / "sketches" / "notes.txt").write_text("not an image")
    result = run_cli("img2img", "sketches", "-r", "-p", "x", "--model", tiny_sd, "--steps", 2, "--batch-size", 2, "--seed", 1, "-o", "out/", "--json")
    assert result.exit_code == 0, result.stderr
    written = sorted(str(p.relative_to(tmp_path / "out")) for p in (tmp_path / "out").rglob("*.png"))
    assert written == ["a.png", "b.png", "sub/c.png"]
    assert [json.loads(line)["seed"] for line in result.stdout.splitlines()] == [1, 2, 3]


def test_img2img_stdin_to_stdout(run_cli, tiny_sd, tmp_path):
    buffer = io.BytesIO()
    Image.new("RGB", (24, 16), (10, 200, 10)).save(buffer, format="PNG")
    result = run_cli("img2img", "-", "-p", "x", "--model", tiny_sd, "--steps", 2, "--seed", 1, "-o", "-", "-q", input=buffer.getvalue())
    assert result.exit_code == 0, result.stderr
    assert Image.open(io.BytesIO(result.stdout_bytes)).size == (24, 16)


def test_img2img_size_rounds_to_eight_and_resize_modes(run_cli, tiny_sd, tmp_path):
    make_image(tmp_path / "odd.png", size=(37, 21))
    assert run_cli("img2img", "odd.png", "-p", "x", "--model", tiny_sd, "--steps", 2, "-o", "r.png").exit_code == 0
    assert Image.open(tmp_path / "r.png").size == (40, 24)
    assert run_cli("img2img", "odd.png", "-p", "x", "--model", tiny_sd, "--steps", 2, "-W", 32, "-H", 32, "--resize", "crop", "-o", "c.png").exit_code == 0
    assert Image.open(tmp_path / "c.png").size == (32, 32)


def test_img2img_captions_beside_images(run_cli, tiny_sd, tmp_path):
    make_image(tmp_path / "in" / "one.png")
    make_image(tmp_path / "in" / "two.png")
    (tmp_path / "in" / "one.txt").write_text("a blue star\n")
    result = run_cli("img2img", "in", "--captions", "--model", tiny_sd, "--steps", 2, "-o", "out/", "--json")
    assert result.exit_code == 1
    assert "two.png: no caption file two.txt" in result.stderr
    assert [json.loads(line)["settings"]["prompt"] for line in result.stdout.splitlines()] == ["a blue star"]


def test_img2img_batch_goes_on_past_bad_files_and_reports(run_cli, tiny_sd, tmp_path):
    folder = tmp_path / "mixed"
    make_image(folder / "good1.png")
    (folder / "fake.png").write_bytes(b"this is text")
    good = make_image(folder / "good2.png")
    (folder / "truncated.png").write_bytes(good.read_bytes()[:60])
    result = run_cli("img2img", folder, "missing.png", "-p", "x", "--model", tiny_sd, "--steps", 2, "-o", "out/")
    assert result.exit_code == 1
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["good1.png", "good2.png"]
    assert "fake.png: not an image" in result.stderr
    assert "truncated.png: unreadable or truncated image" in result.stderr
    assert "missing.png: no such file or folder" in result.stderr
    assert result.stderr.strip().splitlines()[-1].startswith("2 written, 3 failed")
    assert "Traceback" not in result.stderr


def test_img2img_skip_existing_resumes(run_cli, tiny_sd, tmp_path):
    for name in ("a.png", "b.png", "c.png"):
        make_image(tmp_path / "in" / name)
    args = ["img2img", "in", "-p", "x", "--model", tiny_sd, "--steps", 2, "--seed", 7, "-o", "out/"]
    assert run_cli(*args).exit_code == 0
    before = pixels(tmp_path / "out" / "b.png")
    (tmp_path / "out" / "b.png").unlink()
    again = run_cli(*args, "--skip-existing", "--json")
    assert again.exit_code == 0
    assert [json.loads(line)["seed"] for line in again.stdout.splitlines()] == [8]
    assert np.array_equal(before, pixels(tmp_path / "out" / "b.png"))
    refused = run_cli(*args)
    assert refused.exit_code == 1 and refused.stderr.count("already exists") == 3


@pytest.mark.parametrize("args,message", [
    (["--strength", "1.5"], "--strength 1.5: must be in (0, 1]"),
    (["--strength", "0.01"], "runs no denoising step"),
    (["--resize", "squash"], "--resize: unknown mode 'squash'"),
    (["-W", "30"], "--width 30: must be a positive multiple of 8"),
])
def test_img2img_usage_errors(run_cli, tiny_sd, tmp_path, args, message):
    make_image(tmp_path / "in.png")
    result = run_cli("img2img", "in.png", "-p", "x", "--model", tiny_sd, *args)
    assert result.exit_code == 2 and message in result.stderr
    assert not (tmp_path / "outputs").exists()


def test_img2img_empty_folder(run_cli, tiny_sd, tmp_path):
    (tmp_path / "empty").mkdir()
    result = run_cli("img2img", "empty", "-p", "x", "--model", tiny_sd)
    assert result.exit_code == 1 and "empty: no images in this folder" in result.stderr


def test_img2img_on_sdxl(run_cli, tiny_sdxl, tmp_path):
    make_image(tmp_path / "in.png", size=(40, 32))
    result = run_cli("img2img", "in.png", "-p", "x", "--model", tiny_sdxl, "--steps", 2, "--strength", 0.6, "-o", "xl.png")
    assert result.exit_code == 0, result.stderr
    assert Image.open(tmp_path / "xl.png").size == (40, 32)


# ---------------------------------------------------------------- inpaint CLI


@pytest.mark.parametrize("extra", [[], ["--only-masked", "--padding", "4"], ["--fill", "noise"], ["--fill", "fill"], ["--fill", "nothing"]])
def test_inpaint_keeps_outside_pixels_identical(run_cli, tiny_sd, tmp_path, extra):
    source = make_image(tmp_path / "in.png", size=(48, 40))
    make_mask(tmp_path / "mask.png", size=(48, 40), box=(16, 12, 32, 28))
    result = run_cli("inpaint", source, "--mask", "mask.png", "-p", "a yellow star", "--model", tiny_sd, "--steps", 3, "--seed", 2, "--mask-blur", 2, "-o", "out.png", *extra)
    assert result.exit_code == 0, result.stderr
    out, original = pixels(tmp_path / "out.png"), pixels(source)
    soft = imaging.feather(np.asarray(Image.open(tmp_path / "mask.png")), 2)
    assert np.array_equal(out[soft == 0], original[soft == 0])
    assert np.abs(out[soft == 255].astype(int) - original[soft == 255].astype(int)).mean() > 1
    assert "Mask blur: 2" in Image.open(tmp_path / "out.png").text["parameters"]


def test_inpaint_with_nine_channel_unet_keeps_outside(run_cli, tmp_path):
    from helpers import build_sd

    model = build_sd(tmp_path / "inpaint-model", in_channels=9)
    source = make_image(tmp_path / "in.png")
    make_mask(tmp_path / "mask.png")
    result = run_cli("inpaint", source, "--mask", "mask.png", "-p", "x", "--model", model, "--steps", 2, "-o", "out.png")
    assert result.exit_code == 0, result.stderr
    soft = imaging.feather(np.asarray(Image.open(tmp_path / "mask.png")), 4)
    assert np.array_equal(pixels(tmp_path / "out.png")[soft == 0], pixels(source)[soft == 0])


@pytest.mark.parametrize("channels", [4, 9])
def test_inpaint_with_cfg_cutoff_halves_the_mask_too(run_cli, tmp_path, channels):
    """Guidance switched off mid-run must also drop the mask's (and masked latents') guidance half: a 9-channel
    UNet crashed on the next step, and a 4-channel one blended a batch twice its size."""
    from helpers import build_sd

    model = build_sd(tmp_path / "model", in_channels=channels)
    source = make_image(tmp_path / "in.png")
    make_mask(tmp_path / "mask.png")
    for name, extra in (("full.png", []), ("cut.png", ["--cfg-cutoff", 0.5])):
        result = run_cli("inpaint", source, "--mask", "mask.png", "-p", "x", "--model", model, "--steps", 6, "--seed", 3, "-o", name, *extra)
        assert result.exit_code == 0, result.stderr
    soft = imaging.feather(np.asarray(Image.open(tmp_path / "mask.png")), 4)
    cut, full = pixels(tmp_path / "cut.png"), pixels(tmp_path / "full.png")
    assert cut.shape == full.shape and np.array_equal(cut[soft == 0], pixels(source)[soft == 0])
    assert not np.array_equal(cut, full)


def test_inpaint_invert_mask(run_cli, tiny_sd, tmp_path):
    source = make_image(tmp_path / "in.png")
    make_mask(tmp_path / "mask.png", box=(0, 0, 32, 16))
    assert run_cli("inpaint", source, "--mask", "mask.png", "--invert-mask", "--mask-blur", 0, "-p", "x", "--model", tiny_sd, "--steps", 2, "-o", "out.png").exit_code == 0
    assert np.array_equal(pixels(tmp_path / "out.png")[:16], pixels(source)[:16])


def test_inpaint_mask_folder_matched_by_stem_and_missing_mask(run_cli, tiny_sd, tmp_path):
    for name in ("a", "b"):
        make_image(tmp_path / "imgs" / f"{name}.png")
    (tmp_path / "masks").mkdir()
    make_mask(tmp_path / "masks" / "a.png")
    result = run_cli("inpaint", "imgs", "--mask", "masks", "-p", "x", "--model", tiny_sd, "--steps", 2, "-o", "out/")
    assert result.exit_code == 1
    assert [p.name for p in (tmp_path / "out").iterdir()] == ["a.png"]
    assert "b.png: no mask named b.* in masks" in result.stderr


def test_inpaint_mask_size_mismatch_resized_or_refused(run_cli, tiny_sd, tmp_path):
    make_image(tmp_path / "in.png", size=(32, 32))
    make_mask(tmp_path / "small.png", size=(16, 16), box=(4, 4, 12, 12))
    loose = run_cli("inpaint", "in.png", "--mask", "small.png", "-p", "x", "--model", tiny_sd, "--steps", 2, "-o", "a.png")
    assert loose.exit_code == 0 and "notice: in.png: mask 16x16 resized to the image's 32x32" in loose.stderr
    strict = run_cli("inpaint", "in.png", "--mask", "small.png", "--strict", "-p", "x", "--model", tiny_sd, "--steps", 2, "-o", "b.png")
    assert strict.exit_code == 1 and "(--strict)" in strict.stderr and not (tmp_path / "b.png").exists()


def test_inpaint_requires_mask_and_rejects_empty_mask(run_cli, tiny_sd, tmp_path):
    make_image(tmp_path / "in.png")
    assert "--mask is required" in run_cli("inpaint", "in.png", "-p", "x", "--model", tiny_sd).stderr
    Image.new("L", (32, 32), 0).save(tmp_path / "black.png")
    result = run_cli("inpaint", "in.png", "--mask", "black.png", "-p", "x", "--model", tiny_sd)
    assert result.exit_code == 1 and "marks nothing to repaint" in result.stderr


def test_img2img_replay_from_inside_a_batch(run_cli, tiny_sd, tmp_path):
    for name in ("a.png", "b.png"):
        make_image(tmp_path / "in" / name, seed=len(name) + ord(name[0]))
    assert run_cli("img2img", "in", "-p", "x", "--model", tiny_sd, "--steps", 3, "--batch-size", 2, "--seed", 4, "-o", "out/").exit_code == 0
    result = run_cli("img2img", "--replay", "out/b.png", "--model", tiny_sd, "-o", "again.png")
    assert result.exit_code == 0, result.stderr
    assert np.array_equal(pixels(tmp_path / "out" / "b.png"), pixels(tmp_path / "again.png"))
    make_image(tmp_path / "in" / "a.png", seed=99)  # an input changed: refuse rather than silently differ
    changed = run_cli("img2img", "--replay", "out/b.png", "--model", tiny_sd, "-o", "third.png")
    assert changed.exit_code == 1 and "has changed since" in changed.stderr


def test_inpaint_replay_and_wrong_command(run_cli, tiny_sd, tmp_path):
    source = make_image(tmp_path / "in.png")
    make_mask(tmp_path / "mask.png")
    assert run_cli("inpaint", source, "--mask", "mask.png", "-p", "x", "--model", tiny_sd, "--steps", 2, "--seed", 8, "--only-masked", "-o", "out.png").exit_code == 0
    assert run_cli("inpaint", "--replay", "out.png", "--model", tiny_sd, "-o", "again.png").exit_code == 0
    assert np.array_equal(pixels(tmp_path / "out.png"), pixels(tmp_path / "again.png"))
    wrong = run_cli("txt2img", "--replay", "out.png", "--model", tiny_sd)
    assert wrong.exit_code == 2 and "replay it with scumble inpaint --replay" in wrong.stderr


def test_shards_split_the_run_exactly_once_with_the_same_results(run_cli, tiny_sd, tmp_path):
    for i in range(5):
        make_image(tmp_path / "in" / f"s{i}.png", seed=i)
    args = ["img2img", "in", "-p", "x", "--model", tiny_sd, "--steps", 2, "--seed", 10]
    assert run_cli(*args, "-o", "whole/").exit_code == 0
    seeds = []
    for shard in ("0/2", "1/2"):
        result = run_cli(*args, "-o", "sharded/", "--shard", shard, "--json")
        assert result.exit_code == 0, result.stderr
        seeds += [json.loads(line)["seed"] for line in result.stdout.splitlines()]
    assert sorted(seeds) == [10, 11, 12, 13, 14]
    for i in range(5):
        assert np.array_equal(pixels(tmp_path / "whole" / f"s{i}.png"), pixels(tmp_path / "sharded" / f"s{i}.png"))
    assert "--shard 2/2: I must be in 0..N-1" in run_cli(*args, "--shard", "2/2").stderr


@pytest.mark.slow
def test_torchrun_two_processes_make_every_input_exactly_once(tiny_sd, tmp_path):
    import os
    import shutil
    import subprocess
    import sys

    if not shutil.which("torchrun", path=os.path.dirname(sys.executable)):
        pytest.skip("torchrun not installed beside this python")
    for i in range(6):
        make_image(tmp_path / "in" / f"t{i}.png", seed=i)
    cmd = [os.path.join(os.path.dirname(sys.executable), "torchrun"), "--nproc_per_node", "2", "--master_port", "29533", "-m", "scumble", "img2img", str(tmp_path / "in"), "-p", "x", "--model", str(tiny_sd), "--steps", "2", "--seed", "1", "-o", str(tmp_path / "out") + "/", "--json", "-q"]
    run = subprocess.run(cmd, capture_output=True, text=True, env=dict(os.environ, OMP_NUM_THREADS="1", HF_HUB_OFFLINE="1"), timeout=300)
    assert run.returncode == 0, run.stderr[-3000:]
    lines = [json.loads(line) for line in run.stdout.splitlines() if line.startswith("{")]
    assert sorted(line["seed"] for line in lines) == [1, 2, 3, 4, 5, 6]
    assert sorted({line["settings"]["shard"] for line in lines}) == ["0/2", "1/2"]
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == [f"t{i}.png" for i in range(6)]
