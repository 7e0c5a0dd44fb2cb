"""LoRA (kohya and PEFT files), textual-inversion embeddings and clip skip, on the pixels and in the metadata."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from helpers import pixels


def _peft_lora(model: Path, rank: int = 4, seed: int = 0) -> dict:
    """A random LoRA on the UNet's attention projections, as peft names it (lora_A/lora_B)."""
    import torch
    from diffusers import UNet2DConditionModel
    from peft import LoraConfig, get_peft_model_state_dict

    unet = UNet2DConditionModel.from_pretrained(model / "unet")
    torch.manual_seed(seed)
    unet.add_adapter(LoraConfig(r=rank, lora_alpha=rank, target_modules=["to_q", "to_k", "to_v", "to_out.0"], init_lora_weights=False))
    state = get_peft_model_state_dict(unet)
    return {k: v * 4 for k, v in state.items()}  # strong enough to move a tiny model's pixels


@pytest.fixture(scope="module")
def loras(tiny_sd, tiny_sdxl, tmp_path_factory) -> dict[str, Path]:
    from diffusers import StableDiffusionPipeline
    from safetensors.torch import save_file

    folder = tmp_path_factory.mktemp("loras")
    state = _peft_lora(Path(tiny_sd))
    StableDiffusionPipeline.save_lora_weights(folder / "peft", unet_lora_layers=state, safe_serialization=True)
    (folder / "peft" / "pytorch_lora_weights.safetensors").rename(folder / "style.safetensors")
    kohya = {}
    for key, value in state.items():
        module, _, rest = key.rpartition(".lora_")
        name = "lora_unet_" + module.replace(".", "_")
        kohya[f"{name}.lora_down.weight" if rest.startswith("A") else f"{name}.lora_up.weight"] = value.contiguous()
        kohya[f"{name}.alpha"] = __import__("torch").tensor(float(value.shape[0] if rest.startswith("A") else value.shape[1]))
    save_file(kohya, folder / "style_kohya.safetensors")
    xl = _peft_lora(Path(tiny_sdxl))
    StableDiffusionPipeline.save_lora_weights(folder / "xl", unet_lora_layers=xl, safe_serialization=True)
    (folder / "xl" / "pytorch_lora_weights.safetensors").rename(folder / "xl_style.safetensors")
    return {"peft": folder / "style.safetensors", "kohya": folder / "style_kohya.safetensors", "xl": folder / "xl_style.safetensors", "dir": folder}


def make(run_cli, model, name, *extra, prompt="a red circle"):
    result = run_cli("txt2img", prompt, "--model", model, "--steps", 3, "--seed", 4, "-W", 32, "-H", 32, "-o", name, *extra)
    assert result.exit_code == 0, result.stderr
    return pixels(name)


def test_lora_weight_zero_is_the_base_model_and_weight_one_is_not(run_cli, tiny_sd, loras):
    base = make(run_cli, tiny_sd, "base.png")
    assert np.array_equal(base, make(run_cli, tiny_sd, "zero.png", "--lora", f"{loras['peft']}:0"))
    assert not np.array_equal(base, make(run_cli, tiny_sd, "one.png", "--lora", f"{loras['peft']}:1"))


def test_kohya_and_peft_files_of_one_lora_give_the_same_pixels(run_cli, tiny_sd, loras):
    peft = make(run_cli, tiny_sd, "peft.png", "--lora", str(loras["peft"]))
    kohya = make(run_cli, tiny_sd, "kohya.png", "--lora", str(loras["kohya"]))
    assert np.abs(peft.astype(int) - kohya.astype(int)).max() <= 1


def test_a_lora_named_in_the_prompt_is_found_in_the_lora_dir_and_recorded(run_cli, tiny_sd, loras, tmp_path):
    tagged = make(run_cli, tiny_sd, "tag.png", "--lora-dir", str(loras["dir"]), prompt="a red circle <lora:style:1>")
    flagged = make(run_cli, tiny_sd, "flag.png", "--lora", str(loras["peft"]))
    assert np.array_equal(tagged, flagged)
    info = Image.open(tmp_path / "tag.png").text
    assert "<lora:style:1>" in info["parameters"] and "Lora hashes: \"style: " in info["parameters"]
    record = json.loads(info["scumble"])
    assert record["loras"][0]["name"] == "style" and len(record["loras"][0]["sha256"]) == 64
    again = run_cli("txt2img", "--replay", "tag.png", "--model", tiny_sd, "--lora-dir", str(loras["dir"]), "-o", "again.png")
    assert again.exit_code == 0, again.stderr
    assert np.array_equal(tagged, pixels(tmp_path / "again.png"))


def test_replay_refuses_a_changed_lora_by_name(run_cli, tiny_sd, loras, tmp_path):
    import shutil

    folder = tmp_path / "mine"
    folder.mkdir()
    shutil.copy(loras["peft"], folder / "style.safetensors")
    make(run_cli, tiny_sd, "made.png", "--lora", str(folder / "style.safetensors"))
    shutil.copy(loras["kohya"], folder / "style.safetensors")  # same name, other bytes
    result = run_cli("txt2img", "--replay", "made.png", "--model", tiny_sd, "-o", "again.png")
    assert result.exit_code == 2 and "LoRA style (sha256 " in result.stderr and "is missing or has changed" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1 and not (tmp_path / "again.png").exists()


def test_a_lora_for_another_architecture_is_one_line(run_cli, tiny_sd, loras, tmp_path):
    result = run_cli("txt2img", "x", "--model", tiny_sd, "--lora", str(loras["xl"]), "-o", "x.png")
    assert result.exit_code == 1 and f"--lora {loras['xl']}: does not fit this model" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1 and not (tmp_path / "x.png").exists()


def test_a_missing_prompt_lora_and_a_pickle_lora_are_one_line(run_cli, tiny_sd, loras, tmp_path):
    missing = run_cli("txt2img", "x <lora:nowhere:1>", "--model", tiny_sd, "--lora-dir", str(loras["dir"]), "-o", "x.png")
    assert missing.exit_code == 2 and "<lora:nowhere>: no nowhere.safetensors in" in missing.stderr
    (tmp_path / "old.pt").write_bytes(b"not really")
    pickled = run_cli("txt2img", "x", "--model", tiny_sd, "--lora", "old.pt", "-o", "x.png")
    assert pickled.exit_code == 1 and "pass --allow-pickle" in pickled.stderr


def test_an_embedding_name_changes_the_image_and_an_unknown_name_is_plain_text(run_cli, tiny_sd, tmp_path):
    import torch
    from safetensors.torch import save_file

    torch.manual_seed(3)
    save_file({"emb_params": torch.randn(2, 32) * 3}, tmp_path / "shiny.safetensors")
    plain = make(run_cli, tiny_sd, "plain.png", prompt="a shiny circle")
    with_embedding = make(run_cli, tiny_sd, "emb.png", "--embedding", str(tmp_path / "shiny.safetensors"), prompt="a shiny circle")
    unrelated = make(run_cli, tiny_sd, "other.png", "--embedding", str(tmp_path / "shiny.safetensors"), prompt="a glossy circle")
    assert not np.array_equal(plain, with_embedding)
    assert np.array_equal(unrelated, make(run_cli, tiny_sd, "other2.png", prompt="a glossy circle"))
    assert "TI hashes: \"shiny: " in Image.open(tmp_path / "emb.png").text["parameters"]


def test_an_sdxl_embedding_loads_into_both_encoders(run_cli, tiny_sdxl, tmp_path):
    import torch
    from safetensors.torch import save_file

    torch.manual_seed(5)
    save_file({"clip_l": torch.randn(1, 32) * 3, "clip_g": torch.randn(1, 32) * 3}, tmp_path / "neon.safetensors")
    plain = make(run_cli, tiny_sdxl, "plain.png", prompt="a neon square")
    assert not np.array_equal(plain, make(run_cli, tiny_sdxl, "emb.png", "--embedding-dir", str(tmp_path), prompt="a neon square"))


def test_clip_skip_two_changes_the_image_and_is_recorded(run_cli, tiny_sd, tmp_path):
    one = make(run_cli, tiny_sd, "one.png")
    two = make(run_cli, tiny_sd, "two.png", "--clip-skip", 2)
    assert not np.array_equal(one, two)
    assert "Clip skip: 2" in Image.open(tmp_path / "two.png").text["parameters"]


# ---------------------------------------------------------------- variation seeds and tiling


def test_variation_strength_zero_is_the_seed_and_one_is_the_subseed(run_cli, tiny_sd, tmp_path):
    base = make(run_cli, tiny_sd, "base.png")  # seed 4
    assert np.array_equal(base, make(run_cli, tiny_sd, "v0.png", "--subseed", 9, "--subseed-strength", 0))
    half = make(run_cli, tiny_sd, "half.png", "--subseed", 9, "--subseed-strength", 0.5)
    assert not np.array_equal(base, half)
    assert "Variation seed: 9, Variation seed strength: 0.5" in Image.open(tmp_path / "half.png").text["parameters"]
    again = run_cli("txt2img", "--replay", "half.png", "--model", tiny_sd, "-o", "half2.png")
    assert again.exit_code == 0, again.stderr
    assert np.array_equal(half, pixels(tmp_path / "half2.png"))


def test_a_variation_batch_keeps_the_seed_and_steps_the_subseed(run_cli, tiny_sd, tmp_path):
    result = run_cli("txt2img", "a red circle", "--model", tiny_sd, "--steps", 2, "--seed", 4, "--subseed", 20, "--subseed-strength", 0.3, "--count", 2, "-W", 32, "-H", 32, "-o", "out/", "--json")
    assert result.exit_code == 0, result.stderr
    records = [json.loads(line)["settings"] for line in result.stdout.splitlines()]
    assert [(r["seed"], r["subseed"]) for r in records] == [(4, 20), (4, 21)]


def test_tiling_makes_opposite_edges_continue(run_cli, tiny_sd, tmp_path):
    def seam(image):
        image = image.astype(float)
        wrap = np.abs(image[:, 0] - image[:, -1]).mean() + np.abs(image[0] - image[-1]).mean()
        inner = np.abs(np.diff(image, axis=1)).mean() + np.abs(np.diff(image, axis=0)).mean()
        return wrap / inner

    def landscape(name, *extra):  # the built-in model draws smooth skies over hills: a seam shows plainly
        result = run_cli("txt2img", "a landscape of hills at sunset with the sun in the sky", "--seed", 3, "--steps", 12, "--dtype", "fp32", "-o", name, *extra)
        assert result.exit_code == 0, result.stderr
        return pixels(tmp_path / name)

    plain, tiled = landscape("plain.png"), landscape("tiled.png", "--tiling")
    assert seam(plain) > 5 and seam(tiled) < 2  # measured: 16.3 and 0.9
    assert "Tiling: True" in Image.open(tmp_path / "tiled.png").text["parameters"]


def test_an_sdxl_lora_at_weight_zero_is_the_base_model_and_at_one_is_not(run_cli, tiny_sdxl, loras):
    base = make(run_cli, tiny_sdxl, "base.png")
    assert np.array_equal(base, make(run_cli, tiny_sdxl, "zero.png", "--lora", f"{loras['xl']}:0"))
    assert not np.array_equal(base, make(run_cli, tiny_sdxl, "one.png", "--lora", f"{loras['xl']}:1"))


def test_ensd_moves_only_an_ancestral_samplers_noise(run_cli, tiny_sd, tmp_path):
    euler_a = make(run_cli, tiny_sd, "a.png", "--scheduler", "Euler a")
    assert not np.array_equal(euler_a, make(run_cli, tiny_sd, "a2.png", "--scheduler", "Euler a", "--ensd", 31337))
    euler = make(run_cli, tiny_sd, "e.png", "--scheduler", "euler")
    assert np.array_equal(euler, make(run_cli, tiny_sd, "e2.png", "--scheduler", "euler", "--ensd", 31337))
    assert "ENSD: 31337" in Image.open(tmp_path / "a2.png").text["parameters"]


def test_eta_acts_on_ddim_and_is_refused_where_a_sampler_has_none(run_cli, tiny_sd, tmp_path):
    ddim = make(run_cli, tiny_sd, "d.png", "--scheduler", "ddim")
    assert not np.array_equal(ddim, make(run_cli, tiny_sd, "d1.png", "--scheduler", "ddim", "--eta", 1))
    refused = run_cli("txt2img", "x", "--model", tiny_sd, "--scheduler", "euler", "--eta", 0.5, "-o", "no.png")
    assert refused.exit_code == 2 and "--eta 0.5: sampler euler has no eta; these do: ddim" in refused.stderr
