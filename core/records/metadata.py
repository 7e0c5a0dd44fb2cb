"""What a written image carries: A1111's `parameters` text and scumble's full JSON record."""

from __future__ import annotations

import json
import re
from pathlib import Path

from ..errors import InputError

PARAMETERS_KEY = "parameters"  # A1111's PNG text chunk, read by sd-parsers, civitai and A1111's own PNG Info
RECORD_KEY = "scumble"  # our JSON record: everything needed to regenerate the image exactly
_A1111_PAIR = re.compile(r"""\s*(\w[\w \-/]+):\s*("(?:\\.|[^\\"])+"|[^,]*)(?:,|$)""")


def _quote(value) -> str:
    text = str(value)
    return json.dumps(text) if any(c in text for c in ",:\n") else text


def a1111_parameters(record: dict) -> str:
    """Format a record as A1111's three-part parameters text."""
    lines = [record.get("prompt", "")]
    if record.get("negative_prompt"):
        lines.append(f"Negative prompt: {record['negative_prompt']}")
    pairs = {
        "Steps": record.get("steps"),
        "Sampler": record.get("sampler"),
        "Schedule type": record.get("schedule_type"),
        "CFG scale": _number(record.get("cfg")),
        "Seed": record.get("seed"),
        "Size": f"{record['width']}x{record['height']}" if record.get("width") else None,
        "Model hash": record.get("model", {}).get("hash"),
        "Model": record.get("model", {}).get("name"),
        "VAE": record.get("vae"),
        "Denoising strength": _number(record.get("strength")),
        "Mask blur": record.get("mask_blur"),
        "Version": f"scumble {record.get('version', '')}".strip(),
    }
    lines.append(", ".join(f"{k}: {_quote(v)}" for k, v in pairs.items() if v not in (None, "")))
    return "\n".join(lines)


def _number(value):
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value


def parse_a1111(text: str) -> dict[str, str]:
    """Parse A1111 parameters text the way A1111's own reader does (prompt, negative prompt, pairs)."""
    lines = text.strip().split("\n")
    pairs: dict[str, str] = {}
    if lines and len(_A1111_PAIR.findall(lines[-1])) >= 3:
        for key, value in _A1111_PAIR.findall(lines.pop()):
            pairs[key.strip()] = json.loads(value) if value.startswith('"') else value.strip()
    prompt, negative, in_negative = [], [], False
    for line in lines:
        if line.startswith("Negative prompt:"):
            in_negative = True
            line = line[len("Negative prompt:") :].strip()
        (negative if in_negative else prompt).append(line)
    return {"prompt": "\n".join(prompt), "negative_prompt": "\n".join(negative), **pairs}


def png_text(record: dict) -> dict[str, str]:
    return {PARAMETERS_KEY: a1111_parameters(record), RECORD_KEY: json.dumps(record, sort_keys=True)}


def read_image_metadata(path: Path) -> dict:
    """{'parameters': text or None, 'record': dict or None, 'format', 'size'} for an image file."""
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as img:
            info = dict(getattr(img, "text", {}) or img.info)
            fmt, size = img.format, img.size
    except FileNotFoundError as exc:
        raise InputError(f"{path}: no such file") from exc
    except (UnidentifiedImageError, OSError) as exc:
        raise InputError(f"{path}: not a readable image ({exc})") from exc
    record = None
    if RECORD_KEY in info:
        try:
            record = json.loads(info[RECORD_KEY])
        except ValueError:
            record = None
    return {"parameters": info.get(PARAMETERS_KEY), "record": record, "format": fmt, "size": size}
