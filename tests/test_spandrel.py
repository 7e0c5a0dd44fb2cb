"""Upscaler network files through spandrel: real ESRGAN weights in the original layout, random, tiny.

spandrel imports torchvision, and no torchvision loads beside the CPU torch 2.13 of the main test
environment; `.ci/run` runs this file again in an environment of its own (torch 2.14.1 with
torchvision 0.29.1, as the README's torchvision test command sets up), where nothing here is skipped.
"""

from __future__ import annotations

import json

import numpy as np
import pytest
from PIL import Image

from helpers import pixels

try:
    import spandrel
    from spandrel.architectures.ESRGAN import ESRGAN
except Exception as exc:  # noqa: BLE001 - ImportError, or torchvision failing against this torch
    pytest.skip(f"spandrel does not load here ({type(exc).__name__}); see the README's torchvision test command", allow_module_level=True)

pytestmark = pytest.mark.torchvision


def esrgan(path, scale: int = 2, pickle: bool = False):
    """A random ESRGAN (one block, 8 features) saved as its authors' checkpoints are laid out; returns the model."""
    import torch

    torch.manual_seed(scale)
    model = ESRGAN(num_filters=8, num_blocks=1, scale=scale).eval()
    state = model.state_dict()
    last = max((k for k in state if k.endswith(".bias")), key=lambda k: int(k.split(".")[1]))
    state[last] += 0.5  # mid-grey on average, so the clamp to 0..1 does not flatten the picture
    model.load_state_dict(state)
    if pickle:
        torch.save(state, path)
    else:
        from safetensors.torch import save_file

        save_file(state, path)
    return model


def picture(path, size=(40, 32), seed=0):
    array = (np.random.default_rng(seed).random((size[1], size[0], 3)) * 255).astype(np.uint8)
    Image.fromarray(array).save(path)
    return array


def direct(model, array: np.ndarray) -> np.ndarray:
    """The network run on the whole picture by hand, as scumble should run it."""
    import torch

    x = torch.from_numpy(array).permute(2, 0, 1)[None].float() / 255
    with torch.inference_mode():
        out = model(x).clamp(0, 1)[0].permute(1, 2, 0).numpy()
    return np.clip(np.round(out * 255), 0, 255).astype(np.uint8)


def test_an_esrgan_file_upscales_exactly_as_the_network_does_and_tiles_nearly_so(run_cli, tmp_path):
    model = esrgan(tmp_path / "2x_esr.safetensors")
    array = picture(tmp_path / "in.png")
    result = run_cli("upscale", "in.png", "--upscaler", "2x_esr.safetensors", "--scale", 2, "-o", "whole.png")
    assert result.exit_code == 0, result.stderr
    whole = pixels(tmp_path / "whole.png")
    assert whole.shape == (64, 80, 3) and np.array_equal(whole, direct(model, array))
    assert run_cli("upscale", "in.png", "--upscaler", "2x_esr.safetensors", "--scale", 2, "--tile", 16, "-o", "tiled.png").exit_code == 0
    difference = np.abs(pixels(tmp_path / "tiled.png").astype(int) - whole.astype(int))
    assert difference.mean() < 3 and difference.max() < 64  # the tiles see less context at their seams, and are blended there


def test_a_4x_network_asked_for_2x_is_resized_after_it_as_a1111_does(run_cli, tmp_path):
    esrgan(tmp_path / "4x.safetensors", scale=4)
    picture(tmp_path / "in.png")
    result = run_cli("upscale", "in.png", "--upscaler", "4x.safetensors", "--scale", 2, "-o", "out.png")
    assert result.exit_code == 0, result.stderr
    assert Image.open(tmp_path / "out.png").size == (80, 64)


def test_a_pickled_network_needs_allow_pickle_and_then_matches_the_safetensors_one(run_cli, tmp_path):
    esrgan(tmp_path / "net.safetensors")
    esrgan(tmp_path / "net.pth", pickle=True)
    picture(tmp_path / "in.png")
    refused = run_cli("upscale", "in.png", "--upscaler", "net.pth", "-o", "p.png")
    assert refused.exit_code == 2 and "pass --allow-pickle" in refused.stderr and not (tmp_path / "p.png").exists()
    assert run_cli("upscale", "in.png", "--upscaler", "net.pth", "--allow-pickle", "-o", "p.png").exit_code == 0
    assert run_cli("upscale", "in.png", "--upscaler", "net.safetensors", "-o", "s.png").exit_code == 0
    assert np.array_equal(pixels(tmp_path / "p.png"), pixels(tmp_path / "s.png"))


def test_a_file_spandrel_does_not_know_is_one_line(run_cli, tmp_path):
    from safetensors.torch import save_file
    import torch

    save_file({"not.an.upscaler": torch.zeros(3)}, tmp_path / "net.safetensors")
    picture(tmp_path / "in.png")
    result = run_cli("upscale", "in.png", "--upscaler", "net.safetensors", "-o", "out.png")
    lines = result.stderr.strip().splitlines()
    assert result.exit_code == 1 and len(lines) == 1 and "not an upscaler spandrel knows" in lines[0]
    assert not (tmp_path / "out.png").exists()


def test_the_hires_fix_upscales_with_an_esrgan_file_between_its_passes(run_cli, tiny_sd, tmp_path):
    esrgan(tmp_path / "2x_esr.safetensors")
    base = ("txt2img", "a red circle", "--model", tiny_sd, "--steps", 2, "--seed", 3, "-W", 32, "-H", 32, "--hires-scale", 2)
    assert run_cli(*base, "--hires-upscaler", "2x_esr.safetensors", "-o", "net.png").exit_code == 0
    assert run_cli(*base, "--hires-upscaler", "lanczos", "-o", "lanczos.png").exit_code == 0
    image = Image.open(tmp_path / "net.png")
    assert image.size == (64, 64) and "Hires upscaler: 2x_esr" in image.text["parameters"]
    assert json.loads(image.text["scumble"])["hires_upscaler"] == "2x_esr.safetensors"
    assert np.abs(pixels(tmp_path / "net.png").astype(int) - pixels(tmp_path / "lanczos.png").astype(int)).mean() > 0.3
    replayed = run_cli("txt2img", "--replay", "net.png", "--model", tiny_sd, "-o", "again.png")
    assert replayed.exit_code == 0, replayed.stderr
    assert np.array_equal(pixels(tmp_path / "net.png"), pixels(tmp_path / "again.png"))


def test_spandrel_is_what_loaded_it(tmp_path):
    from scumble.core.images import upscale

    esrgan(tmp_path / "2x.safetensors")
    network = upscale.load_network(str(tmp_path / "2x.safetensors"))
    assert network.scale == 2 and network.name == "2x (ESRGAN x2)" and isinstance(network.run, spandrel.ImageModelDescriptor)
