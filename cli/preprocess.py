"""scumble preprocess: parse, run one preprocessor over the inputs, render."""

from __future__ import annotations

from typing import Annotated

import typer

from . import options as opt


def _complete_type(incomplete: str) -> list[str]:
    from ..core.images.control_types import TYPES

    return [name for name in TYPES if name.startswith(incomplete)]


@opt.command("preprocess")
def preprocess(
    ctx: typer.Context,
    flags: dict,
    kind: Annotated[str, typer.Argument(metavar="TYPE", help="canny, scribble, lineart, softedge, tile, shuffle, depth (with --depth-model), openpose (with --pose-model) or none.", autocompletion=_complete_type, show_default=False)],
    inputs: opt.Inputs = None,
    quiet: opt.Quiet = False,
) -> None:
    """Make ControlNet control images from images: one preprocessor, files or folders in, PNGs out (no model, but depth's and openpose's).

    Examples:

      scumble preprocess canny photo.png -o edges.png

      scumble preprocess scribble sketches/ -o scribbles/ --recursive

      scumble preprocess shuffle photo.png --seed 3 -o shuffled.png

      scumble preprocess depth photo.png --depth-model ./depth-anything-small -o depth.png
    """
    from ..core.errors import UsageError
    from ..core.images.control import Settings
    from ..core.request.build import FLAGS, Layer, merge
    from ..core.tasks import preprocess as task
    from .render import files_summary

    if not inputs:
        raise UsageError("give INPUTS: image files, folders, globs, or - for standard input")
    values, _ = merge("preprocess", [Layer(FLAGS, flags)])
    if values["canny_low"] > values["canny_high"]:
        raise UsageError(f"--canny-low {values['canny_low']} must be at most --canny-high {values['canny_high']}")
    settings = Settings(values["canny_low"], values["canny_high"], values["seed"])
    summary = task.run(kind, inputs, values["output"], values["overwrite"], values["recursive"], settings, {"depth_model": values["depth_model"], "pose_model": values["pose_model"]})
    raise typer.Exit(files_summary(summary, "control image", quiet))
