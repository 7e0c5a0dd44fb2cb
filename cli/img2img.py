"""scumble img2img: parse, call the core, render."""

from __future__ import annotations

from typing import Annotated

import typer

from . import options as opt
from .common import run_edit_command

Strength = Annotated[float, typer.Option("--strength", help="How much to change, 0..1: the input is noised to this fraction of the schedule and denoised from there.", rich_help_panel=opt.SAMPLING_PANEL)]


def img2img(
    ctx: typer.Context,
    inputs: opt.Inputs = None,
    prompt: opt.Prompt = None,
    negative_prompt: opt.NegativePrompt = "",
    captions: opt.Captions = False,
    strength: Strength = 0.75,
    exact_steps: opt.ExactSteps = False,
    steps: opt.Steps = 20,
    cfg: opt.Cfg = 7.0,
    seed: opt.Seed = None,
    width: opt.Width = 0,
    height: opt.Height = 0,
    resize: opt.Resize = "just",
    scheduler: opt.Scheduler = "",
    noise_schedule: opt.NoiseSchedule = "default",
    timestep_spacing: opt.TimestepSpacing = "",
    logsnr_shift: opt.LogsnrShift = "0",
    input_scale: opt.InputScale = None,
    cfg_cutoff: opt.CfgCutoff = 0.0,
    batch_size: opt.BatchSize = 1,
    recursive: opt.Recursive = False,
    preset: opt.Preset = None,
    replay: opt.Replay = None,
    output: opt.Output = None,
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
    """Redraw images: noise each input to --strength and denoise it toward the prompt (files, folders, globs or -)."""
    run_edit_command(ctx, "img2img", resize=resize)
