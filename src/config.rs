//! Configuration: every option is an environment variable and a flag.
//!
//! The environment names are the original backend's, so an existing
//! `.env` keeps working.

use std::{fmt, net::IpAddr, path::PathBuf, str::FromStr};

use clap::{Args, Parser, Subcommand, ValueEnum};

pub mod background;
pub mod engine;
pub mod file;
pub mod reference;
pub mod vr;

/// A value that must never reach a log line or a response.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("\"<redacted>\"")
    }
}

impl FromStr for Secret {
    type Err = std::convert::Infallible;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Ok(Secret(s.to_string()))
    }
}

#[derive(Debug, Clone, Parser)]
#[command(
    name = "immichvr",
    version,
    about = "ImmichVR backend: depth maps for your Immich library, in one binary"
)]
pub struct Cli {
    /// TOML file with the same keys as the environment, lowercase (e.g. backend_port) [default: /etc/immichvr/config.toml when it exists].
    #[arg(
        long = "config",
        env = "IMMICHVR_CONFIG",
        value_name = "PATH",
        global = true
    )]
    pub config_file: Option<PathBuf>,
    #[command(flatten)]
    pub config: Config,
    #[command(subcommand)]
    pub command: Option<Command>,
}

/// The port when `BACKEND_PORT` does not say.
pub const DEFAULT_PORT: u16 = 3000;

#[derive(Debug, Clone, Subcommand)]
pub enum Command {
    /// Run the service (the default).
    Serve,
    /// Print the OpenAPI spec (YAML) that the server serves.
    Openapi {
        /// Leave out the operations with a multipart body (for progenitor,
        /// which refuses the whole spec over one; use `uploadMediaRaw`).
        #[arg(long)]
        without_multipart: bool,
    },
    /// Print the effective configuration and where each value came from (secrets redacted).
    Config {
        /// Print the configuration reference as a Markdown table instead.
        #[arg(long)]
        reference: bool,
    },
    /// Print an environment file with every option commented out and documented.
    EnvTemplate,
    /// GET /health of the service on the configured port; exit status 0 when healthy.
    Healthcheck {
        /// Seconds to wait for the answer.
        #[arg(long, default_value_t = 5)]
        timeout_secs: u64,
    },
    /// Write a consistent copy of the database to PATH (through the running service when it is up).
    Backup {
        /// Where to write the copy; must not exist yet.
        path: PathBuf,
    },
    /// The built-in depth engine's models: list, download, or make one depth map.
    Models {
        #[command(subcommand)]
        action: ModelsCommand,
    },
}

#[derive(Debug, Clone, Subcommand)]
pub enum ModelsCommand {
    /// The built-in models, their licence and whether they are on this machine.
    List,
    /// Download a built-in model from Hugging Face (through the running service when it is up).
    Download {
        /// small (Apache-2.0), base or large (CC-BY-NC-4.0: non-commercial use only).
        key: String,
    },
    /// Make the depth map of one photo with the built-in engine, here, and say how long it took.
    Depth {
        /// The photo (JPEG, PNG, WebP, GIF, BMP, TIFF).
        photo: PathBuf,
        /// Where to write the depth map (8-bit grayscale PNG).
        #[arg(long)]
        out: Option<PathBuf>,
        /// The model: small, base or large.
        #[arg(long, default_value = "small")]
        model: String,
        /// Times to run it (the first includes loading the model).
        #[arg(long, default_value_t = 1)]
        runs: usize,
        /// One JSON line per run (seconds per stage) instead of prose.
        #[arg(long)]
        json: bool,
    },
}

/// Whether requests need a sign-in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum AuthSetting {
    On,
    Off,
}

/// How log lines are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    /// Human-readable lines.
    Text,
    /// One JSON object per line, for log collectors.
    Json,
}

#[derive(Debug, Clone, Args)]
pub struct Config {
    /// TCP port of the HTTP server.
    #[arg(long = "port", env = "BACKEND_PORT", default_value_t = DEFAULT_PORT)]
    pub port: u16,

    /// Address to bind (0.0.0.0 = every interface).
    #[arg(long, env = "BIND_ADDR", default_value = "0.0.0.0")]
    pub bind_addr: IpAddr,

    /// Directory holding the database (immichvr.redb), and by default uploads and depth maps.
    #[arg(long, env = "DATA_DIR", default_value = "./data")]
    pub data_dir: PathBuf,

    /// Directory for uploaded originals [default: DATA_DIR/uploads].
    #[arg(long, env = "UPLOAD_DIR")]
    pub upload_dir: Option<PathBuf>,

    /// Directory for generated depth maps [default: DATA_DIR/depth_maps].
    #[arg(long, env = "DEPTH_MAPS_DIR")]
    pub depth_maps_dir: Option<PathBuf>,

    /// Largest accepted upload, in bytes (413 beyond it).
    #[arg(long, env = "MAX_UPLOAD_BYTES", default_value_t = 100 * 1024 * 1024)]
    pub max_upload_bytes: u64,

    /// Uploads received at the same time at most; more wait for a slot (UPLOAD_WAIT_SECS).
    #[arg(long, env = "UPLOAD_CONCURRENCY", default_value_t = 4)]
    pub upload_concurrency: usize,

    /// Seconds an upload waits for a free slot before it is refused with 429.
    #[arg(long, env = "UPLOAD_WAIT_SECS", default_value_t = 30)]
    pub upload_wait_secs: u64,

    /// Uploads that may wait for a slot at once; beyond them an upload is refused with 429 at once.
    #[arg(long, env = "UPLOAD_QUEUE", default_value_t = 1024)]
    pub upload_queue: usize,

    /// Where depth maps are made: `builtin` (Depth Anything V2 in this binary, on the CPU) or an AI service base URL; several may be given, comma-separated (e.g. `builtin,http://gpu:5000`).
    #[arg(long, env = "AI_SERVICE_URL", default_value = "builtin")]
    pub ai_service_url: String,

    /// Requests in flight at most per AI service URL.
    #[arg(long, env = "AI_CONCURRENCY", default_value_t = 1)]
    pub ai_concurrency: usize,

    /// Whole-request timeout of one AI call, in seconds.
    #[arg(long, env = "AI_TIMEOUT_SECS", default_value_t = 120)]
    pub ai_timeout_secs: u64,

    /// After this many seconds of an AI service answering "model not
    /// loaded", the log says so with a hint (then at most once per period).
    #[arg(long, env = "AI_NOT_READY_HINT_SECS", default_value_t = 60)]
    pub ai_not_ready_hint_secs: u64,

    /// Largest accepted AI answer, in bytes.
    #[arg(long, env = "AI_MAX_RESPONSE_BYTES", default_value_t = 256 * 1024 * 1024)]
    pub ai_max_response_bytes: u64,

    /// Model name recorded with each depth map (unless the AI service names one).
    #[arg(long, env = "AI_MODEL_NAME", default_value = "Depth-Anything-V2")]
    pub ai_model_name: String,

    /// Model version recorded with each depth map.
    #[arg(long, env = "AI_MODEL_VERSION", default_value = "small")]
    pub ai_model_version: String,

    /// Frames per second sampled from videos.
    #[arg(long, env = "VIDEO_FPS", default_value_t = 1)]
    pub video_fps: u32,

    /// Most frames sampled from one video.
    #[arg(long, env = "VIDEO_MAX_FRAMES", default_value_t = 30)]
    pub video_max_frames: u32,

    /// First retry delay after a failed attempt, in seconds (doubles each attempt, capped at 5 minutes).
    #[arg(long, env = "RETRY_BASE_SECS", default_value_t = 2.0)]
    pub retry_base_secs: f64,

    /// Start the processing worker at boot.
    #[arg(long, env = "AUTO_START_WORKER", default_value_t = true, action = clap::ArgAction::Set)]
    pub auto_start_worker: bool,

    /// Seconds in-flight items get to finish on shutdown before they return to the queue.
    #[arg(long, env = "SHUTDOWN_GRACE_SECS", default_value_t = 30)]
    pub shutdown_grace_secs: u64,

    /// The operator's bearer token, for scripts and generated clients (and a sign-in that acts as an operator). With IMMICH_URL, people sign in with their Immich account and this is optional; without IMMICH_URL, only this machine is served until it is set.
    #[arg(long, env = "AUTH_TOKEN", hide_env_values = true)]
    pub auth_token: Option<Secret>,

    /// `off` opens everything to whoever can reach the port, without a sign-in (the behaviour before sign-in existed; the start-up log warns). `on`: sign in with Immich (IMMICH_URL), the AUTH_TOKEN, or only this machine when neither is set.
    #[arg(long, env = "AUTH", value_enum, default_value_t = AuthSetting::On)]
    pub auth: AuthSetting,

    /// Seconds a browser sign-in lasts; its open sockets are closed when it ends.
    #[arg(long, env = "SESSION_TTL_SECS", default_value_t = 12 * 3600)]
    pub session_ttl_secs: u64,

    /// How often each signed-in user's Immich key is checked, in seconds; a key revoked in Immich ends that user's sign-ins at the next check (at once when a request meets the refusal first).
    #[arg(long, env = "KEY_CHECK_SECS", default_value_t = 60)]
    pub key_check_secs: u64,

    /// Seconds what Immich says a user may see (partners, shared albums, one asset) is remembered; a share revoked in Immich ends access within this time.
    #[arg(long, env = "SHARING_CACHE_SECS", default_value_t = 120)]
    pub sharing_cache_secs: u64,

    /// Origins allowed to call the API from a browser, comma-separated (unset: same origin only).
    #[arg(long, env = "CORS_ORIGINS")]
    pub cors_origins: Option<String>,

    /// Reverse proxies whose X-Forwarded-Proto/-Host/-For (or Forwarded) headers are believed, comma-separated addresses or CIDR blocks; from any other peer those headers are ignored.
    #[arg(long, env = "TRUSTED_PROXIES", default_value = "127.0.0.0/8,::1")]
    pub trusted_proxies: String,

    /// The address people open the service at, when it differs from what requests name (e.g. https://photos.example.org behind a proxy that rewrites Host); pages of this origin count as the service's own.
    #[arg(long, env = "PUBLIC_URL")]
    pub public_url: Option<String>,

    /// Seconds a client may stall while sending a request body or receiving an answer before its request fails (a handler that is busy is never cut).
    #[arg(long, env = "IDLE_TIMEOUT_SECS", default_value_t = 60)]
    pub idle_timeout_secs: u64,

    /// Seconds a client may take to send a request's line and headers (or a TLS handshake); also how long a connection with no request in progress stays open (an idle keep-alive, HTTP/2 without an open stream) and the HTTP/2 ping interval and timeout.
    #[arg(long, env = "HEADER_TIMEOUT_SECS", default_value_t = 20)]
    pub header_timeout_secs: u64,

    /// Open connections at most (more wait in the kernel's backlog); lowered at start-up to fit the open-file limit.
    #[arg(long, env = "MAX_CONNECTIONS", default_value_t = 4096)]
    pub max_connections: usize,

    /// Open connections at most from one client address (more are answered 503); at most half of MAX_CONNECTIONS. Behind a reverse proxy every client has the proxy's address.
    #[arg(long, env = "MAX_CONNECTIONS_PER_IP", default_value_t = 1024)]
    pub max_connections_per_ip: usize,

    /// Live channel (Socket.IO) sessions at most, WebSocket and polling alike; more are answered 503.
    #[arg(long, env = "MAX_LIVE_SESSIONS", default_value_t = 1024)]
    pub max_live_sessions: usize,

    /// Live channel sessions at most from one client address (more are answered 503). Behind a reverse proxy every client has the proxy's address.
    #[arg(long, env = "MAX_LIVE_SESSIONS_PER_IP", default_value_t = 64)]
    pub max_live_sessions_per_ip: usize,

    /// Dotted host names the API answers while AUTH_TOKEN is unset, comma-separated (`*.example.org` for a zone); IP addresses, localhost, this machine's name and single-label names always work (DNS rebinding guard).
    #[arg(long, env = "ALLOWED_HOSTS")]
    pub allowed_hosts: Option<String>,

    /// Seconds a file that no row names must be old before the start-up clean-up removes it.
    #[arg(long, env = "ORPHAN_GRACE_SECS", default_value_t = 3600)]
    pub orphan_grace_secs: u64,

    /// Deleted media items after which start-up considers compacting the database.
    #[arg(long, env = "COMPACT_AFTER_DELETES", default_value_t = 10_000)]
    pub compact_after_deletes: u64,

    /// Free bytes inside the database file that make start-up compact it (once COMPACT_AFTER_DELETES is reached).
    #[arg(long, env = "COMPACT_MIN_FREE_BYTES", default_value_t = 64 * 1024 * 1024)]
    pub compact_min_free_bytes: u64,

    /// Database files up to this size are read through at start-up (every row of every table), so that damage is reported at once.
    #[arg(long, env = "INTEGRITY_CHECK_MAX_BYTES", default_value_t = 256 * 1024 * 1024)]
    pub integrity_check_max_bytes: u64,

    /// Log line format: text or json (what to log is RUST_LOG's business, e.g. RUST_LOG=info,immichvr=debug).
    #[arg(long, env = "LOG_FORMAT", value_enum, default_value_t = LogFormat::Text)]
    pub log_format: LogFormat,

    /// Immich server URL (with or without a trailing /api).
    #[arg(long, env = "IMMICH_URL")]
    pub immich_url: Option<String>,

    /// Immich API key (never logged).
    #[arg(long, env = "IMMICH_API_KEY", hide_env_values = true)]
    pub immich_api_key: Option<Secret>,

    #[command(flatten)]
    pub vr: vr::VrConfig,

    #[command(flatten)]
    pub background: background::BackgroundConfig,

    #[command(flatten)]
    pub engine: engine::EngineConfig,
}

impl Config {
    /// Defaults with the data directory set: what tests and embedders start from.
    pub fn with_data_dir(data_dir: impl Into<PathBuf>) -> Self {
        let mut cli = Cli::parse_from(["immichvr"]);
        cli.config.data_dir = data_dir.into();
        cli.config
    }

    /// `AUTH=off`: no sign-in at all.
    pub fn auth_off(&self) -> bool {
        self.auth == AuthSetting::Off
    }

    pub fn upload_dir(&self) -> PathBuf {
        self.upload_dir
            .clone()
            .unwrap_or_else(|| self.data_dir.join("uploads"))
    }

    pub fn depth_maps_dir(&self) -> PathBuf {
        self.depth_maps_dir
            .clone()
            .unwrap_or_else(|| self.data_dir.join("depth_maps"))
    }

    pub fn splats_dir(&self) -> PathBuf {
        self.vr
            .splats_dir
            .clone()
            .unwrap_or_else(|| self.data_dir.join("splats"))
    }

    pub fn database_path(&self) -> PathBuf {
        self.data_dir.join("immichvr.redb")
    }

    /// The AI service URLs, trimmed, without trailing slashes.
    pub fn ai_urls(&self) -> Vec<String> {
        self.ai_service_url
            .split(',')
            .map(|u| u.trim().trim_end_matches('/').to_string())
            .filter(|u| !u.is_empty())
            .collect()
    }
}
