"""What the runner and the tasks pass between them: an item to make, and an item made ready for the model."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from ..errors import InputError
from ..images import inputs
from ..images.inputs import InputItem
from ..request.types import ImageRequest, RecordedInput
from ..sampling.engine import Engine, ImageJob


@dataclass
class Item:
    """One image of the run, with everything that distinguishes it from the others."""

    index: int
    seed: int
    prompt: str
    negative_prompt: str
    label: str
    source: InputItem | None = None  # img2img, inpaint: the input image
    recorded: RecordedInput | None = None  # replay: the files and hashes it must be read from
    target: Path | None = None
    write: bool = True  # replay regenerates the whole batch and writes one of it
    problem: str | None = None  # found while naming outputs: this item fails alone when its turn comes
    subseed: int | None = None  # A1111's variation seed

    @property
    def job(self) -> ImageJob:
        return ImageJob(self.prompt, self.negative_prompt, self.seed, self.index, subseed=self.subseed)


@dataclass
class Prepared:
    """An item ready for the model; `state` is the task's own (pixels, masks, crop box)."""

    item: Item
    size: tuple[int, int]
    inputs: dict = field(default_factory=dict)  # recorded with the image: files and their hashes
    state: Any = None
    notices: list[str] = field(default_factory=list)
    control: list = field(default_factory=list)  # one control image per ControlNet, at `size`, preprocessed
    control_hires: list = field(default_factory=list)  # the same at the hires fix's final size, for its second pass


class Task(Protocol):
    name: str
    controls: Any  # control.Controls once items() has run, when the run has ControlNets

    def items(self, request: ImageRequest) -> tuple[list[Item], list[tuple[str, str]]]: ...
    def assign_targets(self, request: ImageRequest, items: list[Item]) -> None: ...
    def record_fields(self, request: ImageRequest) -> dict: ...
    def prepare(self, engine: Engine, request: ImageRequest, item: Item) -> Prepared: ...
    def generate(self, engine: Engine, request: ImageRequest, batch: list[Prepared], on_step) -> list: ...
    def finish(self, request: ImageRequest, prep: Prepared, image): ...


def max_side(engine: Engine) -> int:
    """The largest side worth generating: four times the model's native size (beyond it, the model tiles or runs out of memory)."""
    from ..request.options import MAX_SIDE

    return min(MAX_SIDE, 4 * engine.native_size)


def read_verified(path: str, expected_sha256: str | None, what: str) -> bytes:
    """A recorded input file, refused when it is gone or has changed since the record was written."""
    from ..images.inputs import sha256

    item = InputItem(path, Path(path), Path(Path(path).name))
    data = item.read_bytes()
    if expected_sha256 is not None and sha256(data) != expected_sha256:
        raise InputError(f"{what} {path} has changed since the image was made (sha256 differs), so it cannot be replayed")
    return data


class MatchedFiles:
    """A file for every image, or a folder matched to the images by file stem (--mask, --control-image)."""

    def __init__(self, flag: str, spec: str, noun: str):
        path = Path(spec).expanduser()
        self.folder = path if path.is_dir() else None
        self.single: bytes | None = None
        self.label, self.noun = spec, noun
        if self.folder is None:
            if not path.is_file():
                raise InputError(f"{flag} {spec}: no such file or folder")
            self.single = InputItem(f"{flag} {spec}", path, Path(path.name)).read_bytes()
        else:
            self.by_stem: dict[str, Path] = {}
            for p in sorted(self.folder.rglob("*")):
                if p.is_file() and p.suffix.lower() in inputs.IMAGE_SUFFIXES:
                    self.by_stem.setdefault(p.stem, p)
            if not self.by_stem:
                raise InputError(f"{flag} {spec}: no images in this folder")

    def for_item(self, item: InputItem | None) -> tuple[bytes, str]:
        """The file's bytes and the path they came from."""
        if self.single is not None:
            return self.single, self.label
        path = self.by_stem.get(item.relative.stem)
        if path is None:
            raise InputError(f"{item.label}: no {self.noun} named {item.relative.stem}.* in {self.folder}")
        return InputItem(str(path), path, Path(path.name)).read_bytes(), str(path)
