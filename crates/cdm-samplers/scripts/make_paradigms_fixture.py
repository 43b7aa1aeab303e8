# Golden fixture for the ParaDiGMS tests of cdm-samplers.
#
# Adapted from the project's numpy reference toy_paradigms.py (own code, kept outside the
# repository; see docs/samplers.md §11): the
# numerics below (schedule, analytic mixture eps-model, sequential DDPM/DDIM, sliding-window
# Picard iteration) are the reference's, unchanged. Changes: D = 8, B = 4 (to keep the fixture
# small), and instead of printing a sweep it exports
#
#   mixture_means.npy (K, D), mixture_variances.npy (K,) [isotropic per-component variance S2],
#   mixture_weights.npy (K,) [PI], x0.npy (B, D) [initial noise], xi_1000.npy (1000, B, D)
#   [standard normals z; the DDPM-1000 step noise is sqrt(post_var_j) * z_j],
#   out_<case>.npy (B, D) [ParaDiGMS output], seq_<sampler><S>.npy (B, D) [sequential output],
#   golden.json [rounds and evals ("NFE") per case]
#
# into ../tests/fixtures/paradigms/. Not run in CI; regenerate with
#   pip install numpy && python3 crates/cdm-samplers/scripts/make_paradigms_fixture.py
import json
import os

import numpy as np

T_TRAIN = 1000
betas = np.linspace(1e-4, 0.02, T_TRAIN, dtype=np.float64)
abar = np.cumprod(1.0 - betas)

rng0 = np.random.default_rng(0)
D = 8
K = 4
MU = rng0.normal(size=(K, D)) * 2.0
S2 = np.full(K, 0.05)
PI = np.full(K, 1.0 / K)


def eps_model(x, t):
    """Exact eps-prediction for a GMM under VP noising. x: (B, D), t: (B,) int timesteps."""
    a = abar[t][:, None]                                  # (B,1)
    var = a[:, :, None] * S2[None, None, :] + (1 - a)[:, :, None]   # (B,1,K)
    diff = x[:, :, None] - np.sqrt(a)[:, :, None] * MU.T[None]      # (B,D,K)
    logw = np.log(PI)[None, :] - 0.5 * (diff ** 2).sum(1) / var[:, 0, :] - 0.5 * D * np.log(var[:, 0, :])
    logw -= logw.max(1, keepdims=True)
    w = np.exp(logw); w /= w.sum(1, keepdims=True)           # (B,K)
    score = -(w[:, None, :] * diff / var).sum(2)             # (B,D)
    return -np.sqrt(1 - a) * score


def timesteps_trailing(S):
    return (np.round(np.arange(T_TRAIN, 0, -T_TRAIN / S)).astype(np.int64) - 1)


def prev_of(ts):
    return np.append(ts[1:], -1)


def abar_at(t):
    return np.where(t >= 0, abar[np.clip(t, 0, None)], 1.0)


def ddpm_mean(x, t, tp):
    """Deterministic part of the (respaced) DDPM ancestral step, no clipping."""
    a_t, a_p = abar_at(t)[:, None], abar_at(tp)[:, None]
    beta_t = 1 - a_t / a_p
    x0 = (x - np.sqrt(1 - a_t) * eps_model(x, t)) / np.sqrt(a_t)
    return (np.sqrt(a_p) * beta_t / (1 - a_t)) * x0 + (np.sqrt(1 - beta_t) * (1 - a_p) / (1 - a_t)) * x


def ddim_mean(x, t, tp):
    a_t, a_p = abar_at(t)[:, None], abar_at(tp)[:, None]
    e = eps_model(x, t)
    x0 = (x - np.sqrt(1 - a_t) * e) / np.sqrt(a_t)
    return np.sqrt(a_p) * x0 + np.sqrt(1 - a_p) * e


def post_var(t, tp):
    a_t, a_p = abar_at(np.array([t]))[0], abar_at(np.array([tp]))[0]
    return max((1 - a_p) / (1 - a_t) * (1 - a_t / a_p), 1e-20)


def sequential(x0, ts, step, noise):
    x = x0.copy(); tps = prev_of(ts)
    for j, (t, tp) in enumerate(zip(ts, tps)):
        x = step(x, np.full(len(x), t), np.full(len(x), tp)) + noise[j]
    return x


def paradigms(x0, ts, step, noise, p, tol, stochastic):
    S = len(ts); tps = prev_of(ts); B = len(x0)
    var = np.array([post_var(t, tp) for t, tp in zip(ts, tps)] + [0.0])
    with np.errstate(divide='ignore'):
        inv = 1.0 / (var * D)                      # index j: threshold for buffer position j
    buf = np.repeat(x0[None], S + 1, 0)            # positions 0..S, all initialised to x0
    p = min(p, S); lo, hi = 0, p; rounds = evals = 0
    while lo < S:
        L = hi - lo
        xs = buf[lo:hi].reshape(L * B, D)
        t = np.repeat(ts[lo:hi], B); tp = np.repeat(tps[lo:hi], B)
        delta = (step(xs, t, tp) - xs).reshape(L, B, D)     # one batched "model call" of L*B items
        new = buf[lo][None] + np.cumsum(delta, 0)
        if stochastic:
            new = new + np.cumsum(noise[lo:hi], 0)
        err = ((new - buf[lo + 1:hi + 1]) ** 2).sum(-1)      # (L,B)
        with np.errstate(invalid='ignore'):
            ratio = err * inv[lo + 1:hi + 1, None]
        bad = np.concatenate([(ratio > tol ** 2).any(1), [True]])
        stride = min(int(np.argmax(bad)) + 1, p)
        buf[lo + 1:hi + 1] = new
        nlo = lo + stride; nhi = min(nlo + p, S)
        buf[hi:nhi + 1] = buf[hi][None]
        lo, hi = nlo, nhi; rounds += 1; evals += L
    return buf[S], rounds, evals


if __name__ == "__main__":
    B = 4
    out_dir = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "fixtures", "paradigms")
    os.makedirs(out_dir, exist_ok=True)
    np.save(os.path.join(out_dir, "mixture_means.npy"), MU)
    np.save(os.path.join(out_dir, "mixture_variances.npy"), S2)
    np.save(os.path.join(out_dir, "mixture_weights.npy"), PI)
    cases = []
    # (sampler, S, stochastic, [(p, tol), ...]) as in the acceptance list of the issue
    for name, S, step, stoch, runs in [("ddpm", 1000, ddpm_mean, True, [(32, 0.1), (64, 0.1)]),
                                       ("ddim", 200, ddim_mean, False, [(32, 1e-3)])]:
        ts = timesteps_trailing(S); tps = prev_of(ts)
        rng = np.random.default_rng(1)
        x0 = rng.normal(size=(B, D))
        z = rng.normal(size=(S, B, D))
        sd = np.array([np.sqrt(post_var(t, tp)) for t, tp in zip(ts, tps)])
        noise = (sd[:, None, None] * z) if stoch else np.zeros_like(z)
        np.save(os.path.join(out_dir, "x0.npy"), x0)  # identical for every case (seed 1, drawn first)
        if stoch:
            np.save(os.path.join(out_dir, f"xi_{S}.npy"), z)
        ref = sequential(x0, ts, step, noise)
        np.save(os.path.join(out_dir, f"seq_{name}{S}.npy"), ref)
        for p, tol in runs:
            out, r, e = paradigms(x0, ts, step, noise, p, tol, stoch)
            case = f"{name}{S}_p{p}_tol{tol:g}"
            np.save(os.path.join(out_dir, f"out_{case}.npy"), out)
            rel = float(np.sqrt(((out - ref) ** 2).sum(-1) / (ref ** 2).sum(-1)).max())
            cases.append({"case": case, "sampler": name, "steps": S, "window": p, "tolerance": tol,
                          "rounds": r, "evals": e, "max_rel_err_vs_seq": rel})
            print(cases[-1])
    with open(os.path.join(out_dir, "golden.json"), "w") as f:
        json.dump({"batch": B, "dim": D, "components": K, "cases": cases}, f, indent=2)
        f.write("\n")
