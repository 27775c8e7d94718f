//! Everything printed about the options comes from clap's own description
//! of them (the same source as `--help`), so the reference, the env file
//! template and `immichvr config` cannot drift from the binary.

use std::fmt::Write;

use clap::{Arg, CommandFactory};

use super::{
    file::{is_secret, option_ids, Loaded, DEFAULT_PATH},
    Cli,
};

const REDACTED: &str = "<redacted>";

fn options() -> Vec<(Arg, String)> {
    let cmd = Cli::command();
    option_ids(&cmd)
        .into_iter()
        .map(|(id, key)| {
            let arg = cmd
                .get_arguments()
                .find(|a| a.get_id() == id.as_str())
                .expect("id comes from the command")
                .clone();
            (arg, key)
        })
        .collect()
}

fn help(arg: &Arg) -> String {
    arg.get_help().map(|h| h.to_string()).unwrap_or_default()
}

fn default(arg: &Arg) -> Option<String> {
    let values: Vec<String> = arg
        .get_default_values()
        .iter()
        .map(|v| v.to_string_lossy().into_owned())
        .collect();
    (!values.is_empty()).then(|| values.join(","))
}

/// The configuration reference as a Markdown table (`immichvr config --reference`).
pub fn markdown() -> String {
    let mut out = String::from(
        "| environment variable | config file key | flag | default | meaning |\n|---|---|---|---|---|\n",
    );
    for (arg, key) in options() {
        let env = arg.get_env().map(|e| e.to_string_lossy().into_owned());
        let flag = arg
            .get_long()
            .map(|l| format!("`--{l}`"))
            .unwrap_or_default();
        let default = default(&arg)
            .map(|d| format!("`{d}`"))
            .unwrap_or_else(|| "(none)".into());
        let _ = writeln!(
            out,
            "| `{}` | `{key}` | {flag} | {default} | {} |",
            env.unwrap_or_default(),
            help(&arg).replace('|', "\\|")
        );
    }
    out
}

/// An environment file with every option commented out (`immichvr env-template`).
pub fn env_template() -> String {
    let mut out = String::from(
        "# ImmichVR configuration, read by the systemd unit (EnvironmentFile=).\n\
         # Every option is listed with its default, commented out: uncomment and\n\
         # change what you need, then `systemctl restart immichvr`.\n\
         # Precedence: defaults < config file < this environment < flags.\n\
         # Logging filter: RUST_LOG (e.g. RUST_LOG=info,immichvr=debug).\n\n",
    );
    for (arg, _) in options() {
        let env = arg
            .get_env()
            .map(|e| e.to_string_lossy().into_owned())
            .unwrap_or_default();
        for line in help(&arg).lines() {
            let _ = writeln!(out, "# {line}");
        }
        let _ = writeln!(out, "#{env}={}\n", default(&arg).unwrap_or_default());
    }
    out
}

/// The effective configuration as TOML, with where each value came from
/// (`immichvr config`). Usable as a config file once the secrets are filled in.
pub fn effective(loaded: &Loaded) -> String {
    let cmd = Cli::command();
    let mut out = String::new();
    let file = match &loaded.file {
        Some(p) => p.display().to_string(),
        None => format!("(none; {DEFAULT_PATH} does not exist)"),
    };
    let _ = writeln!(out, "# config file: {file}");
    let _ = writeln!(out, "# precedence: default < file < environment < flag\n");
    for (id, key) in option_ids(&cmd) {
        let raw: Option<Vec<String>> = loaded.matches.get_raw(&id).map(|vals| {
            vals.map(|v| v.to_string_lossy().into_owned())
                .collect::<Vec<_>>()
        });
        let source = loaded.source(&id);
        match raw {
            None => {
                let _ = writeln!(out, "# {key} is not set");
            }
            Some(_) if is_secret(&cmd, &id) => {
                let _ = writeln!(out, "{key} = \"{REDACTED}\"  # {source}");
            }
            Some(vals) => {
                let _ = writeln!(out, "{key} = {}  # {source}", toml_value(&vals.join(",")));
            }
        }
    }
    out
}

fn toml_value(v: &str) -> String {
    let number = v.parse::<i64>().is_ok() || (v.parse::<f64>().is_ok() && v.contains('.'));
    if number || v == "true" || v == "false" {
        v.to_string()
    } else {
        toml::Value::String(v.to_string()).to_string()
    }
}
