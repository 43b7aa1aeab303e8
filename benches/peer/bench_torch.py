#!/usr/bin/env python3
"""PyTorch peer of cdm's benchmark workloads: same models, shapes, batch, dtype and threads.

Each workload mirrors one in benches/src/workloads/ (the Rust side, run by
`cargo run --release -p cdm-benches --bin peer`) and prints the same JSON object per line:

    {"name": ..., "impl": "pytorch", "median_ms": ..., "min_ms": ..., "q1_ms": ..., "q3_ms": ...,
     "reps": ..., "warmup": ..., "threads": ..., "parameters": ..., "rows": ...,
     "loss_at_init": {...} or null, "version": ...}

Workloads (f32, CPU):
  mlp_forward_b10000      the paper's residual MLP, forward on 10 000 rows (no_grad)
  mlp_train_b128          one MSE training step (loss, backward, AdamW) at batch 128
  mlp_train_b1024         the same at batch 1024
  cdl_improved_b128_k128  one MSE + improved-CDL step, 128 instances x K = 128 (32 896 rows)
  unet32_forward_b16      the CIFAR-sized UNet (32x32x3, channels 64/128/128), forward (no_grad)
  unet32_train_b16        one MSE training step of that UNet at batch 16
  unet28_train_b16        one MSE step of the MNIST-sized UNet (28x28x1, channels 32/64/64)

Threads: $RAYON_NUM_THREADS (default 2), applied with torch.set_num_threads and, for the OpenMP /
MKL pools, OMP_NUM_THREADS / MKL_NUM_THREADS when they are not already set (`cargo xtask bench
--peer` sets them). Timings are wall-clock per iteration after `--warmup` untimed iterations; the
loss reported is the first warm-up iteration's, i.e. at the initial weights.
"""

import os

THREADS = int(os.environ.get("RAYON_NUM_THREADS", "2"))
# The OpenMP and MKL pools read these when torch is imported.
os.environ.setdefault("OMP_NUM_THREADS", str(THREADS))
os.environ.setdefault("MKL_NUM_THREADS", str(THREADS))

import argparse  # noqa: E402
import json  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
import warnings  # noqa: E402

# The CPU use of a CUDA wheel without NumPy warns on import; neither matters here.
warnings.filterwarnings("ignore", message="Failed to initialize NumPy")

import torch  # noqa: E402

from torch_models import Mlp, Unet, parameter_count  # noqa: E402
from torch_objectives import DdpmSchedule, TruncatedLogistic, cdl_improved_loss, mse_loss  # noqa: E402

LEARNING_RATE = 1e-4


def deterministic_input(shape):
    """cdm's bench input: element i is (i * 7919 mod 2001) / 1000 - 1, in [-1, 1]."""
    n = 1
    for s in shape:
        n *= s
    i = torch.arange(n, dtype=torch.int64)
    return ((i * 7919 % 2001).to(torch.float32) / 1000.0 - 1.0).reshape(shape)


class Workload:
    """A built model and a closure running one iteration, which returns named losses (or {})."""

    def __init__(self, model, rows, run):
        self.parameters = parameter_count(model)
        self.rows = rows
        self.run = run


def train_step(model, loss_fn):
    """One optimiser step: AdamW (torch defaults besides lr; on CPU the single-tensor loop)."""
    optimizer = torch.optim.AdamW(model.parameters(), lr=LEARNING_RATE)

    def run():
        optimizer.zero_grad()
        loss, parts = loss_fn()
        loss.backward()
        optimizer.step()
        return {"loss": loss.item(), **parts}

    return run


def mlp_forward(batch):
    """The MLP's eps-hat on `batch` deterministic rows at log-SNRs in [-10, 10], without autograd."""
    model = Mlp()
    z = deterministic_input((batch, 2))
    log_snr = deterministic_input((batch,)) * 10.0

    def run():
        with torch.no_grad():
            model(z, log_snr)
        return {}

    return Workload(model, batch, run)


def cdl_metrics(logits, labels):
    """cdm's CDL metrics, read to the host every step: accuracy, mean |logit|, saturated share."""
    f = logits.detach().double()
    return {
        "cdl_accuracy": ((f * labels) > 0).double().mean().item(),
        "cdl_abs_logit": f.abs().mean().item(),
        "cdl_saturated": (f.abs() > 10.0).double().mean().item(),
    }


def mlp_train(batch, cdl_points=None, cdl_instances=None):
    """MSE, or MSE + improved CDL (`train_step.rs` case "mse+cdl_improved_k128_i128"), at weight 1 each.

    Like cdm's `WeightedSum`, each part's loss is read to the host every step.
    """
    model, schedule = Mlp(), DdpmSchedule()
    # GaussianBase::standard(2): the authors' heuristic gives loc 0, scale 3 (d <= 2); clip 3.
    # The same truncated logistic is the ITD proposal and the distribution of zeta.
    proposal = TruncatedLogistic(0.0, 3.0, 3.0)
    x = torch.randn(batch, 2)

    def loss_fn():
        mse = mse_loss(lambda z, t: model(z, schedule.log_snrs[t].float()), x, schedule)
        if cdl_points is None:
            return mse, {"loss_mse": mse.item()}
        cdl, logits, labels = cdl_improved_loss(model, x, proposal, proposal, cdl_points, cdl_instances)
        return mse + cdl, {"loss_mse": mse.item(), "loss_cdl": cdl.item(), **cdl_metrics(logits, labels)}

    rows = batch if cdl_points is None else batch + 2 * min(cdl_instances, batch) * cdl_points
    return Workload(model, rows, train_step(model, loss_fn))


def unet_forward(model, channels, side, batch):
    """The UNet's forward on `batch` deterministic images at timesteps 61 i, without autograd."""
    x = deterministic_input((batch, channels, side, side))
    t = torch.arange(batch, dtype=torch.float32) * 61.0

    def run():
        with torch.no_grad():
            model(x, t)
        return {}

    return Workload(model, batch, run)


def unet_train(model, channels, side, batch):
    """One eps-MSE step of the UNet on `batch` deterministic images (timesteps passed as floats)."""
    schedule = DdpmSchedule()
    x = deterministic_input((batch, channels, side, side))

    def loss_fn():
        return mse_loss(lambda z, t: model(z, t.float()), x, schedule), {}

    return Workload(model, batch, train_step(model, loss_fn))


WORKLOADS = {
    "mlp_forward_b10000": lambda: mlp_forward(10_000),
    "mlp_train_b128": lambda: mlp_train(128),
    "mlp_train_b1024": lambda: mlp_train(1024),
    "cdl_improved_b128_k128": lambda: mlp_train(128, cdl_points=128, cdl_instances=128),
    "unet32_forward_b16": lambda: unet_forward(Unet.cifar32(), 3, 32, 16),
    "unet32_train_b16": lambda: unet_train(Unet.cifar32(), 3, 32, 16),
    "unet28_train_b16": lambda: unet_train(Unet.mnist28(), 1, 28, 16),
}


def quantile(sorted_values, q):
    """Linear interpolation between order statistics (numpy's default); the Rust side matches."""
    pos = q * (len(sorted_values) - 1)
    lo = int(pos)
    hi = min(lo + 1, len(sorted_values) - 1)
    return sorted_values[lo] + (pos - lo) * (sorted_values[hi] - sorted_values[lo])


def measure(name, reps, warmup):
    """Builds a workload, runs warm-up then timed iterations; returns the JSON record."""
    torch.manual_seed(0)
    workload = WORKLOADS[name]()
    loss_at_init = None
    for i in range(warmup):
        losses = workload.run()
        if i == 0:
            loss_at_init = losses or None
    times = []
    for _ in range(reps):
        start = time.perf_counter()
        losses = workload.run()
        times.append((time.perf_counter() - start) * 1e3)
        if loss_at_init is None and losses:
            loss_at_init = losses
    times.sort()
    return {
        "name": name,
        "impl": "pytorch",
        "median_ms": quantile(times, 0.5),
        "min_ms": times[0],
        "q1_ms": quantile(times, 0.25),
        "q3_ms": quantile(times, 0.75),
        "reps": reps,
        "warmup": warmup,
        "threads": torch.get_num_threads(),
        "parameters": workload.parameters,
        "rows": workload.rows,
        "loss_at_init": loss_at_init,
        "version": f"torch {torch.__version__}",
    }


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--only", help="comma-separated workload names (default: all)")
    parser.add_argument("--reps", type=int, default=10, help="timed iterations (default 10)")
    parser.add_argument("--unet-reps", type=int, default=3, help="timed iterations of the UNet workloads (default 3)")
    parser.add_argument("--warmup", type=int, default=2, help="untimed iterations first (default 2)")
    parser.add_argument("--list", action="store_true", help="print the workload names and exit")
    args = parser.parse_args()
    if args.list:
        print("\n".join(WORKLOADS))
        return 0
    names = args.only.split(",") if args.only else list(WORKLOADS)
    unknown = [n for n in names if n not in WORKLOADS]
    if unknown:
        parser.error(f"unknown workload(s) {', '.join(unknown)}; known: {', '.join(WORKLOADS)}")
    if args.reps < 1 or args.unet_reps < 1 or args.warmup < 0:
        parser.error("--reps and --unet-reps must be at least 1, --warmup at least 0")
    torch.set_num_threads(THREADS)
    for name in names:
        reps = args.unet_reps if name.startswith("unet") else args.reps
        print(f"pytorch: {name} ({args.warmup} warm-up + {reps} reps)", file=sys.stderr)
        print(json.dumps(measure(name, reps, args.warmup)), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
