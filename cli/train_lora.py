"""scumble train-lora: teach a model a subject or style from a few pictures; write a kohya-layout LoRA."""

from __future__ import annotations

import sys
from typing import Annotated, Optional

import typer

from . import options as opt

TRAINING, DATA, PRIOR, WATCH = "Training", "Pictures and captions", "Prior preservation", "Samples and checkpoints"

EXAMPLES = """Examples:

  scumble train-lora crosses/ --trigger zxc -o cross.safetensors

  scumble train-lora photos/*.jpg --caption "a photo of zxc dog" --model ./sd15 --class-prompt "a photo of a dog" -o dog.safetensors

  scumble train-lora crosses/ -o cross.safetensors --resume   (after a killed run: goes on from its last checkpoint)

  scumble txt2img "a red cross on a blue background" --lora cross.safetensors
"""


def train_lora(
    images: Annotated[Optional[list[str]], typer.Argument(help="Training pictures: files, folders or globs. Each needs a caption: NAME.txt beside it, or --caption.", show_default=False)] = None,
    output: Annotated[str, typer.Option("--output", "-o", help="The LoRA to write (.safetensors, kohya/A1111 layout).", show_default=False, metavar="NAME.safetensors")] = "",
    caption: Annotated[Optional[str], typer.Option("--caption", help="One caption for every picture, instead of the .txt files beside them.", rich_help_panel=DATA, show_default=False)] = None,
    trigger: Annotated[str, typer.Option("--trigger", help="A rare word put at the start of every caption; write it in a prompt to call up what was learned.", rich_help_panel=DATA, show_default=False)] = "",
    flip: Annotated[bool, typer.Option("--flip/--no-flip", help="Also train on mirror images (for subjects that look right mirrored).", rich_help_panel=DATA)] = False,
    crop: Annotated[bool, typer.Option("--crop/--no-crop", help="Random crops, zoomed in 1/8, for subjects whose framing and size do not matter.", rich_help_panel=DATA)] = False,
    model: opt.alias("model") = "scumble-mini",
    config: opt.alias("config") = None,
    allow_pickle: opt.alias("allow_pickle") = False,
    device: opt.alias("device", help="auto picks cuda, then mps, then the CPU. Training is always in fp32.") = "auto",
    rank: Annotated[int, typer.Option("--rank", help="LoRA rank (dimension); alpha is the same, so the scale is 1.", rich_help_panel=TRAINING)] = 8,
    conv_rank: Annotated[int, typer.Option("--conv-rank", help="Rank of adapters on the ResNet 3x3 convolutions too (kohya's conv_dim); 0: none. Learns shapes faster.", rich_help_panel=TRAINING)] = 0,
    steps: Annotated[int, typer.Option("--steps", help="Optimizer steps.", rich_help_panel=TRAINING)] = 500,
    lr: Annotated[float, typer.Option("--lr", help="Peak learning rate (AdamW; warm-up, then cosine decay).", rich_help_panel=TRAINING)] = 1e-4,
    batch_size: Annotated[int, typer.Option("--batch-size", help="Pictures per step (and as many class pictures).", rich_help_panel=TRAINING)] = 1,
    resolution: Annotated[int, typer.Option("--resolution", help="Training size in pixels, square; 0: the model's own (128 built-in, 512 SD 1.5).", rich_help_panel=TRAINING)] = 0,
    seed: Annotated[int, typer.Option("--seed", help="Every random draw of the run follows from it.", rich_help_panel=TRAINING)] = 0,
    train_text_encoder: Annotated[bool, typer.Option("--train-text-encoder", help="Also give the text encoder adapters (lora_te_ keys).", rich_help_panel=TRAINING)] = False,
    class_prompt: Annotated[Optional[list[str]], typer.Option("--class-prompt", help="Prior preservation: the model draws pictures of this (repeat for several) and keeps drawing them as it did. '' keeps its unconditional pictures, which guidance subtracts: a LoRA that moves them weakens itself at every cfg.", rich_help_panel=PRIOR, show_default=False, metavar="TEXT")] = None,
    class_images: Annotated[int, typer.Option("--class-images", help="How many class pictures to make (cached in the run's folder).", rich_help_panel=PRIOR)] = 50,
    prior_weight: Annotated[float, typer.Option("--prior-weight", help="Weight of the class pictures' loss against the training pictures'.", rich_help_panel=PRIOR)] = 1.0,
    sample_prompt: Annotated[Optional[list[str]], typer.Option("--sample-prompt", help="Draw this at the start, every --sample-every steps and at the end, into NAME.samples.png (repeat for several).", rich_help_panel=WATCH, show_default=False, metavar="TEXT")] = None,
    sample_every: Annotated[int, typer.Option("--sample-every", help="Steps between sample rows; 0: only at the start and the end.", rich_help_panel=WATCH)] = 0,
    checkpoint_every: Annotated[int, typer.Option("--checkpoint-every", help="Steps between checkpoints (in NAME.train/, removed when the LoRA is written).", rich_help_panel=WATCH)] = 100,
    resume: Annotated[bool, typer.Option("--resume", help="Go on from the last checkpoint of a stopped run with the same settings.", rich_help_panel=WATCH)] = False,
    overwrite: Annotated[bool, typer.Option("--overwrite", help="Replace an existing output (and samples sheet).")] = False,
    quiet: opt.Quiet = False,
) -> None:
    """Train a LoRA on a few captioned pictures, for SD 1.x and 2.x models (the built-in one included)."""
    from pathlib import Path

    from ..core.errors import UsageError
    from ..training.lora.train import Job, Settings, train

    if not output:
        raise UsageError("-o NAME.safetensors: say where to write the LoRA")
    settings = Settings(rank=rank, conv_rank=conv_rank, steps=steps, lr=lr, batch_size=batch_size, resolution=resolution, seed=seed, train_text_encoder=train_text_encoder, flip=flip, crop=crop, trigger=trigger, class_prompts=tuple(class_prompt or ()), class_images=class_images, prior_weight=prior_weight, sample_every=sample_every, sample_prompts=tuple(sample_prompt or ()), checkpoint_every=checkpoint_every)
    job = Job(images=tuple(images or ()), output=Path(output).expanduser(), model=model, caption=caption, config=config, allow_pickle=allow_pickle, device=device, overwrite=overwrite, resume=resume)
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
