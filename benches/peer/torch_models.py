"""The cdm denoisers re-built in plain PyTorch, layer for layer and parameter for parameter.

- `Mlp`: `cdm_models::Mlp` with `MlpConfig::default()` (crates/cdm-models/src/mlp.rs), the paper's
  2-D residual MLP conditioned on the continuous log-SNR.
- `Unet`: `cdm_models::Unet` (crates/cdm-models/src/unet/), diffusers' `UNet2DModel` layout with
  DownBlock2D / AttnDownBlock2D / UpBlock2D / AttnUpBlock2D blocks, one attention head, additive
  ("default") time conditioning, SiLU and no dropout.

PyTorch's default initialisation (U(+-1/sqrt(fan_in)) for linear and conv layers, ones and zeros
for norms) is the distribution cdm's layers draw from, so the networks start in the same regime;
the weights themselves differ (different RNGs).
"""

import math

import torch
import torch.nn.functional as F
from torch import nn


def log_snr_embedding(log_snr, dim, scale):
    """cdm's MLP embedding: interleaved [cos f0, sin f0, cos f1, sin f1, ...] of scale * log-SNR."""
    half = dim // 2
    freqs = torch.tensor([scale * 1e-4 ** (2.0 * k / dim) for k in range(half)], dtype=torch.float64)
    args = log_snr[:, None] * freqs.to(log_snr.dtype)[None, :]
    return torch.stack([args.cos(), args.sin()], dim=-1).flatten(1)


def timestep_embedding(timesteps, dim, flip_sin_to_cos=True, freq_shift=0.0):
    """diffusers' `get_timestep_embedding` (max_period 10 000) for an even `dim`."""
    half = dim // 2
    freqs = torch.tensor(
        [math.exp(-math.log(10_000.0) * k / (half - freq_shift)) for k in range(half)], dtype=torch.float64
    )
    args = timesteps[:, None] * freqs.to(timesteps.dtype)[None, :]
    sin, cos = args.sin(), args.cos()
    return torch.cat([cos, sin], dim=1) if flip_sin_to_cos else torch.cat([sin, cos], dim=1)


# ---------------------------------------------------------------------------------------------
# The paper's residual MLP
# ---------------------------------------------------------------------------------------------


class ResidualBlock(nn.Module):
    """h <- LayerNorm(h + W2 GELU(W1 (h + e) + b1) + b2), exact (erf) GELU, LayerNorm eps 1e-5."""

    def __init__(self, d_model):
        super().__init__()
        self.linear1 = nn.Linear(d_model, d_model)
        self.linear2 = nn.Linear(d_model, d_model)
        self.norm = nn.LayerNorm(d_model, eps=1e-5)

    def forward(self, h, embedding):
        update = self.linear2(F.gelu(self.linear1(h + embedding)))
        return self.norm(h + update)


class Mlp(nn.Module):
    """`cdm_models::Mlp` with `MlpConfig::default()`: dim 2, d_model 128, 2 blocks, scale 50."""

    def __init__(self, dim=2, d_model=128, blocks=2, log_snr_scale=50.0):
        super().__init__()
        self.d_model, self.log_snr_scale = d_model, log_snr_scale
        self.input = nn.Linear(dim, d_model)
        self.blocks = nn.ModuleList([ResidualBlock(d_model) for _ in range(blocks)])
        self.output = nn.Linear(d_model, dim)

    def forward(self, z, log_snr):
        """z: (B, dim); log_snr: (B,) in z's dtype. Returns eps-hat (B, dim)."""
        embedding = log_snr_embedding(log_snr, self.d_model, self.log_snr_scale)
        h = self.input(z)
        for block in self.blocks:
            h = block(h, embedding)
        return self.output(h)


# ---------------------------------------------------------------------------------------------
# diffusers' UNet2DModel
# ---------------------------------------------------------------------------------------------


class ResnetBlock2D(nn.Module):
    """Pre-norm ResNet block with the time embedding added between the two 3x3 convolutions."""

    def __init__(self, in_channels, out_channels, temb_channels, groups, eps):
        super().__init__()
        self.norm1 = nn.GroupNorm(groups, in_channels, eps=eps)
        self.conv1 = nn.Conv2d(in_channels, out_channels, 3, padding=1)
        self.time_emb_proj = nn.Linear(temb_channels, out_channels)
        self.norm2 = nn.GroupNorm(groups, out_channels, eps=eps)
        self.conv2 = nn.Conv2d(out_channels, out_channels, 3, padding=1)
        self.conv_shortcut = nn.Conv2d(in_channels, out_channels, 1) if in_channels != out_channels else None

    def forward(self, x, temb):
        h = self.conv1(F.silu(self.norm1(x)))
        h = h + self.time_emb_proj(F.silu(temb))[:, :, None, None]
        h = self.conv2(F.silu(self.norm2(h)))
        shortcut = self.conv_shortcut(x) if self.conv_shortcut is not None else x
        return shortcut + h


class Attention(nn.Module):
    """Single-head self-attention over positions, with GroupNorm and a residual connection.

    Written as matmul -> softmax -> matmul (what cdm computes), not `scaled_dot_product_attention`.
    """

    def __init__(self, channels, groups, eps):
        super().__init__()
        self.group_norm = nn.GroupNorm(groups, channels, eps=eps)
        self.to_q = nn.Linear(channels, channels)
        self.to_k = nn.Linear(channels, channels)
        self.to_v = nn.Linear(channels, channels)
        self.to_out = nn.ModuleList([nn.Linear(channels, channels)])

    def forward(self, x):
        batch, channels, height, width = x.shape
        tokens = self.group_norm(x).reshape(batch, channels, height * width).transpose(1, 2)
        query, key, value = self.to_q(tokens), self.to_k(tokens), self.to_v(tokens)
        weights = torch.softmax(query @ key.transpose(1, 2) / math.sqrt(channels), dim=-1)
        out = self.to_out[0](weights @ value).transpose(1, 2).reshape(batch, channels, height, width)
        return out + x


def attention_layers(present, count, channels, groups, eps):
    """One attention layer per ResNet block in Attn* blocks, none otherwise."""
    return nn.ModuleList([Attention(channels, groups, eps) for _ in range(count)] if present else [])


class DownBlock(nn.Module):
    """DownBlock2D / AttnDownBlock2D: layers x (resnet [-> attention]), then a stride-2 conv."""

    def __init__(self, in_channels, out_channels, layers, attention, downsample, temb, groups, eps):
        super().__init__()
        self.resnets = nn.ModuleList()
        for j in range(layers):
            self.resnets.append(ResnetBlock2D(in_channels if j == 0 else out_channels, out_channels, temb, groups, eps))
        self.attentions = attention_layers(attention, layers, out_channels, groups, eps)
        conv = nn.Conv2d(out_channels, out_channels, 3, stride=2, padding=1)
        # diffusers' key: downsamplers.0.conv
        self.downsamplers = nn.ModuleList([nn.ModuleDict({"conv": conv})]) if downsample else None

    def forward(self, h, temb, skips):
        for j, resnet in enumerate(self.resnets):
            h = resnet(h, temb)
            if self.attentions:
                h = self.attentions[j](h)
            skips.append(h)
        if self.downsamplers is not None:
            h = self.downsamplers[0]["conv"](h)
            skips.append(h)
        return h


class MidBlock(nn.Module):
    """UNetMidBlock2D: resnet -> attention -> resnet."""

    def __init__(self, channels, temb, groups, eps):
        super().__init__()
        self.resnets = nn.ModuleList([ResnetBlock2D(channels, channels, temb, groups, eps) for _ in range(2)])
        self.attentions = nn.ModuleList([Attention(channels, groups, eps)])

    def forward(self, h, temb):
        h = self.resnets[0](h, temb)
        h = self.attentions[0](h)
        return self.resnets[1](h, temb)


class UpBlock(nn.Module):
    """UpBlock2D / AttnUpBlock2D: layers x (cat skip -> resnet [-> attention]), then nearest x2 + conv."""

    def __init__(self, prev_channels, out_channels, skip_in_channels, layers, attention, upsample, temb, groups, eps):
        super().__init__()
        self.resnets = nn.ModuleList()
        for j in range(layers):
            skip = skip_in_channels if j == layers - 1 else out_channels
            below = prev_channels if j == 0 else out_channels
            self.resnets.append(ResnetBlock2D(below + skip, out_channels, temb, groups, eps))
        self.attentions = attention_layers(attention, layers, out_channels, groups, eps)
        conv = nn.Conv2d(out_channels, out_channels, 3, padding=1)
        # diffusers' key: upsamplers.0.conv
        self.upsamplers = nn.ModuleList([nn.ModuleDict({"conv": conv})]) if upsample else None

    def forward(self, h, temb, skips):
        for j, resnet in enumerate(self.resnets):
            h = resnet(torch.cat([h, skips.pop()], dim=1), temb)
            if self.attentions:
                h = self.attentions[j](h)
        if self.upsamplers is not None:
            h = self.upsamplers[0]["conv"](F.interpolate(h, scale_factor=2.0, mode="nearest"))
        return h


class Unet(nn.Module):
    """diffusers' `UNet2DModel` with the config cdm's benches use (see `Unet.cifar32`, `Unet.mnist28`)."""

    def __init__(self, in_channels, block_out_channels, down_attention, up_attention, layers_per_block=2, groups=32):
        super().__init__()
        eps, channels, levels = 1e-5, list(block_out_channels), len(block_out_channels)
        self.base_channels = channels[0]
        temb = 4 * channels[0]
        self.conv_in = nn.Conv2d(in_channels, channels[0], 3, padding=1)
        self.time_embedding = nn.ModuleDict(
            {"linear_1": nn.Linear(channels[0], temb), "linear_2": nn.Linear(temb, temb)}
        )
        self.down_blocks = nn.ModuleList()
        for i in range(levels):
            in_ch, downsample = channels[max(i - 1, 0)], i + 1 < levels
            block = DownBlock(in_ch, channels[i], layers_per_block, down_attention[i], downsample, temb, groups, eps)
            self.down_blocks.append(block)
        self.mid_block = MidBlock(channels[-1], temb, groups, eps)
        rev = channels[::-1]
        self.up_blocks = nn.ModuleList()
        for i in range(levels):
            prev, skip_in = rev[max(i - 1, 0)], rev[min(i + 1, levels - 1)]
            layers, upsample = layers_per_block + 1, i + 1 < levels
            self.up_blocks.append(UpBlock(prev, rev[i], skip_in, layers, up_attention[i], upsample, temb, groups, eps))
        self.conv_norm_out = nn.GroupNorm(groups, channels[0], eps=eps)
        self.conv_out = nn.Conv2d(channels[0], in_channels, 3, padding=1)

    @classmethod
    def cifar32(cls):
        """32x32x3, block_out_channels (64, 128, 128), attention at 16x16 and in the middle."""
        return cls(3, (64, 128, 128), (False, True, False), (False, True, False))

    @classmethod
    def mnist28(cls):
        """28x28x1, block_out_channels (32, 64, 64), attention at 14x14 and in the middle."""
        return cls(1, (32, 64, 64), (False, True, False), (False, True, False))

    def forward(self, x, timesteps):
        """x: (B, C, H, W); timesteps: (B,) float DDPM timesteps. Returns eps-hat like x."""
        embedding = timestep_embedding(timesteps.to(x.dtype), self.base_channels)
        temb = self.time_embedding["linear_2"](F.silu(self.time_embedding["linear_1"](embedding)))
        h = self.conv_in(x)
        skips = [h]
        for block in self.down_blocks:
            h = block(h, temb, skips)
        h = self.mid_block(h, temb)
        for block in self.up_blocks:
            h = block(h, temb, skips)
        return self.conv_out(F.silu(self.conv_norm_out(h)))


def parameter_count(module):
    """Number of trainable scalars."""
    return sum(p.numel() for p in module.parameters() if p.requires_grad)
