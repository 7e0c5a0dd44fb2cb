"""How many denoising steps a strength runs, and how to make it run exactly as many as asked.

This is the one place where strength becomes a step plan (diffusers' `get_timesteps` then picks
the timesteps from it). diffusers, like A1111, runs min(int(steps * strength), steps) steps from
the noise level `strength` selects; when that rounds to zero nothing is denoised, which both tools
do silently. Here it is an error that says what to change.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from ..errors import UsageError

MAX_SCHEDULE = 1000  # a model's training timesteps: no scheduler can be asked for more inference steps


@dataclass(frozen=True)
class Denoise:
    """A checked strength and what it means in steps: ask diffusers for `num_inference_steps`, `steps_run` run."""

    strength: float
    exact_steps: bool
    num_inference_steps: int
    steps_run: int


def steps_run(num_inference_steps: int, strength: float) -> int:
    """The number of steps diffusers' img2img and inpaint pipelines run (their own formula)."""
    return min(int(num_inference_steps * strength), num_inference_steps)


def plan(steps: int, strength: float, exact: bool, flag: str = "--strength") -> Denoise:
    """The step plan for `steps` at `strength` (both already range-checked where they entered)."""
    if exact:
        # The schedule is stretched so that `strength` of it is `steps` long (A1111's img2img_fix_steps, made exact).
        n = max(steps, math.ceil(steps / strength))
        if n > MAX_SCHEDULE:
            need = math.ceil(1000 * steps / MAX_SCHEDULE) / 1000
            raise UsageError(f"--exact-steps: {steps} steps at {flag} {strength:g} need a {n}-step schedule, more than the model's {MAX_SCHEDULE} timesteps; raise {flag} to at least {need:g} or lower --steps")
        while steps_run(n, strength) > steps:
            n -= 1
        while steps_run(n, strength) < steps:
            n += 1
        return Denoise(strength, True, n, steps)
    run = steps_run(steps, strength)
    if run < 1:
        need_strength = math.ceil(1000 / steps) / 1000
        need_steps = math.ceil(1 / strength)
        raise UsageError(
            f"{flag} {strength:g} with --steps {steps} runs no denoising step ({steps} x {strength:g} < 1); "
            f"raise {flag} to at least {need_strength:g}, --steps to at least {need_steps}, or pass --exact-steps"
        )
    return Denoise(strength, False, steps, run)
