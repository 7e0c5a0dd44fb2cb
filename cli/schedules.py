"""scumble schedules: what a noise schedule does to the sampling noise levels."""

from __future__ import annotations

from typing import Annotated

import typer

from ..core.errors import UsageError
from . import options as opt

app = typer.Typer(help="Inspect noise schedules: the sigmas a scheduler will step through.", no_args_is_help=True)


@app.command("show")
def show(
    ctx: typer.Context,
    noise_schedule: opt.alias("noise_schedule") = "cosine",
    steps: opt.alias("steps") = 20,
    scheduler: opt.alias("scheduler") = "",
    logsnr_shift: opt.alias("logsnr_shift") = "0",
    input_scale: opt.alias("input_scale") = None,
    width: opt.alias("width") = 0,
    height: opt.alias("height") = 0,
    model: opt.alias("model") = "scumble-mini",
    json_out: Annotated[bool, typer.Option("--json", help="One JSON list, a row per sampling step: t, gamma, logsnr, sigma, timestep.")] = False,
) -> None:
    """Print the noise levels a schedule gives, one row per sampling step (the model's weights are not loaded).

    Examples:

      scumble schedules show --noise-schedule cosine --steps 20

      scumble schedules show --noise-schedule "sigmoid:start=-3,end=3,tau=1.1" --logsnr-shift -1 --json
    """
    import json

    from ..core.sampling import schedule_report, schedulers

    values = checked(ctx, steps=steps, scheduler=scheduler, logsnr_shift=logsnr_shift, input_scale=input_scale, width=width, height=height)
    if values["scheduler"]:
        schedulers.custom_schedule_flag(schedulers.find_scheduler(values["scheduler"]))
    heading, rows = schedule_report.levels(noise_schedule, values["steps"], model, values["shift"], values["width"], values["height"])
    if json_out:
        print(json.dumps(rows))
        return
    print(heading)
    print(f"{'step':>4} {'t':>7} {'gamma':>12} {'logSNR':>9} {'sigma':>10} {'timestep':>9}")
    for i, r in enumerate(rows):
        print(f"{i:>4} {r['t']:>7.4f} {r['gamma']:>12.6g} {r['logsnr']:>9.3f} {r['sigma']:>10.4f} {r['timestep']:>9.2f}")


@app.command("plot")
def plot(
    ctx: typer.Context,
    noise_schedule: Annotated[list[str], typer.Option("--noise-schedule", help="A continuous schedule to draw; repeat to compare several.")] = ["cosine", "sigmoid:start=-3,end=3,tau=1.1", "linear"],  # noqa: B006
    steps: opt.alias("steps") = 20,
    logsnr_shift: opt.alias("logsnr_shift") = "0",
    input_scale: opt.alias("input_scale") = None,
    model: opt.alias("model") = "scumble-mini",
    output: Annotated[str, typer.Option("--output", "-o", help="The PNG to write.")] = "schedules.png",
    overwrite: opt.alias("overwrite") = False,
) -> None:
    """Draw gamma(t) and logSNR(t) for one or more schedules (as the paper's Figures 3 and 5), with the sampler's discrete noise levels marked.

    Examples:

      scumble schedules plot -o schedules.png

      scumble schedules plot --noise-schedule cosine --noise-schedule linear --logsnr-shift -1 -o shifted.png
    """
    from pathlib import Path

    from ..core.records import output as out
    from ..core.sampling import schedule_report

    values = checked(ctx, steps=steps, logsnr_shift=logsnr_shift, input_scale=input_scale)
    if values["shift"] == "auto":
        raise UsageError("--logsnr-shift auto depends on an image size; give a number for the plot")
    out.write_bytes(schedule_report.plot_png(noise_schedule, values["steps"], model, float(values["shift"])), Path(output), overwrite=overwrite)
    print(f"wrote {output}")


@app.command("audio")
def audio(
    file: Annotated[str, typer.Argument(help="An audio file (or a video with sound) that ffmpeg reads.", show_default=False)],
    fps: opt.alias("fps", "animate") = 12.0,
    mapping: Annotated[str, typer.Option("--map", help="A formula of x (the frame's loudness, 0 to 1) and t (the frame) giving the value.")] = "x",
    measure: Annotated[str, typer.Option("--measure", help="loudness (RMS) or onsets (rises in loudness: the beats).")] = "loudness",
    frames: Annotated[int, typer.Option("--frames", min=0, max=100000, help="Frames to cover (0: the whole track).", show_default=False)] = 0,
    offset: Annotated[float, typer.Option("--offset", min=0.0, help="Start this many seconds into the file, as --soundtrack-offset.")] = 0.0,
) -> None:
    """Turn a track's loudness into a keyframe schedule, for --zoom or any other schedule, so a video pulses with its music.

    Examples:

      scumble schedules audio song.mp3 --fps 12 --map "1.0+0.05*x"

      scumble animate --zoom "$(scumble schedules audio song.mp3 --fps 12 --measure onsets --map '1+0.08*x')" --soundtrack song.mp3 -o pulse.mp4
    """
    from ..core.animation import audio as sound

    if measure not in ("loudness", "onsets"):
        raise UsageError(f"--measure {measure!r}: choose loudness or onsets")
    samples = sound.decode(file)[int(offset * sound.SAMPLE_RATE) :]
    values = sound.per_frame(samples, fps, measure, frames or None)
    print(sound.schedule_text(values, mapping))


def checked(ctx: typer.Context, **given) -> dict:
    """The typed flags through the option table's checks, as for any subcommand; `shift` from --logsnr-shift or --input-scale."""
    from ..core.request.build import FLAGS, Layer, merge, resolved_shift

    explicit = {k: v for k, v in given.items() if opt.explicit(ctx, k)}
    values, origin = merge("txt2img", [Layer(FLAGS, explicit)])
    return values | {"shift": resolved_shift(values, origin)}
