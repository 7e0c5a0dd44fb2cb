"""Turning INPUT arguments (files, folders, globs, `-`) into images, one clear problem per bad input."""

from __future__ import annotations

import errno
import fnmatch
import glob
import hashlib
import io
import os
import stat
import sys
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..errors import InputError, first_line

IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".webp", ".bmp", ".tif", ".tiff"}

# 8192x8192 covers any picture a diffusion model is given; past it a few kilobytes of PNG can
# ask for gigabytes of pixels (a decompression bomb), so the header alone refuses the file.
MAX_PIXELS = 8192 * 8192
# Every input is read whole into memory; this bound makes `cat /dev/zero | scumble img2img -`
# stop after a fixed amount instead of eating the machine.
MAX_INPUT_BYTES = 256 * 1024 * 1024

# Pillow hands these to an outside program (Ghostscript) when it loads them: not for files we did not make.
_DELEGATED_FORMATS = {"EPS"}
_TEXT_LIMIT_ERRORS = ("Decompressed data too large", "Too much memory used in text chunks")


@dataclass(frozen=True)
class InputItem:
    label: str  # how messages name it
    path: Path | None  # None for standard input
    relative: Path  # mirrored under the output folder
    data: bytes | None = None  # standard input's bytes

    def read_bytes(self) -> bytes:
        if self.data is not None:
            return self.data
        return read_file(self.path, self.label)


def os_problem(exc: OSError) -> str:
    """An OSError as a short clause for one line ('permission denied', 'a symlink loop')."""
    if exc.errno == errno.ELOOP:
        return "a symlink loop"
    if exc.errno in (errno.ENOENT, errno.ENOTDIR):
        return "no such file"
    reason = exc.strerror or str(exc) or type(exc).__name__
    return f"cannot read it ({reason.splitlines()[0]})"


def special_kind(mode: int) -> str | None:
    """What a non-regular, non-folder file is, for the message that refuses it."""
    for test, name in ((stat.S_ISFIFO, "a named pipe"), (stat.S_ISCHR, "a character device"), (stat.S_ISBLK, "a block device"), (stat.S_ISSOCK, "a socket")):
        if test(mode):
            return name
    return None if stat.S_ISREG(mode) or stat.S_ISDIR(mode) else "not a regular file"


def _too_large(label: str) -> InputError:
    return InputError(f"{label}: larger than {MAX_INPUT_BYTES // 2**20} MiB, the most scumble reads for one input")


def read_capped(stream, label: str) -> bytes:
    """All of a binary stream, refusing it once it passes MAX_INPUT_BYTES."""
    chunks, total = [], 0
    while True:
        chunk = stream.read(min(1 << 20, MAX_INPUT_BYTES + 1 - total))
        if not chunk:
            return b"".join(chunks)
        chunks.append(chunk)
        total += len(chunk)
        if total > MAX_INPUT_BYTES:
            raise _too_large(label)


def read_file(path: Path, label: str | None = None) -> bytes:
    """A regular file's bytes, or one InputError line; never blocks on a fifo or reads a device."""
    label = str(path) if label is None else label
    try:
        mode = os.stat(path).st_mode
    except OSError as exc:
        raise InputError(f"{label}: {os_problem(exc)}") from exc
    if stat.S_ISDIR(mode):
        raise InputError(f"{label}: is a folder, not an image file")
    kind = special_kind(mode)
    if kind:
        raise InputError(f"{label}: is {kind}, not an image file (use - for standard input)")
    try:
        # O_NONBLOCK: if the file was swapped for a fifo since the stat, opening it must not wait for a writer.
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_NOCTTY", 0))
        with os.fdopen(fd, "rb") as stream:
            st = os.fstat(stream.fileno())
            if not stat.S_ISREG(st.st_mode):
                raise InputError(f"{label}: is {special_kind(st.st_mode) or 'a folder'}, not an image file")
            if st.st_size > MAX_INPUT_BYTES:
                raise _too_large(label)
            return read_capped(stream, label)
    except OSError as exc:
        raise InputError(f"{label}: {os_problem(exc)}") from exc


# ---------------------------------------------------------------- finding the inputs


def _walk(root: Path, recursive: bool, wanted, problems: list[tuple[str, str]]) -> list[tuple[Path, tuple[int, int]]]:
    """Files under root that `wanted(path)` accepts, with their (device, inode).

    Hidden names are skipped. Symlinked folders are followed once each (so a link back to an
    ancestor is reported as a loop rather than walked forever); an explicit stack, not recursion,
    so a deep tree cannot exhaust Python's stack.
    """
    found = []
    try:
        top = os.stat(root)
    except OSError as exc:
        problems.append((str(root), os_problem(exc)))
        return found
    stack = [(root, ((top.st_dev, top.st_ino),))]
    visited = {(top.st_dev, top.st_ino)}
    while stack:
        folder, ancestors = stack.pop()
        try:
            with os.scandir(folder) as it:
                names = sorted(entry.name for entry in it)
        except OSError as exc:
            problems.append((str(folder), "a symlink loop" if exc.errno == errno.ELOOP else f"cannot list this folder ({exc.strerror or first_line(exc)})"))
            continue
        for name in names:
            if name.startswith("."):
                continue
            path = folder / name
            try:
                st = os.stat(path)
            except OSError as exc:
                if exc.errno == errno.ELOOP:
                    problems.append((str(path), "a symlink loop, skipped"))
                elif wanted(path):
                    problems.append((str(path), "a broken symlink" if exc.errno == errno.ENOENT else os_problem(exc)))
                continue
            key = (st.st_dev, st.st_ino)
            if stat.S_ISDIR(st.st_mode):
                if not recursive:
                    continue
                if key in ancestors:
                    problems.append((str(path), "a symlink loop (links back to a folder above it), not followed"))
                elif key not in visited:  # a second link to a folder already walked
                    visited.add(key)
                    stack.append((path, ancestors + (key,)))
            elif wanted(path):
                if stat.S_ISREG(st.st_mode):
                    found.append((path, key))
                else:
                    problems.append((str(path), f"is {special_kind(st.st_mode)}, not an image file"))
    return sorted(found)


def _glob_matches(parts: list[str], patterns: list[str]) -> bool:
    """Whether path components match pattern components, `**` standing for any number of them."""
    if not patterns:
        return not parts
    if patterns[0] == "**":
        return any(_glob_matches(parts[i:], patterns[1:]) for i in range(len(parts) + 1))
    return bool(parts) and fnmatch.fnmatchcase(parts[0], patterns[0]) and _glob_matches(parts[1:], patterns[1:])


def _glob(pattern: str, recursive: bool, problems: list[tuple[str, str]]) -> list[tuple[Path, tuple[int, int]]]:
    components = pattern.split(os.sep)
    if not (recursive and "**" in components):
        found = []
        for p in sorted(glob.glob(pattern)):
            try:
                st = os.stat(p)
            except OSError as exc:
                problems.append((p, "a broken symlink" if exc.errno == errno.ENOENT else os_problem(exc)))
                continue
            if stat.S_ISREG(st.st_mode):
                found.append((Path(p), (st.st_dev, st.st_ino)))
            elif not stat.S_ISDIR(st.st_mode):
                problems.append((p, f"is {special_kind(st.st_mode)}, not an image file"))
        return found
    # glob.glob follows symlinked folders under **: two links back to a parent make it walk 2^40 paths.
    # So ** is matched against a loop-safe walk from the pattern's literal prefix.
    first = next(i for i, c in enumerate(components) if glob.has_magic(c))
    root = Path(os.sep.join(components[:first]) or ("/" if pattern.startswith(os.sep) else "."))
    if not root.is_dir():
        return []
    rest = components[first:]
    return _walk(root, True, lambda p: _glob_matches(list(p.relative_to(root).parts), rest), problems)


def expand(arguments: list[str], recursive: bool = False) -> tuple[list[InputItem], list[tuple[str, str]]]:
    """Every image the arguments name, in order, and a (label, problem) for each argument that names none.

    A file reached twice (named twice, or by a link and by its own name) is kept once.
    """
    items: list[InputItem] = []
    problems: list[tuple[str, str]] = []
    seen: set[tuple[int, int]] = set()
    stdin_read = False

    def add(path: Path, key: tuple[int, int], relative: Path) -> None:
        if key not in seen:
            seen.add(key)
            items.append(InputItem(str(path), path, relative))

    for arg in arguments:
        if arg == "-":
            if stdin_read:
                problems.append(("<stdin>", "- given twice; standard input can be read only once"))
                continue
            stdin_read = True
            try:
                items.append(InputItem("<stdin>", None, Path("stdin.png"), read_capped(sys.stdin.buffer, "<stdin>")))
            except InputError as exc:
                problems.append(("<stdin>", str(exc)))
            except OSError as exc:
                problems.append(("<stdin>", os_problem(exc)))
            continue
        path = Path(arg).expanduser()
        try:
            st = os.stat(path)
        except OSError as exc:
            if exc.errno not in (errno.ENOENT, errno.ENOTDIR):
                problems.append((arg, os_problem(exc)))
            elif glob.has_magic(arg):
                found = _glob(str(path), recursive, problems)
                if not found:
                    problems.append((arg, "matches no files"))
                for p, key in found:
                    add(p, key, Path(p.name))
            else:
                problems.append((arg, "a broken symlink" if path.is_symlink() else "no such file or folder"))
            continue
        if stat.S_ISDIR(st.st_mode):
            found = _walk(path, recursive, lambda p: p.suffix.lower() in IMAGE_SUFFIXES, problems)
            if not found:
                hint = "" if recursive else " (pass --recursive to look in subfolders)"
                problems.append((arg, f"no images in this folder{hint}"))
            for p, key in found:
                add(p, key, p.relative_to(path))
        elif stat.S_ISREG(st.st_mode):
            add(path, (st.st_dev, st.st_ino), Path(path.name))
        else:
            problems.append((arg, f"is {special_kind(st.st_mode)}, not an image file (use - for standard input)"))
    return items, problems


# ---------------------------------------------------------------- decoding


def check_pixels(size: tuple[int, int], label: str) -> None:
    """Refuse, from the header alone, an image too large to decode safely."""
    width, height = size
    if width * height > MAX_PIXELS:
        raise InputError(f"{label}: {width}x{height} is {width * height:,} pixels, over the limit of {MAX_PIXELS:,} (8192x8192); refused as a possible decompression bomb")


def is_text_limit(exc: Exception) -> bool:
    return isinstance(exc, ValueError) and any(s in str(exc) for s in _TEXT_LIMIT_ERRORS)


def text_limit_message(label: str) -> str:
    from PIL import PngImagePlugin

    limit = PngImagePlugin.MAX_TEXT_CHUNK
    shown = f"{limit // 2**20} MiB" if limit % 2**20 == 0 else f"{limit:,} bytes"
    return f"{label}: a PNG text chunk inflates past Pillow's limit of {shown} (PngImagePlugin.MAX_TEXT_CHUNK); refused as a possible decompression bomb"


def decode_rgb(data: bytes, label: str) -> np.ndarray:
    """Decode fully (so a truncated file fails here, not half-way through a batch), upright, as RGB."""
    from PIL import Image, ImageOps, UnidentifiedImageError

    try:
        with warnings.catch_warnings():
            # Pillow only warns between its own limit and twice it; an error is what stops the decode.
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(io.BytesIO(data)) as img:
                check_pixels(img.size, label)
                if img.format in _DELEGATED_FORMATS:
                    raise InputError(f"{label}: {img.format} files are not read (Pillow would run an outside program on them)")
                img.load()
                return to_rgb(ImageOps.exif_transpose(img), label)
    except InputError:
        raise
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        raise InputError(f"{label}: over the limit of {MAX_PIXELS:,} pixels (8192x8192); refused as a possible decompression bomb") from exc
    except UnidentifiedImageError as exc:
        raise InputError(f"{label}: not an image") from exc
    except MemoryError as exc:
        raise InputError(f"{label}: too large to decode in the memory available") from exc
    except Exception as exc:  # a file from anywhere can trip any of Pillow's decoders; each is this input's problem, not the batch's
        if is_text_limit(exc):
            raise InputError(text_limit_message(label)) from exc
        raise InputError(f"{label}: unreadable or truncated image ({first_line(exc)})") from exc


def to_rgb(img, label: str) -> np.ndarray:
    """Any Pillow mode as 8-bit RGB: deep modes scaled (not clipped), alpha composited on white."""
    from PIL import Image

    mode = img.mode
    if mode.startswith("I;16") or mode == "I":
        values = np.asarray(img)
        if values.size and (values.min() < 0 or values.max() > 65535):
            raise InputError(f"{label}: 32-bit integer pixels outside 0..65535 (found {values.min()}..{values.max()}); save it as an 8- or 16-bit image")
        grey = ((values.astype(np.uint32) * 255 + 32767) // 65535).astype(np.uint8)  # 65535 -> 255: divide by 257, rounded
        key = img.info.get("transparency")
        if isinstance(key, int):
            grey[values == key] = 255
        return np.ascontiguousarray(np.repeat(grey[..., None], 3, axis=2))
    if mode == "F":
        values = np.asarray(img, dtype=np.float32)
        if values.size and not (np.isfinite(values).all() and values.min() >= 0.0 and values.max() <= 1.0):
            finite = values[np.isfinite(values)]
            found = f"{finite.min():g}..{finite.max():g}" if finite.size else "no finite values"
            raise InputError(f"{label}: floating-point pixels outside 0..1 (found {found}{', and NaN or infinity' if finite.size < values.size else ''}); only 0..1 float images are read")
        grey = np.round(values * 255).astype(np.uint8)
        return np.ascontiguousarray(np.repeat(grey[..., None], 3, axis=2))
    try:
        if "A" in img.getbands() or "a" in img.getbands() or "transparency" in img.info:
            background = Image.new("RGBA", img.size, (255, 255, 255, 255))
            img = Image.alpha_composite(background, img.convert("RGBA"))
        return np.asarray(img.convert("RGB"))
    except ValueError as exc:
        raise InputError(f"{label}: pixel mode {mode} cannot be converted to RGB ({first_line(exc)})") from exc


def decode_mask(data: bytes, label: str) -> np.ndarray:
    rgb = decode_rgb(data, label)
    return np.asarray(rgb.mean(axis=2).round().astype(np.uint8))


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()
