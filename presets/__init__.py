"""Named bundles of option defaults: TOML files here, or in the user's config folder (which wins)."""

from __future__ import annotations

import os
import tomllib
from pathlib import Path

from ..core.errors import UsageError

PACKAGE_PRESETS = Path(__file__).resolve().parent


def user_presets_folder() -> Path:
    return Path(os.environ.get("XDG_CONFIG_HOME", Path.home() / ".config")) / "scumble" / "presets"


def _files() -> dict[str, Path]:
    found = {p.stem: p for p in sorted(PACKAGE_PRESETS.glob("*.toml"))}
    folder = user_presets_folder()
    if folder.is_dir():
        found.update({p.stem: p for p in sorted(folder.glob("*.toml"))})
    return found


def load(name: str) -> dict:
    """The preset's settings: top-level keys apply to every subcommand, a [command] table to that one."""
    files = _files()
    if name not in files:
        raise UsageError(f"--preset: unknown preset {name!r}; choose from {', '.join(sorted(files)) or '(none)'}")
    try:
        return tomllib.loads(files[name].read_text())
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise UsageError(f"--preset {name}: {files[name]} is not valid TOML ({exc})") from exc


def for_command(name: str, command: str) -> dict:
    data = load(name)
    values = {k: v for k, v in data.items() if not isinstance(v, dict) and k != "description"}
    values.update(data.get(command, {}))
    return values


def available() -> list[tuple[str, str, Path]]:
    out = []
    for name, path in _files().items():
        try:
            description = tomllib.loads(path.read_text()).get("description", "")
        except (OSError, tomllib.TOMLDecodeError):
            description = "(unreadable)"
        out.append((name, description, path))
    return out
