"""How well a model's autoencoder keeps pictures it never saw, and what img2img's strength does to a foreign sketch.

Round trip: encode, decode (posterior mean, no denoising), mean absolute error in 0..255 per picture set, at 128
and 256 pixels: held-out sketches, line drawings, gradients, textures and photo-like fields from
training/pictures.py (seeds never drawn in training), the shapes world, and scikit-learn's two sample photos
when scikit-learn is installed (centre crops resized to the size).

Strength ladder: a grey pencil sketch of a circle on paper, img2img with "a red circle on a white background"
at strengths 0.1 to 0.9; prints the mean change from the sketch at each strength beside the round trip's.
--more-ladders does the same on three more foreign pictures (a held-out sketch, a held-out photo-like field and
scikit-learn's first photo), each with a prompt that names something it does not show.

    python benchmarks/bench_autoencoder.py [--model scumble-mini] [--count 8] [--ladder docs/images/ladder.png]
        [--sheet docs/images/round_trips.png]

Shape ceiling: the adherence benchmark's 100 test prompts rendered by the world, read by its shape reader as drawn
and after the autoencoder's round trip: what the UNet could score on shapes if it drew each one perfectly.

--sheet saves the first two pictures of each set at 128 px, originals over their round trips.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np


def photos(size: int) -> list[np.ndarray]:
    try:
        from sklearn.datasets import load_sample_images
    except ImportError:
        return []
    from PIL import Image

    out = []
    for image in load_sample_images().images:
        h, w = image.shape[:2]
        side = min(h, w)
        crop = image[(h - side) // 2 : (h + side) // 2, (w - side) // 2 : (w + side) // 2]
        out.append(np.asarray(Image.fromarray(crop).resize((size, size), Image.LANCZOS)))
    return out


def picture_sets(size: int, count: int) -> dict[str, list[np.ndarray]]:
    from scumble.training import pictures, world

    sets = {name: [pictures.held_out(name, i, size) for i in range(count)] for name in pictures.EVAL_SETS}
    sets["shapes world"] = [world.make_sample(90_000_000 + i, size=size).image for i in range(count)]
    if found := photos(size):
        sets["photos (scikit-learn)"] = found
    return sets


def round_trip(vae, images: list[np.ndarray]) -> np.ndarray:
    import torch

    x = torch.from_numpy(np.stack(images)).permute(0, 3, 1, 2).float().div(127.5).sub(1)
    with torch.no_grad():
        y = vae.decode(vae.encode(x.to(vae.dtype)).latent_dist.mean).sample.float()
    return ((y.clamp(-1, 1) + 1) * 127.5).round().permute(0, 2, 3, 1).numpy().astype(np.uint8)


def round_trip_sheet(pairs: dict[str, tuple[list[np.ndarray], np.ndarray]]):
    """Each set's first two pictures over their round trips, the set named above them."""
    from PIL import Image, ImageDraw

    columns = [(name, images[i], trips[i]) for name, (images, trips) in pairs.items() for i in range(min(2, len(images)))]
    size = columns[0][1].shape[0]
    sheet = Image.new("RGB", (size * len(columns), 14 + 2 * size), "white")
    draw = ImageDraw.Draw(sheet)
    for i, (name, image, trip) in enumerate(columns):
        sheet.paste(Image.fromarray(image), (i * size, 14))
        sheet.paste(Image.fromarray(trip), (i * size, 14 + size))
        if i % 2 == 0:
            draw.text((i * size + 3, 1), name, fill="black")
    return sheet


def mae(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.abs(a.astype(np.float32) - b.astype(np.float32)).mean())


def ladder(model: str, size: int, seed: int = 3) -> tuple[np.ndarray, dict[float, np.ndarray]]:
    import cv2

    from scumble.training import pictures

    mask = np.zeros((size, size), np.uint8)
    cv2.circle(mask, (size // 2, size // 2), int(size * 0.3), 1, -1)
    sketch = pictures.pencil_sketch_of(mask, seed)
    return sketch, {s: img2img(model, sketch, s) for s in (0.1, 0.3, 0.5, 0.6, 0.7, 0.9)}


def shape_ceiling(vae, count: int = 100) -> dict[str, float]:
    """Share of the test prompts' rendered pictures whose shape the reader gets, as drawn and after a round trip."""
    from scumble.training import adherence, world

    drawn, trips = [], []
    for t in adherence.held_out_targets(count):
        img = world.render_shapes(t.scene)
        drawn.append(adherence.read_picture(img).shape == t.shape)
        trips.append(adherence.read_picture(round_trip(vae, [img])[0]).shape == t.shape)
    return {"drawn": 100 * float(np.mean(drawn)), "round_trip": 100 * float(np.mean(trips))}


def more_ladders(model: str, vae) -> dict[str, dict[str, float]]:
    """{picture: {"round_trip": mae, "0.1": mae, ...}} for the foreign pictures beyond the circle sketch."""
    from scumble.training import pictures

    items = {"sketch": (pictures.held_out("sketch", 0, 128), "a black star on a white background"), "photo-like": (pictures.held_out("photo-like", 0, 128), "a landscape of hills at sunset")}
    if shots := photos(128):
        items["photo"] = (shots[0], "a landscape of mountains by day")
    return {name: {"round_trip": mae(img, round_trip(vae, [img])[0]), **{str(s): mae(img, img2img(model, img, s, prompt)) for s in (0.1, 0.3, 0.5, 0.7, 0.9)}} for name, (img, prompt) in items.items()}


def img2img(model: str, sketch: np.ndarray, strength: float, prompt: str = "a red circle on a white background") -> np.ndarray:
    import subprocess
    import sys
    import tempfile

    from PIL import Image

    with tempfile.TemporaryDirectory() as tmp:
        Image.fromarray(sketch).save(f"{tmp}/s.png")
        subprocess.run([sys.executable, "-m", "scumble", "img2img", f"{tmp}/s.png", "-p", prompt, "--strength", str(strength), "--seed", "1", "--model", model, "-o", f"{tmp}/o.png", "-q"], check=True)
        return np.asarray(Image.open(f"{tmp}/o.png").convert("RGB"))


def main() -> int:
    from diffusers import AutoencoderKL

    from scumble.core.loading.sources import BUILTIN_MODELS

    parser = argparse.ArgumentParser()
    parser.add_argument("--model", default="scumble-mini")
    parser.add_argument("--count", type=int, default=8)
    parser.add_argument("--ladder", type=Path, default=None, help="also run the strength ladder and save it as a sheet here")
    parser.add_argument("--more-ladders", action="store_true", help="also ladders on a held-out sketch, a photo-like field and a photograph")
    parser.add_argument("--sheet", type=Path, default=None, help="save originals over round trips (128 px) here")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    folder = BUILTIN_MODELS.get(args.model, Path(args.model))
    vae = AutoencoderKL.from_pretrained(folder, subfolder="vae").float().eval()
    table: dict[str, dict[int, float]] = {}
    for size in (128, 256):
        pairs = {name: (images, round_trip(vae, images)) for name, images in picture_sets(size, args.count).items()}
        for name, (images, trips) in pairs.items():
            table.setdefault(name, {})[size] = float(np.mean([mae(a, b) for a, b in zip(images, trips)]))
        if args.sheet and size == 128:
            round_trip_sheet(pairs).save(args.sheet)
    result = {"model": str(folder), "round_trip_mae": table, "shape_read": shape_ceiling(vae)}
    if args.ladder:
        from PIL import Image

        sketch, outputs = ladder(args.model, 128)
        base = mae(sketch, round_trip(vae, [sketch])[0])
        result["ladder"] = {"round_trip": base, **{str(s): mae(sketch, out) for s, out in outputs.items()}}
        Image.fromarray(np.concatenate([sketch, *outputs.values()], axis=1)).save(args.ladder)
    if args.more_ladders:
        result["more_ladders"] = more_ladders(args.model, vae)
    if args.json:
        print(json.dumps(result))
        return 0
    print(f"Round trip, mean absolute error (0..255), {args.count} pictures a set, {folder.name}:")
    print(f"{'set':<24}{'128 px':>9}{'256 px':>9}")
    for name, row in table.items():
        print(f"{name:<24}{row.get(128, float('nan')):>9.1f}{row.get(256, float('nan')):>9.1f}")
    print(f"Shape reader on the 100 test prompts drawn by the world: {result['shape_read']['drawn']:.0f}% as drawn, {result['shape_read']['round_trip']:.0f}% after the round trip")
    if "ladder" in result:
        print("Strength ladder on a pencil sketch of a circle: mean change from the sketch")
        print("  " + "  ".join(f"{k}: {v:.1f}" for k, v in result["ladder"].items()))
    for name, row in result.get("more_ladders", {}).items():
        print(f"Strength ladder on a {name}: " + "  ".join(f"{k}: {v:.1f}" for k, v in row.items()))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
