"""Every option that more than one subcommand takes, declared once as an Annotated alias."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

MODEL_PANEL = "Model and hardware"
SAMPLING_PANEL = "Sampling"
OUTPUT_PANEL = "Output"

# ---------------------------------------------------------------- model and hardware
Model = Annotated[
    str,
    typer.Option(
        "--model",
        "-m",
        envvar="SCUMBLE_MODEL",
        help="Built-in model name, a diffusers folder, a .safetensors checkpoint, or a hub id.",
        rich_help_panel=MODEL_PANEL,
    ),
]
Config = Annotated[
    Optional[str],
    typer.Option(
        "--config",
        help="Architecture for a single-file checkpoint: sd15, sd15-inpaint, sd2-base, sd2-v, sdxl, or a diffusers folder. Guessed from the file when absent.",
        rich_help_panel=MODEL_PANEL,
    ),
]
AllowPickle = Annotated[
    bool,
    typer.Option("--allow-pickle", help="Allow .ckpt/.bin/.pt/.pth checkpoints (still loaded weights-only).", rich_help_panel=MODEL_PANEL),
]
Device = Annotated[str, typer.Option("--device", help="auto, cpu, cuda or mps (auto: cuda, then mps, then cpu).", rich_help_panel=MODEL_PANEL)]
Dtype = Annotated[str, typer.Option("--dtype", help="auto, fp32, fp16 or bf16 (auto: fp16 on a GPU; on the CPU bf16 where the processor has fast bf16, else fp32).", rich_help_panel=MODEL_PANEL)]
Offload = Annotated[str, typer.Option("--offload", help="none, model or sequential CPU offload (CUDA only, for small GPUs).", rich_help_panel=MODEL_PANEL)]
Vae = Annotated[
    str,
    typer.Option(
        "--vae",
        help="Another autoencoder: 'tiny' (the model's own tiny one, else TAESD for its family: faster decoding), a diffusers folder, or a hub id. Empty: the model's own.",
        rich_help_panel=MODEL_PANEL,
    ),
]
VaeTiling = Annotated[bool, typer.Option("--vae-tiling", help="Decode in tiles to save GPU memory at large sizes.", rich_help_panel=MODEL_PANEL)]
ChannelsLast = Annotated[bool, typer.Option("--channels-last", help="Channels-last memory layout for the UNet and VAE.", rich_help_panel=MODEL_PANEL)]
Compile = Annotated[bool, typer.Option("--compile", help="torch.compile the UNet (slow first call; recompiles when the size changes).", rich_help_panel=MODEL_PANEL)]
AttentionSlicing = Annotated[bool, typer.Option("--attention-slicing", help="Compute attention in slices to save memory.", rich_help_panel=MODEL_PANEL)]

# ---------------------------------------------------------------- sampling
NegativePrompt = Annotated[str, typer.Option("--negative-prompt", "-n", help="What the image should not show.", rich_help_panel=SAMPLING_PANEL)]
Steps = Annotated[int, typer.Option("--steps", "-s", min=1, max=1000, help="Denoising steps.", rich_help_panel=SAMPLING_PANEL)]
Cfg = Annotated[float, typer.Option("--cfg", "--guidance-scale", min=0.0, max=100.0, help="Classifier-free guidance scale.", rich_help_panel=SAMPLING_PANEL)]
Seed = Annotated[Optional[int], typer.Option("--seed", help="Seed of the first image (image i gets seed+i). Random when absent; always reported.", rich_help_panel=SAMPLING_PANEL)]
Width = Annotated[int, typer.Option("--width", "-W", help="Width in pixels, a multiple of 8 (0: the model's native size).", rich_help_panel=SAMPLING_PANEL)]
Height = Annotated[int, typer.Option("--height", "-H", help="Height in pixels, a multiple of 8 (0: the model's native size).", rich_help_panel=SAMPLING_PANEL)]
Scheduler = Annotated[str, typer.Option("--scheduler", "--sampler", help="Sampler, diffusers-style or A1111 name (see `scumble schedulers`); empty: the model's own.", rich_help_panel=SAMPLING_PANEL)]
NoiseSchedule = Annotated[str, typer.Option("--noise-schedule", help="How noise levels are spaced: default, karras, exponential, beta, or Chen (2023)'s linear, cosine[:start=,end=,tau=], sigmoid[:start=,end=,tau=].", rich_help_panel=SAMPLING_PANEL)]
TimestepSpacing = Annotated[str, typer.Option("--timestep-spacing", help="leading, trailing or linspace; empty: the model's own.", rich_help_panel=SAMPLING_PANEL)]
LogsnrShift = Annotated[str, typer.Option("--logsnr-shift", help="Shift a continuous noise schedule's logSNR (negative: noisier), or 'auto' by image size.", rich_help_panel=SAMPLING_PANEL)]
InputScale = Annotated[Optional[float], typer.Option("--input-scale", help="The paper's input scaling b: the same as --logsnr-shift 2*log(b).", rich_help_panel=SAMPLING_PANEL, show_default=False)]
CfgCutoff = Annotated[float, typer.Option("--cfg-cutoff", help="Skip classifier-free guidance on this last fraction of the steps (0.2: the last 20%), halving their cost.", rich_help_panel=SAMPLING_PANEL)]
BatchSize = Annotated[int, typer.Option("--batch-size", "-b", min=1, help="Images per forward pass.", rich_help_panel=SAMPLING_PANEL)]
Preset = Annotated[Optional[str], typer.Option("--preset", help="A named bundle of defaults (see `scumble presets`); explicit flags win.", rich_help_panel=SAMPLING_PANEL)]

# ---------------------------------------------------------------- output
Output = Annotated[
    Optional[str],
    typer.Option("--output", "-o", help="A .png file, a folder (names from --name), or - for standard output. Default: outputs/.", rich_help_panel=OUTPUT_PANEL),
]
NamePattern = Annotated[str, typer.Option("--name", help="File-name pattern inside an output folder; fields {index}, {seed}, {prompt}.", rich_help_panel=OUTPUT_PANEL)]
Overwrite = Annotated[bool, typer.Option("--overwrite", help="Replace files that already exist.", rich_help_panel=OUTPUT_PANEL)]
SkipExisting = Annotated[bool, typer.Option("--skip-existing", help="Leave out images whose output file already exists (resume a batch).", rich_help_panel=OUTPUT_PANEL)]
Shard = Annotated[Optional[str], typer.Option("--shard", help="Do only share I of N (I/N, from 0): for SLURM array or indexed jobs. Under accelerate/torchrun the split is automatic.", rich_help_panel=OUTPUT_PANEL, show_default=False)]
Quiet = Annotated[bool, typer.Option("--quiet", "-q", help="No progress bar or summary.", rich_help_panel=OUTPUT_PANEL)]
Json = Annotated[bool, typer.Option("--json", help="Print one JSON line per written image (path, seed, settings) on stdout.", rich_help_panel=OUTPUT_PANEL)]

# ---------------------------------------------------------------- editing (img2img, inpaint)
EDIT_PANEL = "Inputs"
Inputs = Annotated[Optional[list[str]], typer.Argument(help="Image files, folders, globs, or - for an image on stdin.", show_default=False)]
Replay = Annotated[Optional[Path], typer.Option("--replay", help="Regenerate this image from its metadata (the inputs must be unchanged), pixel-identical.", rich_help_panel=SAMPLING_PANEL)]
Prompt = Annotated[Optional[str], typer.Option("--prompt", "-p", help="What the result should show (all inputs).", rich_help_panel=SAMPLING_PANEL)]
Captions = Annotated[bool, typer.Option("--captions", help="Use the .txt file beside each image as its prompt (--prompt is the fallback).", rich_help_panel=EDIT_PANEL)]
Recursive = Annotated[bool, typer.Option("--recursive", "-r", help="Look for images in subfolders too (mirrored in the output).", rich_help_panel=EDIT_PANEL)]
ExactSteps = Annotated[bool, typer.Option("--exact-steps", help="Run exactly --steps steps at this strength (stretches the schedule), not about steps x strength.", rich_help_panel=SAMPLING_PANEL)]
Resize = Annotated[str, typer.Option("--resize", help="just (stretch), crop (cover, then centre-crop) or fill (fit, then pad with the edges) when --width/--height differ from the input.", rich_help_panel=EDIT_PANEL)]


# ---------------------------------------------------------------- groups a subcommand takes whole
MODEL_OPTIONS = (
    ("model", Model, "scumble-mini"),
    ("config", Config, None),
    ("allow_pickle", AllowPickle, False),
    ("device", Device, "auto"),
    ("dtype", Dtype, "auto"),
    ("offload", Offload, "none"),
    ("vae_tiling", VaeTiling, False),
    ("attention_slicing", AttentionSlicing, False),
    ("channels_last", ChannelsLast, False),
    ("compile_unet", Compile, False),
    ("vae", Vae, ""),
)
SAMPLING_OPTIONS = (
    ("negative_prompt", NegativePrompt, ""),
    ("steps", Steps, 20),
    ("cfg", Cfg, 7.0),
    ("seed", Seed, None),
    ("width", Width, 0),
    ("height", Height, 0),
    ("scheduler", Scheduler, ""),
    ("noise_schedule", NoiseSchedule, "default"),
    ("timestep_spacing", TimestepSpacing, ""),
    ("logsnr_shift", LogsnrShift, "0"),
    ("input_scale", InputScale, None),
    ("cfg_cutoff", CfgCutoff, 0.0),
    ("batch_size", BatchSize, 1),
    ("preset", Preset, None),
    ("replay", Replay, None),
)
OUTPUT_OPTIONS = (
    ("output", Output, None),
    ("overwrite", Overwrite, False),
    ("skip_existing", SkipExisting, False),
    ("shard", Shard, None),
    ("quiet", Quiet, False),
    ("json_lines", Json, False),
)
EDIT_OPTIONS = (
    ("inputs", Inputs, None),
    ("prompt", Prompt, None),
    ("captions", Captions, False),
    ("exact_steps", ExactSteps, False),
    ("recursive", Recursive, False),
)


def with_options(*groups):
    """Give a command whole option groups: Typer reads the signature, the command reads ctx.params.

    Typer has no option groups of its own; this extends the function's signature (which Typer
    inspects) and passes the command only the parameters it declares itself.
    """
    import functools
    import inspect

    def decorate(command):
        signature = inspect.signature(command, eval_str=True)
        own = list(signature.parameters.values())
        taken = {p.name for p in own}
        added = [inspect.Parameter(name, inspect.Parameter.KEYWORD_ONLY, default=default, annotation=annotation) for group in groups for name, annotation, default in group if name not in taken]
        arguments = [p for p in added if p.name == "inputs"]  # a positional argument goes before the options
        parameters = [p.replace(kind=inspect.Parameter.KEYWORD_ONLY) for p in own[:1] + arguments + own[1:] + [p for p in added if p.name != "inputs"]]

        @functools.wraps(command)
        def wrapper(**kwargs):
            return command(**{name: kwargs[name] for name in taken})

        wrapper.__signature__ = signature.replace(parameters=parameters)  # inspect.signature prefers it to __wrapped__
        return wrapper

    return decorate
