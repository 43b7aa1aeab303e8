//! Memory admission: a request whose working set is estimated beyond a limit is refused before
//! anything is allocated, with the estimate, the limit and the option to change.
//!
//! The estimates count the tensors that scale with the request (f32 states, f64 host noise),
//! not the network's activations, which the rows-per-call cap bounds separately. The limit is
//! `CDM_MEMORY_LIMIT` (bytes, or with a `K`, `M`, `G` or `T` suffix in powers of 1024) and
//! defaults to [`DEFAULT_LIMIT`].

use anyhow::{Context, Result, bail};

use crate::config::ModelSpec;

/// The default limit: 16 GiB.
pub const DEFAULT_LIMIT: u64 = 16 << 30;

/// The environment variable that sets the limit.
pub const LIMIT_VAR: &str = "CDM_MEMORY_LIMIT";

/// Refuses `what` (naming the option to lower) when `bytes` exceeds the limit.
pub fn admit(what: &str, bytes: u128) -> Result<()> {
    let limit = limit()?;
    if bytes > u128::from(limit) {
        bail!(
            "{what} would need about {} of memory, above the limit of {} (set {LIMIT_VAR} to change it)",
            human(bytes),
            human(u128::from(limit))
        );
    }
    Ok(())
}

/// Bytes of `rows` rows of `per_row` f32 values held `copies` times, plus their f64 host draw.
pub fn states(rows: usize, per_row: usize, copies: usize) -> u128 {
    let values = rows as u128 * per_row as u128;
    values * 4 * copies as u128 + values * 8
}

/// Bytes of ITD estimates over `inputs` inputs at once with `points` integration points each,
/// at `levels` log-SNR levels: the B·K noised rows of `dim` values with their noise and errors
/// (as [`states`] with 4 copies), once per level.
pub fn itd(inputs: usize, points: usize, dim: usize, levels: usize) -> u128 {
    let rows = inputs as u128 * points as u128;
    rows * dim as u128 * (4 * 4 + 8) * levels as u128
}

/// About how many parameters `spec` builds, from its widths alone (no tensor is made): the
/// linear layers of the MLPs exactly, the UNet's convolutions and attention as an upper
/// estimate (3×3 convolutions at up to twice a level's width, two per ResNet block).
pub fn parameters(spec: &ModelSpec) -> u128 {
    let n = |v: usize| v as u128;
    match spec {
        ModelSpec::Mlp(c) => {
            let (d, inputs) = (n(c.d_model), n(c.dim).saturating_mul(1 + 2 * n(c.input_frequencies)));
            let block = d.saturating_mul(d).saturating_mul(2).saturating_add(d.saturating_mul(6));
            inputs
                .saturating_mul(d)
                .saturating_add(n(c.blocks).saturating_mul(block))
                .saturating_add(d.saturating_mul(n(c.dim) + 4))
        }
        ModelSpec::PlainMlp(c) => {
            let h = n(c.hidden);
            let first = (n(c.dim).saturating_add(n(c.embedding_dim))).saturating_mul(h);
            first
                .saturating_add(n(c.linear_layers).saturating_mul(h.saturating_mul(h) + h))
                .saturating_add(h.saturating_mul(n(c.dim)))
        }
        ModelSpec::Unet(c) => {
            let first = n(c.block_out_channels.first().copied().unwrap_or(0));
            let temb = c.time_embedding_dim.map_or(first.saturating_mul(4), n);
            let per_level = |w: u128| {
                let blocks = 2 * n(c.layers_per_block) + 1;
                // two 3×3 convolutions of up to 2w inputs, the time projection, attention (4w²)
                blocks.saturating_mul(w.saturating_mul(w).saturating_mul(40).saturating_add(w.saturating_mul(temb)))
            };
            let levels = c.block_out_channels.iter().fold(0u128, |acc, &w| acc.saturating_add(per_level(n(w))));
            let io = (n(c.in_channels).saturating_add(n(c.out_channels))).saturating_mul(first).saturating_mul(9);
            levels.saturating_add(io).saturating_add(temb.saturating_mul(temb.saturating_add(first)))
        }
    }
}

/// Bytes a model of `parameters` f32 values takes in training: weights, gradients, two AdamW
/// moments, the EMA and the serialised checkpoint.
pub fn model_bytes(parameters: u128) -> u128 {
    parameters.saturating_mul(4 * 6)
}

fn limit() -> Result<u64> {
    std::env::var(LIMIT_VAR).map_or(Ok(DEFAULT_LIMIT), |text| parse_limit(&text))
}

/// `1000`, `512M`, `16G`: bytes, or a power-of-1024 suffix.
fn parse_limit(text: &str) -> Result<u64> {
    let text = text.trim();
    let (digits, shift) = match text.char_indices().last() {
        Some((i, c)) if c.is_ascii_alphabetic() => {
            let shift = match c.to_ascii_uppercase() {
                'K' => 10,
                'M' => 20,
                'G' => 30,
                'T' => 40,
                _ => bail!("{LIMIT_VAR}={text:?}: unknown suffix {c:?} (expected K, M, G or T)"),
            };
            (&text[..i], shift)
        }
        _ => (text, 0),
    };
    let value: u64 = digits.parse().with_context(|| format!("{LIMIT_VAR}={text:?}: expected a number of bytes"))?;
    value.checked_mul(1 << shift).with_context(|| format!("{LIMIT_VAR}={text:?}: too large"))
}

fn human(bytes: u128) -> String {
    let gib = bytes as f64 / f64::from(1u32 << 30);
    if gib >= 1.0 { format!("{gib:.1} GiB") } else { format!("{:.1} MiB", bytes as f64 / f64::from(1u32 << 20)) }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn estimates_and_messages() {
        // 10⁹ two-dimensional samples: 8 GB of f32 states per copy plus 16 GB of f64 noise
        assert_eq!(states(1_000_000_000, 2, 1), 24_000_000_000);
        let err = admit("--n 1000000000", states(1_000_000_000, 2, 4)).unwrap_err().to_string();
        assert!(err.contains("--n 1000000000") && err.contains("GiB") && err.contains(LIMIT_VAR), "{err}");
        assert!(admit("--n 2000", states(2000, 2, 4)).is_ok());
        assert_eq!(human(3 << 20), "3.0 MiB");
        // one input with K = 10⁹ points in 2-D: 48 GB; the default K = 256 over 256 inputs: 3 MiB
        assert_eq!(itd(1, 1_000_000_000, 2, 1), 48_000_000_000);
        assert!(admit("--points 1000000000", itd(1, 1_000_000_000, 2, 1)).is_err());
        assert!(admit("--points 256", itd(256, 256, 2, 1)).is_ok());
        // the residual MLP's linear layers exactly: 2·128 → 128 input, 2 blocks, 128 → 2 output
        let mlp = ModelSpec::Mlp(cdm_models::MlpConfig::default());
        assert_eq!(parameters(&mlp), 2 * 128 + 2 * (2 * 128 * 128 + 6 * 128) + 128 * 6);
        let huge = ModelSpec::Mlp(cdm_models::MlpConfig { d_model: 1 << 20, ..Default::default() });
        assert!(admit("the model", model_bytes(parameters(&huge))).is_err());
        assert!(admit("the model", model_bytes(parameters(&crate::config::ModelSpec::tiny_unet(3)))).is_ok());
        assert_eq!(parse_limit("1000").unwrap(), 1000);
        assert_eq!(parse_limit(" 512m ").unwrap(), 512 << 20);
        assert_eq!(parse_limit("16G").unwrap(), 16 << 30);
        for bad in ["", "lots", "3X", "99999999999T"] {
            assert!(parse_limit(bad).is_err(), "{bad:?}");
        }
    }
}
