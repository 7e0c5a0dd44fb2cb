"""The Engine owns one loaded model's components and runs txt2img, img2img and inpaint on them.

Loading happens once; the task pipelines are diffusers siblings built with `from_pipe`, which
shares the same tokenizer, text encoder, UNet and VAE objects instead of loading them again.
ControlNets go through diffusers' ControlNet pipelines, built the same way with the loaded
ControlNets added: the engine never drives the UNet itself, and those pipelines already carry the
residual plumbing, guess mode and start/end windows that a hand-written loop would repeat.
"""

from __future__ import annotations

import dataclasses
import sys
from typing import Callable

import torch

from ..errors import ModelError, UsageError
from ..loading import device as devices
from ..loading import sources
from ..loading.loaders import load_pipeline, load_vae
from ..loading.sources import ModelSource
from . import schedulers
from . import prompts
from .conditioning import Conditioner, PromptEncoder
from .noise import circular_padding, given_noise, variation_noise
from .settings import ControlCall, ImageJob, Sampling
from .strength import Denoise

StepCallback = Callable[[int, int], None]  # (step just finished, steps in all)

_CONTROL_PIPELINES = {
    ("sd", "txt2img"): "StableDiffusionControlNetPipeline",
    ("sd", "img2img"): "StableDiffusionControlNetImg2ImgPipeline",
    ("sd", "inpaint"): "StableDiffusionControlNetInpaintPipeline",
    ("sdxl", "txt2img"): "StableDiffusionXLControlNetPipeline",
    ("sdxl", "img2img"): "StableDiffusionXLControlNetImg2ImgPipeline",
    ("sdxl", "inpaint"): "StableDiffusionXLControlNetInpaintPipeline",
}


class Engine:
    """One model, loaded once, serving every task."""

    def __init__(self, pipe, source: ModelSource, runtime: devices.Runtime, vae_name: str = "", notify: Callable[[str], None] = lambda message: None):
        self.source = source
        self.runtime = runtime
        self._pipes = {"txt2img": devices.place(pipe, runtime)}
        self._default_scheduler_config = dict(pipe.scheduler.config)
        self._default_scheduler_class = type(pipe.scheduler).__name__
        self._scheduler_key: tuple[str, str] | None = None
        self._hash: str | None = None
        self._compiled_size: tuple | None = None
        self.vae_name = vae_name  # the --vae given; "" is the model's own autoencoder
        self.adapters = None  # LoRAs and embeddings, when the run names any
        self.controlnets = None  # loading.controlnets.ControlNets, when the run names any
        self._step_cache = None  # installed on the UNet the first time a run asks for --step-cache
        self._token_merging = None  # likewise, for --tome
        self._openvino = None  # sampling.openvino_unet.OpenVINOUNet, for --backend openvino (or auto's choice of it)
        if runtime.backend == "auto":
            from .openvino_unet import auto_declines

            reason = auto_declines(pipe.unet)
            self.runtime = runtime = dataclasses.replace(runtime, backend="torch" if reason else "openvino")
            if not reason:
                notify("--backend auto: the UNet runs in OpenVINO (--backend torch to keep it in torch)")
        if runtime.backend == "openvino":
            from .openvino_unet import OpenVINOUNet

            self._openvino = OpenVINOUNet(pipe.unet, runtime.dtype, f"{source.location}|{self.model_hash}", notify)
            self._openvino.park()
        pipe.set_progress_bar_config(disable=True)

    @classmethod
    def load(cls, model: str, runtime: devices.Runtime, config: str | None = None, allow_pickle: bool = False, vae: str = "", notify: Callable[[str], None] = lambda message: None) -> "Engine":
        source = sources.resolve(model)
        pipe = load_pipeline(source, runtime, config, allow_pickle)
        family = "sdxl" if "XL" in type(pipe).__name__ else "sd"
        source = ModelSource(source.kind, source.location, source.name, family)
        if vae:
            autoencoder = load_vae(vae, source, family, runtime)
            if autoencoder.config.latent_channels != pipe.unet.config.out_channels:
                raise ModelError(f"--vae {vae}: it makes {autoencoder.config.latent_channels}-channel latents but the model's UNet works on {pipe.unet.config.out_channels}")
            pipe.vae = autoencoder
        return cls(pipe, source, runtime, vae, notify)

    @classmethod
    def from_options(cls, options, notify: Callable[[str], None] = lambda message: None) -> "Engine":
        """The one engine of a run, from its request's ModelOptions; `notify(message)` hears what the user should know."""
        runtime = devices.make_runtime(options.device, options.dtype, options.offload, options.vae_tiling, options.attention_slicing, options.channels_last, options.compile_unet, options.backend)
        engine = cls.load(options.model, runtime, config=options.config, allow_pickle=options.allow_pickle, vae=options.vae, notify=notify)
        if options.lora or options.lora_dir or options.embedding or options.embedding_dir:
            from ..loading.adapters import Adapters

            engine.adapters = Adapters(engine.pipeline("txt2img"), options.allow_pickle, options.lora, options.lora_dir, options.embedding, options.embedding_dir, options.fuse_lora)
        if options.controlnet:
            engine.load_controlnets(options)
        return engine

    def load_controlnets(self, options) -> None:
        """The request's ControlNets, each checked against this model's UNet before its weights are read."""
        from ..loading import controlnets

        count = len(options.controlnet)
        configs = options.controlnet_config * count if len(options.controlnet_config) == 1 else options.controlnet_config or (None,) * count
        specs = [(path, config or None) for (path, _weight), config in zip(options.controlnet, configs)]
        unet = self._pipes["txt2img"].unet
        self.controlnets = controlnets.load_all(specs, dict(unet.config), self.source.family, self.runtime, options.allow_pickle)

    def load_recorded_adapters(self, record: dict, label: str) -> None:
        """A replay's LoRAs and embeddings, found by their recorded hashes."""
        if not (record.get("loras") or record.get("embeddings")):
            return
        if self.adapters is None:
            from ..loading.adapters import Adapters

            self.adapters = Adapters(self.pipeline("txt2img"))
        self.adapters.load_recorded(record, {ref.name for ref in prompts.extract_loras(record.get("prompt", ""))[1]}, label)

    def adapter_record(self, prompt: str, negative: str) -> dict:
        """The LoRAs and embeddings an image was made with, for its record (and A1111's hashes)."""
        if self.adapters is None:
            return {}
        used = self.adapters.used(prompts.extract_loras(prompt)[1])
        loras = [{"name": f.name, "path": f.path, "weight": w, "sha256": f.sha256, "short": f.short} for f, w in used]
        embeddings = [{"name": f.name, "path": f.path, "sha256": f.sha256, "short": f.short} for f in self.adapters.used_embeddings([prompt, negative])]
        return {k: v for k, v in (("loras", loras), ("embeddings", embeddings)) if v}

    # ---------------------------------------------------------------- properties

    @property
    def components(self) -> dict:
        return self._pipes["txt2img"].components

    @property
    def native_size(self) -> int:
        pipe = self._pipes["txt2img"]
        return pipe.unet.config.sample_size * pipe.vae_scale_factor

    @property
    def model_hash(self) -> str:
        if self._hash is None:
            self._hash = sources.weights_hash(self.source)
        return self._hash

    def default_scheduler_name(self) -> str:
        spec = schedulers.scheduler_for_class(self._default_scheduler_class, self._default_scheduler_config)
        return spec.name if spec else self._default_scheduler_class

    def pipeline(self, task: str, control: bool = False):
        key = f"{task}+control" if control else task
        if key not in self._pipes:
            import diffusers

            base = self._pipes["txt2img"]
            if control:
                from ..loading.loaders import dtype_kwarg

                # DiffusionPipeline.from_pipe casts every shared module to float32 unless told the dtype
                cls = getattr(diffusers, _CONTROL_PIPELINES[(self.source.family or "sd", task)])
                pipe = cls.from_pipe(base, controlnet=self.controlnets.module, **dtype_kwarg(self.runtime.dtype))
            else:
                auto = {"img2img": diffusers.AutoPipelineForImage2Image, "inpaint": diffusers.AutoPipelineForInpainting}[task]
                pipe = auto.from_pipe(base)
            pipe.set_progress_bar_config(disable=True)
            self._pipes[key] = pipe
        return self._pipes[key]

    def scheduler_name(self, sampling: Sampling) -> str:
        """The table name of the scheduler a run uses (the model's own for "")."""
        return schedulers.find_scheduler(sampling.scheduler or self.default_scheduler_name()).name

    def use_scheduler(self, sampling: Sampling) -> str:
        """Switch every task pipeline to the run's scheduler; a no-op when it is already in use."""
        name = self.scheduler_name(sampling)
        if sampling.eta and not schedulers.takes_eta(name):
            raise UsageError(f"--eta {sampling.eta:g}: sampler {name} has no eta; these do: {', '.join(schedulers.eta_samplers())}")
        key = (name, sampling.noise_schedule.text, sampling.timestep_spacing)
        if key != self._scheduler_key:
            scheduler = schedulers.make_scheduler(name, sampling.noise_schedule, self._default_scheduler_config, sampling.timestep_spacing)
            for pipe in self._pipes.values():
                pipe.scheduler = scheduler
            self._scheduler_key = key
        return name

    # ---------------------------------------------------------------- tasks

    def size(self, width: int, height: int) -> tuple[int, int]:
        """The size a run makes: 0 means the model's native size (the values were checked where they entered)."""
        return width or self.native_size, height or self.native_size

    def _progress(self, on_step: StepCallback | None, total: int, cfg_cutoff: float = 0.0, conditioning: "Conditioner | None" = None, control_key: str | None = None):
        stop_guidance = total - int(round(total * cfg_cutoff)) if cfg_cutoff > 0 else None

        def callback(pipe, step, _timestep, kwargs):
            if on_step:
                on_step(step + 1, total)
            if conditioning is not None and kwargs.get("prompt_embeds") is not None:
                changed = conditioning.at(step + 1)  # prompt editing and alternation: the next step's text
                if changed is not None:
                    positive, negative = changed
                    kwargs["prompt_embeds"] = torch.cat([negative, positive]) if pipe.do_classifier_free_guidance else positive
            if stop_guidance is not None and step + 1 == stop_guidance and pipe.do_classifier_free_guidance:
                # diffusers' documented dynamic CFG: drop the unconditional half, guidance off from here on
                pipe._guidance_scale = 0.0
                for key in ("prompt_embeds", "add_text_embeds", "add_time_ids"):
                    if kwargs.get(key) is not None:
                        kwargs[key] = kwargs[key].chunk(2)[-1]
                # Inpainting doubles the mask (and a 9-channel UNet's masked-image latents) for guidance as well;
                # left doubled, the next step fails (9 channels) or blends a batch twice its size (4 channels).
                batch = kwargs["latents"].shape[0] if kwargs.get("latents") is not None else None
                for key in ("mask", "masked_image_latents"):
                    if kwargs.get(key) is not None and batch is not None and kwargs[key].shape[0] == 2 * batch:
                        kwargs[key] = kwargs[key].chunk(2)[-1]
                if control_key is not None:  # the control images were doubled for guidance too (one tensor per ControlNet)
                    value = kwargs[control_key]
                    kwargs[control_key] = [v.chunk(2)[-1] for v in value] if isinstance(value, list) else value.chunk(2)[-1]
            return kwargs

        return callback

    def _call_parameters(self, task: str, control: bool = False) -> set[str]:
        import inspect

        return set(inspect.signature(type(self.pipeline(task, control)).__call__).parameters)

    def train_sigmas(self):
        import numpy as np

        alphas = np.asarray(self._pipes["txt2img"].scheduler.alphas_cumprod, dtype=np.float64)
        return np.sqrt((1 - alphas) / alphas)

    def schedule_args(self, sampling: Sampling, num_inference_steps: int, width: int, height: int) -> dict:
        """num_inference_steps, or the custom sigmas/timesteps a continuous noise schedule gives."""
        from . import noise_schedules

        continuous = sampling.noise_schedule.continuous
        if continuous is None:
            return {"num_inference_steps": num_inference_steps}
        shift = sampling.logsnr_shift
        if shift == "auto":
            shift = noise_schedules.auto_shift(width, height, self.native_size)
        if continuous.family == "ays" and self.source.family == "sdxl":
            continuous = noise_schedules.ContinuousSchedule("ays-xl")  # Align Your Steps publishes levels per model family
        planned = noise_schedules.plan(continuous, num_inference_steps, self.train_sigmas(), float(shift))
        flag = schedulers.custom_schedule_flag(schedulers.find_scheduler(self.scheduler_name(sampling)))
        if flag == "sigmas":
            # Levels clipped to the model's range repeat; a repeated first level makes diffusers' Euler start
            # one step late (and run off the end), and a repeat is a zero-length step anyway: keep each once.
            levels = [float(x) for i, x in enumerate(planned.sigmas) if i == 0 or x != planned.sigmas[i - 1]]
            return {"sigmas": levels + [0.0]}  # diffusers also takes the level after the last step: clean, 0
        timesteps = sorted({int(round(t)) for t in planned.timesteps}, reverse=True)
        return {"timesteps": timesteps}

    def _run(self, task: str, jobs: list[ImageJob], sampling: Sampling, steps: int, on_step: StepCallback | None, num_inference_steps: int, size: tuple[int, int], control: ControlCall | None = None, start_noise=None, **task_args):
        """Every task's call: one forward batch with per-image prompts and seeds, on the run's scheduler."""
        pipe = self.pipeline(task, control is not None)
        self.use_scheduler(sampling)
        width, height = size
        task_args |= self.schedule_args(sampling, num_inference_steps, width, height)
        if self.runtime.compile:
            if self._compiled_size not in (None, (width, height)):
                print(f"warning: --compile: the image size changed to {width}x{height}; the UNet recompiles (slow, once per size)", file=sys.stderr)
            self._compiled_size = (width, height)
        if self.adapters is not None:
            self.adapters.activate(prompts.extract_loras(jobs[0].prompt)[1])  # the runner batches only images with the same LoRAs
        conditioning = Conditioner(PromptEncoder(pipe, sampling.clip_skip), jobs, steps)
        from .step_cache import interval

        self._start_step_cache(pipe, interval(sampling.step_cache, steps))
        self._start_token_merging(pipe, sampling.tome)
        if task == "txt2img" and (sampling.subseed_strength > 0 or sampling.ensd):
            task_args["latents"] = variation_noise(pipe, jobs, sampling.subseed_strength, width, height)
        if sampling.eta:
            task_args["eta"] = sampling.eta  # checked against the scheduler in use_scheduler's spec, where it entered
        control_key = None
        if control is not None:
            task_args |= _control_args(task, control)
            if sampling.cfg_cutoff > 0 and not control.guess_mode:  # guess mode never doubles the control images
                control_key = "image" if task == "txt2img" else "control_image"
        tensor_inputs = ("latents", "prompt_embeds", "add_text_embeds", "add_time_ids", "mask", "masked_image_latents", control_key)
        with torch.inference_mode(), circular_padding(pipe, sampling.tiling), self._backend(pipe, jobs[0].prompt, sampling.tiling), given_noise(pipe.scheduler, start_noise):
            return pipe(
                guidance_scale=sampling.cfg,
                generator=[devices.generator(j.seed + sampling.ensd if task == "txt2img" else j.seed) for j in jobs],
                callback_on_step_end=self._progress(on_step, steps, sampling.cfg_cutoff, conditioning, control_key),
                callback_on_step_end_tensor_inputs=[k for k in tensor_inputs if k in pipe._callback_tensor_inputs],
                **conditioning.first(),
                **task_args,
            ).images

    def _backend(self, pipe, prompt: str, tiling: bool):
        """torch runs the pipeline's own UNet; OpenVINO runs the UNet converted with this call's LoRAs and tiling."""
        import contextlib

        if self._openvino is None:
            return contextlib.nullcontext()
        from .openvino_unet import swapped

        loras = self.adapters.used(prompts.extract_loras(prompt)[1]) if self.adapters is not None else []
        self._openvino.use((*((f.sha256, w) for f, w in loras), ("tiling", tiling)))
        return swapped(pipe, self._openvino)

    def _start_step_cache(self, pipe, every: int) -> None:
        """Restart the UNet-call count: every sampling call (an image batch, an animation frame) opens with a full pass.

        Installed on the UNet the first time a run asks, so a run without it calls diffusers' UNet untouched.
        With --backend openvino the OpenVINO stand-in keeps the count and runs its own shallow graph."""
        if self._openvino is not None:
            if every > 1:
                from .step_cache import StepCache

                StepCache.check(pipe.unet)
            self._openvino.start(every)
            return
        if every > 1 and self._step_cache is None:
            from .step_cache import StepCache

            StepCache.check(pipe.unet)
            self._step_cache = StepCache(pipe.unet)
        if self._step_cache is not None:
            self._step_cache.start(every)

    def _start_token_merging(self, pipe, ratio: float) -> None:
        """As the step cache: installed the first time a run asks, then switched per sampling call."""
        if ratio > 0 and self._token_merging is None:
            from .token_merging import TokenMerging

            self._token_merging = TokenMerging(pipe.unet)
        if self._token_merging is not None:
            self._token_merging.start(ratio)

    def txt2img(self, jobs: list[ImageJob], sampling: Sampling, on_step: StepCallback | None = None, control: ControlCall | None = None, size: tuple[int, int] | None = None):
        """Generate one forward batch: every job shares the sampling settings, each has its own prompt and seed.

        `size`: where a control image set it; otherwise the request's (0: the model's native size)."""
        width, height = size or self.size(sampling.width, sampling.height)
        return self._run("txt2img", jobs, sampling, sampling.steps, on_step, sampling.steps, (width, height), control, width=width, height=height)

    def txt2img_latents(self, jobs: list[ImageJob], sampling: Sampling, on_step: StepCallback | None = None, control: ControlCall | None = None, size: tuple[int, int] | None = None):
        """txt2img stopped before the VAE: the latents (for a hires fix's latent upscale)."""
        width, height = size or self.size(sampling.width, sampling.height)
        return self._run("txt2img", jobs, sampling, sampling.steps, on_step, sampling.steps, (width, height), control, width=width, height=height, output_type="latent")

    def img2img_latents(self, jobs: list[ImageJob], latents, size: tuple[int, int], sampling: Sampling, denoise: Denoise, on_step: StepCallback | None = None, control: ControlCall | None = None):
        """img2img from latents rather than pictures (diffusers takes 4-channel latents as they are, without encoding)."""
        sized = {"width": size[0], "height": size[1]} if "width" in self._call_parameters("img2img", control is not None) else {}
        return self._run("img2img", jobs, sampling, denoise.steps_run, on_step, denoise.num_inference_steps, size, control, image=latents, strength=denoise.strength, **sized)

    def img2img(self, jobs: list[ImageJob], images: list, sampling: Sampling, denoise: Denoise, on_step: StepCallback | None = None, control: ControlCall | None = None, noise=None):
        """Noise each image to the plan's strength and denoise it from there (one forward batch, one size).

        `noise` (batch x latent_shape, numpy or torch) is the noise to start from instead of the seeds' draw."""
        width, height = images[0].size
        sized = {"width": width, "height": height} if "width" in self._call_parameters("img2img", control is not None) else {}
        return self._run("img2img", jobs, sampling, denoise.steps_run, on_step, denoise.num_inference_steps, (width, height), control, image=images, strength=denoise.strength, start_noise=noise, **sized)

    def latent_shape(self, width: int, height: int) -> tuple[int, int, int]:
        pipe = self._pipes["txt2img"]
        return (pipe.vae.config.latent_channels, height // pipe.vae_scale_factor, width // pipe.vae_scale_factor)

    def inpaint(self, jobs: list[ImageJob], images: list, masks: list, sampling: Sampling, denoise: Denoise, on_step: StepCallback | None = None, control: ControlCall | None = None):
        """Repaint where the masks are white; 4-channel and 9-channel (inpainting) UNets alike."""
        width, height = images[0].size
        return self._run("inpaint", jobs, sampling, denoise.steps_run, on_step, denoise.num_inference_steps, (width, height), control, image=images, mask_image=masks, strength=denoise.strength, width=width, height=height)


def _control_args(task: str, control: ControlCall) -> dict:
    """diffusers' ControlNet arguments: plain values for one ControlNet, lists for several.

    Each ControlNet's images go as one (batch, 3, H, W) tensor in [0, 1], the values diffusers makes of a
    picture: its img2img and inpaint pipelines refuse a list of per-image lists for several ControlNets.
    """
    import numpy as np

    single = len(control.weights) == 1
    per_unit = [torch.from_numpy(np.stack([np.asarray(per_image[unit], dtype=np.float32) / 255.0 for per_image in control.images])).permute(0, 3, 1, 2) for unit in range(len(control.weights))]
    images = per_unit[0] if single else per_unit

    def each(values: tuple[float, ...]):
        return float(values[0]) if single else [float(v) for v in values]

    return {
        "image" if task == "txt2img" else "control_image": images,  # txt2img's `image` is the control image; the others' is the init
        "controlnet_conditioning_scale": each(control.weights),
        "control_guidance_start": each(control.starts),
        "control_guidance_end": each(control.ends),
        "guess_mode": control.guess_mode,
    }
