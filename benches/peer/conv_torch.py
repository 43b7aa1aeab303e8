#!/usr/bin/env python3
"""PyTorch's side of the `kernels_conv` criterion bench: the same six convolutions (batch 16,
f32, bias, the input tracking its gradient), timed as `torch.nn.Conv2d` forward (no_grad) and
forward + `(y*y).sum().backward()`. Prints one line per case with the median of 15 runs after 3
warm-ups, in ms. Threads: $RAYON_NUM_THREADS (default 2), as in bench_torch.py.

    $CDM_PYTHON benches/peer/conv_torch.py
"""

import os

THREADS = int(os.environ.get("RAYON_NUM_THREADS", "2"))
os.environ.setdefault("OMP_NUM_THREADS", str(THREADS))
os.environ.setdefault("MKL_NUM_THREADS", str(THREADS))

import statistics  # noqa: E402
import time  # noqa: E402

import torch  # noqa: E402

# name, input (B, C, H, W), output channels, kernel, stride, padding: benches/benches/kernels_conv.rs
CASES = [
    ("c128_16x16_k3", (16, 128, 16, 16), 128, 3, 1, 1),
    ("c64_32x32_k3", (16, 64, 32, 32), 64, 3, 1, 1),
    ("c128_32x32_k3_s2", (16, 128, 32, 32), 128, 3, 2, 1),
    ("c128to64_32x32_k1", (16, 128, 32, 32), 64, 1, 1, 0),
    ("c32_28x28_k3", (16, 32, 28, 28), 32, 3, 1, 1),
    ("c64_14x14_k3", (16, 64, 14, 14), 64, 3, 1, 1),
]


def median_ms(step, warmup=3, reps=15):
    for _ in range(warmup):
        step()
    times = []
    for _ in range(reps):
        start = time.perf_counter()
        step()
        times.append(time.perf_counter() - start)
    return 1e3 * statistics.median(times)


def main():
    torch.set_num_threads(THREADS)
    torch.manual_seed(0)
    for name, shape, out_channels, kernel, stride, padding in CASES:
        conv = torch.nn.Conv2d(shape[1], out_channels, kernel, stride, padding)
        x = torch.randn(*shape, requires_grad=True)

        def forward():
            with torch.no_grad():
                conv(x)

        def forward_backward():
            y = conv(x)
            (y * y).sum().backward()

        print(f"{name}: forward {median_ms(forward):.2f} ms, forward + backward {median_ms(forward_backward):.2f} ms")


if __name__ == "__main__":
    main()
