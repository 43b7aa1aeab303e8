//! Subnormal floats are flushed to zero inside `without_subnormals` and on the threads of the
//! pool `in_thread_pool` builds, and arithmetic is unchanged outside.
//!
//! Its own test binary: the global rayon pool must be built here, by `in_thread_pool`.

#![cfg(any(target_arch = "x86_64", target_arch = "x86", target_arch = "aarch64"))]

use std::hint::black_box;

use cdm_kernels::{in_thread_pool, without_subnormals};
use rayon::prelude::*;

/// Half the smallest normal f32: a subnormal with gradual underflow, 0 when flushed.
fn half_smallest_normal() -> f32 {
    black_box(f32::MIN_POSITIVE) * black_box(0.5)
}

#[test]
fn subnormals_flush_inside_and_only_inside() {
    assert!(half_smallest_normal().is_subnormal());
    assert_eq!(without_subnormals(half_smallest_normal), 0.0);
    // restored afterwards
    assert!(half_smallest_normal().is_subnormal());
    // every worker of the pool computes flushed
    let results: Vec<f32> = in_thread_pool(|| (0..64).into_par_iter().map(|_| half_smallest_normal()).collect());
    assert!(results.iter().all(|&x| x == 0.0), "{results:?}");
}
