"""Glue every subcommand shares: presets over defaults, and loading the engine."""

from __future__ import annotations

import typer

from ..core.errors import UsageError


def apply_preset(ctx: typer.Context, command: str, values: dict, preset: str | None) -> dict:
    """Fill options the user did not type from the preset; explicit flags always win."""
    if not preset:
        return values
    from .. import presets

    merged = dict(values)
    specific = presets.load(preset).get(command, {})
    for key, value in presets.for_command(preset, command).items():
        if key not in values:
            if key in specific:
                raise UsageError(f"--preset {preset}: {command} has no option {key!r}")
            continue  # a shared key for another subcommand
        source = ctx.get_parameter_source(key)
        if source is None or source.name in ("DEFAULT", "DEFAULT_MAP"):
            merged[key] = value
    return merged


def load_engine(model: str, config: str | None = None, allow_pickle: bool = False, device: str = "auto", dtype: str = "auto", offload: str = "none", vae_tiling: bool = False, attention_slicing: bool = False, channels_last: bool = False, compile_unet: bool = False, vae: str = ""):
    """The one engine of a run, from the model-and-hardware options (named as the subcommands name them)."""
    from ..core.loading.device import make_runtime
    from ..core.sampling.engine import Engine

    runtime = make_runtime(device, dtype, offload, vae_tiling, attention_slicing, channels_last, compile_unet)
    return Engine.load(model, runtime, config=config, allow_pickle=allow_pickle, vae=vae)


ENGINE_OPTIONS = ("model", "config", "allow_pickle", "device", "dtype", "offload", "vae_tiling", "attention_slicing", "channels_last", "compile_unet", "vae")


def engine_options(ctx: typer.Context) -> dict:
    """The model-and-hardware options a subcommand was given, as load_engine takes them."""
    return {key: ctx.params[key] for key in ENGINE_OPTIONS if key in ctx.params}


def run_edit_command(ctx: typer.Context, task: str, **task_options) -> None:
    """img2img and inpaint share everything but their task options: build the request, run, report."""
    from ..core.tasks.edit import EditRequest, run_edit
    from ..core.sampling.engine import Sampling
    from ..core.tasks.runner import replay as replay_run

    p = ctx.params
    shift = logsnr_shift(p["logsnr_shift"], p["input_scale"])
    v = apply_preset(ctx, task, {k: p[k] for k in ("steps", "cfg", "scheduler", "noise_schedule", "timestep_spacing", "strength", "batch_size")}, p["preset"])
    if bool(p["inputs"]) == bool(p["replay"]):
        raise UsageError("give INPUTS or --replay IMAGE (not both)")
    request = EditRequest(
        task=task,
        inputs=tuple(p["inputs"] or ()),
        sampling=Sampling(v["steps"], v["cfg"], p["width"], p["height"], v["scheduler"], v["noise_schedule"], v["timestep_spacing"], shift, p["cfg_cutoff"]),
        prompt=p["prompt"],
        negative_prompt=p["negative_prompt"],
        captions=p["captions"],
        strength=v["strength"],
        exact_steps=p["exact_steps"],
        seed=p["seed"],
        batch_size=v["batch_size"],
        recursive=p["recursive"],
        output=p["output"],
        overwrite=p["overwrite"],
        skip_existing=p["skip_existing"],
        shard=p["shard"],
        **task_options,
    )

    def work(engine, reporter):
        if p["replay"]:
            return replay_run(engine, p["replay"], p["output"], p["overwrite"], reporter, task=task)
        return run_edit(engine, request, reporter)

    run_and_report(engine_options(ctx), p["quiet"], p["json_lines"], work)


def run_and_report(engine_options: dict, quiet: bool, json_lines: bool, work) -> None:
    """Load the model, run `work(engine, reporter)`, print the summary, exit 1 if any image failed."""
    from .render import ConsoleReporter

    engine = load_engine(**engine_options)
    with ConsoleReporter(quiet, json_lines) as reporter:
        summary = work(engine, reporter)
    reporter.summary(summary)
    raise typer.Exit(summary.exit_code)


def read_table(path, flag: str) -> dict:
    """A TOML (.toml) or JSON file holding a table; one clear error otherwise."""
    import json
    import tomllib

    from ..core.errors import InputError

    kind = "TOML" if str(path).lower().endswith(".toml") else "JSON"
    try:
        text = path.read_text(encoding="utf-8")
        data = tomllib.loads(text) if kind == "TOML" else json.loads(text)
    except FileNotFoundError as exc:
        raise InputError(f"{flag} {path}: no such file") from exc
    except (OSError, ValueError) as exc:
        raise InputError(f"{flag} {path}: not valid {kind} ({exc})") from exc
    if not isinstance(data, dict):
        raise InputError(f"{flag} {path}: expected a table")
    return data


def logsnr_shift(shift: str, input_scale: float | None) -> float | str:
    """--logsnr-shift X (or auto), or --input-scale b meaning X = 2 log b; not both."""
    import math

    from ..core.errors import UsageError

    if input_scale is not None:
        if shift not in ("0", "0.0"):
            raise UsageError("give --logsnr-shift or --input-scale, not both (X = 2 log b)")
        if input_scale <= 0:
            raise UsageError(f"--input-scale {input_scale}: must be positive")
        return 2 * math.log(input_scale)
    if shift == "auto":
        return "auto"
    try:
        return float(shift)
    except ValueError:
        raise UsageError(f"--logsnr-shift {shift!r}: a number, or auto") from None
