"""What every subcommand shares: the layers of a request (preset, flags), loading the engine, running, rendering."""

from __future__ import annotations

from pathlib import Path

import typer

from ..core.errors import ScumbleError, UsageError

# With --replay the settings come from the image; only where and on what it runs may be chosen (and where its
# models are now, each still checked: a moved checkpoint or depth model is named again, not re-described).
REPLAY_FLAGS = {"model", "depth_model", "pose_model", "config", "allow_pickle", "device", "dtype", "offload", "vae", "vae_tiling", "attention_slicing", "channels_last", "compile_unet", "backend", "lora_dir", "embedding_dir", "output", "overwrite", "quality"}


def layers(task: str, preset: str | None, flags: dict, settings: list = ()) -> list:
    """Lowest first: preset < settings file < flags (the built-in defaults sit under them all)."""
    from .. import presets
    from ..core.request.build import FLAGS, Layer

    return [*(presets.layers(preset, task) if preset else []), *settings, Layer(FLAGS, flags)]


def replay_layers(flags: dict) -> dict:
    extra = sorted(set(flags) - REPLAY_FLAGS)
    if extra:
        raise UsageError(f"--replay takes its settings from the image; it cannot be combined with --{extra[0].replace('_', '-')}")
    return flags


def image_request(task: str, flags: dict, preset: str | None, replay: str | None, prompts=(), inputs=()):
    from ..core.request import build

    if replay:
        if preset:
            raise UsageError("--replay takes its settings from the image; it cannot be combined with --preset")
        path = Path(replay)
        from ..core.records import metadata

        carried = metadata.read_image_metadata(path)  # read once: our record, else A1111's parameters
        if isinstance(carried.get("record"), dict):
            return build.replay_request(task, path, carried["record"], replay_layers(flags))
        if carried.get("parameters"):
            from ..core.request.a1111 import request_from_parameters
            from .render import warning_line

            request, warning = request_from_parameters(task, path, carried["parameters"], replay_layers(flags))
            if warning:
                warning_line(warning)
            return request
        raise ScumbleError(f"{path}: carries neither a scumble record nor A1111 parameters, so it cannot be replayed")
    return build.image_request(task, layers(task, preset, flags), prompts=prompts, inputs=inputs)


def run_images(request, quiet: bool, json_lines: bool) -> None:
    """Load the model, run the request through the one runner, print the summary, exit 1 if any image failed."""
    from ..core.sampling.engine import Engine
    from ..core.tasks import runner
    from .render import ConsoleReporter

    if json_lines and request.output.output == "-":
        raise UsageError("--json and -o - both want standard output; choose one")
    with ConsoleReporter(quiet, json_lines) as reporter:
        planned = runner.plan(request, reporter)  # a run with nothing to make says so without loading the model
        summary = planned.summary if planned.nothing_to_make else runner.run(Engine.from_options(request.model, reporter.notice), request, reporter, planned)
    reporter.summary(summary)
    raise typer.Exit(summary.exit_code)
