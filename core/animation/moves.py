"""How a frame becomes the next one before img2img: the camera (2D or 3D), the input video's motion, and the in-betweens of a cadence.

Everything here is a function of the frames it is given, the plans and the input video, never of
state carried over from earlier spans, so a run resumed at a key frame moves exactly as it would have.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from ..images import camera, flow, motion
from .frames import FramePlan
from .settings import AnimationSettings

DepthCallback = Callable[[int, np.ndarray], None]  # (frame index, its depth) when a depth model made one


def frame_matrix(settings: AnimationSettings, plan: FramePlan, width: int, height: int) -> np.ndarray:
    """The 2D (and perspective-flip) motion that carries the previous frame to this one."""
    v = plan.values
    matrix = motion.motion_matrix(width, height, v["zoom"], v["angle"], v["translation_x"], v["translation_y"], v["transform_center_x"], v["transform_center_y"])
    if settings.perspective_flip:
        matrix = flip_matrix(plan, width, height) @ matrix
    return matrix


def flip_matrix(plan: FramePlan, width: int, height: int) -> np.ndarray:
    v = plan.values
    return motion.perspective_matrix(width, height, v["perspective_flip_theta"], v["perspective_flip_phi"], v["perspective_flip_gamma"], v["perspective_flip_fv"])


def camera_move(plan: FramePlan) -> camera.Move:
    v = plan.values
    return camera.Move(v["translation_x"], v["translation_y"], v["translation_z"], v["rotation_3d_x"], v["rotation_3d_y"], v["rotation_3d_z"], v["fov"])


def move_frame(frame: np.ndarray, depth: np.ndarray | None, settings: AnimationSettings, plan: FramePlan) -> tuple[np.ndarray, np.ndarray | None]:
    """The camera's move into `plan`'s frame: 2D by a matrix; 3D through the depth (flat when None), which moves along."""
    height, width = frame.shape[:2]
    if settings.animation_mode != "3D":
        return motion.warp(frame, frame_matrix(settings, plan, width, height), settings.border), depth
    if settings.perspective_flip:  # Deforum tilts the picture first, then moves the camera
        frame = motion.warp(frame, flip_matrix(plan, width, height), settings.border)
    return camera.warp(frame, camera.flat(width, height) if depth is None else depth, camera_move(plan), settings.border)


def warp_frame(frame: np.ndarray, settings: AnimationSettings, plan: FramePlan) -> np.ndarray:
    """One frame's move on its own, with flat depth in 3D (the motion preview's)."""
    return move_frame(frame, None, settings, plan)[0]


class Mover:
    """The frames of one span, from a key frame to the next, before and after the next is diffused."""

    def __init__(self, settings: AnimationSettings, plans: list[FramePlan], video: Callable[[int], np.ndarray], device="cpu"):
        self.settings, self.plans, self.video, self.device = settings, plans, video, device
        self.estimator = None
        self.on_depth: DepthCallback | None = None
        self._video_moves: dict[int, np.ndarray] = {}  # this span's video motions (a flow or a matrix), by frame

    def load_depth(self) -> None:
        """Load --depth-model now (3D's, a depth ControlNet's, or both: one model): a missing one fails before anything is written."""
        if self.settings.depth_model != "none" and self.estimator is None:
            from ..loading.depth import DepthEstimator

            self.estimator = DepthEstimator(self.settings.depth_model, self.device)

    def load_flow(self) -> None:
        """Load RAFT now when the run uses it: one that cannot run here fails before anything is written."""
        s = self.settings
        if s.optical_flow_cadence == "raft" or (s.hybrid and s.hybrid_motion != "none" and s.hybrid_flow_method == "raft"):
            from ..images import raft

            raft.load(self.device)

    def depth(self, frame: np.ndarray, index: int) -> np.ndarray | None:
        """The depth the camera moves `frame` through: None (flat) in 2D or without a model."""
        if self.settings.animation_mode != "3D" or self.settings.depth_model == "none":
            return None
        self.load_depth()
        depth = camera.depth_from_prediction(self.estimator.raw(frame), self.estimator.metric)
        if self.on_depth:
            self.on_depth(index, depth)
        return depth

    def span(self, previous: np.ndarray, prev_key: int, key: int) -> list[np.ndarray]:
        """Frames prev_key+1 .. key as moved from `previous`; the last is what the key frame is drawn from."""
        self._video_moves.clear()
        if self.settings.video_input and not self.settings.hybrid:
            return [self.video(index) for index in range(prev_key + 1, key + 1)]
        chain, frame, depth = [], previous, self.depth(previous, prev_key)
        for index in range(prev_key + 1, key + 1):
            frame, depth = move_frame(frame, depth, self.settings, self.plans[index])
            if self.settings.hybrid:
                frame = self._hybrid(frame, index, index == key)
            chain.append(frame)
        return chain

    def _hybrid(self, frame: np.ndarray, index: int, key: bool) -> np.ndarray:
        """Deforum's hybrid video: the video's own motion, with its frame blended in before or after it on a key frame."""
        mode = self.settings.hybrid_composite
        if key and mode == "before-motion":
            frame = self.composite(frame, index)
        frame = self._video_motion(frame, index)
        if key and mode == "normal":
            frame = self.composite(frame, index)
        return frame

    def composite(self, frame: np.ndarray, index: int) -> np.ndarray:
        return flow.blend(frame, self.video(index), self.plans[index].values["hybrid_comp_alpha"])

    def _video_move(self, index: int) -> np.ndarray:
        """The video's motion into frame `index`: the flow back to the frame before, or the matrix from it."""
        s = self.settings
        if index not in self._video_moves:
            if s.hybrid_motion == "optical-flow":  # the flow back from this video frame to the last one says where each pixel came from
                self._video_moves[index] = flow.optical_flow(self.video(index), self.video(index - 1), s.hybrid_flow_method, self.device)
            else:
                self._video_moves[index] = flow.camera_matrix(self.video(index - 1), self.video(index), s.hybrid_motion, s.hybrid_flow_method, self.device)
        return self._video_moves[index]

    def _video_motion(self, frame: np.ndarray, index: int) -> np.ndarray:
        s = self.settings
        if s.hybrid_motion == "optical-flow":
            return flow.warp(frame, self._video_move(index), s.border)
        if s.hybrid_motion in flow.MATCH_KINDS:
            return motion.warp(frame, self._video_move(index), s.border)
        return frame

    def moved_noise(self, noise: np.ndarray, prev_key: int, key: int, fresh: np.ndarray) -> np.ndarray:
        """Key frame `prev_key`'s latent noise carried to `key` as the video moves (--hybrid-noise warped); `fresh`
        fills what came from outside the frame. The camera's own moves leave the noise in place."""
        steps = []
        for index in range(key, prev_key, -1):
            move = self._video_move(index)
            height, width = self.video(index).shape[:2]
            steps.append(flow.flow_positions(move) if self.settings.hybrid_motion == "optical-flow" else flow.matrix_positions(move, width, height))
        self._video_moves.clear()  # a resumed run carries the noise through every span it skips: keep one span's flows at most
        return flow.warp_noise(noise, steps, fresh)

    def in_betweens(self, first: np.ndarray, chain: list[np.ndarray], made: np.ndarray, prev_key: int):
        """Yield (index, frame) for the frames between two key frames: moved along the optical flow between them, or cross-faded."""
        span = len(chain)
        method = self.settings.optical_flow_cadence
        if method != "none" and span > 1:
            forward, backward = flow.optical_flow(first, made, method, self.device), flow.optical_flow(made, first, method, self.device)
            for offset in range(1, span):
                yield prev_key + offset, flow.in_between(first, made, offset / span, forward, backward, self.settings.border)
            return
        for offset, moved in enumerate(chain[:-1], start=1):
            yield prev_key + offset, flow.blend(moved, made, offset / span)
