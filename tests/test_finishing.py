"""animate's finishing: motion-interpolated in-between frames and deflicker, in the video only, byte-identical on resume."""

from __future__ import annotations

from helpers import resumes_byte_identical
from scumble.core.animation.deforum import from_deforum
from scumble.core.animation.video import probe


def run_animate(run_cli, model, *args):
    return run_cli("animate", "-p", "0: a red circle", "--model", model, "--steps", "0: (3)", "--seed", 1, "--fps", 4, "--zoom", "0: (1.05)", *args)


def test_interpolate_multiplies_the_frames_and_keeps_the_duration(run_cli, tiny_sd, tmp_path):
    assert run_animate(run_cli, tiny_sd, "--frames", 4, "-o", "plain.mp4").exit_code == 0
    result = run_animate(run_cli, tiny_sd, "--frames", 4, "--interpolate", 3, "-o", "smooth.mp4")
    assert result.exit_code == 0, result.stderr
    info = probe(tmp_path / "smooth.mp4")
    assert (info["frames"], info["fps"]) == (12, 12.0)
    assert len(list((tmp_path / "smooth.frames").glob("0*.png"))) == 4  # the frames on disk are the ones made


def test_deflicker_changes_the_video_not_the_frames(run_cli, tiny_sd, tmp_path):
    for name, extra in (("a.mp4", []), ("b.mp4", ["--deflicker"])):
        assert run_animate(run_cli, tiny_sd, "--frames", 6, "--cadence", 1, *extra, "-o", name).exit_code == 0
    assert probe(tmp_path / "b.mp4")["frames"] == 6
    assert (tmp_path / "a.mp4").read_bytes() != (tmp_path / "b.mp4").read_bytes()
    assert all((tmp_path / "a.frames" / f.name).read_bytes() == f.read_bytes() for f in (tmp_path / "b.frames").glob("0*.png"))


def test_resume_is_byte_identical_with_interpolation_and_deflicker(run_cli, tiny_sd, tmp_path):
    args = ["--frames", 6, "--cadence", 2, "--interpolate", 2, "--deflicker"]
    assert run_animate(run_cli, tiny_sd, *args, "-o", "full.webm").exit_code == 0
    resumes_byte_identical(lambda *a: run_animate(run_cli, tiny_sd, *a), args, tmp_path, "full.webm", (3, 4, 5), ".webm")


def test_gif_takes_the_filters_too(run_cli, tiny_sd, tmp_path):
    result = run_animate(run_cli, tiny_sd, "--frames", 3, "--interpolate", 2, "--deflicker", "-o", "a.gif", "--no-keep-frames")
    assert result.exit_code == 0, result.stderr
    assert probe(tmp_path / "a.gif")["frames"] == 6


def test_finishing_needs_a_video_and_a_sane_factor(run_cli, tiny_sd, tmp_path):
    folder = run_animate(run_cli, tiny_sd, "--frames", 2, "--interpolate", 2, "-o", "frames")
    assert folder.exit_code == 2 and "finish a video" in folder.stderr and not (tmp_path / "frames").exists()
    big = run_animate(run_cli, tiny_sd, "--frames", 2, "--interpolate", 9, "-o", "a.mp4")
    assert big.exit_code == 2 and "--interpolate" in big.stderr and "at most 8" in big.stderr


def test_deforum_frame_interpolation_maps_to_interpolate():
    base = {"max_frames": 10, "animation_mode": "2D", "prompts": {"0": "a red circle"}}
    rife = from_deforum(base | {"frame_interpolation_engine": "RIFE v4.6", "frame_interpolation_x_amount": 3})
    assert rife.values["interpolate"] == 3
    assert any("RIFE v4.6" in w and "minterpolate" in w for w in rife.warnings)
    assert "interpolate" not in from_deforum(base | {"frame_interpolation_engine": "None", "frame_interpolation_x_amount": 3}).values


# ---------------------------------------------------------------- in-betweens from a network (FILM's TorchScript call)


def crossfade_model(path, scale: float = 1.0):
    """A TorchScript network with FILM's call, model(a, b, t): here a cross-fade (times `scale`, to make a wrong one)."""
    import torch

    class CrossFade(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.gain = torch.nn.Parameter(torch.tensor(scale))

        def forward(self, a: torch.Tensor, b: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
            assert a.shape[-1] % 64 == 0 and a.shape[-2] % 64 == 0  # padded as FILM's pyramid needs
            w = t.reshape(-1, 1, 1, 1)
            return (a * (1 - w) + b * w) * self.gain

    torch.jit.script(CrossFade()).save(str(path))
    return path


def frames_of(path):
    import imageio_ffmpeg
    import numpy as np

    reader = imageio_ffmpeg.read_frames(str(path))
    meta = next(reader)
    w, h = meta["size"]
    return [luma(np.frombuffer(f, np.uint8).reshape(h, w, 3)) for f in reader]


def luma(rgb):
    """Brightness alone: H.264 keeps it (lossless at --crf 0) while yuv420p halves the colour's resolution."""
    return rgb.astype(float) @ [0.299, 0.587, 0.114]


def test_a_film_network_makes_the_in_betweens_and_resume_stays_byte_identical(run_cli, tiny_sd, tmp_path):
    import numpy as np

    crossfade_model(tmp_path / "film.pt")
    args = ["--frames", 4, "--interpolate", 3, "--interpolate-model", "film.pt", "--allow-pickle", "--crf", 0]
    result = run_animate(run_cli, tiny_sd, *args, "-o", "film.mp4")
    assert result.exit_code == 0, result.stderr
    info = probe(tmp_path / "film.mp4")
    assert (info["frames"], info["fps"]) == (12, 12.0)
    video = frames_of(tmp_path / "film.mp4")
    from PIL import Image

    made = [luma(np.asarray(Image.open(p).convert("RGB"))) for p in sorted((tmp_path / "film.frames").glob("0*.png"))]
    assert np.abs(video[3] - made[1]).mean() < 2  # every third frame is a made one
    expected = (2 * made[0] + made[1]) / 3  # a third of the way from frame 0 to frame 1: the network's in-between
    assert np.abs(video[1] - expected).mean() < 2 and np.abs(video[1] - made[0]).mean() > 2
    assert np.abs(video[-1] - made[-1]).mean() < 2  # the last frame is held for its in-betweens
    resumes_byte_identical(lambda *a: run_animate(run_cli, tiny_sd, *a), args, tmp_path, "film.mp4", (2, 3))


def test_an_interpolation_network_that_cannot_be_used_is_one_line_before_any_frame(run_cli, tiny_sd, tmp_path):
    crossfade_model(tmp_path / "film.pt")
    (tmp_path / "junk.pt").write_bytes(b"not torchscript")
    import torch

    class Wrong(torch.nn.Module):
        def forward(self, a: torch.Tensor, b: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
            return a[:, :1]

    torch.jit.script(Wrong()).save(str(tmp_path / "wrong.pt"))
    cases = [
        (["--interpolate", 2, "--interpolate-model", "film.pt"], 2, "pass --allow-pickle"),
        (["--interpolate-model", "film.pt", "--allow-pickle"], 2, "give --interpolate N (2 or more)"),
        (["--interpolate", 2, "--interpolate-model", "nowhere.pt", "--allow-pickle"], 2, "no such file"),
        (["--interpolate", 2, "--interpolate-model", "junk.pt", "--allow-pickle"], 1, "not a TorchScript file"),
        (["--interpolate", 2, "--interpolate-model", "wrong.pt", "--allow-pickle"], 1, "it must give one frame of the same shape"),
    ]
    for extra, code, message in cases:
        result = run_animate(run_cli, tiny_sd, "--frames", 2, *extra, "-o", "v.mp4")
        lines = result.stderr.strip().splitlines()
        assert result.exit_code == code and len(lines) == 1 and message in lines[0], result.stderr
        assert not (tmp_path / "v.mp4").exists() and not (tmp_path / "v.frames").exists()
