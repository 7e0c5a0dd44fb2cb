"""scumble schedules: what a noise schedule does to the sampling noise levels."""

from __future__ import annotations

from typing import Annotated

import typer

from ..core.errors import UsageError
from . import options as opt

app = typer.Typer(help="Inspect noise schedules: the sigmas a scheduler will step through.", no_args_is_help=True)


@app.command("show")
def show(
    ctx: typer.Context,
    noise_schedule: opt.alias("noise_schedule") = "cosine",
    steps: opt.alias("steps") = 20,
    scheduler: opt.alias("scheduler") = "",
    logsnr_shift: opt.alias("logsnr_shift") = "0",
    input_scale: opt.alias("input_scale") = None,
    width: opt.alias("width") = 0,
    height: opt.alias("height") = 0,
    model: opt.alias("model") = "scumble-mini",
    json_out: Annotated[bool, typer.Option("--json", help="One JSON list, a row per sampling step: t, gamma, logsnr, sigma, timestep.")] = False,
) -> None:
    """Print the noise levels a schedule gives, one row per sampling step (the model's weights are not loaded)."""
    import json

    import numpy as np

    from ..core.sampling import noise_schedules
    from ..core.sampling import schedulers
    from ..core.loading import sources
    from ..core.errors import ModelError, UsageError

    values = checked(ctx, steps=steps, scheduler=scheduler, logsnr_shift=logsnr_shift, input_scale=input_scale, width=width, height=height)
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
    if values["scheduler"]:
        schedulers.custom_schedule_flag(schedulers.find_scheduler(values["scheduler"]))
    shift = values["shift"]
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


@app.command("plot")
def plot(
    ctx: typer.Context,
    noise_schedule: Annotated[list[str], typer.Option("--noise-schedule", help="A continuous schedule to draw; repeat to compare several.")] = ["cosine", "sigmoid:start=-3,end=3,tau=1.1", "linear"],  # noqa: B006
    steps: opt.alias("steps") = 20,
    logsnr_shift: opt.alias("logsnr_shift") = "0",
    input_scale: opt.alias("input_scale") = None,
    model: opt.alias("model") = "scumble-mini",
    output: Annotated[str, typer.Option("--output", "-o", help="The PNG to write.")] = "schedules.png",
    overwrite: opt.alias("overwrite") = False,
) -> None:
    """Draw gamma(t) and logSNR(t) for one or more schedules (as the paper's Figures 3 and 5), with the sampler's discrete noise levels marked."""
    import io
    from pathlib import Path

    import numpy as np

    from ..core.sampling import noise_schedules
    from ..core.records import output as out
    from ..core.loading import sources
    from ..core.errors import ScumbleError, UsageError

    values = checked(ctx, steps=steps, logsnr_shift=logsnr_shift, input_scale=input_scale)
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        raise ScumbleError("schedules plot needs matplotlib: pip install 'scumble[plot]'") from None
    parsed = [noise_schedules.parse(spec) for spec in noise_schedule]
    if any(p is None for p in parsed):
        raise UsageError(f"--noise-schedule: plot takes the continuous families: {', '.join(noise_schedules.FAMILIES)}")
    shift = values["shift"]
    if shift == "auto":
        raise UsageError("--logsnr-shift auto depends on an image size; give a number for the plot")
    source = sources.resolve(model)
    from diffusers import DDPMScheduler

    alphas = np.asarray(DDPMScheduler.from_config(DDPMScheduler.load_config(source.location, subfolder="scheduler")).alphas_cumprod, dtype=np.float64)
    train_sigmas = np.sqrt((1 - alphas) / alphas)
    t = np.linspace(0, 1, 400)
    fig, (ax_gamma, ax_logsnr) = plt.subplots(1, 2, figsize=(11, 4.2))
    for schedule in parsed:
        gamma = noise_schedules.shifted_gamma(schedule.gamma(t), float(shift)) if shift else schedule.gamma(t)
        line, = ax_gamma.plot(t, gamma, label=schedule.label())
        ax_logsnr.plot(t, noise_schedules.logsnr(gamma), color=line.get_color(), label=schedule.label())
        planned = noise_schedules.plan(schedule, steps, train_sigmas, float(shift))
        used = 1 / (1 + planned.sigmas**2)  # the gamma each discrete, model-clipped sigma stands for
        ax_gamma.plot(planned.t, used, "o", color=line.get_color(), markersize=3)
        ax_logsnr.plot(planned.t, noise_schedules.logsnr(used), "o", color=line.get_color(), markersize=3)
    trained = np.linspace(0, 1, len(alphas))
    ax_logsnr.plot(trained, noise_schedules.logsnr(alphas), "k--", linewidth=1, label=f"{source.name} training")
    ax_gamma.set(xlabel="t", ylabel="gamma(t)", title="signal fraction")
    ax_logsnr.set(xlabel="t", ylabel="logSNR(t)", title=f"logSNR (shift {float(shift):+.2f}); dots: the {steps} sampled levels", ylim=(-12, 12))
    for ax in (ax_gamma, ax_logsnr):
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    fig.tight_layout()
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=110)
    plt.close(fig)
    out.write_bytes(buffer.getvalue(), Path(output), overwrite=overwrite)
    print(f"wrote {output}")


def checked(ctx: typer.Context, **given) -> dict:
    """The typed flags through the option table's checks, as for any subcommand; `shift` from --logsnr-shift or --input-scale."""
    import math

    from ..core.request.build import FLAGS, Layer, merge

    explicit = {k: v for k, v in given.items() if opt.explicit(ctx, k)}
    values, origin = merge("txt2img", [Layer(FLAGS, explicit)])
    shift = values["logsnr_shift"]
    if values["input_scale"] is not None:
        if origin["logsnr_shift"] != "default":
            raise UsageError("give --logsnr-shift or --input-scale, not both (X = 2 log b)")
        shift = 2 * math.log(values["input_scale"])
    return values | {"shift": shift}
