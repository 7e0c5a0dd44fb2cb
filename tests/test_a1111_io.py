"""A1111 images out: JPEG and WebP carry A1111's parameters (EXIF UserComment) and our record (XMP)."""

from __future__ import annotations

import numpy as np
import pytest
from sd_parsers import ParserManager

from helpers import pixels


@pytest.mark.parametrize("name", ["x.jpg", "x.webp"])
def test_jpeg_and_webp_carry_parameters_that_sd_parsers_reads_and_a_record_that_replays(run_cli, tiny_sd, tmp_path, name):
    made = run_cli("txt2img", "a (red:1.2) circle", "--model", tiny_sd, "--steps", 2, "--seed", 11, "-W", 32, "-H", 32, "--quality", 80, "-o", name)
    assert made.exit_code == 0, made.stderr
    info = ParserManager().parse(tmp_path / name)
    assert info is not None
    sampler = info.samplers[0]
    assert sampler.prompts[0].value == "a (red:1.2) circle"
    assert str(sampler.parameters.get("steps")) == "2" and str(sampler.parameters.get("seed", info.metadata.get("seed", ""))) in ("11", "")
    again = run_cli("txt2img", "--replay", name, "--model", tiny_sd, "-o", "again" + name[1:])
    assert again.exit_code == 0, again.stderr
    assert np.array_equal(pixels(tmp_path / name), pixels(tmp_path / ("again" + name[1:])))
    info_line = run_cli("info", name).stdout
    assert "Steps: 2" in info_line and "replay with: scumble txt2img --replay" in info_line


def test_quality_changes_the_file_and_is_checked(run_cli, tiny_sd, tmp_path):
    for quality in (20, 95):
        assert run_cli("txt2img", "x", "--model", tiny_sd, "--steps", 1, "--seed", 1, "-W", 64, "-H", 64, "--quality", quality, "-o", f"q{quality}.jpg").exit_code == 0
    assert (tmp_path / "q20.jpg").stat().st_size < (tmp_path / "q95.jpg").stat().st_size
    bad = run_cli("txt2img", "x", "--model", tiny_sd, "--quality", 0, "-o", "q.jpg")
    assert bad.exit_code == 2 and "--quality 0: must be at least 1" in bad.stderr


A1111_TEXT = (
    "a red circle on a blue background\nNegative prompt: blurry\n"
    "Steps: 3, Sampler: DPM++ 2M Karras, CFG scale: 6.5, Seed: 1234, Size: 32x32, Model hash: abcdef1234, "
    "Model: someone_elses, Clip skip: 2, ENSD: 31337, Face restoration: CodeFormer, Version: v1.6.0"
)


def _a1111_png(path, text):
    from PIL import Image, PngImagePlugin

    info = PngImagePlugin.PngInfo()
    info.add_text("parameters", text)
    Image.new("RGB", (32, 32)).save(path, pnginfo=info)


def test_an_a1111_png_replays_with_its_settings(run_cli, tiny_sd, tmp_path):
    from PIL import Image

    _a1111_png(tmp_path / "a1111.png", A1111_TEXT)
    result = run_cli("txt2img", "--replay", "a1111.png", "--model", tiny_sd, "-o", "again.png")
    assert result.exit_code == 0, result.stderr
    assert "A1111 fields scumble does not honour: Face restoration" in result.stderr
    parameters = Image.open(tmp_path / "again.png").text["parameters"]
    assert parameters.startswith("a red circle on a blue background\nNegative prompt: blurry\n")
    for field in ("Steps: 3", "Sampler: DPM++ 2M", "Schedule type: Karras", "CFG scale: 6.5", "Seed: 1234", "Size: 32x32", "Clip skip: 2", "ENSD: 31337"):
        assert field in parameters, field
    same = run_cli("txt2img", "a red circle on a blue background", "-n", "blurry", "--model", tiny_sd, "--steps", 3, "--scheduler", "dpmpp_2m", "--noise-schedule", "karras", "--cfg", 6.5, "--seed", 1234, "-W", 32, "-H", 32, "--clip-skip", 2, "-o", "same.png")
    assert same.exit_code == 0, same.stderr
    assert np.array_equal(pixels(tmp_path / "again.png"), pixels(tmp_path / "same.png"))


@pytest.mark.parametrize("text,message", [
    (A1111_TEXT.replace("Steps: 3", "Steps: 100000"), "steps = 100000.0: must be at most 1,000"),
    (A1111_TEXT.replace("DPM++ 2M Karras", "Warp Drive"), "unknown scheduler 'Warp Drive'"),
    (A1111_TEXT + ", Denoising strength: 0.5", "was made by A1111's img2img"),
])
def test_an_a1111_png_that_cannot_be_replayed_is_one_line(run_cli, tiny_sd, tmp_path, text, message):
    _a1111_png(tmp_path / "a1111.png", text)
    result = run_cli("txt2img", "--replay", "a1111.png", "--model", tiny_sd, "-o", "again.png")
    assert result.exit_code == 2 and message in result.stderr, result.stderr
    assert not (tmp_path / "again.png").exists()


def test_an_a1111_png_with_a_hires_fix_replays_with_it(run_cli, tiny_sd, tmp_path):
    from PIL import Image

    text = A1111_TEXT.replace("Size: 32x32", "Size: 32x32, Denoising strength: 0.5, Hires upscale: 2, Hires steps: 2, Hires upscaler: Lanczos")
    _a1111_png(tmp_path / "hires.png", text)
    result = run_cli("txt2img", "--replay", "hires.png", "--model", tiny_sd, "-o", "again.png")
    assert result.exit_code == 0, result.stderr
    assert Image.open(tmp_path / "again.png").size == (64, 64)
    parameters = Image.open(tmp_path / "again.png").text["parameters"]
    assert "Hires upscale: 2" in parameters and "Hires upscaler: Lanczos" in parameters and "Denoising strength: 0.5" in parameters
    other = _a1111_png(tmp_path / "esrgan.png", text.replace("Lanczos", "R-ESRGAN 4x+"))
    refused = run_cli("txt2img", "--replay", "esrgan.png", "--model", tiny_sd, "-o", "no.png")
    assert other is None and refused.exit_code == 2 and "scumble has Latent and Lanczos" in refused.stderr
