"""What a continuous noise schedule does on a model: the levels per step, and the paper's two plots.

Reads only the model folder's scheduler config (and UNet size for `auto`); never the weights.
"""

from __future__ import annotations

import io
import json
from pathlib import Path

import numpy as np

from ..errors import ModelError, UsageError
from ..loading import sources
from . import noise_schedules


def continuous(specs: list[str], what: str) -> list:
    parsed = [noise_schedules.parse(spec) for spec in specs]
    if any(p is None for p in parsed):
        raise UsageError(f"--noise-schedule: {what} takes the continuous families: {', '.join(noise_schedules.FAMILIES)}")
    return parsed


def model_alphas(model: str) -> tuple[sources.ModelSource, np.ndarray]:
    """(the model's source, its training alphas_cumprod) from the folder's scheduler config."""
    from diffusers import DDPMScheduler

    source = sources.resolve(model)
    if source.kind in ("hub", "single_file"):
        raise ModelError(f"--model {model}: schedules reads a model folder's scheduler config; give a folder or the built-in model")
    config = DDPMScheduler.load_config(source.location, subfolder="scheduler")
    return source, np.asarray(DDPMScheduler.from_config(config).alphas_cumprod, dtype=np.float64)


def resolve_shift(shift, source: sources.ModelSource, width: int, height: int) -> float:
    if shift != "auto":
        return float(shift)
    native = json.loads((Path(source.location) / "unet" / "config.json").read_text())["sample_size"] * 8
    return noise_schedules.auto_shift(width or native, height or native, native)


def levels(spec: str, steps: int, model: str, shift, width: int = 0, height: int = 0) -> tuple[str, list[dict]]:
    """A heading and one row per sampling step: t, gamma, logsnr, sigma, timestep."""
    schedule, = continuous([spec], "show")
    source, alphas = model_alphas(model)
    train_sigmas = np.sqrt((1 - alphas) / alphas)
    shift = resolve_shift(shift, source, width, height)
    planned = noise_schedules.plan(schedule, steps, train_sigmas, shift)
    rows = [
        {"t": float(t), "gamma": float(g), "logsnr": float(noise_schedules.logsnr(g)), "sigma": float(s), "timestep": float(ts)}
        for t, g, s, ts in zip(planned.t, planned.gamma, planned.sigmas, planned.timesteps)
    ]
    heading = f"{schedule.label()}, {steps} steps, logSNR shift {shift:+.3f}, model {source.name} (sigma {train_sigmas.min():.4f}..{train_sigmas.max():.2f})"
    return heading, rows


def plot_png(specs: list[str], steps: int, model: str, shift: float) -> bytes:
    """gamma(t) and logSNR(t) for each schedule (the paper's Figures 3 and 5), the sampled levels marked."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    parsed = continuous(specs, "plot")
    source, alphas = model_alphas(model)
    train_sigmas = np.sqrt((1 - alphas) / alphas)
    t = np.linspace(0, 1, 400)
    fig, (ax_gamma, ax_logsnr) = plt.subplots(1, 2, figsize=(11, 4.2))
    for schedule in parsed:
        gamma = noise_schedules.shifted_gamma(schedule.gamma(t), shift) if shift else schedule.gamma(t)
        line, = ax_gamma.plot(t, gamma, label=schedule.label())
        ax_logsnr.plot(t, noise_schedules.logsnr(gamma), color=line.get_color(), label=schedule.label())
        planned = noise_schedules.plan(schedule, steps, train_sigmas, shift)
        used = 1 / (1 + planned.sigmas**2)  # the gamma each discrete, model-clipped sigma stands for
        ax_gamma.plot(planned.t, used, "o", color=line.get_color(), markersize=3)
        ax_logsnr.plot(planned.t, noise_schedules.logsnr(used), "o", color=line.get_color(), markersize=3)
    ax_logsnr.plot(np.linspace(0, 1, len(alphas)), noise_schedules.logsnr(alphas), "k--", linewidth=1, label=f"{source.name} training")
    ax_gamma.set(xlabel="t", ylabel="gamma(t)", title="signal fraction")
    ax_logsnr.set(xlabel="t", ylabel="logSNR(t)", title=f"logSNR (shift {shift:+.2f}); dots: the {steps} sampled levels", ylim=(-12, 12))
    for ax in (ax_gamma, ax_logsnr):
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    fig.tight_layout()
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=110)
    plt.close(fig)
    return buffer.getvalue()
