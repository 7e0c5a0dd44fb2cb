"""`scumble preprocess`: one ControlNet preprocessor over images, alone; output names mirror the inputs.

No model is loaded (nor torch imported), except depth's network, the user's --depth-model. A bad input fails alone and the batch goes on; nothing is
replaced without --overwrite, and every file is written whole or not at all.
"""

from __future__ import annotations

import json
from dataclasses import replace

from ... import __version__
from ..errors import UsageError
from ..images import control, inputs
from ..images.control_types import MODEL_KINDS, WITH_A_MODEL, check_type, model_flag
from ..records import output
from .files import Summary, each_image

RECORD_KEY = "scumble_preprocess"  # the PNG text chunk: what made the control image, from which file


def run(kind: str, arguments: list[str], destination: str | None, overwrite: bool = False, recursive: bool = False, settings: control.Settings = control.Settings(), models: dict[str, str] | None = None) -> Summary:
    """`models`: the depth_model and pose_model options' values ("none" when not given)."""
    check_type(kind, "scumble preprocess")
    for other, option in WITH_A_MODEL.items():
        given = (models or {}).get(option, "none") != "none"
        if other == kind and not given:
            raise UsageError(f"scumble preprocess {kind} needs {model_flag(kind)} MODEL, {MODEL_KINDS[kind]}")
        if other != kind and given:
            raise UsageError(f"{model_flag(other)} goes with scumble preprocess {other}")
    if kind in WITH_A_MODEL:
        from ..loading import annotators
        from ..loading.device import resolve_device

        settings = replace(settings, networks={kind: annotators.load(kind, models[WITH_A_MODEL[kind]], resolve_device("auto"))})
    return each_image(arguments, destination, lambda item, data: _one(kind, item, data, settings), overwrite, recursive, "preprocess")


def _one(kind: str, item: inputs.InputItem, data: bytes, settings: control.Settings) -> bytes:
    from PIL import Image

    made = control.preprocess(kind, inputs.decode_rgb(data, item.label), settings)
    source = str(item.path.resolve()) if item.path else item.label
    record = {"version": __version__, "type": kind, "settings": control.settings_record(kind, settings), "source": source, "source_sha256": inputs.sha256(data)}
    return output.encode_png(Image.fromarray(made), {RECORD_KEY: json.dumps(record, sort_keys=True)})
