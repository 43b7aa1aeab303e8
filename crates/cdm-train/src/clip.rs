//! Global-norm gradient clipping (as `torch.nn.utils.clip_grad_norm_`).
//!
//! ```text
//! n = √(Σ_p ‖g_p‖²);   if n > c:  g_p ← g_p · c/(n + 1e-6)
//! ```

use candle_core::{Var, backprop::GradStore};

use crate::Result;

/// The global L2 norm of the gradients of `params` (missing gradients count as zero).
pub fn grad_norm(grads: &GradStore, params: &[(String, Var)]) -> Result<f64> {
    let mut total = 0.0f64;
    for (_, v) in params {
        if let Some(g) = grads.get(v.as_tensor()) {
            total += g.sqr()?.sum_all()?.to_dtype(candle_core::DType::F64)?.to_scalar::<f64>()?;
        }
    }
    Ok(total.sqrt())
}

/// Scales the gradients so their global norm is at most `max_norm`; returns the norm before.
pub fn clip_grad_norm(grads: &mut GradStore, params: &[(String, Var)], max_norm: f64) -> Result<f64> {
    let norm = grad_norm(grads, params)?;
    if norm > max_norm {
        let scale = max_norm / (norm + 1e-6);
        for (_, v) in params {
            if let Some(g) = grads.remove(v.as_tensor()) {
                grads.insert(v.as_tensor(), (g * scale)?);
            }
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
        let before = clip_grad_norm(&mut grads, &params, 1.0).unwrap();
        assert!((before - 30f64.sqrt()).abs() < 1e-12);
        assert!((grad_norm(&grads, &params).unwrap() - 1.0).abs() < 1e-6);
        assert!((clip_grad_norm(&mut grads, &params, 10.0).unwrap() - 1.0).abs() < 1e-6);
    }
}
