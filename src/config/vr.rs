//! Options for serving the ImmichVR app: its generated 3D assets, its
//! model catalogue, the app itself and HTTPS (a headset needs a secure
//! context for WebXR).

use std::path::PathBuf;

use clap::Args;

#[derive(Debug, Clone, Args)]
pub struct VrConfig {
    /// Directory for Gaussian splats (PLY and KSPLAT) [default: DATA_DIR/splats].
    #[arg(long, env = "SPLATS_DIR")]
    pub splats_dir: Option<PathBuf>,

    /// A built ImmichVR web app (upstream `services/frontend/build/`), served at `/` with the
    /// cross-origin isolation headers it needs; unset: `/` is the admin page.
    #[arg(long, env = "FRONTEND_DIR")]
    pub frontend_dir: Option<PathBuf>,

    /// PEM certificate chain for HTTPS (with TLS_KEY); see also TLS_SELF_SIGNED.
    #[arg(long, env = "TLS_CERT")]
    pub tls_cert: Option<PathBuf>,

    /// PEM private key for HTTPS (with TLS_CERT).
    #[arg(long, env = "TLS_KEY")]
    pub tls_key: Option<PathBuf>,

    /// Serve HTTPS with a self-signed certificate made on first start and
    /// kept in DATA_DIR/tls (when TLS_CERT/TLS_KEY are not set).
    #[arg(long, env = "TLS_SELF_SIGNED", default_value_t = false, action = clap::ArgAction::Set)]
    pub tls_self_signed: bool,

    /// Unload a model loaded by the app's automatic generation after this many ms without use.
    #[arg(long, env = "MODEL_TIMEOUT_AUTO", default_value_t = 30 * 60 * 1000)]
    pub model_timeout_auto_ms: u64,

    /// Unload a model loaded by hand (settings panel) after this many ms without use.
    #[arg(long, env = "MODEL_TIMEOUT_MANUAL", default_value_t = 10 * 60 * 1000)]
    pub model_timeout_manual_ms: u64,

    /// How often the model catalogue is reconciled with the AI service's own list, in seconds.
    #[arg(long, env = "MODEL_SYNC_SECS", default_value_t = 60)]
    pub model_sync_secs: u64,

    /// How long `POST /api/assets/{id}/generate` waits for its job before a 504
    /// (the job carries on; the app gives up at 120 s).
    #[arg(long, env = "GENERATE_WAIT_SECS", default_value_t = 100)]
    pub generate_wait_secs: u64,

    /// Timeout of one splat generation by the AI service, in seconds.
    #[arg(long, env = "AI_SPLAT_TIMEOUT_SECS", default_value_t = 600)]
    pub ai_splat_timeout_secs: u64,

    /// Timeout of a model download by the AI service, in seconds (large models take minutes).
    #[arg(long, env = "AI_DOWNLOAD_TIMEOUT_SECS", default_value_t = 3600)]
    pub ai_download_timeout_secs: u64,
}
