"""animate --preview: the motion alone on a test pattern, without a model, as a video and a numbered sheet."""

from __future__ import annotations

import numpy as np
from PIL import Image

from scumble.core.animation.video import probe


def _frames(path):
    import imageio_ffmpeg

    reader = imageio_ffmpeg.read_frames(str(path))
    meta = next(reader)
    w, h = meta["size"]
    return [np.frombuffer(raw, np.uint8).reshape(h, w, 3) for raw in reader]


def test_preview_moves_a_test_pattern_without_a_model(run_cli, tmp_path):
    result = run_cli("animate", "-p", "0: x", "--model", "no-such-model-folder", "--frames", 6, "-W", 64, "-H", 64, "--zoom", "0: (1.1)", "--angle", "0: (5)", "--preview", "-o", "shot.mp4")
    assert result.exit_code == 0, result.stderr
    assert probe(tmp_path / "shot.preview.mp4")["frames"] == 6
    frames = _frames(tmp_path / "shot.preview.mp4")
    assert np.abs(frames[0].astype(int) - frames[5].astype(int)).mean() > 10  # the camera moved
    sheet = Image.open(tmp_path / "shot.preview.png")
    assert sheet.size == (64 * 6, 64)
    assert not (tmp_path / "shot.mp4").exists() and not (tmp_path / "shot.frames").exists()


def test_preview_refuses_to_replace_a_preview_without_overwrite(run_cli, tmp_path):
    args = ("animate", "-p", "0: x", "--frames", 2, "-W", 32, "-H", 32, "--preview", "-o", "a.mp4")
    assert run_cli(*args).exit_code == 0
    again = run_cli(*args)
    assert again.exit_code == 1 and "a.preview.mp4: already exists" in again.stderr
    assert run_cli(*args, "--overwrite").exit_code == 0
