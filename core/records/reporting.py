"""How a run reports: the Reporter a CLI passes in, and what a run of images returns."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol


class Reporter(Protocol):
    def start(self, total_images: int, steps: int) -> None: ...
    def step(self, done: int, total: int) -> None: ...
    def image_done(self, result: "ImageResult") -> None: ...
    def image_failed(self, label: str, message: str) -> None: ...
    def notice(self, message: str) -> None: ...
    def frame_done(self, index: int, total: int, resumed: bool = False) -> None: ...


class SilentReporter:
    def start(self, total_images: int, steps: int) -> None:
        pass

    def step(self, done: int, total: int) -> None:
        pass

    def image_done(self, result: "ImageResult") -> None:
        pass

    def image_failed(self, label: str, message: str) -> None:
        pass

    def notice(self, message: str) -> None:
        pass

    def frame_done(self, index: int, total: int, resumed: bool = False) -> None:
        pass


@dataclass
class ImageResult:
    path: str | None  # None when written to standard output
    seed: int
    record: dict
    skipped: bool = False


@dataclass
class RunSummary:
    written: list[ImageResult] = field(default_factory=list)
    skipped: list[ImageResult] = field(default_factory=list)
    failed: list[tuple[str, str]] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def exit_code(self) -> int:
        return 1 if self.failed else 0
