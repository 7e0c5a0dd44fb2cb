"""Regenerate the README's pictures with the built-in model, through the CLI as a user would.

    python docs/make_images.py
"""

from __future__ import annotations

import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

from scumble.training import world

OUT = Path(__file__).resolve().parent / "images"
PROMPTS = [
    "a red circle on a blue background",
    "a large yellow star at the top on a black background",
    "a small green triangle on the left on a white background",
    "a purple square on the right on an orange background",
    "a landscape of hills at sunset with the sun in the sky",
    "the moon in the sky over the sea at night",
]


def scumble(*args: str) -> None:
    subprocess.run([sys.executable, "-m", "scumble", *args, "-q", "--overwrite"], check=True)


def strip(paths: list[Path], labels: list[str], scale: int = 2) -> Image.Image:
    tiles = [Image.open(p).convert("RGB") for p in paths]
    w, h = tiles[0].size
    sheet = Image.new("RGB", (w * scale * len(tiles), h * scale + 18), "white")
    draw = ImageDraw.Draw(sheet)
    for i, (tile, label) in enumerate(zip(tiles, labels)):
        sheet.paste(tile.resize((w * scale, h * scale), Image.NEAREST), (i * w * scale, 18))
        draw.text((i * w * scale + 4, 3), label, fill="black")
    return sheet


def main() -> None:
    OUT.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        made = []
        for i, prompt in enumerate(PROMPTS):
            scumble("txt2img", prompt, "--seed", str(i + 1), "-o", str(tmp / f"t{i}.png"))
            made.append(tmp / f"t{i}.png")
        strip(made, [f"{i + 1}" for i in range(len(made))]).save(OUT / "txt2img.png")

        sketches = tmp / "sketches"
        sketches.mkdir()
        objects = [world.ShapeObject("red", "circle", "center", "large"), world.ShapeObject("blue", "square", "center", "large"), world.ShapeObject("green", "triangle", "center", "large")]
        for i, obj in enumerate(objects):
            Image.fromarray(world.rough_sketch(obj, seed=i)).save(sketches / f"{obj.color}_{obj.shape}.png")
            (sketches / f"{obj.color}_{obj.shape}.txt").write_text(f"a {obj.color} {obj.shape} on a white background")
        scumble("img2img", str(sketches), "--captions", "--strength", "0.6", "--seed", "5", "-o", str(tmp / "finished") + "/")
        names = sorted(p.name for p in sketches.glob("*.png"))
        strip([sketches / n for n in names] + [tmp / "finished" / n for n in names], ["sketch"] * len(names) + ["img2img"] * len(names)).save(OUT / "img2img.png")

        base = tmp / "scene.png"  # a clean picture of the world, as a photo to edit would be
        Image.fromarray(world.render_shapes(world.ShapeScene("blue", (world.ShapeObject("red", "circle", "left", "large"),)))).save(base)
        mask = np.zeros((128, 128), np.uint8)
        mask[20:108, 66:124] = 255
        Image.fromarray(mask).save(tmp / "mask.png")
        scumble("inpaint", str(base), "--mask", str(tmp / "mask.png"), "-p", "a large yellow star on the right on a blue background", "--seed", "2", "--cfg", "3", "-o", str(tmp / "inpainted.png"))  # at 7 the repainted area keeps coloured noise (model card)
        strip([base, tmp / "mask.png", tmp / "inpainted.png"], ["before", "mask", "inpainted"]).save(OUT / "inpaint.png")
    print(f"wrote {', '.join(p.name for p in sorted(OUT.glob('*.png')))} in {OUT}")


if __name__ == "__main__":
    main()
