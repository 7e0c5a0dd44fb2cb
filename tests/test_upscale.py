"""scumble upscale: Lanczos and networks run tile by tile, files and frame folders in, PNGs out, nothing lost."""

from __future__ import annotations

import importlib.util
import json

import numpy as np
import pytest
import torch
from PIL import Image

from scumble.core.images import upscale


def picture(path, size=(48, 40), seed=0):
    rng = np.random.default_rng(seed)
    pixels = (rng.random((size[1], size[0], 3)) * 255).astype(np.uint8)
    Image.fromarray(pixels).save(path, pnginfo=None)
    return pixels


def network(kind: str, scale: int = 2) -> upscale.Network:
    """A random upscaler: pointwise (1x1 convolution then nearest) or with a 3x3 receptive field."""
    torch.manual_seed(0)
    conv = torch.nn.Conv2d(3, 3, 1 if kind == "pointwise" else 3, padding="same")
    model = torch.nn.Sequential(conv, torch.nn.Sigmoid(), torch.nn.Upsample(scale_factor=scale, mode="nearest")).eval()
    return upscale.Network(kind, scale, model)


@pytest.mark.parametrize("size,tile,overlap", [(100, 32, 8), (512, 256, 16), (513, 256, 16), (70, 24, 6), (1000, 128, 32)])
def test_tiles_cover_the_picture_with_overlap_and_little_waste(size, tile, overlap):
    assert upscale.tiles(size, 0, 8) == ([0], size) and upscale.tiles(size, size, 8) == ([0], size)
    starts, length = upscale.tiles(size, tile, overlap)
    assert length <= tile and starts[0] == 0 and starts[-1] + length == size
    assert all(a + length - b >= overlap for a, b in zip(starts, starts[1:]))  # each overlaps the next enough
    assert len(starts) * length <= size + len(starts) * overlap + len(starts)  # no tile mostly repeats another


def test_tiled_equals_whole_for_a_pointwise_network():
    image = (np.random.default_rng(1).random((70, 90, 3)) * 255).astype(np.uint8)
    whole = upscale.run_tiled(network("pointwise"), image, tile=0)
    tiled = upscale.run_tiled(network("pointwise"), image, tile=32)
    assert whole.shape == (140, 180, 3) and np.abs(whole.astype(int) - tiled.astype(int)).max() <= 1


def test_tiles_blend_without_seams_for_a_network_that_sees_neighbours():
    image = (np.random.default_rng(2).random((64, 64, 3)) * 255).astype(np.uint8)
    net = network("conv")
    whole, tiled = upscale.run_tiled(net, image, 0), upscale.run_tiled(net, image, 24)
    difference = np.abs(whole.astype(float) - tiled.astype(float))
    assert difference.mean() < 0.5  # only where a 3x3 kernel saw a tile's edge, and blended there
    assert difference.max() > 0  # the tiles really ran separately


def test_network_then_lanczos_to_a_scale_it_does_not_have():
    image = (np.random.default_rng(3).random((20, 30, 3)) * 255).astype(np.uint8)
    assert upscale.upscale(image, 3.0, network("pointwise", 2), tile=0).shape == (60, 90, 3)
    assert upscale.upscale(image, 1.5).shape == (30, 45, 3)


def test_upscale_a_file_keeps_its_parameters_and_records_the_upscaler(run_cli, tmp_path):
    from PIL.PngImagePlugin import PngInfo

    info = PngInfo()
    info.add_text("parameters", "a red circle\nSteps: 20, Seed: 1")
    Image.fromarray(np.full((40, 48, 3), 90, np.uint8)).save(tmp_path / "in.png", pnginfo=info)
    result = run_cli("upscale", "in.png", "--scale", 1.5, "-o", "big.png")
    assert result.exit_code == 0, result.stderr
    out = Image.open(tmp_path / "big.png")
    assert out.size == (72, 60)
    assert out.text["parameters"].endswith("Steps: 20, Seed: 1\nPostprocess upscale by: 1.5, Postprocess upscaler: Lanczos")
    record = json.loads(out.text["scumble_upscale"])
    assert record["upscaler"] == "Lanczos" and record["scale"] == 1.5 and len(record["source_sha256"]) == 64


def test_upscale_a_frame_folder_mirrors_names_and_goes_on_past_bad_files(run_cli, tmp_path):
    frames = tmp_path / "frames"
    frames.mkdir()
    for i in range(3):
        picture(frames / f"{i:09}.png", seed=i)
    (frames / "settings.json").write_text("{}")
    (frames / "000000003.png").write_bytes(b"\x89PNG broken")
    result = run_cli("upscale", "frames", "-o", "big")
    assert result.exit_code == 1 and "000000003.png" in result.stderr
    assert sorted(p.name for p in (tmp_path / "big").iterdir()) == ["000000000.png", "000000001.png", "000000002.png"]
    assert Image.open(tmp_path / "big" / "000000000.png").size == (96, 80)
    before = (tmp_path / "big" / "000000001.png").read_bytes()
    again = run_cli("upscale", "frames", "--scale", 3, "-o", "big")
    assert again.exit_code == 1 and "already exists (pass --overwrite" in again.stderr
    assert (tmp_path / "big" / "000000001.png").read_bytes() == before
    assert run_cli("upscale", "frames", "--scale", 3, "-o", "big", "--overwrite").exit_code == 1  # only the broken frame fails
    assert Image.open(tmp_path / "big" / "000000001.png").size == (144, 120)


@pytest.mark.parametrize("args,code,message", [
    (["--upscaler", "missing.safetensors"], 2, "no such file (or use lanczos)"),
    (["--upscaler", "net.pth"], 2, "is a pickle; pass --allow-pickle"),
    (["--scale", 9], 2, "--scale"),
    (["-o", "big.jpg"], 2, "upscale writes PNG"),
])
def test_upscale_refusals(run_cli, tmp_path, args, code, message):
    picture(tmp_path / "in.png")
    (tmp_path / "net.pth").write_bytes(b"not really")
    result = run_cli("upscale", "in.png", *args, *([] if "-o" in args else ["-o", "out.png"]))
    assert result.exit_code == code and message in result.stderr, result.stderr
    assert not (tmp_path / "out.png").exists() and not (tmp_path / "big.jpg").exists()


def test_upscaler_network_file_goes_through_spandrel(run_cli, tmp_path):
    from safetensors.torch import save_file

    picture(tmp_path / "in.png")
    save_file({"not.an.upscaler": torch.zeros(3)}, tmp_path / "net.safetensors")
    result = run_cli("upscale", "in.png", "--upscaler", "net.safetensors", "-o", "out.png")
    if importlib.util.find_spec("spandrel") is None:
        assert result.exit_code == 2 and "need spandrel (pip install 'scumble[upscale]')" in result.stderr
    else:
        assert result.exit_code != 0 and ("not an upscaler spandrel knows" in result.stderr or "did not load here" in result.stderr)
    assert not (tmp_path / "out.png").exists() and "Traceback" not in result.stderr
