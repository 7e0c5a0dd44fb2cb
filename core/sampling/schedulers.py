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
    "ays": "Align Your Steps (Sabour et al., 2024): levels optimised for few steps, SD 1.5's or SDXL's by the model",
    "ays-xl": "Align Your Steps' SDXL levels, whatever the model",
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


# A1111's schedule types (its "Schedule type" since 1.9; Forge's separate `scheduler` key), by name, with
# the label A1111 shows and what it is in diffusers: a noise schedule, a timestep spacing, "automatic" (the
# sampler's own choice) or None where diffusers has no equivalent.
SCHEDULE_TYPES: dict[str, tuple[str, dict | str | None]] = {
    "automatic": ("Automatic", "automatic"),
    "uniform": ("Uniform", None),
    "karras": ("Karras", {"noise_schedule": "karras"}),
    "exponential": ("Exponential", {"noise_schedule": "exponential"}),
    "polyexponential": ("Polyexponential", None),
    "sgm_uniform": ("SGM Uniform", {"timestep_spacing": "trailing"}),
    "kl_optimal": ("KL Optimal", None),
    "align_your_steps": ("Align Your Steps", {"noise_schedule": "ays"}),
    "align_your_steps_gits": ("Align Your Steps GITS", None),
    "align_your_steps_11": ("Align Your Steps 11", None),
    "align_your_steps_32": ("Align Your Steps 32", None),
    "simple": ("Simple", {"timestep_spacing": "trailing"}),
    "normal": ("Normal", None),
    "ddim": ("DDIM", None),
    "beta": ("Beta", {"noise_schedule": "beta"}),
    "turbo": ("Turbo", None),
}
_SCHEDULE_ALIASES = {"sgmuniform": "sgm_uniform"}
# A1111's "Automatic": the schedule each sampler was tuned with (sd_samplers_kdiffusion's per-sampler options).
AUTOMATIC = {"dpmpp_2m": "karras", "dpmpp_sde": "karras", "dpm2": "karras", "dpm2_a": "karras", "dpmpp_2m_sde": "exponential"}


def schedule_type(label: str) -> str | None:
    """The schedule type an A1111/Forge label or name means ("SGM Uniform", "sgm_uniform" -> "sgm_uniform"), or None."""
    key = _normal(label)
    key = _SCHEDULE_ALIASES.get(key, key)
    return key if key in SCHEDULE_TYPES else None


def split_a1111(name: str) -> tuple[str, str | None]:
    """("DPM++ 2M Karras") -> ("DPM++ 2M", "karras"): A1111 before 1.9 named a sampler and its schedule in one.

    A name that is itself a sampler, or whose head is not one, is returned whole with None.
    """
    text = name.strip()
    table = _by_name()
    if _normal(text) in table:
        return text, None
    for cut, char in enumerate(text):  # left to right, so the longest label wins: "Align Your Steps GITS", not "GITS"
        if char in " _":
            head, tail = text[:cut].strip(" _"), text[cut + 1 :].strip(" _")
            kind = schedule_type(tail) if tail else None
            if kind and _normal(head) in table:
                return head, kind
    return text, None


def schedule_settings(spec: SchedulerSpec, kind: str) -> dict:
    """What schedule type `kind` sets for sampler `spec`: {"noise_schedule": ...} or {"timestep_spacing": ...}, {} for
    the sampler's default; UsageError where diffusers has no equivalent."""
    label, meaning = SCHEDULE_TYPES[kind]
    if meaning is None:
        able = ", ".join(label for label, m in SCHEDULE_TYPES.values() if m is not None)
        raise UsageError(f"schedule type {label} has no diffusers equivalent; these have: {able}")
    if meaning == "automatic":
        return {"noise_schedule": AUTOMATIC[spec.name]} if spec.name in AUTOMATIC else {}
    return dict(meaning)


def closest(name: str, limit: int = 3) -> list[str]:
    """Scheduler names nearest to a misspelt one (difflib), spelt the way the user spells them: A1111's or ours."""
    import difflib

    base = name
    for cut, char in enumerate(name):  # a schedule label is dropped even when the sampler before it is unknown
        if char in " _" and name[cut + 1 :].strip(" _") and schedule_type(name[cut + 1 :].strip(" _")):
            base = name[:cut]
            break
    a1111_style = any(c in base for c in " +")
    by_normal: dict[str, str] = {}
    for spec in SCHEDULERS:
        for known in (spec.name, spec.a1111, *spec.aliases):
            by_normal.setdefault(_normal(known), spec.a1111 if a1111_style else spec.name)
    matches = difflib.get_close_matches(_normal(base), list(by_normal), n=limit * 2, cutoff=0.5)
    return list(dict.fromkeys(by_normal[m] for m in matches))[:limit]


def find_scheduler(name: str, what: str = "--scheduler") -> SchedulerSpec:
    """A scheduler by our name, an A1111 name, or an A1111 name with its schedule type ("DPM++ 2M Karras")."""
    base, _ = split_a1111(name)
    spec = _by_name().get(_normal(base))
    if spec is None:
        near = closest(name)
        hint = f"; closest: {', '.join(near)}" if near else ""
        raise UsageError(f"{what}: unknown scheduler {name[:60]!r}{hint}; choose from {', '.join(s.name for s in SCHEDULERS)} (or their A1111 names, e.g. 'DPM++ 2M Karras')")
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
            # Not "--noise-schedule": the schedule may have come with an A1111 sampler name ("Euler a Karras").
            raise UsageError(f"noise schedule {noise_schedule}: scheduler {spec.name} cannot space its noise levels that way; these can: {', '.join(able)}")
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
    schedule = {"karras": "Karras", "exponential": "Exponential", "beta": "Beta", "ays": "Align Your Steps", "ays-xl": "Align Your Steps"}.get(noise_schedule, noise_schedule if noise_schedule != "default" else None)
    return spec.a1111, schedule


def takes_eta(name: str) -> bool:
    """Whether the sampler's step takes eta (diffusers passes it only to those; others would ignore it silently)."""
    import diffusers

    return "eta" in inspect.signature(getattr(diffusers, find_scheduler(name).class_name).step).parameters


def eta_samplers() -> list[str]:
    return [s.name for s in SCHEDULERS if takes_eta(s.name)]
