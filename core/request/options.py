"""Every option scumble takes, declared once: its flags, help, default, type and limits.

The CLI builds its Typer options from this table, and every other door (a preset, a settings
file, a Deforum export, a replayed image's record) is converted and checked by the same `Kind`,
so a value that `--steps` refuses is refused wherever it comes from, with the same limit in the
message.
"""

from __future__ import annotations

import math
import string
from dataclasses import dataclass, field, replace
from typing import Any, ClassVar

IMAGE_TASKS = frozenset({"txt2img", "img2img", "inpaint"})
EDIT_TASKS = frozenset({"img2img", "inpaint"})
ALL_TASKS = IMAGE_TASKS | {"animate"}
ANIMATE = frozenset({"animate"})
TRAIN_LORA = frozenset({"train-lora"})

# Upper bounds on everything that costs time or memory. Each is far beyond what a real run needs
# and far below what would hang the machine; the message names the limit.
MAX_STEPS = 1000  # a model has 1000 training timesteps; more inference steps than that cannot run
MAX_SIDE = 4096
MAX_BATCH = 64
MAX_COUNT = 10_000
MAX_PROMPT_CHARS = 20_000
MAX_FRAMES = 10_000
MAX_PROMPTS = 100_000


class Invalid(ValueError):
    """A value that its option refuses; the builder adds where the value came from."""


class UnknownChoice(Invalid):
    """Named without the value (the message quotes it): `--fill: unknown mode 'paint'; choose from ...`."""


# ---------------------------------------------------------------- kinds: convert and check one value


@dataclass(frozen=True)
class Kind:
    python_type: ClassVar[type] = str
    metavar: ClassVar[str] = "TEXT"

    def convert(self, value: Any) -> Any:
        return value

    def describe(self) -> str:
        return ""


def _finite(value: Any, whole: bool = False) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float, str)):
        raise Invalid("must be a whole number" if whole else "must be a number")
    if isinstance(value, str):
        try:
            value = int(value) if whole else float(value)
        except ValueError:
            raise Invalid("must be a whole number" if whole else "must be a number") from None
    if isinstance(value, float) and not math.isfinite(value):
        raise Invalid("must be a finite number")
    if whole and isinstance(value, float):
        if not value.is_integer():
            raise Invalid("must be a whole number")
        value = int(value)
    return value


def _interval(lo: float, hi: float, lo_open: bool, hi_open: bool) -> str:
    return f"{'(' if lo_open else '['}{lo:g}, {hi:g}{')' if hi_open else ']'}"


def _inside(value: float, lo: float, hi: float, lo_open: bool, hi_open: bool) -> bool:
    return (value > lo if lo_open else value >= lo) and (value < hi if hi_open else value <= hi)


@dataclass(frozen=True)
class Int(Kind):
    metavar: ClassVar[str] = 'N'
    lo: int = 0
    hi: int = 2**31 - 1
    python_type: ClassVar[type] = int

    def convert(self, value: Any) -> int:
        number = _finite(value, whole=True)
        if number < self.lo:
            raise Invalid(f"must be at least {self.lo} (at most {self.hi:,})")
        if number > self.hi:
            raise Invalid(f"must be at most {self.hi:,}")
        return int(number)

    def describe(self) -> str:
        return f"{self.lo}..{self.hi}"


@dataclass(frozen=True)
class Float(Kind):
    metavar: ClassVar[str] = 'X'
    lo: float = 0.0
    hi: float = 1.0
    lo_open: bool = False
    hi_open: bool = False
    python_type: ClassVar[type] = float

    def convert(self, value: Any) -> float:
        number = float(_finite(value))
        if not _inside(number, self.lo, self.hi, self.lo_open, self.hi_open):
            raise Invalid(f"must be in {self.describe()}")
        return number

    def describe(self) -> str:
        return _interval(self.lo, self.hi, self.lo_open, self.hi_open)


@dataclass(frozen=True)
class Bool(Kind):
    metavar: ClassVar[str] = ''
    python_type: ClassVar[type] = bool

    def convert(self, value: Any) -> bool:
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.lower() in ("true", "false"):
            return value.lower() == "true"
        raise Invalid("must be true or false")


@dataclass(frozen=True)
class Text(Kind):
    metavar: ClassVar[str] = 'TEXT'
    limit: int = MAX_PROMPT_CHARS
    choices: tuple[str, ...] = ()
    noun: str = "mode"

    def convert(self, value: Any) -> str:
        if isinstance(value, (int, float)) and not isinstance(value, bool) and not self.choices:
            value = str(value)
        if not isinstance(value, str):
            raise Invalid("must be text")
        check_text(value, self.limit)
        if self.choices and value not in self.choices:
            shown = ", ".join(c or "''" for c in self.choices)
            raise UnknownChoice(f"unknown {self.noun} {value[:60]!r}; choose from {shown}")
        return value

    def describe(self) -> str:
        return ", ".join(c for c in self.choices if c)


@dataclass(frozen=True)
class UpscalerChoice(Kind):
    """latent, lanczos, or the path of an upscaler network file (the file itself is read where the run starts)."""

    metavar: ClassVar[str] = "latent|lanczos|FILE"
    suffixes: ClassVar[tuple[str, ...]] = (".safetensors", ".pth", ".pt", ".ckpt", ".bin")

    def convert(self, value: Any) -> str:
        if not isinstance(value, str):
            raise Invalid("must be latent, lanczos or an upscaler file")
        check_text(value, 4096)
        if value.strip().lower() in ("latent", "lanczos"):
            return value.strip().lower()
        if not value.lower().endswith(self.suffixes):
            raise UnknownChoice(f"unknown upscaler {value[:60]!r}; choose latent, lanczos, or an upscaler network file ({', '.join(self.suffixes)})")
        return value

    def describe(self) -> str:
        return "latent, lanczos, or an upscaler network file"


def check_text(value: str, limit: int = MAX_PROMPT_CHARS) -> str:
    if len(value) > limit:
        raise Invalid(f"longer than {limit:,} characters")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise Invalid("is not valid UTF-8") from None
    if "\x00" in value:
        raise Invalid("contains a NUL character")
    return value


@dataclass(frozen=True)
class OptionalPath(Kind):
    metavar: ClassVar[str] = 'PATH'
    def convert(self, value: Any) -> str | None:
        if value is None or value == "":
            return None
        if not isinstance(value, str):
            raise Invalid("must be a path")
        return check_text(value, 4096)


@dataclass(frozen=True)
class PathList(Kind):
    """Paths given by a repeated flag, a TOML list, or one path."""

    python_type: ClassVar[type] = list
    metavar: ClassVar[str] = "PATH"

    def convert(self, value: Any) -> tuple[str, ...]:
        if value in (None, "", ()):
            return ()
        items = [value] if isinstance(value, str) else value
        if not isinstance(items, (list, tuple)) or not all(isinstance(v, str) for v in items):
            raise Invalid("must be a path or a list of paths")
        if len(items) > 100:
            raise Invalid("more than 100 paths")
        return tuple(check_text(v, 4096) for v in items)


@dataclass(frozen=True)
class WeightedPaths(Kind):
    """PATH[:WEIGHT] items (weight 1 when absent), as --lora takes them."""

    python_type: ClassVar[type] = list
    metavar: ClassVar[str] = "PATH[:WEIGHT]"
    lo: float = -10.0
    hi: float = 10.0

    def convert(self, value: Any) -> tuple[tuple[str, float], ...]:
        out = []
        for item in PathList().convert(value):
            path, colon, weight = item.rpartition(":")
            try:
                number = float(_finite(weight)) if colon and path else None
            except Invalid:
                number = None
            if number is None:
                path, number = item, 1.0
            if not self.lo <= number <= self.hi:
                raise Invalid(f"{item}: the weight must be in [{self.lo:g}, {self.hi:g}]")
            out.append((path, number))
        return tuple(out)


@dataclass(frozen=True)
class FloatList(Kind):
    """Numbers given by a repeated flag, a TOML list, or one number: one for all, or one each (e.g. per ControlNet)."""

    python_type: ClassVar[type] = list
    metavar: ClassVar[str] = "X"
    lo: float = 0.0
    hi: float = 1.0

    def convert(self, value: Any) -> tuple[float, ...]:
        if value in (None, "", ()):
            return ()
        items = [value] if not isinstance(value, (list, tuple)) else value
        if len(items) > 100:
            raise Invalid("more than 100 values")
        out = tuple(float(_finite(v)) for v in items)
        if any(not self.lo <= v <= self.hi for v in out):
            raise Invalid(f"must be in {_interval(self.lo, self.hi, False, False)}")
        return out


@dataclass(frozen=True)
class ControlTypes(Kind):
    """ControlNet preprocessor names, one for all or one per ControlNet; those needing a network are refused here."""

    python_type: ClassVar[type] = list
    metavar: ClassVar[str] = "TYPE"

    def convert(self, value: Any) -> tuple[str, ...]:
        from ..images.control_types import check_type

        items = PathList().convert(value)
        return tuple(check_type(item) for item in items)


@dataclass(frozen=True)
class Seed(Kind):
    """0..2**32-1, or -1 (or nothing) for a fresh random seed, which the run then reports and records."""

    metavar: ClassVar[str] = 'N'
    random_ok: bool = False  # animate follows Deforum: -1 asks for a fresh random seed
    python_type: ClassVar[type] = int

    def convert(self, value: Any) -> int | None:
        if value is None:
            return None
        number = _finite(value, whole=True)
        if number == -1 and self.random_ok:
            return None
        if not 0 <= number <= 2**32 - 1:
            raise Invalid(f"must be between 0 and {2**32 - 1}" + (" (or -1 for a random seed)" if self.random_ok else "; leave it out for a random seed"))
        return int(number)


@dataclass(frozen=True)
class Size(Kind):
    """0 (the model's native size, or the input's) or a multiple of 8 up to MAX_SIDE."""

    metavar: ClassVar[str] = 'PX'
    python_type: ClassVar[type] = int

    def convert(self, value: Any) -> int:
        number = int(_finite(value, whole=True))
        if number == 0:
            return 0
        if number < 0 or number > MAX_SIDE:
            raise Invalid(f"must be 0 (native size) or between 8 and {MAX_SIDE}")
        if number % 8:
            lower, upper = max(8, number // 8 * 8), (number // 8 + 1) * 8
            raise Invalid(f"must be a positive multiple of 8 (nearest: {lower} or {upper})")
        return number


@dataclass(frozen=True)
class SchedulerName(Kind):
    metavar: ClassVar[str] = 'NAME'
    def convert(self, value: Any) -> str:
        from ..sampling.schedulers import find_scheduler

        text = Text(200).convert(value)
        if text:
            find_scheduler(text)  # refuses an unknown name; the record keeps the name as the user wrote it
        return text


@dataclass(frozen=True)
class NoiseScheduleSpec(Kind):
    metavar: ClassVar[str] = 'SPEC'
    def convert(self, value: Any):
        from ..sampling.noise_schedules import parse_spec

        return parse_spec(Text(500).convert(value))


@dataclass(frozen=True)
class LogsnrShift(Kind):
    metavar: ClassVar[str] = 'X|auto'
    def convert(self, value: Any) -> float | str:
        if value == "auto":
            return "auto"
        number = float(_finite(value))
        if abs(number) > 20:
            raise Invalid("must be a number in [-20, 20], or auto")
        return number


@dataclass(frozen=True)
class Shard(Kind):
    metavar: ClassVar[str] = 'I/N'
    def convert(self, value: Any) -> tuple[int, int] | None:
        if value in (None, ""):
            return None
        try:
            index, count = (int(p) for p in str(value).split("/"))
        except ValueError:
            raise Invalid("expected I/N, e.g. 0/4") from None
        if not 1 <= count <= 100_000 or not 0 <= index < count:
            raise Invalid("I must be in 0..N-1 (N at most 100000)")
        return index, count


@dataclass(frozen=True)
class NamePattern(Kind):
    """A file-name pattern with {index}, {seed} and {prompt}; format specs allowed, attribute or item access never."""

    metavar: ClassVar[str] = 'PATTERN'
    fields: tuple[str, ...] = ("index", "seed", "prompt")

    def convert(self, value: Any) -> str:
        text = Text(500).convert(value)
        try:
            parsed = list(string.Formatter().parse(text))
        except ValueError as exc:
            raise Invalid(f"bad pattern ({exc})") from None
        for _literal, name, spec, conversion in parsed:
            if name is None:
                continue
            if name not in self.fields:
                raise Invalid(f"unknown field {{{name}}}; fields are {', '.join('{' + f + '}' for f in self.fields)}")
            if conversion or (spec and "{" in spec):
                raise Invalid(f"field {{{name}}} takes a plain format spec only")
            try:
                format(0 if name != "prompt" else "x", spec)
            except ValueError as exc:
                raise Invalid(f"field {{{name}:{spec}}}: {exc}") from None
        return text


@dataclass(frozen=True)
class KeyframeSchedule(Kind):
    """A Deforum keyframe schedule, or a plain number meaning a constant; every frame's value is bounded like the flag."""

    metavar: ClassVar[str] = 'SCHEDULE'
    lo: float = -1e6
    hi: float = 1e6
    lo_open: bool = False
    whole: bool = False
    name: str = "schedule"
    python_type: ClassVar[type] = str

    def convert(self, value: Any):
        from ..animation.keyframes import ParsedSchedule

        if isinstance(value, ParsedSchedule):  # built from per-frame values (a Parseq manifest): bounded frame by frame when evaluated, like any schedule
            return value if value.bounds is not None else replace(value, bounds=self)
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            value = f"0: ({_finite(value)})"
        if not isinstance(value, str):
            raise Invalid("must be a schedule like \"0: (1.0), 30: (1.05)\" or a number")
        try:  # a plain number ("6", as --help shows the defaults) is a constant schedule
            value = f"0: ({_finite(float(value))})" if value.strip() else value
        except (ValueError, Invalid):
            pass
        parsed = ParsedSchedule.parse(value, self.name, bounds=self)
        for keyframe in parsed.keyframes:  # constant values are checked now; the rest frame by frame before frame 0
            if keyframe.value.is_constant:
                self.check_value(keyframe.value())
        return parsed

    def check_value(self, value: float) -> None:
        if not _inside(value, self.lo, self.hi, self.lo_open, False):
            raise Invalid(f"reaches {value:g}, outside {self.describe()}")

    def describe(self) -> str:
        return _interval(self.lo, self.hi, self.lo_open, False)


@dataclass(frozen=True)
class PromptMap(Kind):
    """animate's prompts: frame (a number or an expression) -> text."""

    metavar: ClassVar[str] = 'TABLE'
    python_type: ClassVar[type] = dict

    def convert(self, value: Any) -> dict[str, str]:
        if not isinstance(value, dict):
            raise Invalid("must be a table of frame -> prompt, e.g. {\"0\": \"a red circle\"}")
        if not value:
            raise Invalid("holds no prompts")
        if len(value) > MAX_PROMPTS:
            raise Invalid(f"holds more than {MAX_PROMPTS:,} prompts")
        out = {}
        for key, text in value.items():
            if not isinstance(text, str):
                raise Invalid(f"prompt for frame {str(key)[:40]!r} must be text")
            try:
                out[check_text(str(key), 200)] = check_text(text)
            except Invalid as exc:  # a table of 10,000 prompts: say which one
                raise Invalid(f"prompt for frame {str(key)[:40]!r}: {exc}") from None
        return out


# ---------------------------------------------------------------- the table


@dataclass(frozen=True)
class Option:
    name: str
    kind: Kind
    default: Any
    flags: tuple[str, ...]
    help: str
    panel: str
    tasks: frozenset = ALL_TASKS
    extra: dict = field(default_factory=dict)  # more typer.Option arguments (envvar, autocompletion)

    @property
    def flag(self) -> str:
        return self.flags[0]


MODEL, SAMPLING, OUTPUT, INPUTS, MASK, FRAME, MOTION, VIDEO = (
    "Model and hardware", "Sampling", "Output", "Inputs", "Mask", "Per frame", "Motion (keyframe schedules)", "Video",
)
HIRES = "Hires fix"
PICTURES, TRAINING, PRIOR, WATCH = "Pictures and captions", "Training", "Prior preservation", "Samples and checkpoints"  # train-lora
CONTROL = "ControlNet"
PREPROCESS = frozenset({"preprocess"})
UPSCALE = frozenset({"upscale"})
FILES_IN_OUT = PREPROCESS | UPSCALE
STEPS = Int(1, MAX_STEPS)
CFG = Float(0.0, 100.0)
STRENGTH = Float(0.0, 1.0, lo_open=True)


def _schedule(name, default, help, lo, hi, panel=MOTION, lo_open=False, whole=False):
    return Option(name, KeyframeSchedule(lo=lo, hi=hi, lo_open=lo_open, whole=whole, name=name), default, ("--" + name.replace("_", "-"),), help, panel, ANIMATE)


OPTIONS: tuple[Option, ...] = (
    # model and hardware: every task
    Option("model", Text(4096), "scumble-mini", ("--model", "-m"), "Built-in model name, a diffusers folder, a .safetensors checkpoint, or a hub id.", MODEL, extra={"envvar": "SCUMBLE_MODEL"}),
    Option("config", OptionalPath(), None, ("--config",), "Architecture for a single-file checkpoint: sd15, sd15-inpaint, sd2-base, sd2-v, sdxl, or a diffusers folder (guessed from the file when absent).", MODEL),
    Option("allow_pickle", Bool(), False, ("--allow-pickle",), "Allow .ckpt/.bin/.pt/.pth checkpoints (still loaded weights-only).", MODEL),
    Option("device", Text(20, ("auto", "cpu", "cuda", "mps"), "device"), "auto", ("--device",), "auto picks cuda, then mps, then the CPU.", MODEL),
    Option("dtype", Text(20, ("auto", "fp32", "fp16", "bf16"), "dtype"), "auto", ("--dtype",), "auto: fp16 on a GPU; on the CPU bf16 where the processor has fast bf16, else fp32.", MODEL),
    Option("offload", Text(20, ("none", "model", "sequential")), "none", ("--offload",), "CPU offload for small GPUs (CUDA only).", MODEL),
    Option("vae", Text(4096), "", ("--vae",), "Another autoencoder: tiny (the model's own tiny one, else TAESD), a diffusers folder, or a hub id.", MODEL),
    Option("vae_tiling", Bool(), False, ("--vae-tiling",), "Decode in tiles to save memory at large sizes.", MODEL),
    Option("attention_slicing", Bool(), False, ("--attention-slicing",), "Compute attention in slices to save memory.", MODEL),
    Option("channels_last", Bool(), False, ("--channels-last",), "Channels-last memory layout for the UNet and VAE (always on for bf16 on the CPU, where it is faster).", MODEL),
    Option("compile_unet", Bool(), False, ("--compile",), "torch.compile the UNet (slow first call; recompiles when the size changes).", MODEL),
    Option("backend", Text(20, ("auto", "torch", "openvino"), "backend"), "auto", ("--backend",), "openvino: the UNet converted once (cached) and run by OpenVINO on the CPU (pip install 'scumble[openvino]'); auto: openvino for an SD-sized UNet where it is installed and the conversion fits in memory, else torch.", MODEL),
    Option("lora", WeightedPaths(), (), ("--lora",), "A LoRA file (.safetensors; kohya/A1111 or diffusers/PEFT keys) and its weight; repeat for several.", MODEL),
    Option("lora_dir", PathList(), (), ("--lora-dir",), "Where <lora:NAME:WEIGHT> in a prompt finds NAME; repeat for several folders.", MODEL, extra={"envvar": "SCUMBLE_LORA_DIR"}),
    Option("fuse_lora", Bool(), False, ("--fuse-lora",), "Fuse the --lora weights into the model once: faster on long batches.", MODEL),
    Option("embedding", PathList(), (), ("--embedding",), "A textual-inversion embedding; its file name, written in a prompt, uses it. Repeat for several.", MODEL),
    Option("controlnet", WeightedPaths(lo=0.0, hi=2.0), (), ("--controlnet",), "A ControlNet, MODEL[:WEIGHT] (weight 0..2, 1 when absent): a diffusers folder, a .safetensors file, or a hub id. Repeat for several.", MODEL, IMAGE_TASKS | ANIMATE),
    Option("controlnet_config", PathList(), (), ("--controlnet-config",), "Architecture of a single-file ControlNet: sd15, sdxl, or a diffusers folder with its config.json (guessed from the file when absent); one for all or one per --controlnet.", MODEL, IMAGE_TASKS | ANIMATE),
    Option("embedding_dir", PathList(), (), ("--embedding-dir",), "A folder of embeddings, each used by writing its name in a prompt (A1111's way).", MODEL, extra={"envvar": "SCUMBLE_EMBEDDING_DIR"}),
    # sampling
    Option("negative_prompt", Text(), "", ("--negative-prompt", "-n"), "What the image should not show.", SAMPLING),
    Option("steps", STEPS, 20, ("--steps", "-s"), "Denoising steps.", SAMPLING, IMAGE_TASKS),
    Option("cfg", CFG, 7.0, ("--cfg", "--guidance-scale"), "Classifier-free guidance scale.", SAMPLING, IMAGE_TASKS),
    Option("seed", Seed(), None, ("--seed",), "Seed of the first image (image i gets seed+i); random when absent or -1, and always reported.", SAMPLING, IMAGE_TASKS),
    Option("seed", Seed(random_ok=True), 0, ("--seed",), "The run's seed; each frame's follows from it by --seed-behavior (-1: a random one, reported).", FRAME, ANIMATE),
    Option("width", Size(), 0, ("--width", "-W"), "Width in pixels, a multiple of 8 (0: the model's native size, or the input's or control image's).", SAMPLING),
    Option("height", Size(), 0, ("--height", "-H"), "Height in pixels, a multiple of 8 (0: the model's native size, or the input's or control image's).", SAMPLING),
    Option("scheduler", SchedulerName(), "", ("--scheduler", "--sampler"), "Sampler, diffusers-style or A1111 name, old ones too (\"DPM++ 2M Karras\"; see `scumble schedulers`); empty: the model's own.", SAMPLING),
    Option("noise_schedule", NoiseScheduleSpec(), "default", ("--noise-schedule",), "Noise-level spacing: default, karras, exponential, beta, ays (Align Your Steps), or Chen (2023)'s linear, cosine[:start=,end=,tau=], sigmoid[:start=,end=,tau=].", SAMPLING),
    Option("timestep_spacing", Text(20, ("", "leading", "trailing", "linspace"), "spacing"), "", ("--timestep-spacing",), "leading, trailing or linspace; empty: the model's own.", SAMPLING, ALL_TASKS),
    Option("logsnr_shift", LogsnrShift(), 0.0, ("--logsnr-shift",), "Shift a continuous noise schedule's logSNR (negative: noisier), or auto by image size.", SAMPLING, IMAGE_TASKS),
    Option("input_scale", Float(1e-3, 1e3, lo_open=True), None, ("--input-scale",), "The paper's input scaling b: the same as --logsnr-shift 2*log(b).", SAMPLING, IMAGE_TASKS),
    Option("subseed", Seed(), None, ("--subseed",), "A1111's variation seed: its noise is slerped into the seed's by --subseed-strength (random when absent).", SAMPLING, frozenset({"txt2img"})),
    Option("subseed_strength", Float(0.0, 1.0), 0.0, ("--subseed-strength",), "How far toward the variation seed's noise (0: none; image i then gets --subseed+i on the one --seed).", SAMPLING, frozenset({"txt2img"})),
    Option("eta", Float(0.0, 1.0), 0.0, ("--eta",), "DDIM's eta: 0 is deterministic, 1 adds fresh noise each step as DDPM does (samplers whose step takes eta).", SAMPLING, IMAGE_TASKS),
    Option("ensd", Int(0, 2**31 - 1), 0, ("--ensd",), "A1111's eta noise seed delta: the noise added during sampling (ancestral and SDE samplers) is seeded seed+ENSD.", SAMPLING, frozenset({"txt2img"})),
    Option("tiling", Bool(), False, ("--tiling",), "Seamless: opposite edges continue each other (every convolution pads circularly).", SAMPLING, IMAGE_TASKS),
    Option("clip_skip", Int(1, 12), 1, ("--clip-skip",), "Read CLIP this many layers from the end (A1111's Clip skip; 2 for many anime models).", SAMPLING),
    Option("cfg_cutoff", Float(0.0, 1.0, hi_open=True), 0.0, ("--cfg-cutoff",), "Skip guidance on this last fraction of the steps (0.2: the last 20%), halving their cost.", SAMPLING, IMAGE_TASKS),
    Option("tome", Float(0.0, 0.75), 0.0, ("--tome",), "Token merging: merge this fraction of the tokens before each self-attention at the UNet's finest level (0.5: half; 0: off). Pays at 768 pixels and up.", SAMPLING, ALL_TASKS),
    # On by default at 2: measured within 2 points of the plain run's adherence (benchmarks/README.md, bench_flags.py), at about 0.6x the time.
    Option("step_cache", Int(0, 50), 0, ("--step-cache",), "Run the whole UNet every N steps and only its shallow blocks in between, on the deep features kept from the last whole step (DeepCache; 1: every step whole, as other tools do). 0: 2 when a sampling call runs at least 20 steps, else 1 (with fewer, a kept feature is too stale).", SAMPLING, ALL_TASKS),
    Option("batch_size", Int(1, MAX_BATCH), 1, ("--batch-size", "-b"), "Images per forward pass.", SAMPLING, IMAGE_TASKS),
    # output
    Option("output", OptionalPath(), None, ("--output", "-o"), "A .png file, a folder (names from --name), or - for standard output. Default: outputs/.", OUTPUT, IMAGE_TASKS),
    Option("overwrite", Bool(), False, ("--overwrite",), "Replace files this run writes that already exist (never anything else).", OUTPUT, ALL_TASKS | FILES_IN_OUT),
    Option("quality", Int(1, 100), 90, ("--quality",), "JPEG and WebP quality (-o x.jpg, x.webp); PNG is lossless.", OUTPUT, IMAGE_TASKS),
    Option("skip_existing", Bool(), False, ("--skip-existing",), "Leave out images whose output file already exists (resume a batch).", OUTPUT, IMAGE_TASKS),
    Option("shard", Shard(), None, ("--shard",), "Do only share I of N (I/N, from 0), for array jobs; under accelerate or torchrun the split is automatic.", OUTPUT, IMAGE_TASKS),
    # txt2img
    Option("count", Int(1, MAX_COUNT), 1, ("--count",), "Images per prompt.", SAMPLING, frozenset({"txt2img"})),
    Option("name_pattern", NamePattern(), "{index:05}-{seed}-{prompt}", ("--name",), "File-name pattern inside an output folder; fields {index}, {seed}, {prompt}.", OUTPUT, frozenset({"txt2img"})),
    # txt2img hires fix (A1111's): generate at the base size, upscale, then img2img at the larger size
    Option("hires_scale", Float(1.0, 4.0), 1.0, ("--hires-scale",), "Hires fix: upscale the image by this factor and redraw it with img2img (1: off).", HIRES, frozenset({"txt2img"})),
    Option("hires_width", Size(), 0, ("--hires-width",), "Hires fix: the final width, a multiple of 8 (0: from --hires-scale, or --hires-height's aspect).", HIRES, frozenset({"txt2img"})),
    Option("hires_height", Size(), 0, ("--hires-height",), "Hires fix: the final height, a multiple of 8 (0: from --hires-scale, or --hires-width's aspect).", HIRES, frozenset({"txt2img"})),
    Option("hires_strength", STRENGTH, 0.75, ("--hires-strength",), "Hires fix: how much the second pass redraws (A1111's Denoising strength).", HIRES, frozenset({"txt2img"})),
    Option("hires_steps", Int(0, MAX_STEPS), 0, ("--hires-steps",), "Hires fix: steps the second pass runs, exactly (0: the same as --steps).", HIRES, frozenset({"txt2img"})),
    Option("hires_upscaler", UpscalerChoice(), "latent", ("--hires-upscaler",), "Hires fix: latent (bilinear on the latents), lanczos (resize the decoded image), or an upscaler network file (ESRGAN and kin, through spandrel).", HIRES, frozenset({"txt2img"})),
    # ControlNet: what each one follows and when it acts (each flag: one value for all, or one per --controlnet)
    Option("control_image", PathList(), (), ("--control-image",), "The image a ControlNet follows, or a folder matched to the inputs by file stem; one for all or one per --controlnet. img2img and inpaint: the input when absent.", CONTROL, IMAGE_TASKS),
    Option("control_video", PathList(), (), ("--control-video",), "animate: the video a ControlNet follows, one frame per animation frame (read at every --extract-nth-frame); one for all or one per --controlnet. Absent: the --video-input frames.", CONTROL, ANIMATE),
    Option("control_type", ControlTypes(), (), ("--control-type",), "Preprocessor run on the control image first: canny, scribble, lineart, softedge, tile, shuffle, depth (with --depth-model), openpose (with --pose-model), or none (a ready control map; the default).", CONTROL, IMAGE_TASKS | ANIMATE),
    Option("control_start", FloatList(0.0, 1.0), (), ("--control-start",), "Fraction of the steps done before a ControlNet starts acting (default 0).", CONTROL, IMAGE_TASKS | ANIMATE),
    Option("control_end", FloatList(0.0, 1.0), (), ("--control-end",), "Fraction of the steps after which a ControlNet stops acting (default 1).", CONTROL, IMAGE_TASKS | ANIMATE),
    Option("guess_mode", Bool(), False, ("--guess-mode",), "ControlNets read the control image without the prompt (A1111's \"ControlNet is more important\"); try --cfg 3 to 5.", CONTROL, IMAGE_TASKS | ANIMATE),
    Option("control_resize", Text(10, ("just", "crop", "fill")), "crop", ("--control-resize",), "When a control image's shape differs from the picture's: just (stretch), crop (cover, centre-crop) or fill (fit, pad with the edges).", CONTROL, IMAGE_TASKS | ANIMATE),
    Option("depth_model", Text(4096), "none", ("--depth-model",), "depth (--control-type depth): the transformers depth-estimation model that makes the map (Depth Anything, DPT, ZoeDepth), a folder or a hub id already in the local cache (never downloaded).", CONTROL, IMAGE_TASKS | PREPROCESS),
    Option("pose_model", Text(4096), "none", ("--pose-model",), "openpose (--control-type openpose): a transformers ViTPose model, a folder or a hub id already in the local cache (never downloaded); it finds one person, the whole picture.", CONTROL, IMAGE_TASKS | ANIMATE | PREPROCESS),
    Option("canny_low", Int(0, 255), 100, ("--canny-low",), "canny: gradients below this are never edges.", CONTROL, IMAGE_TASKS | ANIMATE | PREPROCESS),
    Option("canny_high", Int(0, 255), 200, ("--canny-high",), "canny: gradients above this are always edges (between the two: where they continue one).", CONTROL, IMAGE_TASKS | ANIMATE | PREPROCESS),
    # img2img and inpaint
    Option("prompt", Text(), None, ("--prompt", "-p"), "What the result should show (all inputs).", SAMPLING, EDIT_TASKS),
    Option("captions", Bool(), False, ("--captions",), "Use the .txt file beside each image as its prompt (--prompt is the fallback).", INPUTS, EDIT_TASKS),
    Option("recursive", Bool(), False, ("--recursive", "-r"), "Look for images in subfolders too (mirrored in the output).", INPUTS, EDIT_TASKS | FILES_IN_OUT),
    Option("output", OptionalPath(), None, ("--output", "-o"), "A .png file (one input), or a folder where the names mirror the inputs. Default: outputs/.", OUTPUT, FILES_IN_OUT),
    Option("scale", Float(1.0, 8.0), 2.0, ("--scale",), "How many times larger.", OUTPUT, UPSCALE),
    Option("upscaler", Text(4096), "lanczos", ("--upscaler",), "lanczos, or an upscaler network file (ESRGAN, Real-ESRGAN, SwinIR...: .safetensors, or .pth with --allow-pickle) run through spandrel.", MODEL, UPSCALE),
    Option("tile", Int(0, 4096), 512, ("--tile",), "Run a network over tiles of this many input pixels, overlapped and blended, so a large picture fits in memory (0: whole).", MODEL, UPSCALE),
    Option("allow_pickle", Bool(), False, ("--allow-pickle",), "Allow a .pth upscaler (still loaded weights-only).", MODEL, UPSCALE),
    Option("device", Text(20, ("auto", "cpu", "cuda", "mps"), "device"), "auto", ("--device",), "Where a network runs: auto picks cuda, then mps, then the CPU.", MODEL, UPSCALE),
    Option("seed", Seed(), 0, ("--seed",), "shuffle: the seed of its random flow.", CONTROL, PREPROCESS),
    Option("exact_steps", Bool(), False, ("--exact-steps",), "Run exactly --steps steps at this strength (stretches the schedule), not about steps x strength.", SAMPLING, EDIT_TASKS),
    Option("strength", STRENGTH, 0.75, ("--strength",), "How much to change: the input is noised to this fraction of the schedule and denoised from there.", SAMPLING, frozenset({"img2img"})),
    Option("strength", STRENGTH, 1.0, ("--strength",), "How much of the masked area to redo (1: from pure noise).", SAMPLING, frozenset({"inpaint"})),
    Option("resize", Text(10, ("just", "crop", "fill")), "just", ("--resize",), "When --width/--height differ from the input: just (stretch), crop (cover, centre-crop) or fill (fit, pad with the edges).", INPUTS, frozenset({"img2img"})),
    Option("mask", OptionalPath(), None, ("--mask",), "White = repaint. One file for all images, or a folder matched by file stem.", MASK, frozenset({"inpaint"})),
    Option("mask_blur", Float(0.0, 256.0), 4.0, ("--mask-blur",), "Feather the mask by this many pixels (A1111's Gaussian).", MASK, frozenset({"inpaint"})),
    Option("invert_mask", Bool(), False, ("--invert-mask",), "Repaint the black part instead.", MASK, frozenset({"inpaint"})),
    Option("fill", Text(10, ("original", "fill", "noise", "nothing")), "original", ("--fill",), "What the masked area starts from: original, fill (colours from around it), noise or nothing.", MASK, frozenset({"inpaint"})),
    Option("only_masked", Bool(), False, ("--only-masked",), "Generate only the mask's box (plus --padding) at full resolution, then paste it back.", MASK, frozenset({"inpaint"})),
    Option("padding", Int(0, MAX_SIDE), 32, ("--padding",), "Pixels around the mask's box for --only-masked.", MASK, frozenset({"inpaint"})),
    Option("strict", Bool(), False, ("--strict",), "Refuse a mask whose size differs from its image instead of resizing it.", MASK, frozenset({"inpaint"})),
    # animate
    Option("prompts", PromptMap(), {"0": "a landscape of hills at sunset with the sun in the sky"}, ("--prompt", "-p"), "\"FRAME: text\"; repeat for more keyframes. Prompts carry forward; '--neg' inside a prompt starts its negative part.", FRAME, ANIMATE),
    Option("frames", Int(1, MAX_FRAMES), 24, ("--frames",), "Number of frames.", FRAME, ANIMATE),
    Option("fps", Float(1.0, 240.0), 12.0, ("--fps",), "Frames per second.", VIDEO, ANIMATE),
    _schedule("zoom", "0: (1.0025+0.002*sin(1.25*3.14*t/30))", "Scale per frame.", 0.0, 10.0, lo_open=True),
    _schedule("angle", "0: (0)", "Rotation in degrees per frame.", -360.0, 360.0),
    _schedule("translation_x", "0: (0)", "2D: pixels per frame, right. 3D: the camera's move right (the picture goes left), in Deforum's units: 200 to one unit of depth.", -10_000.0, 10_000.0),
    _schedule("translation_y", "0: (0)", "2D: pixels per frame, down. 3D: the camera's move in Deforum's units, the picture going down.", -10_000.0, 10_000.0),
    _schedule("transform_center_x", "0: (0.5)", "Centre of rotation and zoom, as a fraction of the width.", -10.0, 10.0),
    _schedule("transform_center_y", "0: (0.5)", "Centre of rotation and zoom, as a fraction of the height.", -10.0, 10.0),
    Option("perspective_flip", Bool(), False, ("--perspective-flip/--no-perspective-flip",), "Apply the perspective_flip_* schedules.", MOTION, ANIMATE),
    _schedule("perspective_flip_theta", "0: (0)", "Tilt about the x axis, degrees.", -360.0, 360.0),
    _schedule("perspective_flip_phi", "0: (0)", "Tilt about the y axis, degrees.", -360.0, 360.0),
    _schedule("perspective_flip_gamma", "0: (0)", "Turn about the z axis, degrees.", -360.0, 360.0),
    _schedule("perspective_flip_fv", "0: (53)", "Field of view, degrees.", 1.0, 179.0),
    Option("border", Text(20, ("replicate", "wrap", "reflect", "zeros")), "replicate", ("--border",), "What fills the edges a warp uncovers (zeros: black).", MOTION, ANIMATE),
    Option("animation_mode", Text(4, ("2D", "3D")), "2D", ("--animation-mode",), "2D: zoom, angle and translation move the picture. 3D: a camera moves through the picture's depth (translation_x/y/z, rotation_3d_*, fov), as Deforum's 3D mode.", MOTION, ANIMATE),
    _schedule("translation_z", "0: (1.75)", "3D: the camera's move forward per frame, in Deforum's units (200 to one unit of depth; depth runs from 1, nearest, to 2).", -10_000.0, 10_000.0),
    _schedule("rotation_3d_x", "0: (0)", "3D: the camera's turn about the x axis (tilt), degrees per frame.", -360.0, 360.0),
    _schedule("rotation_3d_y", "0: (0)", "3D: the camera's turn about the y axis (pan), degrees per frame.", -360.0, 360.0),
    _schedule("rotation_3d_z", "0: (0)", "3D: the camera's turn about the z axis (roll), degrees per frame.", -360.0, 360.0),
    _schedule("fov", "0: (70)", "3D: the camera's vertical field of view, degrees.", 1.0, 179.0),
    _schedule("near", "0: (200)", "3D: Deforum's near plane. It sets only the projected depth, which a picture drops: it does not change the frames, in Deforum either.", 0.0, 1e6, lo_open=True),
    _schedule("far", "0: (10000)", "3D: Deforum's far plane; like --near, it does not change the frames.", 0.0, 1e6, lo_open=True),
    Option("depth_model", Text(4096), "none", ("--depth-model",), "3D, and --control-type depth: a transformers depth-estimation model (Depth Anything, DPT, ZoeDepth), a folder or a hub id already in the local cache (never downloaded); none: flat depth.", MOTION, ANIMATE),
    Option("save_depth", Bool(), False, ("--save-depth",), "3D: keep the depth map of each key frame beside the frames (depth_NNNNNNNNN.png, 16-bit, nearest white).", MOTION, ANIMATE),
    _schedule("strength", "0: (0.45)", "Denoising per frame, as in img2img. Deforum's 'strength' is the opposite (the amount kept): 0.65 there is 0.35 here.", 0.0, 1.0, FRAME, lo_open=True),
    _schedule("noise", "0: (0.065)", "Noise blended in before each frame's img2img.", 0.0, 1.0, FRAME),
    Option("noise_type", Text(20, ("perlin", "uniform")), "perlin", ("--noise-type",), "perlin (Deforum's default) or uniform.", FRAME, ANIMATE),
    Option("perlin_octaves", Int(1, 12), 4, ("--perlin-octaves",), "Octaves of Perlin noise.", FRAME, ANIMATE),
    Option("perlin_persistence", Float(0.0, 1.0), 0.5, ("--perlin-persistence",), "How much each Perlin octave keeps of the last.", FRAME, ANIMATE),
    _schedule("contrast", "0: (1.0)", "Contrast applied before img2img.", 0.0, 10.0, FRAME),
    _schedule("amount", "0: (0.1)", "Anti-blur (unsharp mask) amount.", 0.0, 10.0, FRAME),
    _schedule("kernel", "0: (5)", "Anti-blur kernel size in pixels.", 0.0, 63.0, FRAME),
    _schedule("sigma", "0: (1.0)", "Anti-blur sigma.", 0.0, 100.0, FRAME),
    _schedule("threshold", "0: (0.0)", "Anti-blur threshold.", 0.0, 255.0, FRAME),
    _schedule("cfg", "0: (7)", "Guidance scale per frame.", 0.0, 100.0, FRAME),
    _schedule("steps", "0: (20)", "Steps per frame; every frame denoises at least one.", 1.0, float(MAX_STEPS), FRAME),
    Option("color_coherence", Text(10, ("none", "lab", "hsv", "rgb")), "lab", ("--color-coherence",), "Match each frame's colours to the first's.", FRAME, ANIMATE),
    Option("seed_behavior", Text(20, ("iter", "fixed", "random", "ladder", "alternate", "schedule"), "behaviour"), "iter", ("--seed-behavior",), "How each frame's seed follows from --seed.", FRAME, ANIMATE),
    _schedule("seed_schedule", "0: (s)", "With --seed-behavior schedule; -1 means a (reproducible) random seed.", -1.0, float(2**32 - 1), FRAME),
    Option("cadence", Int(1, 100), 1, ("--cadence",), "Diffuse every Nth frame; warp and blend the ones between.", FRAME, ANIMATE),
    Option("optical_flow_cadence", Text(20, ("none", "dis", "farneback", "raft"), "method"), "none", ("--optical-flow-cadence",), "With --cadence: move the frames between two key frames along the optical flow between them (OpenCV DIS or Farneback, or RAFT with torchvision and its weights in torch's cache) instead of cross-fading.", FRAME, ANIMATE),
    Option("init_image", OptionalPath(), None, ("--init-image",), "Start from this image instead of txt2img.", FRAME, ANIMATE),
    Option("video_input", OptionalPath(), None, ("--video-input",), "Run each frame of this video through img2img (vid2vid).", FRAME, ANIMATE),
    Option("extract_nth_frame", Int(1, 1000), 1, ("--extract-nth-frame",), "With --video-input: use every nth frame.", FRAME, ANIMATE),
    Option("hybrid_motion", Text(20, ("none", "optical-flow", "perspective", "affine"), "motion"), "none", ("--hybrid-motion",), "With --video-input: start each frame from the last one moved as the video moves (its optical flow, or a perspective or affine fit to its features), not from the video frame.", FRAME, ANIMATE),
    Option("hybrid_flow_method", Text(20, ("dis", "farneback", "raft"), "method"), "dis", ("--hybrid-flow-method",), "How --hybrid-motion optical-flow measures the video's motion (raft: torchvision's, with its weights in torch's cache).", FRAME, ANIMATE),
    Option("hybrid_composite", Text(20, ("none", "normal", "before-motion", "after-generation"), "mode"), "none", ("--hybrid-composite",), "With --video-input: blend the video frame into each frame by --hybrid-comp-alpha: after the motion (normal), before the video's motion, or into the generated frame.", FRAME, ANIMATE),
    Option("hybrid_noise", Text(20, ("warped", "fresh"), "noise"), "warped", ("--hybrid-noise",), "With --hybrid-motion: each key frame's starting noise is the last one's moved as the video moves, fresh only where nothing moved in (warped), or all fresh from the frame's seed as in Deforum (fresh). Warped noise keeps detail from being redrawn each frame: less flicker.", FRAME, ANIMATE),
    _schedule("hybrid_comp_alpha", "0: (0.5)", "How much of the video frame --hybrid-composite blends in (Deforum's hybrid_comp_alpha_schedule).", 0.0, 1.0, FRAME),
    Option("output", Text(4096), "animation.mp4", ("--output", "-o"), ".mp4 (H.264), .webm (VP9), .gif, or a folder of PNG frames.", VIDEO, ANIMATE),
    Option("crf", Int(0, 51), 18, ("--crf",), "Quality for mp4 and webm: 0 lossless .. 51 worst.", VIDEO, ANIMATE),
    Option("soundtrack", OptionalPath(), None, ("--soundtrack",), "Mux this audio file into the .mp4 or .webm, cut to the video's length.", VIDEO, ANIMATE),
    Option("soundtrack_offset", Float(0.0, 86400.0), 0.0, ("--soundtrack-offset",), "Start the soundtrack this many seconds into the file.", VIDEO, ANIMATE),
    Option("interpolate", Int(1, 8), 1, ("--interpolate",), "Make N-1 motion-interpolated frames between frames (ffmpeg's minterpolate, or --interpolate-model); the video's frame rate grows N times.", VIDEO, ANIMATE),
    Option("interpolate_model", OptionalPath(), None, ("--interpolate-model",), "--interpolate's in-betweens from a frame-interpolation network: FILM's TorchScript file (film_net_fp32.pt) or RIFE 4.5+'s flownet.pkl (both need --allow-pickle) or flownet .safetensors.", VIDEO, ANIMATE),
    Option("deflicker", Bool(), False, ("--deflicker/--no-deflicker",), "Even out brightness flicker across frames (ffmpeg's deflicker).", VIDEO, ANIMATE),
    Option("keep_frames", Bool(), True, ("--keep-frames/--no-keep-frames",), "Keep the numbered PNG frames and settings beside the video.", VIDEO, ANIMATE),
    Option("contact_sheet", Int(0, MAX_FRAMES), 0, ("--contact-sheet",), "Also write a contact sheet of every Nth frame (0: none).", VIDEO, ANIMATE),
    Option("resume", Bool(), False, ("--resume",), "Continue an interrupted run from its last complete frame.", VIDEO, ANIMATE),
    # train-lora (its limits are the library's too: training/lora/train.py Settings.check holds the same)
    Option("output", Text(4096), "", ("--output", "-o"), "The LoRA to write (.safetensors, kohya/A1111 layout).", OUTPUT, TRAIN_LORA, extra={"metavar": "NAME.safetensors"}),
    Option("caption", Text(), None, ("--caption",), "One caption for every picture, instead of the .txt files beside them.", PICTURES, TRAIN_LORA),
    Option("trigger", Text(200), "", ("--trigger",), "A rare word put at the start of every caption; write it in a prompt to call up what was learned.", PICTURES, TRAIN_LORA),
    Option("flip", Bool(), False, ("--flip/--no-flip",), "Also train on mirror images (for subjects that look right mirrored).", PICTURES, TRAIN_LORA),
    Option("crop", Bool(), False, ("--crop/--no-crop",), "Random crops, zoomed in 1/8, for subjects whose framing and size do not matter.", PICTURES, TRAIN_LORA),
    Option("model", Text(4096), "scumble-mini", ("--model", "-m"), "Built-in model name, a diffusers folder, a .safetensors checkpoint, or a hub id (SD 1.x or 2.x).", MODEL, TRAIN_LORA, extra={"envvar": "SCUMBLE_MODEL"}),
    Option("config", OptionalPath(), None, ("--config",), "Architecture for a single-file checkpoint: sd15, sd2-base, sd2-v, or a diffusers folder (guessed from the file when absent).", MODEL, TRAIN_LORA),
    Option("allow_pickle", Bool(), False, ("--allow-pickle",), "Allow .ckpt/.bin/.pt/.pth checkpoints (still loaded weights-only).", MODEL, TRAIN_LORA),
    Option("device", Text(20, ("auto", "cpu", "cuda", "mps"), "device"), "auto", ("--device",), "auto picks cuda, then mps, then the CPU. Training is always in fp32.", MODEL, TRAIN_LORA),
    Option("rank", Int(1, 1024), 8, ("--rank",), "LoRA rank (dimension); alpha is the same, so the scale is 1.", TRAINING, TRAIN_LORA),
    Option("conv_rank", Int(0, 1024), 0, ("--conv-rank",), "Rank of adapters on the ResNet 3x3 convolutions too (kohya's conv_dim); 0: none. Learns shapes faster.", TRAINING, TRAIN_LORA),
    Option("steps", Int(1, 10_000_000), 500, ("--steps",), "Optimizer steps.", TRAINING, TRAIN_LORA),
    Option("lr", Float(0.0, 10.0, lo_open=True), 1e-4, ("--lr",), "Peak learning rate (AdamW; warm-up, then cosine decay).", TRAINING, TRAIN_LORA),
    Option("batch_size", Int(1, 4096), 1, ("--batch-size",), "Pictures per step (and as many class pictures).", TRAINING, TRAIN_LORA),
    Option("resolution", Int(0, 4096), 0, ("--resolution",), "Training size in pixels, square, 64 or more; 0: the model's own (128 built-in, 512 SD 1.5).", TRAINING, TRAIN_LORA),
    Option("seed", Int(0, 2**63 - 1), 0, ("--seed",), "Every random draw of the run follows from it.", TRAINING, TRAIN_LORA),
    Option("train_text_encoder", Bool(), False, ("--train-text-encoder",), "Also give the text encoder adapters (lora_te_ keys).", TRAINING, TRAIN_LORA),
    Option("class_prompt", PathList(), (), ("--class-prompt",), "Prior preservation: the model draws pictures of this (repeat for several) and keeps drawing them as it did. '' keeps its unconditional pictures, which guidance subtracts: a LoRA that moves them weakens itself at every cfg.", PRIOR, TRAIN_LORA, extra={"metavar": "TEXT"}),
    Option("class_images", Int(1, 100_000), 50, ("--class-images",), "How many class pictures to make (cached in the run's folder).", PRIOR, TRAIN_LORA),
    Option("prior_weight", Float(0.0, 1000.0, lo_open=True), 1.0, ("--prior-weight",), "Weight of the class pictures' loss against the training pictures'.", PRIOR, TRAIN_LORA),
    Option("sample_prompt", PathList(), (), ("--sample-prompt",), "Draw this at the start, every --sample-every steps and at the end, into NAME.samples.png (repeat for several).", WATCH, TRAIN_LORA, extra={"metavar": "TEXT"}),
    Option("sample_every", Int(0, 10_000_000), 0, ("--sample-every",), "Steps between sample rows; 0: only at the start and the end.", WATCH, TRAIN_LORA),
    Option("checkpoint_every", Int(1, 10_000_000), 100, ("--checkpoint-every",), "Steps between checkpoints (in NAME.train/, removed when the LoRA is written).", WATCH, TRAIN_LORA),
    Option("resume", Bool(), False, ("--resume",), "Go on from the last checkpoint of a stopped run with the same settings.", WATCH, TRAIN_LORA),
    Option("overwrite", Bool(), False, ("--overwrite",), "Replace an existing output (and samples sheet).", OUTPUT, TRAIN_LORA),
)


def options_for(task: str) -> dict[str, Option]:
    return {o.name: o for o in OPTIONS if task in o.tasks}


def any_task_takes(name: str) -> bool:
    return any(o.name == name for o in OPTIONS)


def option(task: str, name: str) -> Option:
    return options_for(task)[name]
