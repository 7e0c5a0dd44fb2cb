"""scumble animate: parse, call the core, render."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated, Optional

import typer

from . import options as opt
from .common import ENGINE_OPTIONS, engine_options, load_engine, read_table
from .render import ConsoleReporter, warning_line

MOTION = "Motion (keyframe schedules, e.g. \"0: (1.0), 30: (1.05)\")"
FRAME = "Per frame"
VIDEO = "Video"


def _schedule(flag: str, text: str, panel: str = MOTION):
    return Annotated[Optional[str], typer.Option(flag, help=text, rich_help_panel=panel, show_default=False)]


@opt.with_options(opt.MODEL_OPTIONS)
def animate(
    ctx: typer.Context,
    prompt: Annotated[Optional[list[str]], typer.Option("--prompt", "-p", help="\"FRAME: text\"; repeat for more keyframes. Prompts carry forward; '--neg' inside a prompt starts its negative part.", rich_help_panel=FRAME, show_default=False)] = None,
    prompts_file: Annotated[Optional[Path], typer.Option("--prompts", help="A JSON or TOML map of frame -> prompt.", rich_help_panel=FRAME, show_default=False)] = None,
    settings_file: Annotated[Optional[Path], typer.Option("--settings", help="A TOML/JSON settings file with any of these options, or a Deforum settings export.", rich_help_panel=FRAME, show_default=False)] = None,
    negative_prompt: Annotated[Optional[str], typer.Option("--negative-prompt", "-n", help="Applies to every frame.", rich_help_panel=FRAME, show_default=False)] = None,
    frames: Annotated[Optional[int], typer.Option("--frames", help="Number of frames [default: 24].", rich_help_panel=FRAME, show_default=False)] = None,
    fps: Annotated[Optional[float], typer.Option("--fps", help="Frames per second [default: 12].", rich_help_panel=VIDEO, show_default=False)] = None,
    zoom: _schedule("--zoom", "Scale per frame [Deforum's default].") = None,
    angle: _schedule("--angle", "Rotation in degrees per frame [0].") = None,
    translation_x: _schedule("--translation-x", "Pixels per frame, right [0].") = None,
    translation_y: _schedule("--translation-y", "Pixels per frame, down [0].") = None,
    transform_center_x: _schedule("--transform-center-x", "Centre of rotation and zoom, 0..1 of the width [0.5].") = None,
    transform_center_y: _schedule("--transform-center-y", "Centre of rotation and zoom, 0..1 of the height [0.5].") = None,
    perspective_flip: Annotated[Optional[bool], typer.Option("--perspective-flip/--no-perspective-flip", help="Apply the perspective_flip_* schedules.", rich_help_panel=MOTION, show_default=False)] = None,
    perspective_flip_theta: _schedule("--perspective-flip-theta", "Tilt about the x axis, degrees [0].") = None,
    perspective_flip_phi: _schedule("--perspective-flip-phi", "Tilt about the y axis, degrees [0].") = None,
    perspective_flip_gamma: _schedule("--perspective-flip-gamma", "Turn about the z axis, degrees [0].") = None,
    perspective_flip_fv: _schedule("--perspective-flip-fv", "Field of view, degrees [53].") = None,
    border: Annotated[Optional[str], typer.Option("--border", help="replicate, wrap or reflect: what fills the edges a warp uncovers.", rich_help_panel=MOTION, show_default=False)] = None,
    strength: _schedule("--strength", "Denoising per frame, 0..1, as in img2img [0.45]. Deforum's 'strength' means the opposite (the amount kept): 0.65 there is 0.35 here.", FRAME) = None,
    noise: _schedule("--noise", "Noise blended in before each frame's img2img [0.065].", FRAME) = None,
    noise_type: Annotated[Optional[str], typer.Option("--noise-type", help="perlin (Deforum's default) or uniform.", rich_help_panel=FRAME, show_default=False)] = None,
    perlin_octaves: Annotated[Optional[int], typer.Option("--perlin-octaves", help="[4]", rich_help_panel=FRAME, show_default=False)] = None,
    perlin_persistence: Annotated[Optional[float], typer.Option("--perlin-persistence", help="[0.5]", rich_help_panel=FRAME, show_default=False)] = None,
    contrast: _schedule("--contrast", "Contrast applied before img2img [1.0].", FRAME) = None,
    amount: _schedule("--amount", "Anti-blur (unsharp mask) amount [0.1].", FRAME) = None,
    kernel: _schedule("--kernel", "Anti-blur kernel size [5].", FRAME) = None,
    sigma: _schedule("--sigma", "Anti-blur sigma [1.0].", FRAME) = None,
    threshold: _schedule("--threshold", "Anti-blur threshold [0].", FRAME) = None,
    cfg: _schedule("--cfg", "Guidance scale per frame [7].", FRAME) = None,
    steps: _schedule("--steps", "Steps per frame [20]; every frame denoises at least one.", FRAME) = None,
    color_coherence: Annotated[Optional[str], typer.Option("--color-coherence", help="none, lab, hsv or rgb: match each frame's colours to the first [lab].", rich_help_panel=FRAME, show_default=False)] = None,
    seed: opt.Seed = None,
    seed_behavior: Annotated[Optional[str], typer.Option("--seed-behavior", help="iter, fixed, random, ladder, alternate or schedule [iter].", rich_help_panel=FRAME, show_default=False)] = None,
    seed_schedule: _schedule("--seed-schedule", "With --seed-behavior schedule; -1 means a (reproducible) random seed.", FRAME) = None,
    cadence: Annotated[Optional[int], typer.Option("--cadence", help="Diffuse every Nth frame; warp and blend the ones between [1].", rich_help_panel=FRAME, show_default=False)] = None,
    init_image: Annotated[Optional[str], typer.Option("--init-image", help="Start from this image instead of txt2img.", rich_help_panel=FRAME, show_default=False)] = None,
    video_input: Annotated[Optional[str], typer.Option("--video-input", help="Run each frame of this video through img2img (vid2vid).", rich_help_panel=FRAME, show_default=False)] = None,
    extract_nth_frame: Annotated[Optional[int], typer.Option("--extract-nth-frame", help="With --video-input: use every nth frame [1].", rich_help_panel=FRAME, show_default=False)] = None,
    width: opt.Width = 0,
    height: opt.Height = 0,
    scheduler: opt.Scheduler = "",
    noise_schedule: opt.NoiseSchedule = "default",
    preset: opt.Preset = None,
    output: Annotated[str, typer.Option("--output", "-o", help=".mp4 (H.264), .webm (VP9), .gif, or a folder of PNG frames.", rich_help_panel=VIDEO)] = "animation.mp4",
    crf: Annotated[Optional[int], typer.Option("--crf", help="Quality for mp4/webm: 0 lossless .. 51 worst [18].", rich_help_panel=VIDEO, show_default=False)] = None,
    keep_frames: Annotated[bool, typer.Option("--keep-frames/--no-keep-frames", help="Keep the numbered PNG frames and settings beside the video.", rich_help_panel=VIDEO)] = True,
    contact_sheet: Annotated[int, typer.Option("--contact-sheet", help="Also write a contact sheet of every Nth frame (0: none).", rich_help_panel=VIDEO)] = 0,
    resume: Annotated[bool, typer.Option("--resume", help="Continue an interrupted run from its last complete frame.", rich_help_panel=VIDEO)] = False,
    overwrite: opt.Overwrite = False,
    quiet: opt.Quiet = False,
    json_out: opt.Json = False,
) -> None:
    """Animate Deforum-style: each frame is the last one warped by keyframed motion and redrawn by img2img."""
    import json

    from ..core.animation.run import animate as run_animation
    from ..core.animation.settings import settings_from_mapping
    from ..core.errors import UsageError

    data: dict = {}
    warnings: list[str] = []
    if settings_file:
        data, warnings = load_settings_file(settings_file)
    if preset:
        from dataclasses import fields

        from .. import presets
        from ..core.animation.settings import AnimationSettings

        known = {f.name for f in fields(AnimationSettings)}
        specific = presets.load(preset).get("animate", {})
        data |= {k: v for k, v in presets.for_command(preset, "animate").items() if k in known or k in specific}
    flags = {k: v for k, v in ctx.params.items() if _explicit(ctx, k) and k not in ("prompt", "prompts_file", "settings_file", "preset", "quiet", "json_out", *ENGINE_OPTIONS)}
    data |= {k: v for k, v in flags.items() if v is not None}
    prompts = dict(data.get("prompts", {}))
    if prompts_file:
        prompts = read_prompts_file(prompts_file)
    if prompt:
        prompts = parse_prompt_flags(prompt)
    if prompts:
        data["prompts"] = prompts
    settings, unknown = settings_from_mapping(data)
    if unknown:
        raise UsageError(f"--settings {settings_file}: unknown options {', '.join(unknown)}")
    if warnings and not quiet:
        warning_line(f"{settings_file}: Deforum settings not supported, ignored: {', '.join(warnings)}")
    engine = load_engine(**engine_options(ctx))
    with ConsoleReporter(quiet, False) as reporter:
        result = run_animation(engine, settings, reporter)
    if json_out:
        print(json.dumps({"video": result.video, "frames_dir": result.frames_dir, "frames": result.frames, "resumed_from": result.resumed_from, "seconds": round(result.seconds, 2), "interrupted": result.interrupted}))
    if result.interrupted:
        print(f"interrupted: {result.frames} frames kept{' and ' + result.video + ' plays them' if result.video else ''}; continue with --resume", file=sys.stderr)
        raise typer.Exit(130)
    if not quiet:
        where = result.video or result.frames_dir
        print(f"wrote {where} ({result.frames} frames{', resumed at frame ' + str(result.resumed_from) if result.resumed_from else ''}) in {result.seconds:.1f}s", file=sys.stderr)


def _explicit(ctx: typer.Context, name: str) -> bool:
    source = ctx.get_parameter_source(name)
    return source is not None and source.name not in ("DEFAULT", "DEFAULT_MAP")


def parse_prompt_flags(values: list[str]) -> dict[str, str]:
    from ..core.errors import UsageError

    prompts = {}
    for value in values:
        key, sep, text = value.partition(":")
        if not sep or not key.strip() or not text.strip():
            if len(values) == 1:  # a single plain prompt applies from frame 0
                return {"0": value}
            raise UsageError(f"--prompt {value!r}: expected \"FRAME: text\", e.g. \"0: a red circle\"")
        prompts[key.strip()] = text.strip()
    return prompts


def read_prompts_file(path: Path) -> dict[str, str]:
    from ..core.errors import InputError

    data = read_table(path, "--prompts")
    if not data:
        raise InputError(f"--prompts {path}: expected a map of frame -> prompt")
    return {str(k): str(v) for k, v in data.items()}


def load_settings_file(path: Path) -> tuple[dict, list[str]]:
    """Our own TOML/JSON settings, or a Deforum export (mapped, with its unsupported keys returned)."""
    from dataclasses import asdict

    from ..core.animation import deforum

    data = read_table(path, "--settings")
    if deforum.is_deforum(data):
        settings, unsupported = deforum.from_deforum(data)
        return {k: v for k, v in asdict(settings).items() if k not in ("output", "resume", "overwrite", "keep_frames", "contact_sheet")}, unsupported
    return data, []
