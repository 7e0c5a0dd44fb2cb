"""scumble train-lora on tiny random components: it learns, resumes exactly, writes kohya's layout, refuses bad input."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from helpers import pixels


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    """Tiny tensors: a second thread costs more than it gives, and on a busy machine OpenMP's spinning made
    these tests 6x slower (measured: 117 s against 18 s for one six-step run). Restored for the other modules."""
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def pictures(tmp_path_factory) -> Path:
    """Three small captioned pictures of the world's shapes."""
    from scumble.training import world

    folder = tmp_path_factory.mktemp("pictures")
    scenes = [("red", "circle", "left", "blue"), ("yellow", "star", "top", "black"), ("green", "square", "right", "white")]
    for i, (color, shape, position, background) in enumerate(scenes):
        scene = world.ShapeScene(background, (world.ShapeObject(color, shape, position, "large"),))
        Image.fromarray(world.render_shapes(scene, size=48)).save(folder / f"p{i}.png")
        (folder / f"p{i}.txt").write_text(f"a {color} {shape} on the {position} on a {background} background\n")
    return folder


def train(run_cli, model, pictures, output="out.safetensors", *extra):
    return run_cli("train-lora", pictures, "--model", model, "-o", output, "--steps", 4, "--lr", "0.05", "--batch-size", 2, "--device", "cpu", *extra)


def tensors(path) -> dict:
    from safetensors.torch import load_file

    return load_file(str(path))


def header(path) -> dict:
    from safetensors import safe_open

    with safe_open(str(path), framework="pt") as f:
        return f.metadata()


# ---------------------------------------------------------------- learning


@pytest.fixture(scope="module")
def tiny_v(tmp_path_factory) -> Path:
    """SD 2.x's 768 models predict velocity, not noise."""
    from helpers import build_sd

    return build_sd(tmp_path_factory.mktemp("tiny-v"), prediction_type="v_prediction")


@pytest.mark.parametrize("kind", ["epsilon", "v_prediction"])
def test_a_few_steps_lower_the_loss(tiny_sd, tiny_v, pictures, tmp_path, kind):
    import torch

    from scumble.training.lora import data, train as lora

    model = tiny_sd if kind == "epsilon" else tiny_v
    job = lora.Job(images=(str(pictures),), output=tmp_path / "x.safetensors", model=str(model), device="cpu")
    settings = lora.Settings(steps=20, lr=0.05, batch_size=3, rank=4)
    pipe, _, _ = lora.load_model(job)
    found = data.load_pictures([str(pictures)], None, "")
    examples = lora.Examples(lora.encode_pictures(pipe, [p.pixels for p in found], 32, 1, False), lora.tokenize(pipe, [p.caption for p in found]), 1)
    trainer = lora.Trainer(pipe, settings, examples, None)

    def held_loss() -> float:  # the same draws each time: only the adapters change
        with torch.no_grad():
            return float(np.mean([trainer.loss(1000 + k).item() for k in range(8)]))

    before = held_loss()
    for step in range(settings.steps):
        trainer.step(step)
    assert trainer.noise.config.prediction_type == kind
    assert held_loss() < 0.97 * before  # measured 0.950: a random tiny UNet leaves its adapters little to fit


# ---------------------------------------------------------------- resuming


class StopAt:
    """A reporter that stops the run after `step`: by an exception (a crash) or by SIGINT (Ctrl-C)."""

    def __init__(self, step: int, how: str):
        self.at, self.how = step, how

    def start(self, total, done): ...

    def notice(self, message): ...

    def step(self, step, loss):
        if step == self.at:
            if self.how == "signal":
                os.kill(os.getpid(), signal.SIGINT)
            else:
                raise RuntimeError("killed")


@pytest.mark.parametrize("how,resumed_at", [("crash", 2), ("signal", 3)])
def test_a_resumed_run_matches_an_uninterrupted_one(run_cli, tiny_sd, pictures, tmp_path, how, resumed_at):
    from scumble.training.lora import train as lora

    extra = ("--checkpoint-every", 2, "--train-text-encoder", "--flip", "--crop", "--conv-rank", 2, "--class-prompt", "a blue star", "--class-prompt", "", "--class-images", 2, "--sample-prompt", "a red circle", "--sample-every", 2)
    whole = train(run_cli, tiny_sd, pictures, "whole.safetensors", "--steps", 6, *extra)
    assert whole.exit_code == 0, whole.stderr
    settings = lora.Settings(steps=6, lr=0.05, batch_size=2, train_text_encoder=True, flip=True, crop=True, conv_rank=2, class_prompts=("a blue star", ""), class_images=2, sample_prompts=("a red circle",), sample_every=2, checkpoint_every=2)
    job = lora.Job(images=(str(pictures),), output=tmp_path / "parts.safetensors", model=str(tiny_sd), device="cpu")
    with pytest.raises((RuntimeError, KeyboardInterrupt)):
        lora.train(job, settings, StopAt(3, how))
    assert not job.output.exists() and (tmp_path / "parts.train" / "checkpoint.safetensors").is_file()
    refused = train(run_cli, tiny_sd, pictures, "parts.safetensors", "--steps", 6, *extra)
    assert refused.exit_code == 2 and "pass --resume to continue it" in refused.stderr
    rest = train(run_cli, tiny_sd, pictures, "parts.safetensors", "--steps", 6, *extra, "--resume")
    assert rest.exit_code == 0, rest.stderr
    assert f"resumed at step {resumed_at}" in rest.stderr and not (tmp_path / "parts.train").exists()
    a, b = tensors(tmp_path / "whole.safetensors"), tensors(tmp_path / "parts.safetensors")
    assert a.keys() == b.keys()
    assert max(float((a[k] - b[k]).abs().max()) for k in a) < 1e-6
    assert np.array_equal(pixels(tmp_path / "whole.samples.png"), pixels(tmp_path / "parts.samples.png"))


def test_resume_refuses_other_settings_by_name(run_cli, tiny_sd, pictures, tmp_path):
    from scumble.training.lora import train as lora

    job = lora.Job(images=(str(pictures),), output=tmp_path / "r.safetensors", model=str(tiny_sd), device="cpu")
    with pytest.raises(RuntimeError):
        lora.train(job, lora.Settings(steps=4, lr=0.05, batch_size=2, checkpoint_every=1), StopAt(2, "crash"))
    result = train(run_cli, tiny_sd, pictures, "r.safetensors", "--rank", 4, "--resume")
    assert result.exit_code == 2 and "made with another rank (8, now 4)" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1 and not (tmp_path / "r.safetensors").exists()


# ---------------------------------------------------------------- the file


@pytest.fixture(scope="module")
def trained(tiny_sd, pictures, tmp_path_factory) -> Path:
    from scumble.training.lora import train as lora

    folder = tmp_path_factory.mktemp("trained")
    job = lora.Job(images=(str(pictures),), output=folder / "shapes.safetensors", model=str(tiny_sd), device="cpu")
    lora.train(job, lora.Settings(steps=12, lr=0.1, batch_size=3, rank=4, conv_rank=2, train_text_encoder=True, trigger="zxq"))
    return job.output


def test_the_file_has_kohyas_keys_and_metadata(trained, pictures):
    keys = tensors(trained)
    assert keys and all(k.startswith(("lora_unet_", "lora_te_")) and k.endswith((".lora_down.weight", ".lora_up.weight", ".alpha")) for k in keys)
    assert "lora_unet_down_blocks_1_attentions_0_transformer_blocks_0_attn2_to_k.lora_down.weight" in keys
    assert "lora_te_text_model_encoder_layers_0_self_attn_q_proj.lora_up.weight" in keys
    assert keys["lora_unet_down_blocks_1_attentions_0_transformer_blocks_0_attn2_to_k.lora_down.weight"].shape[0] == 4
    assert float(keys["lora_unet_down_blocks_1_attentions_0_transformer_blocks_0_attn2_to_k.alpha"]) == 4.0
    assert keys["lora_unet_down_blocks_0_resnets_0_conv1.lora_down.weight"].shape == (2, 8, 3, 3)  # kohya's conv_dim
    assert float(keys["lora_unet_down_blocks_0_resnets_0_conv1.alpha"]) == 2.0
    meta = header(trained)
    assert meta["ss_network_module"] == "networks.lora" and meta["ss_network_dim"] == "4" and meta["ss_base_model_version"] == "sd_v1"
    assert json.loads(meta["ss_network_args"]) == {"conv_dim": 2, "conv_alpha": 2}
    assert meta["scumble_trigger"] == "zxq" and meta["scumble_steps"] == "12" and meta["scumble_resolution"] == "32" and meta["scumble_seed"] == "0"
    assert len(meta["scumble_captions_sha256"]) == 64 and meta["scumble_base_model_hash"]
    assert json.loads(meta["ss_tag_frequency"])["images"]["zxq"] == 3  # the trigger leads every caption
    from scumble.core.loading.adapters import lora_short_hash

    assert lora_short_hash(trained, "") == meta["sshs_model_hash"][:12]  # A1111's hash of the tensors, as it computes it


def test_diffusers_load_lora_weights_reads_back_the_trained_adapters(tiny_sd, trained):
    import torch
    from diffusers import StableDiffusionPipeline
    from peft import get_peft_model_state_dict

    pipe = StableDiffusionPipeline.from_pretrained(tiny_sd, safety_checker=None, requires_safety_checker=False)
    pipe.load_lora_weights(str(trained), adapter_name="shapes")
    loaded = get_peft_model_state_dict(pipe.unet, adapter_name="shapes")
    saved = tensors(trained)
    down = saved["lora_unet_down_blocks_1_attentions_0_transformer_blocks_0_attn1_to_q.lora_down.weight"]
    assert torch.equal(loaded["down_blocks.1.attentions.0.transformer_blocks.0.attn1.to_q.lora_A.weight"], down)
    assert torch.equal(loaded["up_blocks.1.resnets.1.conv2.lora_B.weight"], saved["lora_unet_up_blocks_1_resnets_1_conv2.lora_up.weight"])
    assert len(loaded) == len([k for k in saved if k.startswith("lora_unet_") and not k.endswith(".alpha")])
    text = get_peft_model_state_dict(pipe.text_encoder, adapter_name="shapes")
    up = next(v for k, v in text.items() if k.endswith("encoder.layers.1.self_attn.v_proj.lora_B.weight"))  # transformers 5 has no text_model. level
    assert torch.equal(up, saved["lora_te_text_model_encoder_layers_1_self_attn_v_proj.lora_up.weight"])


def test_scumble_loads_it_with_lora_and_by_name_in_a_prompt(run_cli, tiny_sd, trained, tmp_path):
    def make(name, *extra, prompt="zxq, a red circle"):
        result = run_cli("txt2img", prompt, "--model", tiny_sd, "--steps", 3, "--seed", 4, "-o", name, *extra)
        assert result.exit_code == 0, result.stderr
        return pixels(tmp_path / name)

    base = make("base.png")
    flagged = make("flag.png", "--lora", str(trained))
    tagged = make("tag.png", "--lora-dir", str(trained.parent), prompt="zxq, a red circle <lora:shapes:1>")
    assert not np.array_equal(base, flagged) and np.array_equal(flagged, tagged)


def test_an_sd15_lora_in_an_sdxl_model_is_one_line(run_cli, tiny_sdxl, trained, tmp_path):
    result = run_cli("txt2img", "a red circle", "--model", tiny_sdxl, "--lora", str(trained), "--steps", 2, "-o", "x.png")
    assert result.exit_code == 1 and "does not fit this model" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1 and not (tmp_path / "x.png").exists()


# ---------------------------------------------------------------- what a user sees


def test_samples_sheet_has_a_row_per_sampled_step_and_progress_is_reported(run_cli, tiny_sd, pictures, tmp_path):
    result = train(run_cli, tiny_sd, pictures, "s.safetensors", "--sample-prompt", "a red circle", "--sample-prompt", "a blue star", "--sample-every", 2)
    assert result.exit_code == 0, result.stderr
    sheet = Image.open(tmp_path / "s.samples.png")
    assert sheet.size == (64 + 2 * 32, 16 + 3 * 32)  # steps 0, 2 and 4; two prompts
    lines = result.stderr.strip().splitlines()
    assert "step 4/4 loss " in result.stderr and lines[-1].startswith("wrote s.safetensors (4 steps, loss ")


def test_the_trigger_leads_each_caption_once():
    from scumble.training.lora.data import with_trigger

    assert with_trigger("a red cross", "zxq") == "zxq, a red cross"
    assert with_trigger("a zxq cross", "zxq") == "a zxq cross" and with_trigger("a zxqq cross", "zxq") == "zxq, a zxqq cross"
    assert with_trigger("a red cross", "") == "a red cross"


def test_caption_and_trigger_text_is_printed_escaped(run_cli, tiny_sd, tmp_path):
    folder = tmp_path / "odd"
    folder.mkdir()
    Image.new("RGB", (40, 40), "red").save(folder / "a\x1b[31m.png")
    result = run_cli("train-lora", folder, "--model", tiny_sd, "-o", "o.safetensors", "--steps", 1)
    assert result.exit_code == 1 and "\x1b" not in result.stderr and "\\x1b" in result.stderr


def test_help_has_examples_and_does_not_import_torch(run_cli):
    text = run_cli("train-lora", "--help").stdout
    assert "Examples:" in text and "<bool>" not in text and "<list[str]>" not in text.split("Options:")[1]
    assert max(len(line) for line in text.splitlines()) <= 100
    imported = subprocess.run([sys.executable, "-X", "importtime", "-m", "scumble", "train-lora", "--help"], capture_output=True, text=True).stderr
    assert not [line for line in imported.splitlines() if line.split("|")[-1].strip() in ("torch", "diffusers", "peft")]


# ---------------------------------------------------------------- bad input: one line, an exit code, no file


def _garbage(tmp_path) -> Path:
    folder = tmp_path / "bad"
    folder.mkdir()
    (folder / "x.png").write_bytes(b"not a png at all")
    (folder / "x.txt").write_text("a caption")
    return folder


def _uncaptioned(tmp_path) -> Path:
    folder = tmp_path / "bare"
    folder.mkdir()
    Image.new("RGB", (40, 40), "red").save(folder / "red.png")
    return folder


@pytest.mark.parametrize("case,code,message", [
    ("no images", 2, "give at least one image"),
    ("empty folder", 1, "no images in this folder"),
    ("unreadable image", 1, "x.png: not an image"),
    ("missing caption", 1, "red.png: no caption file red.txt beside it (or give --caption)"),
    ("rank 0", 2, "--rank 0: must be at least 1 (at most 1,024)"),
    ("lr 0", 2, ": must be in (0, 10]"),
    ("not safetensors", 2, "name a .safetensors file"),
    ("sdxl model", 2, "an SDXL model; train-lora trains SD 1.x and 2.x models"),
    ("odd resolution", 2, "--resolution 70: this model needs a multiple of 4"),
    ("sample every without prompt", 2, "--sample-every: give the pictures' prompts with --sample-prompt"),
])
def test_bad_input_is_one_line_and_leaves_no_file(run_cli, tiny_sd, tiny_sdxl, pictures, tmp_path, case, code, message):
    model, output, args = tiny_sd, "o.safetensors", [pictures]
    extra = {"rank 0": ["--rank", 0], "lr 0": ["--lr", 0], "odd resolution": ["--resolution", 70], "sample every without prompt": ["--sample-every", 2]}.get(case, [])
    if case == "no images":
        args = []
    elif case == "empty folder":
        (tmp_path / "empty").mkdir()
        args = [tmp_path / "empty"]
    elif case == "unreadable image":
        args = [_garbage(tmp_path)]
    elif case == "missing caption":
        args = [_uncaptioned(tmp_path)]
    elif case == "not safetensors":
        output = "o.pt"
    elif case == "sdxl model":
        model = tiny_sdxl
    result = run_cli("train-lora", *args, "--model", model, "-o", output, "--steps", 1, *extra)
    assert result.exit_code == code, result.stderr
    assert message in result.stderr and len(result.stderr.strip().splitlines()) == 1 and result.stderr.startswith("error: ")
    assert not (tmp_path / output).exists() and not (tmp_path / Path(output).with_suffix(".train")).exists()


def test_an_existing_output_is_kept_without_overwrite(run_cli, tiny_sd, pictures, tmp_path):
    (tmp_path / "o.safetensors").write_bytes(b"keep me")
    result = train(run_cli, tiny_sd, pictures, "o.safetensors")
    assert result.exit_code == 1 and "already exists (pass --overwrite to replace it)" in result.stderr
    assert (tmp_path / "o.safetensors").read_bytes() == b"keep me" and not (tmp_path / "o.train").exists()
    again = train(run_cli, tiny_sd, pictures, "o.safetensors", "--overwrite")
    assert again.exit_code == 0, again.stderr
    assert tensors(tmp_path / "o.safetensors")
