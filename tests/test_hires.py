"""txt2img's hires fix end to end through the CLI, on the tiny random-weight model (native 32 px)."""

from __future__ import annotations

import json

import numpy as np
import pytest
from PIL import Image

from helpers import pixels

BASE = ("a red circle", "--steps", 3, "--seed", 5)


def test_scale_doubles_the_size_and_records_the_settings(run_cli, tiny_sd, tmp_path):
    result = run_cli("txt2img", *BASE, "--model", tiny_sd, "--hires-scale", 2, "--hires-steps", 2, "--hires-strength", 0.5, "-o", "hr.png")
    assert result.exit_code == 0, result.stderr
    image = Image.open(tmp_path / "hr.png")
    assert image.size == (64, 64)
    params = image.text["parameters"]
    assert "Size: 32x32" in params  # A1111's Size is the base size
    for field in ("Hires upscale: 2", "Hires steps: 2", "Hires upscaler: Latent", "Denoising strength: 0.5"):
        assert field in params
    record = json.loads(image.text["scumble"])
    assert (record["hires_scale"], record["hires_steps"], record["hires_strength"], record["hires_upscaler"]) == (2.0, 2, 0.5, "latent")


def test_upscalers_both_run_and_differ(run_cli, tiny_sd, tmp_path):
    for upscaler in ("latent", "lanczos"):
        result = run_cli("txt2img", *BASE, "--model", tiny_sd, "--hires-scale", 2, "--hires-upscaler", upscaler, "-o", f"{upscaler}.png")
        assert result.exit_code == 0, result.stderr
    latent, lanczos = pixels(tmp_path / "latent.png"), pixels(tmp_path / "lanczos.png")
    assert latent.shape == lanczos.shape == (64, 64, 3)
    assert np.abs(latent.astype(int) - lanczos.astype(int)).mean() > 1.0
    assert "Hires upscaler: Lanczos" in Image.open(tmp_path / "lanczos.png").text["parameters"]


def test_hires_resize_gives_that_size(run_cli, tiny_sd, tmp_path):
    result = run_cli("txt2img", *BASE, "--model", tiny_sd, "--hires-width", 48, "--hires-upscaler", "lanczos", "-o", "r.png")
    assert result.exit_code == 0, result.stderr
    image = Image.open(tmp_path / "r.png")
    assert image.size == (48, 48)  # the height keeps the base's aspect
    assert "Hires resize: 48x0" in image.text["parameters"]


def test_off_is_the_old_pixels_bit_for_bit(run_cli, tiny_sd, tmp_path):
    assert run_cli("txt2img", *BASE, "--model", tiny_sd, "-o", "plain.png").exit_code == 0
    assert run_cli("txt2img", *BASE, "--model", tiny_sd, "--hires-scale", 1, "--hires-strength", 0.3, "-o", "off.png").exit_code == 0
    assert np.array_equal(pixels(tmp_path / "plain.png"), pixels(tmp_path / "off.png"))
    params = Image.open(tmp_path / "off.png").text["parameters"]
    assert "Hires" not in params and "Denoising strength" not in params


@pytest.mark.parametrize("upscaler", ["latent", "lanczos"])
def test_replay_is_pixel_identical(run_cli, tiny_sd, tmp_path, upscaler):
    made = run_cli("txt2img", *BASE, "--model", tiny_sd, "--count", 2, "--batch-size", 2, "--hires-scale", 1.5, "--hires-upscaler", upscaler, "-o", "batch/")
    assert made.exit_code == 0, made.stderr
    original = sorted((tmp_path / "batch").iterdir())[1]
    assert Image.open(original).size == (48, 48)
    result = run_cli("txt2img", "--replay", original, "--model", tiny_sd, "-o", "again.png")
    assert result.exit_code == 0, result.stderr
    assert np.array_equal(pixels(original), pixels(tmp_path / "again.png"))


@pytest.mark.parametrize(
    ("flags", "message"),
    [
        (("--hires-scale", 10), "error: --hires-scale 10.0: must be in [1, 4]"),
        (("--hires-upscaler", "esrgan"), "error: --hires-upscaler: unknown upscaler 'esrgan'; choose latent, lanczos, or an upscaler network file (.safetensors, .pth, .pt, .ckpt, .bin)"),
        (("--hires-scale", 2, "--hires-upscaler", "missing.safetensors"), "error: --upscaler missing.safetensors: no such file (or use lanczos)"),
        (("--hires-width", 256), "error: --hires-width 256: makes a 256x256 image, larger than this model can use (at most 128 a side, four times its native 32)"),
        (("-W", 64, "--hires-scale", 4), "error: --hires-scale 4: makes a 256x128 image, larger than this model can use (at most 128 a side, four times its native 32)"),
        (("--hires-width", 30), "error: --hires-width 30: must be a positive multiple of 8 (nearest: 24 or 32)"),
    ],
)
def test_bad_values_are_one_line_and_write_nothing(run_cli, tiny_sd, tmp_path, flags, message):
    result = run_cli("txt2img", "x", "--model", tiny_sd, "--steps", 1, *flags, "-o", "bad.png")
    assert result.exit_code == 2
    assert result.stderr.strip() == message
    assert not (tmp_path / "bad.png").exists() and list(tmp_path.glob("outputs/*")) == []


def test_an_upscaler_network_runs_between_the_passes(run_cli, tiny_sd, tmp_path, monkeypatch):
    """The loader is the one stand-in (a random pointwise network, so this runs beside the CPU torch, where spandrel
    cannot load); the tiling, resizing, second pass and record are real. tests/test_spandrel.py loads a real file."""
    import torch

    from scumble.core.images import upscale

    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Conv2d(3, 3, 1), torch.nn.Sigmoid(), torch.nn.Upsample(scale_factor=4, mode="nearest")).eval()
    loaded = []
    monkeypatch.setattr(upscale, "load_network", lambda path, allow_pickle, device: loaded.append(path) or upscale.Network("x4", 4, model))
    (tmp_path / "4x_net.safetensors").write_bytes(b"")
    for name, upscaler in (("net.png", "4x_net.safetensors"), ("lanczos.png", "lanczos")):
        result = run_cli("txt2img", *BASE, "--model", tiny_sd, "--hires-scale", 2, "--hires-upscaler", upscaler, "--count", 2, "--batch-size", 1, "-o", name.replace(".png", ""))
        assert result.exit_code == 0, result.stderr
    assert loaded == ["4x_net.safetensors"]  # checked before the first pass, then loaded once for both batches
    made = sorted((tmp_path / "net").glob("*.png"))
    image = Image.open(made[0])
    assert image.size == (64, 64) and "Hires upscaler: 4x_net" in image.text["parameters"]
    assert json.loads(image.text["scumble"])["hires_upscaler"] == "4x_net.safetensors"
    assert np.abs(pixels(made[0]).astype(int) - pixels(sorted((tmp_path / "lanczos").glob("*.png"))[0]).astype(int)).mean() > 0.3  # the tiny model redraws most of it
