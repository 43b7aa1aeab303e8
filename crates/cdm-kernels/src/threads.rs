//! Process-wide thread set-up for the kernels: the GEMM threading threshold, running a command
//! inside rayon's pool, and subnormal floats flushed to zero on the pool's threads.

/// Products with fewer multiply-adds than this run on one thread (see [`tune_gemm_threading`]).
pub const GEMM_THREADING_THRESHOLD: usize = 128 * 128 * 256;

/// Raises the size from which candle's GEMM backend (the `gemm` crate) splits a matrix product
/// across threads, from its default 48·48·256 multiply-adds to [`GEMM_THREADING_THRESHOLD`].
///
/// The setting is process-wide; binaries call this once at start-up. Below it the hand-off
/// costs more than the second thread gains: the residual MLP's training step at batch 128
/// (128×128×128 products) took 3.35 ms on two threads with the default and 1.85 ms with this
/// threshold, the same as on one thread; products from batch 1024 up, the UNet's convolutions
/// and attention stay multi-threaded.
pub fn tune_gemm_threading() {
    gemm::set_threading_threshold(GEMM_THREADING_THRESHOLD);
}

/// Stack size of rayon's worker threads when [`in_thread_pool`] configures the pool (the
/// main thread's usual size; candle's backward walks the graph recursively).
const WORKER_STACK_BYTES: usize = 8 << 20;

/// Runs `f` on a thread of rayon's global pool and returns its result; the calling thread
/// waits.
///
/// Every kernel splits its work with rayon. Called from outside the pool, each parallel loop
/// wakes the pool's threads and puts the caller to sleep until they finish — thousands of
/// round trips per UNet training step. From inside the pool a loop forks to the other threads
/// directly: the UNet 32×32 step measured 13 % faster run this way (1593 → 1382 ms median on
/// two threads). The `cdm` binary and the benchmarks run their whole command through this.
/// The pool keeps its usual size (`RAYON_NUM_THREADS`, else one thread per CPU); if it has not
/// been built yet, its threads get an 8 MiB stack and compute with subnormals flushed to zero
/// (see [`without_subnormals`]).
pub fn in_thread_pool<R: Send>(f: impl FnOnce() -> R + Send) -> R {
    // An error only means the global pool already exists, which is fine.
    let _ = rayon::ThreadPoolBuilder::new()
        .spawn_handler(|thread| {
            std::thread::Builder::new()
                .name(thread.name().unwrap_or("cdm-worker").to_string())
                .stack_size(WORKER_STACK_BYTES)
                .spawn(|| without_subnormals(|| thread.run()))?;
            Ok(())
        })
        .build_global();
    rayon::scope(|_| f())
}

/// Runs `f` on this thread with subnormal floats flushed to zero (x86: the FTZ and DAZ bits
/// of MXCSR; aarch64: FPCR.FZ), restoring the previous mode afterwards.
///
/// Training drives some values into the subnormal range (below 1.2·10⁻³⁸ in f32: the CDL's
/// softmax over noise levels, Adam's second moments of rarely-used weights), and x86 cores
/// take a microcode assist of about a hundred cycles for every operation on one. The main job
/// (Dino, ε-MSE + CDL) slowed from 330 to 25–40 steps/s over 40 000 steps that way, with the
/// "denormal operand" flag set in MXCSR. Flushed, such values are 0, a relative change below
/// 10⁻³⁸ of anything they are added to. On other architectures `f` runs unchanged.
#[cfg(any(target_arch = "x86_64", target_arch = "x86", target_arch = "aarch64"))]
pub fn without_subnormals<R>(f: impl FnOnce() -> R) -> R {
    // SAFETY: the mode is thread-local and restored when `f` returns; nothing here relies on
    // gradual underflow, tiny results only become 0.
    #[allow(unsafe_code)]
    unsafe {
        no_denormals::no_denormals(f)
    }
}

/// Runs `f` (this architecture has no flush-to-zero switch here).
#[cfg(not(any(target_arch = "x86_64", target_arch = "x86", target_arch = "aarch64")))]
pub fn without_subnormals<R>(f: impl FnOnce() -> R) -> R {
    f()
}
