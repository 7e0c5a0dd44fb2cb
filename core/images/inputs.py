"""Turning INPUT arguments (files, folders, globs, `-`) into images, one clear problem per bad input."""

from __future__ import annotations

import glob
import hashlib
import io
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..errors import InputError

IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".webp", ".bmp", ".tif", ".tiff"}


@dataclass(frozen=True)
class InputItem:
    label: str  # how messages name it
    path: Path | None  # None for standard input
    relative: Path  # mirrored under the output folder
    data: bytes | None = None  # standard input's bytes

    def read_bytes(self) -> bytes:
        if self.data is not None:
            return self.data
        try:
            return self.path.read_bytes()
        except FileNotFoundError as exc:
            raise InputError(f"{self.label}: no such file") from exc
        except OSError as exc:
            raise InputError(f"{self.label}: cannot read it ({exc.strerror})") from exc


def expand(arguments: list[str], recursive: bool = False) -> tuple[list[InputItem], list[tuple[str, str]]]:
    """Every image the arguments name, in order, and a (label, problem) for each argument that names none."""
    items: list[InputItem] = []
    problems: list[tuple[str, str]] = []
    for arg in arguments:
        if arg == "-":
            items.append(InputItem("<stdin>", None, Path("stdin.png"), sys.stdin.buffer.read()))
            continue
        path = Path(arg).expanduser()
        if path.is_dir():
            pattern = "**/*" if recursive else "*"
            found = sorted(p for p in path.glob(pattern) if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES and not p.name.startswith("."))
            if not found:
                hint = "" if recursive else " (pass --recursive to look in subfolders)"
                problems.append((arg, f"no images in this folder{hint}"))
            items += [InputItem(str(p), p, p.relative_to(path)) for p in found]
        elif path.is_file():
            items.append(InputItem(str(path), path, Path(path.name)))
        elif any(c in arg for c in "*?["):
            found = sorted(Path(p) for p in glob.glob(arg, recursive=recursive) if Path(p).is_file())
            if not found:
                problems.append((arg, "matches no files"))
            items += [InputItem(str(p), p, Path(p.name)) for p in found]
        else:
            problems.append((arg, "no such file or folder"))
    return items, problems


def decode_rgb(data: bytes, label: str) -> np.ndarray:
    """Decode fully (so a truncated file fails here, not half-way through a batch), upright, as RGB."""
    from PIL import Image, ImageOps, UnidentifiedImageError

    try:
        with Image.open(io.BytesIO(data)) as img:
            img.load()
            img = ImageOps.exif_transpose(img)
            if img.mode in ("RGBA", "LA", "P"):
                background = Image.new("RGBA", img.size, (255, 255, 255, 255))
                img = Image.alpha_composite(background, img.convert("RGBA"))
            return np.asarray(img.convert("RGB"))
    except UnidentifiedImageError as exc:
        raise InputError(f"{label}: not an image") from exc
    except (OSError, SyntaxError, ValueError) as exc:
        raise InputError(f"{label}: unreadable or truncated image ({str(exc).splitlines()[0] if str(exc) else type(exc).__name__})") from exc


def decode_mask(data: bytes, label: str) -> np.ndarray:
    rgb = decode_rgb(data, label)
    return np.asarray(rgb.mean(axis=2).round().astype(np.uint8))


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()
