"""scumble inpaint: parse, call the core, render."""

from __future__ import annotations

from typing import Annotated, Optional

import typer

from . import options as opt
from .common import run_edit_command

MASK_PANEL = "Mask"
Strength = Annotated[float, typer.Option("--strength", help="How much of the masked area to redo, 0..1 (1: from pure noise).", rich_help_panel=opt.SAMPLING_PANEL)]


@opt.with_options(opt.EDIT_OPTIONS, opt.SAMPLING_OPTIONS, opt.OUTPUT_OPTIONS, opt.MODEL_OPTIONS)
def inpaint(
    ctx: typer.Context,
    mask: Annotated[Optional[str], typer.Option("--mask", help="White = repaint. One file for all images, or a folder matched by file stem.", rich_help_panel=MASK_PANEL)] = None,
    mask_blur: Annotated[float, typer.Option("--mask-blur", help="Feather the mask by this many pixels (A1111's Gaussian).", rich_help_panel=MASK_PANEL)] = 4.0,
    invert_mask: Annotated[bool, typer.Option("--invert-mask", help="Repaint the black part instead.", rich_help_panel=MASK_PANEL)] = False,
    fill: Annotated[str, typer.Option("--fill", help="What the masked area starts from: original, fill (colours from around it), noise or nothing.", rich_help_panel=MASK_PANEL)] = "original",
    only_masked: Annotated[bool, typer.Option("--only-masked", help="Generate only the mask's box (plus --padding) at full resolution, then paste it back.", rich_help_panel=MASK_PANEL)] = False,
    padding: Annotated[int, typer.Option("--padding", help="Pixels around the mask's box for --only-masked.", rich_help_panel=MASK_PANEL)] = 32,
    strict: Annotated[bool, typer.Option("--strict", help="Refuse a mask whose size differs from its image instead of resizing it.", rich_help_panel=MASK_PANEL)] = False,
    strength: Strength = 1.0,
) -> None:
    """Repaint the white part of a mask; everything outside it comes back untouched."""
    run_edit_command(ctx, "inpaint", mask=mask, mask_blur=mask_blur, invert_mask=invert_mask, fill=fill, only_masked=only_masked, padding=padding, strict=strict)
