#!/usr/bin/env python3
"""Writes the diffusers pipelines that `tests/diffusers_pipeline.rs` samples with `cdm sample --diffusers`.

How to run (not part of CI; the output is committed):

    python3 -m venv ~/.cache/cdm/pyenv
    ~/.cache/cdm/pyenv/bin/pip install torch diffusers safetensors
    ~/.cache/cdm/pyenv/bin/python crates/cdm-cli/scripts/make_diffusers_pipeline_fixture.py

It writes two pipeline directories under `crates/cdm-cli/tests/fixtures/`, each exactly what
`save_pretrained` writes (`model_index.json`, `scheduler/scheduler_config.json`, `unet/config.json`,
`unet/diffusion_pytorch_model.safetensors`) around one tiny random `UNet2DModel` (8×8×3, seed 0,
diffusers' own initialisation), plus `reference.safetensors` beside them:

- `ddim_pipeline/`: a `DDIMPipeline` with `DDIMScheduler` at its defaults (linear β, epsilon
  prediction, `clip_sample` on, leading spacing, `set_alpha_to_one`), sampled for 10 steps with η = 0;
- `ddpm_pipeline/`: a `DDPMPipeline` with a `DDPMScheduler` that exercises the other settings:
  `scaled_linear` β, `v_prediction`, `fixed_large` variance, no clipping, sampled for 20 steps.

`reference.safetensors` holds `init` (B, 3, 8, 8), the initial noise the pipeline drew from
`torch.Generator().manual_seed(SEED)`; for DDPM `steps` (S, B, 3, 8, 8), the per-step noise it drew
after that (zeros for the last step, where DDPM adds none); `expected`, the final sample before the
pipeline's `(x / 2 + 0.5).clamp(0, 1)`; and `images`, the pipeline's own `output_type="np"` result
(B, 8, 8, 3); and for DDIM `expected_f64`, the same loop with the UNet in float64, which shows how
far f32 rounding alone moves the result (DDPM's draws would change with the dtype). The script runs the pipeline's loop itself, with the pipeline's generator, to keep
the sample before post-processing, and checks that it reproduces `images`; the noise is recorded
by drawing from a second generator with the same seed in the pipeline's order (the initial noise,
then one draw per DDPM step with t > 0).
"""

import copy
import pathlib

import diffusers
import numpy as np
import torch
from diffusers import DDIMPipeline, DDIMScheduler, DDPMPipeline, DDPMScheduler, UNet2DModel
from safetensors.torch import save_file

FIXTURES = pathlib.Path(__file__).resolve().parent.parent / "tests" / "fixtures"
SEED = 7
SHAPE = (2, 3, 8, 8)


def tiny_unet() -> UNet2DModel:
    torch.manual_seed(0)
    return UNet2DModel(
        sample_size=8,
        in_channels=3,
        out_channels=3,
        block_out_channels=(8, 16),
        layers_per_block=1,
        down_block_types=("DownBlock2D", "AttnDownBlock2D"),
        up_block_types=("AttnUpBlock2D", "UpBlock2D"),
        norm_num_groups=8,
        attention_head_dim=8,
    ).eval()


def pipeline_loop(pipeline, steps, dtype=torch.float32, **step_args):
    """The loop of DDPMPipeline / DDIMPipeline.__call__, returning the sample before post-processing;
    with `dtype=torch.float64`, on a float64 copy of the UNet (the scheduler's tables stay f32; only
    for DDIM with η = 0, as the pipeline's noise draws depend on the dtype)."""
    unet = pipeline.unet if dtype == torch.float32 else copy.deepcopy(pipeline.unet).to(dtype)
    generator = torch.Generator().manual_seed(SEED)
    x = torch.randn(SHAPE, generator=generator).to(dtype)
    pipeline.scheduler.set_timesteps(steps)
    for t in pipeline.scheduler.timesteps:
        out = unet(x, t).sample
        x = pipeline.scheduler.step(out, t, x, generator=generator, **step_args).prev_sample
    return x


def recorded_noise(step_draws):
    """The initial noise and the per-step draws, in the order the pipeline makes them."""
    generator = torch.Generator().manual_seed(SEED)
    init = torch.randn(SHAPE, generator=generator)
    return init, [torch.randn(SHAPE, generator=generator) for _ in range(step_draws)]


def write(name, pipeline, steps, reference, **call_args):
    out = FIXTURES / name
    pipeline.save_pretrained(out, safe_serialization=True)
    images = pipeline(
        batch_size=SHAPE[0],
        generator=torch.Generator().manual_seed(SEED),
        num_inference_steps=steps,
        output_type="np",
        **call_args,
    ).images
    mine = (reference["expected"] / 2 + 0.5).clamp(0, 1).permute(0, 2, 3, 1).numpy()
    assert np.abs(images - mine).max() < 1e-6, "the loop does not reproduce the pipeline"
    reference["images"] = torch.from_numpy(images)
    save_file({k: v.contiguous() for k, v in reference.items()}, str(out / "reference.safetensors"))
    print(f"{name}: {steps} steps, max |x| {reference['expected'].abs().max():.3f}")
    if "expected_f64" in reference:
        print(f"  f32 vs f64: {(reference['expected'] - reference['expected_f64']).abs().max():.3e}")


@torch.no_grad()
def main():
    unet = tiny_unet()

    ddim = DDIMPipeline(unet=unet, scheduler=DDIMScheduler())
    init, _ = recorded_noise(0)
    expected = pipeline_loop(ddim, 10, eta=0.0)
    expected_f64 = pipeline_loop(ddim, 10, dtype=torch.float64, eta=0.0)
    reference = {"init": init, "expected": expected, "expected_f64": expected_f64}
    write("ddim_pipeline", ddim, 10, reference, eta=0.0)

    scheduler = DDPMScheduler(
        beta_schedule="scaled_linear",
        beta_start=0.00085,
        beta_end=0.012,
        prediction_type="v_prediction",
        variance_type="fixed_large",
        clip_sample=False,
    )
    ddpm = DDPMPipeline(unet=unet, scheduler=scheduler)
    steps = 20
    init, draws = recorded_noise(steps - 1)
    step_noise = torch.stack(draws + [torch.zeros(SHAPE)])
    expected = pipeline_loop(ddpm, steps)
    reference = {"init": init, "steps": step_noise, "expected": expected}
    write("ddpm_pipeline", ddpm, steps, reference)
    print(f"diffusers {diffusers.__version__}, torch {torch.__version__}")


if __name__ == "__main__":
    main()
