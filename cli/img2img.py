"""scumble img2img: parse, build the request, run, render."""

from __future__ import annotations

import typer

from . import options as opt
from .common import image_request, run_images


@opt.command("img2img")
def img2img(ctx: typer.Context, flags: dict, inputs: opt.Inputs = None, replay: opt.Replay = None, preset: opt.Preset = None, quiet: opt.Quiet = False, json_lines: opt.Json = False) -> None:
    """Redraw images: noise each input to --strength and denoise it toward the prompt (files, folders, globs or -).

    Examples:

      scumble img2img sketches/ -p "a red circle on a white background" --strength 0.6 -o finished/

      scumble img2img sketch.png --strength 0.5 --exact-steps --steps 20 -o clean.png

      cat sketch.png | scumble img2img - -p "a blue square" -o - > square.png
    """
    if bool(inputs) == bool(replay):
        from ..core.errors import UsageError

        raise UsageError("give INPUTS or --replay IMAGE (not both)")
    run_images(image_request("img2img", flags, preset, replay, inputs=inputs or ()), quiet, json_lines)
