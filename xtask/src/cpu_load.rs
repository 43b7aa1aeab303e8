//! How busy the machine was with *other* work while a benchmark ran (Linux `/proc` only).
//!
//! The share is `(busy CPU time of the whole machine − CPU time of our finished children) /
//! total CPU time` over the interval, from `/proc/stat` and this process's `cutime + cstime`.
//! Timings taken while it is high (other builds or benchmarks running) are not comparable.

/// A reading of the machine's and our children's CPU clock ticks.
#[derive(Clone, Copy, Debug)]
pub struct CpuTicks {
    busy: u64,
    total: u64,
    children: u64,
}

impl CpuTicks {
    /// The current counters, or `None` where `/proc` is unavailable.
    pub fn now() -> Option<Self> {
        let stat = std::fs::read_to_string("/proc/stat").ok()?;
        // cpu user nice system idle iowait irq softirq steal …
        let cpu: Vec<u64> =
            stat.lines().next()?.split_whitespace().skip(1).take(8).map(|v| v.parse().ok()).collect::<Option<_>>()?;
        let total: u64 = cpu.iter().sum();
        let own = std::fs::read_to_string("/proc/self/stat").ok()?;
        // fields after the command name: state is field 3, cutime 16 and cstime 17
        let fields: Vec<&str> = own.rsplit_once(')')?.1.split_whitespace().collect();
        let children = fields.get(13)?.parse::<u64>().ok()? + fields.get(14)?.parse::<u64>().ok()?;
        Some(Self { busy: total - cpu.get(3)? - cpu.get(4)?, total, children })
    }

    /// The share of all CPU time since `earlier` that went to processes other than our children.
    pub fn others_share_since(&self, earlier: &Self) -> f64 {
        let total = self.total.saturating_sub(earlier.total).max(1);
        let ours = self.children.saturating_sub(earlier.children);
        self.busy.saturating_sub(earlier.busy).saturating_sub(ours) as f64 / total as f64
    }
}
