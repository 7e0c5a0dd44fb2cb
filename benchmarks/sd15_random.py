"""A random-weight SD 1.5 with the real architecture, as one original-layout (LDM/A1111) .safetensors file.

Load time, memory and speed depend on the architecture and the file's dtype, not on the weights, so
benchmarks use this instead of a download. Built once per folder, in fp32 and fp16 (the two dtypes
real checkpoints come in):

    from sd15_random import checkpoint
    path = checkpoint("fp32")            # builds both files under ~/.cache/scumble/sd15-random on first use

    python benchmarks/sd15_random.py [FOLDER]
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_FOLDER = Path(os.environ.get("SCUMBLE_SD15_RANDOM", Path.home() / ".cache" / "scumble" / "sd15-random"))
DTYPES = ("fp32", "fp16")


def checkpoint(dtype: str = "fp32", folder: Path | str = DEFAULT_FOLDER) -> Path:
    """The path of the `dtype` file ("fp32" or "fp16"), building both files first if either is missing."""
    folder = Path(folder)
    paths = {name: folder / f"sd15-random-{name}.safetensors" for name in DTYPES}
    if not all(p.exists() for p in paths.values()):
        _build(paths)
    return paths[dtype]


def _build(paths: dict[str, Path]) -> None:
    import torch
    from diffusers import AutoencoderKL, UNet2DConditionModel
    from safetensors.torch import save_file
    from transformers import CLIPTextConfig, CLIPTextModel

    sys.path.insert(0, str(ROOT / "tests"))
    from ldm_format import unet_to_ldm, vae_to_ldm  # the tests' diffusers -> original layout writer

    configs = ROOT / "core" / "loading" / "configs" / "sd15"
    torch.manual_seed(0)
    unet = UNet2DConditionModel.from_config(json.loads((configs / "unet" / "config.json").read_text())).eval()
    vae = AutoencoderKL.from_config(json.loads((configs / "vae" / "config.json").read_text())).eval()
    text_encoder = CLIPTextModel(CLIPTextConfig.from_pretrained(configs / "text_encoder")).eval()
    next(iter(paths.values())).parent.mkdir(parents=True, exist_ok=True)
    for name, path in paths.items():
        if name == "fp16":
            for model in (unet, vae, text_encoder):
                model.half()  # in place, one parameter at a time: no second full copy
        state = unet_to_ldm(unet.state_dict(), unet.config.layers_per_block)
        state |= vae_to_ldm(vae.state_dict(), len(vae.config.down_block_types))
        for key, value in text_encoder.state_dict().items():
            state["cond_stage_model.transformer." + (key if key.startswith("text_model.") else "text_model." + key)] = value
        tmp = path.with_suffix(".tmp")
        save_file({k: v.contiguous() for k, v in state.items()}, tmp)
        os.replace(tmp, path)
        del state


if __name__ == "__main__":
    folder = Path(sys.argv[1]) if len(sys.argv) > 1 else DEFAULT_FOLDER
    for dtype in DTYPES:
        print(checkpoint(dtype, folder))
