"""scumble schedules: what a noise schedule does to the sampling noise levels."""

from __future__ import annotations

from typing import Annotated

import typer

from . import options as opt

app = typer.Typer(help="Inspect noise schedules: the sigmas a scheduler will step through.", no_args_is_help=True)


@app.command("show")
def show(
    noise_schedule: opt.NoiseSchedule = "cosine",
    steps: opt.Steps = 20,
    scheduler: opt.Scheduler = "",
    logsnr_shift: opt.LogsnrShift = "0",
    input_scale: opt.InputScale = None,
    width: opt.Width = 0,
    height: opt.Height = 0,
    model: opt.Model = "scumble-mini",
    json_out: Annotated[bool, typer.Option("--json", help="One JSON list, a row per sampling step: t, gamma, logsnr, sigma, timestep.")] = False,
) -> None:
    """Print the noise levels a schedule gives, one row per sampling step (the model's weights are not loaded)."""
    import json

    import numpy as np

    from scumble.pipelines import noise_schedules, schedulers, sources
    from scumble.pipelines.errors import ModelError, UsageError

    from .common import logsnr_shift as resolve_shift

    continuous = noise_schedules.parse(noise_schedule)
    if continuous is None:
        raise UsageError(f"--noise-schedule {noise_schedule}: show takes the continuous families: {', '.join(noise_schedules.FAMILIES)}")
    source = sources.resolve(model)
    if source.kind == "hub" or source.kind == "single_file":
        raise ModelError(f"--model {model}: schedules show reads a model folder's scheduler config; give a folder or the built-in model")
    from diffusers import DDPMScheduler

    config = DDPMScheduler.load_config(source.location, subfolder="scheduler")
    alphas = np.asarray(DDPMScheduler.from_config(config).alphas_cumprod, dtype=np.float64)
    train_sigmas = np.sqrt((1 - alphas) / alphas)
    if scheduler:
        schedulers.custom_schedule_flag(schedulers.find_scheduler(scheduler))
    shift = resolve_shift(logsnr_shift, input_scale)
    if shift == "auto":
        import json as _json

        unet = _json.loads((sources.Path(source.location) / "unet" / "config.json").read_text())
        native = unet["sample_size"] * 8
        shift = noise_schedules.auto_shift(width or native, height or native, native)
    planned = noise_schedules.plan(continuous, steps, train_sigmas, float(shift))
    rows = [
        {"t": float(t), "gamma": float(g), "logsnr": float(noise_schedules.logsnr(g)), "sigma": float(s), "timestep": float(ts)}
        for t, g, s, ts in zip(planned.t, planned.gamma, planned.sigmas, planned.timesteps)
    ]
    if json_out:
        print(json.dumps(rows))
        return
    print(f"{continuous.label()}, {steps} steps, logSNR shift {float(shift):+.3f}, model {source.name} (sigma {train_sigmas.min():.4f}..{train_sigmas.max():.2f})")
    print(f"{'step':>4} {'t':>7} {'gamma':>12} {'logSNR':>9} {'sigma':>10} {'timestep':>9}")
    for i, r in enumerate(rows):
        print(f"{i:>4} {r['t']:>7.4f} {r['gamma']:>12.6g} {r['logsnr']:>9.3f} {r['sigma']:>10.4f} {r['timestep']:>9.2f}")
