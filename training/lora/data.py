"""The training pictures: found, decoded, captioned, fitted to the training size, and hashed for the record.

Every problem with an input is one InputError line naming that input; the run does not start on a
partial set, since a LoRA trained on four of five pictures is not the one that was asked for.
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass

import numpy as np

from ...core.errors import InputError, UsageError
from ...core.images import inputs, pixels

MAX_CAPTION_BYTES = 64 * 1024  # a caption longer than this is not a caption (CLIP reads 75 tokens)


@dataclass(frozen=True)
class Picture:
    label: str  # how messages name it
    pixels: np.ndarray  # HxWx3 uint8 RGB, as decoded
    caption: str  # with the trigger word
    sha256: str  # of the file's bytes


def with_trigger(caption: str, trigger: str) -> str:
    """kohya's convention: the trigger word leads the caption, once."""
    if not trigger or re.search(rf"(?<!\w){re.escape(trigger)}(?!\w)", caption):
        return caption
    return f"{trigger}, {caption}" if caption else trigger


def read_caption(item: inputs.InputItem) -> str:
    """The caption file beside an image (`cat.png` -> `cat.txt`), or one line saying it is missing."""
    path = item.path.with_suffix(".txt") if item.path is not None else None
    if path is None or not path.is_file():
        name = path.name if path is not None else "a .txt file"
        raise InputError(f"{item.label}: no caption file {name} beside it (or give --caption)")
    data = inputs.read_file(path, str(path))
    if len(data) > MAX_CAPTION_BYTES:
        raise InputError(f"{path}: {len(data):,} bytes is too long for a caption")
    text = " ".join(data.decode("utf-8", errors="replace").split())
    if not text:
        raise InputError(f"{path}: the caption file is empty")
    return text


def load_pictures(arguments: list[str], caption: str | None, trigger: str) -> list[Picture]:
    """Every image the arguments name, decoded and captioned; one line for the first that cannot be."""
    if not arguments:
        raise UsageError("give at least one image (files, folders or globs)")
    items, problems = inputs.expand(arguments)
    if problems:
        label, problem = problems[0]
        raise InputError(problem if problem.startswith(label) else f"{label}: {problem}")
    if not items:
        raise UsageError("no images found in the arguments given")
    out = []
    for item in items:
        if item.path is None:
            raise UsageError("- (standard input) cannot be a training picture: its caption and hash need a file")
        data = item.read_bytes()
        text = caption if caption is not None else read_caption(item)
        out.append(Picture(item.label, inputs.decode_rgb(data, item.label), with_trigger(text, trigger), inputs.sha256(data)))
    return out


def captions_hash(pictures: list[Picture]) -> str:
    """One hash for what was taught: each picture's bytes and its caption, independent of order and file names."""
    pairs = sorted((p.sha256, p.caption) for p in pictures)
    return hashlib.sha256(json.dumps(pairs, ensure_ascii=False).encode()).hexdigest()


def tag_frequency(pictures: list[Picture]) -> dict[str, dict[str, int]]:
    """kohya's ss_tag_frequency: how often each comma-separated tag occurs, which A1111 shows for a LoRA."""
    counts: dict[str, int] = {}
    for picture in pictures:
        for tag in (t.strip() for t in picture.caption.split(",")):
            if tag:
                counts[tag] = counts.get(tag, 0) + 1
    return {"images": counts}


def fitted(image: np.ndarray, size: int) -> np.ndarray:
    """Scaled to cover a size x size square and centre-cropped to it."""
    return pixels.resize(image, size, size, "crop")
