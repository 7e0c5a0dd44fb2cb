"""--step-cache (DeepCache-style): the shallow path, the call schedule, and every task that takes it."""

from __future__ import annotations

import json

import numpy as np
import pytest
from PIL import Image

from helpers import pixels

ARGS = ("--steps", 6, "--seed", 3, "-W", 32, "-H", 32)


def _unet(kind: str):
    import torch
    from diffusers import UNet2DConditionModel

    torch.manual_seed(0)
    if kind == "sd15":  # SD 1.5's block layout (cross-attention in the first down and last up block), tiny widths
        return UNet2DConditionModel(block_out_channels=(8, 16, 16), layers_per_block=2, sample_size=16, cross_attention_dim=32, norm_num_groups=4, attention_head_dim=4,
                                    down_block_types=("CrossAttnDownBlock2D", "CrossAttnDownBlock2D", "DownBlock2D"), up_block_types=("UpBlock2D", "CrossAttnUpBlock2D", "CrossAttnUpBlock2D"))
    return UNet2DConditionModel(block_out_channels=(8, 16), layers_per_block=1, sample_size=16, cross_attention_dim=64, norm_num_groups=4, attention_head_dim=(2, 4), use_linear_projection=True,
                                down_block_types=("DownBlock2D", "CrossAttnDownBlock2D"), up_block_types=("CrossAttnUpBlock2D", "UpBlock2D"),
                                addition_embed_type="text_time", addition_time_embed_dim=8, transformer_layers_per_block=(1, 2), projection_class_embeddings_input_dim=80)


def _inputs(kind: str, residuals: bool):
    import torch

    g = torch.Generator().manual_seed(1)
    sample = torch.randn(2, 4, 16, 16, generator=g)
    kwargs = {"encoder_hidden_states": torch.randn(2, 7, 32 if kind == "sd15" else 64, generator=g)}
    if kind == "sdxl":
        kwargs["added_cond_kwargs"] = {"text_embeds": torch.randn(2, 32, generator=g), "time_ids": torch.randn(2, 6, generator=g)}
    return sample, kwargs


@pytest.mark.parametrize("kind", ["sd15", "sdxl"])
@pytest.mark.parametrize("residuals", [False, True])
def test_the_shallow_path_on_fresh_features_is_the_whole_network(kind, residuals):
    """Right after a whole pass, the shallow path at the same inputs must give the same output: only the
    reused deep features differ between the two paths, and here they are exact."""
    import torch

    from scumble.core.sampling.step_cache import StepCache

    unet = _unet(kind)
    sample, kwargs = _inputs(kind, residuals)
    if residuals:  # a ControlNet's: one per skip connection, one for the mid block
        with torch.no_grad():
            shapes = []
            hook = [b.register_forward_hook(lambda m, a, out: shapes.extend(t.shape for t in out[1])) for b in unet.down_blocks]
            unet(sample, 10, **kwargs)
            [h.remove() for h in hook]
        g = torch.Generator().manual_seed(2)
        first = unet.conv_in(sample).shape
        kwargs["down_block_additional_residuals"] = tuple(torch.randn(s, generator=g) for s in [first, *shapes])
        kwargs["mid_block_additional_residual"] = torch.randn(shapes[-1], generator=g)
    with torch.no_grad():
        plain = unet(sample, 10, **kwargs).sample
        cache = StepCache(unet)
        cache.start(2)
        whole = unet(sample, 10, **kwargs).sample
        shallow = unet(sample, 10, **kwargs).sample
    assert cache.calls == 2 and cache.full_calls == 1
    assert torch.equal(plain, whole)
    assert torch.allclose(whole, shallow, atol=1e-5), (whole - shallow).abs().max()
    with torch.no_grad():
        other = unet(sample + 1, 10, **kwargs).sample  # a third call: whole again (every 2nd call) and different
    assert cache.full_calls == 2 and not torch.allclose(other, whole)


def _engine(model):
    from scumble.core.loading.device import make_runtime
    from scumble.core.sampling.engine import Engine

    return Engine.load(str(model), make_runtime("cpu", "fp32"))


@pytest.mark.parametrize("scheduler,steps,every,calls,full", [
    ("euler", 6, 3, 6, 2),
    ("heun", 4, 2, 7, 4),  # Heun evaluates the UNet twice a step but once on the last: 7 calls, counted as calls
    ("dpm2", 4, 3, 7, 3),
])
def test_the_schedule_counts_unet_calls_not_timesteps(tiny_sd, scheduler, steps, every, calls, full):
    from scumble.core.sampling.settings import ImageJob, Sampling

    engine = _engine(tiny_sd)
    sampling = Sampling(steps=steps, scheduler=scheduler, width=32, height=32, step_cache=every)
    for _ in range(2):  # the count restarts with every sampling call
        engine.txt2img([ImageJob("a red circle", seed=1)], sampling)
        cache = engine._step_cache
        assert (cache.calls, cache.full_calls) == (calls, full)


def test_without_the_flag_the_unet_is_left_alone(tiny_sd):
    from scumble.core.sampling.settings import ImageJob, Sampling

    engine = _engine(tiny_sd)
    engine.txt2img([ImageJob("a red circle", seed=1)], Sampling(steps=2, width=32, height=32))
    assert engine._step_cache is None and "forward" not in vars(engine.components["unet"])


def test_guidance_cut_off_mid_run_keeps_the_conditional_half_of_the_features(tiny_sd):
    from scumble.core.sampling.settings import ImageJob, Sampling

    engine = _engine(tiny_sd)
    jobs = [ImageJob("a red circle", seed=1), ImageJob("a blue star", seed=2)]
    cut = engine.txt2img(jobs, Sampling(steps=6, width=32, height=32, cfg_cutoff=0.5, step_cache=4))
    assert engine._step_cache.full_calls == 2  # calls 0 and 4: the cut at call 3 did not force a whole pass
    again = engine.txt2img(jobs, Sampling(steps=6, width=32, height=32, cfg_cutoff=0.5, step_cache=4))
    assert [np.asarray(a).tolist() for a in cut] == [np.asarray(a).tolist() for a in again]
    assert len(cut) == 2 and cut[0].size == (32, 32)


@pytest.mark.parametrize("steps,same_as", [(21, 2), (20, 2), (19, 1), (6, 1)])
def test_the_default_caches_every_2nd_step_from_20_steps_and_none_below(run_cli, tiny_sd, tmp_path, steps, same_as):
    args = ("txt2img", "a red circle", "--model", tiny_sd, "--steps", steps, "--seed", 3, "-W", 32, "-H", 32)
    assert run_cli(*args, "-o", "default.png").exit_code == 0
    for every in (1, 2):
        assert run_cli(*args, "--step-cache", every, "-o", f"{every}.png").exit_code == 0
    default, one, two = (pixels(tmp_path / n) for n in ("default.png", "1.png", "2.png"))
    assert not np.array_equal(one, two)
    assert np.array_equal(default, two if same_as == 2 else one)
    assert [json.loads(Image.open(tmp_path / n).text["scumble"])["step_cache"] for n in ("default.png", "1.png", "2.png")] == [0, 1, 2]
    replay = run_cli("txt2img", "--replay", "default.png", "--model", tiny_sd, "-o", "again.png")
    assert replay.exit_code == 0, replay.stderr
    assert np.array_equal(default, pixels(tmp_path / "again.png"))


def test_the_default_counts_the_steps_img2img_runs_not_those_asked_for(tiny_sd, tmp_path):
    from scumble.core.sampling.step_cache import interval

    assert [interval(0, n) for n in (1, 19, 20, 40)] == [1, 1, 2, 2] and interval(3, 4) == 3 and interval(1, 40) == 1
    from scumble.core.request.build import FLAGS, Layer, image_request

    _sketch(tmp_path / "in.png")
    request = image_request("img2img", [Layer(FLAGS, {"steps": 20, "strength": 0.35, "prompt": "x"})], inputs=[str(tmp_path / "in.png")])
    assert request.sampling.step_cache == 0 and interval(request.sampling.step_cache, request.denoise.steps_run) == 1  # 7 of 20 steps run


def _sketch(path):
    rng = np.random.default_rng(0)
    Image.fromarray(rng.integers(0, 255, (32, 32, 3), dtype=np.uint8)).save(path)
    return path


@pytest.mark.parametrize("task", ["img2img", "inpaint"])
def test_edits_take_the_step_cache(run_cli, tiny_sd, tmp_path, task):
    _sketch(tmp_path / "in.png")
    extra = ("--mask", "in.png") if task == "inpaint" else ()
    common = (task, "in.png", "--prompt", "a red circle", "--model", tiny_sd, "--steps", 8, "--strength", 0.5, "--seed", 1, *extra)
    assert run_cli(*common, "--step-cache", 1, "-o", "plain.png").exit_code == 0
    result = run_cli(*common, "--step-cache", 2, "-o", "cached.png")
    assert result.exit_code == 0, result.stderr
    assert pixels(tmp_path / "cached.png").shape == pixels(tmp_path / "plain.png").shape
    assert not np.array_equal(pixels(tmp_path / "cached.png"), pixels(tmp_path / "plain.png"))


def test_controlnet_and_lora_runs_take_the_step_cache(run_cli, tiny_sd, tmp_path):
    import torch
    from diffusers import ControlNetModel, StableDiffusionPipeline, UNet2DConditionModel
    from peft import LoraConfig, get_peft_model_state_dict

    unet = UNet2DConditionModel.from_pretrained(tiny_sd / "unet")
    torch.manual_seed(0)
    controlnet = ControlNetModel.from_unet(unet, conditioning_embedding_out_channels=(8, 16))
    with torch.no_grad():
        for conv in [*controlnet.controlnet_down_blocks, controlnet.controlnet_mid_block]:
            conv.weight.normal_(0, 1.0)
    controlnet.save_pretrained(tmp_path / "cn")
    unet.add_adapter(LoraConfig(r=2, lora_alpha=2, target_modules=["to_q", "to_v"], init_lora_weights=False))
    StableDiffusionPipeline.save_lora_weights(tmp_path / "lora", unet_lora_layers=get_peft_model_state_dict(unet), safe_serialization=True)
    _sketch(tmp_path / "control.png")
    common = ("txt2img", "a red circle", "--model", tiny_sd, *ARGS, "--controlnet", tmp_path / "cn", "--control-image", "control.png",
              "--lora", tmp_path / "lora" / "pytorch_lora_weights.safetensors")
    assert run_cli(*common, "--step-cache", 1, "-o", "plain.png").exit_code == 0
    result = run_cli(*common, "--step-cache", 3, "-o", "cached.png")
    assert result.exit_code == 0, result.stderr
    assert not np.array_equal(pixels(tmp_path / "cached.png"), pixels(tmp_path / "plain.png"))


def test_animate_takes_the_step_cache_and_records_it(run_cli, tiny_sd, tmp_path):
    common = ("animate", "--model", tiny_sd, "--frames", 3, "--steps", 6, "-W", 32, "-H", 32, "--keep-frames", "--seed", 2)
    assert run_cli(*common, "--step-cache", 1, "-o", "plain.mp4").exit_code == 0
    result = run_cli(*common, "--step-cache", 2, "-o", "cached.mp4")
    assert result.exit_code == 0, result.stderr
    plain, cached = sorted((tmp_path / "plain.frames").glob("*.png")), sorted((tmp_path / "cached.frames").glob("*.png"))
    assert len(plain) == len(cached) == 3
    assert not np.array_equal(pixels(cached[-1]), pixels(plain[-1]))


@pytest.mark.parametrize("args,message", [
    (("--step-cache", -1), "--step-cache -1: must be at least 0"),
    (("--step-cache", 2, "--compile"), "--step-cache 2 and --compile: choose one"),
])
def test_bad_step_cache_is_one_line_and_exit_2(run_cli, tiny_sd, args, message):
    result = run_cli("txt2img", "a red circle", "--model", tiny_sd, *args)
    assert result.exit_code == 2
    assert message in result.stderr and "Traceback" not in result.stderr


# ---------------------------------------------------------------- token merging (--tome)


def test_token_merging_merges_the_ratio_and_puts_every_token_back():
    import torch

    from scumble.core.sampling.token_merging import bipartite_merge

    x = torch.randn(2, 64, 8, generator=torch.Generator().manual_seed(0))
    merge, unmerge = bipartite_merge(x, (8, 8), 0.5, call=1)
    merged = merge(x)
    assert merged.shape == (2, 32, 8)
    back = unmerge(merged)
    assert back.shape == x.shape
    # The 16 sources left alone come back exactly (and destinations nobody merged into); the 64 tokens
    # carry the 32 values attention saw, each merged source its destination's.
    exact = (back == x).all(dim=-1).sum(dim=1)
    assert (exact >= 16).all() and (exact < 32).all()
    assert [len(torch.unique(b, dim=0)) for b in back] == [32, 32]
    merge2, _ = bipartite_merge(x, (8, 8), 0.5, call=1)
    assert torch.equal(merge2(x), merged)  # the same call index draws the same destinations


def test_token_merging_on_a_unet_changes_only_what_it_should(tiny_sd):
    from scumble.core.sampling.settings import ImageJob, Sampling

    engine = _engine(tiny_sd)
    jobs = [ImageJob("a red circle", seed=1)]
    plain = np.asarray(engine.txt2img(jobs, Sampling(steps=4, width=32, height=32))[0])
    merged = np.asarray(engine.txt2img(jobs, Sampling(steps=4, width=32, height=32, tome=0.5))[0])
    again = np.asarray(engine.txt2img(jobs, Sampling(steps=4, width=32, height=32, tome=0.5))[0])
    off = np.asarray(engine.txt2img(jobs, Sampling(steps=4, width=32, height=32, tome=0.0))[0])
    assert len(engine._token_merging.wrapped) == 3  # the finest attention level: its down block's transformer and its up block's two
    assert not np.array_equal(plain, merged) and np.array_equal(merged, again) and np.array_equal(plain, off)


def test_tome_is_recorded_and_replays_and_bounded(run_cli, tiny_sd, tmp_path):
    result = run_cli("txt2img", "a red circle", "--model", tiny_sd, *ARGS, "--tome", 0.5, "--step-cache", 2, "-o", "t.png")
    assert result.exit_code == 0, result.stderr
    record = json.loads(Image.open(tmp_path / "t.png").text["scumble"])
    assert record["tome"] == 0.5 and record["step_cache"] == 2
    assert run_cli("txt2img", "--replay", "t.png", "--model", tiny_sd, "-o", "again.png").exit_code == 0
    assert np.array_equal(pixels(tmp_path / "t.png"), pixels(tmp_path / "again.png"))
    bad = run_cli("txt2img", "x", "--model", tiny_sd, "--tome", 0.9)
    assert bad.exit_code == 2 and "--tome 0.9: must be in [0, 0.75]" in bad.stderr


def test_a_record_from_before_the_speed_options_replays_without_them(run_cli, tiny_sd, tmp_path):
    from PIL.PngImagePlugin import PngInfo

    assert run_cli("txt2img", "a red circle", "--model", tiny_sd, *ARGS, "--step-cache", 1, "-o", "old.png").exit_code == 0
    image = Image.open(tmp_path / "old.png")
    record = json.loads(image.text["scumble"])
    del record["step_cache"], record["tome"]  # as a record written before they existed
    info = PngInfo()
    info.add_text("parameters", image.text["parameters"])
    info.add_text("scumble", json.dumps(record))
    image.save(tmp_path / "older.png", pnginfo=info)
    result = run_cli("txt2img", "--replay", "older.png", "--model", tiny_sd, "-o", "again.png")
    assert result.exit_code == 0, result.stderr
    assert json.loads(Image.open(tmp_path / "again.png").text["scumble"])["step_cache"] == 1
    assert np.array_equal(pixels(tmp_path / "old.png"), pixels(tmp_path / "again.png"))


def test_compile_alone_turns_the_default_step_cache_off(tiny_sd):
    from scumble.core.request.build import FLAGS, Layer, image_request

    request = image_request("txt2img", [Layer(FLAGS, {"compile_unet": True})], prompts=["x"])
    assert request.sampling.step_cache == 1
    assert image_request("txt2img", [Layer(FLAGS, {})], prompts=["x"]).sampling.step_cache == 0
