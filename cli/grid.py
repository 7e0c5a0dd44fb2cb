"""scumble grid: parse the axes, build one request per cell, run them on one model, render."""

from __future__ import annotations

import sys
from typing import Annotated

import typer

from . import options as opt
from .common import layers

PANEL = "Grid"
X_HELP = "Columns: OPTION=V1,V2,... with any sampling option (steps, cfg, scheduler, seed, width, noise_schedule, ...); 1-4 is a range of whole numbers; prompt=S/R1,R2 (or S,R1,R2) replaces S in the prompt, its first cell unchanged. Quote a value holding a comma: \"a,b\"."
# Each cell is one image at a path the grid chooses, so these txt2img options have no meaning here.
SKIP = ("output", "count", "batch_size", "name_pattern", "shard", "skip_existing")

EXAMPLES = """Examples:

  scumble grid "a red circle" --x scheduler=euler,ddim,dpmpp_2m,unipc --y steps=10,20,30 -o grid.png

  scumble grid "a red fox in the snow" --x prompt=red,blue,green --y seed=1-4 --z cfg=5,7 -o fox.png

  scumble grid "a cat" --x noise_schedule='default,karras,"cosine:start=0.2,end=1"' --seed 3 -o schedules.png
"""


def Axis(letter: str, text: str):
    """The Typer option of one axis (a function, because Typer reads the annotation, not a default)."""
    return Annotated[str | None, typer.Option(f"--{letter}", help=text, rich_help_panel=PANEL, show_default=False)]


@opt.command("txt2img", skip=SKIP)
def grid(
    ctx: typer.Context,
    flags: dict,
    prompt: Annotated[str, typer.Argument(help="What to draw; every cell starts from it.", show_default=False)],
    x: Axis("x", X_HELP) = None,
    y: Axis("y", "Rows, written as --x.") = None,
    z: Axis("z", "One sheet per value, stacked downwards, each with its label; written as --x.") = None,
    output: Annotated[str, typer.Option("--output", "-o", help="The grid's .png; its cells go in NAME.cells/ beside it.", rich_help_panel=PANEL)] = "grid.png",
    preset: opt.Preset = None,
    quiet: opt.Quiet = False,
    json_out: Annotated[bool, typer.Option("--json", help="Print one JSON line: the grid, its cells folder, each cell's path, axis values and seconds.", rich_help_panel=PANEL)] = False,
) -> None:
    """Compare settings side by side (A1111's X/Y/Z plot): one image per combination, on one sheet with labelled axes."""
    from ..core.sampling.engine import Engine
    from ..core.tasks import grid as grids
    from .render import ConsoleReporter

    plan = grids.plan(prompt, {"x": x, "y": y, "z": z}, layers("txt2img", preset, flags), output)
    with ConsoleReporter(quiet or json_out, False) as reporter:
        result = grids.run(Engine.from_options(plan.base.model, reporter.notice), plan, reporter)
    render(result, quiet, json_out)


def render(result, quiet: bool, json_out: bool) -> None:
    import json

    from ..core.tasks.grid import describe

    plan = result.plan
    if json_out:
        summary = describe(result)
        print(json.dumps({"grid": str(plan.path), "cells_dir": str(plan.cells_dir), "seed": summary["seed"], "axes": summary["axes"], "cells": summary["cells"], "seconds": round(result.seconds, 2)}))
    if not quiet:
        shape = " x ".join(str(len(a.values)) for a in plan.axes)
        print(f"wrote {plan.path} ({shape} = {len(result.cells)} cells in {plan.cells_dir}) in {result.seconds:.1f}s", file=sys.stderr)


grid.__doc__ += "\n\n" + EXAMPLES
