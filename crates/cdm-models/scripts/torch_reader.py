#!/usr/bin/env python3
"""Reads cdm's point-model checkpoints, and a run's AdamW state, into plain PyTorch.

Needs only `torch` and `safetensors` (no cdm code). docs/interop.md describes the files and the
math; `tests/torch_interop.rs` runs this script against cdm's own outputs.

    import torch_reader
    model = torch_reader.load("runs/dino")  # model.json + ema.safetensors
    eps = model(z, log_snr)                  # z: (B, dim), log_snr: (B,) -> eps-hat (B, dim)

`load` accepts a run directory (`model.json` with `ema.safetensors` or, with
`weights="model"`, `model.safetensors`), a checkpoint of a run (`checkpoints/step-N/`, config
from the run's `model.json`), a `cdm_models::checkpoint::save` directory (`config.json` +
`diffusion_pytorch_model.safetensors`), or a `(config, weights)` pair of paths. The config is
checked like cdm checks it (unknown keys are errors, missing ones take cdm's defaults) and the
weights are loaded with `strict=True`, so every parameter name and shape must match.

`load_adamw(model, "runs/dino/checkpoints/step-00040000", lr=...)` returns a
`torch.optim.AdamW` holding the run's moments and step count.

Command line (what the test uses):

    python torch_reader.py --checkpoint CONFIG WEIGHTS --inputs IO --out OUT
    python torch_reader.py --checkpoint RUN_OR_CHECKPOINT_DIR [--weights ema|model] --inputs IO --out OUT

reads `z` and `log_snr` from the safetensors file IO and writes `eps`. If IO holds `cotangent`,
OUT also gets `grad.<name>`, the gradients of `sum(eps * cotangent)`. With `--optimizer DIR
--lr LR [--beta1 --beta2 --eps --weight-decay]`, the AdamW state of checkpoint DIR takes one
step with the gradients `grad.<name>` of IO, and OUT gets the updated `param.<name>`.

    python torch_reader.py --diffusers DIR --inputs IO --out OUT

loads a UNet checkpoint directory with diffusers' `UNet2DModel.from_pretrained` (diffusers
must be installed) and writes `sample` = `model(sample, timesteps).sample` for IO's `sample`
and `timesteps`.
"""

import argparse
import inspect
import json
import pathlib

import torch
from safetensors.torch import load_file, save_file
from torch import nn
from torch.nn import functional as F


def log_snr_embedding(log_snr, dim, scale):
    """(B, dim): [cos(a f_0), sin(a f_0), cos(a f_1), ...] of a = log_snr, f_k = scale * 1e-4^(2k/dim).

    The frequencies are computed in float64 and rounded to log_snr's dtype, and each argument is
    rounded to that dtype before cos and sin, as cdm does.
    """
    freqs = torch.tensor([scale * 1e-4 ** (2.0 * k / dim) for k in range(dim // 2)], dtype=torch.float64)
    args = log_snr[:, None] * freqs.to(log_snr.dtype)[None, :]
    return torch.stack([args.cos(), args.sin()], dim=-1).flatten(1)


class ResidualBlock(nn.Module):
    """h <- LayerNorm(h + W2 GELU(W1 (h + e) + b1) + b2), exact (erf) GELU, LayerNorm eps 1e-5."""

    def __init__(self, d_model):
        super().__init__()
        self.linear1 = nn.Linear(d_model, d_model)
        self.linear2 = nn.Linear(d_model, d_model)
        self.norm = nn.LayerNorm(d_model, eps=1e-5)

    def forward(self, h, embedding):
        return self.norm(h + self.linear2(F.gelu(self.linear1(h + embedding))))


class Mlp(nn.Module):
    """`cdm_models::Mlp`, the paper's residual MLP; arguments and defaults are `MlpConfig`'s."""

    def __init__(self, dim=2, d_model=128, blocks=2, log_snr_scale=50.0, input_frequencies=0, input_scale=25.0):
        super().__init__()
        self.dim, self.d_model, self.log_snr_scale = dim, d_model, log_snr_scale
        self.input_frequencies, self.input_scale = input_frequencies, input_scale
        self.input = nn.Linear(dim * (1 + 2 * input_frequencies), d_model)
        self.blocks = nn.ModuleList([ResidualBlock(d_model) for _ in range(blocks)])
        self.output = nn.Linear(d_model, dim)

    def features(self, z):
        """[z, sin(c z_i g_k), cos(c z_i g_k)] with g_k = 1e-4^(k/F), columns i-major; z without F."""
        count = self.input_frequencies
        if count == 0:
            return z
        g = torch.tensor([self.input_scale * 1e-4 ** (k / count) for k in range(count)], dtype=torch.float64)
        args = (z[:, :, None] * g.to(z.dtype)[None, None, :]).flatten(1)
        return torch.cat([z, args.sin(), args.cos()], dim=1)

    def forward(self, z, log_snr):
        """eps-hat for z (B, ...) with `dim` elements per row and log_snr (B,); z's shape."""
        flat = z.reshape(z.shape[0], self.dim)
        embedding = log_snr_embedding(log_snr.to(z.dtype), self.d_model, self.log_snr_scale)
        h = self.input(self.features(flat))
        for block in self.blocks:
            h = block(h, embedding)
        return self.output(h).reshape(z.shape)


ACTIVATIONS = {"relu": nn.ReLU, "silu": nn.SiLU, "gelu": nn.GELU}


class PlainMlp(nn.Module):
    """`cdm_models::PlainMlp` on [z, PE(log_snr)]; arguments and defaults are `PlainMlpConfig`'s."""

    def __init__(self, dim=1, hidden=64, linear_layers=3, activation="relu", embedding_dim=16, log_snr_scale=50.0):
        super().__init__()
        self.dim, self.embedding_dim, self.log_snr_scale = dim, embedding_dim, log_snr_scale
        widths = [dim + embedding_dim] + [hidden] * (linear_layers - 1) + [dim]
        self.layers = nn.ModuleList([nn.Linear(a, b) for a, b in zip(widths, widths[1:])])
        self.activation = ACTIVATIONS[activation]()

    def forward(self, z, log_snr):
        """eps-hat for z (B, ...) with `dim` elements per row and log_snr (B,); z's shape."""
        flat = z.reshape(z.shape[0], self.dim)
        embedding = log_snr_embedding(log_snr.to(z.dtype), self.embedding_dim, self.log_snr_scale)
        h = torch.cat([flat, embedding], dim=1)
        for i, layer in enumerate(self.layers):
            h = layer(h)
            if i < len(self.layers) - 1:
                h = self.activation(h)
        return h.reshape(z.shape)


KINDS = {"mlp": Mlp, "plain_mlp": PlainMlp}


def checkpoint_files(path, weights="ema"):
    """(config, weights) paths of a run, a run's checkpoint, a checkpoint directory, or a pair."""
    if isinstance(path, (tuple, list)):
        config, weight_file = path
        return pathlib.Path(config), pathlib.Path(weight_file)
    path = pathlib.Path(path)
    if (path / "model.json").is_file():  # a run directory
        return path / "model.json", path / f"{weights}.safetensors"
    if (path / "state.json").is_file():  # runs/<name>/checkpoints/step-N
        return path.parent.parent / "model.json", path / f"{weights}.safetensors"
    if (path / "diffusion_pytorch_model.safetensors").is_file():  # cdm_models::checkpoint::save
        return path / "config.json", path / "diffusion_pytorch_model.safetensors"
    raise FileNotFoundError(f"{path}: neither a run, a run's checkpoint, nor a checkpoint directory")


def build(config, tensors):
    """The module a config describes: kind from `kind` (a run's model.json) or the tensor names."""
    config = dict(config)
    kind = config.pop("kind", None)
    if kind is None and "_class_name" not in config:
        kind = "mlp" if "input.weight" in tensors else "plain_mlp" if "layers.0.weight" in tensors else None
    if kind not in KINDS:
        raise ValueError(f"not a point model (kind {kind!r}); UNet checkpoints load in diffusers' UNet2DModel")
    cls = KINDS[kind]
    unknown = set(config) - set(inspect.signature(cls).parameters)
    if unknown:
        raise ValueError(f"{kind}: unknown config keys {sorted(unknown)}")
    return cls(**config)


def load(path, weights="ema"):
    """A point model with a cdm checkpoint's weights, in the weights' dtype, in eval mode."""
    config_file, weight_file = checkpoint_files(path, weights)
    tensors = load_file(weight_file)
    model = build(json.loads(config_file.read_text()), tensors)
    model.to(next(iter(tensors.values())).dtype)
    model.load_state_dict(tensors, strict=True)
    return model.eval()


def load_adamw(model, checkpoint_dir, lr, beta1=0.9, beta2=0.999, eps=1e-8, weight_decay=0.0):
    """`torch.optim.AdamW` over `model`'s parameters with a cdm checkpoint's moments and step.

    The keyword arguments are the names in a run's `config.json` under `config.train.adamw`;
    `lr` is cdm's schedule at the next step. optimizer.safetensors must hold exactly
    `m.<name>` and `v.<name>` for every parameter.
    """
    checkpoint_dir = pathlib.Path(checkpoint_dir)
    moments = load_file(checkpoint_dir / "optimizer.safetensors")
    step = json.loads((checkpoint_dir / "state.json").read_text())["step"]
    names = [name for name, _ in model.named_parameters()]
    expected = {f"{kind}.{name}" for name in names for kind in "mv"}
    if set(moments) != expected:
        missing, unexpected = sorted(expected - set(moments)), sorted(set(moments) - expected)
        raise ValueError(f"{checkpoint_dir}: optimizer state missing {missing}, unexpected {unexpected}")
    optimizer = torch.optim.AdamW(
        model.parameters(), lr=lr, betas=(beta1, beta2), eps=eps, weight_decay=weight_decay
    )
    state = optimizer.state_dict()
    state["state"] = {
        i: {"step": torch.tensor(float(step)), "exp_avg": moments[f"m.{name}"], "exp_avg_sq": moments[f"v.{name}"]}
        for i, name in enumerate(names)
    }
    optimizer.load_state_dict(state)
    return optimizer


def run_point_model(args):
    io = load_file(args.inputs)
    model = load(args.checkpoint if len(args.checkpoint) == 2 else args.checkpoint[0], args.weights)
    out = {}
    with torch.set_grad_enabled("cotangent" in io):
        eps = model(io["z"], io["log_snr"])
        out["eps"] = eps.detach()
        if "cotangent" in io:
            (eps * io["cotangent"]).sum().backward()
            out.update({f"grad.{name}": p.grad.clone() for name, p in model.named_parameters()})
    if args.optimizer:
        optimizer = load_adamw(
            model, args.optimizer, args.lr, args.beta1, args.beta2, args.eps, args.weight_decay
        )
        for name, p in model.named_parameters():
            p.grad = io[f"grad.{name}"].to(p.dtype)
        optimizer.step()
        out.update({f"param.{name}": p.detach().clone() for name, p in model.named_parameters()})
    save_file({k: v.contiguous() for k, v in out.items()}, args.out)


def run_diffusers(args):
    from diffusers import UNet2DModel

    io = load_file(args.inputs)
    model = UNet2DModel.from_pretrained(args.diffusers).eval()
    with torch.no_grad():
        sample = model(io["sample"], io["timesteps"]).sample
    save_file({"sample": sample.contiguous()}, args.out)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--checkpoint", nargs="+", metavar="PATH", help="a directory, or CONFIG WEIGHTS")
    source.add_argument("--diffusers", metavar="DIR", help="a UNet2DModel directory")
    parser.add_argument("--weights", default="ema", choices=["ema", "model"], help="for run directories")
    parser.add_argument("--inputs", required=True, help="safetensors with z, log_snr (or sample, timesteps)")
    parser.add_argument("--out", required=True, help="safetensors to write")
    parser.add_argument("--optimizer", metavar="DIR", help="a run's checkpoint directory: take one AdamW step")
    parser.add_argument("--lr", type=float)
    parser.add_argument("--beta1", type=float, default=0.9)
    parser.add_argument("--beta2", type=float, default=0.999)
    parser.add_argument("--eps", type=float, default=1e-8)
    parser.add_argument("--weight-decay", type=float, default=0.0)
    args = parser.parse_args()
    if args.checkpoint is not None and len(args.checkpoint) > 2:
        parser.error("--checkpoint takes a directory or CONFIG WEIGHTS")
    if args.optimizer and args.lr is None:
        parser.error("--optimizer needs --lr")
    if args.diffusers:
        run_diffusers(args)
    else:
        run_point_model(args)


if __name__ == "__main__":
    main()
