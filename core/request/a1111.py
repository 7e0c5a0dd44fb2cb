"""An image that carries only A1111's `parameters` text, turned into a request like any other door.

Every field scumble knows becomes its option (checked by the option table like a flag); the fields
it cannot honour are named in one warning. The model is --model, or the one `scumble models` knows
whose hash matches the image's `Model hash`.
"""

from __future__ import annotations

import re
from pathlib import Path

from ..errors import UsageError

# A1111 fields that say how the picture was made but change nothing scumble does, or are read below.
KNOWN = {
    "prompt", "negative_prompt", "Steps", "Sampler", "Schedule type", "CFG scale", "Seed", "Size", "Model hash", "Model",
    "Clip skip", "Variation seed", "Variation seed strength", "Tiling", "ENSD", "Eta",
    "Hires upscale", "Hires resize", "Hires steps", "Hires upscaler", "Denoising strength", "Lora hashes", "TI hashes", "Version", "VAE",
}


def _number(fields: dict, key: str, label: str):
    try:
        return float(fields[key])
    except (TypeError, ValueError):
        raise UsageError(f"{label}: {key} {str(fields[key])[:40]!r} is not a number") from None


# A1111 fields that map to one of our options as they are (numbers, checked by the option afterwards).
NUMBERS = {"Steps": "steps", "CFG scale": "cfg", "Seed": "seed", "Clip skip": "clip_skip", "ENSD": "ensd", "Eta": "eta", "Hires upscale": "hires_scale", "Hires steps": "hires_steps"}
SIZES = {"Size": ("width", "height"), "Hires resize": ("hires_width", "hires_height")}
HIRES_UPSCALERS = ("latent", "lanczos")  # A1111's other latent modes and ESRGAN-like networks are not here yet


def values_from_parameters(fields: dict, label: str) -> tuple[dict, list[str]]:
    """Our option names and values from parsed A1111 parameters, and the fields left out."""
    values: dict = {option: _number(fields, key, label) for key, option in NUMBERS.items() if key in fields}
    for key, (width, height) in SIZES.items():
        if key in fields:
            match = re.fullmatch(r"\s*(\d+)\s*x\s*(\d+)\s*", str(fields[key]))
            if not match:
                raise UsageError(f"{label}: {key} {str(fields[key])[:40]!r} is not WIDTHxHEIGHT")
            values[width], values[height] = int(match.group(1)), int(match.group(2))
    if fields.get("negative_prompt"):
        values["negative_prompt"] = fields["negative_prompt"]
    if fields.get("Variation seed strength") and "Variation seed" in fields:
        values["subseed"] = _number(fields, "Variation seed", label)
        values["subseed_strength"] = _number(fields, "Variation seed strength", label)
    if "Hires upscale" in fields or "Hires resize" in fields:
        values |= _hires(fields, label)
    if str(fields.get("Tiling", "")).lower() == "true":
        values["tiling"] = True
    if fields.get("Sampler"):
        values |= _sampler(fields, label)
    return values, sorted(key for key in fields if key not in KNOWN)


def _sampler(fields: dict, label: str) -> dict:
    """Sampler and schedule type; an old name's schedule suffix ("DPM++ 2M Karras") is split by the builder."""
    from ..sampling.schedulers import find_scheduler, schedule_settings, schedule_type, split_a1111

    values = {"scheduler": str(fields["Sampler"])}
    label_text = str(fields.get("Schedule type", "")).strip()
    if label_text:
        kind = schedule_type(label_text)
        if kind is None:
            raise UsageError(f"{label}: Schedule type {label_text[:40]!r} is not one A1111 writes")
        values |= schedule_settings(find_scheduler(split_a1111(values["scheduler"])[0]), kind)
    return values


def _hires(fields: dict, label: str) -> dict:
    """The hires fix's strength and upscaler (its scale, size and steps are plain numbers); an upscaler scumble lacks is one clear line."""
    values: dict = {}
    if "Denoising strength" in fields:
        values["hires_strength"] = _number(fields, "Denoising strength", label)
    upscaler = str(fields.get("Hires upscaler", "Latent")).strip().lower()
    if upscaler not in HIRES_UPSCALERS:
        raise UsageError(f"{label}: Hires upscaler {fields.get('Hires upscaler')!r}: scumble has Latent and Lanczos")
    values["hires_upscaler"] = upscaler
    return values


def model_matching(model_hash: str) -> str | None:
    """The built-in model whose weights hash is the image's `Model hash`, if any (a cached folder has no A1111 file hash)."""
    from ..loading import sources

    candidates = [(name, sources.ModelSource("builtin", str(path), name, "sd")) for name, path in sources.BUILTIN_MODELS.items()]
    for name, source in candidates:
        try:
            if sources.weights_hash(source) == model_hash:
                return name
        except OSError:
            continue
    return None


def request_from_parameters(task: str, path: Path, text: str, flags: dict):
    """The request that remakes an A1111 image from its parameters; (request, warning or None)."""
    from ..records.metadata import parse_a1111
    from .build import FLAGS, Layer, image_request

    label = f"--replay {path} (A1111 parameters)"
    if task != "txt2img":
        raise UsageError(f"{path}: carries A1111 parameters only; scumble can replay those with txt2img (an edit's input image is not in them)")
    fields = parse_a1111(text)
    if "Denoising strength" in fields and "Hires upscale" not in fields:
        raise UsageError(f"{path}: was made by A1111's img2img (Denoising strength {fields['Denoising strength']}); its input image is not in the parameters")
    values, left_out = values_from_parameters(fields, label)
    flags = dict(flags)
    if "model" not in flags and fields.get("Model hash"):
        found = model_matching(str(fields["Model hash"]))
        if found:
            flags["model"] = found
    request = image_request(task, [Layer(label, values), Layer(FLAGS, flags)], prompts=[fields.get("prompt", "")])
    warning = f"{path}: A1111 fields scumble does not honour: {', '.join(left_out)}" if left_out else None
    return request, warning
