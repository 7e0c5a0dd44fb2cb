"""Sampler names (diffusers-style and A1111-style) and noise-level spacings, mapped onto diffusers schedulers."""

from __future__ import annotations

import inspect
from dataclasses import dataclass, field

from ..errors import UsageError
from .noise_schedules import NoiseSpec


@dataclass(frozen=True)
class SchedulerSpec:
    name: str
    class_name: str
    a1111: str
    summary: str
    kwargs: dict = field(default_factory=dict)
    aliases: tuple[str, ...] = ()


SCHEDULERS: tuple[SchedulerSpec, ...] = (
    SchedulerSpec("euler", "EulerDiscreteScheduler", "Euler", "Euler's method on the probability-flow ODE; deterministic"),
    SchedulerSpec("euler_a", "EulerAncestralDiscreteScheduler", "Euler a", "Euler with fresh noise each step; varied, does not converge with more steps"),
    SchedulerSpec("heun", "HeunDiscreteScheduler", "Heun", "second-order Heun; two model calls per step"),
    SchedulerSpec("lms", "LMSDiscreteScheduler", "LMS", "linear multistep"),
    SchedulerSpec("dpm2", "KDPM2DiscreteScheduler", "DPM2", "DPM-Solver-2 (k-diffusion); two model calls per step"),
    SchedulerSpec("dpm2_a", "KDPM2AncestralDiscreteScheduler", "DPM2 a", "ancestral DPM-Solver-2"),
    SchedulerSpec("dpmpp_2m", "DPMSolverMultistepScheduler", "DPM++ 2M", "DPM-Solver++ 2M; good at 20-30 steps", {"algorithm_type": "dpmsolver++"}),
    SchedulerSpec("dpmpp_2m_sde", "DPMSolverMultistepScheduler", "DPM++ 2M SDE", "stochastic DPM-Solver++ 2M", {"algorithm_type": "sde-dpmsolver++"}),
    SchedulerSpec("dpmpp_sde", "DPMSolverSDEScheduler", "DPM++ SDE", "DPM-Solver++ SDE (needs torchsde); two model calls per step"),
    SchedulerSpec("ddim", "DDIMScheduler", "DDIM", "DDIM, deterministic"),
    SchedulerSpec("ddpm", "DDPMScheduler", "DDPM", "ancestral DDPM sampling; needs many steps"),
    SchedulerSpec("pndm", "PNDMScheduler", "PLMS", "pseudo linear multistep (SD 1.x's original default)", aliases=("plms",)),
    SchedulerSpec("unipc", "UniPCMultistepScheduler", "UniPC", "UniPC predictor-corrector; good at few steps"),
    SchedulerSpec("deis", "DEISMultistepScheduler", "DEIS", "diffusion exponential integrator sampler"),
    SchedulerSpec("lcm", "LCMScheduler", "LCM", "for latent-consistency (LCM) models and LoRAs; 2-8 steps, low guidance"),
    SchedulerSpec("tcd", "TCDScheduler", "TCD", "trajectory consistency distillation models; few steps"),
)

# Noise-level spacing name -> the scheduler constructor flag that selects it.
NOISE_SCHEDULES = {
    "default": None,
    "karras": "use_karras_sigmas",
    "exponential": "use_exponential_sigmas",
    "beta": "use_beta_sigmas",
}
NOISE_SCHEDULE_SUMMARIES = {
    "default": "the scheduler's own spacing of timesteps",
    "karras": "Karras et al. (2022) rho=7 spacing: more steps at low noise",
    "exponential": "noise levels evenly spaced in log sigma",
    "beta": "noise levels placed by a Beta(0.6, 0.6) distribution",
    "linear": "Chen (2023): gamma(t) = 1 - t, the paper's simple linear schedule (sigma or timestep samplers)",
    "cosine[:start=,end=,tau=]": "Chen (2023): cosine schedule, truncated to [start, end] and raised to tau",
    "sigmoid[:start=,end=,tau=]": "Chen (2023): sigmoid schedule over [start, end] with temperature tau",
}


def _by_name() -> dict[str, SchedulerSpec]:
    table = {}
    for spec in SCHEDULERS:
        for key in (spec.name, spec.a1111, *spec.aliases):
            table[_normal(key)] = spec
    return table


def _normal(name: str) -> str:
    return name.strip().lower().replace(" ", "_").replace("+", "p").replace("-", "_")


def find_scheduler(name: str) -> SchedulerSpec:
    spec = _by_name().get(_normal(name))
    if spec is None:
        raise UsageError(f"--scheduler: unknown scheduler {name!r}; choose from {', '.join(s.name for s in SCHEDULERS)}")
    return spec


def scheduler_for_class(class_name: str, config: dict) -> SchedulerSpec | None:
    """The table entry that a model's own scheduler config corresponds to, if any."""
    for spec in SCHEDULERS:
        if spec.class_name == class_name and all(config.get(k) == v for k, v in spec.kwargs.items()):
            return spec
    return None


def supports(class_name: str, flag: str) -> bool:
    import diffusers

    return flag in inspect.signature(getattr(diffusers, class_name).__init__).parameters


def make_scheduler(name: str, noise_schedule: "NoiseSpec", base_config: dict, timestep_spacing: str = ""):
    """Build scheduler `name` from a model's scheduler config (betas, prediction type, timestep spacing)."""
    import diffusers

    spec = find_scheduler(name)
    if noise_schedule.continuous is not None:
        custom_schedule_flag(spec)  # refuse early, naming the schedulers that can
    flag = NOISE_SCHEDULES[noise_schedule.spacing]
    kwargs = dict(spec.kwargs)
    for other in NOISE_SCHEDULES.values():
        if other:
            kwargs[other] = False
    if flag:
        if not supports(spec.class_name, flag):
            able = [s.name for s in SCHEDULERS if supports(s.class_name, flag)]
            raise UsageError(f"--noise-schedule {noise_schedule}: scheduler {spec.name} cannot space its noise levels that way; these can: {', '.join(able)}")
        kwargs[flag] = True
    if timestep_spacing:
        kwargs["timestep_spacing"] = timestep_spacing
    cls = getattr(diffusers, spec.class_name)
    try:
        return cls.from_config(base_config, **kwargs)
    except ImportError as exc:  # e.g. DPMSolverSDEScheduler without torchsde, LMS without scipy
        raise UsageError(f"--scheduler {spec.name}: {str(exc).strip().splitlines()[0]}") from exc


def custom_schedule_flag(spec: SchedulerSpec) -> str:
    """How a scheduler takes a custom schedule: 'sigmas', else 'timesteps'; an error if neither."""
    import diffusers

    def flags(s: SchedulerSpec) -> set[str]:
        accepted = set(inspect.signature(getattr(diffusers, s.class_name).set_timesteps).parameters) & {"sigmas", "timesteps"}
        # UniPC takes `sigmas` only for flow-matching models, so not for SD's noise-prediction ones.
        return accepted - {"sigmas"} if s.class_name == "UniPCMultistepScheduler" else accepted

    for flag in ("sigmas", "timesteps"):
        if flag in flags(spec):
            return flag
    able = [s.name for s in SCHEDULERS if flags(s)]
    raise UsageError(f"--scheduler {spec.name}: takes neither custom sigmas nor timesteps, so it cannot follow a continuous noise schedule; these can: {', '.join(able)}")


def a1111_label(name: str, noise_schedule: "NoiseSpec | str") -> tuple[str, str | None]:
    """(Sampler, Schedule type) as A1111 writes them into image metadata."""
    spec = find_scheduler(name)
    noise_schedule = str(noise_schedule)
    schedule = {"karras": "Karras", "exponential": "Exponential", "beta": "Beta"}.get(noise_schedule, noise_schedule if noise_schedule != "default" else None)
    return spec.a1111, schedule
