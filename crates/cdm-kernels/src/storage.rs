//! The CPU buffers behind candle tensors, as slices, and the kernels' dispatch on f32 / f64.
//!
//! Most kernels' CPU passes are a function of their inputs' elements: such a pass is a
//! [`SliceOp`], and [`run_slice_op`] is the body of its candle `cpu_fwd`, which hands it the
//! inputs as contiguous slices of their dtype and returns its output as CPU storage.

use candle_core::backend::BackendStorage;
use candle_core::{CpuStorage, DType, Layout, Result, Storage, WithDType, bail};

use crate::numerics::Real;

/// The CPU storage behind a tensor, or an error naming `op`.
pub(crate) fn cpu_storage<'a>(storage: &'a Storage, op: &str) -> Result<&'a CpuStorage> {
    match storage {
        Storage::Cpu(cpu) => Ok(cpu),
        _ => bail!("{op}: expected a CPU tensor"),
    }
}

/// The contiguous elements of `storage` under `layout`, or an error naming `op`.
pub(crate) fn contiguous_slice<'a, T: WithDType>(
    storage: &'a CpuStorage,
    layout: &Layout,
    op: &str,
) -> Result<&'a [T]> {
    let data = T::cpu_storage_as_slice(storage)?;
    match layout.contiguous_offsets() {
        Some((start, end)) => Ok(&data[start..end]),
        None => bail!("{op}: expects contiguous inputs (the public wrapper makes them so)"),
    }
}

/// f32 and f64, whose CPU buffers the in-place kernels overwrite (candle lends them by type
/// only immutably).
pub(crate) trait MutableBuffer: WithDType {
    /// The buffer of `storage`, if it holds this type.
    fn buffer_mut(storage: &mut CpuStorage) -> Option<&mut [Self]>;
}

impl MutableBuffer for f32 {
    fn buffer_mut(storage: &mut CpuStorage) -> Option<&mut [Self]> {
        match storage {
            CpuStorage::F32(values) => Some(values),
            _ => None,
        }
    }
}

impl MutableBuffer for f64 {
    fn buffer_mut(storage: &mut CpuStorage) -> Option<&mut [Self]> {
        match storage {
            CpuStorage::F64(values) => Some(values),
            _ => None,
        }
    }
}

/// The contiguous elements of `storage` under `layout`, to overwrite, or an error naming `op`.
pub(crate) fn contiguous_slice_mut<'a, T: MutableBuffer>(
    storage: &'a mut CpuStorage,
    layout: &Layout,
    op: &str,
) -> Result<&'a mut [T]> {
    let dtype = storage.dtype();
    let Some(data) = T::buffer_mut(storage) else { bail!("{op}: expected {:?}, got {dtype:?}", T::DTYPE) };
    match layout.contiguous_offsets() {
        Some((start, end)) => Ok(&mut data[start..end]),
        None => bail!("{op}: expects contiguous tensors to update in place"),
    }
}

/// `$run::<f32>(args…)` or `$run::<f64>(args…)` by `$dtype` (with `?`), or returns the
/// unsupported-dtype error of kernel `$name` from the enclosing function.
macro_rules! by_float_dtype {
    ($dtype:expr, $name:expr, $run:ident($($arg:expr),* $(,)?)) => {
        match $dtype {
            candle_core::DType::F32 => $run::<f32>($($arg),*)?,
            candle_core::DType::F64 => $run::<f64>($($arg),*)?,
            dt => return $crate::storage::unsupported_dtype($name, dt),
        }
    };
}
pub(crate) use by_float_dtype;

/// The error for a dtype the fused kernels do not implement.
pub(crate) fn unsupported_dtype<R>(op: &str, dtype: DType) -> Result<R> {
    bail!("{op}: unsupported dtype {dtype:?} (the fused CPU kernels take F32 and F64)")
}

/// A CPU pass that computes its output from the elements of `N` inputs of one float dtype.
pub(crate) trait SliceOp<const N: usize> {
    /// The op's name, for errors.
    const NAME: &'static str;

    /// The output's elements from the inputs' elements.
    fn compute<T: Real>(&self, inputs: [&[T]; N]) -> Vec<T>;
}

/// `op` on the CPU inputs `args`, which must be contiguous and all f32 or all f64.
pub(crate) fn run_slice_op<const N: usize, Op: SliceOp<N>>(
    op: &Op,
    args: [(&CpuStorage, &Layout); N],
) -> Result<CpuStorage> {
    fn run<T: Real, const N: usize, Op: SliceOp<N>>(op: &Op, args: [(&CpuStorage, &Layout); N]) -> Result<CpuStorage> {
        let mut inputs = [&[][..]; N];
        for (input, (storage, layout)) in inputs.iter_mut().zip(args) {
            *input = contiguous_slice(storage, layout, Op::NAME)?;
        }
        Ok(T::to_cpu_storage_owned(op.compute(inputs)))
    }
    let Some((first, _)) = args.first() else { bail!("{}: no inputs", Op::NAME) };
    match first.dtype() {
        DType::F32 => run::<f32, N, Op>(op, args),
        DType::F64 => run::<f64, N, Op>(op, args),
        dtype => unsupported_dtype(Op::NAME, dtype),
    }
}
