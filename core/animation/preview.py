"""The motion alone, before any rendering: a test pattern (or the init image) carried through every frame's warp.

No model is loaded, so a Deforum user sees in seconds where the camera goes: a video and a contact
sheet with frame numbers, beside where the real output would go.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ..errors import ScumbleError
from ..images import inputs
from ..images import pixels as px
from ..records import output
from .frames import FramePlan
from .moves import warp_frame
from .settings import AnimationSettings

PREVIEW_SIDE = 512  # no model to ask for its native size; Deforum's own default


def test_pattern(width: int, height: int) -> np.ndarray:
    """A checkerboard with a grid, concentric rings and a cross at the centre: motion shows in all of them."""
    y, x = np.mgrid[0:height, 0:width]
    board = ((x // 32 + y // 32) % 2).astype(np.float32)
    image = np.stack([90 + 60 * board, 90 + 60 * board, 110 + 60 * board], axis=-1)
    radius = np.hypot(x - width / 2, y - height / 2)
    rings = (radius.astype(int) // 24) % 2 == 0
    image[rings & (radius < min(width, height) * 0.45)] = (220, 120, 40)
    image[(np.abs(x - width // 2) < 2) | (np.abs(y - height // 2) < 2)] = (255, 255, 255)
    image[(x % 64 == 0) | (y % 64 == 0)] = (30, 30, 30)
    return image.clip(0, 255).astype(np.uint8)


def targets(settings: AnimationSettings) -> tuple[Path, Path]:
    """Where the preview goes: beside the real output, named .preview."""
    out = Path(settings.output).expanduser()
    suffix = out.suffix.lower() if out.suffix.lower() in (".mp4", ".webm", ".gif") else ".mp4"
    base = out.with_suffix("") if out.suffix else out / "animation"
    return base.with_name(base.name + ".preview" + suffix), base.with_name(base.name + ".preview.png")


def render(settings: AnimationSettings, plans: list[FramePlan], every: int = 0) -> tuple[Path, Path]:
    """Write the preview video and its numbered contact sheet; returns their paths."""
    from .video import VideoWriter

    video_path, sheet_path = targets(settings)
    for path in (video_path, sheet_path):
        output.refuse_existing(path, settings.overwrite)
    width, height = settings.width or PREVIEW_SIDE, settings.height or PREVIEW_SIDE
    if settings.init_image:
        label = f"--init-image {settings.init_image}"
        start = inputs.decode_rgb(inputs.InputItem(label, Path(settings.init_image), Path(settings.init_image).name).read_bytes(), label)
        frame = px.resize(start, width, height, "crop")
    else:
        frame = test_pattern(width, height)
    every = every or max(1, len(plans) // 24)
    chosen: list[tuple[int, np.ndarray]] = []
    writer = VideoWriter(video_path, settings.fps, settings.crf)
    try:
        for plan in plans:
            if plan.index:
                frame = warp_frame(frame, settings, plan)
            writer.add(frame)
            if plan.index % every == 0:
                chosen.append((plan.index, frame))
    except BaseException:
        writer.abort()
        raise
    writer.close()
    output.write_bytes(output.encode_png(_sheet(chosen)), sheet_path, overwrite=settings.overwrite)
    return video_path, sheet_path


def _sheet(frames: list[tuple[int, np.ndarray]], columns: int = 6):
    from PIL import Image, ImageDraw

    if not frames:
        raise ScumbleError("the preview has no frames")
    h, w = frames[0][1].shape[:2]
    scale = min(1.0, 256 / w)
    tw, th = max(1, int(w * scale)), max(1, int(h * scale))
    rows = -(-len(frames) // columns)
    sheet = Image.new("RGB", (tw * min(columns, len(frames)), th * rows), "white")
    draw = ImageDraw.Draw(sheet)
    for n, (index, frame) in enumerate(frames):
        x, y = (n % columns) * tw, (n // columns) * th
        sheet.paste(Image.fromarray(frame).resize((tw, th)), (x, y))
        draw.rectangle((x, y, x + 44, y + 14), fill="black")
        draw.text((x + 3, y + 2), f"{index:>5}", fill="white")
    return sheet
