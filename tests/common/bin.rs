//! The real binary as a child process: started on a data directory and a
//! free port, stopped with SIGTERM or SIGKILL, its log kept in a file so a
//! test can wait for a line or read what it said.

use std::{
    path::{Path, PathBuf},
    process::{Child, Command},
    time::{Duration, Instant},
};

use super::free_port;

pub struct Binary {
    pub url: String,
    pub port: u16,
    pub data: PathBuf,
    pub log: PathBuf,
    child: Option<Child>,
}

/// What a test starts the binary with; `env` wins over the defaults.
pub struct Launch {
    pub exe: PathBuf,
    pub data: PathBuf,
    pub env: Vec<(String, String)>,
    /// Variables left out of the child's environment (a default included).
    pub unset: Vec<String>,
    /// `ulimit -n` for the child (through `prlimit`), if set.
    pub nofile: Option<u64>,
}

impl Launch {
    /// The binary of this build, or `IMMICHVR_TEST_BIN` (to show that a
    /// test fails on an older build).
    pub fn new(data: &Path) -> Self {
        let exe = std::env::var_os("IMMICHVR_TEST_BIN")
            .map(PathBuf::from)
            .unwrap_or_else(|| PathBuf::from(env!("CARGO_BIN_EXE_immichvr")));
        Launch {
            exe,
            data: data.to_path_buf(),
            env: Vec::new(),
            unset: Vec::new(),
            nofile: None,
        }
    }

    /// Starts the child without `key` (e.g. no `AI_SERVICE_URL`: the default).
    pub fn without(mut self, key: &str) -> Self {
        self.unset.push(key.to_string());
        self
    }

    pub fn env(mut self, key: &str, value: impl ToString) -> Self {
        self.env.push((key.to_string(), value.to_string()));
        self
    }

    pub fn exe(mut self, exe: impl Into<PathBuf>) -> Self {
        self.exe = exe.into();
        self
    }

    pub fn nofile(mut self, n: u64) -> Self {
        self.nofile = Some(n);
        self
    }

    /// Runs the binary until it exits by itself (a start-up that must
    /// fail); returns whether it succeeded and what it printed.
    pub fn run_to_exit(self) -> (bool, String) {
        let out = self
            .command(free_port())
            .output()
            .expect("the binary starts");
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        (out.status.success(), text)
    }

    fn command(&self, port: u16) -> Command {
        let mut cmd = match self.nofile {
            Some(n) => {
                let mut c = Command::new("prlimit");
                c.arg(format!("--nofile={n}:{n}")).arg(&self.exe);
                c
            }
            None => Command::new(&self.exe),
        };
        cmd.env("DATA_DIR", &self.data)
            .env("BACKEND_PORT", port.to_string())
            .env("BIND_ADDR", "127.0.0.1")
            .env("AI_SERVICE_URL", "http://127.0.0.1:9")
            .env("RETRY_BASE_SECS", "0.05")
            .env("RUST_LOG", "info")
            // Following Immich is what tests of it turn on.
            .env("IMMICH_SYNC_SECS", "0")
            .env_remove("IMMICH_URL")
            .env_remove("IMMICH_API_KEY")
            .env("AUTH_TOKEN", super::TOKEN)
            .env_remove("AUTH")
            .env_remove("IMMICHVR_CONFIG");
        for (k, v) in &self.env {
            cmd.env(k, v);
        }
        for k in &self.unset {
            cmd.env_remove(k);
        }
        cmd
    }

    /// Starts the binary on a free port and waits until `/health` answers
    /// (any status: a test may start it on a broken data dir on purpose).
    /// Starts the binary on a free port and waits until it answers there.
    /// A port picked as free can be taken by a parallel test before the
    /// binary binds it (it then exits, and the other test's server would
    /// answer in its place): that start is retried on another port.
    pub async fn start(mut self) -> Binary {
        for _ in 0..5 {
            let port = free_port();
            // Beside the test, not the data: a test may fill the data's disk.
            let log = std::env::temp_dir()
                .join(format!("immichvr-test-{port}-{}.log", uuid::Uuid::new_v4()));
            let out = std::fs::File::create(&log).unwrap();
            let child = self
                .command(port)
                .stdout(out.try_clone().unwrap())
                .stderr(out)
                .spawn()
                .expect("the binary starts");
            let mut b = Binary {
                url: format!("http://127.0.0.1:{port}"),
                port,
                data: std::mem::take(&mut self.data),
                log,
                child: Some(child),
            };
            if b.wait_answering().await {
                return b;
            }
            self.data = std::mem::take(&mut b.data);
        }
        panic!("no free port held for the binary in 5 tries");
    }
}

/// Whether process `pid` holds a listening TCP socket on `port`
/// (`/proc/net/tcp*` for the socket, the process's descriptors for its
/// owner).
pub fn listens(pid: u32, port: u16) -> bool {
    let hex = format!(":{port:04X}");
    let inodes: Vec<String> = ["/proc/net/tcp", "/proc/net/tcp6"]
        .iter()
        .filter_map(|f| std::fs::read_to_string(f).ok())
        .flat_map(|t| {
            t.lines()
                .skip(1)
                .filter_map(|l| {
                    let f: Vec<&str> = l.split_whitespace().collect();
                    (f.len() > 9 && f[1].ends_with(&hex) && f[3] == "0A")
                        .then(|| format!("socket:[{}]", f[9]))
                })
                .collect::<Vec<_>>()
        })
        .collect();
    let Ok(fds) = std::fs::read_dir(format!("/proc/{pid}/fd")) else {
        return false;
    };
    fds.filter_map(|e| std::fs::read_link(e.ok()?.path()).ok())
        .any(|l| inodes.iter().any(|i| l.as_os_str() == i.as_str()))
}

impl Binary {
    pub fn at(&self, path: &str) -> String {
        format!("{}{}", self.url, path)
    }

    pub fn pid(&self) -> u32 {
        self.child.as_ref().expect("running").id()
    }

    /// True once this process answers on its port (over HTTP or HTTPS,
    /// self-signed); false if it exited because the port was taken.
    async fn wait_answering(&mut self) -> bool {
        let deadline = Instant::now() + Duration::from_secs(30);
        let probe = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .danger_accept_invalid_certs(true)
            .build()
            .unwrap();
        let https = self.at("/health").replacen("http:", "https:", 1);
        loop {
            if let Some(status) = self.child.as_mut().and_then(|c| c.try_wait().unwrap()) {
                let log = self.log_text();
                if log.contains("Address already in use") {
                    self.child = None;
                    return false;
                }
                panic!("the binary exited with {status}; log:\n{log}");
            }
            let answered = probe.get(self.at("/health")).send().await.is_ok()
                || probe.get(&https).send().await.is_ok();
            if answered && listens(self.pid(), self.port) {
                return true;
            }
            assert!(
                Instant::now() < deadline,
                "the binary did not answer within 30 s; log:\n{}",
                self.log_text()
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Waits until the log holds `needle`, or panics with the log.
    pub async fn wait_log(&self, needle: &str, secs: u64) {
        let deadline = Instant::now() + Duration::from_secs(secs);
        while !self.log_text().contains(needle) {
            assert!(
                Instant::now() < deadline,
                "no log line with {needle:?} within {secs} s; log:\n{}",
                self.log_text()
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// SIGTERM, then waits for the exit; panics unless it exits cleanly.
    pub async fn terminate(mut self) -> String {
        let mut child = self.child.take().expect("running");
        let ok = Command::new("kill")
            .args(["-TERM", &child.id().to_string()])
            .status()
            .unwrap()
            .success();
        assert!(ok, "kill -TERM failed");
        let deadline = Instant::now() + Duration::from_secs(30);
        let status = loop {
            if let Some(s) = child.try_wait().unwrap() {
                break s;
            }
            assert!(Instant::now() < deadline, "did not exit after SIGTERM");
            tokio::time::sleep(Duration::from_millis(20)).await;
        };
        assert!(
            status.success(),
            "exit status {status:?}: {}",
            self.log_text()
        );
        self.log_text()
    }

    /// SIGKILL: no clean-up of any kind runs.
    pub fn kill(mut self) -> String {
        let mut child = self.child.take().expect("running");
        child.kill().unwrap();
        child.wait().unwrap();
        self.log_text()
    }
}

impl Drop for Binary {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
        if !std::thread::panicking() {
            let _ = std::fs::remove_file(&self.log);
        } else {
            eprintln!("the binary's log: {}", self.log.display());
        }
    }
}
