"""`scumble preprocess`: one ControlNet preprocessor over images, alone; output names mirror the inputs.

No model is loaded (nor torch imported). A bad input fails alone and the batch goes on; nothing is
replaced without --overwrite, and every file is written whole or not at all.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

from ... import __version__
from ..errors import ScumbleError, UsageError
from ..images import control, inputs
from ..images.control_types import check_type
from ..records import output

RECORD_KEY = "scumble_preprocess"  # the PNG text chunk: what made the control image, from which file


@dataclass
class Summary:
    written: list[Path | None] = field(default_factory=list)  # None: standard output
    failed: list[tuple[str, str]] = field(default_factory=list)

    @property
    def exit_code(self) -> int:
        return 1 if self.failed else 0


def run(kind: str, arguments: list[str], destination: str | None, overwrite: bool = False, recursive: bool = False, settings: control.Settings = control.Settings()) -> Summary:
    check_type(kind, "scumble preprocess")
    found, problems = inputs.expand(list(arguments), recursive)
    summary = Summary(failed=list(problems))
    if not found:
        return summary
    plan = output.mirrored_plan(destination, arguments, found)
    if plan.kind == "file" and not output.is_special(plan.path) and plan.path.suffix.lower() != ".png":
        raise UsageError(f"-o {destination}: preprocess writes PNG (a control map must be lossless)")
    owners: dict[Path, str] = {}
    for item in found:
        try:
            target = output.mirrored_target(plan, item)
            if target is not None and target in owners:
                raise ScumbleError(f"{item.label}: would write {target}, as {owners[target]} does")
            owners[target] = item.label
            output.refuse_existing(target, overwrite)
            _one(kind, item, target, overwrite, settings)
        except ScumbleError as exc:
            summary.failed.append((item.label, str(exc)))
            continue
        summary.written.append(target)
    return summary


def _one(kind: str, item: inputs.InputItem, target: Path | None, overwrite: bool, settings: control.Settings) -> None:
    from PIL import Image

    data = item.read_bytes()
    made = control.preprocess(kind, inputs.decode_rgb(data, item.label), settings)
    source = str(item.path.resolve()) if item.path else item.label
    record = {"version": __version__, "type": kind, "settings": control.settings_record(kind, settings), "source": source, "source_sha256": inputs.sha256(data)}
    output.write_bytes(output.encode_png(Image.fromarray(made), {RECORD_KEY: json.dumps(record, sort_keys=True)}), target, overwrite=overwrite)
