//! Global-norm gradient clipping, as `torch.nn.utils.clip_grad_norm_`:
//!
//! ```text
//! n = √(Σ_p ‖g_p‖²);   g_p ← g_p · min(1, c/(n + 1e-6))
//! ```
//!
//! The norm and the coefficient stay on the gradients' device: clipping never waits for the
//! device to finish the backward pass. Below the threshold the coefficient is exactly 1, which
//! leaves the gradients bit-identical.

use candle_core::{Tensor, Var, backprop::GradStore};

use crate::Result;

/// The global L2 norm of the gradients of `params` (missing gradients count as zero), as a
/// scalar tensor on their device. `params` is not empty (the trainer refuses that).
pub fn grad_norm(grads: &GradStore, params: &[(String, Var)]) -> Result<Tensor> {
    let squares = params
        .iter()
        .filter_map(|(_, v)| grads.get(v.as_tensor()))
        .map(|g| g.sqr()?.sum_all())
        .collect::<candle_core::Result<Vec<_>>>()?;
    match squares.is_empty() {
        true => Ok(params[0].1.as_tensor().zeros_like()?.sum_all()?),
        false => Ok(Tensor::stack(&squares, 0)?.sum_all()?.sqrt()?),
    }
}

/// Scales the gradients so their global norm is at most `max_norm`; returns the norm before.
pub fn clip_grad_norm(grads: &mut GradStore, params: &[(String, Var)], max_norm: f64) -> Result<Tensor> {
    let norm = grad_norm(grads, params)?;
    let coef = (norm.affine(1.0, 1e-6)?.recip()? * max_norm)?.minimum(1.0)?;
    for (_, v) in params {
        if let Some(g) = grads.remove(v.as_tensor()) {
            grads.insert(v.as_tensor(), g.broadcast_mul(&coef)?);
        }
    }
    Ok(norm)
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::Device;

    #[test]
    fn clips_to_the_requested_norm_and_reports_the_original() {
        let a = Var::new(&[1.0f64, 2.0, 3.0], &Device::Cpu).unwrap();
        let b = Var::new(&[4.0f64], &Device::Cpu).unwrap();
        let loss = ((a.as_tensor().sqr().unwrap().sum_all().unwrap() * 0.5).unwrap()
            + (b.as_tensor().sqr().unwrap().sum_all().unwrap() * 0.5).unwrap())
        .unwrap();
        let mut grads = loss.backward().unwrap();
        let params = vec![("a".to_string(), a), ("b".to_string(), b)];
        let host = |t: Tensor| t.to_scalar::<f64>().unwrap();
        let before = host(clip_grad_norm(&mut grads, &params, 1.0).unwrap());
        assert!((before - 30f64.sqrt()).abs() < 1e-12);
        assert!((host(grad_norm(&grads, &params).unwrap()) - 1.0).abs() < 1e-6);
        // below the threshold the gradients are left exactly as they are
        let kept: Vec<f64> = grads.get(params[0].1.as_tensor()).unwrap().to_vec1().unwrap();
        assert!((host(clip_grad_norm(&mut grads, &params, 10.0).unwrap()) - 1.0).abs() < 1e-6);
        assert_eq!(grads.get(params[0].1.as_tensor()).unwrap().to_vec1::<f64>().unwrap(), kept);
    }
}
