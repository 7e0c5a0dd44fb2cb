"""Read-only subcommands: info, models, schedulers, presets."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

JsonFlag = Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")]


def info(
    image: Annotated[Path, typer.Argument(help="A PNG written by scumble (or by A1111).", show_default=False)],
    json_out: JsonFlag = False,
) -> None:
    """Print the generation settings an image carries."""
    from ..core.records import metadata

    data = metadata.read_image_metadata(image)
    if data["parameters"] is None and data["record"] is None:
        from ..core.errors import InputError

        raise InputError(f"{image}: carries no generation metadata")
    if json_out:
        parsed = metadata.parse_a1111(data["parameters"]) if data["parameters"] else None
        print(json.dumps({"path": str(image), "size": data["size"], "parameters": parsed, "record": data["record"]}, indent=2))
        return
    if data["parameters"]:
        print(data["parameters"])
    if data["record"]:
        record = data["record"]
        print(f"\nscumble record: {record.get('task')} on {record.get('model', {}).get('name')} ({record.get('device')}, {record.get('dtype')}), replay with: scumble txt2img --replay {image}")


def models(json_out: JsonFlag = False) -> None:
    """List the built-in model and the diffusers models in the local Hugging Face cache."""
    from ..core.loading.sources import BUILTIN_MODELS, DEFAULT_MODEL

    rows = [{"name": name, "kind": "built-in" + (" (default)" if name == DEFAULT_MODEL else ""), "location": str(path)} for name, path in BUILTIN_MODELS.items()]
    rows += [{"name": repo, "kind": "hub cache", "location": str(path)} for repo, path in cached_diffusers_models()]
    if json_out:
        print(json.dumps(rows, indent=2))
        return
    from rich.console import Console
    from rich.table import Table

    table = Table("name", "kind", "location", box=None)
    for row in rows:
        table.add_row(row["name"], row["kind"], row["location"])
    Console().print(table)


def cached_diffusers_models() -> list[tuple[str, Path]]:
    """Hub repos in the local cache whose snapshot has a model_index.json (i.e. diffusers pipelines)."""
    from huggingface_hub import scan_cache_dir
    from huggingface_hub.errors import CacheNotFound

    try:
        cache = scan_cache_dir()
    except (CacheNotFound, OSError):
        return []
    found = []
    for repo in sorted(cache.repos, key=lambda r: r.repo_id):
        if repo.repo_type != "model":
            continue
        for revision in repo.revisions:
            if (revision.snapshot_path / "model_index.json").exists():
                found.append((repo.repo_id, revision.snapshot_path))
                break
    return found


def schedulers_cmd(json_out: JsonFlag = False) -> None:
    """List the schedulers (samplers) and noise schedules, one line each."""
    from ..core.sampling.schedulers import NOISE_SCHEDULE_SUMMARIES, SCHEDULERS

    if json_out:
        print(json.dumps({"schedulers": [{"name": s.name, "a1111": s.a1111, "diffusers": s.class_name, "aliases": list(s.aliases), "summary": s.summary} for s in SCHEDULERS], "noise_schedules": NOISE_SCHEDULE_SUMMARIES}, indent=2))
        return
    width = max(len(s.name) for s in SCHEDULERS)
    print("schedulers (--scheduler; A1111 names work too):")
    for s in SCHEDULERS:
        print(f"  {s.name:<{width}}  {s.a1111:<13} {s.summary}")
    print("\nnoise schedules (--noise-schedule):")
    for name, summary in NOISE_SCHEDULE_SUMMARIES.items():
        print(f"  {name:<{width}}  {summary}")


def presets_cmd(json_out: JsonFlag = False) -> None:
    """List the presets (built in, and from your config folder)."""
    from .. import presets

    rows = presets.available()
    if json_out:
        print(json.dumps([{"name": n, "description": d, "path": str(p), "settings": presets.load(n)} for n, d, p in rows], indent=2))
        return
    width = max((len(n) for n, _, _ in rows), default=0)
    for name, description, _ in rows:
        print(f"  {name:<{width}}  {description}")
    print(f"\nyour own: TOML files in {presets.user_presets_folder()}")
