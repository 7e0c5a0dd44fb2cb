"""What a written image carries: A1111's `parameters` text and scumble's full JSON record."""

from __future__ import annotations

import io
import json
import re
import warnings
from pathlib import Path

from ..errors import InputError, first_line
from ..images import inputs
from ..images.control_types import A1111_MODULES

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
        "Variation seed": record.get("subseed") if record.get("subseed_strength") else None,
        "Variation seed strength": _number(record.get("subseed_strength")) if record.get("subseed_strength") else None,
        "Denoising strength": _number(record.get("strength", record.get("hires_strength"))),
        **_hires(record),
        "Clip skip": record.get("clip_skip") if (record.get("clip_skip") or 1) > 1 else None,
        "Eta": _number(record.get("eta")) if record.get("eta") else None,
        "ENSD": record.get("ensd") or None,
        "Tiling": "True" if record.get("tiling") else None,
        "Mask blur": record.get("mask_blur"),
        "Lora hashes": _hashes(record.get("loras")),
        "TI hashes": _hashes(record.get("embeddings")),
        **_controlnets(record),
        "Version": f"scumble {record.get('version', '')}".strip(),
    }
    lines.append(", ".join(f"{k}: {_quote(v)}" for k, v in pairs.items() if v not in (None, "")))
    return "\n".join(lines)


def _hires(record: dict) -> dict:
    """A1111's hires-fix fields: the upscale factor, or the resize target when a size was given."""
    if "hires_upscaler" not in record:
        return {}
    width, height = record.get("hires_width") or 0, record.get("hires_height") or 0
    size = {"Hires resize": f"{width}x{height}"} if width or height else {"Hires upscale": _number(record.get("hires_scale"))}
    upscaler = str(record["hires_upscaler"])
    named = upscaler.capitalize() if upscaler in ("latent", "lanczos") else Path(upscaler).stem  # A1111 names a network by its file
    return size | {"Hires steps": record.get("hires_steps") or None, "Hires upscaler": named}


_A1111_RESIZE = {"just": "Just Resize", "crop": "Crop and Resize", "fill": "Resize and Fill"}


def _controlnets(record: dict) -> dict:
    """A1111's ControlNet extension's fields, `ControlNet N: "Module: canny, Model: name [hash], Weight: 1.0, ..."`.

    Its reader splits a unit on ',' and ': ', so neither may appear in a value (a name loses them).
    Preprocessing happens at the picture's own size, which is the extension's "Pixel Perfect".
    """
    out = {}
    side = min(record.get("width") or 0, record.get("height") or 0) or None
    for number, unit in enumerate(record.get("controlnets") or []):
        settings = unit.get("settings") or {}
        name = str(unit.get("name", "")).replace(":", "").replace(",", "")
        fields = {
            "Module": settings.get("a1111_module") or A1111_MODULES.get(unit.get("module"), unit.get("module")),
            "Model": f"{name} [{unit.get('short')}]",
            "Weight": unit.get("weight"),
            "Resize Mode": _A1111_RESIZE.get(unit.get("resize")),
            "Processor Res": side,
            "Threshold A": settings.get("low", settings.get("factor")),
            "Threshold B": settings.get("high"),
            "Guidance Start": unit.get("start"),
            "Guidance End": unit.get("end"),
            "Pixel Perfect": True,
            "Control Mode": "ControlNet is more important" if record.get("guess_mode") else "Balanced",
        }
        out[f"ControlNet {number}"] = ", ".join(f"{k}: {v}" for k, v in fields.items() if v is not None)
    return out


def _hashes(entries) -> str | None:
    """A1111's `name: hash, name: hash`, with ':' and ',' taken out of the names."""
    if not entries:
        return None
    return ", ".join(f"{str(e['name']).replace(':', '').replace(',', '')}: {e['short']}" for e in entries)


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
            pairs[key.strip()] = _unquote(value) if value.startswith('"') else value.strip()
    prompt, negative, in_negative = [], [], False
    for line in lines:
        if line.startswith("Negative prompt:"):
            in_negative = True
            line = line[len("Negative prompt:") :].strip()
        (negative if in_negative else prompt).append(line)
    return {"prompt": "\n".join(prompt), "negative_prompt": "\n".join(negative), **pairs}


def png_text(record: dict) -> dict[str, str]:
    return {PARAMETERS_KEY: a1111_parameters(record), RECORD_KEY: json.dumps(record, sort_keys=True)}


def _unquote(value: str) -> str:
    try:
        text = json.loads(value)
    except ValueError:  # quoted by another writer with escapes JSON does not know, e.g. \q: keep it as written
        return value[1:-1]
    return text if isinstance(text, str) else value[1:-1]


def parse_record(text) -> tuple[dict | None, str | None]:
    """A scumble record from its text, or (None, why not).

    A record that is not a JSON object is treated as absent, not as a broken file: the image and
    its A1111 parameters are still good, and replay then says plainly that there is no record.
    """
    if isinstance(text, bytes):
        text = text.decode("utf-8", "replace")
    try:
        record = json.loads(text)
    except (ValueError, RecursionError):
        return None, "is not valid JSON"
    if not isinstance(record, dict):
        kind = {list: "a list", str: "a string", bool: "true or false", type(None): "null"}.get(type(record), "a number")
        return None, f"is JSON but not an object ({kind})"
    return record, None


def _user_comment(raw) -> str | None:
    """EXIF UserComment as text: how A1111 stores its parameters in JPEG and WebP files."""
    if isinstance(raw, str):
        return raw.rstrip("\0") or None
    if not isinstance(raw, bytes) or len(raw) <= 8:
        return None
    prefix, body = raw[:8], raw[8:]
    if prefix == b"UNICODE\0":
        if body[:2] in (b"\xff\xfe", b"\xfe\xff"):
            encoding = "utf-16"
        else:  # no byte-order mark: ASCII-range text shows its zero bytes first in big-endian (piexif's choice)
            encoding = "utf-16-le" if body[:1] != b"\0" and body[1:2] == b"\0" else "utf-16-be"
        text = body.decode(encoding, "replace")
    else:
        text = body.decode("utf-8", "replace")
    return text.rstrip("\0") or None


_XMP_RECORD = re.compile(r"<scumble:record>(.*?)</scumble:record>", re.S)


def xmp_packet(record_json: str) -> bytes:
    """Our JSON record inside an XMP packet, for JPEG and WebP (which have no PNG-style text chunks)."""
    from xml.sax.saxutils import escape

    return (
        "<?xpacket begin='\ufeff' id='W5M0MpCehiHzreSzNTczkc9d'?><x:xmpmeta xmlns:x='adobe:ns:meta/'>"
        "<rdf:RDF xmlns:rdf='http://www.w3.org/1999/02/22-rdf-syntax-ns#'><rdf:Description xmlns:scumble='https://github.com/scumble/ns/1.0/'>"
        f"<scumble:record>{escape(record_json)}</scumble:record></rdf:Description></rdf:RDF></x:xmpmeta><?xpacket end='w'?>"
    ).encode("utf-8")


def _texts(img) -> dict[str, str]:
    """The text an image carries under our two keys, from PNG chunks or EXIF UserComment."""
    from PIL import ExifTags, PngImagePlugin

    info = dict(img.info)
    if isinstance(img, PngImagePlugin.PngImageFile):
        try:
            info.update(img.text)  # also the chunks after the pixel data (this decodes the pixels)
        except (OSError, SyntaxError, EOFError):
            pass  # truncated pixels: the text before them is still worth showing
    texts = {key: value for key, value in info.items() if key in (PARAMETERS_KEY, RECORD_KEY) and isinstance(value, (str, bytes))}
    texts = {key: value.decode("utf-8", "replace") if isinstance(value, bytes) else str(value) for key, value in texts.items()}
    if PARAMETERS_KEY not in texts and "exif" in img.info:
        try:
            comment = img.getexif().get_ifd(ExifTags.IFD.Exif).get(ExifTags.Base.UserComment)
        except Exception:  # noqa: BLE001 - EXIF from anywhere breaks Pillow's parser in many ways; it is optional here
            comment = None
        if comment := _user_comment(comment):
            texts[PARAMETERS_KEY] = comment
    xmp = img.info.get("xmp")
    if RECORD_KEY not in texts and isinstance(xmp, (bytes, str)):
        from html import unescape

        found = _XMP_RECORD.search(xmp.decode("utf-8", "replace") if isinstance(xmp, bytes) else xmp)
        if found:
            texts[RECORD_KEY] = unescape(found.group(1))
    return texts


def read_image_metadata(path: Path) -> dict:
    """{'parameters': text or None, 'record': dict or None, 'record_problem': why a record present was
    not read, or None, 'format', 'size'} for an image file. Raises only InputError."""
    from PIL import Image, UnidentifiedImageError

    label = str(path)
    data = inputs.read_file(Path(path), label)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(io.BytesIO(data)) as img:
                inputs.check_pixels(img.size, label)
                fmt, size = img.format, img.size
                texts = _texts(img)
    except InputError:
        raise
    except UnidentifiedImageError as exc:
        raise InputError(f"{label}: not a readable image (not a format Pillow knows)") from exc
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        raise InputError(f"{label}: over the limit of {inputs.MAX_PIXELS:,} pixels (8192x8192); refused as a possible decompression bomb") from exc
    except Exception as exc:  # any of Pillow's parsers can fail on a hostile file; it is this file's problem
        if inputs.is_text_limit(exc):
            raise InputError(inputs.text_limit_message(label)) from exc
        raise InputError(f"{label}: not a readable image ({first_line(exc)})") from exc
    record, problem = (None, None)
    if RECORD_KEY in texts:
        record, problem = parse_record(texts[RECORD_KEY])
    return {"parameters": texts.get(PARAMETERS_KEY), "record": record, "record_problem": problem, "format": fmt, "size": size}
