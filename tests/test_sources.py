"""Where models come from, and what is refused."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys

import numpy as np
import pytest
import torch
from PIL import Image

from helpers import pixels

from scumble.core.loading import sources
from scumble.core.errors import ModelError


def test_builtin_model_is_the_default_and_ships_in_the_package():
    source = sources.resolve(sources.DEFAULT_MODEL)
    assert source.kind == "builtin"
    folder = sources.BUILTIN_MODELS["scumble-mini"]
    size = sum(p.stat().st_size for p in folder.rglob("*") if p.is_file())
    assert size <= 40 * 1000 * 1000  # issue 16: at most 40 MB in all
    assert all(p.suffix != ".bin" for p in folder.rglob("*"))


@pytest.mark.parametrize("suffix", [".ckpt", ".bin", ".pt", ".pth"])
def test_pickle_checkpoints_are_refused_without_the_flag(run_cli, tmp_path, suffix):
    checkpoint = tmp_path / f"model{suffix}"
    torch.save({"state_dict": {"x": torch.zeros(1)}}, checkpoint)
    result = run_cli("txt2img", "x", "--model", checkpoint)
    assert result.exit_code == 2
    assert "pickle" in result.stderr and "--allow-pickle" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
    assert not (tmp_path / "outputs").exists()


def test_pickle_with_code_is_refused_even_with_the_flag(run_cli, tmp_path):
    class Payload:
        def __reduce__(self):
            return (print, ("owned",))

    checkpoint = tmp_path / "evil.ckpt"
    torch.save({"state_dict": Payload()}, checkpoint)
    result = run_cli("txt2img", "x", "--model", checkpoint, "--allow-pickle")
    assert result.exit_code == 1
    assert "weights-only" in result.stderr and "owned" not in result.stdout


def test_hub_id_offline_fails_with_one_line_naming_it(run_cli, monkeypatch, tmp_path):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    result = run_cli("txt2img", "x", "--model", "someone/not-a-cached-model")
    assert result.exit_code == 1
    line = result.stderr.strip()
    assert len(line.splitlines()) == 1
    assert "someone/not-a-cached-model" in line and "local cache" in line and "HF_HUB_OFFLINE" in line


def test_hub_id_from_local_cache_loads_offline(tiny_sd, tmp_path):
    """A model already in the HF cache layout loads with the network off (a real process: the hub reads its env at import)."""
    hub = tmp_path / "hf" / "hub" / "models--someone--tiny" / "snapshots" / "0123456789abcdef"
    shutil.copytree(tiny_sd, hub, ignore=shutil.ignore_patterns("_tok"))
    (hub.parents[1] / "refs").mkdir()
    (hub.parents[1] / "refs" / "main").write_text("0123456789abcdef")
    env = {k: v for k, v in os.environ.items() if not k.startswith("HF_")} | {"HF_HUB_OFFLINE": "1", "HF_HOME": str(tmp_path / "hf")}
    run = subprocess.run([sys.executable, "-m", "scumble", "txt2img", "x", "--model", "someone/tiny", "--steps", "1", "--seed", "1", "-o", str(tmp_path / "hub.png")], env=env, capture_output=True, text=True)
    assert run.returncode == 0, run.stderr
    assert (tmp_path / "hub.png").stat().st_size > 0
    listing = subprocess.run([sys.executable, "-m", "scumble", "models", "--json"], env=env, capture_output=True, text=True)
    names = [row["name"] for row in json.loads(listing.stdout)]
    assert names[0] == "scumble-mini" and "someone/tiny" in names


def test_folder_missing_a_component_is_named(run_cli, tiny_sd, tmp_path):
    broken = tmp_path / "broken"
    shutil.copytree(tiny_sd, broken)
    shutil.rmtree(broken / "vae")
    result = run_cli("txt2img", "x", "--model", broken)
    assert result.exit_code == 1
    assert result.stderr.strip() == f"error: model folder {broken} is missing its 'vae' component (no vae/ folder)"


def test_folder_without_model_index(run_cli, tmp_path):
    (tmp_path / "empty").mkdir()
    result = run_cli("txt2img", "x", "--model", tmp_path / "empty")
    assert result.exit_code == 1 and "no model_index.json" in result.stderr


def test_missing_path_and_nonsense_names(run_cli):
    assert "no such file or folder" in run_cli("txt2img", "x", "--model", "./nowhere.safetensors").stderr
    assert "not a built-in model" in run_cli("txt2img", "x", "--model", "what even").stderr


def test_corrupt_safetensors_gives_one_line(run_cli, tmp_path):
    bad = tmp_path / "bad.safetensors"
    bad.write_bytes(b"\x00\x01garbage")
    result = run_cli("txt2img", "x", "--model", bad)
    assert result.exit_code == 1
    assert "not a readable safetensors file" in result.stderr and len(result.stderr.strip().splitlines()) == 1


@pytest.mark.parametrize("keys,expected", [
    ({"model.diffusion_model.input_blocks.0.0.weight": (320, 4, 3, 3), "cond_stage_model.transformer.text_model.embeddings.token_embedding.weight": (49408, 768)}, "sd15"),
    ({"model.diffusion_model.input_blocks.0.0.weight": (320, 9, 3, 3)}, "sd15-inpaint"),
    ({"model.diffusion_model.input_blocks.0.0.weight": (320, 4, 3, 3), "cond_stage_model.model.transformer.resblocks.0.attn.in_proj_weight": (3072, 1024)}, "sd2-v"),
    ({"model.diffusion_model.input_blocks.0.0.weight": (320, 4, 3, 3), "conditioner.embedders.1.model.ln_final.weight": (1280,)}, "sdxl"),
])
def test_architecture_is_detected_from_checkpoint_keys(keys, expected):
    assert sources.detect_config(keys) == expected


def test_non_sd_checkpoint_is_refused():
    with pytest.raises(ModelError, match="not an SD 1.x, 2.x or SDXL checkpoint"):
        sources.detect_config({"encoder.weight": (3, 3)})


def test_shipped_sd15_unet_config_builds_859_5m_parameters():
    from accelerate import init_empty_weights
    from diffusers import UNet2DConditionModel

    config = json.loads((sources.CONFIGS_ROOT / "sd15" / "unet" / "config.json").read_text())
    with init_empty_weights():
        unet = UNet2DConditionModel.from_config(config)
    assert round(sum(p.numel() for p in unet.parameters()) / 1e6, 1) == 859.5


@pytest.mark.parametrize("name,millions", [("sd2-v", 865.9), ("sdxl", 2567.5), ("sd15-inpaint", 859.5)])
def test_other_shipped_unet_configs(name, millions):
    from accelerate import init_empty_weights
    from diffusers import UNet2DConditionModel

    config = json.loads((sources.CONFIGS_ROOT / name / "unet" / "config.json").read_text())
    with init_empty_weights():
        unet = UNet2DConditionModel.from_config(config)
    assert round(sum(p.numel() for p in unet.parameters()) / 1e6, 1) == millions


def test_shipped_clip_tokenizer_matches_clip_ids():
    from transformers import CLIPTokenizer

    tokenizer = CLIPTokenizer.from_pretrained(sources.CONFIGS_ROOT / "sd15" / "tokenizer")
    assert tokenizer("a photo of an astronaut riding a horse").input_ids == [49406, 320, 1125, 539, 550, 18376, 6765, 320, 4558, 49407]
    assert CLIPTokenizer.from_pretrained(sources.CONFIGS_ROOT / "sdxl" / "tokenizer_2").pad_token == "!"


@pytest.fixture(scope="module")
def tiny_single_file(tiny_sd, tmp_path_factory):
    from diffusers import StableDiffusionPipeline
    from safetensors.torch import save_file

    from ldm_format import pipeline_to_ldm

    state = pipeline_to_ldm(StableDiffusionPipeline.from_pretrained(tiny_sd))
    folder = tmp_path_factory.mktemp("single")
    save_file(state, folder / "tiny.safetensors")
    torch.save({"state_dict": state}, folder / "tiny.ckpt")
    return folder


def test_single_file_matches_its_diffusers_folder_pixel_for_pixel(run_cli, tiny_sd, tiny_single_file, tmp_path):
    args = ["txt2img", "a red circle", "--steps", 2, "--seed", 9]
    assert run_cli(*args, "--model", tiny_sd, "-o", "folder.png").exit_code == 0
    result = run_cli(*args, "--model", tiny_single_file / "tiny.safetensors", "--config", tiny_sd, "-o", "single.png")
    assert result.exit_code == 0, result.stderr
    assert np.array_equal(pixels(tmp_path / "folder.png"), pixels(tmp_path / "single.png"))
    record = json.loads(Image.open(tmp_path / "single.png").text["scumble"])
    assert record["model"]["kind"] == "single_file" and len(record["model"]["hash"]) == 10


def test_pickle_checkpoint_loads_weights_only_with_the_flag(run_cli, tiny_sd, tiny_single_file, tmp_path):
    args = ["txt2img", "a red circle", "--steps", 2, "--seed", 9, "--config", tiny_sd]
    assert run_cli(*args, "--model", tiny_single_file / "tiny.safetensors", "-o", "safe.png").exit_code == 0
    result = run_cli(*args, "--model", tiny_single_file / "tiny.ckpt", "--allow-pickle", "-o", "pickle.png")
    assert result.exit_code == 0, result.stderr
    assert np.array_equal(pixels(tmp_path / "safe.png"), pixels(tmp_path / "pickle.png"))


def test_single_file_with_wrong_config_fails_in_one_line(run_cli, tiny_single_file, tiny_sdxl):
    result = run_cli("txt2img", "x", "--model", tiny_single_file / "tiny.safetensors", "--config", tiny_sdxl)
    assert result.exit_code == 1
    assert result.stderr.startswith("error: could not load checkpoint file") and len(result.stderr.strip().splitlines()) == 1


def test_unknown_config_name(run_cli, tiny_single_file):
    result = run_cli("txt2img", "x", "--model", tiny_single_file / "tiny.safetensors", "--config", "sd9")
    assert result.exit_code == 2 and "sd15, sd15-inpaint, sd2-base, sd2-v, sdxl" in result.stderr


@pytest.mark.slow
def test_full_size_sd15_checkpoint_loads_offline_with_the_shipped_config(tmp_path):
    """A random-weight checkpoint with SD 1.5's real architecture, detected and loaded with no --config and no network."""
    from accelerate.utils import set_seed
    from diffusers import AutoencoderKL, StableDiffusionPipeline, UNet2DConditionModel
    from safetensors.torch import save_file
    from transformers import CLIPTextConfig, CLIPTextModel, CLIPTokenizer

    from ldm_format import pipeline_to_ldm

    set_seed(0)
    root = sources.CONFIGS_ROOT / "sd15"
    pipe = StableDiffusionPipeline(
        vae=AutoencoderKL.from_config(json.loads((root / "vae" / "config.json").read_text())),
        text_encoder=CLIPTextModel(CLIPTextConfig.from_pretrained(root / "text_encoder")),
        tokenizer=CLIPTokenizer.from_pretrained(root / "tokenizer"),
        unet=UNet2DConditionModel.from_config(json.loads((root / "unet" / "config.json").read_text())),
        scheduler=None,
        safety_checker=None,
        feature_extractor=None,
        requires_safety_checker=False,
    )
    checkpoint = tmp_path / "sd15-random.safetensors"
    save_file({k: v.half() for k, v in pipeline_to_ldm(pipe).items()}, checkpoint)
    del pipe
    # Its own cache folder: --backend auto would otherwise convert this SD-sized UNet into the user's OpenVINO cache
    # (3.4 GB a run, under a new key each time), which is how a CI run once filled the disk.
    env = {k: v for k, v in os.environ.items() if not k.startswith("HF_")} | {"HF_HUB_OFFLINE": "1", "HF_HOME": str(tmp_path / "empty-hf"), "XDG_CACHE_HOME": str(tmp_path / "cache")}
    run = subprocess.run(
        [sys.executable, "-m", "scumble", "txt2img", "a photo", "--model", str(checkpoint), "-W", "64", "-H", "64", "--steps", "1", "--seed", "0", "--backend", "torch", "-o", str(tmp_path / "out.png")],
        env=env, capture_output=True, text=True,
    )
    assert run.returncode == 0, run.stderr
    assert Image.open(tmp_path / "out.png").size == (64, 64)
    assert not (tmp_path / "empty-hf").exists() or not any((tmp_path / "empty-hf").rglob("*.json"))
