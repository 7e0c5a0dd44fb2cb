"""--backend openvino: the UNet converted once, cached, and run by OpenVINO, giving torch's pictures."""

from __future__ import annotations

import hashlib
import importlib.util
import json
import os
import subprocess
import sys
from types import SimpleNamespace

import numpy as np
import pytest

from helpers import pixels

if importlib.util.find_spec("openvino") is None:  # found, never imported here (see run_cli)
    pytest.skip("openvino is not installed", allow_module_level=True)

ARGS = ("--steps", 4, "-W", 32, "-H", 32, "--seed", 3, "--dtype", "fp32", "--step-cache", 1)


@pytest.fixture
def run_cli(tmp_path):
    """scumble in a process of its own: OpenVINO's thread pool beside torch's in the test process crashed later,
    unrelated tests (a segfault in LoRA training, after these had passed), so OpenVINO never loads in pytest's."""

    def invoke(*args, env=None):
        done = subprocess.run([sys.executable, "-m", "scumble", *map(str, args)], capture_output=True, text=True, cwd=tmp_path, timeout=600,
                              env=os.environ | {"XDG_CACHE_HOME": str(tmp_path / ".cache"), "XDG_CONFIG_HOME": str(tmp_path / ".config")} | (env or {}))
        return SimpleNamespace(exit_code=done.returncode, stdout=done.stdout, stderr=done.stderr)

    return invoke


def converted(tmp_path) -> list:
    return sorted(p for p in (tmp_path / ".cache" / "scumble" / "openvino").glob("*") if (p / "unet.xml").exists())


WRAPPER_CHECK = """
import sys, torch
from diffusers import UNet2DConditionModel
from scumble.core.sampling.openvino_unet import OpenVINOUNet
for model in sys.argv[1:]:
    unet = UNet2DConditionModel.from_pretrained(model + "/unet").eval()
    wrapped = OpenVINOUNet(unet, torch.float32, model)
    gen = torch.Generator().manual_seed(0)
    sample = torch.randn(2, 4, 8, 12, generator=gen)
    context = torch.randn(2, 77, unet.config.cross_attention_dim, generator=gen)
    added = None
    if unet.config.addition_embed_type == "text_time":
        embeds = unet.add_embedding.linear_1.in_features - 6 * unet.config.addition_time_embed_dim
        added = {"text_embeds": torch.randn(2, embeds, generator=gen), "time_ids": torch.tensor([[32.0, 48, 0, 0, 32, 48]] * 2)}
    for t in (torch.tensor(901), torch.tensor([11.0, 11.0])):  # a 0-d timestep, as diffusers passes it, and a batch of them
        with torch.no_grad():
            want = unet(sample, t, context, added_cond_kwargs=added).sample
            got = wrapped(sample, t, context, added_cond_kwargs=added).sample
        print(tuple(got.shape) == tuple(want.shape), float((got - want).abs().max()))
"""


@pytest.mark.slow
def test_wrapper_matches_the_torch_unet_for_sd_and_sdxl(tiny_sd, tiny_sdxl, tmp_path):
    done = subprocess.run([sys.executable, "-c", WRAPPER_CHECK, str(tiny_sd), str(tiny_sdxl)], capture_output=True, text=True, env=os.environ | {"XDG_CACHE_HOME": str(tmp_path / ".cache")}, timeout=600)
    assert done.returncode == 0, done.stderr[-2000:]
    rows = [line.split() for line in done.stdout.splitlines()]
    assert len(rows) == 4 and all(same == "True" and float(diff) < 1e-4 for same, diff in rows), done.stdout


@pytest.mark.slow
def test_txt2img_gives_torchs_picture_and_converts_once(run_cli, tiny_sd, tmp_path):
    assert run_cli("txt2img", "a red circle", "--model", tiny_sd, *ARGS, "-o", "torch.png").exit_code == 0
    result = run_cli("txt2img", "a red circle", "--model", tiny_sd, *ARGS, "--backend", "openvino", "-o", "ov.png")
    assert result.exit_code == 0, result.stderr
    assert np.abs(pixels(tmp_path / "ov.png").astype(int) - pixels(tmp_path / "torch.png").astype(int)).max() <= 2
    [folder] = converted(tmp_path)
    stamp = (folder / "unet.bin").stat().st_mtime_ns
    again = run_cli("txt2img", "a red circle", "--model", tiny_sd, *ARGS, "--backend", "openvino", "-o", "ov2.png")
    assert again.exit_code == 0, again.stderr
    assert converted(tmp_path) == [folder] and (folder / "unet.bin").stat().st_mtime_ns == stamp  # read from the cache
    assert np.array_equal(pixels(tmp_path / "ov2.png"), pixels(tmp_path / "ov.png"))
    # the same record as torch's: the backend is how, not what
    assert pixels(tmp_path / "ov.png").shape == (32, 32, 3)
    from PIL import Image

    assert Image.open(tmp_path / "ov.png").text["parameters"] == Image.open(tmp_path / "torch.png").text["parameters"]


@pytest.mark.slow
def test_img2img_and_inpaint_run_on_openvino_like_torch(run_cli, tiny_sd, tmp_path):
    from PIL import Image

    rng = np.random.default_rng(0)
    Image.fromarray(rng.integers(0, 255, (32, 32, 3), dtype=np.uint8)).save(tmp_path / "in.png")
    mask = np.zeros((32, 32), np.uint8)
    mask[8:24, 8:24] = 255
    Image.fromarray(mask).save(tmp_path / "mask.png")
    for task, extra in (("img2img", ()), ("inpaint", ("--mask", "mask.png"))):
        common = (task, "in.png", "-p", "a red circle", "--model", tiny_sd, *ARGS, "--strength", 0.6, *extra)
        assert run_cli(*common, "-o", f"{task}-torch.png").exit_code == 0
        result = run_cli(*common, "--backend", "openvino", "-o", f"{task}-ov.png")
        assert result.exit_code == 0, result.stderr
        diff = np.abs(pixels(tmp_path / f"{task}-ov.png").astype(int) - pixels(tmp_path / f"{task}-torch.png").astype(int))
        assert diff.max() <= 2, task


@pytest.mark.slow
def test_a_lora_is_converted_with_the_unet_and_gets_its_own_cache_entry(run_cli, tiny_sd, tmp_path):
    import torch
    from diffusers import StableDiffusionPipeline, UNet2DConditionModel
    from peft import LoraConfig, get_peft_model_state_dict

    unet = UNet2DConditionModel.from_pretrained(tiny_sd / "unet")
    torch.manual_seed(0)
    unet.add_adapter(LoraConfig(r=2, lora_alpha=2, target_modules=["to_q", "to_v", "to_out.0"], init_lora_weights=False))
    StableDiffusionPipeline.save_lora_weights(tmp_path / "lora", unet_lora_layers=get_peft_model_state_dict(unet), safe_serialization=True)
    lora = tmp_path / "lora" / "pytorch_lora_weights.safetensors"
    assert run_cli("txt2img", "a red circle", "--model", tiny_sd, *ARGS, "--backend", "openvino", "-o", "plain.png").exit_code == 0
    assert run_cli("txt2img", "a red circle", "--model", tiny_sd, *ARGS, "--lora", lora, "-o", "lora-torch.png").exit_code == 0
    result = run_cli("txt2img", "a red circle", "--model", tiny_sd, *ARGS, "--backend", "openvino", "--lora", lora, "-o", "lora-ov.png")
    assert result.exit_code == 0, result.stderr
    assert len(converted(tmp_path)) == 2
    assert not np.array_equal(pixels(tmp_path / "lora-ov.png"), pixels(tmp_path / "plain.png"))
    assert np.abs(pixels(tmp_path / "lora-ov.png").astype(int) - pixels(tmp_path / "lora-torch.png").astype(int)).max() <= 2
    # The torch UNet's weights are parked (mapped from one file in the cache); fusing a LoRA into them changes the
    # run's copy, never the file, and reuses the LoRA's conversion.
    [parked] = (tmp_path / ".cache" / "scumble" / "openvino").glob("*/unet.pt")
    before = hashlib.sha256(parked.read_bytes()).hexdigest()
    result = run_cli("txt2img", "a red circle", "--model", tiny_sd, *ARGS, "--backend", "openvino", "--lora", lora, "--fuse-lora", "-o", "fused-ov.png")
    assert result.exit_code == 0, result.stderr
    assert len(converted(tmp_path)) == 2 and hashlib.sha256(parked.read_bytes()).hexdigest() == before
    assert np.abs(pixels(tmp_path / "fused-ov.png").astype(int) - pixels(tmp_path / "lora-torch.png").astype(int)).max() <= 2
    assert run_cli("txt2img", "a red circle", "--model", tiny_sd, *ARGS, "--backend", "openvino", "-o", "plain-again.png").exit_code == 0
    assert np.array_equal(pixels(tmp_path / "plain-again.png"), pixels(tmp_path / "plain.png"))


@pytest.mark.parametrize("args,message", [
    (("--tome", 0.3), "--tome 0.3 and --backend openvino: choose one"),
    (("--compile",), "--backend openvino and --compile: choose one"),
    (("--device", "cuda"), "--device cuda"),
])
def test_what_openvino_cannot_run_is_one_line_and_exit_2(run_cli, tiny_sd, tmp_path, args, message):
    result = run_cli("txt2img", "a red circle", "--model", tiny_sd, "--backend", "openvino", *args, "-o", "x.png")
    assert result.exit_code == 2, result.stderr
    assert message in result.stderr and "Traceback" not in result.stderr
    assert not (tmp_path / "x.png").exists()


def test_controlnet_with_openvino_is_refused(run_cli, tiny_sd, tmp_path):
    result = run_cli("txt2img", "a red circle", "--model", tiny_sd, "--backend", "openvino", "--controlnet", tmp_path / "cn", "--control-image", "c.png")
    assert result.exit_code == 2
    assert "--controlnet and --backend openvino: choose one" in result.stderr


@pytest.mark.slow
def test_tiling_is_converted_into_its_own_model(run_cli, tiny_sd, tmp_path):
    assert run_cli("txt2img", "a red circle", "--model", tiny_sd, *ARGS, "--backend", "openvino", "-o", "plain.png").exit_code == 0
    assert run_cli("txt2img", "a red circle", "--model", tiny_sd, *ARGS, "--tiling", "-o", "tiled-torch.png").exit_code == 0
    result = run_cli("txt2img", "a red circle", "--model", tiny_sd, *ARGS, "--tiling", "--backend", "openvino", "-o", "tiled-ov.png")
    assert result.exit_code == 0, result.stderr
    assert len(converted(tmp_path)) == 2
    assert np.abs(pixels(tmp_path / "tiled-ov.png").astype(int) - pixels(tmp_path / "tiled-torch.png").astype(int)).max() <= 2


@pytest.mark.slow
@pytest.mark.parametrize("extra", [(), ("--cfg-cutoff", 0.5), ("--scheduler", "heun")])
def test_the_step_cache_runs_in_openvino_as_in_torch(run_cli, tiny_sd, tmp_path, extra):
    common = ("txt2img", "a red circle", "--model", tiny_sd, "--steps", 6, "-W", 32, "-H", 32, "--seed", 3, "--dtype", "fp32", *extra)
    assert run_cli(*common, "--step-cache", 2, "-o", "torch.png").exit_code == 0
    assert run_cli(*common, "--step-cache", 1, "--backend", "openvino", "-o", "whole.png").exit_code == 0
    result = run_cli(*common, "--step-cache", 2, "--backend", "openvino", "-o", "cached.png")
    assert result.exit_code == 0, result.stderr
    torch_cached, cached, whole = (pixels(tmp_path / n).astype(int) for n in ("torch.png", "cached.png", "whole.png"))
    assert np.abs(cached - torch_cached).max() <= 2  # the same shallow path, in OpenVINO
    assert np.abs(cached - whole).max() > 2  # and it is not the whole UNet every call
    assert len(converted(tmp_path)) == 2  # the whole graph and the shallow one


@pytest.mark.slow
def test_openvino_takes_the_default_step_cache(run_cli, tiny_sd, tmp_path):
    from PIL import Image

    result = run_cli("txt2img", "a red circle", "--model", tiny_sd, "--steps", 20, "-W", 32, "-H", 32, "--seed", 3, "--backend", "openvino", "-o", "d.png")
    assert result.exit_code == 0, result.stderr
    assert json.loads(Image.open(tmp_path / "d.png").text["scumble"])["step_cache"] == 0
    assert len(converted(tmp_path)) == 2  # 20 steps: the default caches, so the shallow graph was converted too


def test_the_cache_keeps_under_its_size_dropping_what_was_used_longest_ago(tmp_path):
    from scumble.core.sampling.openvino_unet import prune

    root = tmp_path / "cache"
    for age, name in enumerate(("newest", "middle", "oldest", "in-use")):
        (root / name).mkdir(parents=True)
        (root / name / "unet.bin").write_bytes(b"x" * 1000)
        os.utime(root / name, (1e9 - age * 100, 1e9 - age * 100))
    (root / "half.partial").mkdir()
    assert prune(root, {"in-use"}, 0) == []  # 0: no limit
    assert prune(root, {"in-use"}, 2500) == ["oldest", "middle"]  # in-use is older still, but this process needs it
    assert sorted(p.name for p in root.iterdir()) == ["half.partial", "in-use", "newest"]


@pytest.mark.slow
def test_a_new_conversion_makes_room_by_dropping_the_entry_used_longest_ago(run_cli, tiny_sd, tmp_path):
    small = {"SCUMBLE_OPENVINO_CACHE_GB": "0.000001"}  # a kilobyte: room for none but the entries in use
    assert run_cli("txt2img", "a red circle", "--model", tiny_sd, *ARGS, "--backend", "openvino", "-o", "a.png", env=small).exit_code == 0
    first = converted(tmp_path)
    assert run_cli("txt2img", "a red circle", "--model", tiny_sd, *ARGS, "--backend", "openvino", "--tiling", "-o", "b.png", env=small).exit_code == 0
    second = converted(tmp_path)
    assert len(first) == len(second) == 1 and first != second  # the tiled model's entry replaced the plain one
    bad = run_cli("txt2img", "a red circle", "--model", tiny_sd, *ARGS, "--backend", "openvino", "-o", "c.png", env={"SCUMBLE_OPENVINO_CACHE_GB": "lots"})
    assert bad.exit_code == 2 and bad.stderr.strip() == "error: SCUMBLE_OPENVINO_CACHE_GB='lots': must be a number of gigabytes (0: no limit)"
    assert not (tmp_path / "c.png").exists() and converted(tmp_path) == second


AUTO = """
import sys
from scumble.core.sampling import openvino_unet
openvino_unet.AUTO_MIN_PARAMETERS, openvino_unet.CONVERSION_PEAK = int(sys.argv[1]), float(sys.argv[2])
from scumble.cli.app import app
sys.argv = ["scumble", *sys.argv[3:]]
app()
"""


@pytest.mark.slow
def test_backend_auto_runs_an_sd_sized_unet_in_openvino_and_keeps_a_small_one_in_torch(run_cli, tiny_sd, tmp_path):
    def auto(threshold: int, peak: float, *args):
        """--backend auto (the default) with the size that counts as SD-sized, and the memory a conversion needs, set."""
        done = subprocess.run([sys.executable, "-c", AUTO, str(threshold), str(peak), *map(str, args)], capture_output=True, text=True, cwd=tmp_path, timeout=600,
                              env=os.environ | {"XDG_CACHE_HOME": str(tmp_path / ".cache"), "XDG_CONFIG_HOME": str(tmp_path / ".config")})
        return SimpleNamespace(exit_code=done.returncode, stderr=done.stderr)

    common = ("txt2img", "a red circle", "--model", tiny_sd, *ARGS)
    assert run_cli(*common, "--backend", "torch", "-o", "torch.png").exit_code == 0
    small = run_cli(*common, "-o", "auto.png")  # the real threshold: a tiny UNet stays in torch
    assert small.exit_code == 0 and "OpenVINO" not in small.stderr and converted(tmp_path) == []
    assert np.array_equal(pixels(tmp_path / "auto.png"), pixels(tmp_path / "torch.png"))
    short = auto(0, 1e9, *common, "-o", "short.png")  # SD-sized, but the conversion would not fit in memory
    assert short.exit_code == 0 and converted(tmp_path) == [] and np.array_equal(pixels(tmp_path / "short.png"), pixels(tmp_path / "torch.png"))
    merged = auto(0, 0, *common, "--tome", 0.5, "-o", "tome.png")  # token merging works inside the torch UNet: auto gives way
    assert merged.exit_code == 0 and converted(tmp_path) == [], merged.stderr
    picked = auto(0, 0, *common, "-o", "picked.png")
    assert picked.exit_code == 0, picked.stderr
    assert "--backend auto: the UNet runs in OpenVINO" in picked.stderr
    assert "converting the UNet for OpenVINO" in picked.stderr and len(converted(tmp_path)) == 1  # announced before the wait
    assert run_cli(*common, "--backend", "openvino", "-o", "ov.png").exit_code == 0  # the same conversion, from the cache
    assert np.array_equal(pixels(tmp_path / "picked.png"), pixels(tmp_path / "ov.png")) and len(converted(tmp_path)) == 1
