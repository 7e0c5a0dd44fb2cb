"""Chen (2023)'s continuous noise schedules: the functions, the input-scale shift, and their use in sampling."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
from PIL import Image

from helpers import pixels
from scumble.core.sampling import noise_schedules as ns
from scumble.core.errors import UsageError

T = [i / 40 for i in range(41)]


def algorithm1_sigmoid(t, start, end, tau):
    s = lambda x: 1 / (1 + math.exp(-x))  # noqa: E731
    v_start, v_end = s(start / tau), s(end / tau)
    return min(max((v_end - s((t * (end - start) + start) / tau)) / (v_end - v_start), 1e-9), 1.0)


def algorithm1_cosine(t, start, end, tau):
    v_start, v_end = math.cos(start * math.pi / 2) ** (2 * tau), math.cos(end * math.pi / 2) ** (2 * tau)
    return min(max((v_end - math.cos((t * (end - start) + start) * math.pi / 2) ** (2 * tau)) / (v_end - v_start), 1e-9), 1.0)


def test_linear_matches_algorithm_1():
    assert np.allclose(ns.simple_linear(T), [min(max(1 - t, 1e-9), 1.0) for t in T], rtol=0, atol=1e-15)


@pytest.mark.parametrize("start,end,tau", [(-3, 3, 1.0), (0, 3, 0.3), (-3, 3, 1.1), (-1, 1, 0.7), (-6, 2, 2.0)])
def test_sigmoid_matches_algorithm_1(start, end, tau):
    assert np.allclose(ns.sigmoid(T, start, end, tau), [algorithm1_sigmoid(t, start, end, tau) for t in T], rtol=1e-12, atol=1e-15)


@pytest.mark.parametrize("start,end,tau", [(0, 1, 1.0), (0.2, 1, 1.0), (0.2, 1, 2.0), (0, 0.9, 0.5), (0.1, 0.8, 3.0)])
def test_cosine_matches_algorithm_1(start, end, tau):
    assert np.allclose(ns.cosine(T, start, end, tau), [algorithm1_cosine(t, start, end, tau) for t in T], rtol=1e-12, atol=1e-15)


@pytest.mark.parametrize("schedule", ["linear", "cosine", "sigmoid:start=-3,end=3,tau=1.1", "cosine:start=0.2,end=1,tau=2"])
def test_gamma_runs_from_clean_to_noise_within_the_clip(schedule):
    gamma = ns.parse(schedule).gamma(np.linspace(0, 1, 101))
    assert gamma[0] == pytest.approx(1.0) and gamma[-1] == pytest.approx(1e-9) and np.all(np.diff(gamma) <= 1e-15)
    assert gamma.min() >= 1e-9 and gamma.max() <= 1.0


@pytest.mark.parametrize("b", [0.25, 0.5, 2.0])
def test_input_scale_shifts_logsnr_by_exactly_2_log_b_and_keeps_the_shape(b):
    t = np.linspace(0.05, 0.95, 19)
    gamma = ns.cosine(t)
    shifted = ns.shifted_gamma(gamma, 2 * math.log(b))
    assert np.allclose(ns.logsnr(shifted) - ns.logsnr(gamma), 2 * math.log(b), atol=1e-9)
    assert np.allclose(np.diff(ns.logsnr(shifted)), np.diff(ns.logsnr(gamma)), atol=1e-9)


def test_plan_clips_to_the_model_and_maps_timesteps():
    from diffusers import DDPMScheduler

    alphas = DDPMScheduler(beta_schedule="scaled_linear", beta_start=0.00085, beta_end=0.012).alphas_cumprod.double().numpy()
    train = np.sqrt((1 - alphas) / alphas)
    plan = ns.plan(ns.parse("cosine"), 10, train)
    assert plan.sigmas.max() == pytest.approx(train.max()) and plan.sigmas.min() >= train.min()
    assert plan.timesteps[0] == pytest.approx(999) and np.all(np.diff(plan.timesteps) < 0)
    assert plan.gamma[0] == pytest.approx(1e-9)  # raw gamma, before the clip to the model's range
    assert np.allclose(np.interp(plan.timesteps, np.arange(1000), train), plan.sigmas, rtol=0.02)


def test_auto_shift_is_noisier_for_larger_images():
    assert ns.auto_shift(128, 128, 128) == 0.0
    assert ns.auto_shift(256, 256, 128) == pytest.approx(-2 * math.log(2))
    assert ns.auto_shift(384, 384, 128) < ns.auto_shift(256, 256, 128)


@pytest.mark.parametrize("spec,message", [("cosine:start=2", "cosine needs"), ("sigmoid:tau=0", "sigmoid needs"), ("cosine:bogus=1", "takes start=, end=, tau="), ("linear:x=1", "no parameters")])
def test_bad_specs(spec, message):
    with pytest.raises(UsageError, match=message):
        ns.parse(spec)


@pytest.mark.parametrize("scheduler", ["euler", "dpmpp_2m", "heun"])
def test_txt2img_with_a_continuous_schedule_and_replay(run_cli, tiny_sd, tmp_path, scheduler):
    args = ["txt2img", "x", "--model", tiny_sd, "--steps", 4, "--seed", 3, "--scheduler", scheduler, "--noise-schedule", "cosine:start=0.2,end=1,tau=1", "--logsnr-shift", -0.5]
    assert run_cli(*args, "-o", "a.png").exit_code == 0
    assert run_cli(*args[:-2], "-o", "b.png").exit_code == 0
    assert not np.array_equal(pixels(tmp_path / "a.png"), pixels(tmp_path / "b.png"))  # the shift changes the result
    assert json.loads(Image.open(tmp_path / "a.png").text["scumble"])["logsnr_shift"] == -0.5
    assert run_cli("txt2img", "--replay", "a.png", "--model", tiny_sd, "-o", "c.png").exit_code == 0
    assert np.array_equal(pixels(tmp_path / "a.png"), pixels(tmp_path / "c.png"))


def test_scheduler_without_custom_schedules_is_named(run_cli, tiny_sd):
    for name in ("euler_a", "unipc", "ddim"):
        result = run_cli("txt2img", "x", "--model", tiny_sd, "--scheduler", name, "--noise-schedule", "sigmoid")
        assert result.exit_code == 2 and "cannot follow a continuous noise schedule" in result.stderr and "dpmpp_2m" in result.stderr


def test_img2img_truncates_a_continuous_schedule(run_cli, tiny_sd, tmp_path):
    Image.fromarray(np.full((32, 32, 3), 90, np.uint8)).save(tmp_path / "in.png")
    result = run_cli("img2img", "in.png", "-p", "x", "--model", tiny_sd, "--steps", 8, "--strength", 0.5, "--noise-schedule", "cosine", "--input-scale", 0.5, "-o", "o.png")
    assert result.exit_code == 0, result.stderr
    assert json.loads(Image.open(tmp_path / "o.png").text["scumble"])["logsnr_shift"] == pytest.approx(2 * math.log(0.5))


def test_schedules_show_json(run_cli, tiny_sd):
    result = run_cli("schedules", "show", "--noise-schedule", "sigmoid:start=-3,end=3,tau=1.1", "--steps", 5, "--model", tiny_sd, "--json")
    rows = json.loads(result.stdout)
    assert [set(r) for r in rows] == [{"t", "gamma", "logsnr", "sigma", "timestep"}] * 5
    assert rows[0]["t"] == 1.0 and rows[0]["gamma"] == pytest.approx(1e-9)
    assert rows[2]["gamma"] == pytest.approx(algorithm1_sigmoid(rows[2]["t"], -3, 3, 1.1))


def test_schedules_plot_writes_a_png(run_cli, tiny_sd, tmp_path):
    result = run_cli("schedules", "plot", "--noise-schedule", "cosine", "--noise-schedule", "sigmoid:tau=0.5", "--model", tiny_sd, "-o", "s.png")
    assert result.exit_code == 0, result.stderr
    image = Image.open(tmp_path / "s.png")
    assert image.format == "PNG" and image.size[0] > 800 and np.asarray(image.convert("L")).std() > 10
    again = run_cli("schedules", "plot", "--model", tiny_sd, "-o", "s.png")
    assert again.exit_code == 1 and "already exists" in again.stderr
    bad = run_cli("schedules", "plot", "--noise-schedule", "karras", "--model", tiny_sd, "-o", "k.png")
    assert bad.exit_code == 2 and "continuous families" in bad.stderr


@pytest.mark.parametrize("shift", [0.0, -1.5, -3.0])
def test_euler_denoises_to_zero_and_survives_levels_clipped_at_the_top(tiny_sd, shift):
    """Strong noisier shifts clip several first levels to the model's maximum; the run must still end clean."""
    from scumble.core.loading.device import make_runtime
    from scumble.core.sampling.engine import Engine, ImageJob, Sampling

    engine = Engine.load(str(tiny_sd), make_runtime("cpu", "fp32"))
    sampling = Sampling(steps=12, noise_schedule="cosine", logsnr_shift=shift, width=32, height=32)
    done = []
    engine.txt2img([ImageJob("x", seed=1)], sampling, on_step=lambda step, total: done.append(step))
    sigmas = engine.pipeline("txt2img").scheduler.sigmas
    assert float(sigmas[-1]) == 0.0 and len(done) == len(sigmas) - 1
    assert bool((sigmas[1:] < sigmas[:-1]).all())  # strictly decreasing: no level repeated, no zero-length step
    assert float(sigmas[0]) == pytest.approx(float(engine.train_sigmas().max()), rel=1e-5)
    assert (len(done) == 12) == (shift == 0.0)


def _sd_train_sigmas():
    betas = np.linspace(0.00085**0.5, 0.012**0.5, 1000) ** 2
    alphas = np.cumprod(1 - betas)
    return np.sqrt((1 - alphas) / alphas)


@pytest.mark.parametrize("family,published", [("ays", "StableDiffusionTimesteps"), ("ays-xl", "StableDiffusionXLTimesteps")])
def test_align_your_steps_at_10_steps_are_the_published_levels(family, published):
    from diffusers.schedulers import AysSchedules

    planned = ns.plan(ns.parse_spec(family).continuous, 10, _sd_train_sigmas())
    assert np.allclose(planned.sigmas, ns.AYS_SIGMAS[family][:10], atol=1e-3)  # the first clipped to the model's top level, 14.6146
    assert np.abs(planned.timesteps - np.asarray(AysSchedules[published])).max() <= 1.0  # diffusers' copy, rounded to whole timesteps


def test_align_your_steps_at_other_counts_interpolate_log_sigma():
    planned = ns.plan(ns.parse_spec("ays").continuous, 20, _sd_train_sigmas())
    assert np.allclose(planned.sigmas[::2], ns.AYS_SIGMAS["ays"][:10], atol=1e-3)  # every knot is kept
    between = np.sqrt(planned.sigmas[0:-2:2] * planned.sigmas[2::2])  # and the levels between are geometric means
    assert np.allclose(planned.sigmas[1:-1:2], between, rtol=1e-4)


def test_txt2img_with_align_your_steps_names_it_the_a1111_way_and_replays(run_cli, tiny_sd, tmp_path):
    args = ["txt2img", "x", "--model", tiny_sd, "--steps", 5, "--seed", 3, "--noise-schedule", "ays"]
    assert run_cli(*args, "-o", "a.png").exit_code == 0
    assert run_cli(*args[:-2], "-o", "b.png").exit_code == 0
    assert not np.array_equal(pixels(tmp_path / "a.png"), pixels(tmp_path / "b.png"))
    assert "Schedule type: Align Your Steps" in Image.open(tmp_path / "a.png").text["parameters"]
    assert run_cli("txt2img", "--replay", "a.png", "--model", tiny_sd, "-o", "c.png").exit_code == 0
    assert np.array_equal(pixels(tmp_path / "a.png"), pixels(tmp_path / "c.png"))


def test_align_your_steps_takes_sdxl_levels_for_an_sdxl_model(tiny_sd, tiny_sdxl):
    from scumble.core.loading.device import make_runtime
    from scumble.core.sampling.engine import Engine
    from scumble.core.sampling.settings import Sampling

    for model, family in ((tiny_sd, "ays"), (tiny_sdxl, "ays-xl")):
        engine = Engine.load(str(model), make_runtime("cpu", "fp32"))
        sigmas = engine.schedule_args(Sampling(steps=10, noise_schedule="ays"), 10, 32, 32)["sigmas"]
        assert np.allclose(sigmas[:10], ns.AYS_SIGMAS[family][:10], atol=1e-3) and sigmas[-1] == 0.0


def test_an_a1111_schedule_type_align_your_steps_reads_as_ays():
    from scumble.core.request.a1111 import values_from_parameters

    values, _ = values_from_parameters({"Sampler": "DPM++ 2M", "Schedule type": "Align Your Steps", "Steps": "10"}, "x.png")
    assert values["noise_schedule"] == "ays" and values["scheduler"] == "DPM++ 2M"
