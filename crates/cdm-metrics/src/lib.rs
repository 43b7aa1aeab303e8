//! # cdm-metrics
//!
//! Evaluation for diffusion models trained with the contrastive diffusion loss (Wu et al.,
//! NeurIPS 2024, arXiv:2407.08946), on top of [`cdm_core`]:
//!
//! - [`mmd`]: the paper's MMD² (1-D-normalised Gaussian kernel, unbiased U-statistic), its
//!   bandwidth rule and the median heuristic;
//! - [`sliced_wasserstein`](mod@sliced_wasserstein): exact sliced W₂ between point clouds;
//! - [`ood_map`]: the score-error map over (timestep, value) of Figure 1, and its split into
//!   the region near the forward paths and the region away from them;
//! - [`nll`]: dataset NLL in nats and bits/dim through the ITD estimator;
//! - [`noise_accuracy`]: accuracy and confusion matrix of the implicit noise-level classifier;
//! - [`fid`]: FID and KID of image sets with the FID Inception-v3 network on candle (weights
//!   from `cargo xtask fetch-fid`);
//! - [`stats`]: mean ± SD over seeds and Welch intervals for comparisons between recipes;
//! - [`plot`]: PNG figures (samples vs data, error heat map with trajectories, line charts,
//!   bands over seeds).
//!
//! Every random draw comes from a seeded [`cdm_core::NoiseSource`], so a metric computed twice
//! from the same seed is bit-identical.
//!
//! ```
//! use cdm_core::NoiseSource;
//! use cdm_metrics::{mmd2, sliced_wasserstein};
//!
//! // two 1-D samples, the second shifted by 0.5
//! let x: Vec<f64> = (0..50).map(|i| i as f64 / 50.0).collect();
//! let y: Vec<f64> = x.iter().map(|v| v + 0.5).collect();
//! assert!(mmd2(&x, &y, 1, 0.03)? > mmd2(&x, &x, 1, 0.03)?);
//! let sw = sliced_wasserstein(&x, &y, 1, 8, &NoiseSource::new(0))?;
//! assert!((sw - 0.5).abs() < 1e-12);
//! # Ok::<(), cdm_metrics::Error>(())
//! ```
#![doc = include_str!("../README.md")]

mod error;
pub mod fid;
pub mod mmd;
pub mod nll;
pub mod noise_accuracy;
pub mod ood_map;
pub mod plot;
pub mod sliced_wasserstein;
pub mod stats;

pub use error::{Error, Result};
pub use mmd::{median_heuristic, mmd2, mmd2_bandwidths, paper_bandwidth, paper_bandwidth_grid};
pub use nll::{NllReport, dataset_nll};
pub use noise_accuracy::{NoiseAccuracy, noise_level_accuracy};
pub use ood_map::{ErrorMap, RegionMeans, ood_error_map};
pub use plot::{BandPoint, band_chart, heatmap_with_trajectories, line_chart, scatter_vs_data};
pub use sliced_wasserstein::{sliced_wasserstein, wasserstein_1d};
pub use stats::{Difference, Spread, student_t_quantile};
