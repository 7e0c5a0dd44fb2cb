"""The frozen, typed requests a run is made from: built and checked once, trusted after."""

from __future__ import annotations

from dataclasses import dataclass, field

from ..sampling.settings import Sampling
from ..sampling.strength import Denoise


@dataclass(frozen=True)
class ModelOptions:
    model: str = "scumble-mini"
    config: str | None = None
    allow_pickle: bool = False
    device: str = "auto"
    dtype: str = "auto"
    offload: str = "none"
    vae: str = ""
    vae_tiling: bool = False
    attention_slicing: bool = False
    channels_last: bool = False
    compile_unet: bool = False
    backend: str = "auto"
    lora: tuple[tuple[str, float], ...] = ()
    lora_dir: tuple[str, ...] = ()
    fuse_lora: bool = False
    embedding: tuple[str, ...] = ()
    embedding_dir: tuple[str, ...] = ()
    controlnet: tuple[tuple[str, float], ...] = ()  # (model, weight); loaded with the model, in this order
    controlnet_config: tuple[str, ...] = ()  # one for all, or one per ControlNet


@dataclass(frozen=True)
class OutputOptions:
    output: str | None = None  # a .png file, a folder, "-" for standard output; None: outputs/
    name_pattern: str = "{index:05}-{seed}-{prompt}"
    overwrite: bool = False
    skip_existing: bool = False
    shard: tuple[int, int] | None = None
    quality: int = 90  # JPEG and WebP


@dataclass(frozen=True)
class MaskOptions:
    mask: str | None = None  # one file, or a folder matched by stem
    blur: float = 4.0
    invert: bool = False
    fill: str = "original"
    only_masked: bool = False
    padding: int = 32
    strict: bool = False


@dataclass(frozen=True)
class RecordedInput:
    """One input of a replayed batch: read from exactly this file, and refused if its hash differs."""

    image: str
    image_sha256: str
    mask: str | None = None
    mask_sha256: str | None = None


@dataclass(frozen=True)
class ControlUnit:
    """One ControlNet of a run: what it follows, through which preprocessor, how strongly and when."""

    model: str
    weight: float = 1.0
    config: str | None = None  # single files: sd15, sdxl or a folder; None: guessed from the file
    image: str | None = None  # a file or a folder matched by stem; None: the input itself (img2img, inpaint)
    module: str = "none"  # the preprocessor
    start: float = 0.0  # fraction of the steps done before it acts
    end: float = 1.0


@dataclass(frozen=True)
class ControlOptions:
    units: tuple[ControlUnit, ...]
    guess_mode: bool = False
    resize: str = "crop"  # a control image whose shape differs from the picture's: just, crop or fill
    canny_low: int = 100
    canny_high: int = 200
    networks: tuple[tuple[str, str], ...] = ()  # (type, model) of each preprocessor that is a network: depth, openpose


@dataclass(frozen=True)
class RecordedControl:
    """A control image a replayed image was made with: read from exactly this file, refused if its hash differs."""

    image: str
    image_sha256: str


@dataclass(frozen=True)
class Replay:
    """Regenerate the recorded batch exactly; write only the image at `position`."""

    path: str
    position: int
    seeds: tuple[int, ...]
    prompts: tuple[str, ...]
    inputs: tuple[RecordedInput, ...] = ()
    record: dict = field(default_factory=dict, compare=False)
    subseeds: tuple[int, ...] = ()  # txt2img with variation: each image's recorded subseed
    controls: tuple[tuple[RecordedControl | None, ...], ...] = ()  # per batch image, per ControlNet; None: its input


@dataclass(frozen=True)
class Hires:
    """txt2img's hires fix: the base image upscaled and redrawn by img2img (A1111's second pass)."""

    scale: float = 1.0
    width: int = 0  # 0: from the scale, or the other side's aspect
    height: int = 0
    strength: float = 0.75
    steps: int = 0  # 0: the same as --steps
    upscaler: str = "latent"
    denoise: Denoise | None = None  # exact: the second pass runs `steps or --steps` steps

    def target(self, base: tuple[int, int]) -> tuple[int, int]:
        """The final size from the base size; floored to multiples of 8 because latents are 1/8 of the pixels."""
        w, h = base
        if self.width and self.height:
            return self.width, self.height
        if self.width:
            return self.width, max(8, int(self.width * h / w) // 8 * 8)
        if self.height:
            return max(8, int(self.height * w / h) // 8 * 8), self.height
        return max(8, int(w * self.scale) // 8 * 8), max(8, int(h * self.scale) // 8 * 8)


@dataclass(frozen=True)
class ImageRequest:
    """One txt2img, img2img or inpaint run."""

    task: str
    model: ModelOptions
    sampling: Sampling
    output: OutputOptions
    prompts: tuple[tuple[str, str], ...]  # (prompt, negative); for edits one pair, the prompt "" when captions supply it
    seed: int
    batch_size: int = 1
    count: int = 1
    inputs: tuple[str, ...] = ()
    captions: bool = False
    recursive: bool = False
    denoise: Denoise | None = None
    resize: str = "just"
    mask: MaskOptions | None = None
    replay: Replay | None = None
    subseed: int = 0  # txt2img with --subseed-strength: image i's variation seed is subseed + i
    hires: Hires | None = None  # txt2img's hires fix; None: off, the old single pass exactly
    control: ControlOptions | None = None  # ControlNets; None: none
    sources: dict = field(default_factory=dict, compare=False)  # option -> where its value came from, for messages
