"""Reading a Parseq manifest (rewbs/sd-parseq's rendered output) into scumble's animation settings.

A manifest lists every frame with the value of each field it manages, the frame's prompt
(`deforum_prompt`, "positive --neg negative") and, for each field, its `_delta` (the change from the
last frame; for zoom, 1 plus it). It is read as Deforum's Parseq integration reads it, reimplemented
from its documented behaviour:

- the moving fields (zoom, angle, translations, rotations, perspective tilts) take their `_delta`,
  as Deforum's schedules are per-frame moves, unless the Deforum file turns `parseq_use_deltas` off;
- `scale` is the guidance scale, `strength` Deforum's strength (we store 1 minus it: ours is the
  amount denoised), the `antiblur_*` fields the anti-blur schedules, the rest go by name;
- seeds drive `--seed-behavior schedule`, each frame taking its seed's whole part;
- fps, cadence and the frame count come from the manifest unless `parseq_non_schedule_overrides`
  is off; a field the manifest does not manage keeps its value from the layers below.

Each managed field becomes a schedule with a keyframe wherever its values bend, so the run sees the
manifest's values exactly, and the request builder checks them frame by frame against the option's
limits like any schedule. Fields scumble does not render are named in one warning line.
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass, field
from itertools import pairwise
from typing import Any

from ..animation.keyframes import MAX_MAGNITUDE, ParsedSchedule
from ..errors import UsageError
from . import options as table
from .options import MAX_FRAMES, Int

# Per-frame moves: Deforum reads their `_delta` variant.
MOTION = {
    "angle": "angle", "zoom": "zoom", "translation_x": "translation_x", "translation_y": "translation_y", "translation_z": "translation_z",
    "rotation_3d_x": "rotation_3d_x", "rotation_3d_y": "rotation_3d_y", "rotation_3d_z": "rotation_3d_z",
    "perspective_flip_theta": "perspective_flip_theta", "perspective_flip_phi": "perspective_flip_phi", "perspective_flip_gamma": "perspective_flip_gamma",
}
# Fields read as they are: Parseq's name -> our option.
PLAIN = {
    "scale": "cfg", "noise": "noise", "contrast": "contrast", "fov": "fov", "near": "near", "far": "far", "perspective_flip_fv": "perspective_flip_fv",
    "antiblur_kernel": "kernel", "antiblur_sigma": "sigma", "antiblur_amount": "amount", "antiblur_threshold": "threshold",
    "transform_center_x": "transform_center_x", "transform_center_y": "transform_center_y", "hybrid_comp_alpha": "hybrid_comp_alpha",
}
PROMPT = "deforum_prompt"
# Parseq's own bookkeeping: the frame number, the seed travel derived from the seed, and the prompt weights its prompts already hold.
NOT_FIELDS = re.compile(r"frame|subseed|subseed_strength|prompt_weight_\d+|.+_delta|.+_pc")
# What a moving field's value is when it does not move (the zoom is a scale).
STILL = {name: 1.0 if name == "zoom" else 0.0 for name in MOTION}
SHOWN_FIELDS = 12
# Why a run may not read one of our schedules: a manifest does not say 2D or 3D, nor switch features on.
_3D, _FLIP = "3D only: --animation-mode 3D", "only with --perspective-flip"
READ_ONLY_WITH = {
    **dict.fromkeys(("translation_z", "rotation_3d_x", "rotation_3d_y", "rotation_3d_z", "fov", "near", "far"), _3D),
    **dict.fromkeys(("zoom", "angle", "transform_center_x", "transform_center_y"), "2D only"),
    **dict.fromkeys(("perspective_flip_theta", "perspective_flip_phi", "perspective_flip_gamma", "perspective_flip_fv"), _FLIP),
    "hybrid_comp_alpha": "only with --video-input and --hybrid-composite",
}


@dataclass
class ParseqImport:
    values: dict  # our option names -> values, checked by the request builder like any other layer
    warnings: list[str] = field(default_factory=list)  # one line each: fields not used, seed travel, composable prompts
    moving: dict[str, str] = field(default_factory=dict)  # our option -> Parseq field, for the fields whose values change the picture
    ignored: list[tuple[str, str]] = field(default_factory=list)  # (key, value shown) of a Deforum file's keys, for --debug; none here


def is_parseq(data: dict) -> bool:
    """A manifest by its shape: Deforum reads any JSON with `rendered_frames` as one (meta.generated_by is "sd_parseq", but it does not check it)."""
    return "rendered_frames" in data


def from_manifest(manifest: Any, use_deltas: bool = True, overrides: bool = True, frames: int | None = None) -> ParseqImport:
    """Our option values from a manifest. `frames`: the run's length when a flag (or the Deforum file, without overrides) sets it:
    frames past it are never read, as Deforum reads none; a run longer than the manifest holds its last values."""
    if not isinstance(manifest, dict):
        raise UsageError(f"a Parseq manifest is a JSON object, not a {_kind(manifest)}")
    rendered = _frames(manifest.get("rendered_frames"))
    options = manifest.get("options", {})
    if not isinstance(options, dict):
        raise UsageError(f"options must be a table (output_fps, cadence), not a {_kind(options)}")
    count = len(rendered)
    read = rendered[: frames] if frames else rendered
    first = rendered[0]
    values: dict = {}
    moving: dict[str, str] = {}
    used: set[str] = set()

    def series(name: str) -> list[float]:
        used.add(name)
        return [_number(frame, name, i) for i, frame in enumerate(read)]

    for name, option in MOTION.items():
        delta = f"{name}_delta"
        if use_deltas and delta in first:
            per_frame = series(delta)
            used.add(name)
        elif name in first:
            per_frame = series(name)
            if use_deltas:  # a hand-written manifest without Parseq's deltas: made here as Parseq makes them
                per_frame = _deltas(per_frame, name == "zoom")
        else:
            continue
        values[option] = ParsedSchedule.from_values(per_frame)
        if any(v != STILL[name] for v in per_frame):
            moving[option] = name
    for name, option in PLAIN.items():
        if name in first:
            per_frame = series(name)
            values[option] = ParsedSchedule.from_values(per_frame)
            if len(set(per_frame)) > 1:
                moving[option] = name
    if any(name in first for name in ("perspective_flip_theta", "perspective_flip_phi", "perspective_flip_gamma", "perspective_flip_fv")):
        values["perspective_flip"] = True  # Deforum turns the flip on for any manifest; here only for one that sets it
    if "strength" in first:  # Deforum's strength is the amount kept; ours the amount denoised
        values["strength"] = ParsedSchedule.from_values([1 - v for v in series("strength")])
    warnings = []
    if "seed" in first:
        seeds = series("seed")
        values["seed_behavior"] = "schedule"
        values["seed_schedule"] = ParsedSchedule.from_values([int(s) for s in seeds])  # Deforum's int(): the whole part
        if any(s != int(s) for s in seeds):
            warnings.append("Parseq: fractional seeds (seed travel to the next seed) are not applied: each frame takes its seed's whole part")
    if PROMPT in first:
        values["prompts"], composed = _prompts(read)
        values["negative_prompt"] = ""  # Parseq's prompt holds its own negative part, as Deforum then uses it alone
        if composed is not None:
            warnings.append(f"Parseq: prompts joined with ' AND ' (overlapping Parseq prompts, from frame {composed}) are read as one prompt: scumble has no composable diffusion")
    if overrides:
        values["frames"] = count
        for key, option in (("output_fps", "fps"), ("cadence", "cadence")):
            if options.get(key) is not None:
                values[option] = options[key]
    unused = [key for key in first if key not in used and key != PROMPT and not NOT_FIELDS.fullmatch(key)]
    if unused:
        more = f" and {len(unused) - SHOWN_FIELDS} more" if len(unused) > SHOWN_FIELDS else ""
        warnings.insert(0, f"Parseq: fields not used: {', '.join(k[:60] for k in unused[:SHOWN_FIELDS])}{more}")
    return ParseqImport(values, warnings, moving)


def from_deforum(data: dict, frames: int | None = None) -> ParseqImport | None:
    """The manifest a Deforum file embeds in parseq_manifest (JSON text, or an object), read with the file's two Parseq switches; None without one."""
    from ..animation.deforum import _off, _on

    raw = data.get("parseq_manifest")
    if _off(raw) or (isinstance(raw, str) and not raw.strip()):
        return None
    if isinstance(raw, str) and raw.strip().startswith("http"):
        return ParseqImport({}, ["Parseq: parseq_manifest is a URL, and scumble downloads nothing: paste the manifest's JSON there; the file's own schedules are used"])
    manifest = _loads(raw) if isinstance(raw, str) else raw
    overrides = _on(data.get("parseq_non_schedule_overrides", True))
    if frames is None and not overrides:  # the run is the Deforum file's length: frames past it are never read
        frames = _whole(data.get("max_frames", table.option("animate", "frames").default))
    try:
        return from_manifest(manifest, _on(data.get("parseq_use_deltas", True)), overrides, frames)
    except UsageError as exc:
        raise UsageError(f"parseq_manifest: {exc}") from None


def idle_fields(imported: ParseqImport | None, in_use: tuple[str, ...]) -> str | None:
    """The managed fields whose values would move the picture but that this run's settings do not read (a 3D field in a 2D run, say)."""
    if imported is None:
        return None
    groups: dict[str, list[str]] = {}
    for option_name, field_name in imported.moving.items():
        if option_name not in in_use:
            groups.setdefault(READ_ONLY_WITH.get(option_name, "not read by these settings"), []).append(field_name)
    if not groups:
        return None
    return "Parseq: fields this run does not read: " + "; ".join(f"{', '.join(names)} ({why})" for why, names in groups.items())


# ---------------------------------------------------------------- the checks: each one line, naming the frame


def _kind(value: Any) -> str:
    return {dict: "table", list: "list", str: "text", bool: "true/false", type(None): "null"}.get(type(value), "number")


def _loads(text: str) -> Any:
    from .files import MAX_DEPTH, depth

    try:
        manifest = json.loads(text)
    except RecursionError:
        raise UsageError(f"parseq_manifest: nested more than {MAX_DEPTH} levels deep") from None
    except ValueError as exc:
        raise UsageError(f"parseq_manifest: not valid JSON ({str(exc).splitlines()[0][:200]})") from None
    if depth(manifest) > MAX_DEPTH:
        raise UsageError(f"parseq_manifest: nested more than {MAX_DEPTH} levels deep")
    return manifest


def _whole(value: Any) -> int | None:
    try:
        return Int(1, MAX_FRAMES).convert(value)
    except ValueError:
        return None  # the request builder refuses it, naming the file


def _frames(rendered: Any) -> list[dict]:
    """rendered_frames as Deforum needs it: tables numbered 0, 1, 2... once each, in order, within --frames' limit."""
    if not isinstance(rendered, list):
        raise UsageError(f"rendered_frames must be a list of frames, not {'missing' if rendered is None else 'a ' + _kind(rendered)}")
    if not rendered:
        raise UsageError("rendered_frames holds no frames")
    if len(rendered) > MAX_FRAMES:
        raise UsageError(f"rendered_frames holds {len(rendered):,} frames; at most {MAX_FRAMES:,} (--frames' limit)")
    seen: set[int] = set()
    for i, frame in enumerate(rendered):
        if not isinstance(frame, dict):
            raise UsageError(f"rendered_frames[{i}] must be a table, not a {_kind(frame)}")
        number = frame.get("frame")
        if not _is_whole(number):
            raise UsageError(f"rendered_frames[{i}] has {'no frame number' if number is None else f'frame {_shown(number)}, not a whole number'}")
        if int(number) in seen:
            raise UsageError(f"rendered_frames[{i}]: frame {int(number)} appears twice (frames run 0, 1, 2, ... once each)")
        seen.add(int(number))
    missing = next((i for i in range(len(rendered)) if i not in seen), None)
    if missing is not None:
        raise UsageError(f"rendered_frames: frame {missing} is missing (frames run 0, 1, 2, ... once each)")
    wrong = next((i for i, frame in enumerate(rendered) if int(frame["frame"]) != i), None)
    if wrong is not None:
        raise UsageError(f"rendered_frames[{wrong}] is frame {int(rendered[wrong]['frame'])}: frames must be in order, 0, 1, 2, ...")
    return rendered


def _is_whole(value: Any) -> bool:
    """A whole number, without turning a 400-digit integer into a float."""
    if isinstance(value, bool):
        return False
    return isinstance(value, int) or (isinstance(value, float) and math.isfinite(value) and value.is_integer())


def _number(frame: dict, name: str, index: int) -> float:
    if name not in frame:
        raise UsageError(f"frame {index} has no {name} (frame 0 has it, so every frame must)")
    value = frame[name]
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise UsageError(f"frame {index}: {name} {_shown(value)} must be a number")
    try:
        number = float(value)
    except OverflowError:  # a JSON integer of 400 digits
        number = math.inf
    if not math.isfinite(number) or abs(number) > MAX_MAGNITUDE:
        raise UsageError(f"frame {index}: {name} {_shown(value)} must be a finite number of at most {MAX_MAGNITUDE:g}")
    return value if isinstance(value, int) and abs(value) < 2**53 else number


def _deltas(values: list[float], zoom: bool) -> list[float]:
    """Parseq's `_delta`: frame 0 its value, then the change from the last frame (for the zoom, a scale: 1 plus it)."""
    return values[:1] + [(1 + b - a) if zoom else (b - a) for a, b in pairwise(values)]


def _prompts(frames: list[dict]) -> tuple[dict[str, str], int | None]:
    """{frame: prompt} where the prompt changes (prompts carry forward), and the first frame with composed prompts."""
    prompts: dict[str, str] = {}
    last, composed = None, None
    for i, frame in enumerate(frames):
        text = frame.get(PROMPT)
        if not isinstance(text, str):
            raise UsageError(f"frame {i}: {PROMPT} must be text, not {'missing' if PROMPT not in frame else 'a ' + _kind(text)}")
        if text != last:
            prompts[str(i)] = text
            last = text
        if composed is None and " AND " in text:
            composed = i
    return prompts, composed


def _shown(value: Any) -> str:
    text = json.dumps(value) if not isinstance(value, float) or math.isfinite(value) else repr(value)
    return text if len(text) <= 40 else text[:37] + "..."
