//! Running the real `paybridge` binary: start it, learn its ports from what it prints,
//! stop it with SIGTERM or SIGKILL. Every child's outbound HTTP goes through the network
//! guard's tripwire (loopback excepted); stopping a server checks nothing reached it.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

/// The binary, its outbound HTTP routed to the tripwire ([`super::network`]).
pub fn binary() -> Command {
    guarded(Command::new(env!("CARGO_BIN_EXE_paybridge")))
}

/// `cmd` with the tripwire as its proxy, loopback excepted.
pub fn guarded(mut cmd: Command) -> Command {
    cmd.envs(super::network::tripwire().proxy_env());
    cmd
}

pub struct Running {
    pub child: Child,
    pub url: String,
    /// Everything printed so far on stdout and stderr (lines), collected in the background.
    pub output: std::sync::Arc<std::sync::Mutex<Vec<String>>>,
}

/// Starts `paybridge --config <config> serve` in `dir` and waits for its endpoint line.
/// The child is handed to the caller (who stops and waits for it); if it never prints its
/// endpoint the test panics, and the child dies with the test process.
pub fn start_serve(dir: &Path, config: Option<&Path>, env: &[(&str, &str)]) -> Running {
    let mut cmd = binary();
    if let Some(c) = config {
        cmd.arg("--config").arg(c);
    }
    cmd.arg("serve");
    start(cmd, dir, env)
}

/// [`start_serve`] with `--config config` under a shell's `ulimit -n open_files`.
pub fn start_serve_with_open_files(dir: &Path, config: &Path, open_files: u32) -> Running {
    let mut cmd = guarded(Command::new("sh"));
    cmd.arg("-c")
        .arg(format!(
            "ulimit -n {open_files} && exec \"$0\" --config \"$1\" serve"
        ))
        .arg(env!("CARGO_BIN_EXE_paybridge"))
        .arg(config);
    start(cmd, dir, &[])
}

#[allow(clippy::zombie_processes)]
fn start(mut cmd: Command, dir: &Path, env: &[(&str, &str)]) -> Running {
    cmd.current_dir(dir)
        .env_remove("PAYBRIDGE_CONFIG")
        .env("PAYBRIDGE_LOG", "info")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    for (k, v) in env {
        cmd.env(k, v);
    }
    let mut child = cmd.spawn().expect("the binary starts");
    let output = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let (tx, rx) = mpsc::channel();
    let stdout = child.stdout.take().expect("stdout");
    let stderr = child.stderr.take().expect("stderr");
    for (stream, tx) in [
        (
            Box::new(stdout) as Box<dyn std::io::Read + Send>,
            tx.clone(),
        ),
        (Box::new(stderr), tx),
    ] {
        let output = output.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(stream).lines().map_while(Result::ok) {
                if let Ok(mut o) = output.lock() {
                    o.push(line.clone());
                }
                let _ = tx.send(line);
            }
        });
    }
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    loop {
        let left = deadline.saturating_duration_since(std::time::Instant::now());
        let line = rx.recv_timeout(left).unwrap_or_else(|_| {
            panic!(
                "no endpoint line; output: {:?}",
                output.lock().map(|o| o.clone())
            )
        });
        if let Some(rest) = line.split("webhook endpoint").nth(1) {
            let url = rest
                .split_whitespace()
                .find(|w| w.starts_with("http://") || w.starts_with("https://"))
                .expect("a URL on the endpoint line")
                .trim_end_matches("/webhooks/stripe")
                .to_owned();
            return Running { child, url, output };
        }
    }
}

impl Running {
    pub fn sigterm(&mut self) -> std::process::ExitStatus {
        let status = Command::new("kill")
            .arg("-TERM")
            .arg(self.child.id().to_string())
            .status()
            .expect("kill runs");
        assert!(status.success());
        let exited = self.child.wait().expect("the process exits");
        super::network::assert_untouched();
        exited
    }

    pub fn sigkill(&mut self) {
        self.child.kill().expect("SIGKILL");
        let _ = self.child.wait();
        super::network::assert_untouched();
    }

    /// The first line printed so far that contains `needle`, waiting up to 20 s for it.
    pub fn wait_for_line(&self, needle: &str) -> String {
        self.wait_for_nth_line(needle, 1)
    }

    /// How many lines printed so far contain `needle`.
    pub fn count_lines(&self, needle: &str) -> usize {
        self.output
            .lock()
            .map(|o| o.iter().filter(|l| l.contains(needle)).count())
            .unwrap_or(0)
    }

    /// The `n`th line (from 1) that contains `needle`, waiting up to 20 s for it.
    pub fn wait_for_nth_line(&self, needle: &str, n: usize) -> String {
        let deadline = std::time::Instant::now() + Duration::from_secs(20);
        loop {
            if let Some(line) = self.output.lock().ok().and_then(|o| {
                o.iter()
                    .filter(|l| l.contains(needle))
                    .nth(n.saturating_sub(1))
                    .cloned()
            }) {
                return line;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "no line with {needle:?}: {}",
                self.output_text()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    pub fn output_text(&self) -> String {
        self.output.lock().map(|o| o.join("\n")).unwrap_or_default()
    }
}

/// Writes `dir/paybridge.toml` for a command run against `sandbox`'s HubSpot and Stripe
/// (`stripe_key` as the API key), listeners on port 0, the SQLite file in `dir`.
pub fn sandbox_config_file(
    dir: &Path,
    sandbox: &hubspot_sandbox::Sandbox,
    stripe_key: &str,
) -> std::path::PathBuf {
    let config = dir.join("paybridge.toml");
    std::fs::write(
        &config,
        format!(
            r#"
[server]
listen = "127.0.0.1:0"
admin_listen = "127.0.0.1:0"
[store]
url = "sqlite://{db}"
[stripe]
webhook_secrets = ["whsec_unused"]
api_key = "{stripe_key}"
api_base = "{url}"
[hubspot]
token = "{token}"
api_base = "{url}"
"#,
            db = dir.join("paybridge.db").display(),
            url = sandbox.url(),
            token = hubspot_sandbox::SandboxConfig::default().token,
        ),
    )
    .expect("write config");
    config
}

/// Runs `paybridge --config <config> <args…>` to its end (no `PAYBRIDGE_CONFIG` inherited).
pub async fn run_command(config: &Path, args: &[&str]) -> std::process::Output {
    let mut cmd = binary();
    cmd.arg("--config")
        .arg(config)
        .args(args)
        .env_remove("PAYBRIDGE_CONFIG");
    tokio::process::Command::from(cmd)
        .output()
        .await
        .expect("runs")
}
