"""scumble train-lora: teach a model a subject or style from a few pictures; write a kohya-layout LoRA."""

from __future__ import annotations

import sys
from typing import Annotated, Optional

import typer

from . import options as opt

EXAMPLES = """Examples:

  scumble train-lora crosses/ --trigger zxc -o cross.safetensors

  scumble train-lora photos/*.jpg --caption "a photo of zxc dog" --model ./sd15 --class-prompt "a photo of a dog" -o dog.safetensors

  scumble train-lora crosses/ -o cross.safetensors --resume   (after a killed run: goes on from its last checkpoint)

  scumble txt2img "a red cross on a blue background" --lora cross.safetensors
"""


@opt.command("train-lora")
def train_lora(ctx: typer.Context, flags: dict, images: Annotated[Optional[list[str]], typer.Argument(help="Training pictures: files, folders or globs. Each needs a caption: NAME.txt beside it, or --caption.", show_default=False)] = None, quiet: opt.Quiet = False) -> None:
    """Train a LoRA on a few captioned pictures, for SD 1.x and 2.x models (the built-in one included)."""
    from dataclasses import fields
    from pathlib import Path

    from ..core.errors import UsageError
    from ..core.request.build import FLAGS, Layer, merge
    from ..training.lora.train import Job, Settings, train

    values, _ = merge("train-lora", [Layer(FLAGS, flags)])
    if not values["output"]:
        raise UsageError("-o NAME.safetensors: say where to write the LoRA")
    plural = {"class_prompts": "class_prompt", "sample_prompts": "sample_prompt"}  # the library's names for the repeated flags
    settings = Settings(**{f.name: values[plural.get(f.name, f.name)] for f in fields(Settings) if plural.get(f.name, f.name) in values})
    job = Job(images=tuple(images or ()), output=Path(values["output"]).expanduser(), **{k: values[k] for k in ("model", "caption", "config", "allow_pickle", "device", "overwrite", "resume")})
    with TrainingReporter(quiet) as reporter:
        result = train(job, settings, reporter)
    if not quiet:
        resumed = f", resumed at step {result.resumed_at}" if result.resumed_at else ""
        sheet = f"; samples in {result.sheet}" if result.sheet else ""
        reporter.say(f"wrote {result.path} ({result.steps} steps{resumed}, loss {result.loss:.4f}, {result.seconds:.0f}s){sheet}")


class TrainingReporter:
    """A progress bar with the loss and the time left, on a terminal; elsewhere a line every tenth of the run."""

    def __init__(self, quiet: bool):
        self.quiet = quiet
        self.progress = None
        self.task = None
        self.total = 0
        self.recent: list[float] = []

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        if self.progress:
            self.progress.stop()
        return False

    def start(self, total: int, done: int) -> None:
        self.total = total
        if self.quiet or not sys.stderr.isatty():
            return
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

        from .render import stderr

        self.progress = Progress(TextColumn("steps"), BarColumn(), MofNCompleteColumn(), TextColumn("loss {task.fields[loss]}"), TimeElapsedColumn(), TextColumn("ETA"), TimeRemainingColumn(), console=stderr, transient=True)
        self.progress.start()
        self.task = self.progress.add_task("steps", total=total, completed=done, loss="-")

    def step(self, step: int, loss: float) -> None:
        self.recent = (self.recent + [loss])[-20:]  # one step's loss jumps with its timestep: show a running mean
        mean = sum(self.recent) / len(self.recent)
        if self.progress:
            self.progress.update(self.task, completed=step, loss=f"{mean:.4f}")
        elif not self.quiet and (step % max(1, self.total // 10) == 0 or step == self.total):
            print(f"step {step}/{self.total} loss {mean:.4f}", file=sys.stderr, flush=True)

    def notice(self, message: str) -> None:
        if not self.quiet:
            self.say(f"notice: {message}")

    def say(self, text: str) -> None:
        from .render import printable

        if self.progress:
            self.progress.console.print(printable(text), markup=False, highlight=False)
        else:
            print(printable(text), file=sys.stderr, flush=True)


train_lora.__doc__ += "\n\n" + EXAMPLES
