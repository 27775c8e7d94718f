//! The optional TOML file. Its values become clap's defaults, so the
//! environment and flags still win over it without a second merge step:
//! defaults < file < environment < flags.
//!
//! Keys are the environment variable names in lowercase (`backend_port`,
//! `ai_service_url`): one name per option to learn, whichever way it is set.

use std::{
    collections::BTreeSet,
    ffi::OsString,
    path::{Path, PathBuf},
};

use clap::{parser::ValueSource, ArgMatches, CommandFactory, FromArgMatches};

use super::Cli;

/// Read when it exists and neither `--config` nor `IMMICHVR_CONFIG` names a file.
pub const DEFAULT_PATH: &str = "/etc/immichvr/config.toml";

/// The arg of `Cli` that names the file; not itself a file key.
const FILE_ARG: &str = "config_file";

#[derive(Debug, thiserror::Error)]
pub enum FileError {
    #[error("cannot read the config file {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("config file {path} is not valid TOML: {message}")]
    Parse { path: PathBuf, message: String },
    #[error("config file {path}: unknown key `{key}` (keys are the environment variable names in lowercase, e.g. backend_port; `immichvr config --reference` lists them)")]
    UnknownKey { path: PathBuf, key: String },
    #[error("config file {path}: `{key}`: {message}")]
    BadValue {
        path: PathBuf,
        key: String,
        message: String,
    },
}

#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    /// Includes `--help` and `--version`, which clap prints and exits on.
    #[error(transparent)]
    Clap(#[from] clap::Error),
    #[error(transparent)]
    File(#[from] FileError),
}

/// The parsed command line and what it takes to explain where each value came from.
pub struct Loaded {
    pub cli: Cli,
    pub matches: ArgMatches,
    /// The file that was read, if any.
    pub file: Option<PathBuf>,
    /// Keys the file set.
    pub file_keys: BTreeSet<String>,
}

impl Loaded {
    /// `default`, `file`, `environment` or `flag`.
    pub fn source(&self, id: &str) -> &'static str {
        match self.matches.value_source(id) {
            Some(ValueSource::CommandLine) => "flag",
            Some(ValueSource::EnvVariable) => "environment",
            _ if self.file_keys.contains(&key_of_id(&Cli::command(), id)) => "file",
            _ => "default",
        }
    }
}

/// Parses the process's arguments and environment with the config file.
pub fn load() -> Result<Loaded, LoadError> {
    load_from(std::env::args_os())
}

pub fn load_from<I, T>(args: I) -> Result<Loaded, LoadError>
where
    I: IntoIterator<Item = T>,
    T: Into<OsString> + Clone,
{
    let args: Vec<OsString> = args.into_iter().map(Into::into).collect();
    let mut cmd = Cli::command();
    let file = file_path(&args);
    let mut file_keys = BTreeSet::new();
    if let Some(path) = &file {
        for (key, value) in read(path)? {
            let id = option_ids(&cmd)
                .into_iter()
                .find(|(_, k)| *k == key)
                .map(|(id, _)| id)
                .ok_or_else(|| FileError::UnknownKey {
                    path: path.clone(),
                    key: key.clone(),
                })?;
            let text = scalar(&value).ok_or_else(|| FileError::BadValue {
                path: path.clone(),
                key: key.clone(),
                message: "expected a string, number, boolean or list of strings".into(),
            })?;
            check_value(&cmd, &id, &text).map_err(|message| FileError::BadValue {
                path: path.clone(),
                key: key.clone(),
                message,
            })?;
            cmd = cmd.mut_arg(&id, |a| a.default_value(text));
            file_keys.insert(key);
        }
    }
    let matches = cmd.try_get_matches_from(args)?;
    let cli = Cli::from_arg_matches(&matches)?;
    Ok(Loaded {
        cli,
        matches,
        file,
        file_keys,
    })
}

/// `--config PATH`, `--config=PATH`, then `IMMICHVR_CONFIG`, then the
/// default path when that file exists. Found before clap parses because
/// the file changes what clap is told.
fn file_path(args: &[OsString]) -> Option<PathBuf> {
    let mut it = args.iter().skip(1);
    while let Some(a) = it.next() {
        if a == "--" {
            break;
        }
        if a == "--config" {
            return it.next().map(PathBuf::from);
        }
        if let Some(rest) = a.to_str().and_then(|s| s.strip_prefix("--config=")) {
            return Some(PathBuf::from(rest));
        }
    }
    if let Some(p) = std::env::var_os("IMMICHVR_CONFIG").filter(|p| !p.is_empty()) {
        return Some(PathBuf::from(p));
    }
    let default = Path::new(DEFAULT_PATH);
    default.exists().then(|| default.to_path_buf())
}

fn read(path: &Path) -> Result<toml::Table, FileError> {
    let text = std::fs::read_to_string(path).map_err(|source| FileError::Read {
        path: path.to_path_buf(),
        source,
    })?;
    text.parse::<toml::Table>().map_err(|e| FileError::Parse {
        path: path.to_path_buf(),
        message: e.message().to_string(),
    })
}

/// A TOML value as the text clap would get from the environment; lists
/// become comma-separated, like `AI_SERVICE_URL`.
fn scalar(v: &toml::Value) -> Option<String> {
    match v {
        toml::Value::String(s) => Some(s.clone()),
        toml::Value::Integer(i) => Some(i.to_string()),
        toml::Value::Float(f) => Some(f.to_string()),
        toml::Value::Boolean(b) => Some(b.to_string()),
        toml::Value::Array(items) => items
            .iter()
            .map(|i| match i {
                toml::Value::Array(_) | toml::Value::Table(_) => None,
                other => scalar(other),
            })
            .collect::<Option<Vec<_>>>()
            .map(|v| v.join(",")),
        toml::Value::Datetime(_) | toml::Value::Table(_) => None,
    }
}

/// Runs the option's own value parser so a bad value names the file key,
/// not a flag the operator never typed.
fn check_value(cmd: &clap::Command, id: &str, text: &str) -> Result<(), String> {
    let arg = cmd
        .get_arguments()
        .find(|a| a.get_id() == id)
        .expect("id comes from the command")
        .clone()
        .env(None::<&str>);
    let long = arg.get_long().unwrap_or(id).to_string();
    // The option alone in a throwaway command: clap runs its value parser.
    clap::Command::new("immichvr")
        .no_binary_name(true)
        .arg(arg)
        .try_get_matches_from([format!("--{long}={text}")])
        .map(|_| ())
        .map_err(|e| {
            let full = e.to_string();
            let first = full.lines().next().unwrap_or_default();
            first.trim_start_matches("error: ").to_string()
        })
}

/// (arg id, file key) of every option that has an environment variable.
pub fn option_ids(cmd: &clap::Command) -> Vec<(String, String)> {
    cmd.get_arguments()
        .filter(|a| a.get_id() != FILE_ARG)
        .filter_map(|a| {
            let env = a.get_env()?.to_str()?.to_lowercase();
            Some((a.get_id().to_string(), env))
        })
        .collect()
}

fn key_of_id(cmd: &clap::Command, id: &str) -> String {
    option_ids(cmd)
        .into_iter()
        .find(|(i, _)| i == id)
        .map(|(_, k)| k)
        .unwrap_or_default()
}

/// Whether an option holds a secret: those hide their environment value in `--help`.
pub fn is_secret(cmd: &clap::Command, id: &str) -> bool {
    cmd.get_arguments()
        .any(|a| a.get_id() == id && a.is_hide_env_values_set())
}
