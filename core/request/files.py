"""Reading the text files settings come from (presets, settings files, prompt files), bounded and checked."""

from __future__ import annotations

import json
import sys
import tomllib
from pathlib import Path

from ..errors import InputError, UsageError

MAX_SETTINGS_BYTES = 4 * 1024 * 1024
MAX_PROMPT_FILE_BYTES = 16 * 1024 * 1024
MAX_DEPTH = 32


def read_bounded(path: Path | str, limit: int, what: str) -> bytes:
    """At most `limit` bytes from a file or standard input ('-'); /dev/zero or a huge file fails at once."""
    try:
        if str(path) == "-":
            data = sys.stdin.buffer.read(limit + 1)
        else:
            with open(Path(path).expanduser(), "rb") as fh:
                data = fh.read(limit + 1)
    except FileNotFoundError:
        raise InputError(f"{what} {path}: no such file") from None
    except IsADirectoryError:
        raise InputError(f"{what} {path}: is a folder, not a file") from None
    except OSError as exc:
        raise InputError(f"{what} {path}: cannot read it ({exc.strerror or exc})") from None
    if len(data) > limit:
        raise InputError(f"{what} {path}: larger than {limit // (1024 * 1024)} MiB")
    return data


def decode_utf8(data: bytes, what: str) -> str:
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise InputError(f"{what}: not UTF-8 text (byte {exc.start})") from None


def depth(value, limit: int = MAX_DEPTH, level: int = 0) -> int:
    if level > limit:
        return level
    if isinstance(value, dict):
        return max((depth(v, limit, level + 1) for v in value.values()), default=level)
    if isinstance(value, list):
        return max((depth(v, limit, level + 1) for v in value), default=level)
    return level


def read_table(path: Path | str, what: str) -> dict:
    """A TOML (.toml) or JSON file holding a table; one clear error otherwise."""
    kind = "TOML" if str(path).lower().endswith(".toml") else "JSON"
    text = decode_utf8(read_bounded(path, MAX_SETTINGS_BYTES, what), f"{what} {path}")
    try:
        data = tomllib.loads(text) if kind == "TOML" else json.loads(text)
    except RecursionError:
        raise InputError(f"{what} {path}: nested more than {MAX_DEPTH} levels deep") from None
    except ValueError as exc:
        raise InputError(f"{what} {path}: not valid {kind} ({str(exc).splitlines()[0][:200]})") from None
    if not isinstance(data, dict):
        raise InputError(f"{what} {path}: expected a table of settings, found a {type(data).__name__}")
    if depth(data) > MAX_DEPTH:
        raise InputError(f"{what} {path}: nested more than {MAX_DEPTH} levels deep")
    return data


def read_prompt_file(path: str) -> list[str]:
    """One prompt a line ('-' reads standard input); blank lines and # comments skipped."""
    text = decode_utf8(read_bounded(path, MAX_PROMPT_FILE_BYTES, "--prompt-file"), f"--prompt-file {path}")
    prompts = [line.strip() for line in text.splitlines() if line.strip() and not line.lstrip().startswith("#")]
    if not prompts:
        raise UsageError(f"--prompt-file {path}: holds no prompts (one a line; # starts a comment)")
    return prompts
