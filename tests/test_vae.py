"""--vae: another autoencoder (AutoencoderTiny or AutoencoderKL) for every task, recorded for replay."""

from __future__ import annotations

import json

import numpy as np
import pytest
from helpers import build_tiny_autoencoder, pixels

from scumble.core.records import metadata


@pytest.fixture(scope="module")
def tiny_autoencoder(tmp_path_factory):
    return build_tiny_autoencoder(tmp_path_factory.mktemp("taesd"))


def test_a_tiny_autoencoder_decodes_and_is_recorded(run_cli, tiny_sd, tiny_autoencoder, tmp_path):
    common = ("a red circle", "--model", tiny_sd, "--steps", 2, "--seed", 3, "-W", 32, "-H", 32)
    assert run_cli("txt2img", *common, "-o", "own.png").exit_code == 0
    result = run_cli("txt2img", *common, "--vae", tiny_autoencoder, "-o", "tiny.png")
    assert result.exit_code == 0, result.output
    own, tiny = pixels(tmp_path / "own.png"), pixels(tmp_path / "tiny.png")
    assert own.shape == tiny.shape == (32, 32, 3)
    assert not np.array_equal(own, tiny)
    record = metadata.read_image_metadata(tmp_path / "tiny.png")
    assert record["record"]["vae"] == str(tiny_autoencoder)
    assert f"VAE: {tiny_autoencoder}" in record["parameters"]


def test_replay_needs_the_same_autoencoder(run_cli, tiny_sd, tiny_autoencoder, tmp_path):
    assert run_cli("txt2img", "a star", "--model", tiny_sd, "--steps", 2, "--seed", 4, "-W", 32, "-H", 32, "--vae", tiny_autoencoder, "-o", "a.png").exit_code == 0
    refused = run_cli("txt2img", "--replay", "a.png", "--model", tiny_sd, "-o", "b.png")
    assert refused.exit_code == 2 and f"pass --vae {tiny_autoencoder}" in refused.stderr
    assert not (tmp_path / "b.png").exists()
    replayed = run_cli("txt2img", "--replay", "a.png", "--model", tiny_sd, "--vae", tiny_autoencoder, "-o", "b.png")
    assert replayed.exit_code == 0, replayed.output
    assert np.array_equal(pixels(tmp_path / "a.png"), pixels(tmp_path / "b.png"))


def test_img2img_encodes_with_the_tiny_autoencoder(run_cli, tiny_sd, tiny_autoencoder, tmp_path):
    from PIL import Image

    Image.fromarray(np.random.default_rng(0).integers(0, 255, (32, 32, 3), dtype=np.uint8)).save(tmp_path / "in.png")
    result = run_cli("img2img", "in.png", "-p", "x", "--model", tiny_sd, "--steps", 4, "--strength", 0.5, "--seed", 1, "--vae", tiny_autoencoder, "-o", "out.png", "--json")
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["settings"]["vae"] == str(tiny_autoencoder)
    assert pixels(tmp_path / "out.png").shape == (32, 32, 3)


@pytest.mark.parametrize("make,expected", [
    (lambda tmp: str(tmp / "missing"), "--vae {}: no such folder"),
    (lambda tmp: str((tmp / "empty").mkdir() or tmp / "empty"), "has no config.json"),
    (lambda tmp: str(build_tiny_autoencoder(tmp / "wide", latent_channels=8)), "8-channel latents but the model's UNet works on 4"),
    (lambda tmp: "tiny", "--vae tiny: could not load madebyollin/taesd"),
])
def test_bad_autoencoders_are_one_line(run_cli, tiny_sd, tmp_path, make, expected):
    spec = make(tmp_path)
    result = run_cli("txt2img", "x", "--model", tiny_sd, "--steps", 1, "--vae", spec, "-o", "x.png")
    assert result.exit_code == 1
    assert expected.format(spec) in result.stderr and len(result.stderr.strip().splitlines()) == 1
    assert not (tmp_path / "x.png").exists()
