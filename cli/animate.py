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
EXAMPLES = """Examples:

  scumble animate -p "0: a landscape of hills at sunset" -p "24: the sea at night" --frames 48 --zoom "0: (1.02)" -o dusk.mp4

  scumble animate --settings deforum_settings.txt -o out.mp4

  scumble animate --settings deforum_settings.txt --frames 10 --plan --csv > plan.csv

  scumble animate --preset orbit -p "0: a red circle on a blue background" -o orbit.gif

  scumble animate --settings deforum_settings.txt --preview -o out.mp4

  scumble animate ... --resume
"""


@opt.command("animate", skip=("prompts",))
def animate(
    ctx: typer.Context,
    flags: dict,
    prompt: Annotated[Optional[list[str]], typer.Option("--prompt", "-p", help="\"FRAME: text\"; repeat for more keyframes. Prompts carry forward; '--neg' inside a prompt starts its negative part.", rich_help_panel=FRAME, show_default=False)] = None,
    prompts_file: Annotated[Optional[Path], typer.Option("--prompts", help="A JSON or TOML map of frame -> prompt.", rich_help_panel=FRAME, show_default=False)] = None,
    settings_file: Annotated[Optional[Path], typer.Option("--settings", help="A TOML/JSON file with any of these options, a Deforum settings export, or a Parseq manifest.", rich_help_panel=FRAME, show_default=False)] = None,
    preset: opt.Preset = None,
    plan: Annotated[bool, typer.Option("--plan", help="Print every frame's prompt, seed and schedule values (a table; --json or --csv for machines) and stop: no model is loaded, no file written.", rich_help_panel=FRAME)] = False,
    csv_out: Annotated[bool, typer.Option("--csv", help="With --plan: the table as CSV.", rich_help_panel=FRAME)] = False,
    preview: Annotated[bool, typer.Option("--preview", help="Render the motion alone on a test pattern (or --init-image), with no model, in seconds: OUTPUT.preview.mp4 and a numbered contact sheet OUTPUT.preview.png.", rich_help_panel=FRAME)] = False,
    quiet: opt.Quiet = False,
    json_out: opt.Json = False,
) -> None:
    """Animate Deforum-style: each frame is the last one warped by keyframed motion and redrawn by img2img."""
    from ..core.animation.frames import plan_frames
    from ..core.errors import UsageError

    if csv_out and not plan:
        raise UsageError("--csv goes with --plan (a run reports with --json)")
    if plan and csv_out and json_out:
        raise UsageError("--plan prints one format: give --json or --csv, not both")
    model, settings, imported, random_seed = build_request(flags, prompt, prompts_file, settings_file, preset, resuming=not plan)
    plans = plan_frames(settings)  # every schedule's every frame checked before the model loads
    if not quiet:
        report_warnings(settings_file, imported, settings, random_seed)
    if plan:
        print_plan(settings, plans, "json" if json_out else "csv" if csv_out else "table")
        return
    if preview:
        render_preview(settings, plans, quiet)
        return
    from ..core.animation.run import animate as run_animation
    from ..core.animation.run import preflight
    from ..core.sampling.engine import Engine

    preflight(settings)  # an output already there is refused without waiting for the model
    with ConsoleReporter(quiet, False) as reporter:
        result = run_animation(Engine.from_options(model, reporter.notice), settings, reporter)
    render_result(result, quiet, json_out, settings.seed)


def render_preview(settings, plans, quiet: bool) -> None:
    """--preview: the motion alone on a test pattern, as a video and a contact sheet; no model."""
    from ..core.animation import preview as motion_preview

    if settings.animation_mode == "3D" and settings.depth_model != "none" and not quiet:
        print("preview: the camera moves through flat depth (--depth-model runs only in a real run)", file=sys.stderr)
    video, sheet = motion_preview.render(settings, plans, settings.contact_sheet)
    print(f"wrote {video} and {sheet} ({len(plans)} frames, motion only)", file=sys.stderr)


def build_request(flags: dict, prompt, prompts_file, settings_file, preset, resuming: bool):
    """(ModelOptions, AnimationSettings, the Deforum keys ignored, how the seed was chosen) from every layer."""
    from dataclasses import replace

    from ..core.request.build import animation_request

    settings_layers, imported = settings_file_layers(settings_file, flags)
    prompts = read_prompts_file(prompts_file) if prompts_file else parse_prompt_flags(prompt) if prompt else None
    request_layers = layers("animate", preset, flags | ({"prompts": prompts} if prompts else {}), settings_layers)
    model, settings = animation_request(request_layers)
    random_seed = "random" if seed_is_random(request_layers) else None
    recorded = recorded_seed(settings) if random_seed and settings.resume and resuming else None
    if recorded is not None:  # the interrupted run drew its seed; continuing it means keeping that seed
        settings, random_seed = replace(settings, seed=recorded), "recorded"
    return model, settings, imported, random_seed


def report_warnings(settings_file, imported, settings, random_seed) -> None:
    from ..core.animation.frames import keyframes_left_out, schedules_in_use
    from ..core.request import parseq

    report_import(settings_file, imported)
    manifest = imported if isinstance(imported, parseq.ParseqImport) else getattr(imported, "parseq", None)
    if (idle := parseq.idle_fields(manifest, schedules_in_use(settings))):
        warning_line(f"{settings_file}: {idle}")
    for line in keyframes_left_out(settings):
        warning_line(line)
    if random_seed == "recorded":
        print(f"seed {settings.seed} (the random seed the interrupted run drew)", file=sys.stderr)
    elif random_seed:
        print(f"seed {settings.seed} (random; --seed {settings.seed} makes this again)", file=sys.stderr)


def seed_is_random(request_layers) -> bool:
    """Whether the topmost layer that names a seed asks for a random one (-1), as the request then drew it."""
    from ..core.request.options import option

    kind = option("animate", "seed").kind
    for layer in reversed(request_layers):
        if "seed" in layer.values:
            return kind.convert(layer.values["seed"]) is None
    return False


def recorded_seed(settings) -> int | None:
    """The seed in the settings record of the run --resume continues; None when there is none to read (the run says why)."""
    import json

    from ..core.animation.run import RECORD, frames_folder

    try:
        record = json.loads((frames_folder(settings)[0] / RECORD).read_bytes())
    except (OSError, ValueError):
        return None
    seed = record.get("seed") if isinstance(record, dict) else None
    return seed if isinstance(seed, int) and not isinstance(seed, bool) and 0 <= seed < 2**32 else None


def report_import(settings_file: Path | None, imported) -> None:
    """A Deforum file's ignored features (or a Parseq manifest's unused fields), one line each; with --debug also every Deforum key scumble does not read, with its value."""
    import os

    if imported is None:
        return
    for line in imported.warnings:
        warning_line(f"{settings_file}: {line}")
    if os.environ.get("SCUMBLE_DEBUG", "") not in ("", "0"):  # a line each: ~200 keys would overrun one line's limit
        for key, value in imported.ignored:
            warning_line(f"{settings_file}: Deforum key not read: {key} = {value}")


def print_plan(settings, plans, form: str) -> None:
    import csv
    import json

    from ..core.animation.frames import plan_table
    from .render import printable

    columns, rows = plan_table(settings, plans)
    if form == "json":
        print(json.dumps([dict(zip(columns, row)) for row in rows]))
        return
    if form == "csv":
        writer = csv.writer(sys.stdout, lineterminator="\n")
        writer.writerow(columns)
        writer.writerows([["true" if v is True else "false" if v is False else v for v in row] for row in rows])
        return

    def cell(value, width: int = 28) -> str:
        if isinstance(value, bool):
            return "key" if value else ""
        if isinstance(value, float):
            return f"{value:.5g}"
        text = printable(str(value))
        return text if len(text) <= width else text[: width - 1] + "…"

    table = [columns] + [[cell(v) for v in row] for row in rows]
    widths = [max(len(r[i]) for r in table) for i in range(len(columns))]
    for r in table:
        print("  ".join(c.ljust(w) if i in (2, 3) else c.rjust(w) for i, (c, w) in enumerate(zip(r, widths))).rstrip())


def render_result(result, quiet: bool, json_out: bool, seed: int) -> None:
    import json

    if json_out:
        print(json.dumps({"video": result.video, "frames_dir": result.frames_dir, "frames": result.frames, "seed": seed, "resumed_from": result.resumed_from, "seconds": round(result.seconds, 2), "interrupted": result.interrupted}))
    if result.interrupted:
        print(f"interrupted: {result.frames} frames kept{' and ' + result.video + ' plays them' if result.video else ''}; continue with --resume", file=sys.stderr)
        raise typer.Exit(130)
    if not quiet:
        where = result.video or result.frames_dir
        print(f"wrote {where} ({result.frames} frames, seed {seed}{', resumed at frame ' + str(result.resumed_from) if result.resumed_from else ''}) in {result.seconds:.1f}s", file=sys.stderr)


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


def settings_file_layers(path: Path | None, flags: dict):
    """Our own TOML/JSON settings, a Deforum export or a Parseq manifest, mapped to our names; the import says what is left out.

    A Deforum file's embedded Parseq manifest is a layer above the file's own values, as Deforum lets it
    override them. --frames is passed in because frames past the run are never read.
    """
    from ..core.animation import deforum
    from ..core.errors import UsageError
    from ..core.request import parseq
    from ..core.request.build import Layer
    from ..core.request.files import read_table

    if path is None:
        return [], None
    data = read_table(path, "--settings")
    frames = _frames_flag(flags)
    if parseq.is_parseq(data):
        try:
            imported = parseq.from_manifest(data, frames=frames)
        except UsageError as exc:
            raise UsageError(f"--settings {path} (Parseq): {exc}") from None
        return [Layer(f"--settings {path} (Parseq)", imported.values)], imported
    if deforum.is_deforum(data):
        try:
            imported = deforum.from_deforum(data)
            manifest = parseq.from_deforum(data, frames)
        except UsageError as exc:
            raise UsageError(f"--settings {path} (Deforum): {exc}") from None
        _drop_refused(imported)
        if manifest is None:
            return [Layer(f"--settings {path} (Deforum)", imported.values)], imported
        imported.warnings += manifest.warnings
        imported.parseq = manifest
        return [Layer(f"--settings {path} (Deforum)", imported.values), Layer(f"--settings {path} (Parseq)", manifest.values)], imported
    return [Layer(f"--settings {path}", data)], None


def _frames_flag(flags: dict) -> int | None:
    """--frames as typed, when it is valid (the request builder refuses it otherwise, with the flag's message)."""
    from ..core.request.options import option

    if "frames" not in flags:
        return None
    try:
        return option("animate", "frames").kind.convert(flags["frames"])
    except ValueError:
        return None


def _drop_refused(imported) -> None:
    """A schedule of a feature the file switches off is never read (by Deforum or by us): one its option refuses is dropped, not an error."""
    from ..core.errors import UsageError
    from ..core.request.options import options_for

    table = options_for("animate")
    for name in imported.unused:
        try:
            table[name].kind.convert(imported.values[name])
        except (UsageError, ValueError):
            del imported.values[name]


animate.__doc__ += "\n\n" + EXAMPLES
