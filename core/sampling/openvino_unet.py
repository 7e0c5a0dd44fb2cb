"""`--backend openvino`: the UNet converted once to OpenVINO, cached on disk, and run by OpenVINO on the CPU.

benchmarks/bench_peers.py measured OpenVINO's CPU plugin well ahead of torch per UNet step on SD 1.5, so the
UNet, where nearly all the time goes, runs there; everything else (text encoder, samplers, schedules, VAE,
LoRA loading) stays the torch pipeline's, so every task and option that doesn't reach inside the UNet works
unchanged. The wrapper stands in for the torch UNet only while a pipeline runs (`swapped`): LoRAs load and
switch on the torch UNet as always, and each conversion captures the torch UNet's state at that moment.

Converted models are keyed by everything that changes the UNet's function (the model, its config, the LoRAs
acting and their weights, seamless tiling, the precision) and saved under $XDG_CACHE_HOME/scumble/openvino/KEY/,
so a model is converted once per LoRA set, not once per run. With a step cache (`--step-cache N`, counted as
step_cache.py counts it in torch) a second graph, the UNet's shallow path, is converted beside the whole one,
and the whole one also returns the deep feature the shallow calls reuse. Each input shape is compiled on its
own (static shapes are faster in OpenVINO than dynamic ones) when a run first meets it.

The torch UNet is kept for conversions and LoRAs only, so its weights are parked (`park`): saved once beside the
conversions and mapped back from that file, so pages nothing reads cost no memory (1.7 GB less at SD 1.5's peak).

An SD 1.5 entry is 1.7 GB and a LoRA weight is part of its key, so the cache is kept under a size
(SCUMBLE_OPENVINO_CACHE_GB, 20 by default): after each conversion the entries used longest ago go,
never one this process uses. It holds nothing but conversions it can make again.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
from pathlib import Path

import torch

from ..errors import ModelError, UsageError
from .step_cache import reused_feature, shallow_forward, up_block_input

FORMAT = 2  # bump when the converted graph's inputs or outputs change: old cache entries are then ignored

# --backend auto: OpenVINO measured 2.9x torch bf16 per step on SD 1.5 (860M parameters), where a picture takes
# a minute. A small UNet (the built-in model: 0.28 s a picture in torch) stays in torch, so its pictures stay the
# README's and the tests' on every install, with or without the extra; --backend openvino still takes it.
AUTO_MIN_PARAMETERS = 300_000_000
CONVERSION_PEAK = 3.5  # a conversion's peak memory per byte of fp32 UNet: 11.4 GiB measured for SD 1.5's 3.4 GB


def auto_declines(unet) -> str:
    """Why --backend auto keeps this UNet on torch, or "" when OpenVINO should run it."""
    import psutil

    parameters = sum(p.numel() for p in unet.parameters())
    if parameters < AUTO_MIN_PARAMETERS:
        return f"a small UNet ({parameters / 1e6:.0f}M parameters) runs faster unconverted"
    if getattr(unet.config, "time_cond_proj_dim", None):
        return "this UNet takes a guidance embedding (LCM), which the converted graph does not"
    need, available = CONVERSION_PEAK * parameters * 4, psutil.virtual_memory().available
    if available < need:
        return f"converting it needs about {need / 2**30:.0f} GiB of memory and {available / 2**30:.1f} GiB is free"
    return ""


def cache_root() -> Path:
    return Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "scumble" / "openvino"


def cache_limit() -> int:
    """Bytes the cache may hold: SCUMBLE_OPENVINO_CACHE_GB (a number, 0 for no limit), else 20 GB."""
    text = os.environ.get("SCUMBLE_OPENVINO_CACHE_GB", "20")
    try:
        gigabytes = float(text)
    except ValueError:
        raise UsageError(f"SCUMBLE_OPENVINO_CACHE_GB={text[:40]!r}: must be a number of gigabytes (0: no limit)") from None
    if not gigabytes >= 0:
        raise UsageError(f"SCUMBLE_OPENVINO_CACHE_GB={text[:40]!r}: must be a number of gigabytes (0: no limit)")
    return int(gigabytes * 1e9)


def _size(folder: Path) -> int:
    return sum(f.stat().st_size for f in folder.iterdir() if f.is_file())


def prune(root: Path, keep: set[str], limit: int) -> list[str]:
    """Remove the entries used longest ago (their folder's modification time, touched on each use) until the
    cache fits `limit` bytes; never one named in `keep`. Returns the names removed."""
    import shutil

    if limit <= 0 or not root.is_dir():
        return []
    entries = sorted((p for p in root.iterdir() if p.is_dir() and not p.name.endswith(".partial")), key=lambda p: p.stat().st_mtime)
    total = sum(_size(p) for p in entries)
    removed = []
    for entry in entries:
        if total <= limit:
            break
        if entry.name in keep:
            continue
        total -= _size(entry)
        shutil.rmtree(entry, ignore_errors=True)
        removed.append(entry.name)
    return removed


class _Whole(torch.nn.Module):
    """The UNet as a function of plain tensors, the form OpenVINO's PyTorch converter traces: its output, and
    the input of its last up block (the deep feature a step cache keeps)."""

    def __init__(self, unet, text_time: bool):
        super().__init__()
        self.unet, self.text_time = unet, text_time

    def forward(self, sample, timestep, encoder_hidden_states, text_embeds=None, time_ids=None):
        added = {"text_embeds": text_embeds, "time_ids": time_ids} if self.text_time else None
        kept = []
        hook = self.unet.up_blocks[-1].register_forward_pre_hook(lambda _m, args, kwargs: kept.append(up_block_input(args, kwargs)), with_kwargs=True)
        try:
            out = self.unet(sample, timestep, encoder_hidden_states, added_cond_kwargs=added, return_dict=False)[0]
        finally:
            hook.remove()
        return out, kept[0]


class _Shallow(torch.nn.Module):
    """The shallow path against a kept deep feature (core/sampling/step_cache.py's shallow_forward)."""

    def __init__(self, unet, text_time: bool):
        super().__init__()
        self.unet, self.text_time = unet, text_time

    def forward(self, sample, timestep, encoder_hidden_states, deep, text_embeds=None, time_ids=None):
        added = {"text_embeds": text_embeds, "time_ids": time_ids} if self.text_time else None
        return shallow_forward(self.unet, deep, sample, timestep, encoder_hidden_states, added_cond_kwargs=added, return_dict=False)[0]


GRAPHS = {"whole": _Whole, "shallow": _Shallow}


class OpenVINOUNet(torch.nn.Module):
    """Called as diffusers calls a UNet2DConditionModel; runs the OpenVINO model converted for the active LoRAs."""

    def __init__(self, unet, precision: torch.dtype, identity: str, notify=lambda message: None):
        super().__init__()
        if getattr(unet.config, "time_cond_proj_dim", None):
            raise ModelError("--backend openvino: this UNet takes a guidance embedding (an LCM-distilled model); use --backend torch")
        self.torch_unet = unet
        self.precision = precision
        self.identity = identity  # the model's location and weights hash: part of every cache key
        self.limit = cache_limit()  # read now: a bad value is refused before a conversion, not after
        self.variant: tuple = ()  # what the engine has changed in the torch UNet: LoRAs acting, tiling
        self._text_time = getattr(unet.config, "addition_embed_type", None) == "text_time"
        self._compiled: dict[tuple, object] = {}  # (cache key, input shapes) -> compiled model
        self._keys: dict[tuple, str] = {}  # (graph, variant) -> cache key, so a UNet call does not hash the config
        self.every, self.calls, self._deep = 1, 0, None  # the step cache, as StepCache keeps it
        self.notify = notify  # told before a conversion, which takes minutes for SD 1.5

    # the pipelines read these from the UNet
    @property
    def config(self):
        return self.torch_unet.config

    @property
    def dtype(self) -> torch.dtype:
        return self.torch_unet.dtype

    @property
    def device(self) -> torch.device:
        return torch.device("cpu")

    def __getattr__(self, name: str):
        try:
            return super().__getattr__(name)
        except AttributeError:
            return getattr(super().__getattr__("torch_unet"), name)  # what else a pipeline reads (SDXL's add_embedding, ...)

    def use(self, variant: tuple) -> None:
        """The LoRAs acting (with their weights) and the tiling: the next call runs the model converted with these."""
        self.variant = tuple(variant)

    def start(self, every: int) -> None:
        """Before each sampling call: restart the UNet-call count (1: every call runs the whole graph)."""
        self.every, self.calls, self._deep = every, 0, None

    def cache_key(self, graph: str = "whole") -> str:
        if (graph, self.variant) in self._keys:
            return self._keys[(graph, self.variant)]
        import openvino

        fields = {
            "format": FORMAT,
            "graph": graph,
            "identity": self.identity,
            "config": {k: v for k, v in dict(self.torch_unet.config).items() if not k.startswith("_")},
            "variant": self.variant,
            "precision": str(self.precision),
            "openvino": openvino.__version__,
        }
        key = self._keys[(graph, self.variant)] = hashlib.sha256(json.dumps(fields, sort_keys=True, default=str).encode()).hexdigest()[:24]
        return key

    def park(self) -> None:
        """Map the torch UNet's weights from a file in the cache instead of holding them: a run reads them only to
        convert or to take a LoRA, and a mapped page is read back when touched and written only to memory (the
        mapping is private), so the UNet works exactly as before, in a quarter of the memory at SD 1.5's peak."""
        key = self.cache_key("torch")
        path = cache_root() / key / "unet.pt"
        if not path.exists():
            import shutil

            partial = path.parent.with_name(key + ".partial")
            try:
                partial.mkdir(parents=True, exist_ok=True)
                torch.save(self.torch_unet.state_dict(), partial / "unet.pt")
                os.replace(partial, path.parent)
            except OSError:  # a full or read-only cache: the weights stay in memory, as they were
                shutil.rmtree(partial, ignore_errors=True)
                return
            prune(cache_root(), set(self._keys.values()), self.limit)
        os.utime(path.parent)
        self.torch_unet.load_state_dict(torch.load(path, mmap=True, weights_only=True), assign=True)

    def forward(self, sample, timestep, encoder_hidden_states, timestep_cond=None, cross_attention_kwargs=None, added_cond_kwargs=None, down_block_additional_residuals=None, mid_block_additional_residual=None, return_dict=True, **unused):
        if down_block_additional_residuals is not None or mid_block_additional_residual is not None:
            raise ModelError("--backend openvino runs the UNet without ControlNet residuals; use --backend torch with --controlnet")
        batch = sample.shape[0]
        inputs = {
            "sample": sample.float().contiguous(),
            "timestep": torch.as_tensor(timestep, dtype=torch.float32).reshape(-1).expand(batch).contiguous(),
            "encoder_hidden_states": encoder_hidden_states.float().contiguous(),
        }
        if self._text_time:
            inputs["text_embeds"] = added_cond_kwargs["text_embeds"].float().contiguous()
            inputs["time_ids"] = added_cond_kwargs["time_ids"].float().contiguous()
        index, self.calls = self.calls, self.calls + 1
        deep = reused_feature(self.every, index, self._deep, batch)
        if deep is not None:
            out = self._run("shallow", inputs | {"deep": deep.float().contiguous()})[0]
        else:
            out, kept = self._run("whole", inputs)
            self._deep = torch.from_numpy(kept.copy()) if self.every > 1 else None
        out = torch.from_numpy(out.copy()).to(sample.dtype)
        if not return_dict:
            return (out,)
        from diffusers.models.unets.unet_2d_condition import UNet2DConditionOutput

        return UNet2DConditionOutput(sample=out)

    def _run(self, graph: str, inputs: dict):
        results = self._compiled_for(graph, inputs)({k: v.numpy() for k, v in inputs.items()})
        return [results[i] for i in range(len(results))]

    # ---------------------------------------------------------------- conversion and compilation

    def _compiled_for(self, graph: str, inputs: dict):
        key = self.cache_key(graph)
        shapes = tuple((name, tuple(value.shape)) for name, value in inputs.items())
        if (key, shapes) not in self._compiled:
            import openvino

            model = self._model(graph, key, inputs)
            model.reshape({name: openvino.PartialShape(list(shape)) for name, shape in shapes})
            # No CACHE_DIR: a compiled blob per shape was 1.7 GB on disk for SD 1.5 and raised peak memory by
            # 1.6 GB, to save 1.5 s of a 20 s run (measured at 512x512).
            core = openvino.Core()
            hint = "f32" if self.precision == torch.float32 else "bf16"
            try:
                self._compiled[(key, shapes)] = core.compile_model(model, "CPU", {"INFERENCE_PRECISION_HINT": hint})
            except RuntimeError:
                if hint == "f32":
                    raise
                # a CPU without bf16 units: OpenVINO's own default precision for it
                self._compiled[(key, shapes)] = core.compile_model(model, "CPU")
        return self._compiled[(key, shapes)]

    def _model(self, graph: str, key: str, inputs: dict):
        """The converted model for `key`, read afresh (compiling keeps its own copy of the weights): from the
        cache, else converted from the torch UNet and saved."""
        import openvino

        folder = cache_root() / key
        if not (folder / "unet.xml").exists():
            self.notify(f"converting the UNet for OpenVINO ({graph} graph), once: it is cached in {cache_root()} (--backend torch runs without it)")
            self._convert(GRAPHS[graph], folder, inputs)
            prune(cache_root(), set(self._keys.values()), self.limit)
        os.utime(folder)  # used now: the last to go when the cache is pruned
        return openvino.Core().read_model(folder / "unet.xml")

    def _convert(self, graph, folder: Path, inputs: dict) -> None:
        import shutil
        import warnings

        import openvino

        unet = self.torch_unet
        # Traced in fp32 (the converter's bf16 graph would take bf16 inputs, which numpy cannot hold); the UNet gets
        # its own tensors back afterwards, so parked weights stay mapped from their file.
        kept = {name: t.data for name, t in [*unet.named_parameters(), *unet.named_buffers()]}
        partial = folder.with_name(folder.name + ".partial")
        shutil.rmtree(partial, ignore_errors=True)
        partial.mkdir(parents=True)
        try:
            unet.float()
            with torch.no_grad(), warnings.catch_warnings():
                warnings.simplefilter("ignore")  # the tracer's TracerWarnings on diffusers' shape checks
                model = openvino.convert_model(graph(unet, self._text_time), example_input=dict(inputs))
            for port, name in zip(model.inputs, inputs):
                port.get_tensor().set_names({name})
            model.reshape({name: openvino.PartialShape([-1] * value.dim()) for name, value in inputs.items()})
            # weights kept in fp16 on disk (half the size) unless fp32 was asked for
            openvino.save_model(model, partial / "unet.xml", compress_to_fp16=self.precision != torch.float32)
            os.replace(partial, folder)
        finally:
            for name, t in [*unet.named_parameters(), *unet.named_buffers()]:
                t.data = kept[name]
            shutil.rmtree(partial, ignore_errors=True)


@contextlib.contextmanager
def swapped(pipe, unet: OpenVINOUNet):
    """The pipeline calls the OpenVINO stand-in for the length of one run, then has its torch UNet back."""
    original = pipe.unet
    object.__setattr__(pipe, "unet", unet)  # around diffusers' __setattr__, which would rewrite the pipeline's config
    try:
        yield
    finally:
        object.__setattr__(pipe, "unet", original)
