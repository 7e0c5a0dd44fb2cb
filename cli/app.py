"""The `scumble` command: subcommands registered here, and the one boundary where errors become messages."""

from __future__ import annotations

import os
import sys

import typer
from typer.core import TyperGroup

from .. import __version__
from ..core.errors import ScumbleError

from . import animate, grid, img2img, inpaint, listings, preprocess, prompt, schedules, train_lora, txt2img, upscale
from .render import error_line


def _debug() -> bool:
    return os.environ.get("SCUMBLE_DEBUG", "") not in ("", "0")


class ScumbleGroup(TyperGroup):
    """Turns domain errors into one line on stderr and an exit code (2 usage, 1 run time)."""

    def invoke(self, ctx: typer.Context):
        try:
            return super().invoke(ctx)
        except ScumbleError as exc:
            if _debug():
                raise
            error_line(str(exc))
            raise typer.Exit(exc.exit_code) from None
        except KeyboardInterrupt:
            error_line("interrupted")
            raise typer.Exit(130) from None
        except typer.TyperException as exc:
            if type(exc).__name__ == "NoArgsIsHelpError" or not hasattr(exc, "format_message"):
                raise
            # Typer draws usage errors in a multi-line box; scripts want one line they can grep.
            where = getattr(getattr(exc, "ctx", None), "command_path", "scumble")
            message = exc.format_message().replace("Got unexpected extra arguments", "extra arguments").replace("Got unexpected extra argument", "an extra argument")
            error_line(f"{message} (see {where} --help)")
            raise typer.Exit(getattr(exc, "exit_code", 2)) from None
        except (typer.Exit, typer.Abort, BrokenPipeError):
            raise
        except Exception as exc:  # noqa: BLE001 - the last line of defence: never a bare traceback
            if _debug():
                raise
            error_line(system_message(exc))
            raise typer.Exit(1) from None


def system_message(exc: BaseException) -> str:
    """What the machine refused (disk, memory, a file), said plainly; anything else names the library call that failed."""
    if isinstance(exc, OSError):
        where = f"{exc.filename}: " if exc.filename else ""
        return f"{where}{exc.strerror or exc}"
    if isinstance(exc, MemoryError):
        return "out of memory: try a smaller --width/--height or --batch-size, or --dtype bf16"
    if isinstance(exc, RecursionError):
        return "an input is nested too deeply to read"
    first = str(exc).splitlines()[0][:200] if str(exc) else ""
    return f"{type(exc).__name__} in a library call: {first} (rerun with --debug for the traceback, and please report it)"


app = typer.Typer(
    cls=ScumbleGroup,
    name="scumble",
    help="Stable Diffusion from the command line: generate, edit and animate, on a GPU or the CPU.",
    no_args_is_help=True,
    add_completion=True,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
    context_settings={"help_option_names": ["-h", "--help"]},
)


def _version(value: bool) -> None:
    if value:
        print(f"scumble {__version__}")
        raise typer.Exit()


@app.callback()
def root(
    debug: bool = typer.Option(False, "--debug", help="Show full tracebacks instead of one-line errors."),
    version: bool = typer.Option(False, "--version", callback=_version, is_eager=True, help="Print the version and exit."),
) -> None:
    if debug:
        os.environ["SCUMBLE_DEBUG"] = "1"


app.command("txt2img", no_args_is_help=True)(txt2img.txt2img)
app.command("img2img", no_args_is_help=True)(img2img.img2img)
app.command("inpaint", no_args_is_help=True)(inpaint.inpaint)
app.command("animate", no_args_is_help=True)(animate.animate)
app.command("grid", no_args_is_help=True)(grid.grid)
app.command("preprocess", no_args_is_help=True)(preprocess.preprocess)
app.command("upscale", no_args_is_help=True)(upscale.upscale)
app.command("train-lora", no_args_is_help=True)(train_lora.train_lora)
app.add_typer(schedules.app, name="schedules")
app.command("prompt", no_args_is_help=True)(prompt.prompt)
app.command("info")(listings.info)
app.command("models")(listings.models)
app.command("schedulers")(listings.schedulers_cmd)
app.command("presets")(listings.presets_cmd)


def main() -> None:
    try:
        app(prog_name="scumble")  # also names the completion variable, _SCUMBLE_COMPLETE, however scumble was started
    except BrokenPipeError:  # `scumble ... | head` closed the pipe: not an error worth a message
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        sys.exit(1)
