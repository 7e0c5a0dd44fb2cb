"""Tiny random-weight models built in the tests, in the style of diffusers' get_dummy_components.

They run the exact loading and sampling code a real checkpoint runs, in milliseconds, offline.
"""

from __future__ import annotations

from pathlib import Path
from typing import Sequence


def _tokenizer(folder: Path):
    from transformers import CLIPTokenizer

    from scumble.training import world
    from scumble.training.tokenizer import write_tokenizer

    write_tokenizer(folder, world.caption_corpus(2000, seed=1))
    return CLIPTokenizer.from_pretrained(folder)


def _text_encoder(vocab_size: int, hidden: int = 32, projection: bool = False):
    import torch
    from transformers import CLIPTextConfig, CLIPTextModel, CLIPTextModelWithProjection

    torch.manual_seed(0)
    config = CLIPTextConfig(
        bos_token_id=vocab_size - 2,
        eos_token_id=vocab_size - 1,
        pad_token_id=vocab_size - 1,
        hidden_size=hidden,
        intermediate_size=37,
        layer_norm_eps=1e-05,
        num_attention_heads=4,
        num_hidden_layers=2,
        vocab_size=vocab_size,
        projection_dim=32,
    )
    return (CLIPTextModelWithProjection if projection else CLIPTextModel)(config)


def _vae():
    import torch
    from diffusers import AutoencoderKL

    torch.manual_seed(0)
    return AutoencoderKL(
        block_out_channels=[8, 16],
        in_channels=3,
        out_channels=3,
        down_block_types=["DownEncoderBlock2D"] * 2,
        up_block_types=["UpDecoderBlock2D"] * 2,
        latent_channels=4,
        norm_num_groups=4,
        sample_size=32,
    )


def build_sd(folder: Path, in_channels: int = 4, prediction_type: str = "epsilon") -> Path:
    import torch
    from diffusers import EulerDiscreteScheduler, StableDiffusionPipeline, UNet2DConditionModel

    tokenizer = _tokenizer(folder / "_tok")
    torch.manual_seed(0)
    unet = UNet2DConditionModel(
        block_out_channels=(8, 16),
        layers_per_block=1,
        sample_size=16,
        in_channels=in_channels,
        out_channels=4,
        down_block_types=("DownBlock2D", "CrossAttnDownBlock2D"),
        up_block_types=("CrossAttnUpBlock2D", "UpBlock2D"),
        cross_attention_dim=32,
        norm_num_groups=4,
        attention_head_dim=4,
    )
    scheduler = EulerDiscreteScheduler(beta_start=0.00085, beta_end=0.012, beta_schedule="scaled_linear", prediction_type=prediction_type, steps_offset=1)
    pipe = StableDiffusionPipeline(
        vae=_vae(),
        text_encoder=_text_encoder(len(tokenizer)),
        tokenizer=tokenizer,
        unet=unet,
        scheduler=scheduler,
        safety_checker=None,
        feature_extractor=None,
        requires_safety_checker=False,
    )
    pipe.save_pretrained(folder)
    return folder


def build_sdxl(folder: Path) -> Path:
    import torch
    from diffusers import EulerDiscreteScheduler, StableDiffusionXLPipeline, UNet2DConditionModel

    tokenizer = _tokenizer(folder / "_tok")
    torch.manual_seed(0)
    unet = UNet2DConditionModel(
        block_out_channels=(8, 16),
        layers_per_block=1,
        sample_size=16,
        in_channels=4,
        out_channels=4,
        down_block_types=("DownBlock2D", "CrossAttnDownBlock2D"),
        up_block_types=("CrossAttnUpBlock2D", "UpBlock2D"),
        attention_head_dim=(2, 4),
        use_linear_projection=True,
        addition_embed_type="text_time",
        addition_time_embed_dim=8,
        transformer_layers_per_block=(1, 2),
        projection_class_embeddings_input_dim=80,  # 6 * 8 time ids + 32 pooled text
        cross_attention_dim=64,  # the two text encoders' hidden sizes, concatenated
        norm_num_groups=4,
    )
    scheduler = EulerDiscreteScheduler(beta_start=0.00085, beta_end=0.012, beta_schedule="scaled_linear", steps_offset=1, timestep_spacing="leading")
    pipe = StableDiffusionXLPipeline(
        vae=_vae(),
        text_encoder=_text_encoder(len(tokenizer)),
        text_encoder_2=_text_encoder(len(tokenizer), projection=True),
        tokenizer=tokenizer,
        tokenizer_2=tokenizer,
        unet=unet,
        scheduler=scheduler,
    )
    pipe.save_pretrained(folder)
    return folder


def pixels(path):
    import numpy as np
    from PIL import Image

    with Image.open(path) as img:
        return np.asarray(img.convert("RGB"))


def build_tiny_autoencoder(folder: Path, levels: int = 2, latent_channels: int = 4) -> Path:
    """A random AutoencoderTiny (TAESD's architecture) matching build_sd's 2-level VAE."""
    import torch
    from diffusers import AutoencoderTiny

    torch.manual_seed(1)
    AutoencoderTiny(
        encoder_block_out_channels=[8] * levels,
        decoder_block_out_channels=[8] * levels,
        num_encoder_blocks=[1] * levels,
        num_decoder_blocks=[1] * levels,
        latent_channels=latent_channels,
    ).save_pretrained(folder)
    return folder


def build_depth_model(folder: Path) -> Path:
    """A tiny random Depth Anything (a DINOv2 backbone and DPT head) with its image processor, as a hub model folder holds them."""
    import torch
    from transformers import DepthAnythingConfig, DepthAnythingForDepthEstimation, Dinov2Config, DPTImageProcessor

    torch.manual_seed(0)
    backbone = Dinov2Config(hidden_size=16, num_hidden_layers=4, num_attention_heads=2, intermediate_size=32, image_size=28, patch_size=7,
                            out_features=["stage1", "stage2", "stage3", "stage4"], reshape_hidden_states=False)
    config = DepthAnythingConfig(backbone_config=backbone, reassemble_hidden_size=16, neck_hidden_sizes=[8, 8, 8, 8], fusion_hidden_size=8, head_hidden_size=8, patch_size=7)
    DepthAnythingForDepthEstimation(config).save_pretrained(folder)
    DPTImageProcessor(size={"height": 28, "width": 28}, keep_aspect_ratio=True, ensure_multiple_of=7).save_pretrained(folder)
    return folder


def build_pose_model(folder: Path) -> Path:
    """A tiny random ViTPose (17 COCO points) with its image processor, as a hub model folder holds them."""
    import torch
    from transformers import VitPoseBackboneConfig, VitPoseConfig, VitPoseForPoseEstimation
    from transformers.models.vitpose.image_processing_pil_vitpose import VitPoseImageProcessorPil

    torch.manual_seed(0)
    backbone = VitPoseBackboneConfig(image_size=[32, 24], patch_size=[8, 8], hidden_size=16, num_hidden_layers=2, num_attention_heads=2, part_features=4, out_indices=[2])
    config = VitPoseConfig(backbone_config=backbone, use_simple_decoder=True, scale_factor=2, num_labels=17)
    model = VitPoseForPoseEstimation(config)
    with torch.no_grad():
        model.head.conv.weight.mul_(0).add_(torch.randn_like(model.head.conv.weight))  # lively heatmaps: points score above the threshold
    model.save_pretrained(folder)
    VitPoseImageProcessorPil(size={"height": 32, "width": 24}).save_pretrained(folder)
    return folder


def resumes_byte_identical(run, args, folder: Path, full: str, drop: Sequence[int], suffix: str = ".mp4") -> None:
    """Render `cut` like `full`, delete frames `drop` and the video, resume: the video must equal `full`'s byte for byte.

    `run(*args, "-o", name, ...)` runs animate; `full` (a video name in `folder`) is already made.
    """
    assert run(*args, "-o", f"cut{suffix}").exit_code == 0
    for i in drop:
        (folder / "cut.frames" / f"{i:09}.png").unlink()
    (folder / f"cut{suffix}").unlink()
    resumed = run(*args, "-o", f"cut{suffix}", "--resume")
    assert resumed.exit_code == 0, resumed.stderr
    assert (folder / f"cut{suffix}").read_bytes() == (folder / full).read_bytes()


def rife_flownet(encoder: str = "head", widths: Sequence[int] = (24, 16, 16, 8), features: int = 4, hands_on: int = 8, depth: int = 2) -> dict:
    """A RIFE 4.x flownet.pkl's state dict, written out by hand in the published key layout (zeros, `module.` prefixed).

    encoder: "none" (4.5/4.6), "pair" (4.7-4.9: encode.0, encode.1), "head" (4.17 on: encode.cnn0..cnn3).
    hands_on: channels a block hands to the next beyond flow and mask (8 in 4.25/4.26; 0 gives 4.6's unused sixth).
    The real files have blocks 192, 128, 96, 64 (and 32) wide with 8 residual convs; the loader reads sizes from the file.
    """
    import torch

    state: dict = {}

    def put(key: str, *shape: int) -> None:
        state[f"module.{key}"] = torch.zeros(shape)

    if encoder == "none":
        features = 0
    elif encoder == "pair":
        put("encode.0.weight", 8, 3, 3, 3), put("encode.0.bias", 8)
        put("encode.1.weight", 8, features, 4, 4), put("encode.1.bias", features)
    else:
        for i in range(3):
            put(f"encode.cnn{i}.weight", 8, 3 if i == 0 else 8, 3, 3), put(f"encode.cnn{i}.bias", 8)
        put("encode.cnn3.weight", 8, features, 4, 4), put("encode.cnn3.bias", features)
    out = 5 + (hands_on or 1)
    for i, c in enumerate(widths):
        cin = 7 + 2 * features if i == 0 else 12 + 2 * features + hands_on
        put(f"block{i}.conv0.0.0.weight", c // 2, cin, 3, 3), put(f"block{i}.conv0.0.0.bias", c // 2)
        put(f"block{i}.conv0.1.0.weight", c, c // 2, 3, 3), put(f"block{i}.conv0.1.0.bias", c)
        for j in range(depth):
            put(f"block{i}.convblock.{j}.conv.weight", c, c, 3, 3), put(f"block{i}.convblock.{j}.conv.bias", c)
            state[f"module.block{i}.convblock.{j}.beta"] = torch.ones(1, c, 1, 1)
        put(f"block{i}.lastconv.0.weight", c, 4 * out, 4, 4), put(f"block{i}.lastconv.0.bias", 4 * out)
    return state
