"""How many denoising steps a strength actually runs, and how to make it run exactly as many as asked.

diffusers (like A1111) runs min(int(steps * strength), steps) steps from the noise level that
`strength` selects. When that rounds to zero nothing is denoised at all, which both tools do
silently; here it is an error that says what to change.
"""

from __future__ import annotations

import math

from ..errors import UsageError


def steps_run(num_inference_steps: int, strength: float) -> int:
    """The number of steps diffusers' img2img and inpaint pipelines run (their own formula)."""
    return min(int(num_inference_steps * strength), num_inference_steps)


def check_strength(strength: float, flag: str = "--strength") -> float:
    if not 0.0 < strength <= 1.0:
        raise UsageError(f"{flag} {strength}: must be in (0, 1]; it is the fraction of the noise schedule to re-run")
    return strength


def plan(steps: int, strength: float, exact: bool) -> tuple[int, int]:
    """(num_inference_steps to ask diffusers for, steps that will run)."""
    check_strength(strength)
    if steps < 1:
        raise UsageError(f"--steps {steps}: must be at least 1")
    if exact:
        # The schedule is stretched so that `strength` of it is `steps` long (A1111's img2img_fix_steps, made exact).
        n = max(steps, math.ceil(steps / strength))
        while steps_run(n, strength) > steps:
            n -= 1
        while steps_run(n, strength) < steps:
            n += 1
        return n, steps
    run = steps_run(steps, strength)
    if run < 1:
        need_strength = math.ceil(1000 / steps) / 1000
        need_steps = math.ceil(1 / strength)
        raise UsageError(
            f"--strength {strength} with --steps {steps} runs no denoising step ({steps} x {strength} < 1); "
            f"raise --strength to at least {need_strength:g}, --steps to at least {need_steps}, or pass --exact-steps"
        )
    return steps, run
