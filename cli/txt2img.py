"""scumble txt2img: parse, call the core, render."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated, Optional

import typer

from . import options as opt
from .common import apply_preset, engine_options, run_and_report
from .common import logsnr_shift as resolve_shift

@opt.with_options(opt.SAMPLING_OPTIONS, opt.OUTPUT_OPTIONS, opt.MODEL_OPTIONS)
def txt2img(
    ctx: typer.Context,
    prompt: Annotated[Optional[str], typer.Argument(help="What to draw. Omit when using --prompt-file or --replay.", show_default=False)] = None,
    prompt_file: Annotated[Optional[str], typer.Option("--prompt-file", help="One prompt a line; - reads standard input.", rich_help_panel=opt.SAMPLING_PANEL)] = None,
    count: Annotated[int, typer.Option("--count", min=1, help="Images per prompt.", rich_help_panel=opt.SAMPLING_PANEL)] = 1,
    name: opt.NamePattern = "{index:05}-{seed}-{prompt}",
) -> None:
    """Generate images from a text prompt."""
    from ..core.tasks import runner
    from ..core.sampling.engine import Sampling
    from ..core.errors import UsageError

    p = ctx.params
    shift = resolve_shift(p["logsnr_shift"], p["input_scale"])
    v = apply_preset(ctx, "txt2img", {k: p[k] for k in ("steps", "cfg", "scheduler", "noise_schedule", "timestep_spacing", "width", "height", "batch_size", "negative_prompt")}, p["preset"])
    output, replay = p["output"], p["replay"]
    if p["json_lines"] and output == "-":
        raise UsageError("--json and -o - both want standard output; choose one")
    sources = [x for x in (prompt is not None and "PROMPT", prompt_file and "--prompt-file", replay and "--replay") if x]
    if len(sources) != 1:
        raise UsageError("give exactly one of PROMPT, --prompt-file or --replay" + (f" (got {' and '.join(sources)})" if sources else ""))

    def work(engine, reporter):
        if replay:
            return runner.replay(engine, replay, output, p["overwrite"], reporter)
        prompts = [prompt] if prompt is not None else read_prompt_file(prompt_file)
        request = runner.Txt2ImgRequest(
            prompts=tuple((text, v["negative_prompt"]) for text in prompts),
            sampling=Sampling(v["steps"], v["cfg"], v["width"], v["height"], v["scheduler"], v["noise_schedule"], v["timestep_spacing"], shift, p["cfg_cutoff"]),
            count=count,
            seed=p["seed"],
            batch_size=v["batch_size"],
            output=output,
            name_pattern=name,
            overwrite=p["overwrite"],
            skip_existing=p["skip_existing"],
            shard=p["shard"],
        )
        return runner.run_txt2img(engine, request, reporter)

    run_and_report(engine_options(ctx), p["quiet"], p["json_lines"], work)


def read_prompt_file(path: str) -> list[str]:
    from ..core.errors import InputError, UsageError

    try:
        text = sys.stdin.read() if path == "-" else Path(path).read_text(encoding="utf-8")
    except FileNotFoundError as exc:
        raise InputError(f"--prompt-file {path}: no such file") from exc
    except (OSError, UnicodeDecodeError) as exc:
        raise InputError(f"--prompt-file {path}: cannot read it ({exc})") from exc
    prompts = [line.strip() for line in text.splitlines() if line.strip() and not line.lstrip().startswith("#")]
    if not prompts:
        raise UsageError(f"--prompt-file {path}: holds no prompts (one a line; # starts a comment)")
    return prompts
