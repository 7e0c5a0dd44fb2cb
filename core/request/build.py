"""Settings from every door merged in one place into one frozen request, each value checked once.

Layers, lowest first: built-in defaults < preset < settings file (ours, Deforum's) < flags. A
replayed image's record is a layer too. Every value goes through its option's `Kind`, and an error
names the option and where the value came from: `--steps 100000: ...`, `preset big: steps = 100000: ...`.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass, fields, replace
from pathlib import Path
from typing import Any, Mapping, Sequence

from ..errors import UsageError
from ..sampling import strength as strengths
from ..sampling.settings import Sampling
from ..images.control_types import MODEL_KINDS, WITH_A_MODEL, model_flag
from .options import MAX_BATCH, Invalid, Option, UnknownChoice, any_task_takes, options_for
from .types import ControlOptions, ControlUnit, Hires, ImageRequest, MaskOptions, ModelOptions, OutputOptions, RecordedControl, RecordedInput, Replay

FLAGS = "flags"


@dataclass(frozen=True)
class Layer:
    """Values from one source. `label` names it in messages; flags are named by their own flag."""

    label: str
    values: Mapping[str, Any]
    shared: bool = False  # a preset's top level: keys that only other subcommands take are skipped


def names(items: Sequence[str], shown: int = 5) -> str:
    """The first few of a list and a count of the rest: a million bad keys still make one short line."""
    head = ", ".join(str(x)[:60] for x in items[:shown])
    return head + (f" and {len(items) - shown:,} more" if len(items) > shown else "")


def _shown(value: Any) -> str:
    text = value if isinstance(value, str) else repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def convert(option: Option, raw: Any, label: str) -> Any:
    where = f"{option.flag.split('/')[0]} {_shown(raw)}" if label == FLAGS else f"{label}: {option.name} = {_shown(raw)}"
    try:
        return option.kind.convert(raw)
    except UnknownChoice as exc:
        raise UsageError(f"{option.flag}: {exc}" if label == FLAGS else f"{label}: {option.name}: {exc}") from None
    except Invalid as exc:
        raise UsageError(f"{where}: {exc}") from None
    except UsageError as exc:  # a library check (scheduler name, noise schedule, keyframes) already says what is wrong
        message = str(exc)
        raise UsageError(message if label == FLAGS else f"{label}: {option.name}: {message}") from None


def merge(task: str, layers: Sequence[Layer]) -> tuple[dict[str, Any], dict[str, str]]:
    """Every option of `task`, converted and checked, and where each value came from."""
    table = options_for(task)
    values = {name: option.kind.convert(option.default) if option.default is not None else None for name, option in table.items()}
    origin = {name: "default" for name in table}
    rank = {}  # option -> index of the layer that set it, for rules between options set in different layers
    for number, layer in enumerate(layers):
        unknown = []
        for key, raw in layer.values.items():
            option = table.get(key)
            if option is None:
                if not (layer.shared and any_task_takes(key)):
                    unknown.append(str(key))
                continue
            values[key] = convert(option, raw, layer.label)
            origin[key] = layer.label
            rank[key] = number
            if layer.label != FLAGS and hasattr(values[key], "origin"):  # a schedule checked per frame names its source then too
                values[key] = replace(values[key], origin=layer.label)
        if unknown:
            raise UsageError(f"{layer.label}: unknown options {names(unknown)} ({task} takes the names its --help lists, with _ for -)")
    _a1111_schedule_type(values, origin, rank)
    return values, origin


def _a1111_schedule_type(values: dict[str, Any], origin: dict[str, str], rank: dict[str, int]) -> None:
    """"DPM++ 2M Karras" is sampler dpmpp_2m with noise schedule karras (A1111's names before 1.9 carried both).

    The schedule the name carries is a value of its layer: a noise schedule (or timestep spacing) set in a
    higher layer wins, one set in the same layer must agree, and one from a lower layer is replaced.
    """
    from ..sampling.noise_schedules import parse_spec
    from ..sampling.schedulers import SCHEDULE_TYPES, find_scheduler, schedule_settings, split_a1111

    name = values.get("scheduler")
    if not name:
        return
    base, kind = split_a1111(name)
    if kind is None:
        return
    label = origin["scheduler"]
    where = f"--scheduler {name!r}" if label == FLAGS else f"{label}: scheduler = {name!r}"
    spec = find_scheduler(base)
    try:
        wanted = schedule_settings(spec, kind)
    except UsageError as exc:
        raise UsageError(f"{where}: {exc}") from None
    values["scheduler"] = spec.name
    automatic = SCHEDULE_TYPES[kind][1] == "automatic"  # the sampler's usual schedule: a default, never a disagreement
    for key, value in wanted.items():
        current = values.get(key)
        shown = current.text if hasattr(current, "text") else current
        if rank.get(key, -1) > rank["scheduler"] or shown == value or (automatic and key in rank):
            continue
        if rank.get(key, -1) == rank["scheduler"]:
            flag = "--" + key.replace("_", "-")
            other = f"{flag} {shown}" if label == FLAGS else f"{key} = {shown!r}"
            raise UsageError(f"{where} means {key.replace('_', ' ')} {value}, and {other} disagrees; give one of them")
        values[key] = parse_spec(value) if key == "noise_schedule" else value
        origin[key] = label


def model_options(values: Mapping[str, Any]) -> ModelOptions:
    return ModelOptions(**{f.name: values[f.name] for f in fields(ModelOptions) if f.name in values})  # each task takes its own subset


def _resolve_unet_options(values: dict[str, Any], origin: Mapping[str, str]) -> None:
    """--compile takes the whole UNet: a step cache the user did not ask for gives way, an asked-for one is refused.
    --backend openvino runs its own step cache, but not what reaches inside the torch UNet (token merging, ControlNet):
    --backend auto gives way to them, an asked-for openvino is refused."""
    if values["step_cache"] != 1 and values["compile_unet"]:
        if values["step_cache"] > 1 and origin.get("step_cache", "default") != "default":
            raise UsageError(f"--step-cache {values['step_cache']} and --compile: choose one (the compiled UNet would retrace at every cached step)")
        values["step_cache"] = 1
    if values.get("backend") == "auto" and (values.get("tome") or values.get("controlnet")):
        values["backend"] = "torch"
    if values.get("backend") == "openvino":
        if values.get("tome"):
            raise UsageError(f"--tome {values['tome']:g} and --backend openvino: choose one (token merging works inside the torch UNet)")
        if values.get("controlnet"):
            raise UsageError("--controlnet and --backend openvino: choose one (the OpenVINO UNet takes no ControlNet residuals)")


def random_seed() -> int:
    return random.SystemRandom().randrange(2**32)


def resolved_shift(values: Mapping[str, Any], origin: Mapping[str, str]) -> float | str:
    """--logsnr-shift X (or auto), or --input-scale b meaning X = 2 log b; not both."""
    shift, scale = values["logsnr_shift"], values["input_scale"]
    if scale is not None:
        if origin["logsnr_shift"] != "default":
            raise UsageError("give --logsnr-shift or --input-scale, not both (X = 2 log b)")
        shift = 2 * math.log(scale)
    return shift


def _shift(values: Mapping[str, Any], origin: Mapping[str, str]) -> float | str:
    shift = resolved_shift(values, origin)
    if shift and values["noise_schedule"].continuous is None:
        raise UsageError("--logsnr-shift works with the continuous noise schedules: ays, linear, cosine, sigmoid")
    return shift


def image_request(task: str, layers: Sequence[Layer], prompts: Sequence[str] = (), inputs: Sequence[str] = (), replay: Replay | None = None) -> ImageRequest:
    """txt2img (prompts), img2img or inpaint (inputs), or a replay; every cross-option rule checked here."""
    values, origin = merge(task, layers)
    _resolve_unet_options(values, origin)
    sampling = Sampling(values["steps"], values["cfg"], values["width"], values["height"], values["scheduler"], values["noise_schedule"], values["timestep_spacing"], _shift(values, origin), values["cfg_cutoff"], values["clip_skip"], values.get("subseed_strength", 0.0), values["tiling"], values["eta"], values.get("ensd", 0), step_cache=values["step_cache"], tome=values["tome"])
    output = OutputOptions(values["output"], values.get("name_pattern", OutputOptions.name_pattern), values["overwrite"], values["skip_existing"], values["shard"], values["quality"])
    seed = values["seed"] if values["seed"] is not None else random_seed()
    common = dict(task=task, model=model_options(values), sampling=sampling, output=output, seed=seed, batch_size=values["batch_size"], replay=replay, sources=origin, control=_control(task, values, replay))
    negative = values["negative_prompt"]
    prompts = _checked_prompts(prompts)
    if task == "txt2img":
        if not prompts and replay is None:
            raise UsageError("no prompt given (pass PROMPT or --prompt-file)")
        subseed = values["subseed"] if values["subseed"] is not None else random_seed()
        hires = _hires(values)
        return ImageRequest(prompts=tuple((p, negative) for p in prompts), count=values["count"], subseed=subseed, hires=hires, **common)
    if replay is None and not inputs:
        raise UsageError("give INPUTS or --replay IMAGE")
    if not values["captions"] and values["prompt"] is None and replay is None:
        raise UsageError("give --prompt, or --captions to read a .txt caption beside each image")
    denoise = strengths.plan(values["steps"], values["strength"], values["exact_steps"])
    mask = None
    if task == "inpaint":
        if not values["mask"] and replay is None:
            raise UsageError("--mask is required for inpaint")
        mask = MaskOptions(values["mask"], values["mask_blur"], values["invert_mask"], values["fill"], values["only_masked"], values["padding"], values["strict"])
    return ImageRequest(
        prompts=((values["prompt"] or "", negative),),
        inputs=tuple(inputs),
        captions=values["captions"],
        recursive=values["recursive"],
        denoise=denoise,
        resize=values.get("resize", "just"),
        mask=mask,
        **common,
    )


def _hires(values: Mapping[str, Any]) -> Hires | None:
    """The hires fix, or None when no option turns it on (so a run without them is the old one exactly)."""
    if values["hires_scale"] == 1.0 and not values["hires_width"] and not values["hires_height"]:
        return None
    steps = values["hires_steps"] or values["steps"]
    # exact: A1111 stretches the schedule so the second pass runs the steps asked for, not steps x strength
    denoise = strengths.plan(steps, values["hires_strength"], exact=True, flag="--hires-strength")
    return Hires(values["hires_scale"], values["hires_width"], values["hires_height"], values["hires_strength"], values["hires_steps"], values["hires_upscaler"], denoise)


PER_CONTROLNET = {"controlnet_config": "--controlnet-config", "control_image": "--control-image", "control_video": "--control-video", "control_type": "--control-type", "control_start": "--control-start", "control_end": "--control-end"}


def _control(task: str, values: Mapping[str, Any], replay: Replay | None) -> ControlOptions | None:
    """The run's ControlNets, or None; each per-ControlNet option gives one value for all, or one each."""
    models = values["controlnet"]
    if not models:
        given = [flag for name, flag in PER_CONTROLNET.items() if values.get(name)] + (["--guess-mode"] if values["guess_mode"] else [])  # each task has its own subset
        given += [model_flag(kind) for kind, option in WITH_A_MODEL.items() if values[option] != "none" and (task != "animate" or kind != "depth")]
        if given:
            raise UsageError(f"{given[0]} needs --controlnet MODEL")
        return None
    count = len(models)

    def each(name: str, default: Any) -> list:
        given = list(values[name])
        if len(given) not in (0, 1, count):
            raise UsageError(f"{PER_CONTROLNET[name]}: {len(given)} given for {count} ControlNets; give one for all, or one per --controlnet")
        return given * count if len(given) == 1 else given or [default] * count

    starts, ends = each("control_start", 0.0), each("control_end", 1.0)
    for number, (start, end) in enumerate(zip(starts, ends)):
        if start >= end:
            raise UsageError(f"--control-start {start:g} must be less than --control-end {end:g}" + (f" (ControlNet {number})" if count > 1 else ""))
    if task == "animate":
        videos = each("control_video", None)
        if not values["video_input"] and None in videos:
            raise UsageError("--controlnet in animate needs --control-video FILE (or --video-input, whose frames it then follows)")
    if task == "txt2img" and replay is None and not values["control_image"]:
        raise UsageError("--controlnet in txt2img needs --control-image, the image it follows")
    if task != "txt2img" and values["noise_schedule"].continuous is not None:
        raise UsageError(f"--noise-schedule {values['noise_schedule'].text}: diffusers' ControlNet img2img and inpaint pipelines take no custom noise levels; use default, karras, exponential or beta")
    if values["canny_low"] > values["canny_high"]:
        raise UsageError(f"--canny-low {values['canny_low']} must be at most --canny-high {values['canny_high']}")
    images = videos if task == "animate" else each("control_image", None)
    types = each("control_type", "none")
    for kind, option in WITH_A_MODEL.items():
        name, flag = values[option], model_flag(kind)
        if kind in types and name == "none":
            raise UsageError(f"--control-type {kind} needs {flag} MODEL, {MODEL_KINDS[kind]} (a folder, or a hub id in the local cache)")
        if kind not in types and name != "none" and (task != "animate" or kind != "depth"):  # animate: 3D's depth model too
            raise UsageError(f"{flag} goes with --control-type {kind}")
    networks = tuple((kind, values[option]) for kind, option in WITH_A_MODEL.items() if kind in types)
    units = tuple(ControlUnit(path, weight, config or None, image, module, start, end) for (path, weight), config, image, module, start, end in zip(models, each("controlnet_config", None), images, types, starts, ends))
    return ControlOptions(units, values["guess_mode"], values["control_resize"], values["canny_low"], values["canny_high"], networks)


def animation_request(layers: Sequence[Layer]):
    """(ModelOptions, AnimationSettings) for animate; every schedule parsed once, here."""
    from ..animation.settings import AnimationSettings

    values, origin = merge("animate", layers)
    if values["seed"] is None:
        values["seed"] = random_seed()
    _check_motion(values)
    _resolve_unet_options(values, origin)
    control = _control("animate", values, None)
    return model_options(values), AnimationSettings(**{f.name: values[f.name] for f in fields(AnimationSettings) if f.name != "control"}, control=control)


def _check_motion(values: Mapping[str, Any]) -> None:
    """Options of a motion feature that is not on would silently do nothing: refuse them instead."""
    if values["animation_mode"] != "3D":
        depth_control = bool(values["controlnet"]) and "depth" in values["control_type"]
        for name, off in (("depth_model", "none"), ("save_depth", False)):
            if values[name] != off and not (name == "depth_model" and depth_control):
                raise UsageError(f"--{name.replace('_', '-')} goes with --animation-mode 3D" + (" or --control-type depth" if name == "depth_model" else ""))
    if values["interpolate_model"] and values["interpolate"] < 2:
        raise UsageError("--interpolate-model makes --interpolate's in-betweens; give --interpolate N (2 or more)")
    if values["save_depth"] and values["depth_model"] == "none":
        raise UsageError("--save-depth keeps the maps --depth-model makes; without one the depth is flat")
    if not values["video_input"]:
        for name in ("hybrid_motion", "hybrid_composite"):
            if values[name] != "none":
                raise UsageError(f"--{name.replace('_', '-')} {values[name]} moves or blends by the video of --video-input, and none is given")


def _checked_prompts(prompts: Sequence[str]) -> tuple[str, ...]:
    """PROMPT and --prompt-file lines, held to --prompt's limits."""
    from .options import MAX_PROMPTS, check_text

    if len(prompts) > MAX_PROMPTS:
        raise UsageError(f"{len(prompts):,} prompts: at most {MAX_PROMPTS:,} in one run")
    for number, prompt in enumerate(prompts, start=1):
        try:
            check_text(prompt)
        except Invalid as exc:
            raise UsageError(f"prompt {number} ({_shown(prompt)}): {exc}") from None
    return tuple(prompts)


# ---------------------------------------------------------------- replay: a record is one more door

# Record keys that are options, as the image's task takes them.
RECORDED_OPTIONS = ("steps", "cfg", "width", "height", "scheduler", "noise_schedule", "timestep_spacing", "logsnr_shift", "cfg_cutoff", "step_cache", "tome", "clip_skip", "subseed_strength", "tiling", "eta", "ensd", "quality", "negative_prompt", "strength", "exact_steps", "resize", "hires_scale", "hires_width", "hires_height", "hires_strength", "hires_steps", "hires_upscaler")
RECORDED_MASK_OPTIONS = {"mask_blur": "mask_blur", "invert_mask": "invert_mask", "fill": "fill", "only_masked": "only_masked", "padding": "padding"}
REQUIRED = ("steps", "cfg", "width", "height", "scheduler", "seed", "prompt")
RECORDED_BEFORE_SPEED_OPTIONS = {"step_cache": 1, "tome": 0.0}


def replay_request(task: str, path: Path, record: dict, flags: Mapping[str, Any]) -> ImageRequest:
    """The request that regenerates the image at `path` from its record, checked as strictly as flags."""
    label = f"--replay {path}"
    if record.get("task") != task:
        made = record.get("task")
        raise UsageError(f"{path}: was made by {made}; replay it with scumble {made} --replay" if made in ("txt2img", "img2img", "inpaint") else f"{path}: its record names no task scumble knows")
    missing = [key for key in REQUIRED + (("strength",) if task != "txt2img" else ()) if key not in record]
    if missing:
        raise UsageError(f"{label}: its record lacks {names(missing)}, so it cannot be replayed")
    taken = {key for key in RECORDED_OPTIONS if key in options_for(task)}
    # A record older than a speed option was made without it: absent means off, whatever today's default.
    recorded = RECORDED_BEFORE_SPEED_OPTIONS | {key: record[key] for key in taken if key in record} | _recorded_controlnets(record, label)
    if task == "inpaint":
        recorded |= {option: record[key] for key, option in RECORDED_MASK_OPTIONS.items() if key in record}
    if "batch" in record:
        batch = record["batch"]
    else:
        batch = {"size": 1, "position": 0, "prompts": [record["prompt"]], "negative_prompts": [record.get("negative_prompt", "")], "seeds": [record["seed"]], "inputs": [record.get("inputs")]}
    if not isinstance(batch, dict):
        raise UsageError(f"{label}: its record's batch is not a table")
    size, position = _recorded_int(batch.get("size"), 1, MAX_BATCH, f"{label}: batch size"), batch.get("position")
    seeds, prompts = batch.get("seeds"), batch.get("prompts")
    if not (isinstance(seeds, list) and isinstance(prompts, list) and len(seeds) == size == len(prompts)):
        raise UsageError(f"{label}: its record's batch does not list {size} prompts and seeds")
    position = _recorded_int(position, 0, size - 1, f"{label}: batch position")
    checked_seeds = tuple(_recorded_int(s, 0, 2**32 - 1, f"{label}: seed") for s in seeds)
    checked_prompts = tuple(convert(options_for(task)["negative_prompt"], p, f"{label} (prompt)") for p in prompts)
    recorded_inputs: tuple[RecordedInput, ...] = ()
    if task != "txt2img":
        recorded_inputs = tuple(_recorded_input(entry, task, label) for entry in (batch.get("inputs") or [None] * size))
        if len(recorded_inputs) != size:
            raise UsageError(f"{label}: its record's batch does not list {size} inputs")
    subseeds = batch.get("subseeds") or []
    checked_subseeds = tuple(_recorded_int(s, 0, 2**32 - 1, f"{label}: subseed") for s in subseeds) if isinstance(subseeds, list) and len(subseeds) == size else ()
    controls = ()
    if "controlnet" in recorded:
        entries = batch.get("inputs") or [None] * size
        if not isinstance(entries, list) or len(entries) != size:
            raise UsageError(f"{label}: its record's batch does not list {size} inputs")
        controls = tuple(_recorded_controls(entry, len(recorded["controlnet"]), label) for entry in entries)
    replay = Replay(str(path), position, checked_seeds, checked_prompts, recorded_inputs, record, checked_subseeds, controls)
    layers = [Layer(label, recorded | {"batch_size": size, "seed": checked_seeds[0]}), Layer(FLAGS, flags)]
    if task == "txt2img":
        negatives = batch.get("negative_prompts") or [record.get("negative_prompt", "")] * size
        if not isinstance(negatives, list) or len(negatives) != size:
            raise UsageError(f"{label}: its record's batch does not list {size} negative prompts")
        request = image_request(task, layers, prompts=checked_prompts, replay=replay)
        pairs = tuple(zip(checked_prompts, (convert(options_for(task)["negative_prompt"], n, label) for n in negatives)))
        return replace(request, prompts=pairs)
    return image_request(task, layers, inputs=tuple(entry.image for entry in recorded_inputs), replay=replay)


def _recorded_int(value: Any, lo: int, hi: int, what: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not lo <= value <= hi:
        raise UsageError(f"{what} {_shown(value)}: must be a whole number between {lo} and {hi}")
    return value


def _recorded_controlnets(record: dict, label: str) -> dict:
    """A record's ControlNets as option values (checked by their Kinds like flags); each must still be where it was."""
    units = record.get("controlnets")
    if not units:
        return {}
    if not isinstance(units, list) or not all(isinstance(u, dict) and isinstance(u.get("model"), str) and isinstance(u.get("sha256"), str) and type(u.get("weight", 1.0)) in (int, float) for u in units):
        raise UsageError(f"{label}: its record's ControlNet entries are malformed")
    for unit in units:
        if unit.get("kind") != "hub" and not Path(unit["model"]).exists():
            raise UsageError(f"{label}: its ControlNet {_shown(unit['model'])} is missing, so it cannot be replayed")
    settings = [u.get("settings") if isinstance(u.get("settings"), dict) else {} for u in units]
    canny = next((s for u, s in zip(units, settings) if u.get("module") == "canny"), {})
    networks = {WITH_A_MODEL[u["module"]]: s.get("model") for u, s in zip(units, settings) if isinstance(u.get("module"), str) and u["module"] in WITH_A_MODEL}
    values = {
        "controlnet": [f"{u['model']}:{u.get('weight', 1.0)!r}" for u in units],
        "controlnet_config": [u.get("config") or "" for u in units],  # "": guessed again (and unused by folders)
        "control_type": [u.get("module", "none") for u in units],
        "control_start": [u.get("start", 0.0) for u in units],
        "control_end": [u.get("end", 1.0) for u in units],
        "guess_mode": record.get("guess_mode", False),
        "control_resize": units[0].get("resize", "crop"),
        **{option: model for option, model in networks.items() if model is not None},
    }
    return values | {key: canny[name] for key, name in (("canny_low", "low"), ("canny_high", "high")) if name in canny}


def _recorded_controls(entry: Any, count: int, label: str) -> tuple[RecordedControl | None, ...]:
    """One batch image's control images: a file and its hash each, or None where the input itself was used."""
    listed = entry.get("control") if isinstance(entry, dict) else None
    if not isinstance(listed, list) or len(listed) != count:
        raise UsageError(f"{label}: its record does not name the control images of its {count} ControlNets")
    out = []
    for item in listed:
        if item is None:
            out.append(None)
            continue
        if not isinstance(item, dict) or not isinstance(item.get("image"), str) or not isinstance(item.get("image_sha256"), str) or len(item["image"]) > 4096 or "\x00" in item["image"]:
            raise UsageError(f"{label}: its record names an unusable control image")
        out.append(RecordedControl(item["image"], item["image_sha256"]))
    return tuple(out)


def _recorded_input(entry: Any, task: str, label: str) -> RecordedInput:
    """A recorded input names files, never folders or globs, and carries their hashes."""
    if not isinstance(entry, dict) or not isinstance(entry.get("image"), str) or not isinstance(entry.get("image_sha256"), str):
        raise UsageError(f"{label}: its record does not name its input image and hash")
    mask, mask_sha = entry.get("mask"), entry.get("mask_sha256")
    if task == "inpaint" and not (isinstance(mask, str) and isinstance(mask_sha, str)):
        raise UsageError(f"{label}: its record does not name its mask and the mask's hash")
    for name in (entry["image"], mask):
        if name is not None and (len(name) > 4096 or "\x00" in name):
            raise UsageError(f"{label}: its record names an unusable input path")
    return RecordedInput(entry["image"], entry["image_sha256"], mask, mask_sha)


def check_replay_model(record: dict, engine, path: Path) -> None:
    """Replaying on other weights would silently give another picture; say which flags to pass instead."""
    made_with = record.get("model") if isinstance(record.get("model"), dict) else {}
    if made_with.get("hash") and engine.model_hash and made_with["hash"] != engine.model_hash:
        raise UsageError(f"{path}: was made with model {made_with.get('name')} (hash {made_with['hash']}), not {engine.source.name} (hash {engine.model_hash}); pass --model")
    if record.get("dtype") and record["dtype"] != engine.runtime.dtype_name:
        raise UsageError(f"{path}: was made in {record['dtype']}, and this run would use {engine.runtime.dtype_name}; pass --dtype {record['dtype']}")
    recorded_controlnets = record.get("controlnets") or []
    for entry, found in zip(recorded_controlnets, engine.controlnets.files if engine.controlnets else []):
        if entry.get("sha256") != found.sha256:
            raise UsageError(f"{path}: its ControlNet {entry.get('model')} has changed since the image was made (sha256 differs), so it cannot be replayed")
    if record.get("vae", "") != engine.vae_name:
        wanted = record.get("vae", "")
        raise UsageError(f"{path}: was made with " + (f"--vae {wanted}" if wanted else "the model's own autoencoder") + "; pass " + (f"--vae {wanted}" if wanted else "no --vae"))
