"""Reading a Deforum settings export (its JSON) into scumble's animation settings.

Known keys are mapped; strength is converted (Deforum's strength is the amount kept, ours the
amount denoised); the spellings Deforum's own loader renames are renamed first. Of the keys left
over, only those that would change the video are warned about, one line per feature: an export
carries some 200 keys, most at their default or belonging to a feature that is switched off.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path

from ..errors import UsageError
from .keyframes import ScheduleError, parse

# Deforum key -> our field, for values that carry over unchanged.
DIRECT = {
    "W": "width",
    "H": "height",
    "seed": "seed",
    "seed_behavior": "seed_behavior",
    "max_frames": "frames",
    "fps": "fps",
    "border": "border",
    "angle": "angle",
    "zoom": "zoom",
    "translation_x": "translation_x",
    "translation_y": "translation_y",
    "transform_center_x": "transform_center_x",
    "transform_center_y": "transform_center_y",
    "translation_z": "translation_z",
    "rotation_3d_x": "rotation_3d_x",
    "rotation_3d_y": "rotation_3d_y",
    "rotation_3d_z": "rotation_3d_z",
    "fov_schedule": "fov",
    "near_schedule": "near",
    "far_schedule": "far",
    "hybrid_comp_alpha_schedule": "hybrid_comp_alpha",
    "enable_perspective_flip": "perspective_flip",
    "perspective_flip_theta": "perspective_flip_theta",
    "perspective_flip_phi": "perspective_flip_phi",
    "perspective_flip_gamma": "perspective_flip_gamma",
    "perspective_flip_fv": "perspective_flip_fv",
    "noise_schedule": "noise",
    "contrast_schedule": "contrast",
    "cfg_scale_schedule": "cfg",
    "amount_schedule": "amount",
    "kernel_schedule": "kernel",
    "sigma_schedule": "sigma",
    "threshold_schedule": "threshold",
    "seed_schedule": "seed_schedule",
    "diffusion_cadence": "cadence",
    "noise_type": "noise_type",
    "perlin_octaves": "perlin_octaves",
    "perlin_persistence": "perlin_persistence",
    "extract_nth_frame": "extract_nth_frame",
    "animation_prompts_negative": "negative_prompt",
}
# Keys read for the mapping below (Forge's `scheduler` is a schedule type: "Karras", "Simple").
CONSUMED = {"prompts", "strength_schedule", "steps", "steps_schedule", "enable_steps_scheduling", "color_coherence", "sampler", "scheduler",
            "use_init", "init_image", "video_init_path", "animation_mode", "animation_prompts_positive", "strength", "strength_0_no_init",
            "add_soundtrack", "soundtrack_path", "frame_interpolation_engine", "frame_interpolation_x_amount",
            "padding_mode", "optical_flow_cadence", "hybrid_motion", "hybrid_composite", "hybrid_flow_method",
            "parseq_manifest", "parseq_use_deltas", "parseq_non_schedule_overrides"}  # the embedded manifest: read by request.parseq.from_deforum
DEFORUM_MARKERS = {"max_frames", "animation_mode", "diffusion_cadence", "strength_schedule"}

# What Deforum's loader (deprecation_utils) renames before it reads a file: old key -> new key, and old values.
RENAMED_KEYS = {"flip_2d_perspective": "enable_perspective_flip", "skip_video_for_run_all": "skip_video_creation"}
_FLOW = {False: "None", True: "DIS Fine"}
RENAMED_VALUES = {
    "color_coherence": {"Match Frame 0 HSV": "HSV", "Match Frame 0 LAB": "LAB", "Match Frame 0 RGB": "RGB"},
    "hybrid_composite": {False: "None", True: "Normal"},
    "optical_flow_cadence": _FLOW,
    "optical_flow_redo_generation": _FLOW,
}
REMOVED_KEYS = {"histogram_matching"}
# Deforum's choices -> ours. RAFT is RAFT where torchvision and its weights are here (scumble fetches neither); else DIS stands in, with a warning.
FLOW_METHODS = {"DIS Medium": "dis", "DIS Fine": "dis", "Farneback": "farneback", "RAFT": "raft"}
HYBRID_MOTIONS = {"None": "none", "Optical Flow": "optical-flow", "Perspective": "perspective", "Affine": "affine"}
HYBRID_COMPOSITES = {"None": "none", "Normal": "normal", "Before Motion": "before-motion", "After Generation": "after-generation"}
# Deforum's depth algorithms that transformers has a port of: a hint for --depth-model, never fetched.
TRANSFORMERS_DEPTH = {"Midas-3-Hybrid": "Intel/dpt-hybrid-midas", "Zoe": "Intel/zoedepth-nyu-kitti"}
PADDING_MODES = {"border": "replicate", "reflection": "reflect", "zeros": "zeros"}  # 3D's padding_mode stands for 2D's border
THREE_D_SCHEDULES = ("translation_z", "rotation_3d_x", "rotation_3d_y", "rotation_3d_z", "fov_schedule", "near_schedule", "far_schedule")
# Schedules only a switched-off feature reads: Deforum never reads them, so a value out of range there is no error.
UNUSED_UNLESS = {
    "seed_schedule": lambda data: data.get("seed_behavior") == "schedule",
    **{f"perspective_flip_{k}": (lambda data: _on(data.get("enable_perspective_flip"))) for k in ("theta", "phi", "gamma", "fv")},
    **{key: (lambda data: data.get("animation_mode") == "3D") for key in THREE_D_SCHEDULES},
    "hybrid_comp_alpha_schedule": lambda data: _hybrid_on(data) and not _off(data.get("hybrid_composite")),
}


@dataclass
class DeforumImport:
    values: dict  # our option names -> values, checked later by the request builder like any other layer
    unused: list[str] = field(default_factory=list)  # names in `values` that only a switched-off feature reads
    warnings: list[str] = field(default_factory=list)  # one line per feature that would change the video and is ignored
    ignored: list[tuple[str, str]] = field(default_factory=list)  # (key, value shown) for every key scumble does not read, for --debug
    parseq: object = None  # the embedded Parseq manifest's ParseqImport, a layer above these values


def is_deforum(data: dict) -> bool:
    return len(DEFORUM_MARKERS & set(data)) >= 2


def _unwrap(text: str) -> str:
    """'(x)' -> 'x' when the outer parentheses enclose the whole expression."""
    text = text.strip()
    if not (text.startswith("(") and text.endswith(")")):
        return text
    depth = 0
    for i, char in enumerate(text):
        depth += (char == "(") - (char == ")")
        if depth == 0 and i < len(text) - 1:
            return text
    return text[1:-1].strip()


def invert_strength(schedule: str) -> str:
    """Deforum keeps `v` of the image; we denoise 1 - v: rewrite every keyframe's value."""
    return ", ".join(f"{kf.text.split(':', 1)[0].strip()}: (1-({_unwrap(kf.value.source)}))" for kf in parse(schedule, "strength_schedule"))


def _hybrid_on(data: dict) -> bool:
    """Deforum mixes a video into 2D and 3D animations (its hybrid video) when either switch is on and a video is named."""
    switched = any(not _off(data.get(key)) for key in ("hybrid_motion", "hybrid_composite"))
    return switched and data.get("animation_mode", "2D") in ("2D", "3D") and bool(data.get("video_init_path"))


def _on(value) -> bool:
    """Deforum's switches: JSON booleans, or the strings older exports and hand edits hold."""
    return value is True or (isinstance(value, str) and value.strip().lower() == "true") or (isinstance(value, (int, float)) and not isinstance(value, bool) and value != 0)


def _off(value) -> bool:
    """A choice left at none ("None", "", null, false)."""
    return value in (None, False, "") or (isinstance(value, str) and value.strip().lower() in ("none", "false"))


def _shown(value) -> str:
    """A value as the file has it, short: text quoted, numbers and switches bare."""
    if not isinstance(value, str):
        text = json_text(value)
        return text if len(text) <= 60 else text[:57] + "..."
    return repr(value if len(value) <= 60 else value[:57] + "...")


def json_text(value) -> str:
    try:
        return json.dumps(value)
    except (TypeError, ValueError):
        return repr(value)


def _constant(data: dict, key: str, neutral: float) -> bool:
    """The schedule (or number) at `key` is `neutral` on every frame; missing counts as neutral, unreadable as not."""
    if key not in data:
        return True
    value = data[key]
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return abs(value - neutral) < 1e-9
    if not isinstance(value, str):
        return False
    try:
        keyframes = parse(value, key)
        return all(kf.value.is_constant and abs(kf.value() - neutral) < 1e-9 for kf in keyframes)
    except ScheduleError:
        return False


def _changed(data: dict, keys: dict) -> list[str]:
    """`key value` for each key whose value differs from the given Deforum default (a schedule's neutral number)."""
    out = []
    for key, default in keys.items():
        if key not in data:
            continue
        same = _constant(data, key, default) if isinstance(default, (int, float)) and not isinstance(default, bool) and isinstance(data[key], str) else data[key] == default
        if not same:
            out.append(f"{key} {_shown(data[key])}")
    return out


def apply_renames(data: dict) -> dict:
    """The file as Deforum's own loader would see it: old key names and old value spellings brought up to date."""
    data = dict(data)
    for old, new in RENAMED_KEYS.items():
        if old in data:
            value = data.pop(old)
            data.setdefault(new, value)
    for key, renames in RENAMED_VALUES.items():
        value = data.get(key)
        if isinstance(value, (str, bool)) and value in renames:
            data[key] = renames[value]
    if "use_zoe_depth" in data:
        zoe = data.pop("use_zoe_depth")
        data.setdefault("depth_algorithm", "Zoe+AdaBins (old)" if _on(zoe) else "Midas+AdaBins (old)")
    for i in range(1, 6):  # ControlNet weights and guidance were numbers before they were schedules
        for suffix in ("weight", "guidance_start", "guidance_end"):
            key = f"cn_{i}_{suffix}"
            if isinstance(data.get(key), (int, float)) and not isinstance(data.get(key), bool):
                data[key] = f"0:({data[key]})"
    for key in REMOVED_KEYS:
        data.pop(key, None)
    return data


# ---------------------------------------------------------------- what a file asks for that scumble does not do

_3D_IGNORED = {"aspect_ratio_schedule": 1.0, "aspect_ratio_use_old_formula": False, "sampling_mode": "bicubic"}
_HYBRID_IGNORED = {"hybrid_motion_use_prev_img": False, "hybrid_flow_consistency": False, "hybrid_flow_factor_schedule": 1.0, "hybrid_use_init_image": False,
                   "hybrid_use_first_frame_as_init_image": True, "hybrid_comp_mask_type": "None", "hybrid_generate_human_masks": "None"}


def _no_raft() -> str | None:
    """Why a file's RAFT runs as DIS here, or None where RAFT runs."""
    from ..images.raft import unavailable

    reason = unavailable()
    return f"runs as DIS ({reason})" if reason else None


def _flow_method(name) -> str:
    ours = FLOW_METHODS.get(name, "dis")
    return "dis" if ours == "raft" and _no_raft() else ours


def _animation_mode(data: dict) -> str | None:
    mode = data.get("animation_mode", "2D")
    if mode in ("2D", "3D") or (mode == "Video Input" and data.get("video_init_path")):
        return None
    if mode == "Video Input":
        return "animation_mode 'Video Input' without a video_init_path is rendered as 2D"
    return f"animation_mode {_shown(mode)} is rendered as 2D"


def _video_input(data: dict) -> str | None:
    if data.get("animation_mode") != "Video Input" or not data.get("video_init_path"):
        return None
    changed = _changed(data, {"extract_from_frame": 0, "extract_to_frame": -1})
    return f"video input: {', '.join(changed)} ignored (frames are read from the start, every extract_nth_frame)" if changed else None


def _noise_multiplier(data: dict) -> str | None:
    if _on(data.get("enable_noise_multiplier_scheduling")) and not _constant(data, "noise_multiplier_schedule", 1.0):
        return f"noise multiplier: noise_multiplier_schedule {_shown(data.get('noise_multiplier_schedule'))} is not applied (the initial noise is not scaled)"
    return None


def _three_d(data: dict) -> str | None:
    """What a 3D file asks for that is not rendered: Deforum's own depth models above all (the camera then moves through flat depth)."""
    if data.get("animation_mode") != "3D":
        return None
    parts = []
    if _on(data.get("use_depth_warping", True)):
        algorithm = data.get("depth_algorithm", "Midas-3-Hybrid")
        hint = f" (e.g. {TRANSFORMERS_DEPTH[algorithm]})" if algorithm in TRANSFORMERS_DEPTH else ""
        depth = f"depth_algorithm {_shown(algorithm)} is not run: the camera moves through flat depth unless --depth-model names a transformers depth model{hint}"
        parts.append(depth + ("; save_depth_maps saves nothing without one" if _on(data.get("save_depth_maps")) else ""))
    ignored = _changed(data, _3D_IGNORED)
    if data.get("padding_mode", "border") not in PADDING_MODES:
        ignored.append(f"padding_mode {_shown(data['padding_mode'])}")
    if ignored:
        parts.append(f"ignored: {', '.join(ignored)}")
    return "3D: " + "; ".join(parts) if parts else None


def _hybrid(data: dict) -> str | None:
    on = [f"{key} {_shown(data[key])}" for key in ("hybrid_motion", "hybrid_composite") if key in data and not _off(data[key])]
    if not on:
        return None
    mode = data.get("animation_mode", "2D")
    if mode not in ("2D", "3D"):
        return f"hybrid video: {', '.join(on)} ignored (Deforum mixes a video into 2D and 3D animations, not {_shown(mode)})"
    if not data.get("video_init_path"):
        return f"hybrid video: {', '.join(on)} ignored (no video_init_path)"
    notes = [f"{key} {_shown(data[key])} unknown" for key, known in (("hybrid_motion", HYBRID_MOTIONS), ("hybrid_composite", HYBRID_COMPOSITES)) if key in data and not _off(data[key]) and data[key] not in known]
    if data.get("hybrid_motion") == "Optical Flow" and data.get("hybrid_flow_method", "RAFT") not in ("DIS Medium", "DIS Fine", "Farneback") and (why := _no_raft()):
        notes.append(f"hybrid_flow_method {_shown(data.get('hybrid_flow_method', 'RAFT'))} {why}")
    ignored = _changed(data, _HYBRID_IGNORED)
    if ignored:
        notes.append("ignored: " + ", ".join(ignored))
    return "hybrid video: " + "; ".join(notes) if notes else None


# ---------------------------------------------------------------- ControlNet units (cn_1_* .. cn_5_*)

CN_UNITS = range(1, 6)
CN_KEYS = {f"cn_{i}_{key}" for i in CN_UNITS for key in ("enabled", "model", "weight", "guidance_start", "guidance_end", "module", "vid_path",
                                                          "threshold_a", "threshold_b", "control_mode", "resize_mode", "loopback_mode")}
# The ControlNet extension's preprocessor names, by family, to ours (core/images/control_types.py).
CN_MODULE_FAMILIES = (("none", "none"), ("canny", "canny"), ("scribble", "scribble"), ("lineart", "lineart"), ("softedge", "softedge"),
                      ("tile", "tile"), ("shuffle", "shuffle"), ("depth", "depth"), ("openpose", "openpose"), ("dw_openpose", "openpose"))
# The extension's resize modes, old names included (its resize_mode_aliases), to --control-resize.
CN_RESIZE = {"Just Resize": "just", "Crop and Resize": "crop", "Inner Fit (Scale to Fit)": "crop", "Scale to Fit (Inner Fit)": "crop",
             "Resize and Fill": "fill", "Outer Fit (Shrink to Fit)": "fill", "Envelope (Outer Fit)": "fill"}


def _cn_model(name) -> str | None:
    """A unit's model as a path here: A1111 names it "file [hash]"; the name, or the name with .safetensors."""
    if not isinstance(name, str) or _off(name):
        return None
    bare = re.sub(r"\s*\[[0-9a-fA-F]+\]\s*$", "", name).strip()
    return next((c for c in (bare, bare + ".safetensors") if Path(c).exists()), None)


def _cn_number(data: dict, key: str, default: float, unit: int, warnings: list[str]) -> float:
    """A unit's weight or guidance fraction: scumble holds one value per unit, so a schedule's frame-0 value."""
    value = data.get(key, default)
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return float(value)
    keyframes = parse(str(value), key)
    first = keyframes[0].value()
    if not all(kf.value.is_constant and abs(kf.value() - first) < 1e-9 for kf in keyframes):
        warnings.append(f"ControlNet unit {unit}: {key} {_shown(value)} changes over the video; its frame-0 value {first:g} is used throughout")
    return float(first)


def _cn_module(module, unit: int, warnings: list[str]) -> str | None:
    """Our preprocessor for the extension's; None (the unit is left out) for one that needs a network scumble does not run."""
    from ..images.control_types import WITH_A_MODEL, model_flag

    text = str(module).strip().lower()
    for prefix, ours in CN_MODULE_FAMILIES:
        if text.startswith(prefix):
            if ours in WITH_A_MODEL:  # the file names the extension's annotator, never a model scumble could load
                warnings.append(f"ControlNet unit {unit}: preprocessor {_shown(module)} runs a network the file does not name; the unit is not applied (give --controlnet with --control-type {ours} {model_flag(ours)} MODEL)")
                return None
            return ours
    warnings.append(f"ControlNet unit {unit}: preprocessor {_shown(module)} is not one scumble has; the control video is used as it is")
    return "none"


def _controlnet_values(data: dict, warnings: list[str]) -> dict:
    """The enabled units as --controlnet, --control-video, --control-type, --control-start/--control-end and the shared
    settings; a unit whose model or control frames cannot be found here is left out with a warning."""
    units = []
    for i in CN_UNITS:
        if not _on(data.get(f"cn_{i}_enabled")):
            continue
        model, video = _cn_model(data.get(f"cn_{i}_model")), data.get(f"cn_{i}_vid_path") or None
        if model is None:
            warnings.append(f"ControlNet unit {i}: model {_shown(data.get(f'cn_{i}_model'))} is not a file or folder here; the unit is not applied (give --controlnet PATH)")
            continue
        if video is None and data.get("animation_mode") != "Video Input":
            warnings.append(f"ControlNet unit {i}: no cn_{i}_vid_path and no video input to follow; the unit is not applied")
            continue
        kind = _cn_module(data.get(f"cn_{i}_module", "none"), i, warnings)
        if kind is None:
            continue
        if _on(data.get(f"cn_{i}_loopback_mode")):
            warnings.append(f"ControlNet unit {i}: loopback mode (the previous frame as the control image) is not done; the control video is followed")
        units.append({
            "model": f"{model}:{_cn_number(data, f'cn_{i}_weight', 1.0, i, warnings):g}",  # --controlnet's PATH:WEIGHT
            "video": video,
            "type": kind,
            "start": _cn_number(data, f"cn_{i}_guidance_start", 0.0, i, warnings),
            "end": _cn_number(data, f"cn_{i}_guidance_end", 1.0, i, warnings),
            "mode": data.get(f"cn_{i}_control_mode", "Balanced"),
            "resize": CN_RESIZE.get(data.get(f"cn_{i}_resize_mode"), "crop"),
            "thresholds": (data.get(f"cn_{i}_threshold_a"), data.get(f"cn_{i}_threshold_b")),
        })
    if not units:
        return {}
    values = {
        "controlnet": tuple(u["model"] for u in units),
        "control_type": tuple(u["type"] for u in units),
        "control_start": tuple(u["start"] for u in units),
        "control_end": tuple(u["end"] for u in units),
    }
    videos = [u["video"] for u in units]
    if any(videos):
        if not all(videos):  # scumble takes one control video per unit or none (each frame's own input)
            warnings.append("ControlNet: some units name a control video and some follow the video input; the units without one follow the first named")
        values["control_video"] = tuple(v or next(filter(None, videos)) for v in videos)
    _cn_shared(units, values, warnings)
    return values


def _cn_shared(units: list[dict], values: dict, warnings: list[str]) -> None:
    """Settings Deforum keeps per unit and scumble for all units: the first unit's, with a warning where they differ."""
    modes = {u["mode"] for u in units}
    if "ControlNet is more important" in modes:
        values["guess_mode"] = True
    if len(modes) > 1 or "My prompt is more important" in modes:
        warnings.append(f"ControlNet: control modes {', '.join(sorted(map(str, modes)))}: scumble has one for all units (guess mode: {'on' if values.get('guess_mode') else 'off'})")
    resizes = {u["resize"] for u in units}
    values["control_resize"] = units[0]["resize"]
    if len(resizes) > 1:
        warnings.append(f"ControlNet: units resize differently; all use {units[0]['resize']} (--control-resize)")
    canny = [u["thresholds"] for u in units if u["type"] == "canny"]
    if canny:
        low, high = canny[0]
        if isinstance(low, (int, float)) and isinstance(high, (int, float)) and not isinstance(low, bool):
            values["canny_low"], values["canny_high"] = round(low), round(high)
        if len(set(canny)) > 1:
            warnings.append("ControlNet: canny units with different thresholds; all use the first unit's")


def _number(value, default: float) -> float:
    try:
        return float(value)
    except (TypeError, ValueError):
        return default


def _flow(data: dict) -> str | None:
    notes = []
    method = data.get("optical_flow_cadence")
    if not _off(method) and _number(data.get("diffusion_cadence", 1), 1) > 1:
        if method not in FLOW_METHODS:
            notes.append(f"optical_flow_cadence {_shown(method)} unknown (cadence frames are cross-faded)")
        elif method == "RAFT" and (why := _no_raft()):
            notes.append(f"optical_flow_cadence 'RAFT' {why}")
        notes += [f"{change} ignored" for change in _changed(data, {"cadence_flow_factor_schedule": 1.0})]
    redo = []
    if not _off(data.get("optical_flow_redo_generation")):
        redo.append(f"optical_flow_redo_generation {_shown(data['optical_flow_redo_generation'])}")
    if _number(data.get("diffusion_redo", 0), 0) > 0:
        redo.append(f"diffusion_redo {_shown(data['diffusion_redo'])}")
    if redo:
        notes.append(f"{', '.join(redo)} not supported")
    return f"optical flow: {'; '.join(notes)}" if notes else None


def _per_frame_switches(data: dict) -> str | None:
    on = []
    if _on(data.get("enable_subseed_scheduling")) and not _constant(data, "subseed_strength_schedule", 0.0):
        on.append(f"subseed_strength_schedule {_shown(data.get('subseed_strength_schedule'))}")
    for switch, key in (("enable_sampler_scheduling", "sampler_schedule"), ("enable_checkpoint_scheduling", "checkpoint_schedule"), ("enable_clipskip_scheduling", "clipskip_schedule"),
                        ("enable_ddim_eta_scheduling", "ddim_eta_schedule"), ("enable_ancestral_eta_scheduling", "ancestral_eta_schedule")):
        if _on(data.get(switch)):
            on.append(f"{key} {_shown(data.get(key))}")
    return f"schedules not supported: {', '.join(on)}" if on else None


def _masks(data: dict) -> str | None:
    on = [key for key in ("use_mask", "use_noise_mask", "use_mask_video") if _on(data.get(key))]
    return f"masks: {', '.join(on)} not supported" if on else None


def _looper(data: dict) -> str | None:
    return "guided images: use_looper (init_images, image_strength_schedule) not supported" if _on(data.get("use_looper")) else None


def _seed(data: dict) -> str | None:
    changed = _changed(data, {"seed_resize_from_w": 0, "seed_resize_from_h": 0})
    if data.get("seed_behavior", "iter") == "iter":
        changed += _changed(data, {"seed_iter_N": 1})
    return f"seed: {', '.join(changed)} ignored (iter adds 1 every key frame)" if changed else None


def _colour(data: dict) -> str | None:
    on = []
    coherence = data.get("color_coherence", "LAB")
    if isinstance(coherence, str) and coherence.lower() not in ("lab", "hsv", "rgb", "none"):
        on.append(f"color_coherence {_shown(coherence)} (frames are matched to frame 0 in LAB instead)")
    on += [key for key in ("color_force_grayscale", "legacy_colormatch") if _on(data.get(key))]
    return f"colour: {', '.join(on)} not supported" if on else None


def _image(data: dict) -> str | None:
    on = [key for key in ("tiling", "restore_faces", "motion_preview_mode") if _on(data.get(key))]
    return f"image: {', '.join(on)} not supported" if on else None


def _init_strength(data: dict) -> str | None:
    if not (_on(data.get("use_init")) and data.get("init_image") not in (None, "", "None")) or "strength" not in data:
        return None
    schedule = data.get("strength_schedule", "0: (0.65)")
    try:
        first = parse(schedule if isinstance(schedule, str) else f"0: ({schedule})", "strength_schedule")[0].value
        if first.is_constant and abs(first() - float(data["strength"])) < 1e-9:
            return None
    except (ScheduleError, TypeError, ValueError):
        pass
    return f"init image: strength {_shown(data['strength'])} (frame 0's, with use_init) is not used; frame 0 follows strength_schedule"


def _output(data: dict) -> str | None:
    on = []
    if not _off(data.get("add_soundtrack")) and _soundtrack(data) is None:
        source = data.get("soundtrack_path") if data.get("add_soundtrack") == "File" else data.get("video_init_path")
        why = "from a URL (scumble downloads nothing: pass --soundtrack FILE)" if _is_url(source) else "without a file"
        on.append(f"add_soundtrack {_shown(data['add_soundtrack'])} {why}")
    if _on(data.get("r_upscale_video")):
        on.append(f"r_upscale_video ({data.get('r_upscale_model')}, {data.get('r_upscale_factor')})")
    if not _off(data.get("frame_interpolation_engine")):
        on.append(f"frame_interpolation_engine {_shown(data['frame_interpolation_engine'])} is done with ffmpeg's minterpolate (x{data.get('frame_interpolation_x_amount')}), not the model (give RIFE's flownet.pkl or FILM's TorchScript file with --interpolate-model)")
    if _on(data.get("make_gif")):
        on.append("make_gif (pass -o NAME.gif)")
    return f"video: {', '.join(on)} not supported" if on else None


FEATURES = (_animation_mode, _three_d, _video_input, _noise_multiplier, _hybrid, _flow, _per_frame_switches,
            _masks, _looper, _seed, _colour, _image, _init_strength, _output)


def _soundtrack(data: dict) -> str | None:
    """Deforum's add_soundtrack: "File" takes soundtrack_path, "Init Video" the input video's own sound."""
    source = {"File": data.get("soundtrack_path"), "Init Video": data.get("video_init_path")}.get(str(data.get("add_soundtrack")))
    return source if isinstance(source, str) and source.strip() and not _is_url(source) else None


def _is_url(value) -> bool:
    return isinstance(value, str) and "://" in value


def unsupported_features(data: dict) -> list[str]:
    """One line per feature the file switches on (or sets away from neutral) that scumble does not render."""
    return [line for feature in FEATURES if (line := feature(data))]


# ---------------------------------------------------------------- the sampler: A1111's name and Forge's schedule type


def _sampler(data: dict, warnings: list[str]) -> str | None:
    """The sampler as one A1111 name ("DPM++ 2M Karras"), for the request builder to split; None for the model's own."""
    from ..sampling import schedulers

    sampler, forge = data.get("sampler"), data.get("scheduler")
    if _off(sampler):
        if not _off(forge):
            warnings.append(f"sampler: scheduler {_shown(forge)} without a sampler is ignored")
        return None
    if not isinstance(sampler, str):
        raise UsageError("sampler must be text, e.g. \"DPM++ 2M Karras\"")
    spec = schedulers.find_scheduler(sampler, "sampler")
    base, kind = schedulers.split_a1111(sampler)
    if not _off(forge):
        named = schedulers.schedule_type(str(forge))
        if named is None:
            warnings.append(f"sampler: scheduler {_shown(forge)} is not a schedule type scumble knows; {spec.name}'s own spacing is used")
        elif kind is None:
            kind = named
        elif named != kind:
            warnings.append(f"sampler: {_shown(sampler)} names its schedule; scheduler {_shown(forge)} is ignored")
    if kind is None:
        return base
    label = schedulers.SCHEDULE_TYPES[kind][0]
    try:
        wanted = schedulers.schedule_settings(spec, kind)
    except UsageError as exc:
        warnings.append(f"sampler: {exc}; {spec.name}'s own spacing is used")
        return base
    flag = schedulers.NOISE_SCHEDULES.get(wanted.get("noise_schedule", ""))
    if flag and not schedulers.supports(spec.class_name, flag):  # A1111 spaces any sampler's noise any way; diffusers does not
        warnings.append(f"sampler: {spec.name} cannot space its noise levels the {label} way in diffusers; its own spacing is used")
        return base
    return f"{base} {label}"


def _motion_values(data: dict) -> dict:
    """3D, optical-flow cadence and hybrid video, in our names; what does not map is warned about by the FEATURES above."""
    values = {}
    if data.get("animation_mode") == "3D":
        values["animation_mode"] = "3D"
        if data.get("padding_mode") in PADDING_MODES:
            values["border"] = PADDING_MODES[data["padding_mode"]]
    if data.get("optical_flow_cadence") in FLOW_METHODS:
        values["optical_flow_cadence"] = _flow_method(data["optical_flow_cadence"])
    motion, composite = HYBRID_MOTIONS.get(data.get("hybrid_motion"), "none"), HYBRID_COMPOSITES.get(data.get("hybrid_composite"), "none")
    if _hybrid_on(data) and (motion, composite) != ("none", "none"):
        values |= {"video_input": data["video_init_path"], "hybrid_motion": motion, "hybrid_composite": composite}
        values["hybrid_flow_method"] = _flow_method(data.get("hybrid_flow_method", "RAFT"))
    return values


def unused_schedules(data: dict) -> list[str]:
    """Our names of the schedules only a feature this file switches off would read (the caller may drop a bad one)."""
    return [DIRECT[key] for key, used in UNUSED_UNLESS.items() if key in data and not used(data)]


def from_deforum(data: dict) -> DeforumImport:
    """Our option names and values (checked by the request builder like any other door), what is ignored, and why it matters."""
    data = apply_renames(data)
    values: dict = {}
    warnings: list[str] = []
    for key, field_name in DIRECT.items():
        if key in data and data[key] not in (None, ""):
            values[field_name] = data[key]
    if isinstance(values.get("noise_type"), str):
        values["noise_type"] = values["noise_type"].lower()
    prompts = data.get("prompts") or {}
    if not isinstance(prompts, dict):
        raise UsageError(f"prompts must be a table of frame -> prompt, not a {type(prompts).__name__}")
    positive_all = data.get("animation_prompts_positive") or ""
    if not isinstance(positive_all, str):
        raise UsageError("animation_prompts_positive must be text")
    values["prompts"] = {str(k): ", ".join(p for p in (str(v).strip(), positive_all.strip()) if p) for k, v in prompts.items()}
    if "strength_schedule" in data:
        if not isinstance(data["strength_schedule"], (str, int, float)) or isinstance(data["strength_schedule"], bool):
            raise UsageError("strength_schedule must be a schedule like \"0: (0.65)\"")
        values["strength"] = invert_strength(str(data["strength_schedule"]) if isinstance(data["strength_schedule"], str) else f"0: ({data['strength_schedule']})")
    if _on(data.get("enable_steps_scheduling")) and data.get("steps_schedule"):
        values["steps"] = data["steps_schedule"]
    elif "steps" in data:
        values["steps"] = data["steps"]
    coherence = str(data.get("color_coherence")).lower()
    if coherence in ("lab", "hsv", "rgb", "none"):
        values["color_coherence"] = coherence
    sampler = _sampler(data, warnings)
    if sampler:
        values["scheduler"] = sampler
    mode = data.get("animation_mode", "2D")
    if mode == "Video Input" and data.get("video_init_path"):
        values["video_input"] = data["video_init_path"]
    if _on(data.get("use_init")) and data.get("init_image") not in (None, "", "None"):
        values["init_image"] = data["init_image"]
    if (soundtrack := _soundtrack(data)) is not None:
        values["soundtrack"] = soundtrack
    if not _off(data.get("frame_interpolation_engine")) and data.get("frame_interpolation_x_amount") is not None:
        values["interpolate"] = data["frame_interpolation_x_amount"]
    values |= _motion_values(data)
    values |= _controlnet_values(data, warnings)
    ignored = [(k, _shown(data[k])) for k in sorted(data) if k not in DIRECT and k not in CONSUMED and k not in CN_KEYS]
    return DeforumImport(values, [name for name in unused_schedules(data) if name in values], warnings + unsupported_features(data), ignored)
