"""Reading a Deforum settings export (its JSON) into scumble's animation settings.

Known keys are mapped; strength is converted (Deforum's strength is the amount kept, ours the
amount denoised); everything else is returned by name so the caller can warn about it.
"""

from __future__ import annotations

from ..errors import UsageError
from .keyframes import parse

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
# Keys read for the mapping below, or that only matter when another (mapped) option is on.
CONSUMED = {"prompts", "strength_schedule", "steps", "steps_schedule", "enable_steps_scheduling", "color_coherence", "sampler",
            "use_init", "init_image", "video_init_path", "animation_mode", "animation_prompts_positive", "strength", "strength_0_no_init"}
DEFORUM_MARKERS = {"max_frames", "animation_mode", "diffusion_cadence", "strength_schedule"}


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


def from_deforum(data: dict) -> tuple[dict, list[str]]:
    """Our option names and values (checked by the request builder like any other door), and the keys left out."""
    values: dict = {}
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
    if data.get("enable_steps_scheduling") and data.get("steps_schedule"):
        values["steps"] = data["steps_schedule"]
    elif "steps" in data:
        values["steps"] = data["steps"]
    coherence = str(data.get("color_coherence", "None")).lower()
    unsupported = []
    if coherence in ("lab", "hsv", "rgb", "none"):
        values["color_coherence"] = coherence
    else:
        unsupported.append(f"color_coherence={data.get('color_coherence')!r}")
    if data.get("sampler"):
        values["scheduler"] = data["sampler"]
    mode = data.get("animation_mode", "2D")
    if mode == "Video Input" and data.get("video_init_path"):
        values["video_input"] = data["video_init_path"]
    elif mode not in ("2D", "Video Input"):
        unsupported.append(f"animation_mode={mode!r} (run as 2D)")
    if data.get("use_init") and data.get("init_image") not in (None, "", "None"):
        values["init_image"] = data["init_image"]
    unsupported += sorted(k for k in data if k not in DIRECT and k not in CONSUMED)
    return values, unsupported
