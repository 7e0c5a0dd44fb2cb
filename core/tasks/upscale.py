"""`scumble upscale`: pictures made larger, by Lanczos or an upscaler network, files or folders in, PNGs out.

A PNG keeps the A1111 parameters it came with, with A1111's postprocessing fields added, so an upscaled
picture still says how it was made; scumble's own record says what upscaled it, from which file.
"""

from __future__ import annotations

import json
from pathlib import Path

from ... import __version__
from ..images import inputs, upscale
from ..records import output
from .files import Summary, each_image

RECORD_KEY = "scumble_upscale"


def run(arguments: list[str], destination: str | None, scale: float, upscaler: str, tile: int, overwrite: bool = False, recursive: bool = False, allow_pickle: bool = False, device: str = "cpu") -> Summary:
    network, described = None, {"upscaler": "Lanczos"}
    if upscaler.lower() != upscale.LANCZOS:
        from ..loading.sources import file_sha256

        network = upscale.load_network(upscaler, allow_pickle, device)
        described = {"upscaler": network.name, "path": upscaler, "sha256": file_sha256(Path(upscaler)), "tile": tile}
    return each_image(arguments, destination, lambda item, data: _one(item, data, scale, network, tile, described), overwrite, recursive, "upscale")


def _one(item: inputs.InputItem, data: bytes, scale: float, network, tile: int, described: dict) -> bytes:
    from PIL import Image

    made = upscale.upscale(inputs.decode_rgb(data, item.label), scale, network, tile)
    source = str(item.path.resolve()) if item.path else item.label
    record = {"version": __version__, "scale": scale, **described, "source": source, "source_sha256": inputs.sha256(data)}
    text = {RECORD_KEY: json.dumps(record, sort_keys=True)}
    if (parameters := _parameters(data)) is not None:
        text["parameters"] = f"{parameters}\nPostprocess upscale by: {scale:g}, Postprocess upscaler: {described['upscaler']}"
    return output.encode_png(Image.fromarray(made), text)


def _parameters(data: bytes) -> str | None:
    """The A1111 parameters a PNG carries (None for other files)."""
    import io

    from PIL import Image

    try:
        with Image.open(io.BytesIO(data)) as img:
            value = getattr(img, "text", {}).get("parameters")
    except Exception:  # noqa: BLE001 - decode_rgb has already accepted the file; no text is no parameters
        return None
    return value if isinstance(value, str) else None
