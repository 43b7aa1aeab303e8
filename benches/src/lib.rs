//! The workloads timed by the criterion benches (`cargo bench -p cdm-benches`) and by the peer
//! benchmark against PyTorch (`cargo xtask bench --peer`, the `peer` binary of this crate).
//!
//! Each [`workloads::Workload`] owns a seeded model, its inputs and (for training steps) its
//! optimiser, and runs one iteration per call, so criterion and the peer table time identical
//! code. `benches/peer/bench_torch.py` builds the same workloads in PyTorch.

pub mod stats;
pub mod workloads;

// Every bench binary links this crate, so each runs on the `cdm` binary's allocator: candle
// allocates every op's output, and mimalloc reuses those buffers where the system allocator
// returns large ones to the OS (a page fault per op and page). Timings under the system
// allocator were measuring that instead of the kernels.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;
