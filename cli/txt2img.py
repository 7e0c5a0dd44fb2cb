"""scumble txt2img: parse, build the request, run, render."""

from __future__ import annotations

from typing import Annotated, Optional

import typer

from . import options as opt
from .common import image_request, run_images

EXAMPLES = """Examples:

  scumble txt2img "a red circle on a blue background" --seed 1 -o circle.png

  scumble txt2img --prompt-file prompts.txt --count 4 -o out/

  scumble txt2img "a red circle" -o - > circle.png

  scumble txt2img --replay out/00000-42-a_red_circle.png -o again.png
"""


@opt.command("txt2img")
def txt2img(
    ctx: typer.Context,
    flags: dict,
    prompt: Annotated[Optional[str], typer.Argument(help="What to draw. Omit when using --prompt-file or --replay.", show_default=False)] = None,
    prompt_file: Annotated[Optional[str], typer.Option("--prompt-file", help="One prompt a line; - reads standard input.", rich_help_panel="Sampling", show_default=False)] = None,
    replay: opt.Replay = None,
    preset: opt.Preset = None,
    quiet: opt.Quiet = False,
    json_lines: opt.Json = False,
) -> None:
    """Generate images from a text prompt."""
    from ..core.errors import UsageError
    from ..core.request.files import read_prompt_file

    given = [name for name, value in (("PROMPT", prompt is not None), ("--prompt-file", prompt_file), ("--replay", replay)) if value]
    if len(given) != 1:
        raise UsageError("give exactly one of PROMPT, --prompt-file or --replay" + (f" (got {' and '.join(given)})" if given else ""))
    prompts = [prompt] if prompt is not None else read_prompt_file(prompt_file) if prompt_file else []
    request = image_request("txt2img", flags, preset, replay, prompts=prompts)
    run_images(request, quiet, json_lines)


txt2img.__doc__ += "\n\n" + EXAMPLES
