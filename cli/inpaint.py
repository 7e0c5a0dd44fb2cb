"""scumble inpaint: parse, build the request, run, render."""

from __future__ import annotations

import typer

from . import options as opt
from .common import image_request, run_images


@opt.command("inpaint")
def inpaint(ctx: typer.Context, flags: dict, inputs: opt.Inputs = None, replay: opt.Replay = None, preset: opt.Preset = None, quiet: opt.Quiet = False, json_lines: opt.Json = False) -> None:
    """Repaint the white part of a mask; everything outside it comes back untouched.

    Examples:

      scumble inpaint photo.png --mask mask.png -p "a yellow star" -o fixed.png

      scumble inpaint photos/ --mask masks/ -p "a yellow star" -o fixed/

      scumble inpaint photo.png --mask mask.png --only-masked --padding 32 --fill fill -p "a moon"
    """
    if bool(inputs) == bool(replay):
        from ..core.errors import UsageError

        raise UsageError("give INPUTS or --replay IMAGE (not both)")
    run_images(image_request("inpaint", flags, preset, replay, inputs=inputs or ()), quiet, json_lines)
