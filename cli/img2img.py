"""scumble img2img: parse, call the core, render."""

from __future__ import annotations

from typing import Annotated

import typer

from . import options as opt
from .common import run_edit_command

Strength = Annotated[float, typer.Option("--strength", help="How much to change, 0..1: the input is noised to this fraction of the schedule and denoised from there.", rich_help_panel=opt.SAMPLING_PANEL)]


@opt.with_options(opt.EDIT_OPTIONS, opt.SAMPLING_OPTIONS, opt.OUTPUT_OPTIONS, opt.MODEL_OPTIONS)
def img2img(
    ctx: typer.Context,
    strength: Strength = 0.75,
    resize: opt.Resize = "just",
) -> None:
    """Redraw images: noise each input to --strength and denoise it toward the prompt (files, folders, globs or -)."""
    run_edit_command(ctx, "img2img", resize=resize)
