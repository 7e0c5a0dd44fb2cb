"""Continuous-time noise schedules from Chen (2023), "On the Importance of Noise Scheduling for Diffusion Models".

Each is gamma(t) for t in [0, 1], the signal fraction: logSNR = log(gamma / (1 - gamma)). Its
Algorithm 1 defines linear, cosine and sigmoid families, each clipped to [1e-9, 1]. Scaling the
input by b shifts logSNR by 2 log b. Here a family is sampled at the step times and turned into
sigmas, sigma = sqrt((1 - gamma) / gamma), the noise levels diffusers' schedulers step through.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from ..errors import UsageError

CLIP_MIN = 1e-9


def _sigmoid(x):
    return 1 / (1 + np.exp(-x))


def simple_linear(t, clip_min: float = CLIP_MIN):
    return np.clip(1 - np.asarray(t, dtype=np.float64), clip_min, 1.0)


def sigmoid(t, start: float = -3.0, end: float = 3.0, tau: float = 1.0, clip_min: float = CLIP_MIN):
    t = np.asarray(t, dtype=np.float64)
    v_start, v_end = _sigmoid(start / tau), _sigmoid(end / tau)
    output = _sigmoid((t * (end - start) + start) / tau)
    return np.clip((v_end - output) / (v_end - v_start), clip_min, 1.0)


def cosine(t, start: float = 0.0, end: float = 1.0, tau: float = 1.0, clip_min: float = CLIP_MIN):
    t = np.asarray(t, dtype=np.float64)
    v_start = math.cos(start * math.pi / 2) ** (2 * tau)
    v_end = math.cos(end * math.pi / 2) ** (2 * tau)
    output = np.cos((t * (end - start) + start) * math.pi / 2) ** (2 * tau)
    return np.clip((v_end - output) / (v_end - v_start), clip_min, 1.0)


# Align Your Steps (Sabour et al., 2024): noise levels optimised for 10 steps, published per model family.
# Other step counts interpolate log sigma linearly between them, the paper's own recipe; the last knot
# is where a 10-step run's final step lands before the sampler's closing step to sigma 0.
AYS_SIGMAS = {
    "ays": (14.615, 6.475, 3.861, 2.697, 1.886, 1.396, 0.963, 0.652, 0.399, 0.152, 0.029),  # SD 1.x and 2.x
    "ays-xl": (14.615, 6.315, 3.771, 2.181, 1.342, 0.862, 0.555, 0.380, 0.234, 0.113, 0.029),  # SDXL
}


def _ays(knots):
    log_knots = np.log(np.asarray(knots[::-1], dtype=np.float64))
    knot_times = np.linspace(0.0, 1.0, len(knots))  # t = 1 at the noisiest knot, 0 at the last

    def gamma(t):
        sigma = np.exp(np.interp(np.asarray(t, dtype=np.float64), knot_times, log_knots))
        return 1.0 / (1.0 + sigma**2)

    return gamma


FAMILIES = {"ays": (_ays(AYS_SIGMAS["ays"]), {}), "ays-xl": (_ays(AYS_SIGMAS["ays-xl"]), {}), "linear": (simple_linear, {}), "cosine": (cosine, {"start": 0.0, "end": 1.0, "tau": 1.0}), "sigmoid": (sigmoid, {"start": -3.0, "end": 3.0, "tau": 1.0})}


@dataclass(frozen=True)
class ContinuousSchedule:
    family: str
    params: dict = field(default_factory=dict)

    def gamma(self, t):
        function, _ = FAMILIES[self.family]
        return function(t, **self.params)

    def label(self) -> str:
        return self.family + (":" + ",".join(f"{k}={v:g}" for k, v in self.params.items()) if self.params else "")


def parse(spec: str) -> ContinuousSchedule | None:
    """'cosine:start=0.2,end=1,tau=1' -> the family and its parameters; None for the discrete spacings."""
    name, _, rest = spec.partition(":")
    if name not in FAMILIES:
        return None
    _, defaults = FAMILIES[name]
    params = dict(defaults)
    for item in filter(None, (p.strip() for p in rest.split(","))):
        key, eq, value = item.partition("=")
        if not eq or key not in defaults:
            raise UsageError(f"--noise-schedule {spec}: {name} takes {', '.join(f'{k}=' for k in defaults) or 'no parameters'} (got {item!r})")
        try:
            params[key] = float(value)
        except ValueError:
            raise UsageError(f"--noise-schedule {spec}: {key}={value!r} is not a number") from None
        if not math.isfinite(params[key]) or abs(params[key]) > 100:
            raise UsageError(f"--noise-schedule {spec}: {key}={value} must be a finite number in [-100, 100]")
    if name == "sigmoid" and (params["end"] <= params["start"] or params["tau"] <= 0):
        raise UsageError(f"--noise-schedule {spec}: sigmoid needs start < end and tau > 0")
    if name == "cosine" and not (0 <= params["start"] < params["end"] <= 1 and params["tau"] > 0):
        raise UsageError(f"--noise-schedule {spec}: cosine needs 0 <= start < end <= 1 and tau > 0")
    return ContinuousSchedule(name, params)


# The discrete spacings diffusers' schedulers offer (schedulers.NOISE_SCHEDULES maps each to its flag).
SPACINGS = ("default", "karras", "exponential", "beta")


@dataclass(frozen=True)
class NoiseSpec:
    """--noise-schedule, parsed once: a discrete spacing, or a continuous family with its parameters."""

    text: str
    spacing: str = "default"
    continuous: ContinuousSchedule | None = None

    def __str__(self) -> str:
        return self.text


def parse_spec(text: "str | NoiseSpec") -> NoiseSpec:
    if isinstance(text, NoiseSpec):
        return text
    continuous = parse(text)
    if continuous is not None:
        return NoiseSpec(text, "default", continuous)
    if text not in SPACINGS:
        raise UsageError(f"--noise-schedule: unknown schedule {text[:80]!r}; choose from {', '.join(SPACINGS)}, or {', '.join(FAMILIES)}[:k=v,...]")
    return NoiseSpec(text, text)


def logsnr(gamma):
    gamma = np.asarray(gamma, dtype=np.float64)
    return np.log(gamma) - np.log1p(-np.minimum(gamma, 1 - 1e-16))


def shifted_gamma(gamma, shift: float):
    """The same schedule with logSNR moved by `shift` (the paper's input scaling: shift = 2 log b)."""
    return _sigmoid(logsnr(gamma) + shift)


def sample_times(steps: int) -> np.ndarray:
    """Step times from noisiest to cleanest: t_k = 1 - k/steps, k = 0..steps-1 (t = 0 is the clean image)."""
    return 1.0 - np.arange(steps) / steps


@dataclass(frozen=True)
class Plan:
    t: np.ndarray
    gamma: np.ndarray  # raw gamma(t) of Algorithm 1, before the shift and the model-range clip
    sigmas: np.ndarray  # what the scheduler steps through, clipped to the model's trained range
    timesteps: np.ndarray  # the same noise levels as the model's (fractional) training timesteps


def plan(schedule: ContinuousSchedule, steps: int, train_sigmas: np.ndarray, shift: float = 0.0) -> Plan:
    """Sigmas and timesteps for `steps` sampling steps on a model trained with `train_sigmas` (ascending in t)."""
    t = sample_times(steps)
    gamma = schedule.gamma(t)
    g = shifted_gamma(gamma, shift) if shift else gamma
    sigmas = np.sqrt((1 - g) / np.maximum(g, CLIP_MIN))
    sigmas = np.clip(sigmas, train_sigmas.min(), train_sigmas.max())
    timesteps = np.interp(np.log(sigmas), np.log(train_sigmas), np.arange(len(train_sigmas), dtype=np.float64))
    return Plan(t, gamma, sigmas, timesteps)


def auto_shift(width: int, height: int, native: int) -> float:
    """The paper's second finding: larger images want noisier schedules. Shift by 2 log(native / size)."""
    return 2.0 * math.log(native / math.sqrt(width * height))
