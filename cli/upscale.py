"""scumble upscale: parse, make each input larger, render."""

from __future__ import annotations

import typer

from . import options as opt


@opt.command("upscale")
def upscale(ctx: typer.Context, flags: dict, inputs: opt.Inputs = None, quiet: opt.Quiet = False) -> None:
    """Make pictures larger, with Lanczos or an upscaler network, tile by tile: files, folders or frame folders in, PNGs out.

    Examples:

      scumble upscale picture.png --scale 2 -o big.png

      scumble upscale frames/ --upscaler ~/models/RealESRGAN_x4plus.safetensors --scale 4 --tile 256 -o big-frames/

      scumble upscale outputs/ -r --scale 1.5 -o large/
    """
    from ..core.errors import UsageError
    from ..core.loading.device import resolve_device
    from ..core.request.build import FLAGS, Layer, merge
    from ..core.tasks import upscale as task
    from .render import files_summary

    if not inputs:
        raise UsageError("give INPUTS: image files, folders, globs, or - for standard input")
    values, _ = merge("upscale", [Layer(FLAGS, flags)])
    device = str(resolve_device(values["device"])) if values["upscaler"].lower() != "lanczos" else "cpu"
    summary = task.run(inputs, values["output"], values["scale"], values["upscaler"], values["tile"], values["overwrite"], values["recursive"], values["allow_pickle"], device)
    raise typer.Exit(files_summary(summary, "picture", quiet))
