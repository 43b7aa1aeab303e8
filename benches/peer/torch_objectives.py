"""cdm's training objectives re-written in PyTorch: the DDPM eps-MSE and the improved CDL.

Mirrors crates/cdm-objectives/src/{mse,cdl}.rs and the estimator they call
(crates/cdm-core/src/{itd,logistic,log_snr}.rs). cdm does its scalar schedule math on the host
in f64 and uploads per-row coefficients; here the same math runs on f64 tensors and is cast to
f32 where it meets the network's activations. Random numbers come from torch's RNG (cdm draws
them from ChaCha8 streams on the host); drawing them is part of the timed step on both sides.
"""

import math

import torch
import torch.nn.functional as F


def signal_coef(log_snr):
    """sqrt(sigmoid(a)), the coefficient of the clean signal at log-SNR a."""
    return torch.exp(-0.5 * F.softplus(-log_snr))


def noise_coef(log_snr):
    """sqrt(sigmoid(-a)), the coefficient of the noise at log-SNR a."""
    return torch.exp(-0.5 * F.softplus(log_snr))


def alpha_prime(log_snr, zeta):
    """a' = -LSE(-a, -zeta, -a - zeta): the log-SNR after noising at zeta, then at a."""
    return -torch.logsumexp(torch.stack([-log_snr, -zeta, -log_snr - zeta]), dim=0)


def kappa(log_snr, zeta):
    """kappa = sqrt(sigma(-a) / sigma(-a')), the factor on eps-hat of the zeta-noised density."""
    return torch.exp(0.5 * (F.softplus(alpha_prime(log_snr, zeta)) - F.softplus(log_snr)))


def row_scale(x, coef):
    """Multiplies row i of x (N, ...) by coef[i] (an f64 host-side coefficient), in x's dtype."""
    return x * coef.to(x.dtype).reshape(-1, *([1] * (x.dim() - 1)))


class DdpmSchedule:
    """The DDPM linear schedule: beta from 1e-4 to 0.02 over 1000 steps, log-SNR = logit(alpha_bar)."""

    def __init__(self, steps=1000, beta_start=1e-4, beta_end=0.02):
        betas = torch.linspace(beta_start, beta_end, steps, dtype=torch.float64)
        log_alpha_bar = torch.cumsum(torch.log1p(-betas), dim=0)
        self.steps = steps
        self.log_snrs = log_alpha_bar - torch.log(-torch.expm1(log_alpha_bar))


class TruncatedLogistic:
    """Logistic(loc, scale) over log-SNR truncated to loc +- clip*scale, and its importance weight."""

    def __init__(self, loc, scale, clip):
        self.loc, self.scale, self.clip = loc, scale, clip
        self.lo, self.hi = 1.0 / (1.0 + math.exp(clip)), 1.0 / (1.0 + math.exp(-clip))  # sigmoid(-c), sigmoid(c)

    def log_snr(self, u):
        """The log-SNR at uniform quantiles u in [0, 1)."""
        return self.loc + self.scale * torch.logit(self.lo + u * (self.hi - self.lo))

    def weight(self, log_snr):
        """w(a) = 1/q(a) = s tanh(c/2) (2 + e^v + e^-v), v = (a - loc)/s."""
        v = (log_snr - self.loc) / self.scale
        return self.scale * math.tanh(0.5 * self.clip) * (2.0 + v.exp() + (-v).exp())


def mse_loss(eps_at_timestep, x, schedule):
    """DDPM eps-MSE: t ~ U{0..T-1}, z = sqrt(abar) x + sqrt(1-abar) eps, ||eps - eps_hat(z, t)||^2
    summed over dimensions, averaged over the batch.

    `eps_at_timestep(z, t)` takes integer timesteps; the MLP maps them to log-SNR, the UNet takes
    them as floats (cdm's `TimestepDenoiser` maps the log-SNR back to exactly this timestep).
    """
    t = torch.randint(0, schedule.steps, (x.shape[0],))
    log_snr = schedule.log_snrs[t]
    eps = torch.randn_like(x)
    z = row_scale(x, signal_coef(log_snr)) + row_scale(eps, noise_coef(log_snr))
    return (eps - eps_at_timestep(z, t)).square().flatten(1).sum(1).mean()


def cdl_improved_loss(eps_at_log_snr, x, proposal, zeta_distribution, points, instances):
    """The improved contrastive diffusion loss: every instance, K points, common random numbers.

    For each of the first `instances` rows: a label y = +-1, a level zeta, z = x (positive) or
    z = x noised once at zeta (negative); the logit f_zeta(z) = mean_k 0.5 w_k (||eps_k - kappa_k
    eps_hat(z_k, a'_k)||^2 - ||eps_k - eps_hat(z_k, a_k)||^2) uses the same (a_k, eps_k) for both
    terms, and both terms of all instances go through ONE denoiser call of 2*n*K rows (cdm's row
    cap of 65 536 is not reached at n = K = 128). Loss = sum_i softplus(-y_i f_i) / batch.

    Returns (loss, logits, labels).
    """
    batch, dim = x.shape
    n = min(instances, batch)
    x = x[:n]
    draws = torch.rand(n, 2, dtype=torch.float64)
    labels = torch.where(draws[:, 0] < 0.5, -1.0, 1.0).to(torch.float64)
    zeta = zeta_distribution.log_snr(draws[:, 1])
    eps = torch.randn(n, dim)
    positive = labels > 0
    signal = torch.where(positive, torch.ones_like(zeta), signal_coef(zeta))
    noise = torch.where(positive, torch.zeros_like(zeta), noise_coef(zeta))
    z = row_scale(x, signal) + row_scale(eps, noise)

    # K integration points per instance: (a_k, w_k, eps_k), shared by both log-densities.
    log_snr = proposal.log_snr(torch.rand(n * points, dtype=torch.float64))
    half_weight = 0.5 * proposal.weight(log_snr)
    eps_k = torch.randn(n * points, dim)
    z_rep = z[:, None, :].expand(n, points, dim).reshape(n * points, dim)
    zeta_k = zeta.repeat_interleave(points)
    blocks = [(alpha_prime(log_snr, zeta_k), kappa(log_snr, zeta_k)), (log_snr, torch.ones_like(log_snr))]
    # cdm builds each block's noised rows separately, then concatenates: the same here.
    rows = torch.cat([row_scale(z_rep, signal_coef(log_snr)) + row_scale(eps_k, noise_coef(log_snr)) for _ in blocks])
    call_log_snr = torch.cat([a for a, _ in blocks])
    eps_hat = row_scale(eps_at_log_snr(rows, call_log_snr.float()), torch.cat([k for _, k in blocks]))
    noised_err = (eps_k - eps_hat[: n * points]).square().sum(1)
    clean_err = (eps_k - eps_hat[n * points :]).square().sum(1)
    logits = ((noised_err - clean_err) * half_weight.float()).reshape(n, points).mean(1)
    loss = F.softplus(-(logits * labels.float())).sum() / batch
    return loss, logits, labels
