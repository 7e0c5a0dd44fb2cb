"""ControlNet preprocessors without weights (core/images/control.py) and `scumble preprocess`."""

from __future__ import annotations

import json
import subprocess
import sys

import cv2
import numpy as np
import pytest
from PIL import Image

from helpers import pixels
from scumble.core.errors import UsageError
from scumble.core.images import control
from scumble.core.images.control_types import TYPES, WITH_A_MODEL


def sketch(size=(96, 96)) -> tuple[np.ndarray, tuple[int, int]]:
    """Pencil on slightly grainy paper: a circle, a 1-pixel line, a filled box, and a speck of dust (returned)."""
    rng = np.random.default_rng(0)
    w, h = size
    image = (np.full((h, w, 3), 235, np.float32) + rng.normal(0, 3, (h, w, 3))).clip(0, 255).astype(np.uint8)
    cv2.circle(image, (w // 2, h // 2), w // 4, (60, 60, 60), 2)
    cv2.line(image, (4, h - 6), (w - 6, 4), (80, 80, 80), 1)
    cv2.rectangle(image, (6, 6), (36, 30), (20, 20, 20), -1)
    speck = (h - 30, w - 12)  # (row, column): clear of every stroke
    image[speck] = 90
    return image, speck


def photo(size=(96, 64)) -> np.ndarray:
    w, h = size
    image = np.zeros((h, w, 3), np.uint8)
    image[..., 0] = np.linspace(0, 255, w)[None].astype(np.uint8)
    image[..., 2] = np.linspace(255, 0, h)[:, None].astype(np.uint8)
    cv2.circle(image, (w // 2, h // 2), h // 4, (250, 250, 40), -1)
    return image


@pytest.mark.parametrize("kind", [kind for kind in TYPES if kind not in WITH_A_MODEL])  # depth: tests/test_controlnet.py
def test_every_preprocessor_keeps_the_size_and_gives_rgb(kind):
    image = photo((37, 23))
    out = control.preprocess(kind, image)
    assert out.shape == image.shape and out.dtype == np.uint8


def test_canny_marks_the_edges_white_on_black_and_follows_its_thresholds():
    image = np.zeros((64, 64, 3), np.uint8)
    image[16:48, 16:48] = 200
    edges = control.preprocess("canny", image)[..., 0]
    assert set(np.unique(edges)) <= {0, 255}
    assert edges[16:48, 14:18].any() and edges[14:18, 16:48].any()  # the left and top sides
    assert not edges[24:40, 24:40].any() and not edges[:8, :8].any()  # inside and far outside: nothing
    faint = np.full((64, 64, 3), 100, np.uint8)
    faint[:, 32:] = 130
    assert control.canny(faint, 50, 100).any() and not control.canny(faint, 250, 255).any()


def test_scribble_gives_thick_white_strokes_on_black_without_the_dust():
    image, speck = sketch()
    out = control.preprocess("scribble", image)[..., 0]
    assert set(np.unique(out)) <= {0, 255}
    assert (out == 0).mean() > 0.6  # black ground
    h, w = out.shape
    ring = out[h // 2, w // 2 + w // 4 - 4 : w // 2 + w // 4 + 5]  # across the 2-pixel circle stroke
    assert (ring == 255).sum() >= 3  # thickened
    assert out[speck] == 0  # the speck of dust is gone


def test_lineart_draws_lines_not_areas_white_on_black():
    image, _ = sketch()
    out = control.preprocess("lineart", image)[..., 0].astype(int)
    assert out[40:60, 40:60].mean() < 10  # paper inside the circle: black
    assert out[10:27, 10:33].mean() < out[6:30, 6].mean()  # the filled box: its inside darker than its border
    h, w = out.shape
    assert out[h // 2, w // 2 + w // 4 - 3 : w // 2 + w // 4 + 4].max() > 100  # the circle's stroke is a line
    lit = out > 32
    assert lit.mean() < 0.3


def test_softedge_is_soft_and_only_where_the_picture_changes():
    out = control.preprocess("softedge", photo())[..., 0]
    assert len(np.unique(out)) > 20  # grey levels, not canny's two
    h, w = out.shape
    assert out[h // 2, w // 2 - h // 4 - 2 : w // 2 - h // 4 + 3].max() > 150  # the circle's rim
    assert out[h // 2, w // 2] == 0  # its flat inside
    assert control.preprocess("softedge", np.full((32, 32, 3), 77, np.uint8)).max() == 0  # a flat picture has no edges


def test_tile_is_a_blurrier_picture_of_the_same_colours():
    image = photo()
    rng = np.random.default_rng(1)
    image = (image.astype(int) + rng.integers(-40, 40, image.shape)).clip(0, 255).astype(np.uint8)
    out = control.preprocess("tile", image)

    def sharpness(a):
        return cv2.Laplacian(cv2.cvtColor(a, cv2.COLOR_RGB2GRAY), cv2.CV_64F).var()

    assert sharpness(out) < sharpness(image) / 4
    assert np.abs(out.astype(float).mean((0, 1)) - image.astype(float).mean((0, 1))).max() < 4


def test_shuffle_keeps_the_colours_scrambles_the_layout_and_follows_its_seed():
    image = np.zeros((64, 64, 3), np.uint8)
    image[:, :32] = (220, 30, 30)
    image[:, 32:] = (30, 30, 220)
    one, again, other = (control.preprocess("shuffle", image, control.Settings(seed=s)) for s in (1, 1, 2))
    assert np.array_equal(one, again) and not np.array_equal(one, other)
    assert not np.array_equal(one, image)
    near_an_input_colour = (np.abs(one.astype(int) - (220, 30, 30)).max(2) < 40) | (np.abs(one.astype(int) - (30, 30, 220)).max(2) < 40)
    assert near_an_input_colour.mean() > 0.8
    assert 0.1 < (one[..., 0] > 128).mean() < 0.9  # both colours survive


def test_none_is_the_image_itself():
    image = photo()
    assert np.array_equal(control.preprocess("none", image), image)


@pytest.mark.parametrize("kind,message", [("depth", "--control-type depth needs --depth-model"), ("openpose", "--control-type openpose needs --pose-model"), ("hed", "unknown type 'hed'")])
def test_preprocessors_with_weights_or_unknown_names_are_one_clear_refusal(kind, message):
    with pytest.raises(UsageError, match=message):
        control.preprocess(kind, photo())


# ---------------------------------------------------------------- scumble preprocess


def _save(path, array):
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(array).save(path)
    return path


def test_one_file_to_one_file_carries_what_made_it(run_cli, tmp_path):
    source = _save(tmp_path / "photo.png", photo())
    result = run_cli("preprocess", "canny", source, "--canny-low", 50, "--canny-high", 150, "-o", "edges.png")
    assert result.exit_code == 0, result.stderr
    out = tmp_path / "edges.png"
    assert np.array_equal(pixels(out), control.canny(photo(), 50, 150))
    record = json.loads(Image.open(out).text["scumble_preprocess"])
    assert record["type"] == "canny" and record["settings"] == {"low": 50, "high": 150} and record["source"] == str(source.resolve())


def test_a_folder_mirrors_its_names_and_a_bad_input_fails_alone(run_cli, tmp_path):
    image, _ = sketch()
    _save(tmp_path / "in" / "a.png", image)
    _save(tmp_path / "in" / "sub" / "b.jpg", image)
    (tmp_path / "in" / "broken.png").write_bytes(b"not an image")
    result = run_cli("preprocess", "scribble", tmp_path / "in", "--recursive", "-o", "out/")
    assert result.exit_code == 1
    errors = [line for line in result.stderr.splitlines() if line.startswith("error: ")]
    assert len(errors) == 1 and "broken.png" in errors[0]
    assert (tmp_path / "out" / "a.png").exists() and (tmp_path / "out" / "sub" / "b.png").exists()
    assert not (tmp_path / "out" / "broken.png").exists()


def test_nothing_is_replaced_without_overwrite(run_cli, tmp_path):
    source = _save(tmp_path / "photo.png", photo())
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "photo.png").write_bytes(b"precious")
    refused = run_cli("preprocess", "tile", source, "-o", "out/")
    assert refused.exit_code == 1 and "already exists" in refused.stderr
    assert (tmp_path / "out" / "photo.png").read_bytes() == b"precious"
    assert run_cli("preprocess", "tile", source, "-o", "out/", "--overwrite").exit_code == 0
    assert pixels(tmp_path / "out" / "photo.png").shape == photo().shape


@pytest.mark.parametrize("args,message", [(("depth",), "preprocess depth needs --depth-model"), (("canny", "--canny-low", 200, "--canny-high", 100), "--canny-low 200 must be at most"), (("canny", "-o", "x.jpg"), "preprocess writes PNG")])
def test_refusals_are_one_line_with_exit_2_and_write_nothing(run_cli, tmp_path, args, message):
    source = _save(tmp_path / "photo.png", photo())
    kind, *rest = args
    result = run_cli("preprocess", kind, source, *rest)
    assert result.exit_code == 2 and result.stderr.count("\n") == 1 and message in result.stderr, result.stderr
    assert not (tmp_path / "outputs").exists() and not (tmp_path / "x.jpg").exists()


def test_preprocess_never_imports_torch(tmp_path):
    source = _save(tmp_path / "photo.png", photo())
    code = "import sys\nfrom scumble.cli.app import main\nsys.argv = ['scumble', 'preprocess', 'softedge', sys.argv[1], '-o', sys.argv[2]]\ntry:\n    main()\nexcept SystemExit as exit:\n    print(exit.code, 'torch' in sys.modules)\n"
    done = subprocess.run([sys.executable, "-c", code, str(source), str(tmp_path / "soft.png")], capture_output=True, text=True, timeout=120)
    assert done.stdout.split() == ["0", "False"], done.stderr
