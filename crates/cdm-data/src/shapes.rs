//! Per-point generators of the synthetic toys (FFJORD `toy_data.py` / sklearn conventions).
//!
//! U is uniform on [0, 1), N a standard normal, "coin" a fair Bernoulli; each point draws from its
//! own ChaCha stream in the order written. Where the Python originals space points evenly over a
//! batch (angles, ring membership) and then shuffle, each point here draws its angle and component
//! at random instead, so point i depends only on (seed, i) and never on n.
//!
//! | toy | one point |
//! |---|---|
//! | moons | coin; θ = πU; outer (cos θ, sin θ) or inner (1 − cos θ, 0.5 − sin θ); + 0.1·N; then p ↦ 2p + (−1, −0.2) |
//! | circles | coin picks r ∈ {1, 0.5}; θ = 2πU; (r cos θ, r sin θ) + 0.08·N; then ×3 |
//! | rings | r ∈ {1, 0.75, 0.5, 0.25} uniformly; θ = 2πU; 3·(r cos θ, r sin θ) + 0.08·N |
//! | swiss-roll | t = 1.5π(1 + 2U); ((t cos t, t sin t) + N)/5 |
//! | 8gaussians | k uniform in 0..8; c = 4(cos kπ/4, sin kπ/4); (c + 0.5·N)/1.414 |
//! | pinwheel | k uniform in 0..5; r = 1 + 0.3·N, s = 0.1·N; 2·R(2πk/5 + 0.25·eʳ)·(r, s), R a counter-clockwise rotation |
//! | two-spirals | u = 3π√U; d = (−u cos u + 0.5U, u sin u + 0.5U); coin flips d ↦ −d; d/3 + 0.1·N |
//! | checkerboard | x = 4U − 2; y = U − 2·coin; y += ⌊x⌋ mod 2; 2·(x, y): 8 filled 2×2 cells of [−4, 4)², cell (i, j) filled iff i + j is even |
//! | gmm1d | coin picks μ ∈ {−5, +5}; μ + N, i.e. 0.5·N(−5, 1) + 0.5·N(5, 1) (`docs/math.md` §13.1) |
//!
//! The 8-Gaussians noise is FFJORD's 0.5 (the paper's repository uses 0.25); moons uses FFJORD's
//! noise 0.1 and affine map; pinwheel rotates counter-clockwise (FFJORD's `einsum` mirrors it).

use std::f64::consts::PI;

use rand::Rng;
use rand_chacha::ChaCha8Rng;
use rand_distr::StandardNormal;

fn normal(rng: &mut ChaCha8Rng) -> f64 {
    rng.sample(StandardNormal)
}

fn uniform(rng: &mut ChaCha8Rng) -> f64 {
    rng.random()
}

/// Two interleaved half circles.
pub(crate) fn moons(rng: &mut ChaCha8Rng) -> [f64; 2] {
    let inner = rng.random_bool(0.5);
    let theta = PI * uniform(rng);
    let (x, y) = if inner { (1.0 - theta.cos(), 0.5 - theta.sin()) } else { (theta.cos(), theta.sin()) };
    [2.0 * (x + 0.1 * normal(rng)) - 1.0, 2.0 * (y + 0.1 * normal(rng)) - 0.2]
}

/// Two concentric circles, radii 3 and 1.5.
pub(crate) fn circles(rng: &mut ChaCha8Rng) -> [f64; 2] {
    let r = if rng.random_bool(0.5) { 0.5 } else { 1.0 };
    let theta = 2.0 * PI * uniform(rng);
    [3.0 * (r * theta.cos() + 0.08 * normal(rng)), 3.0 * (r * theta.sin() + 0.08 * normal(rng))]
}

/// Radii of the four rings before the ×3 scale.
pub(crate) const RING_RADII: [f64; 4] = [1.0, 0.75, 0.5, 0.25];

/// Four concentric rings, radii 3, 2.25, 1.5 and 0.75.
pub(crate) fn rings(rng: &mut ChaCha8Rng) -> [f64; 2] {
    let r = RING_RADII[rng.random_range(0..RING_RADII.len())];
    let theta = 2.0 * PI * uniform(rng);
    [3.0 * r * theta.cos() + 0.08 * normal(rng), 3.0 * r * theta.sin() + 0.08 * normal(rng)]
}

/// The (x, z) plane of sklearn's swiss roll with noise 1, divided by 5.
pub(crate) fn swiss_roll(rng: &mut ChaCha8Rng) -> [f64; 2] {
    let t = 1.5 * PI * (1.0 + 2.0 * uniform(rng));
    [(t * t.cos() + normal(rng)) / 5.0, (t * t.sin() + normal(rng)) / 5.0]
}

/// Eight Gaussians on a circle of radius 4, σ = 0.5, all divided by 1.414.
pub(crate) fn eight_gaussians(rng: &mut ChaCha8Rng) -> [f64; 2] {
    let angle = rng.random_range(0..8u32) as f64 * PI / 4.0;
    [(4.0 * angle.cos() + 0.5 * normal(rng)) / 1.414, (4.0 * angle.sin() + 0.5 * normal(rng)) / 1.414]
}

/// Five bent arms.
pub(crate) fn pinwheel(rng: &mut ChaCha8Rng) -> [f64; 2] {
    let base = 2.0 * PI * rng.random_range(0..5u32) as f64 / 5.0;
    let r = 1.0 + 0.3 * normal(rng);
    let s = 0.1 * normal(rng);
    let (sin, cos) = (base + 0.25 * r.exp()).sin_cos();
    [2.0 * (cos * r - sin * s), 2.0 * (sin * r + cos * s)]
}

/// Two interleaved spirals, point reflections of each other.
pub(crate) fn two_spirals(rng: &mut ChaCha8Rng) -> [f64; 2] {
    let sign = if rng.random_bool(0.5) { -1.0 } else { 1.0 };
    let u = 3.0 * PI * uniform(rng).sqrt();
    let dx = -u * u.cos() + 0.5 * uniform(rng);
    let dy = u * u.sin() + 0.5 * uniform(rng);
    [sign * dx / 3.0 + 0.1 * normal(rng), sign * dy / 3.0 + 0.1 * normal(rng)]
}

/// A 4 × 4 board of 2 × 2 cells on [−4, 4)², 8 of them filled.
pub(crate) fn checkerboard(rng: &mut ChaCha8Rng) -> [f64; 2] {
    let x = 4.0 * uniform(rng) - 2.0;
    let y = uniform(rng) - if rng.random_bool(0.5) { 2.0 } else { 0.0 };
    [2.0 * x, 2.0 * (y + x.floor().rem_euclid(2.0))]
}

/// The paper's 1-D two-mode mixture 0.5·N(−5, 1) + 0.5·N(5, 1).
pub(crate) fn gmm1d(rng: &mut ChaCha8Rng) -> f64 {
    let mu = if rng.random_bool(0.5) { 5.0 } else { -5.0 };
    mu + normal(rng)
}
