//! `--device cpu|cuda[:N]|metal`, chosen at run time.

use anyhow::{Result, bail};
use candle_core::Device;

/// Parses a device name; GPU devices need the matching cargo feature.
pub fn parse_device(name: &str) -> Result<Device> {
    let lower = name.trim().to_ascii_lowercase();
    let ordinal = |rest: &str| -> Result<usize> {
        match rest {
            "" => Ok(0),
            r => r
                .strip_prefix(':')
                .and_then(|n| n.parse().ok())
                .ok_or_else(|| anyhow::anyhow!("bad device ordinal in {name:?}")),
        }
    };
    if lower == "cpu" {
        Ok(Device::Cpu)
    } else if let Some(rest) = lower.strip_prefix("cuda") {
        Ok(Device::new_cuda(ordinal(rest)?)?)
    } else if let Some(rest) = lower.strip_prefix("metal") {
        Ok(Device::new_metal(ordinal(rest)?)?)
    } else {
        bail!("unknown device {name:?}: expected cpu, cuda, cuda:N or metal")
    }
}
