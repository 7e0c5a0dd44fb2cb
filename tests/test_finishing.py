"""animate's finishing: motion-interpolated in-between frames and deflicker, in the video only, byte-identical on resume."""

from __future__ import annotations

import pytest
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


# ---------------------------------------------------------------- in-betweens from a network (FILM TorchScript, RIFE flownet)


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
        (["--interpolate", 2, "--interpolate-model", "junk.pt", "--allow-pickle"], 1, "neither a TorchScript file"),
        (["--interpolate", 2, "--interpolate-model", "wrong.pt", "--allow-pickle"], 1, "it must give one frame of the same shape"),
    ]
    for extra, code, message in cases:
        result = run_animate(run_cli, tiny_sd, "--frames", 2, *extra, "-o", "v.mp4")
        lines = result.stderr.strip().splitlines()
        assert result.exit_code == code and len(lines) == 1 and message in lines[0], result.stderr
        assert not (tmp_path / "v.mp4").exists() and not (tmp_path / "v.frames").exists()


def test_a_rife_flownet_makes_the_in_betweens_and_resume_stays_byte_identical(run_cli, tiny_sd, tmp_path):
    import numpy as np
    import torch
    from helpers import rife_flownet
    from PIL import Image

    torch.save(rife_flownet("head"), tmp_path / "flownet.pkl")  # zero weights: no motion, an even blend of the pair
    args = ["--frames", 3, "--interpolate", 2, "--interpolate-model", "flownet.pkl", "--allow-pickle", "--crf", 0]
    result = run_animate(run_cli, tiny_sd, *args, "-o", "rife.mp4")
    assert result.exit_code == 0, result.stderr
    assert probe(tmp_path / "rife.mp4")["frames"] == 6
    video = frames_of(tmp_path / "rife.mp4")
    made = [luma(np.asarray(Image.open(p).convert("RGB"))) for p in sorted((tmp_path / "rife.frames").glob("0*.png"))]
    assert np.abs(video[1] - (made[0] + made[1]) / 2).mean() < 2 and np.abs(video[1] - made[0]).mean() > 2
    resumes_byte_identical(lambda *a: run_animate(run_cli, tiny_sd, *a), args, tmp_path, "rife.mp4", (1, 2))


@pytest.mark.parametrize("encoder,hands_on", [("none", 0), ("pair", 0), ("head", 0), ("head", 8)])
def test_rife_follows_its_flow_and_its_mask_in_every_4x_layout(tmp_path, encoder, hands_on):
    """The last block's mask picks a frame; the first block's flow (in pixels, at its 1/8 scale) moves it."""
    import numpy as np
    from helpers import rife_flownet
    from safetensors.torch import save_file

    from scumble.core.animation.interpolation import FrameInterpolator

    state = rife_flownet(encoder, hands_on=hands_on)
    last = max(int(k.split(".")[1][5:]) for k in state if k.startswith("module.block"))
    state[f"module.block{last}.lastconv.0.bias"][16:20] = 30.0  # channel 4 after the pixel shuffle: the mask's logit, all on frame a
    state["module.block0.lastconv.0.bias"][0:4] = 4 / 8  # channel 0: frame a's x flow, 4 pixels once scaled by 8
    save_file({k.removeprefix("module."): v.contiguous() for k, v in state.items()}, str(tmp_path / "flownet.safetensors"))
    network = FrameInterpolator(str(tmp_path / "flownet.safetensors"), allow_pickle=False)  # safetensors: no pickle
    a = np.zeros((64, 96, 3), np.uint8)
    a[:, 40:, 0] = 255  # a vertical edge
    b = np.full_like(a, 128)
    (middle,) = network.between(a, b, 1)
    expected = np.zeros_like(a)
    expected[:, 36:, 0] = 255  # a backward warp by +4 reads 4 pixels to the right: the edge comes 4 closer
    assert np.abs(middle.astype(int) - expected)[:, :-4].max() <= 1  # the last 4 columns read the black padding, as in RIFE's own runner


def test_a_rife_file_that_is_not_4_5_or_later_is_one_line(run_cli, tiny_sd, tmp_path):
    import torch
    from helpers import rife_flownet

    old = {k.replace(".conv.", ".0."): v for k, v in rife_flownet("none").items() if not k.endswith(".beta")}  # 4.0-4.4: plain conv blocks
    torch.save(old, tmp_path / "old.pkl")
    torch.save({"conv.weight": torch.zeros(3, 3, 3, 3)}, tmp_path / "other.pkl")
    wide = rife_flownet("head")
    wide["module.block1.conv0.0.0.weight"] = torch.zeros(8, 50, 3, 3)
    torch.save(wide, tmp_path / "wide.pkl")
    (tmp_path / "junk.safetensors").write_bytes(b"junk")

    class Code:
        def __reduce__(self):
            return (print, ("pickled code ran",))

    torch.save({"x": Code()}, tmp_path / "code.pkl")
    cases = [
        (["--interpolate-model", "old.pkl", "--allow-pickle"], "older than 4.5"),
        (["--interpolate-model", "other.pkl", "--allow-pickle"], "not a RIFE 4.x flownet"),
        (["--interpolate-model", "wide.pkl", "--allow-pickle"], "block1 takes 50 channels"),
        (["--interpolate-model", "junk.safetensors"], "not a readable .safetensors file"),
        (["--interpolate-model", "code.pkl", "--allow-pickle"], "nor a weights-only RIFE flownet"),
    ]
    for extra, message in cases:
        result = run_animate(run_cli, tiny_sd, "--frames", 2, "--interpolate", 2, *extra, "-o", "v.mp4")
        lines = result.stderr.strip().splitlines()
        assert result.exit_code == 1 and len(lines) == 1 and message in lines[0], result.stderr
        assert "pickled code ran" not in result.stdout
        assert not (tmp_path / "v.mp4").exists() and not (tmp_path / "v.frames").exists()
