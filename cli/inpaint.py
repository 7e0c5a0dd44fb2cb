"""scumble inpaint: parse, call the core, render."""

from __future__ import annotations

from typing import Annotated, Optional

import typer

from . import options as opt
from .common import run_edit_command

MASK_PANEL = "Mask"
Strength = Annotated[float, typer.Option("--strength", help="How much of the masked area to redo, 0..1 (1: from pure noise).", rich_help_panel=opt.SAMPLING_PANEL)]


def inpaint(
    ctx: typer.Context,
    inputs: opt.Inputs = None,
    mask: Annotated[Optional[str], typer.Option("--mask", help="White = repaint. One file for all images, or a folder matched by file stem.", rich_help_panel=MASK_PANEL)] = None,
    prompt: opt.Prompt = None,
    negative_prompt: opt.NegativePrompt = "",
    captions: opt.Captions = False,
    mask_blur: Annotated[float, typer.Option("--mask-blur", help="Feather the mask by this many pixels (A1111's Gaussian).", rich_help_panel=MASK_PANEL)] = 4.0,
    invert_mask: Annotated[bool, typer.Option("--invert-mask", help="Repaint the black part instead.", rich_help_panel=MASK_PANEL)] = False,
    fill: Annotated[str, typer.Option("--fill", help="What the masked area starts from: original, fill (colours from around it), noise or nothing.", rich_help_panel=MASK_PANEL)] = "original",
    only_masked: Annotated[bool, typer.Option("--only-masked", help="Generate only the mask's box (plus --padding) at full resolution, then paste it back.", rich_help_panel=MASK_PANEL)] = False,
    padding: Annotated[int, typer.Option("--padding", help="Pixels around the mask's box for --only-masked.", rich_help_panel=MASK_PANEL)] = 32,
    strict: Annotated[bool, typer.Option("--strict", help="Refuse a mask whose size differs from its image instead of resizing it.", rich_help_panel=MASK_PANEL)] = False,
    strength: Strength = 1.0,
    exact_steps: opt.ExactSteps = False,
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
    """Repaint the white part of a mask; everything outside it comes back untouched."""
    run_edit_command(ctx, "inpaint", mask=mask, mask_blur=mask_blur, invert_mask=invert_mask, fill=fill, only_masked=only_masked, padding=padding, strict=strict)
