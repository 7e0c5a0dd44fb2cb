"""ControlNet in txt2img, img2img and inpaint, on tiny random-weight models built from the test UNet.

`ControlNetModel.from_unet` zero-initialises the convolutions that feed the UNet (so a fresh
ControlNet changes nothing); the tests give them random weights, so the control image shows.
"""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
from PIL import Image

from helpers import pixels
from scumble.core.errors import UsageError

STEPS = ("--steps", 4, "--seed", 5)


def _controlnet(model_folder, out_folder, seed: int):
    import torch
    from diffusers import ControlNetModel, UNet2DConditionModel

    unet = UNet2DConditionModel.from_pretrained(model_folder / "unet")
    # (8, 16): one stride-2 step, matching the tiny VAE's factor of 2 between pixels and latents
    controlnet = ControlNetModel.from_unet(unet, conditioning_embedding_out_channels=(8, 16))
    torch.manual_seed(seed)
    with torch.no_grad():
        for conv in [*controlnet.controlnet_down_blocks, controlnet.controlnet_mid_block, controlnet.controlnet_cond_embedding.conv_out]:
            conv.weight.normal_(0, 1.0)
            conv.bias.normal_(0, 0.2)
    controlnet.save_pretrained(out_folder)
    return controlnet


@pytest.fixture(scope="module")
def cnets(tiny_sd, tiny_sdxl, tmp_path_factory):
    from safetensors.torch import save_file

    from ldm_format import controlnet_to_ldm

    root = tmp_path_factory.mktemp("controlnets")
    first = _controlnet(tiny_sd, root / "first", seed=1)
    _controlnet(tiny_sd, root / "second", seed=2)
    _controlnet(tiny_sdxl, root / "xl", seed=3)
    save_file(controlnet_to_ldm(first.state_dict(), first.config.layers_per_block), root / "first.safetensors")
    return root


def square(path, size=(32, 32)):
    path.parent.mkdir(parents=True, exist_ok=True)
    array = np.zeros((size[1], size[0], 3), np.uint8)
    array[size[1] // 4 : 3 * size[1] // 4, size[0] // 4 : 3 * size[0] // 4] = 255
    Image.fromarray(array).save(path)
    return path


def stripes(path, size=(32, 32)):
    path.parent.mkdir(parents=True, exist_ok=True)
    array = np.zeros((size[1], size[0], 3), np.uint8)
    array[:, ::8] = 255
    array[:, 1::8] = 255
    Image.fromarray(array).save(path)
    return path


def differ(a, b) -> float:
    return float(np.abs(pixels(a).astype(int) - pixels(b).astype(int)).mean())


def record_of(path) -> dict:
    return json.loads(Image.open(path).text["scumble"])


def one_error_line(result) -> str:
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    return lines[0]


# ---------------------------------------------------------------- txt2img


def test_the_control_image_steers_the_picture_and_the_same_inputs_repeat(run_cli, tiny_sd, cnets, tmp_path):
    a, b = square(tmp_path / "c" / "a.png"), stripes(tmp_path / "c" / "b.png")
    for name, control in (("a1.png", a), ("a2.png", a), ("b.png", b)):
        result = run_cli("txt2img", "a red circle", "--model", tiny_sd, *STEPS, "--controlnet", cnets / "first", "--control-image", control, "-o", name)
        assert result.exit_code == 0, result.stderr
    assert np.array_equal(pixels(tmp_path / "a1.png"), pixels(tmp_path / "a2.png"))
    assert differ(tmp_path / "a1.png", tmp_path / "c" / "b.png") > 2
    assert Image.open(tmp_path / "a1.png").size == (32, 32)


def test_weight_zero_is_no_controlnet_and_a_late_start_is_none_either(run_cli, tiny_sd, cnets, tmp_path):
    a = square(tmp_path / "c" / "a.png")
    base = ("txt2img", "a red circle", "--model", tiny_sd, *STEPS, "-W", 32, "-H", 32)
    control = ("--controlnet", f"{cnets / 'first'}:0", "--control-image", a)
    assert run_cli(*base, "-o", "plain.png").exit_code == 0
    assert run_cli(*base, *control, "-o", "zero.png").exit_code == 0
    assert np.array_equal(pixels(tmp_path / "plain.png"), pixels(tmp_path / "zero.png"))  # its residuals are added as zeros
    acting = ("--controlnet", cnets / "first", "--control-image", a)
    # 4 steps: step i acts when start <= i/4 and (i+1)/4 <= end; from 0.9 no step does
    assert run_cli(*base, *acting, "--control-start", 0.9, "-o", "late.png").exit_code == 0
    assert run_cli(*base, *acting, "--control-start", 0.5, "-o", "half.png").exit_code == 0
    assert run_cli(*base, *acting, "-o", "full.png").exit_code == 0
    assert np.array_equal(pixels(tmp_path / "plain.png"), pixels(tmp_path / "late.png"))
    assert differ(tmp_path / "half.png", tmp_path / "plain.png") > 0.5 and differ(tmp_path / "half.png", tmp_path / "full.png") > 0.5
    assert run_cli(*base, *acting, "--control-end", 0.5, "-o", "early.png").exit_code == 0
    assert differ(tmp_path / "early.png", tmp_path / "full.png") > 0.5


def test_two_controlnets_act_together_and_are_recorded_as_a1111_writes_them(run_cli, tiny_sd, cnets, tmp_path):
    a, b = square(tmp_path / "c" / "a.png"), stripes(tmp_path / "c" / "b.png")
    both = ("--controlnet", cnets / "first", "--controlnet", f"{cnets / 'second'}:0.5", "--control-image", a, "--control-image", b, "--control-type", "none", "--control-type", "canny")
    result = run_cli("txt2img", "a red circle", "--model", tiny_sd, *STEPS, *both, "-o", "two.png")
    assert result.exit_code == 0, result.stderr
    assert run_cli("txt2img", "a red circle", "--model", tiny_sd, *STEPS, "--controlnet", cnets / "first", "--control-image", a, "-o", "one.png").exit_code == 0
    assert differ(tmp_path / "two.png", tmp_path / "one.png") > 0.5
    image = Image.open(tmp_path / "two.png")
    parameters = image.text["parameters"]
    assert 'ControlNet 0: "Module: none, Model: first [' in parameters
    assert "Weight: 0.5, Resize Mode: Crop and Resize, Processor Res: 32, Threshold A: 100, Threshold B: 200, Guidance Start: 0.0, Guidance End: 1.0" in parameters
    record = record_of(tmp_path / "two.png")
    first, second = record["controlnets"]
    assert first["model"] == str((cnets / "first").resolve()) and len(first["sha256"]) == 64 and len(first["short"]) == 8
    assert (second["module"], second["weight"], second["settings"]) == ("canny", 0.5, {"low": 100, "high": 200})
    assert [entry["image"] for entry in record["inputs"]["control"]] == [str(a.resolve()), str(b.resolve())]


def test_replay_reproduces_the_pixels_and_refuses_a_changed_controlnet(run_cli, tiny_sd, cnets, tmp_path):
    mine = tmp_path / "mine"
    shutil.copytree(cnets / "first", mine)
    a = square(tmp_path / "c" / "a.png", (40, 32))
    result = run_cli("txt2img", "a red circle", "--model", tiny_sd, *STEPS, "--controlnet", f"{mine}:0.8", "--control-image", a, "--control-type", "shuffle", "--guess-mode", "--cfg", 4, "-o", "made.png")
    assert result.exit_code == 0, result.stderr
    assert Image.open(tmp_path / "made.png").size == (40, 32)  # the control image's shape
    again = run_cli("txt2img", "--replay", tmp_path / "made.png", "--model", tiny_sd, "-o", "again.png")
    assert again.exit_code == 0, again.stderr
    assert np.array_equal(pixels(tmp_path / "made.png"), pixels(tmp_path / "again.png"))
    weights = mine / "diffusion_pytorch_model.safetensors"
    weights.write_bytes(weights.read_bytes()[:-1] + b"\0")
    changed = run_cli("txt2img", "--replay", tmp_path / "made.png", "--model", tiny_sd, "-o", "changed.png")
    assert changed.exit_code == 2 and "its ControlNet" in one_error_line(changed) and "has changed" in changed.stderr
    shutil.rmtree(mine)
    gone = run_cli("txt2img", "--replay", tmp_path / "made.png", "--model", tiny_sd, "-o", "gone.png")
    assert gone.exit_code == 2 and "is missing" in one_error_line(gone)
    assert not (tmp_path / "changed.png").exists() and not (tmp_path / "gone.png").exists()


def test_a_single_file_in_the_original_layout_gives_the_folders_pixels(run_cli, tiny_sd, cnets, tmp_path):
    a = square(tmp_path / "c" / "a.png")
    base = ("txt2img", "a red circle", "--model", tiny_sd, *STEPS, "--control-image", a)
    assert run_cli(*base, "--controlnet", cnets / "first", "-o", "folder.png").exit_code == 0
    result = run_cli(*base, "--controlnet", cnets / "first.safetensors", "--controlnet-config", cnets / "first", "-o", "file.png")
    assert result.exit_code == 0, result.stderr
    assert np.array_equal(pixels(tmp_path / "folder.png"), pixels(tmp_path / "file.png"))
    assert record_of(tmp_path / "file.png")["controlnets"][0]["kind"] == "single_file"


# ---------------------------------------------------------------- img2img and inpaint


def test_img2img_follows_the_input_by_default_and_a_folder_by_stem(run_cli, tiny_sd, cnets, tmp_path):
    inputs = tmp_path / "in"
    inputs.mkdir()
    square(inputs / "cat.png")
    stripes(inputs / "dog.png")
    controls = tmp_path / "controls"
    controls.mkdir()
    stripes(controls / "cat.png")
    base = ("img2img", inputs, "-p", "a red circle", "--model", tiny_sd, *STEPS, "--strength", 0.75, "--controlnet", cnets / "first")
    result = run_cli(*base, "--control-type", "canny", "-o", "own/")
    assert result.exit_code == 0, result.stderr
    assert record_of(tmp_path / "own" / "cat.png")["inputs"]["control"] == [None]
    matched = run_cli(*base, "--control-image", controls, "-o", "matched/")
    errors = [line for line in matched.stderr.splitlines() if line.startswith("error: ")]
    assert matched.exit_code == 1 and len(errors) == 1 and "dog.png: no control image named dog.* in" in errors[0]
    assert (tmp_path / "matched" / "cat.png").exists() and not (tmp_path / "matched" / "dog.png").exists()
    assert differ(tmp_path / "matched" / "cat.png", tmp_path / "own" / "cat.png") > 0.5
    again = run_cli("img2img", "--replay", tmp_path / "matched" / "cat.png", "--model", tiny_sd, "-o", "again.png")
    assert again.exit_code == 0, again.stderr
    assert np.array_equal(pixels(tmp_path / "matched" / "cat.png"), pixels(tmp_path / "again.png"))


def test_inpaint_with_a_controlnet_keeps_the_outside_and_replays(run_cli, tiny_sd, cnets, tmp_path):
    source = stripes(tmp_path / "in.png")
    mask = np.zeros((32, 32), np.uint8)
    mask[8:24, 8:24] = 255
    Image.fromarray(mask).save(tmp_path / "mask.png")
    result = run_cli("inpaint", source, "--mask", tmp_path / "mask.png", "-p", "a star", "--model", tiny_sd, *STEPS, "--mask-blur", 0, "--controlnet", cnets / "first", "--control-type", "scribble", "-o", "out.png")
    assert result.exit_code == 0, result.stderr
    out, original = pixels(tmp_path / "out.png"), pixels(source)
    assert np.array_equal(out[mask == 0], original[mask == 0])
    again = run_cli("inpaint", "--replay", tmp_path / "out.png", "--model", tiny_sd, "-o", "again.png")
    assert again.exit_code == 0, again.stderr
    assert np.array_equal(out, pixels(tmp_path / "again.png"))


@pytest.mark.parametrize("task,count,guess", [("txt2img", 1, False), ("img2img", 2, False), ("img2img", 2, True)])
def test_cfg_cutoff_with_controlnets_drops_the_guidance_half_of_the_control_images_too(run_cli, tiny_sd, cnets, tmp_path, task, count, guess):
    source = square(tmp_path / "c" / "in.png")
    nets = [cnets / "first", cnets / "second"][:count]
    args = ("txt2img", "a star", "--control-image", source) if task == "txt2img" else ("img2img", source, "-p", "a star")
    result = run_cli(*args, "--model", tiny_sd, *STEPS, *[x for n in nets for x in ("--controlnet", n)], "--cfg-cutoff", 0.5, *(("--guess-mode",) if guess else ()), "-o", "out.png")
    assert result.exit_code == 0, result.stderr


# ---------------------------------------------------------------- refused, in one line, before any file is written


@pytest.mark.parametrize(
    "args,code,message",
    [
        (("--control-type", "sobel"), 2, "--control-type: unknown type 'sobel'"),
        (("--control-type", "openpose"), 2, "--control-type openpose needs --pose-model MODEL, a transformers ViTPose model"),
        (("--controlnet", "{first}:3"), 2, "the weight must be in [0, 2]"),
        (("--control-start", 0.6, "--control-end", 0.4), 2, "--control-start 0.6 must be less than --control-end 0.4"),
        (("--control-image", "{a}", "--control-image", "{a}", "--control-image", "{a}"), 2, "--control-image: 3 given for 1 ControlNets"),
        (("--controlnet", "{xl}"), 1, "an SDXL ControlNet, but the model is SD 1.x/2.x"),
        (("--controlnet", "{nowhere}"), 1, "no such file or folder"),
    ],
)
def test_bad_controlnet_arguments_are_one_line(run_cli, tiny_sd, cnets, tmp_path, args, code, message):
    a = square(tmp_path / "c" / "a.png")
    names = {"first": cnets / "first", "xl": cnets / "xl", "a": a, "nowhere": tmp_path / "nowhere"}
    args = tuple(str(x).format(**names) for x in args)
    defaults = () if any(x == "--controlnet" for x in args) else ("--controlnet", cnets / "first")
    images = () if "--control-image" in args else ("--control-image", a)
    result = run_cli("txt2img", "x", "--model", tiny_sd, "--steps", 1, *defaults, *images, *args, "-o", "out.png")
    assert result.exit_code == code and message in one_error_line(result)
    assert not (tmp_path / "out.png").exists()


def test_control_options_without_a_controlnet_and_txt2img_without_an_image(run_cli, tiny_sd, cnets, tmp_path):
    a = square(tmp_path / "c" / "a.png")
    alone = run_cli("txt2img", "x", "--model", tiny_sd, "--control-image", a)
    assert alone.exit_code == 2 and "--control-image needs --controlnet MODEL" in one_error_line(alone)
    blind = run_cli("txt2img", "x", "--model", tiny_sd, "--controlnet", cnets / "first")
    assert blind.exit_code == 2 and "needs --control-image" in one_error_line(blind)
    folder = run_cli("txt2img", "x", "--model", tiny_sd, "--controlnet", cnets / "first", "--control-image", tmp_path)
    assert folder.exit_code == 2 and "txt2img has none" in one_error_line(folder)


@pytest.mark.parametrize("upscaler", ["latent", "lanczos"])
def test_the_hires_fix_keeps_the_controlnet_in_its_second_pass(run_cli, tiny_sd, cnets, tmp_path, upscaler):
    a, b = square(tmp_path / "a.png"), stripes(tmp_path / "b.png")
    common = ("txt2img", "x", "--model", tiny_sd, *STEPS, "--hires-scale", 2, "--hires-upscaler", upscaler, "--hires-strength", 0.6, "--controlnet", cnets / "first")
    for name, image in (("a.png", a), ("b.png", b)):
        result = run_cli(*common, "--control-image", image, "-o", "out-" + name)
        assert result.exit_code == 0, result.stderr
    out_a, out_b = pixels(tmp_path / "out-a.png"), pixels(tmp_path / "out-b.png")
    assert out_a.shape == (64, 64, 3)  # the control image's 32x32, doubled
    assert np.abs(out_a.astype(int) - out_b.astype(int)).mean() > 1.0
    replay = run_cli("txt2img", "--replay", "out-a.png", "--model", tiny_sd, "-o", "again.png")
    assert replay.exit_code == 0, replay.stderr
    assert np.array_equal(out_a, pixels(tmp_path / "again.png"))


def test_the_hires_fix_guides_its_second_pass_with_control_images_made_at_the_final_size(run_cli, tiny_sd, cnets, tmp_path, monkeypatch):
    from scumble.core.sampling.engine import Engine

    seen = []
    for name in ("img2img", "img2img_latents"):  # the real second pass runs; the spy notes what guided it
        real = getattr(Engine, name)

        def spy(self, *args, _real=real, **kwargs):
            seen.append(kwargs.get("control"))
            return _real(self, *args, **kwargs)

        monkeypatch.setattr(Engine, name, spy)
    a = square(tmp_path / "a.png")
    result = run_cli("txt2img", "x", "--model", tiny_sd, *STEPS, "--hires-scale", 2, "--controlnet", cnets / "first", "--control-image", a, "--control-type", "canny", "-o", "o.png")
    assert result.exit_code == 0, result.stderr
    (second,) = seen
    (image,) = second.images[0]
    edges = np.asarray(image)
    assert image.size == (64, 64) and set(np.unique(edges)) <= {0, 255}  # an edge map drawn at 64x64, not an enlarged 32x32 one


# ---------------------------------------------------------------- single files: shipped architectures


def _meta_state(config_name: str) -> dict:
    import torch
    from diffusers import ControlNetModel

    from scumble.core.loading import controlnets

    config = json.loads((controlnets.CONFIGS[config_name] / "config.json").read_text())
    with torch.device("meta"):
        model = ControlNetModel.from_config(config)
    return model, config


@pytest.mark.parametrize("name,millions", [("sd15", 361.28), ("sdxl", 1251.01)])
def test_shipped_configs_are_the_published_architectures_and_are_detected_from_the_tensors(name, millions):
    from ldm_format import controlnet_to_ldm
    from scumble.core.loading import controlnets, sources

    model, config = _meta_state(name)
    assert round(sum(p.numel() for p in model.parameters()) / 1e6, 2) == millions
    shapes = {k: tuple(v.shape) for k, v in model.state_dict().items()}
    assert controlnets.detect_config(shapes, "x") == name
    if name == "sd15":
        original = controlnet_to_ldm(model.state_dict(), config["layers_per_block"])
        assert controlnets.detect_config({k: tuple(v.shape) for k, v in original.items()}, "x") == "sd15"
    unet = json.loads((sources.CONFIGS_ROOT / name / "unet" / "config.json").read_text())
    controlnets.check_fits(config, unet, "sdxl" if name == "sdxl" else "sd", "x")


def test_detection_names_what_it_cannot_load():
    from scumble.core.errors import ModelError
    from scumble.core.loading import controlnets

    with pytest.raises(ModelError, match="not a ControlNet"):
        controlnets.detect_config({"model.diffusion_model.input_blocks.0.0.weight": (320, 4, 3, 3)}, "x")
    sd2 = {"input_hint_block.0.weight": (16, 3, 3, 3), "input_blocks.1.1.transformer_blocks.0.attn2.to_k.weight": (320, 1024)}
    with pytest.raises(ModelError, match="SD 2.x"):
        controlnets.detect_config(sd2, "x")


# ---------------------------------------------------------------- more shapes of a run


@pytest.mark.parametrize("task", ["img2img", "inpaint"])
def test_weight_zero_in_img2img_and_inpaint_is_no_controlnet(run_cli, tiny_sd, cnets, tmp_path, task):
    source = stripes(tmp_path / "c" / "in.png")
    mask = square(tmp_path / "c" / "mask.png")
    extra = ("--mask", mask) if task == "inpaint" else ()
    base = (task, source, "-p", "a star", "--model", tiny_sd, *STEPS, *extra)
    assert run_cli(*base, "-o", "plain.png").exit_code == 0
    result = run_cli(*base, "--controlnet", f"{cnets / 'first'}:0", "-o", "zero.png")
    assert result.exit_code == 0, result.stderr
    assert np.array_equal(pixels(tmp_path / "plain.png"), pixels(tmp_path / "zero.png"))


def test_a_batch_gives_each_image_its_own_control_images(run_cli, tiny_sd, cnets, tmp_path):
    inputs = tmp_path / "in"
    square(inputs / "cat.png")
    stripes(inputs / "dog.png")
    controls = tmp_path / "controls"
    stripes(controls / "cat.png")
    square(controls / "dog.png")
    two = ("--controlnet", cnets / "first", "--controlnet", cnets / "second", "--control-image", controls, "--control-type", "none", "--control-type", "softedge")
    result = run_cli("img2img", inputs, "-p", "a star", "--model", tiny_sd, *STEPS, *two, "--batch-size", 2, "-o", "out/")
    assert result.exit_code == 0, result.stderr
    record = record_of(tmp_path / "out" / "dog.png")
    assert record["batch"]["size"] == 2 and [c["image"] for c in record["inputs"]["control"]] == [str((controls / "dog.png").resolve())] * 2
    again = run_cli("img2img", "--replay", tmp_path / "out" / "dog.png", "--model", tiny_sd, "-o", "again.png")
    assert again.exit_code == 0, again.stderr
    assert np.array_equal(pixels(tmp_path / "out" / "dog.png"), pixels(tmp_path / "again.png"))


def test_an_sdxl_controlnet_steers_an_sdxl_model(run_cli, tiny_sdxl, cnets, tmp_path):
    a, b = square(tmp_path / "c" / "a.png"), stripes(tmp_path / "c" / "b.png")
    for name, control in (("a.png", a), ("b.png", b)):
        result = run_cli("txt2img", "a red circle", "--model", tiny_sdxl, *STEPS, "--controlnet", cnets / "xl", "--control-image", control, "-o", name)
        assert result.exit_code == 0, result.stderr
    assert differ(tmp_path / "a.png", tmp_path / "b.png") > 0.5
    edited = run_cli("img2img", tmp_path / "a.png", "-p", "x", "--model", tiny_sdxl, *STEPS, "--controlnet", cnets / "xl", "--control-image", b, "-o", "edit.png")
    assert edited.exit_code == 0, edited.stderr


def test_a_shipped_architecture_that_does_not_fit_and_a_hub_id_not_cached_are_one_line(run_cli, tiny_sd, cnets, tmp_path):
    a = square(tmp_path / "c" / "a.png")
    base = ("txt2img", "x", "--model", tiny_sd, "--steps", 1, "--control-image", a, "-o", "out.png")
    shipped = run_cli(*base, "--controlnet", cnets / "first.safetensors", "--controlnet-config", "sd15")
    assert shipped.exit_code == 1 and "made for a model whose text conditioning is 768 wide, and this model's is 32" in one_error_line(shipped)
    guessed = run_cli(*base, "--controlnet", cnets / "first.safetensors")
    assert guessed.exit_code == 1 and "for which scumble ships no config; pass --controlnet-config" in one_error_line(guessed)
    hub = run_cli(*base, "--controlnet", "nobody/no-such-controlnet")
    assert hub.exit_code == 1 and "could not load this hub id" in one_error_line(hub)
    assert not (tmp_path / "out.png").exists()


# ---------------------------------------------------------------- animate: a control video, or the input video's frames


def _video(path, frames):
    from scumble.core.animation.video import VideoWriter

    with VideoWriter(path, fps=10, crf=0) as video:  # lossless: the same frame decodes the same in every video
        for frame in frames:
            video.add(frame)
    return path


def _moving_squares(count, size=32):
    frames = []
    for i in range(count):
        frame = np.zeros((size, size, 3), np.uint8)
        frame[8:24, 2 + 3 * i : 14 + 3 * i] = 255
        frames.append(frame)
    return frames


def test_animate_follows_a_control_video_frame_by_frame(run_cli, tiny_sd, cnets, tmp_path):
    _video(tmp_path / "moving.mp4", _moving_squares(4))
    _video(tmp_path / "still.mp4", [_moving_squares(1)[0]] * 4)
    common = ("animate", "--model", tiny_sd, "--frames", 4, "--steps", 4, "--strength", 0.6, "--seed", 2, "--keep-frames", "--controlnet", cnets / "first", "--control-type", "canny")
    for name in ("moving", "still"):
        result = run_cli(*common, "--control-video", f"{name}.mp4", "-o", f"out-{name}.mp4")
        assert result.exit_code == 0, result.stderr
    moving = [pixels(p) for p in sorted((tmp_path / "out-moving.frames").glob("0*.png"))]
    still = [pixels(p) for p in sorted((tmp_path / "out-still.frames").glob("0*.png"))]
    assert len(moving) == len(still) == 4
    def change(a, b):
        return np.abs(a.astype(int) - b.astype(int)).mean()

    assert change(moving[0], still[0]) < 0.5  # the same first control frame (up to H.264's rounding): the same first frame
    assert change(moving[-1], still[-1]) > 5 * max(change(moving[0], still[0]), 0.2)  # later control frames differ, and so do the frames they guide
    again = run_cli(*common, "--control-video", "moving.mp4", "-o", "out-moving.mp4", "--resume")
    assert again.exit_code == 0, again.stderr  # the recorded ControlNet settings read back as they were written
    settings = json.loads((tmp_path / "out-moving.frames" / "settings.json").read_text())
    assert settings["control"]["units"][0]["image"] == "moving.mp4" and settings["control"]["units"][0]["module"] == "canny"


def test_animate_vid2vid_controlnet_follows_the_input_video(run_cli, tiny_sd, cnets, tmp_path):
    _video(tmp_path / "in.mp4", _moving_squares(3))
    common = ("animate", "--model", tiny_sd, "--frames", 3, "--steps", 4, "--seed", 2, "--video-input", "in.mp4", "--keep-frames")
    assert run_cli(*common, "-o", "plain.mp4").exit_code == 0
    result = run_cli(*common, "--controlnet", cnets / "first", "-o", "guided.mp4")
    assert result.exit_code == 0, result.stderr
    assert not np.array_equal(pixels(tmp_path / "plain.frames" / "000000002.png"), pixels(tmp_path / "guided.frames" / "000000002.png"))


def test_animate_controlnet_without_a_video_is_one_line(run_cli, tiny_sd, cnets, tmp_path):
    result = run_cli("animate", "--model", tiny_sd, "--frames", 2, "--controlnet", cnets / "first")
    assert result.exit_code == 2 and "needs --control-video FILE (or --video-input" in one_error_line(result)
    short = _video(tmp_path / "short.mp4", _moving_squares(2))
    result = run_cli("animate", "--model", tiny_sd, "--frames", 3, "--steps", 2, "--controlnet", cnets / "first", "--control-video", short, "-o", "s.mp4")
    assert result.exit_code == 1 and "--control-video" in one_error_line(result) and "fewer than --frames 3" in result.stderr


def test_a_deforum_files_controlnet_units_render_as_the_same_flags_would(run_cli, tiny_sd, cnets, tmp_path):
    from test_deforum_files import DEFORUM_DEFAULTS, warnings, write

    shutil.copytree(cnets / "first", tmp_path / "control_first")
    _video(tmp_path / "moving.mp4", _moving_squares(3))
    data = DEFORUM_DEFAULTS | {
        "cn_1_enabled": True, "cn_1_model": "control_first [0a1b2c3d]", "cn_1_module": "canny", "cn_1_weight": "0:(0.8)",
        "cn_1_guidance_start": "0:(0.1)", "cn_1_guidance_end": "0:(0.9)", "cn_1_vid_path": "moving.mp4", "cn_1_threshold_a": 50, "cn_1_threshold_b": 150,
        "cn_1_resize_mode": "Outer Fit (Shrink to Fit)", "cn_1_control_mode": "ControlNet is more important", "seed": 4,
    }
    small = ("--model", tiny_sd, "--frames", 3, "-W", 32, "-H", 32, "--steps", 4, "--keep-frames")
    result = run_cli("animate", "--settings", write(tmp_path, "d.json", data), *small, "-o", "file.mp4")
    assert result.exit_code == 0, result.stderr
    assert not any("ControlNet" in line for line in warnings(result))
    flags = ("--controlnet", "control_first:0.8", "--control-type", "canny", "--control-start", 0.1, "--control-end", 0.9, "--control-video", "moving.mp4",
             "--canny-low", 50, "--canny-high", 150, "--control-resize", "fill", "--guess-mode")
    result = run_cli("animate", "--settings", write(tmp_path, "plain.json", DEFORUM_DEFAULTS | {"seed": 4}), *small, *flags, "-o", "flags.mp4")
    assert result.exit_code == 0, result.stderr
    by_file, by_flags = (sorted((tmp_path / f"{n}.frames").glob("0*.png")) for n in ("file", "flags"))
    assert len(by_file) == 3 and all(np.array_equal(pixels(a), pixels(b)) for a, b in zip(by_file, by_flags))
    unit = json.loads((tmp_path / "file.frames" / "settings.json").read_text())["control"]["units"][0]
    assert unit["module"] == "canny" and unit["image"] == "moving.mp4"


def test_a_deforum_unit_with_a_changing_weight_uses_frame_0_and_says_so(tmp_path, cnets, monkeypatch):
    from test_deforum_files import DEFORUM_DEFAULTS

    from scumble.core.animation import deforum

    monkeypatch.chdir(tmp_path)
    shutil.copytree(cnets / "first", tmp_path / "cn")
    data = DEFORUM_DEFAULTS | {"cn_1_enabled": True, "cn_1_model": "cn", "cn_1_weight": "0:(0.5), 10:(1)", "cn_1_vid_path": "v.mp4",
                               "cn_1_module": "scribble_pidinet", "cn_1_loopback_mode": True,
                               "cn_2_enabled": True, "cn_2_model": "cn", "cn_2_vid_path": "v.mp4", "cn_2_module": "depth_leres"}
    imported = deforum.from_deforum(data)
    assert imported.values["controlnet"] == ("cn:0.5",) and imported.values["control_type"] == ("scribble",)
    assert [w for w in imported.warnings if "ControlNet" in w] == [
        "ControlNet unit 1: loopback mode (the previous frame as the control image) is not done; the control video is followed",
        "ControlNet unit 1: cn_1_weight '0:(0.5), 10:(1)' changes over the video; its frame-0 value 0.5 is used throughout",
        "ControlNet unit 2: preprocessor 'depth_leres' runs a network the file does not name; the unit is not applied (give --controlnet with --control-type depth --depth-model MODEL)",
    ]


# ---------------------------------------------------------------- depth: the user's depth model as the preprocessor


@pytest.fixture(scope="module")
def depth_model(tmp_path_factory):
    from helpers import build_depth_model

    return build_depth_model(tmp_path_factory.mktemp("tiny-depth"))


def test_a_depth_map_is_the_models_depth_stretched_with_the_nearest_white(depth_model):
    from scumble.core.images import control
    from scumble.core.loading.depth import DepthEstimator

    estimator = DepthEstimator(str(depth_model))
    image = pixels(square(depth_model.parent / "in.png", (40, 24)))
    made = control.preprocess("depth", image, control.Settings(networks={"depth": estimator}))
    assert made.shape == (24, 40, 3) and made.dtype == np.uint8 and (made[..., 0] == made[..., 2]).all()
    raw = estimator.raw(image)
    assert (made.min(), made.max()) == (0, 255)
    assert made[..., 0].ravel()[raw.argmax()] == 255 and made[..., 0].ravel()[raw.argmin()] == 0  # relative depth: larger is nearer
    estimator.metric = True  # metric depth: larger is farther, so the map turns over
    flipped = control.preprocess("depth", image, control.Settings(networks={"depth": estimator}))
    assert np.abs(flipped.astype(int) + made.astype(int) - 255).max() <= 1
    with pytest.raises(UsageError, match="--control-type depth needs --depth-model"):
        control.preprocess("depth", image)


def test_preprocess_depth_writes_the_map_and_names_its_model(run_cli, depth_model, tmp_path):
    square(tmp_path / "in.png", (40, 24))
    result = run_cli("preprocess", "depth", "in.png", "--depth-model", depth_model, "-o", "d.png")
    assert result.exit_code == 0, result.stderr
    made = Image.open(tmp_path / "d.png")
    assert made.size == (40, 24)
    assert json.loads(made.text["scumble_preprocess"])["settings"] == {"model": str(depth_model.resolve()), "model_type": "depth_anything", "a1111_module": "depth_anything"}
    for args, message in ((("preprocess", "depth", "in.png", "-o", "x.png"), "needs --depth-model"),
                          (("preprocess", "canny", "in.png", "--depth-model", depth_model, "-o", "x.png"), "--depth-model goes with scumble preprocess depth")):
        result = run_cli(*args)
        assert result.exit_code == 2 and message in one_error_line(result)
    result = run_cli("preprocess", "depth", "in.png", "--depth-model", tmp_path, "-o", "x.png")
    assert result.exit_code == 1 and "has no config.json" in one_error_line(result)
    assert not (tmp_path / "x.png").exists()


def test_txt2img_follows_a_depth_map_records_it_as_a1111_does_and_replays(run_cli, tiny_sd, cnets, depth_model, tmp_path):
    a = square(tmp_path / "c" / "a.png")
    base = ("txt2img", "a red circle", "--model", tiny_sd, *STEPS, "--controlnet", cnets / "first", "--control-image", a)
    result = run_cli(*base, "--control-type", "depth", "--depth-model", depth_model, "-o", "depth.png")
    assert result.exit_code == 0, result.stderr
    assert run_cli(*base, "-o", "plain.png").exit_code == 0
    assert differ(tmp_path / "depth.png", tmp_path / "plain.png") > 0.5  # the map, not the square, reached the ControlNet
    unit = record_of(tmp_path / "depth.png")["controlnets"][0]
    assert unit["module"] == "depth" and unit["settings"]["model"] == str(depth_model.resolve())
    assert 'ControlNet 0: "Module: depth_anything, Model: first [' in Image.open(tmp_path / "depth.png").text["parameters"]
    again = run_cli("txt2img", "--replay", tmp_path / "depth.png", "--model", tiny_sd, "-o", "again.png")
    assert again.exit_code == 0, again.stderr
    assert np.array_equal(pixels(tmp_path / "depth.png"), pixels(tmp_path / "again.png"))
    moved = shutil.copytree(depth_model, tmp_path / "moved-depth")  # the depth model named where it is now
    elsewhere = run_cli("txt2img", "--replay", tmp_path / "depth.png", "--model", tiny_sd, "--depth-model", moved, "-o", "moved.png")
    assert elsewhere.exit_code == 0, elsewhere.stderr
    assert np.array_equal(pixels(tmp_path / "depth.png"), pixels(tmp_path / "moved.png"))


@pytest.mark.parametrize("args,code,message", [
    (("--control-type", "depth"), 2, "--control-type depth needs --depth-model MODEL"),
    (("--control-type", "canny", "--depth-model", "x"), 2, "--depth-model goes with --control-type depth"),
    (("--control-type", "depth", "--depth-model", "nowhere/at-all"), 1, "could not load a depth-estimation model from the local Hugging Face cache"),
])
def test_a_depth_control_without_a_usable_model_is_one_line_and_writes_nothing(run_cli, tiny_sd, cnets, tmp_path, args, code, message):
    a = square(tmp_path / "c" / "a.png")
    result = run_cli("txt2img", "a red circle", "--model", tiny_sd, *STEPS, "--controlnet", cnets / "first", "--control-image", a, *args, "-o", "out.png")
    assert result.exit_code == code and message in one_error_line(result)
    assert not (tmp_path / "out.png").exists()


def test_animate_in_2d_follows_a_depth_controlnet_and_resumes(run_cli, tiny_sd, cnets, depth_model, tmp_path):
    _video(tmp_path / "moving.mp4", _moving_squares(3))
    common = ("animate", "--model", tiny_sd, "--frames", 3, "--steps", 4, "--strength", 0.6, "--seed", 2, "--keep-frames", "--controlnet", cnets / "first", "--control-video", "moving.mp4")
    assert run_cli(*common, "--control-type", "none", "-o", "plain.mp4").exit_code == 0
    result = run_cli(*common, "--control-type", "depth", "--depth-model", depth_model, "-o", "depth.mp4")
    assert result.exit_code == 0, result.stderr
    assert differ(tmp_path / "plain.frames" / "000000002.png", tmp_path / "depth.frames" / "000000002.png") > 0.5
    assert json.loads((tmp_path / "depth.frames" / "settings.json").read_text())["depth_model"] == str(depth_model)
    again = run_cli(*common, "--control-type", "depth", "--depth-model", depth_model, "-o", "depth.mp4", "--resume")
    assert again.exit_code == 0, again.stderr


# ---------------------------------------------------------------- openpose: the user's ViTPose model, drawn as OpenPose draws


@pytest.fixture(scope="module")
def pose_model(tmp_path_factory):
    from helpers import build_pose_model

    return build_pose_model(tmp_path_factory.mktemp("tiny-pose"))


def test_openpose_draws_coco_points_in_openposes_colours_with_a_neck_between_the_shoulders():
    from scumble.core.images.control import POSE_COLOURS, draw_pose, openpose_points

    coco = np.full((17, 2), np.nan, np.float32)
    coco[5], coco[6], coco[8] = (300, 200), (200, 200), (200, 300)  # left and right shoulder, right elbow
    points = openpose_points(coco)
    assert np.allclose(points[1], (250, 200)) and np.allclose(points[2], (200, 200)) and np.allclose(points[3], (200, 300))
    canvas = draw_pose([points], 512, 512)
    assert tuple(canvas[200, 250]) == POSE_COLOURS[1]  # the neck's dot
    assert tuple(canvas[250, 200]) == tuple(int(c * 0.6) for c in POSE_COLOURS[2])  # right upper arm: limb 2, at 60%
    assert tuple(canvas[200, 225]) == tuple(int(c * 0.6) for c in POSE_COLOURS[0])  # neck to right shoulder: limb 0
    assert not canvas[400:].any() and not canvas[:150].any()  # no hips, no head: nothing drawn there
    assert not draw_pose([openpose_points(np.full((17, 2), np.nan, np.float32))], 64, 64).any()


def test_preprocess_openpose_and_txt2img_follow_a_pose_model_and_replay(run_cli, tiny_sd, cnets, pose_model, tmp_path):
    a = square(tmp_path / "c" / "a.png")
    result = run_cli("preprocess", "openpose", a, "--pose-model", pose_model, "-o", "pose.png")
    assert result.exit_code == 0, result.stderr
    drawn = pixels(tmp_path / "pose.png")
    assert drawn.shape == (32, 32, 3) and drawn.any()
    from scumble.core.loading.annotators import PoseEstimator

    found = PoseEstimator(str(pose_model)).points(pixels(a))
    seen = found[~np.isnan(found).any(axis=1)]
    assert found.shape == (17, 2) and len(seen) and ((seen >= 0) & (seen <= 31)).all()  # inside the picture, or not seen
    assert json.loads(Image.open(tmp_path / "pose.png").text["scumble_preprocess"])["settings"]["model_type"] == "vitpose"
    base = ("txt2img", "a red circle", "--model", tiny_sd, *STEPS, "--controlnet", cnets / "first")
    result = run_cli(*base, "--control-image", a, "--control-type", "openpose", "--pose-model", pose_model, "-o", "posed.png")
    assert result.exit_code == 0, result.stderr
    assert run_cli(*base, "--control-image", tmp_path / "pose.png", "-o", "ready.png").exit_code == 0
    assert np.array_equal(pixels(tmp_path / "posed.png"), pixels(tmp_path / "ready.png"))  # the same map, made in the run or beforehand
    assert 'Module: openpose, Model: first [' in Image.open(tmp_path / "posed.png").text["parameters"]
    again = run_cli("txt2img", "--replay", tmp_path / "posed.png", "--model", tiny_sd, "-o", "again.png")
    assert again.exit_code == 0, again.stderr
    assert np.array_equal(pixels(tmp_path / "posed.png"), pixels(tmp_path / "again.png"))


def test_a_pose_model_that_is_not_one_is_one_line(run_cli, tiny_sd, cnets, depth_model, tmp_path):
    a = square(tmp_path / "c" / "a.png")
    result = run_cli("preprocess", "openpose", a, "--pose-model", depth_model, "-o", "x.png")
    assert result.exit_code == 1 and "--pose-model" in one_error_line(result) and "is a depth_anything model, not ViTPose" in result.stderr
    result = run_cli("txt2img", "x", "--model", tiny_sd, *STEPS, "--controlnet", cnets / "first", "--control-image", a, "--control-type", "canny", "--pose-model", depth_model, "-o", "x.png")
    assert result.exit_code == 2 and "--pose-model goes with --control-type openpose" in one_error_line(result)
    assert not (tmp_path / "x.png").exists()
