//! [`Toy`]: the named, seeded toy distributions.
//!
//! `Toy::sample(n, seed)` draws point `i` from ChaCha stream `i` of
//! `NoiseSource::new(seed).fork(toy.name())`, so a point depends only on (toy, seed, i): the
//! first k points of `sample(n, seed)` equal `sample(k, seed)` for every n ≥ k. Where the Python
//! originals (FFJORD `toy_data.py`, sklearn) space angles or components evenly over a batch and
//! shuffle, each point here draws them at random instead. U is uniform on [0, 1), N a standard
//! normal; [`crate::dino`] details the dino.
//!
//! | name | dim | distribution |
//! |---|---|---|
//! | `dino` | 2 | a uniform Datasaurus row + 0.15·N raw jitter, mapped 4(x/54 − 1), 4(y/48 − 1), standardised exactly |
//! | `moons` | 2 | two half circles + 0.1·N, mapped p ↦ 2p + (−1, −0.2) |
//! | `circles` | 2 | circles of radius 1 and 0.5 (+ 0.08·N), ×3 |
//! | `rings` | 2 | rings of radius 3, 2.25, 1.5, 0.75, + 0.08·N |
//! | `swiss-roll` | 2 | t = 1.5π(1 + 2U), ((t cos t, t sin t) + N)/5 |
//! | `8gaussians` | 2 | N(4(cos kπ/4, sin kπ/4), 0.5²I)/1.414, k uniform in 0..8 |
//! | `pinwheel` | 2 | 5 arms: 2·R(2πk/5 + 0.25·eʳ)(r, s), r = 1 + 0.3·N, s = 0.1·N |
//! | `two-spirals` | 2 | ±(−u cos u + 0.5U, u sin u + 0.5U)/3 + 0.1·N, u = 3π√U |
//! | `checkerboard` | 2 | uniform on the 8 cells (i, j), i + j even, of a 4 × 4 board of 2 × 2 cells on [−4, 4)² |
//! | `gmm1d` | 1 | 0.5·N(−5, 1) + 0.5·N(5, 1) |
//!
//! Choices among the published variants: 8 Gaussians uses FFJORD's σ = 0.5 (the paper's
//! repository uses 0.25); moons uses FFJORD's noise 0.1 and map (tiny-diffusion: 0.03); pinwheel
//! rotates counter-clockwise (FFJORD's `einsum` gives the mirror image). Only the dino is
//! standardised; the other toys keep their native scale (use [`crate::Standardizer`]).

use std::fmt;
use std::str::FromStr;

use cdm_core::NoiseSource;
use rand_chacha::ChaCha8Rng;

use crate::{Error, PointCloud, Result, dino, shapes};

/// A seeded toy distribution. Serialises as its [`Toy::name`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub enum Toy {
    /// The Datasaurus dino, standardised (`docs/math.md` §13.2).
    #[serde(rename = "dino")]
    Dino,
    /// Two interleaved half circles.
    #[serde(rename = "moons")]
    Moons,
    /// Two concentric circles.
    #[serde(rename = "circles")]
    Circles,
    /// Four concentric rings.
    #[serde(rename = "rings")]
    Rings,
    /// A 2-D swiss roll.
    #[serde(rename = "swiss-roll")]
    SwissRoll,
    /// Eight Gaussians on a circle.
    #[serde(rename = "8gaussians", alias = "eight-gaussians")]
    EightGaussians,
    /// Five bent arms.
    #[serde(rename = "pinwheel")]
    Pinwheel,
    /// Two interleaved spirals.
    #[serde(rename = "two-spirals")]
    TwoSpirals,
    /// Eight filled cells of a 4 × 4 checkerboard.
    #[serde(rename = "checkerboard")]
    Checkerboard,
    /// The 1-D mixture 0.5·N(−5, 1) + 0.5·N(5, 1) (`docs/math.md` §13.1).
    #[serde(rename = "gmm1d")]
    TwoModes1d,
}

const ALL: [Toy; 10] = [
    Toy::Dino,
    Toy::Moons,
    Toy::Circles,
    Toy::Rings,
    Toy::SwissRoll,
    Toy::EightGaussians,
    Toy::Pinwheel,
    Toy::TwoSpirals,
    Toy::Checkerboard,
    Toy::TwoModes1d,
];

/// The valid toy names, comma-separated (for error messages and CLI help).
pub(crate) fn valid_names() -> String {
    ALL.iter().map(Toy::name).collect::<Vec<_>>().join(", ")
}

impl Toy {
    /// Every toy, in declaration order.
    pub fn all() -> &'static [Toy] {
        &ALL
    }

    /// The canonical name, accepted by [`FromStr`] and used by serde and as the noise domain.
    pub fn name(&self) -> &'static str {
        match self {
            Toy::Dino => "dino",
            Toy::Moons => "moons",
            Toy::Circles => "circles",
            Toy::Rings => "rings",
            Toy::SwissRoll => "swiss-roll",
            Toy::EightGaussians => "8gaussians",
            Toy::Pinwheel => "pinwheel",
            Toy::TwoSpirals => "two-spirals",
            Toy::Checkerboard => "checkerboard",
            Toy::TwoModes1d => "gmm1d",
        }
    }

    /// Dimension of a point: 1 for `gmm1d`, 2 otherwise.
    pub fn dim(&self) -> usize {
        match self {
            Toy::TwoModes1d => 1,
            _ => 2,
        }
    }

    /// `n` points drawn with `seed`; point `i` depends only on `(self, seed, i)`.
    pub fn sample(&self, n: usize, seed: u64) -> PointCloud {
        let source = NoiseSource::new(seed).fork(self.name());
        let mut data = Vec::with_capacity(n * self.dim());
        for i in 0..n {
            self.point(&mut source.stream(i as u64), &mut data);
        }
        PointCloud::from_finite(data, self.dim())
    }

    fn point(&self, rng: &mut ChaCha8Rng, out: &mut Vec<f64>) {
        match self {
            Toy::Dino => out.extend(dino::point(rng)),
            Toy::Moons => out.extend(shapes::moons(rng)),
            Toy::Circles => out.extend(shapes::circles(rng)),
            Toy::Rings => out.extend(shapes::rings(rng)),
            Toy::SwissRoll => out.extend(shapes::swiss_roll(rng)),
            Toy::EightGaussians => out.extend(shapes::eight_gaussians(rng)),
            Toy::Pinwheel => out.extend(shapes::pinwheel(rng)),
            Toy::TwoSpirals => out.extend(shapes::two_spirals(rng)),
            Toy::Checkerboard => out.extend(shapes::checkerboard(rng)),
            Toy::TwoModes1d => out.push(shapes::gmm1d(rng)),
        }
    }
}

impl fmt::Display for Toy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Toy {
    type Err = Error;

    /// Parses a [`Toy::name`] (ASCII case-insensitive); `eight-gaussians` is an alias of
    /// `8gaussians`.
    fn from_str(s: &str) -> Result<Self> {
        let name = s.trim().to_ascii_lowercase();
        if name == "eight-gaussians" {
            return Ok(Toy::EightGaussians);
        }
        ALL.iter().copied().find(|t| t.name() == name).ok_or_else(|| Error::UnknownToy { name: s.to_string() })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_parse_display_and_serde_agree() {
        for &toy in Toy::all() {
            assert_eq!(toy.name().parse::<Toy>().unwrap(), toy);
            assert_eq!(toy.to_string(), toy.name());
            let json = serde_json::to_string(&toy).unwrap();
            assert_eq!(json, format!("\"{}\"", toy.name()));
            assert_eq!(serde_json::from_str::<Toy>(&json).unwrap(), toy);
        }
        assert_eq!("eight-gaussians".parse::<Toy>().unwrap(), Toy::EightGaussians);
        assert_eq!(" Swiss-Roll ".parse::<Toy>().unwrap(), Toy::SwissRoll);
        assert_eq!(serde_json::from_str::<Toy>("\"eight-gaussians\"").unwrap(), Toy::EightGaussians);
    }

    #[test]
    fn unknown_name_lists_the_valid_ones() {
        let err = "dinosaur".parse::<Toy>().unwrap_err();
        assert!(matches!(&err, Error::UnknownToy { name } if name == "dinosaur"));
        let msg = err.to_string();
        for &toy in Toy::all() {
            assert!(msg.contains(toy.name()), "{msg}");
        }
    }
}
