"""RAFT optical flow through torchvision: random weights saved where torchvision keeps its own, never downloaded.

torchvision does not load beside the CPU torch 2.13 of the main test environment; there, only the
refusal runs. `.ci/run` runs the rest in the torchvision environment of the README.
"""

from __future__ import annotations

import numpy as np
import pytest

from helpers import pixels, resumes_byte_identical
from scumble.core.images import flow, raft


def torchvision_loads() -> bool:
    try:
        import torchvision.models.optical_flow  # noqa: F401
    except Exception:  # noqa: BLE001 - ImportError, or torchvision failing against this torch
        return False
    return True


@pytest.fixture
def raft_weights(tmp_path, monkeypatch):
    """Random RAFT weights in a torch cache of the test's own (TORCH_HOME), under the name torchvision would fetch."""
    import torch
    from torchvision.models.optical_flow import raft_large

    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch-home"))
    raft._network.cache_clear()
    torch.manual_seed(0)
    path = raft.weights_path()
    path.parent.mkdir(parents=True)
    torch.save(raft_large(weights=None).state_dict(), path)
    yield path
    raft._network.cache_clear()


def texture(height=44, width=60, seed=0):
    import cv2

    noise = np.random.default_rng(seed).integers(0, 255, (height // 4 + 1, width // 4 + 1, 3), dtype=np.uint8)
    return cv2.resize(noise, ((width // 4 + 1) * 4, (height // 4 + 1) * 4), interpolation=cv2.INTER_CUBIC)[:height, :width]


@pytest.mark.torchvision
@pytest.mark.skipif(not torchvision_loads(), reason="torchvision does not load here; see the README's torchvision test command")
def test_raft_gives_a_flow_per_pixel_at_any_size_and_the_same_one_twice(raft_weights):
    a, b = texture(), np.roll(texture(), 3, axis=1)
    first = flow.optical_flow(a, b, "raft")
    assert first.shape == (44, 60, 2) and first.dtype == np.float32 and np.isfinite(first).all()
    assert np.array_equal(first, flow.optical_flow(a, b, "raft"))  # what a resumed run relies on
    assert not np.array_equal(first, flow.optical_flow(b, a, "raft"))


def _animate(run_cli, model, *args):
    return run_cli("animate", "-p", "0: a red circle", "--model", model, "--steps", "0: (3)", "--seed", 1, "--frames", 5, "--cadence", 2, "--zoom", "0: (1.05)", "--keep-frames", *args)


@pytest.mark.torchvision
@pytest.mark.skipif(not torchvision_loads(), reason="torchvision does not load here; see the README's torchvision test command")
def test_raft_cadence_renders_differs_from_dis_and_resumes_byte_identical(run_cli, tiny_sd, raft_weights, tmp_path):
    assert _animate(run_cli, tiny_sd, "--optical-flow-cadence", "raft", "-o", "raft.mp4").exit_code == 0
    assert _animate(run_cli, tiny_sd, "--optical-flow-cadence", "dis", "-o", "dis.mp4").exit_code == 0
    assert not np.array_equal(pixels(tmp_path / "raft.frames" / "000000001.png"), pixels(tmp_path / "dis.frames" / "000000001.png"))
    resumes_byte_identical(lambda *a: _animate(run_cli, tiny_sd, *a), ("--optical-flow-cadence", "raft"), tmp_path, "raft.mp4", (3, 4))


@pytest.mark.torchvision
@pytest.mark.skipif(not torchvision_loads(), reason="torchvision does not load here; see the README's torchvision test command")
def test_a_deforum_files_raft_is_raft_where_its_weights_are(raft_weights):
    from scumble.core.animation import deforum

    data = {"max_frames": 10, "animation_mode": "2D", "diffusion_cadence": 2, "optical_flow_cadence": "RAFT", "hybrid_motion": "Optical Flow", "video_init_path": "in.mp4"}
    imported = deforum.from_deforum(data)
    assert imported.values["optical_flow_cadence"] == "raft" and imported.values["hybrid_flow_method"] == "raft"
    assert not any("RAFT" in w for w in imported.warnings)


def test_raft_that_cannot_run_here_is_one_line_before_any_frame(run_cli, tiny_sd, tmp_path, monkeypatch):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "empty-torch-home"))  # no weights, whatever this machine's cache holds
    raft._network.cache_clear()
    result = _animate(run_cli, tiny_sd, "--optical-flow-cadence", "raft", "-o", "v.mp4")
    lines = result.stderr.strip().splitlines()
    expected = "RAFT's weights are not in torch's cache" if torchvision_loads() else "RAFT needs torchvision, which does not load here"
    assert result.exit_code == 1 and len(lines) == 1 and expected in lines[0], result.stderr
    assert not (tmp_path / "v.mp4").exists() and not (tmp_path / "v.frames").exists()
