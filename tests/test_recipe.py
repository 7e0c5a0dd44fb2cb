"""The built-in model's recipe: its smoke mode runs, exports a diffusers folder, and resumes exactly."""

from __future__ import annotations

import json
import random
import subprocess
import sys
from dataclasses import asdict, replace

import cv2
import numpy as np
import pytest
import torch
from PIL import Image
from safetensors.torch import load_file

from scumble.training import adherence, pictures, recipe as recipe_module, world
from scumble.training.tokenizer import learn_merges


def recipe(*args, work, out):
    run = subprocess.run([sys.executable, "-m", "scumble.training.recipe", "--smoke", "--work", str(work), "--out", str(out), *args], capture_output=True, text=True)
    assert run.returncode == 0, run.stderr[-2000:]
    return run


@pytest.mark.slow
def test_smoke_recipe_exports_a_loadable_model_and_resumes_exactly(tmp_path):
    from diffusers import StableDiffusionPipeline

    recipe(work=tmp_path / "straight", out=tmp_path / "a")
    recipe("--stop-at-step", "3", work=tmp_path / "sittings", out=tmp_path / "b")
    assert not (tmp_path / "b").exists()
    recipe(work=tmp_path / "sittings", out=tmp_path / "b")
    # Two sittings follow the same path as one: equal up to float rounding (CPU kernels may round differently
    # in a new process); a run restarted from scratch instead would differ by the size of the updates.
    for part in ("unet/diffusion_pytorch_model.safetensors", "text_encoder/model.safetensors", "vae/diffusion_pytorch_model.safetensors", "vae_tiny/diffusion_pytorch_model.safetensors"):
        a, b = load_file(tmp_path / "a" / part), load_file(tmp_path / "b" / part)
        assert a.keys() == b.keys() and all(torch.allclose(a[k].float(), b[k].float(), rtol=1e-3, atol=1e-4) for k in a), part  # fp16 export: 1 ulp
    # transformers 4 reads only `text_model.*` keys, and silently starts a random encoder otherwise; 5 reads both
    assert all(k.startswith("text_model.") for k in load_file(tmp_path / "a" / "text_encoder" / "model.safetensors"))
    assert not any(str(tmp_path) in config.read_text() for config in tmp_path.glob("[ab]/*/*.json"))  # no machine's path ships
    # The decoder stage trains the decoder alone: the encoder, and so every latent the UNet learned, is the autoencoder's
    before, after = (load_file(tmp_path / "straight" / f / "diffusion_pytorch_model.safetensors") for f in ("vae", "vae_decoder"))
    frozen = [k for k in before if k.startswith(("encoder.", "quant_conv."))]
    assert frozen and all(torch.equal(before[k], after[k]) for k in frozen)
    assert not all(torch.equal(before[k], after[k]) for k in before if k.startswith("decoder."))
    # The third stage's foreign pictures are encoded once, at every training size, beside the world's latents
    foreign = load_file(tmp_path / "straight" / "foreign.safetensors")
    assert sorted(foreign) == ["latents_64x64", "latents_64x96"] and foreign["latents_64x96"].shape == (8, 4, 8, 12)
    pipe = StableDiffusionPipeline.from_pretrained(tmp_path / "a", safety_checker=None)
    image = pipe("a red circle", num_inference_steps=2, height=64, width=64, output_type="np").images[0]
    assert image.shape == (64, 64, 3) and np.isfinite(image).all()
    tokens = pipe.tokenizer("zebra 🦓 ünïcode 日本 <tag> a red circle").input_ids
    assert tokens[0] == pipe.tokenizer.bos_token_id and pipe.tokenizer.unk_token_id not in tokens[1:-1]
    tiny = subprocess.run([sys.executable, "-m", "scumble", "txt2img", "a red circle", "--model", str(tmp_path / "a"), "--vae", "tiny", "--steps", "2", "-o", str(tmp_path / "t.png")], capture_output=True, text=True)
    assert tiny.returncode == 0, tiny.stderr
    assert Image.open(tmp_path / "t.png").size == (64, 64)


def test_the_tune_stage_follows_the_main_schedule_with_its_own_rate_and_captions():
    r = recipe_module.Recipe(unet_steps=100, warmup=10, tune_steps=100, tune_lr=0.2, tune_unplaced=1.0, tune_object_weight=-1.0)
    assert r.lr_at(99) == pytest.approx(0.1, abs=1e-3)  # the main schedule ends at a tenth
    assert r.lr_at(100) == pytest.approx(0.02) and r.lr_at(109) == pytest.approx(0.2) and r.lr_at(199) == pytest.approx(0.02, abs=1e-3)
    assert r.mix_at(99) == r.mix and r.mix.unplaced == 0.1 and r.mix_at(100).unplaced == 1.0
    assert r.object_weight_at(100) == r.object_weight  # -1: as the main stage
    other = replace(r, object_weight=3.0, tune_object_weight=0.0)
    assert (other.object_weight_at(99), other.object_weight_at(100)) == (3.0, 0.0)
    # The tune stage rewords captions; it never draws other scenes than the pictures that were encoded.
    assert all(world.draw_scene(seed, r.mix_at(100))[0] == world.draw_scene(seed, r.mix)[0] for seed in range(50))
    phrases = [p for options in world._POSITION_PHRASES.values() for p in options]
    lone = [seed for seed in range(200) if isinstance(scene := world.draw_scene(seed, r.mix)[0], world.ShapeScene) and len(scene.objects) == 1]
    assert not any(p in recipe_module.caption_for(seed, 7, r.mix_at(100)) for seed in lone for p in phrases)
    placed = [recipe_module.caption_for(seed, 7, r.mix_at(0)) for seed in lone]
    assert 0.8 < np.mean([any(p in c for p in phrases) for c in placed]) < 1.0


def test_the_foreign_stage_follows_the_tune_stage_with_foreign_pictures_in_every_batch():
    r = recipe_module.Recipe(unet_steps=100, warmup=10, tune_steps=100, foreign_steps=50, foreign_lr=0.3, batch=64, foreign_share=0.25)
    assert r.foreign_start == 200
    assert [r.foreign_count(s) for s in (0, 199, 200, 249)] == [0, 0, 16, 16]
    assert r.lr_at(199) == pytest.approx(0.02, abs=1e-3) and r.lr_at(200) == pytest.approx(0.06) and r.lr_at(204) == pytest.approx(0.3)
    assert r.lr_at(249) == pytest.approx(0.03, abs=2e-3)
    assert r.mix_at(220) == r.mix_at(150) and r.object_weight_at(220) == r.object_weight_at(150)  # the tune stage's wording and weights
    assert (r.ema_decay_at(199), r.ema_decay_at(200)) == (r.ema_decay, r.foreign_ema_decay)
    assert replace(r, foreign_steps=0).foreign_count(200) == 0 and replace(r, foreign_steps=0).ema_decay_at(200) == r.ema_decay


def test_world_samples_are_deterministic_and_captions_vary():
    a, b = world.make_sample(123), world.make_sample(123)
    assert np.array_equal(a.image, b.image) and a.caption == b.caption
    captions = {world.caption_shapes(world.ShapeScene("blue", (world.ShapeObject("red", "circle", "left", "large"),)), random.Random(i)) for i in range(40)}
    assert len(captions) > 5 and all("red circle" in c and "blue" in c for c in captions)


def test_held_out_combinations_never_appear_in_training():
    held = set(world.held_out_combos())
    assert 100 < len(held) < 400
    for seed in range(3000):
        scene = world.random_shape_scene(random.Random(seed), two_object_rate=0.0)
        obj = scene.objects[0]
        assert (obj.color, obj.shape, obj.position, scene.background) not in held


@pytest.mark.parametrize("size", [(128, 128), (96, 160)])
def test_adherence_reader_scores_rendered_targets_perfectly(size):
    results = []
    for i, target in enumerate(adherence.held_out_targets(60)):
        for scale in ("small", "large"):  # a small hexagon is within a pixel of a circle: the reader must still see it
            obj = world.ShapeObject(target.color, target.shape, target.position, scale)
            image = world.render_shapes(world.ShapeScene(target.background, (obj,)), np.random.default_rng(i), size=size)
            results.append(adherence.score(replace(target, size=scale), adherence.read_picture(image)))
    assert adherence.summarize(results) == {"object_color": 100.0, "background": 100.0, "position": 100.0, "one_object": 100.0, "shape": 100.0}


def test_the_shape_reader_weighs_anti_aliased_edges_and_tells_blurred_shapes_apart():
    canvas = np.zeros((128, 128, 3), np.uint8)
    world.draw_object(canvas, world.ShapeObject("white", "hexagon", "center", "small"))
    cover = adherence.coverage(canvas, canvas[..., 0] > 127)
    assert np.any((cover > 0.05) & (cover < 0.95))  # edge pixels keep their fractions
    overlaps = adherence.shape_overlaps(cover)
    assert max(overlaps, key=overlaps.get) == "hexagon" and overlaps["hexagon"] > 0.99 > overlaps["circle"] + 0.05
    for shape in world.SHAPES:  # a slight blur, as an autoencoder's, leaves each shape itself
        canvas = np.full((128, 128, 3), 245, np.uint8)
        world.draw_object(canvas, world.ShapeObject("blue", shape, "left", "large"))
        assert adherence.read_picture(cv2.GaussianBlur(canvas, (0, 0), 1.0)).shape == shape


def test_adherence_reader_catches_wrong_pictures():
    target = adherence.Target("red", "circle", "left", "blue")
    two = world.render_shapes(world.ShapeScene("green", (world.ShapeObject("yellow", "star", "left", "small"), world.ShapeObject("red", "square", "right", "small"))))
    # the largest blob (the red square, on the right) is read as "the" object
    assert adherence.score(target, adherence.read_picture(two)) == {"object_color": True, "background": False, "position": False, "one_object": False, "shape": False}
    assert adherence.read_picture(two).shape == "square"


def test_two_object_and_scene_readers_score_rendered_truth_perfectly():
    for i, target in enumerate(adherence.held_out_pairs(40)):
        image = world.render_shapes(world.ShapeScene(target.background, (target.first, target.second)), np.random.default_rng(i))
        assert adherence.score_pair(target, image) == {"both_sides": True, "background": True}, target
        first, second = target.first, target.second
        swapped = world.render_shapes(world.ShapeScene(target.background, (replace(second, position=first.position), replace(first, position=second.position))))
        assert not adherence.score_pair(target, swapped)["both_sides"]
    for i, target in enumerate(adherence.held_out_scenes(27)):
        for size in [(128, 128), (96, 192), (192, 96)]:
            image = world.render_landscape(world.Landscape(target.time, target.body, target.ground, random.Random(i).uniform(0.2, 0.8)), np.random.default_rng(i), size)
            assert adherence.score_scene(target, adherence.read_scene(image)) == {"sky": True, "body": True, "ground": True}, (target, size)


def test_held_out_pairs_and_scenes_never_appear_in_training():
    held_scenes = set(world.held_out_landscapes())
    assert 1 <= len(held_scenes) <= 6
    for seed in range(3000):
        scene, _ = world.draw_scene(seed)
        if isinstance(scene, world.Landscape):
            assert (scene.time, scene.body, scene.ground) not in held_scenes
        elif len(scene.objects) == 2:
            assert not world.is_held_out_pair(*scene.objects, scene.background)


def test_foreign_pictures_are_deterministic_varied_and_held_out_apart():
    a, b = pictures.picture(5, 64, 96), pictures.picture(5, 64, 96)
    assert a.shape == (64, 96, 3) and a.dtype == np.uint8 and np.array_equal(a, b)
    for kind in pictures.KINDS:
        image = pictures.picture(1, 64, 64, kind)
        assert image.std() > 1.0, kind  # every kind draws something
    held = pictures.held_out("sketch", 0, 128)
    assert held.shape == (128, 128, 3) and np.median(held) > 150  # graphite on light paper
    crops = recipe_module.vae_crops(recipe_module.Recipe.smoke(), 0)
    assert crops.shape == (4, 32, 32, 3) and np.array_equal(crops, recipe_module.vae_crops(recipe_module.Recipe.smoke(), 0))


def test_tokenizer_merges_cover_the_vocabulary():
    merges = learn_merges(["a red circle on a blue background"] * 3)
    joined = {"".join(m) for m in merges}
    assert {"red</w>", "circle</w>", "background</w>"} <= joined


def test_a_run_goes_on_with_other_execution_settings_but_not_other_learning_settings(tmp_path):
    gpu = replace(recipe_module.Recipe.smoke(), threads=4, workers=12, checkpoint_every=1_000_000)
    (tmp_path / "recipe.json").write_text(json.dumps(asdict(gpu)))
    cpu = replace(recipe_module.Recipe.smoke(), threads=1, workers=0, checkpoint_every=50)
    assert recipe_module.agreed_recipe(cpu, tmp_path) == cpu
    assert recipe_module.agreed_recipe(replace(cpu, batch=cpu.batch * 2), tmp_path) is None


@pytest.mark.parametrize(
    "field, value, says",
    [("batch", 0, "batch: must be at least 1"), ("foreign_share", 1.5, "foreign_share: must be between 0 and 1"), ("decoder_lr", float("nan"), "decoder_lr: must be above 0"),
     ("vae_channels", "64,64", "vae_channels: must be 4 comma-separated multiples of 32"), ("sizes", "128x100", "'128x100' must be HxW"),
     ("tune_object_weight", -0.5, "tune_object_weight: must be -1"), ("unet_steps", 7000.0, "unet_steps: expected int")],
)
def test_a_recipe_outside_its_limits_is_refused_at_every_door(field, value, says):
    with pytest.raises(ValueError, match=says.replace("(", r"\(")):
        replace(recipe_module.Recipe(), **{field: value})


def test_recipe_doors_refuse_bad_values_in_one_line(tmp_path, capsys):
    with pytest.raises(SystemExit) as stop:
        recipe_module.main(["--smoke", "--work", str(tmp_path / "w"), "--set", "foreign_share=2"])
    assert stop.value.code == 2 and capsys.readouterr().err.strip().splitlines()[-1].endswith("--set foreign_share: must be between 0 and 1, got 2.0")
    with pytest.raises(SystemExit):
        recipe_module.main(["--smoke", "--work", str(tmp_path / "w"), "--set", "batch=many"])
    assert "--set batch: 'many' is not an int" in capsys.readouterr().err
    (tmp_path / "w").mkdir()
    for recorded, says in (("[1, 2]", "not a recipe"), ('{"unet_steps": -5, "unet_seconds": 10}', "unet_steps: must be at least 1"), ('{"batch": ', "Expecting value")):
        (tmp_path / "w" / "recipe.json").write_text(recorded)
        assert recipe_module.main(["--smoke", "--work", str(tmp_path / "w"), "--set", "unet_seconds=10"]) == 2
        err = capsys.readouterr().err.strip()
        assert len(err.splitlines()) == 1 and says in err and "Traceback" not in err


def test_the_recipe_defaults_rebuild_the_shipped_model():
    from scumble.core.loading.sources import BUILTIN_MODELS

    shipped = json.loads((BUILTIN_MODELS["scumble-mini"] / "recipe.json").read_text())["recipe"]
    how = set(recipe_module.EXECUTION) | set(recipe_module.BUDGETED.values())  # how it ran, not what it learned
    assert {k: v for k, v in shipped.items() if k not in how} == {k: v for k, v in asdict(recipe_module.Recipe()).items() if k not in how}
