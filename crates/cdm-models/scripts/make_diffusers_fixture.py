#!/usr/bin/env python3
"""Writes the diffusers `UNet2DModel` fixtures that `tests/diffusers_compat.rs` checks our `Unet` against.

How to run (not part of CI; the output is committed):

    python3 -m venv /tmp/venv-diffusers
    /tmp/venv-diffusers/bin/pip install torch diffusers safetensors
    /tmp/venv-diffusers/bin/python crates/cdm-models/scripts/make_diffusers_fixture.py

It writes two directories under `crates/cdm-models/tests/fixtures/`:

- `diffusers_tiny/`: the DDPM-style defaults (positional embedding with flip_sin_to_cos, freq_shift 0,
  "default" time conditioning, silu), two resolutions, attention at the lower one and in the mid
  block, two heads per attention layer;
- `diffusers_variants/`: the less common options: three resolutions, "scale_shift" time
  conditioning (so no GroupNorm in the mid attention), gelu, sines before cosines with freq_shift 1,
  downsample_padding 0, one head (attention_head_dim null), mid_block_scale_factor 2, an explicit
  time_embedding_dim, and center_input_sample.

Each holds `config.json` and `diffusion_pytorch_model.safetensors`, exactly what
`UNet2DModel.save_pretrained` writes (random float32 weights, seed 0), and `io.safetensors`:
`sample` (2, C, 8, 8), `timesteps` (2,) with a fractional timestep, and
`expected` = `model(sample, timesteps).sample`, all float32.

The weights are not the default init: every parameter is redrawn from N(0, 0.2²) so that biases,
GroupNorm affines and the zero-free output convolution all influence the output.
"""

import json
import pathlib

import diffusers
import torch
from diffusers import UNet2DModel
from safetensors.torch import save_file

FIXTURES = pathlib.Path(__file__).resolve().parent.parent / "tests" / "fixtures"

CONFIGS = {
    "diffusers_tiny": dict(
        sample_size=8,
        in_channels=3,
        out_channels=3,
        block_out_channels=(8, 16),
        layers_per_block=2,
        down_block_types=("DownBlock2D", "AttnDownBlock2D"),
        up_block_types=("AttnUpBlock2D", "UpBlock2D"),
        norm_num_groups=8,
        attention_head_dim=8,
        dropout=0.1,
    ),
    "diffusers_variants": dict(
        sample_size=8,
        in_channels=1,
        out_channels=2,
        block_out_channels=(4, 8, 8),
        layers_per_block=1,
        down_block_types=("DownBlock2D", "AttnDownBlock2D", "DownBlock2D"),
        up_block_types=("UpBlock2D", "AttnUpBlock2D", "UpBlock2D"),
        norm_num_groups=4,
        attention_head_dim=None,
        resnet_time_scale_shift="scale_shift",
        act_fn="gelu",
        flip_sin_to_cos=False,
        freq_shift=1,
        downsample_padding=0,
        mid_block_scale_factor=2,
        time_embedding_dim=12,
        center_input_sample=True,
    ),
}


def write_fixture(name: str, config: dict) -> None:
    out = FIXTURES / name
    torch.manual_seed(0)
    model = UNet2DModel(**config)
    with torch.no_grad():
        for p in model.parameters():
            p.copy_(torch.randn_like(p) * 0.2)
    model.eval()

    out.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(out, safe_serialization=True)

    generator = torch.Generator().manual_seed(1)
    sample = torch.randn(2, config["in_channels"], 8, 8, generator=generator)
    timesteps = torch.tensor([10.0, 500.5])
    with torch.no_grad():
        expected = model(sample, timesteps).sample
    save_file(
        {"sample": sample.contiguous(), "timesteps": timesteps, "expected": expected.contiguous()},
        out / "io.safetensors",
    )

    params = sum(p.numel() for p in model.parameters())
    saved = json.loads((out / "config.json").read_text())
    print(f"{name}: diffusers {diffusers.__version__}, torch {torch.__version__}, {params} parameters")
    print(f"  config keys: {sorted(saved)}")
    for path in sorted(out.iterdir()):
        print(f"  {path.name}: {path.stat().st_size} bytes")


def main() -> None:
    for name, config in CONFIGS.items():
        write_fixture(name, config)


if __name__ == "__main__":
    main()
