"""scumble prompt: how a prompt is read: its steps, chunks, tokens and weights (no weights loaded)."""

from __future__ import annotations

from typing import Annotated

import typer

from . import options as opt


def prompt(
    text: Annotated[str, typer.Argument(help="The prompt, in A1111's syntax.", show_default=False)],
    model: opt.alias("model") = "scumble-mini",
    steps: opt.alias("steps") = 20,
    json_out: Annotated[bool, typer.Option("--json", help="Print JSON: the schedule, and each text's chunks of (token, weight).")] = False,
) -> None:
    """Show how a prompt is parsed: edits over the steps, 75-token chunks, tokens and their weights.

    Examples:

      scumble prompt "a (red:1.3) circle BREAK on a [blue|green] background"

      scumble prompt "[a cat:a dog:0.5], (masterpiece)" --steps 30 --json
    """
    import json

    from ..core.request.build import FLAGS, Layer, merge
    from ..core.sampling import prompts
    from ..core.sampling.tokens import explain

    values, _ = merge("txt2img", [Layer(FLAGS, {"model": model, "steps": steps, "negative_prompt": text})])
    clean, loras = prompts.extract_loras(text)
    schedule = prompts.schedule(clean, values["steps"])
    readings = [{"until_step": end, "text": step_text, "chunks": explain(values["model"], step_text)} for end, step_text in schedule]
    if json_out:
        print(json.dumps({"loras": [{"name": r.name, "weight": r.weight} for r in loras], "schedule": readings}, ensure_ascii=False))
        return
    start = 1
    for reading in readings:
        print(f"steps {start}-{reading['until_step']}: {reading['text']!r}")
        for number, chunk in enumerate(reading["chunks"], start=1):
            shown = " ".join(token if weight == 1.0 else f"{token}:{weight:.3g}" for token, weight in chunk)
            print(f"  chunk {number} ({len(chunk)} tokens): {shown}")
        start = reading["until_step"] + 1
    for ref in loras:
        print(f"lora {ref.name} at weight {ref.weight:g}")
