"""Deforum's 3D camera, depth models, optical-flow cadence and hybrid video: the maths, then through the CLI."""

from __future__ import annotations

import json

import cv2
import numpy as np
import pytest
from helpers import build_depth_model
from PIL import Image
from scumble.core.animation import deforum, preview
from scumble.core.animation.frames import plan_frames
from scumble.core.animation.moves import Mover
from scumble.core.errors import ModelError
from scumble.core.images import camera, flow, motion
from scumble.core.request.build import FLAGS, Layer, animation_request
from scumble.core.images import raft


def settings_of(**values):
    return animation_request([Layer(FLAGS, values)])[1]


def textured(width: int, height: int, seed: int = 0, cell: int = 8) -> np.ndarray:
    """Smooth random texture: detailed enough for optical flow and feature matching, smooth enough not to alias at a few pixels' motion."""
    noise = np.random.default_rng(seed).integers(0, 255, (height // cell + 1, width // cell + 1, 3), dtype=np.uint8)
    return cv2.resize(noise, ((width // cell + 1) * cell, (height // cell + 1) * cell), interpolation=cv2.INTER_CUBIC)[:height, :width]


@pytest.fixture(scope="module")
def depth_model(tmp_path_factory):
    return build_depth_model(tmp_path_factory.mktemp("tiny-depth"))


# ---------------------------------------------------------------- the 3D camera


@pytest.mark.parametrize("width,height", [(64, 64), (96, 64), (48, 80)])
@pytest.mark.parametrize("translation_z,fov", [(1.75, 70), (10, 40), (-8, 90)])
def test_flat_depth_translation_z_is_the_2d_zoom_about_the_centre(width, height, translation_z, fov):
    """The equivalence the camera module documents: zoom 1/k, k = 1 - s*d/(1-d), about the centre of the pixel grid."""
    frame = preview.test_pattern(width, height)
    moved, depth = camera.warp(frame, camera.flat(width, height), camera.Move(translation_z=translation_z, fov=fov))
    zoom = camera.zoom_for_translation_z(translation_z, fov)
    s, d = 1 / np.tan(np.radians(fov) / 2), translation_z / 200
    assert zoom == pytest.approx((1 - d) / (1 - (1 + s) * d))
    matrix = motion.motion_matrix(width, height, zoom, 0, 0, 0, (width - 1) / (2 * width), (height - 1) / (2 * height))
    zoomed = motion.warp(frame, matrix)
    difference = np.abs(moved.astype(int) - zoomed.astype(int))
    assert difference.mean() < 0.05 and difference.max() <= 8  # the same source positions, to OpenCV's 1/32-pixel resampling
    assert np.array_equal(depth, camera.flat(width, height))


def test_forward_zooms_in_and_deforum_default_speed():
    assert camera.zoom_for_translation_z(1.75, 70) == pytest.approx(1.01277, abs=1e-5)  # Deforum's default translation_z and fov
    assert camera.zoom_for_translation_z(-5, 70) < 1 < camera.zoom_for_translation_z(5, 70)


def test_a_still_camera_changes_nothing():
    frame = textured(40, 32)
    moved, _ = camera.warp(frame, camera.flat(40, 32), camera.Move(fov=50))
    assert np.array_equal(moved, frame)


def test_translation_moves_the_picture_as_deforum_does():
    """Positive translation_x takes the camera right (the picture goes left); positive translation_y takes the picture down."""
    depth = camera.flat(64, 64)
    map_x, map_y = camera.sample_maps(depth, camera.Move(translation_x=10, fov=90))
    assert np.allclose(map_x - np.arange(64)[None, :], 10 / 200 * 32) and np.allclose(map_y, np.arange(64)[:, None])
    map_x, map_y = camera.sample_maps(depth, camera.Move(translation_y=10, fov=90))
    assert np.allclose(map_y - np.arange(64)[:, None], -10 / 200 * 32)


def test_near_things_move_more_than_far_ones():
    depth = np.where(np.arange(64)[None, :] < 32, camera.NEAREST, camera.FARTHEST).repeat(64, axis=0).astype(np.float32)
    map_x, _ = camera.sample_maps(depth, camera.Move(translation_x=20, fov=70))
    shift = map_x - np.arange(64)[None, :]
    assert shift[:, :32].mean() == pytest.approx(2 * shift[:, 32:].mean(), rel=1e-4)  # parallax: shift goes as 1/depth


def test_rotation_is_deforum_xyz_order():
    x, y, z = 10, 20, 30
    r = camera.rotation(x, y, z)
    assert np.allclose(r @ r.T, np.eye(3))
    rx, ry, rz = camera.rotation(x, 0, 0), camera.rotation(0, y, 0), camera.rotation(0, 0, z)
    assert np.allclose(r, rx @ ry @ rz)


def test_depth_predictions_become_deforums_depth():
    near_big = np.array([[10.0, 5.0], [1.0, 0.5]])  # inverse depth: larger is nearer
    depth = camera.depth_from_prediction(near_big, metric=False)
    assert depth[0, 0] == pytest.approx(camera.NEAREST, abs=0.3) and depth.argmax() == 3 and depth.max() <= camera.FARTHEST
    metric = camera.depth_from_prediction(near_big, metric=True)
    assert metric.argmax() == 0 and metric.min() >= camera.NEAREST
    for unusable in (np.full((2, 2), 3.0), np.array([[1.0, np.nan], [2.0, 3.0]])):
        assert np.array_equal(camera.depth_from_prediction(unusable, metric=False), camera.flat(2, 2))
    image = camera.depth_image(np.array([[1.0, 2.0]], np.float32))
    assert image.dtype == np.uint16 and image.tolist() == [[65535, 0]]


def test_a_tiny_depth_anything_model_gives_depth_at_the_frame_size(depth_model):
    from scumble.core.loading.depth import DepthEstimator

    estimator = DepthEstimator(str(depth_model))
    seen = []
    estimator.model.register_forward_pre_hook(lambda module, args, kwargs: seen.append(tuple(kwargs["pixel_values"].shape[-2:])), with_kwargs=True)
    raw = estimator.raw(textured(48, 32))
    assert raw.shape == (32, 48) and np.isfinite(raw).all() and not estimator.metric
    assert seen == [(35, 49)]  # run at the frame's size, to the multiple of 7 its patches need (its processor's own size is 28x28)
    assert np.array_equal(raw, estimator.raw(textured(48, 32)))  # the same frame gives the same depth: resume relies on it


@pytest.mark.parametrize("name,message", [("nowhere/depth-model", "not in the local"), ("no-such-folder", "no such folder")])
def test_a_missing_depth_model_is_one_clear_error(name, message, tmp_path, monkeypatch):
    from scumble.core.loading.depth import DepthEstimator

    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    with pytest.raises(ModelError) as info:
        DepthEstimator(name)
    text = str(info.value)
    assert "\n" not in text and text.startswith(f"--depth-model {name}: ") and (message in text or "local Hugging Face cache" in text)


# ---------------------------------------------------------------- optical flow


def test_an_in_between_frame_lies_along_the_flow():
    scene = textured(96, 96, seed=3)
    first, second = scene[8:72, 4:68], scene[8:72, 12:76]  # the camera pans 8 pixels right
    forward, backward = flow.optical_flow(first, second), flow.optical_flow(second, first)
    middle = flow.in_between(first, second, 0.5, forward, backward)
    truth = scene[8:72, 8:72]
    inner = (slice(8, -8), slice(8, -8))
    moved = np.abs(middle[inner].astype(int) - truth[inner].astype(int)).mean()
    faded = np.abs(flow.blend(first, second, 0.5)[inner].astype(int) - truth[inner].astype(int)).mean()
    assert moved < faded / 3


@pytest.mark.parametrize("method", ["dis", "farneback"])
def test_flow_and_warp_agree_on_direction(method):
    scene = textured(80, 80, seed=1)
    a, b = scene[10:60, 10:60], scene[10:60, 14:64]  # b is a moved 4 pixels left
    f = flow.optical_flow(a, b, method)
    assert np.median(f[..., 0]) == pytest.approx(-4, abs=0.5) and abs(np.median(f[..., 1])) < 0.5
    back = flow.optical_flow(b, a, method)
    assert np.abs(flow.warp(a, back)[8:-8, 8:-8].astype(int) - b[8:-8, 8:-8].astype(int)).mean() < 6


@pytest.mark.parametrize("kind", ["affine", "perspective"])
def test_camera_matrix_recovers_a_known_motion(kind):
    a = textured(128, 128, seed=2)
    truth = motion.motion_matrix(128, 128, 1.04, 3, 2, -1)
    b = motion.warp(a, truth)
    found = flow.camera_matrix(a, b, kind)
    corners = np.array([[20, 20, 1], [108, 20, 1], [108, 108, 1], [20, 108, 1]], float).T
    project = lambda m: (m @ corners)[:2] / (m @ corners)[2]
    assert np.abs(project(found) - project(truth)).max() < 1.5


def test_camera_matrix_of_a_featureless_pair_falls_back_to_the_flow_or_stays_still():
    flat_frame = np.full((24, 24, 3), 90, np.uint8)
    assert np.allclose(flow.camera_matrix(flat_frame, flat_frame, "affine"), np.eye(3), atol=1e-6)


# ---------------------------------------------------------------- hybrid video


def test_hybrid_optical_flow_moves_the_generated_frame_with_the_video():
    scene = textured(120, 80, seed=4)
    video = [scene[8:72, 20 + 3 * i : 84 + 3 * i] for i in range(3)]  # the video pans 3 pixels a frame
    s = settings_of(frames=3, video_input="v.mp4", hybrid_motion="optical-flow", zoom="0: (1)", width=64, height=64)
    mover = Mover(s, plan_frames(s), lambda i: video[i])
    generated = textured(64, 64, seed=9)  # a "generated" picture unrelated to the video
    moved = mover.span(generated, 0, 1)[0]
    inner = (slice(6, -6), slice(6, -6))
    assert np.abs(moved[:, :-3][inner].astype(int) - generated[:, 3:][inner].astype(int)).mean() < 4
    blended = settings_of(frames=3, video_input="v.mp4", hybrid_composite="normal", hybrid_comp_alpha="0: (1)", zoom="0: (1)")
    assert np.array_equal(Mover(blended, plan_frames(blended), lambda i: video[i]).span(generated, 0, 1)[0], video[1])


def test_latent_noise_moves_by_whole_cells_and_is_fresh_where_it_came_from_outside():
    rng = np.random.default_rng(0)
    noise, fresh = rng.standard_normal((4, 6, 8)).astype(np.float32), rng.standard_normal((4, 6, 8)).astype(np.float32)
    still = flow.flow_positions(np.zeros((48, 64, 2), np.float32))
    assert np.array_equal(flow.warp_noise(noise, [still], fresh), noise)
    right = flow.flow_positions(np.full((48, 64, 2), (-16.0, 0.0), np.float32))  # each pixel came from 16 to its left: two cells
    moved = flow.warp_noise(noise, [right], fresh)
    assert np.array_equal(moved[:, :, 2:], noise[:, :, :-2]) and np.array_equal(moved[:, :, :2], fresh[:, :, :2])
    zoom = flow.matrix_positions(motion.motion_matrix(64, 48, 2.0, 0, 0, 0, 0.5, 0.5), 64, 48)
    zoomed = flow.warp_noise(noise, [zoom], fresh)
    assert set(np.unique(zoomed)) <= set(np.unique(noise)) and zoomed.dtype == np.float32  # cells moved, never mixed
    twice = flow.warp_noise(noise, [right, right], fresh)  # traced back through two frames: fresh once, not copied along
    assert np.array_equal(twice[:, :, 4:], noise[:, :, :-4]) and np.array_equal(twice[:, :, :4], fresh[:, :, :4])


@pytest.mark.parametrize("motion", ["affine", "optical-flow"])
def test_warped_noise_follows_the_video_and_fresh_noise_is_the_seeds(tiny_sd, motion):
    from scumble.core.animation.animator import Animator
    from scumble.core.loading.device import make_runtime
    from scumble.core.sampling.engine import Engine

    scene = textured(160, 64, seed=4)
    video = [np.ascontiguousarray(scene[:, 4 * i : 4 * i + 64]) for i in range(5)]  # the camera pans right 4 pixels a frame
    s = settings_of(frames=5, video_input="v.mp4", hybrid_motion=motion, zoom="0: (1)", width=64, height=64, cadence=2)
    animator = Animator(Engine.load(str(tiny_sd), make_runtime("cpu", "fp32")), s, plan_frames(s))
    animator.mover.video = lambda i: video[i]
    first = animator.key_noise(None, 0, 0)
    assert first.shape[0] == 4 and np.array_equal(first, animator.fresh_noise(animator.plans[0]))
    cells = 16 * first.shape[2] // 64  # by frame 4 the picture has moved 16 pixels left
    carried = animator.key_noise(first, 0, 4)
    fresh = animator.fresh_noise(animator.plans[4])
    if motion == "affine":  # a fitted translation: exact
        assert np.array_equal(carried[:, :, :-cells], first[:, :, cells:]) and np.array_equal(carried[:, :, -cells:], fresh[:, :, -cells:])
    else:  # a measured flow, within a pixel or so of the truth, and these cells are 2 pixels wide: some take a neighbour's noise
        inner = (slice(None), slice(2, -2), slice(1, -cells - 1))
        near = [carried[inner] == np.roll(first, -cells - d, axis=2)[inner] for d in (-1, 0, 1)]
        assert np.mean(near[1]) > 0.5 and np.mean(near[0] | near[1] | near[2]) > 0.9
        assert np.array_equal(carried[:, 2:-2, -cells // 2 :], fresh[:, 2:-2, -cells // 2 :])
    off = settings_of(frames=5, video_input="v.mp4", hybrid_motion=motion, hybrid_noise="fresh", width=64, height=64)
    assert Animator(animator.engine, off, plan_frames(off)).key_noise(first, 0, 4) is None
    assert "hybrid_noise" in s.identity() and "hybrid_noise" not in off.identity()


def test_img2img_starts_from_given_noise_and_refuses_noise_of_another_shape(tiny_sd):
    from PIL import Image

    from scumble.core.loading.device import make_runtime
    from scumble.core.sampling.engine import Engine, ImageJob, Sampling
    from scumble.core.sampling.strength import plan

    engine = Engine.load(str(tiny_sd), make_runtime("cpu", "fp32"))
    picture, job, sampling = [Image.fromarray(textured(64, 64, seed=2))], [ImageJob("a red circle", "", 5, 0)], Sampling(steps=4, width=64, height=64)
    denoise = plan(4, 0.6, exact=False)
    shape = (1, *engine.latent_shape(64, 64))
    a, b = (np.random.default_rng(seed).standard_normal(shape).astype(np.float32) for seed in (0, 1))
    made = {name: np.asarray(engine.img2img(job, picture, sampling, denoise, noise=noise)[0]) for name, noise in (("a", a), ("a again", a), ("b", b), ("seed", None))}
    assert np.array_equal(made["a"], made["a again"])
    assert not np.array_equal(made["a"], made["b"]) and not np.array_equal(made["a"], made["seed"])
    with pytest.raises(ValueError, match="given noise of shape"):
        engine.img2img(job, picture, sampling, denoise, noise=a[:, :, :2])
    assert "add_noise" not in vars(engine.pipeline("img2img").scheduler)  # the scheduler's own again after each call


def test_hybrid_settings_identity_and_plan_columns():
    plain = settings_of(frames=2)
    assert not {"animation_mode", "translation_z", "optical_flow_cadence", "hybrid_motion", "hybrid_comp_alpha", "depth_model"} & set(plain.identity())
    hybrid = settings_of(frames=2, video_input="v.mp4", hybrid_motion="affine", hybrid_composite="normal", optical_flow_cadence="dis", animation_mode="3D")
    assert {"animation_mode", "translation_z", "fov", "optical_flow_cadence", "hybrid_motion", "hybrid_comp_alpha"} <= set(hybrid.identity())
    plans = plan_frames(hybrid)
    assert {"translation_z", "rotation_3d_y", "fov", "near", "far", "hybrid_comp_alpha"} <= set(plans[0].values) and "zoom" not in plans[0].values


# ---------------------------------------------------------------- through the CLI


def run_animate(run_cli, model, *args):
    return run_cli("animate", "-p", "0: a red circle", "--model", model, "--steps", "0: (2)", "--seed", 3, *args)


def one_error_line(result) -> str:
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: ") and "Traceback" not in result.stderr, result.stderr
    return lines[0]


@pytest.mark.parametrize("args,message", [
    (["--save-depth"], "--save-depth goes with --animation-mode 3D"),
    (["--depth-model", "x"], "--depth-model goes with --animation-mode 3D"),
    (["--animation-mode", "3D", "--save-depth"], "without one the depth is flat"),
    (["--hybrid-motion", "affine"], "--hybrid-motion affine moves or blends by the video of --video-input"),
    (["--animation-mode", "4D"], "unknown mode '4D'"),
    (["--fov", "0: (180)"], "fov"),
])
def test_motion_options_that_cannot_work_are_refused(run_cli, args, message):
    result = run_cli("animate", "-p", "0: x", "--frames", 2, "--plan", *args)
    assert result.exit_code == 2 and message in one_error_line(result)


def test_a_missing_depth_model_fails_before_anything_is_written(run_cli, tiny_sd, tmp_path):
    result = run_animate(run_cli, tiny_sd, "--frames", 2, "--animation-mode", "3D", "--depth-model", "no/such-depth-model", "-o", "x.mp4")
    assert result.exit_code == 1 and "--depth-model no/such-depth-model: " in one_error_line(result)
    assert not (tmp_path / "x.mp4").exists() and not (tmp_path / "x.frames").exists()


def test_3d_with_a_depth_model_saves_16_bit_depth_maps(run_cli, tiny_sd, depth_model, tmp_path):
    args = ["--frames", 4, "--cadence", 2, "--animation-mode", "3D", "--translation-z", "0: (20)", "--rotation-3d-y", "0: (3)"]
    result = run_animate(run_cli, tiny_sd, *args, "--depth-model", depth_model, "--save-depth", "-o", "d.mp4", "--no-keep-frames")
    assert result.exit_code == 0, result.stderr
    folder = tmp_path / "d.frames"
    assert sorted(p.name for p in folder.iterdir()) == ["depth_000000000.png", "depth_000000002.png"]  # each key frame moved on, kept without the frames
    with Image.open(folder / "depth_000000000.png") as image:
        assert image.mode.startswith("I;16") and image.size == (32, 32)
    record = json.loads(run_animate(run_cli, tiny_sd, *args, "--plan", "--json").stdout)
    assert record[1]["translation_z"] == 20.0 and record[1]["rotation_3d_y"] == 3.0 and "zoom" not in record[1]


def test_3d_preview_works_without_any_model(run_cli, tmp_path):
    result = run_cli("animate", "-p", "0: x", "--model", "no-such-model", "--frames", 4, "-W", 64, "-H", 48, "--animation-mode", "3D",
                     "--translation-z", "0: (30)", "--rotation-3d-z", "0: (4)", "--preview", "-o", "p.mp4")
    assert result.exit_code == 0, result.stderr
    assert (tmp_path / "p.preview.mp4").is_file() and Image.open(tmp_path / "p.preview.png").size == (64 * 4, 48)


# ---------------------------------------------------------------- Deforum files


def test_a_deforum_3d_hybrid_file_maps_to_our_options():
    data = {"max_frames": 10, "prompts": {"0": "a cave"}, "animation_mode": "3D", "diffusion_cadence": 3, "translation_z": "0: (2.5)", "rotation_3d_y": "0: (1)",
            "fov_schedule": "0: (50)", "near_schedule": "0: (100)", "far_schedule": "0: (900)", "padding_mode": "zeros", "border": "wrap",
            "optical_flow_cadence": "Farneback", "hybrid_motion": "Perspective", "hybrid_composite": "Before Motion",
            "hybrid_comp_alpha_schedule": "0: (0.3)", "hybrid_flow_method": "DIS Medium", "video_init_path": "in.mp4", "use_depth_warping": False}
    imported = deforum.from_deforum(data)
    values = imported.values
    assert (values["animation_mode"], values["border"], values["fov"], values["near"], values["far"]) == ("3D", "zeros", "0: (50)", "0: (100)", "0: (900)")
    assert (values["optical_flow_cadence"], values["hybrid_motion"], values["hybrid_composite"], values["video_input"]) == ("farneback", "perspective", "before-motion", "in.mp4")
    assert values["hybrid_comp_alpha"] == "0: (0.3)" and imported.warnings == []  # nothing it asks for is left out
    s = animation_request([Layer("deforum", values)])[1]
    assert s.hybrid and s.animation_mode == "3D"


@pytest.mark.skipif(raft.unavailable() is None, reason="RAFT runs here, so a file's RAFT is not replaced by DIS")
def test_deforum_warnings_name_only_what_is_not_rendered():
    data = {"max_frames": 10, "animation_mode": "3D", "diffusion_cadence": 2, "depth_algorithm": "Midas-3-Hybrid", "save_depth_maps": True,
            "aspect_ratio_schedule": "0: (1.5)", "optical_flow_cadence": "RAFT", "cadence_flow_factor_schedule": "0: (2)",
            "hybrid_motion": "Optical Flow", "video_init_path": "in.mp4", "hybrid_comp_mask_type": "Depth"}
    imported = deforum.from_deforum(data)
    assert imported.warnings == [
        "3D: depth_algorithm 'Midas-3-Hybrid' is not run: the camera moves through flat depth unless --depth-model names a transformers depth model (e.g. Intel/dpt-hybrid-midas); save_depth_maps saves nothing without one; ignored: aspect_ratio_schedule '0: (1.5)'",
        f"hybrid video: hybrid_flow_method 'RAFT' runs as DIS ({raft.unavailable()}); ignored: hybrid_comp_mask_type 'Depth'",
        f"optical flow: optical_flow_cadence 'RAFT' runs as DIS ({raft.unavailable()}); cadence_flow_factor_schedule '0: (2)' ignored",
    ]
    assert imported.values["optical_flow_cadence"] == "dis" and imported.values["hybrid_flow_method"] == "dis"
    no_video = deforum.from_deforum({"max_frames": 3, "animation_mode": "2D", "hybrid_composite": "Normal"})
    assert no_video.warnings == ["hybrid video: hybrid_composite 'Normal' ignored (no video_init_path)"] and "video_input" not in no_video.values


def source_video(path, frames: int = 8, size: int = 32):
    """A textured scene panning 2 pixels a frame: motion for hybrid video to follow."""
    from scumble.core.animation.video import VideoWriter

    scene = textured(size + 2 * frames, size, seed=5)
    with VideoWriter(path, fps=10, crf=0) as video:
        for i in range(frames):
            video.add(np.ascontiguousarray(scene[:, 2 * i : 2 * i + size]))
    return path


@pytest.mark.slow
@pytest.mark.parametrize("motion", [
    ["--hybrid-motion", "optical-flow", "--hybrid-composite", "normal", "--hybrid-comp-alpha", "0: (0.3)"],
    ["--hybrid-motion", "affine", "--hybrid-composite", "after-generation", "--animation-mode", "3D", "--save-depth"],
], ids=["flow-composite", "affine-3D-depth"])
def test_hybrid_video_runs_and_resumes_bit_for_bit(run_cli, tiny_sd, depth_model, tmp_path, motion):
    source_video(tmp_path / "in.mp4")
    args = ["--frames", 6, "--cadence", 2, "--video-input", "in.mp4", "--zoom", "0: (1)", *motion]
    if "3D" in motion:
        args += ["--depth-model", depth_model, "--translation-z", "0: (5)"]
    for name in ("full", "cut"):
        result = run_animate(run_cli, tiny_sd, *args, "-o", name)
        assert result.exit_code == 0, result.stderr
    for i in (3, 4, 5):
        (tmp_path / "cut" / f"{i:09}.png").unlink()
    (tmp_path / "cut" / "depth_000000004.png").unlink(missing_ok=True)
    result = run_animate(run_cli, tiny_sd, *args, "-o", "cut", "--resume")
    assert result.exit_code == 0, result.stderr
    for name in sorted(p.name for p in (tmp_path / "full").iterdir()):
        assert (tmp_path / "cut" / name).read_bytes() == (tmp_path / "full" / name).read_bytes(), name
    record = json.loads((tmp_path / "full" / "settings.json").read_text())
    assert record["hybrid_motion"] == motion[1] and record["video_input"] == "in.mp4"
