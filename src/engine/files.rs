//! Where a model's weights are, whether a file holds what the model needs
//! (every tensor by name and shape, nothing cut short), and loading it.
//!
//! Downloads go to `DATA_DIR/models/depth-anything-v2-<key>.safetensors`;
//! `MODEL_DIR` (read-only, placed by hand) is looked at first, in the
//! layout `huggingface-cli download --local-dir` leaves
//! (`Depth-Anything-V2-Small-hf/model.safetensors` beside its
//! `config.json` and `preprocessor_config.json`) or as one file named like
//! a download.

use std::{
    collections::HashMap,
    io::Read,
    path::{Path, PathBuf},
};

use candle_core::{DType, Device};
use serde_json::Value;

use super::{
    arch::{read_json, Arch, Processor},
    model::DepthAnything,
    EngineError,
};

/// The built-in models: key, Hugging Face repository, display name,
/// parameters, memory, licence.
pub const MODELS: &[(&str, &str, &str, &str, &str, &str)] = &[
    (
        "small",
        "depth-anything/Depth-Anything-V2-Small-hf",
        "Small",
        "25M",
        "~100MB",
        "Apache-2.0",
    ),
    (
        "base",
        "depth-anything/Depth-Anything-V2-Base-hf",
        "Base",
        "97M",
        "~400MB",
        "CC-BY-NC-4.0",
    ),
    (
        "large",
        "depth-anything/Depth-Anything-V2-Large-hf",
        "Large",
        "335M",
        "~1.3GB",
        "CC-BY-NC-4.0",
    ),
];

pub fn repo(key: &str) -> Option<&'static str> {
    MODELS.iter().find(|m| m.0 == key).map(|m| m.1)
}

pub fn license(key: &str) -> Option<&'static str> {
    MODELS.iter().find(|m| m.0 == key).map(|m| m.5)
}

/// A model's files, found.
#[derive(Debug, Clone, PartialEq)]
pub struct Found {
    pub weights: PathBuf,
    /// The directory holding `config.json` (and `preprocessor_config.json`)
    /// for these weights, if any: else the published configuration.
    pub config_dir: Option<PathBuf>,
    /// Placed by hand in MODEL_DIR: never deleted from here.
    pub placed: bool,
}

#[derive(Debug, Clone)]
pub struct Store {
    pub downloads: PathBuf,
    pub placed: Option<PathBuf>,
}

impl Store {
    pub fn file_name(key: &str) -> String {
        format!("depth-anything-v2-{key}.safetensors")
    }

    pub fn download_path(&self, key: &str) -> PathBuf {
        self.downloads.join(Self::file_name(key))
    }

    pub fn partial_path(&self, key: &str) -> PathBuf {
        self.downloads
            .join(format!("{}.partial", Self::file_name(key)))
    }

    /// Where `key`'s weights are: MODEL_DIR first, then the downloads.
    pub fn find(&self, key: &str) -> Option<Found> {
        let repo = repo(key)?;
        if let Some(dir) = &self.placed {
            let hf = dir.join(repo.rsplit('/').next().unwrap_or(repo));
            let w = hf.join("model.safetensors");
            if w.is_file() {
                let config = hf.join("config.json").is_file().then_some(hf);
                return Some(Found {
                    weights: w,
                    config_dir: config,
                    placed: true,
                });
            }
            let flat = dir.join(Self::file_name(key));
            if flat.is_file() {
                return Some(Found {
                    weights: flat,
                    config_dir: None,
                    placed: true,
                });
            }
        }
        let d = self.download_path(key);
        d.is_file().then_some(Found {
            weights: d,
            config_dir: None,
            placed: false,
        })
    }
}

/// The architecture and image processor for `found`: its own
/// configuration files, else the published ones of `key`.
pub fn configs(key: &str, found: &Found) -> Result<(Arch, Processor), EngineError> {
    let published =
        || Arch::published(key).ok_or_else(|| EngineError::UnknownModel(key.to_string()));
    let Some(dir) = &found.config_dir else {
        return Ok((published()?, Processor::default()));
    };
    let arch = match read_json(dir, "config.json")? {
        Some(v) => Arch::from_config(&v)?,
        None => published()?,
    };
    let proc = match read_json(dir, "preprocessor_config.json")? {
        Some(v) => Processor::from_config(&v)?,
        None => Processor::default(),
    };
    Ok((arch, proc))
}

fn dtype_size(dtype: &str) -> Option<u64> {
    match dtype {
        "F32" => Some(4),
        "F16" | "BF16" => Some(2),
        _ => None,
    }
}

/// Checks a safetensors file against `arch` by reading its header only:
/// every tensor the model reads is there with its shape, in a float type,
/// and the data is all there (nothing cut short, nothing after it).
/// Returns the file's size.
pub fn verify(path: &Path, arch: &Arch) -> Result<u64, EngineError> {
    let bad = |what: String| EngineError::BadModel(format!("{}: {what}", path.display()));
    let mut f = std::fs::File::open(path)?;
    let len = f.metadata()?.len();
    let mut n = [0u8; 8];
    f.read_exact(&mut n)
        .map_err(|_| bad("not a safetensors file (too short)".into()))?;
    let n = u64::from_le_bytes(n);
    if n > 100 << 20 || 8 + n > len {
        return Err(bad("not a safetensors file (bad header length)".into()));
    }
    let mut header = vec![0u8; n as usize];
    f.read_exact(&mut header)?;
    let header: HashMap<String, Value> = serde_json::from_slice(&header)
        .map_err(|e| bad(format!("not a safetensors file ({e})")))?;
    let mut end = 0u64;
    let mut shapes: HashMap<&str, (Vec<usize>, &str)> = HashMap::new();
    for (name, info) in &header {
        if name == "__metadata__" {
            continue;
        }
        let dtype = info["dtype"].as_str().unwrap_or_default();
        let shape: Vec<usize> = info["shape"]
            .as_array()
            .map(|a| {
                a.iter()
                    .filter_map(Value::as_u64)
                    .map(|v| v as usize)
                    .collect()
            })
            .unwrap_or_default();
        let offsets: Vec<u64> = info["data_offsets"]
            .as_array()
            .map(|a| a.iter().filter_map(Value::as_u64).collect())
            .unwrap_or_default();
        let [a, b] = offsets[..] else {
            return Err(bad(format!("tensor {name} has no data offsets")));
        };
        let elems: u64 = shape.iter().map(|&d| d as u64).product();
        if let Some(size) = dtype_size(dtype) {
            if b < a || b - a != elems * size {
                return Err(bad(format!(
                    "tensor {name}: its data does not match its shape"
                )));
            }
        }
        end = end.max(b);
        shapes.insert(name, (shape, dtype));
    }
    if 8 + n + end != len {
        return Err(bad(format!(
            "{len} bytes where the header describes {} (cut short or damaged)",
            8 + n + end
        )));
    }
    for (name, want) in arch.tensors() {
        match shapes.get(name.as_str()) {
            None => return Err(bad(format!("tensor {name} is missing"))),
            Some((got, _)) if *got != want => {
                return Err(bad(format!(
                    "tensor {name} has shape {got:?}, not {want:?}"
                )))
            }
            Some((_, dtype)) if dtype_size(dtype).is_none() => {
                return Err(bad(format!("tensor {name} is {dtype}, not a float type")))
            }
            Some(_) => {}
        }
    }
    Ok(len)
}

/// Reads, checks and builds the model (blocking: seconds for the large one).
pub fn load(key: &str, found: &Found) -> Result<(DepthAnything, Processor), EngineError> {
    let (arch, proc) = configs(key, found)?;
    verify(&found.weights, &arch)?;
    let bytes = std::fs::read(&found.weights)?;
    let dev = Device::Cpu;
    let tensors = candle_core::safetensors::load_buffer(&bytes, &dev)
        .map_err(|e| EngineError::BadModel(format!("{}: {e}", found.weights.display())))?;
    drop(bytes);
    let vb = candle_nn::VarBuilder::from_tensors(tensors, DType::F32, &dev);
    let model = DepthAnything::new(vb, &arch)
        .map_err(|e| EngineError::BadModel(format!("{}: {e}", found.weights.display())))?;
    Ok((model, proc))
}
