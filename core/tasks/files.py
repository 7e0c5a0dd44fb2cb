"""Image files in, image files out, one at a time: the loop `preprocess` and `upscale` share.

Output names mirror the inputs (one file, standard output, or a folder that mirrors the input folders);
a name two inputs would share is refused for the second; nothing is replaced without --overwrite; each
file is written whole or not at all; a bad input fails alone and the batch goes on.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from ..errors import ScumbleError, UsageError
from ..images import inputs
from ..records import output


@dataclass
class Summary:
    written: list[Path | None] = field(default_factory=list)  # None: standard output
    failed: list[tuple[str, str]] = field(default_factory=list)

    @property
    def exit_code(self) -> int:
        return 1 if self.failed else 0


def each_image(arguments: list[str], destination: str | None, make: Callable[[inputs.InputItem, bytes], bytes], overwrite: bool = False, recursive: bool = False, what: str = "this command") -> Summary:
    """make(item, its bytes) -> the PNG to write for it, for every input found."""
    found, problems = inputs.expand(list(arguments), recursive)
    summary = Summary(failed=list(problems))
    if not found:
        return summary
    plan = output.mirrored_plan(destination, arguments, found)
    if plan.kind == "file" and not output.is_special(plan.path) and plan.path.suffix.lower() != ".png":
        raise UsageError(f"-o {destination}: {what} writes PNG (lossless)")
    owners: dict[Path, str] = {}
    for item in found:
        try:
            target = output.mirrored_target(plan, item)
            if target is not None and target in owners:
                raise ScumbleError(f"{item.label}: would write {target}, as {owners[target]} does")
            owners[target] = item.label
            output.refuse_existing(target, overwrite)
            output.write_bytes(make(item, item.read_bytes()), target, overwrite=overwrite)
        except ScumbleError as exc:
            summary.failed.append((item.label, str(exc)))
            continue
        summary.written.append(target)
    return summary
