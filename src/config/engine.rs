//! Options of the built-in depth engine (`AI_SERVICE_URL=builtin`):
//! Depth Anything V2 on this machine's CPU, and where its weights live.

use std::path::PathBuf;

use clap::Args;

#[derive(Debug, Clone, Args)]
pub struct EngineConfig {
    /// CPU threads of the built-in depth engine (0: half the cores, at least 1).
    #[arg(long, env = "BUILTIN_THREADS", default_value_t = 0)]
    pub builtin_threads: usize,

    /// Directory of model weights placed by hand (machines without internet): `Depth-Anything-V2-Small-hf/` as Hugging Face serves it (model.safetensors, config.json) or `depth-anything-v2-small.safetensors`; read-only.
    #[arg(long, env = "MODEL_DIR")]
    pub model_dir: Option<PathBuf>,

    /// Where model downloads come from (the Hugging Face Hub, or a mirror of it).
    #[arg(long, env = "HF_ENDPOINT", default_value = "https://huggingface.co")]
    pub hf_endpoint: String,

    /// Download this built-in depth model at start-up when it is not there yet (small, base or large; unset: nothing is downloaded unless asked).
    #[arg(long, env = "AUTO_DOWNLOAD_MODEL")]
    pub auto_download_model: Option<String>,
}

impl EngineConfig {
    /// `BUILTIN_THREADS`, or half the cores (at least 1).
    pub fn threads(&self) -> usize {
        if self.builtin_threads > 0 {
            return self.builtin_threads;
        }
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
        (cores / 2).max(1)
    }
}
