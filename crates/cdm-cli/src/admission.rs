//! Memory admission: a request whose working set is estimated beyond a limit is refused before
//! anything is allocated, with the estimate, the limit and the option to change.
//!
//! The estimates count the tensors that scale with the request (f32 states, f64 host noise),
//! not the network's activations, which the rows-per-call cap bounds separately. The limit is
//! `CDM_MEMORY_LIMIT` (bytes, or with a `K`, `M`, `G` or `T` suffix in powers of 1024) and
//! defaults to [`DEFAULT_LIMIT`].

use anyhow::{Context, Result, bail};

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
        assert_eq!(parse_limit("1000").unwrap(), 1000);
        assert_eq!(parse_limit(" 512m ").unwrap(), 512 << 20);
        assert_eq!(parse_limit("16G").unwrap(), 16 << 30);
        for bad in ["", "lots", "3X", "99999999999T"] {
            assert!(parse_limit(bad).is_err(), "{bad:?}");
        }
    }
}
