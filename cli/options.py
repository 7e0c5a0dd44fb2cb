"""Typer options made from the one option table (core.request.options): flags, help, defaults and panels.

A command gets every option its task takes; it receives only the ones the user actually typed (or set
through an environment variable), as the `flags` layer of its request. Defaults, limits and checks
live in the table, so a flag, a preset and a settings file are held to the same rules.
"""

from __future__ import annotations

import functools
import inspect
from typing import Annotated, Any, Optional

import typer

from ..core.request import options as table



def explicit(ctx: typer.Context, name: str) -> bool:
    """Typed on the command line or set through its environment variable (by name: Typer may bundle its own click)."""
    source = ctx.get_parameter_source(name)
    return source is not None and source.name in ("COMMANDLINE", "ENVIRONMENT")


def _complete_scheduler(incomplete: str) -> list[str]:
    from ..core.sampling.schedulers import SCHEDULERS

    return [s.name for s in SCHEDULERS if s.name.startswith(incomplete)]


def _complete_preset(incomplete: str) -> list[str]:
    from .. import presets

    return [name for name, _, _ in presets.available() if name.startswith(incomplete)]


def _complete_noise_schedule(incomplete: str) -> list[str]:
    from ..core.sampling.noise_schedules import FAMILIES, SPACINGS

    return [name for name in (*SPACINGS, *FAMILIES) if name.startswith(incomplete)]


COMPLETIONS = {"scheduler": _complete_scheduler, "noise_schedule": _complete_noise_schedule}


def help_text(option: table.Option) -> str:
    limits = option.kind.describe()
    return option.help + (f" Range {limits}." if limits and isinstance(option.kind, (table.Int, table.Float)) else "")


def annotation(option: table.Option, **overrides) -> Any:
    """The Annotated type Typer reads for one option of the table."""
    kind = option.kind
    python_type = kind.python_type if kind.python_type in (int, float, bool) else str
    if kind.python_type is list:
        python_type = Optional[list[str]]
    elif option.default is None and python_type is not bool:
        python_type = Optional[python_type]
    settings = dict(help=help_text(option), rich_help_panel=option.panel, show_default=option.default not in (None, "", False, ()))
    if option.name in COMPLETIONS:
        settings["autocompletion"] = COMPLETIONS[option.name]
    if isinstance(kind, table.Text) and kind.choices:
        choices = [c for c in kind.choices if c]
        settings["metavar"] = "|".join(choices)
        settings["autocompletion"] = lambda incomplete: [c for c in choices if c.startswith(incomplete)]
    settings |= option.extra | overrides
    return Annotated[python_type, typer.Option(*option.flags, **settings)]


def alias(name: str, task: str = "txt2img", **overrides) -> Any:
    return annotation(table.option(task, name), **overrides)


def _display_default(option: table.Option) -> Any:
    if option.kind.python_type is list:
        return None
    return str(option.default) if isinstance(option.kind, (table.KeyframeSchedule, table.NoiseScheduleSpec, table.LogsnrShift)) else option.default


def command(task: str, skip: tuple[str, ...] = ()):
    """Give a command every option of `task` from the table; it is called with `flags`, the ones the user typed.

    Typer reads a function's signature; this extends it with the table's options and passes the
    command its own parameters plus `flags`.
    """

    def decorate(fn):
        signature = inspect.signature(fn, eval_str=True)
        own = [p for p in signature.parameters.values() if p.name != "flags"]
        taken = {p.name for p in own} | set(skip)
        added = [
            inspect.Parameter(o.name, inspect.Parameter.KEYWORD_ONLY, default=_display_default(o), annotation=annotation(o))
            for o in table.options_for(task).values()
            if o.name not in taken
        ]
        names = [p.name for p in added]

        @functools.wraps(fn)
        def wrapper(**kwargs):
            ctx: typer.Context = kwargs["ctx"]
            flags = {name: kwargs[name] for name in names if explicit(ctx, name)}
            return fn(flags=flags, **{p.name: kwargs[p.name] for p in own})

        params = [p.replace(kind=inspect.Parameter.KEYWORD_ONLY) for p in own] + added
        wrapper.__signature__ = signature.replace(parameters=params)  # inspect.signature prefers it to __wrapped__
        return wrapper

    return decorate


# ---------------------------------------------------------------- options of the CLI alone (not settings)

Preset = Annotated[Optional[str], typer.Option("--preset", help="A named bundle of defaults (see `scumble presets`); flags you type win.", rich_help_panel=table.SAMPLING, autocompletion=_complete_preset, show_default=False)]
Quiet = Annotated[bool, typer.Option("--quiet", "-q", help="No progress bar or summary.", rich_help_panel=table.OUTPUT)]
Json = Annotated[bool, typer.Option("--json", help="Print one JSON line per written image (path, seed, settings) on stdout.", rich_help_panel=table.OUTPUT)]
Replay = Annotated[Optional[str], typer.Option("--replay", help="Regenerate this image from its metadata, pixel-identical (its inputs must be unchanged).", rich_help_panel=table.SAMPLING, show_default=False)]
Inputs = Annotated[Optional[list[str]], typer.Argument(help="Image files, folders, globs, or - for an image on stdin.", show_default=False)]
