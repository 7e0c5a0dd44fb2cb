"""scumble animate: parse, build the request, run, render."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated, Optional

import typer

from . import options as opt
from .common import layers
from .render import ConsoleReporter, warning_line

FRAME = "Per frame"


@opt.command("animate", skip=("prompts",))
def animate(
    ctx: typer.Context,
    flags: dict,
    prompt: Annotated[Optional[list[str]], typer.Option("--prompt", "-p", help="\"FRAME: text\"; repeat for more keyframes. Prompts carry forward; '--neg' inside a prompt starts its negative part.", rich_help_panel=FRAME, show_default=False)] = None,
    prompts_file: Annotated[Optional[Path], typer.Option("--prompts", help="A JSON or TOML map of frame -> prompt.", rich_help_panel=FRAME, show_default=False)] = None,
    settings_file: Annotated[Optional[Path], typer.Option("--settings", help="A TOML/JSON file with any of these options, or a Deforum settings export.", rich_help_panel=FRAME, show_default=False)] = None,
    preset: opt.Preset = None,
    quiet: opt.Quiet = False,
    json_out: opt.Json = False,
) -> None:
    """Animate Deforum-style: each frame is the last one warped by keyframed motion and redrawn by img2img.

    Examples:

      scumble animate -p "0: a landscape of hills at sunset" -p "24: the sea at night" --frames 48 --zoom "0: (1.02)" -o dusk.mp4

      scumble animate --settings deforum_settings.txt -o out.mp4

      scumble animate --preset orbit -p "0: a red circle on a blue background" -o orbit.gif

      scumble animate ... --resume
    """
    from ..core.animation.run import animate as run_animation
    from ..core.request.build import animation_request
    from ..core.sampling.engine import Engine

    settings_layers, unsupported = settings_file_layers(settings_file)
    prompts = read_prompts_file(prompts_file) if prompts_file else parse_prompt_flags(prompt) if prompt else None
    model, settings = animation_request(layers("animate", preset, flags | ({"prompts": prompts} if prompts else {}), settings_layers))
    if unsupported and not quiet:
        warning_line(f"{settings_file}: Deforum settings not supported, ignored: {', '.join(unsupported)}")
    engine = Engine.from_options(model)
    with ConsoleReporter(quiet, False) as reporter:
        result = run_animation(engine, settings, reporter)
    render_result(result, quiet, json_out)


def render_result(result, quiet: bool, json_out: bool) -> None:
    import json

    if json_out:
        print(json.dumps({"video": result.video, "frames_dir": result.frames_dir, "frames": result.frames, "resumed_from": result.resumed_from, "seconds": round(result.seconds, 2), "interrupted": result.interrupted}))
    if result.interrupted:
        print(f"interrupted: {result.frames} frames kept{' and ' + result.video + ' plays them' if result.video else ''}; continue with --resume", file=sys.stderr)
        raise typer.Exit(130)
    if not quiet:
        where = result.video or result.frames_dir
        print(f"wrote {where} ({result.frames} frames{', resumed at frame ' + str(result.resumed_from) if result.resumed_from else ''}) in {result.seconds:.1f}s", file=sys.stderr)


def parse_prompt_flags(values: list[str]) -> dict[str, str]:
    from ..core.errors import UsageError

    prompts = {}
    for value in values:
        key, sep, text = value.partition(":")
        if not sep or not key.strip() or not text.strip():
            if len(values) == 1:  # a single plain prompt applies from frame 0
                return {"0": value}
            raise UsageError(f"--prompt {value[:60]!r}: expected \"FRAME: text\", e.g. \"0: a red circle\"")
        prompts[key.strip()] = text.strip()
    return prompts


def read_prompts_file(path: Path) -> dict:
    from ..core.request.files import read_table

    return read_table(path, "--prompts")


def settings_file_layers(path: Path | None):
    """Our own TOML/JSON settings, or a Deforum export (mapped to our names, its unsupported keys returned)."""
    from ..core.animation import deforum
    from ..core.errors import UsageError
    from ..core.request.build import Layer
    from ..core.request.files import read_table

    if path is None:
        return [], []
    data = read_table(path, "--settings")
    if deforum.is_deforum(data):
        try:
            values, unsupported = deforum.from_deforum(data)
        except UsageError as exc:
            raise UsageError(f"--settings {path} (Deforum): {exc}") from None
        return [Layer(f"--settings {path} (Deforum)", values)], unsupported
    return [Layer(f"--settings {path}", data)], []
