"""scumble txt2img: parse, call the core, render."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated, Optional

import typer

from . import options as opt
from .common import apply_preset, engine_options, run_and_report
from .common import logsnr_shift as resolve_shift

def txt2img(
    ctx: typer.Context,
    prompt: Annotated[Optional[str], typer.Argument(help="What to draw. Omit when using --prompt-file or --replay.", show_default=False)] = None,
    negative_prompt: opt.NegativePrompt = "",
    prompt_file: Annotated[Optional[str], typer.Option("--prompt-file", help="One prompt a line; - reads standard input.", rich_help_panel=opt.SAMPLING_PANEL)] = None,
    replay: opt.Replay = None,
    steps: opt.Steps = 20,
    cfg: opt.Cfg = 7.0,
    seed: opt.Seed = None,
    width: opt.Width = 0,
    height: opt.Height = 0,
    scheduler: opt.Scheduler = "",
    noise_schedule: opt.NoiseSchedule = "default",
    timestep_spacing: opt.TimestepSpacing = "",
    logsnr_shift: opt.LogsnrShift = "0",
    input_scale: opt.InputScale = None,
    cfg_cutoff: opt.CfgCutoff = 0.0,
    batch_size: opt.BatchSize = 1,
    count: Annotated[int, typer.Option("--count", min=1, help="Images per prompt.", rich_help_panel=opt.SAMPLING_PANEL)] = 1,
    preset: opt.Preset = None,
    output: opt.Output = None,
    name: opt.NamePattern = "{index:05}-{seed}-{prompt}",
    overwrite: opt.Overwrite = False,
    skip_existing: opt.SkipExisting = False,
    shard: opt.Shard = None,
    quiet: opt.Quiet = False,
    json_lines: opt.Json = False,
    model: opt.Model = "scumble-mini",
    config: opt.Config = None,
    allow_pickle: opt.AllowPickle = False,
    device: opt.Device = "auto",
    dtype: opt.Dtype = "auto",
    offload: opt.Offload = "none",
    vae_tiling: opt.VaeTiling = False,
    attention_slicing: opt.AttentionSlicing = False,
    channels_last: opt.ChannelsLast = False,
    compile_unet: opt.Compile = False,
    vae: opt.Vae = "",
) -> None:
    """Generate images from a text prompt."""
    from scumble.pipelines import runs
    from scumble.pipelines.engine import Sampling
    from scumble.pipelines.errors import UsageError

    shift = resolve_shift(logsnr_shift, input_scale)
    v = apply_preset(ctx, "txt2img", dict(steps=steps, cfg=cfg, scheduler=scheduler, noise_schedule=noise_schedule, timestep_spacing=timestep_spacing, width=width, height=height, batch_size=batch_size, negative_prompt=negative_prompt), preset)
    if json_lines and output == "-":
        raise UsageError("--json and -o - both want standard output; choose one")
    sources = [x for x in (prompt is not None and "PROMPT", prompt_file and "--prompt-file", replay and "--replay") if x]
    if len(sources) != 1:
        raise UsageError("give exactly one of PROMPT, --prompt-file or --replay" + (f" (got {' and '.join(sources)})" if sources else ""))

    def work(engine, reporter):
        if replay:
            return runs.replay(engine, replay, output, overwrite, reporter)
        prompts = [prompt] if prompt is not None else read_prompt_file(prompt_file)
        request = runs.Txt2ImgRequest(
            prompts=tuple((p, v["negative_prompt"]) for p in prompts),
            sampling=Sampling(v["steps"], v["cfg"], v["width"], v["height"], v["scheduler"], v["noise_schedule"], v["timestep_spacing"], shift, cfg_cutoff),
            count=count,
            seed=seed,
            batch_size=v["batch_size"],
            output=output,
            name_pattern=name,
            overwrite=overwrite,
            skip_existing=skip_existing,
            shard=shard,
        )
        return runs.run_txt2img(engine, request, reporter)

    run_and_report(engine_options(ctx), quiet, json_lines, work)


def read_prompt_file(path: str) -> list[str]:
    from scumble.pipelines.errors import InputError, UsageError

    try:
        text = sys.stdin.read() if path == "-" else Path(path).read_text(encoding="utf-8")
    except FileNotFoundError as exc:
        raise InputError(f"--prompt-file {path}: no such file") from exc
    except (OSError, UnicodeDecodeError) as exc:
        raise InputError(f"--prompt-file {path}: cannot read it ({exc})") from exc
    prompts = [line.strip() for line in text.splitlines() if line.strip() and not line.lstrip().startswith("#")]
    if not prompts:
        raise UsageError(f"--prompt-file {path}: holds no prompts (one a line; # starts a comment)")
    return prompts
