//! Helpers for the tests of the kernels and of layers built on them (the `testing` feature):
//! seeded inputs, relative errors, fused-vs-composed comparisons, central finite differences
//! and runs on thread pools of different sizes. They are for tests: a failing candle op panics.

use candle_core::{DType, Device, Result, Tensor, Var};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rand_distr::StandardNormal;

/// Seeded standard-normal values of `shape`, in `dtype`.
pub fn randn(shape: &[usize], dtype: DType, seed: u64) -> Tensor {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let n: usize = shape.iter().product();
    let values: Vec<f64> = (0..n).map(|_| rng.sample(StandardNormal)).collect();
    Tensor::from_vec(values, shape, &Device::Cpu).unwrap().to_dtype(dtype).unwrap()
}

/// `[1.2e-7, …]`.
pub fn sci(values: &[f64]) -> String {
    let items: Vec<String> = values.iter().map(|v| format!("{v:.1e}")).collect();
    format!("[{}]", items.join(", "))
}

/// `max|a − b| / max|b|`, in f64.
pub fn rel_err(a: &Tensor, b: &Tensor) -> f64 {
    assert_eq!(a.dims(), b.dims());
    let a = a.to_dtype(DType::F64).unwrap().flatten_all().unwrap().to_vec1::<f64>().unwrap();
    let b = b.to_dtype(DType::F64).unwrap().flatten_all().unwrap().to_vec1::<f64>().unwrap();
    let diff = a.iter().zip(&b).map(|(x, y)| (x - y).abs()).fold(0.0, f64::max);
    let scale = b.iter().map(|y| y.abs()).fold(0.0, f64::max);
    if scale == 0.0 { diff } else { diff / scale }
}

/// `Σ f(inputs) ⊙ r` and the gradient of every input, for a fixed random `r`.
fn loss_and_grads(inputs: &[Tensor], f: &dyn Fn(&[Tensor]) -> Result<Tensor>, seed: u64) -> (Tensor, Vec<Tensor>) {
    let vars: Vec<Var> = inputs.iter().map(|t| Var::from_tensor(t).unwrap()).collect();
    let tensors: Vec<Tensor> = vars.iter().map(|v| v.as_tensor().clone()).collect();
    let y = f(&tensors).unwrap();
    let r = randn(y.dims(), y.dtype(), seed);
    let grads = (&y * &r).unwrap().sum_all().unwrap().backward().unwrap();
    let grads = vars.iter().map(|v| grads.get(v).expect("an input has no gradient").clone()).collect();
    (y, grads)
}

/// Forward and per-input gradient relative errors ([`rel_err`]) of `fused` against
/// `composed`, for the loss `Σ y ⊙ r`.
pub fn compare(
    inputs: &[Tensor],
    fused: impl Fn(&[Tensor]) -> Result<Tensor>,
    composed: impl Fn(&[Tensor]) -> Result<Tensor>,
    seed: u64,
) -> (f64, Vec<f64>) {
    let (y_fused, g_fused) = loss_and_grads(inputs, &fused, seed);
    let (y_ref, g_ref) = loss_and_grads(inputs, &composed, seed);
    let grad_errs: Vec<f64> = g_fused.iter().zip(&g_ref).map(|(a, b)| rel_err(a, b)).collect();
    let fwd = rel_err(&y_fused, &y_ref);
    println!("fused vs composed {:?}: forward {fwd:.1e}, gradients {}", y_ref.dims(), sci(&grad_errs));
    (fwd, grad_errs)
}

/// Central finite differences (step 1e-5) of `Σ f(inputs) ⊙ r` against the backward pass,
/// for every element of every (f64) input: `max|numeric − analytic| / max|analytic|` per
/// input.
pub fn finite_difference_errors(inputs: &[Tensor], f: impl Fn(&[Tensor]) -> Result<Tensor>, seed: u64) -> Vec<f64> {
    const H: f64 = 1e-5;
    let (y, analytic) = loss_and_grads(inputs, &f, seed);
    let r = randn(y.dims(), DType::F64, seed);
    let loss = |args: &[Tensor]| (f(args).unwrap() * &r).unwrap().sum_all().unwrap().to_scalar::<f64>().unwrap();
    let mut errors = Vec::new();
    for (i, input) in inputs.iter().enumerate() {
        let base = input.flatten_all().unwrap().to_vec1::<f64>().unwrap();
        let mut numeric = Vec::with_capacity(base.len());
        for k in 0..base.len() {
            let eval = |delta: f64| {
                let mut v = base.clone();
                v[k] += delta;
                let mut args = inputs.to_vec();
                args[i] = Tensor::from_vec(v, input.shape(), &Device::Cpu).unwrap();
                loss(&args)
            };
            numeric.push((eval(H) - eval(-H)) / (2.0 * H));
        }
        let numeric = Tensor::from_vec(numeric, input.shape(), &Device::Cpu).unwrap();
        errors.push(rel_err(&numeric, &analytic[i]));
    }
    println!("finite differences {:?}: gradients {}", y.dims(), sci(&errors));
    errors
}

/// `f(inputs)` and the gradient of every input for the loss `Σ f(inputs) ⊙ r`, computed on a
/// rayon pool of `threads` threads, as flat f64 vectors (exact copies of f32 values).
pub fn outputs_on_threads(
    threads: usize,
    inputs: &[Tensor],
    f: impl Fn(&[Tensor]) -> Result<Tensor> + Sync,
    seed: u64,
) -> Vec<Vec<f64>> {
    let pool = rayon::ThreadPoolBuilder::new().num_threads(threads).build().unwrap();
    pool.install(|| {
        let (y, grads) = loss_and_grads(inputs, &f, seed);
        let flat = |t: &Tensor| t.to_dtype(DType::F64).unwrap().flatten_all().unwrap().to_vec1::<f64>().unwrap();
        std::iter::once(&y).chain(&grads).map(flat).collect()
    })
}

/// Asserts that `f` and its gradients ([`outputs_on_threads`]) are bit-identical on one, two
/// and three threads.
pub fn assert_independent_of_thread_count(
    inputs: &[Tensor],
    f: impl Fn(&[Tensor]) -> Result<Tensor> + Sync,
    seed: u64,
) {
    let one = outputs_on_threads(1, inputs, &f, seed);
    for threads in [2, 3] {
        assert!(one == outputs_on_threads(threads, inputs, &f, seed), "1 and {threads} threads differ");
    }
}
