//! A denoiser shaped like a network trained on the forward paths, shared by the tests.

use candle_core::Tensor;
use cdm_core::{Denoiser, ExactDensity, Gaussian, GaussianMixture};

/// What a network fitted on forward-process samples does: the exact ε̂* where the noised data
/// density is appreciable, and elsewhere the ε̂ of a broad Gaussian (a smooth extrapolation),
/// blended by `r = p_α(z) / (p_α(z) + τ)`.
pub struct TrainedLike {
    pub data: GaussianMixture,
    pub broad: Gaussian,
    pub tau: f64,
}

impl Denoiser for TrainedLike {
    fn eps(&self, z: &Tensor, log_snr: &Tensor) -> cdm_core::Result<Tensor> {
        let zs = z.flatten_all()?.to_vec1::<f64>()?;
        let alphas = log_snr.to_vec1::<f64>()?;
        let out: Vec<f64> = zs
            .iter()
            .zip(&alphas)
            .map(|(&v, &a)| {
                let (mut near, mut far) = ([0.0], [0.0]);
                self.data.eps_into(&[v], a, &mut near);
                self.broad.eps_into(&[v], a, &mut far);
                let p = self.data.log_prob(&[v], a).exp();
                let r = p / (p + self.tau);
                r * near[0] + (1.0 - r) * far[0]
            })
            .collect();
        Ok(Tensor::from_vec(out, z.shape(), z.device())?)
    }
}

impl TrainedLike {
    /// The two-mode mixture, extrapolated by N(0, 25), blended at τ = 10⁻³.
    pub fn two_mode() -> Self {
        Self { data: GaussianMixture::two_mode_1d(), broad: Gaussian::isotropic(vec![0.0], 25.0).unwrap(), tau: 1e-3 }
    }
}
