"""Where results go: file names that stay inside the output folder, and writes that are all or nothing."""

from __future__ import annotations

import glob
import io
import os
import re
import stat
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

from ..errors import ScumbleError, UsageError

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".webp")
DEFAULT_FOLDER = Path("outputs")
DEFAULT_PATTERN = "{index:05}-{seed}-{prompt}"
_UNSAFE = re.compile(r"[^\w.-]+")  # \w is Unicode: a CJK or Arabic prompt keeps its letters


def slug(text: str, limit: int = 60) -> str:
    """A file-name-safe fragment: letters of any script, digits, . _ -; no separators, no leading dots, never empty."""
    import unicodedata

    cleaned = _UNSAFE.sub("_", unicodedata.normalize("NFC", text.strip())).strip("._-")
    cleaned = re.sub(r"_+", "_", cleaned)[:limit].rstrip("._-")
    return cleaned or "image"


@dataclass(frozen=True)
class OutputPlan:
    """Either one named file, standard output, or a folder filled by a name pattern."""

    kind: str  # file | stdout | folder
    path: Path | None = None
    pattern: str = DEFAULT_PATTERN

    @classmethod
    def from_option(cls, output: str | None, count: int, pattern: str = DEFAULT_PATTERN) -> "OutputPlan":
        if output == "-":
            if count != 1:
                raise UsageError(f"-o -: standard output takes one image, but this run makes {count}")
            return stdout_plan()
        if output is None:
            return cls("folder", DEFAULT_FOLDER, pattern)
        path = Path(output).expanduser()
        if is_special(path):
            if count != 1:
                raise UsageError(f"-o {output} is a device or pipe: it takes one image, but this run makes {count}")
            return cls("file", path)
        if output.endswith(("/", os.sep)) or path.is_dir() or not path.suffix:
            return cls("folder", path, pattern)
        if path.suffix.lower() not in IMAGE_SUFFIXES and not is_special(path):
            raise UsageError(f"-o {output}: name a .png, .jpg or .webp file, a folder, or - for standard output")
        if count != 1:
            raise UsageError(f"-o {output} names one file, but this run makes {count} images; give a folder instead (-o {path.with_suffix('')}/)")
        return cls("file", path)

    def target(self, **fields) -> Path | None:
        """The path for one image (None for stdout); pattern fields are made safe first."""
        if self.kind == "stdout":
            return None
        if self.kind == "file":
            return self.path
        safe = {k: slug(v) if isinstance(v, str) else v for k, v in fields.items()}
        try:
            name = self.pattern.format(**safe)
        except (KeyError, IndexError, ValueError) as exc:
            raise UsageError(f"--name {self.pattern!r}: bad pattern ({exc}); fields are {', '.join(sorted(fields))}") from exc
        name = "/".join(slug(part, 120) for part in name.split("/") if part not in ("", ".", ".."))
        target = (self.path / (name + ".png")).resolve()
        if not target.is_relative_to(self.path.resolve()):
            raise UsageError(f"--name {self.pattern!r}: would write outside {self.path}")
        return target


def mirrored_plan(option: str | None, arguments, items: list) -> OutputPlan:
    """Where outputs named after their inputs go: one file (one input), standard output, or a folder mirroring the inputs."""
    single = len(items) == 1 and len(arguments) == 1 and not Path(arguments[0]).is_dir()
    if option == "-":
        if not single:
            raise UsageError(f"-o -: standard output takes one image, but {len(items)} inputs were given")
        return stdout_plan()
    if option and single and (is_special(Path(option)) or Path(option).suffix.lower() in IMAGE_SUFFIXES) and not Path(option).is_dir():
        return OutputPlan("file", Path(option).expanduser())
    if option and Path(option).suffix and not Path(option).is_dir():
        raise UsageError(f"-o {option}: many inputs need a folder (-o {Path(option).with_suffix('')}/)")
    return OutputPlan("folder", Path(option).expanduser() if option else DEFAULT_FOLDER)


def mirrored_target(plan: OutputPlan, item) -> Path | None:
    """An input's output path: its path below the input folder, kept below the output folder, as .png."""
    if plan.kind != "folder":
        return plan.path
    parts = [slug(part, 120) for part in item.relative.with_suffix("").parts if part not in ("", ".", "..")]
    target = (plan.path / Path(*parts)).with_suffix(".png").resolve()
    if not target.is_relative_to(plan.path.resolve()):
        raise ScumbleError(f"{item.label}: its name would write outside {plan.path}")
    return target


def stdout_plan() -> "OutputPlan":
    """PNG bytes on standard output, which must not be a terminal (they would garble it)."""
    if sys.stdout.isatty():
        raise UsageError("-o -: standard output is a terminal; redirect it to a file or a pipe (scumble ... -o - > out.png)")
    return OutputPlan("stdout")


def is_special(path: Path) -> bool:
    """A device, fifo or socket: written to directly, never replaced."""
    try:
        mode = path.stat().st_mode
    except OSError:
        return False
    return not stat.S_ISREG(mode) and not stat.S_ISDIR(mode)


def _umask() -> int:
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def refuse_existing(path: Path | None, overwrite: bool) -> None:
    """Fail before any work when a regular file is in the way (devices and pipes are written to directly)."""
    if path is not None and path.exists() and not overwrite and not is_special(path):
        raise ScumbleError(f"{path}: already exists (pass --overwrite to replace it)")


def encode_png(image, text: dict[str, str] | None = None, compress_level: int = 6) -> bytes:
    from PIL.PngImagePlugin import PngInfo

    info = PngInfo()
    for key, value in (text or {}).items():
        info.add_itxt(key, value) if not value.isascii() else info.add_text(key, value)
    buffer = io.BytesIO()
    image.save(buffer, format="PNG", pnginfo=info, compress_level=compress_level)
    return buffer.getvalue()


def encode_image(image, text: dict[str, str], path: Path | None, quality: int = 90) -> bytes:
    """PNG with text chunks; JPEG or WebP (by the file's suffix) with A1111's EXIF UserComment and our record in XMP."""
    suffix = path.suffix.lower() if path is not None and not is_special(path) else ".png"
    if suffix == ".png":
        return encode_png(image, text)
    from PIL import ExifTags, Image

    from .metadata import PARAMETERS_KEY, RECORD_KEY, xmp_packet

    exif = Image.Exif()
    # A1111's way (piexif's): "UNICODE\0" then UTF-16 big-endian, which sd-parsers and A1111's PNG Info read
    exif.get_ifd(ExifTags.IFD.Exif)[ExifTags.Base.UserComment] = b"UNICODE\0" + text[PARAMETERS_KEY].encode("utf-16-be")
    buffer = io.BytesIO()
    fmt = "JPEG" if suffix in (".jpg", ".jpeg") else "WEBP"
    image.convert("RGB").save(buffer, format=fmt, quality=quality, exif=exif, xmp=xmp_packet(text[RECORD_KEY]))
    return buffer.getvalue()


def write_bytes(data: bytes, path: Path | None, overwrite: bool = False) -> None:
    """Write atomically (temp file in the same folder, then rename); devices and pipes are written directly."""
    if path is None:
        sys.stdout.buffer.write(data)
        sys.stdout.buffer.flush()
        return
    if is_special(path):
        try:
            with open(path, "wb") as fh:
                fh.write(data)
        except OSError as exc:
            raise ScumbleError(f"{path}: could not write ({exc.strerror or exc})") from None
        return
    if path.exists() and not overwrite:
        raise ScumbleError(f"{path}: already exists (pass --overwrite to replace it)")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ScumbleError(f"{path.parent}: cannot create the output folder ({exc.strerror})") from exc
    for stale in path.parent.glob(f".{glob.escape(path.name)}.*.tmp"):  # left by a process killed mid-write (kill -9)
        stale.unlink(missing_ok=True)
    tmp = None
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
        os.fchmod(fd, 0o666 & ~_umask())  # mkstemp makes 0600; a written image should get the usual permissions
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except OSError as exc:
        if tmp and os.path.exists(tmp):
            os.unlink(tmp)
        raise ScumbleError(f"{path}: could not write ({exc.strerror or exc})") from exc
