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


def values_from_parameters(fields: dict, label: str) -> tuple[dict, list[str]]:
    """Our option names and values from parsed A1111 parameters, and the fields left out."""
    from ..sampling.schedulers import find_scheduler, schedule_settings, schedule_type, split_a1111

    values: dict = {}
    if fields.get("negative_prompt"):
        values["negative_prompt"] = fields["negative_prompt"]
    if "Steps" in fields:
        values["steps"] = _number(fields, "Steps", label)
    if "CFG scale" in fields:
        values["cfg"] = _number(fields, "CFG scale", label)
    if "Seed" in fields:
        values["seed"] = _number(fields, "Seed", label)
    if "Size" in fields:
        match = re.fullmatch(r"\s*(\d+)\s*x\s*(\d+)\s*", str(fields["Size"]))
        if not match:
            raise UsageError(f"{label}: Size {str(fields['Size'])[:40]!r} is not WIDTHxHEIGHT")
        values["width"], values["height"] = int(match.group(1)), int(match.group(2))
    if "Clip skip" in fields:
        values["clip_skip"] = _number(fields, "Clip skip", label)
    if fields.get("Variation seed strength") and "Variation seed" in fields:
        values["subseed"] = _number(fields, "Variation seed", label)
        values["subseed_strength"] = _number(fields, "Variation seed strength", label)
    if "ENSD" in fields:
        values["ensd"] = _number(fields, "ENSD", label)
    if "Eta" in fields:
        values["eta"] = _number(fields, "Eta", label)
    if "Hires upscale" in fields or "Hires resize" in fields:
        values |= _hires(fields, label)
    if str(fields.get("Tiling", "")).lower() == "true":
        values["tiling"] = True
    if fields.get("Sampler"):
        values["scheduler"] = str(fields["Sampler"])  # an old name's schedule suffix ("DPM++ 2M Karras") is split by the builder
        label_text = str(fields.get("Schedule type", "")).strip()
        if label_text:
            kind = schedule_type(label_text)
            if kind is None:
                raise UsageError(f"{label}: Schedule type {label_text[:40]!r} is not one A1111 writes")
            values |= schedule_settings(find_scheduler(split_a1111(values["scheduler"])[0]), kind)
    left_out = sorted(key for key in fields if key not in KNOWN)
    return values, left_out


HIRES_UPSCALERS = {"latent": "latent", "lanczos": "lanczos"}  # A1111's other latent modes and ESRGAN-like networks are not here yet


def _hires(fields: dict, label: str) -> dict:
    """A1111's hires fix fields as our --hires-* options; an upscaler scumble lacks is one clear line."""
    values: dict = {}
    if "Hires upscale" in fields:
        values["hires_scale"] = _number(fields, "Hires upscale", label)
    if "Hires resize" in fields:
        match = re.fullmatch(r"\s*(\d+)\s*x\s*(\d+)\s*", str(fields["Hires resize"]))
        if not match:
            raise UsageError(f"{label}: Hires resize {str(fields['Hires resize'])[:40]!r} is not WIDTHxHEIGHT")
        values["hires_width"], values["hires_height"] = int(match.group(1)), int(match.group(2))
    if "Hires steps" in fields:
        values["hires_steps"] = _number(fields, "Hires steps", label)
    if "Denoising strength" in fields:
        values["hires_strength"] = _number(fields, "Denoising strength", label)
    upscaler = str(fields.get("Hires upscaler", "Latent")).strip().lower()
    if upscaler not in HIRES_UPSCALERS:
        raise UsageError(f"{label}: Hires upscaler {fields.get('Hires upscaler')!r}: scumble has Latent and Lanczos")
    values["hires_upscaler"] = HIRES_UPSCALERS[upscaler]
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
