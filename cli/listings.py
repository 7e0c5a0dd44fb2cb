"""Read-only subcommands: info, models, schedulers, presets."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

JsonFlag = Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")]


REPLAYABLE_TASKS = ("txt2img", "img2img", "inpaint")
INFO_LINE_LIMIT = 20_000  # a long prompt is what `info` is asked for; a megabyte of text chunk is not


def shell_word(text: str) -> str:
    """One shell word for a path: shlex quoting, or bash's $'...' when the name holds control characters."""
    import shlex

    from .render import printable

    if printable(text, limit=len(text)) == text:
        return shlex.quote(text)
    inner = printable(text.replace("\\", "\\\\").replace("'", "\\'"), limit=len(text) * 2)
    return f"$'{inner}'"


def info(
    image: Annotated[Path, typer.Argument(help="A PNG written by scumble (or by A1111).", show_default=False)],
    json_out: JsonFlag = False,
) -> None:
    """Print the generation settings an image carries.

    Examples:

      scumble info out/00000-42-a_red_circle.png

      scumble info photo.jpg --json | jq .parameters.Seed
    """
    from ..core.errors import InputError
    from ..core.records import metadata
    from .render import printable, warning_line

    data = metadata.read_image_metadata(image)
    parameters, record, problem = data["parameters"], data["record"], data.get("record_problem")
    if parameters is None and record is None:
        raise InputError(f"{image}: carries no generation metadata" + (f" (its scumble record {problem})" if problem else ""))
    if problem:
        warning_line(f"{image}: its scumble record {problem}; ignored")
    if json_out:
        parsed = metadata.parse_a1111(parameters) if parameters else None
        print(json.dumps({"path": str(image), "size": data["size"], "parameters": parsed, "record": record}, indent=2))
        return
    if parameters:
        # Line by line: the text's own newlines are its layout; anything else that moves the cursor is escaped.
        print("\n".join(printable(line, INFO_LINE_LIMIT) for line in parameters.split("\n")))
    if record:
        task = record.get("task")
        model = record.get("model") if isinstance(record.get("model"), dict) else {}
        line = f"scumble record: {task or 'unknown task'} on {model.get('name') or 'an unnamed model'} ({record.get('device')}, {record.get('dtype')})"
        if task in REPLAYABLE_TASKS:
            line += f", replay with: scumble {task} --replay {shell_word(str(image))}"
        else:
            line += f", not replayable (its task is not one of {', '.join(REPLAYABLE_TASKS)})"
        print("\n" + printable(line, INFO_LINE_LIMIT))


def models(json_out: JsonFlag = False) -> None:
    """List the built-in model and the diffusers models in the local Hugging Face cache.

    Examples:

      scumble models

      scumble models --json | jq -r '.[].name'
    """
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
    """List the schedulers (samplers) and noise schedules, one line each.

    Examples:

      scumble schedulers

      scumble schedulers --json | jq -r '.schedulers[].a1111'
    """
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
    """List the presets (built in, and from your config folder).

    Examples:

      scumble presets

      scumble txt2img "a red circle" --preset fast
    """
    from .. import presets

    rows = presets.available()
    if json_out:
        print(json.dumps([{"name": n, "description": d, "path": str(p), "settings": presets.load(n)} for n, d, p in rows], indent=2))
        return
    width = max((len(n) for n, _, _ in rows), default=0)
    for name, description, _ in rows:
        print(f"  {name:<{width}}  {description}")
    print(f"\nyour own: TOML files in {presets.user_presets_folder()}")
