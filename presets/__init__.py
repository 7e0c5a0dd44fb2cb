"""Named bundles of option defaults: TOML files here, or in the user's config folder (which wins)."""

from __future__ import annotations

import os
import tomllib
from pathlib import Path

from ..core.errors import ScumbleError, UsageError

PACKAGE_PRESETS = Path(__file__).resolve().parent


def user_presets_folder() -> Path:
    return Path(os.environ.get("XDG_CONFIG_HOME", Path.home() / ".config")) / "scumble" / "presets"


def _files() -> dict[str, Path]:
    found = {p.stem: p for p in sorted(PACKAGE_PRESETS.glob("*.toml"))}
    folder = user_presets_folder()
    if folder.is_dir():
        found.update({p.stem: p for p in sorted(folder.glob("*.toml"))})
    return found


TASKS = ("txt2img", "img2img", "inpaint", "animate")


def load(name: str) -> dict:
    """The preset's settings: top-level keys apply to every subcommand, a [command] table to that one."""
    from ..core.request.files import read_table

    files = _files()
    if name not in files:
        raise UsageError(f"--preset: unknown preset {name!r}; choose from {', '.join(sorted(files)) or '(none)'}")
    try:
        return read_table(files[name], f"--preset {name}:")
    except ScumbleError as exc:
        raise UsageError(str(exc)) from None


def layers(name: str, task: str) -> list:
    """The request layers a preset gives `task`: its shared top level, then its own [task] table."""
    from ..core.request.build import Layer

    data = load(name)
    shared = {k: v for k, v in data.items() if k != "description" and k not in TASKS}
    own = data.get(task, {})
    if not isinstance(own, dict):
        raise UsageError(f"--preset {name}: [{task}] must be a table")
    return [Layer(f"--preset {name}", shared, shared=True), Layer(f"--preset {name} [{task}]", own)]


def available() -> list[tuple[str, str, Path]]:
    out = []
    for name, path in _files().items():
        try:
            description = str(tomllib.loads(path.read_text(encoding="utf-8")).get("description", ""))
        except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError):
            description = "(unreadable)"
        out.append((name, description, path))
    return out
