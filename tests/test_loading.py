"""Loading a single-file checkpoint straight into the run's dtype, and the device/dtype/layout policy."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from helpers import pixels
from scumble.core.loading import device as devices
from scumble.core.loading import loaders
from scumble.core.loading.sources import ModelSource


@pytest.fixture(scope="module")
def single_files(tiny_sd, tmp_path_factory):
    """The tiny model as original-layout files in fp32 and fp16, with the folder as their config."""
    from diffusers import StableDiffusionPipeline
    from safetensors.torch import save_file

    from ldm_format import pipeline_to_ldm

    state = pipeline_to_ldm(StableDiffusionPipeline.from_pretrained(tiny_sd))
    folder = tmp_path_factory.mktemp("files")
    save_file(state, folder / "fp32.safetensors")
    save_file({k: v.half() for k, v in state.items()}, folder / "fp16.safetensors")
    return folder


def _load(path: Path, config: Path, dtype: str):
    return loaders.load_pipeline(ModelSource("single_file", str(path), path.stem), devices.make_runtime("cpu", dtype), str(config))


def _diffusers_own(path: Path, config: Path, dtype: torch.dtype):
    """What the loader did before: diffusers' from_single_file on the whole file."""
    from diffusers import StableDiffusionPipeline

    return StableDiffusionPipeline.from_single_file(str(path), config=str(config), local_files_only=True, safety_checker=None, requires_safety_checker=False, **loaders.dtype_kwarg(dtype))


@pytest.mark.parametrize("name", ["fp32", "fp16"])
def test_single_file_in_bf16_has_bf16_weights_equal_to_diffusers_own_load(single_files, tiny_sd, name):
    path = single_files / f"{name}.safetensors"
    pipe = _load(path, tiny_sd, "bf16")
    reference = _diffusers_own(path, tiny_sd, torch.bfloat16)
    for component in ("unet", "vae", "text_encoder"):
        ours, theirs = getattr(pipe, component).state_dict(), getattr(reference, component).state_dict()
        assert ours.keys() == theirs.keys()
        assert all(v.dtype == torch.bfloat16 for v in ours.values() if v.is_floating_point()), component
        assert all(torch.equal(ours[k], theirs[k]) for k in ours), component


def test_conversion_happens_only_where_the_dtype_changes(single_files, tiny_sd, monkeypatch):
    read = []
    original = loaders.read_converted
    monkeypatch.setattr(loaders, "read_converted", lambda *a: read.append(a[0].name) or original(*a))
    _load(single_files / "fp32.safetensors", tiny_sd, "fp32")  # same dtype: diffusers uses the file's pages in place
    assert read == []
    _load(single_files / "fp16.safetensors", tiny_sd, "fp32")
    _load(single_files / "fp32.safetensors", tiny_sd, "bf16")
    assert read == ["fp16.safetensors", "fp32.safetensors"]


def test_read_converted_maps_a_bounded_part_of_the_file_at_a_time(tmp_path, monkeypatch):
    import safetensors
    from safetensors.torch import save_file

    tensors = {f"w{i}": torch.randn(64, 64) for i in range(8)} | {"half": torch.randn(8).half(), "ids": torch.arange(5)}
    save_file(tensors, tmp_path / "t.safetensors")
    opened, real_open = [], safetensors.safe_open
    monkeypatch.setattr(safetensors, "safe_open", lambda *a, **k: opened.append(1) or real_open(*a, **k))
    monkeypatch.setattr(loaders, "MAPPED_BYTES", 2 * 64 * 64 * 4)  # two of the fp32 tensors per mapping
    state = loaders.read_converted(tmp_path / "t.safetensors", list(tensors), torch.bfloat16)
    assert len(opened) == 5  # eight 16 KiB tensors, two at a time; then the two small ones together
    assert state["ids"].dtype == torch.int64 and torch.equal(state["ids"], tensors["ids"])  # integers keep their type
    assert all(torch.equal(state[k], v.to(torch.bfloat16)) for k, v in tensors.items() if v.is_floating_point())


def test_bf16_single_file_gives_the_folders_pixels(run_cli, tiny_sd, single_files, tmp_path):
    args = ["txt2img", "a red circle", "--steps", 2, "--seed", 4, "--dtype", "bf16"]
    assert run_cli(*args, "--model", tiny_sd, "-o", "folder.png").exit_code == 0
    result = run_cli(*args, "--model", single_files / "fp32.safetensors", "--config", tiny_sd, "-o", "single.png")
    assert result.exit_code == 0, result.stderr
    assert np.array_equal(pixels(tmp_path / "folder.png"), pixels(tmp_path / "single.png"))


@pytest.mark.parametrize(
    ("fast_bf16", "dtype", "expected", "channels_last"),
    [
        (True, "auto", torch.bfloat16, True),
        (True, "bf16", torch.bfloat16, True),
        (True, "fp32", torch.float32, False),  # fp32 runs as bare diffusers does
        (False, "auto", torch.float32, False),
    ],
)
def test_cpu_policy_runs_bf16_channels_last_for_sd_sized_models(monkeypatch, fast_bf16, dtype, expected, channels_last):
    monkeypatch.setattr(devices, "bf16_supported", lambda: fast_bf16)
    runtime = devices.make_runtime("cpu", dtype)
    assert runtime.dtype == expected
    assert devices.wants_channels_last(runtime, {"sample_size": 64}) == channels_last  # SD 1.x's 64x64 latents
    assert devices.wants_channels_last(runtime, {"sample_size": 128}) == channels_last  # SDXL's
    assert not devices.wants_channels_last(runtime, {"sample_size": 16})  # the built-in model's: slower channels-last
    assert devices.wants_channels_last(devices.make_runtime("cpu", dtype, channels_last=True), {"sample_size": 16})  # the flag still forces it


@pytest.mark.parametrize("side", [16, 64])
def test_place_puts_an_sd_sized_unet_and_autoencoder_channels_last(tiny_sd, side):
    pipe = loaders.load_pipeline(ModelSource("folder", str(tiny_sd), "tiny", "sd"), devices.make_runtime("cpu", "bf16"))
    pipe.unet.register_to_config(sample_size=side)  # the tiny model's convolutions, as if its latents were SD's
    devices.place(pipe, devices.make_runtime("cpu", "bf16"))
    for conv in (pipe.unet.conv_in, pipe.vae.decoder.conv_in, pipe.vae.decoder.conv_out):
        assert conv.weight.dtype == torch.bfloat16 and conv.weight.is_contiguous(memory_format=torch.channels_last) == (side == 64)
