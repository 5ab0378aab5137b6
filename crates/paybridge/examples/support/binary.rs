//! Shared by the exposure benchmarks: the real `paybridge serve` binary (built next to the
//! example: `cargo build --release -p paybridge` first), started on loopback in a temp dir,
//! its URLs read from what it prints, its memory read from /proc.

#![allow(dead_code)]

#[path = "stats.rs"]
mod stats;
pub use stats::percentile;

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

pub const SECRET: &str = "whsec_bench_exposure_0123456789";
pub const ADMIN_TOKEN: &str = "bench-admin-token-0123456789abcdef";

pub struct Server {
    pub child: Child,
    pub url: String,
    pub admin: String,
    pub db: PathBuf,
    pub dir: tempfile::TempDir,
}

/// The `paybridge` binary of the same profile as this example.
fn binary() -> anyhow::Result<PathBuf> {
    let exe = std::env::current_exe()?;
    let dir = exe
        .parent()
        .and_then(|examples| examples.parent())
        .ok_or_else(|| anyhow::anyhow!("no target directory"))?;
    let bin = dir.join("paybridge");
    anyhow::ensure!(
        bin.exists(),
        "{} is missing: run `cargo build --release -p paybridge` first",
        bin.display()
    );
    Ok(bin)
}

/// Starts `paybridge serve` against the embedded HubSpot sandbox, with `extra` appended to
/// the config.
pub fn start(extra: &str) -> anyhow::Result<Server> {
    let dir = tempfile::tempdir()?;
    let db = dir.path().join("bench.db");
    let config = dir.path().join("paybridge.toml");
    std::fs::write(
        &config,
        format!(
            "[server]\nlisten = \"127.0.0.1:0\"\nadmin_listen = \"127.0.0.1:0\"\nadmin_token = \"{ADMIN_TOKEN}\"\n{extra}\n[store]\nurl = \"sqlite://{}\"\n[stripe]\nwebhook_secrets = [\"{SECRET}\"]\n[hubspot]\nsandbox = true\n",
            db.display()
        ),
    )?;
    let mut child = Command::new(binary()?)
        .current_dir(dir.path())
        .arg("--config")
        .arg(&config)
        .arg("serve")
        .env("PAYBRIDGE_LOG", "warn")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()?;
    let stdout = child
        .stdout
        .take()
        .ok_or_else(|| anyhow::anyhow!("no stdout"))?;
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            let _ = tx.send(line);
        }
    });
    let (mut url, mut admin) = (None, None);
    while url.is_none() || admin.is_none() {
        let line = rx.recv_timeout(Duration::from_secs(60))?;
        let word = |prefix: &str| {
            line.split_whitespace()
                .find(|w| w.starts_with(prefix))
                .map(|w| w.trim_end_matches('/').to_owned())
        };
        if line.contains("webhook endpoint") {
            url = word("http").map(|u| u.trim_end_matches("/webhooks/stripe").to_owned());
        } else if line.contains("dashboard):") {
            admin = word("http");
        }
    }
    Ok(Server {
        child,
        url: url.unwrap_or_default(),
        admin: admin.unwrap_or_default(),
        db,
        dir,
    })
}

impl Server {
    /// The process's peak resident memory (VmHWM), in MiB.
    pub fn peak_rss_mib(&self) -> f64 {
        std::fs::read_to_string(format!("/proc/{}/status", self.child.id()))
            .ok()
            .and_then(|s| {
                s.lines()
                    .find(|l| l.starts_with("VmHWM:"))
                    .and_then(|l| l.split_whitespace().nth(1).map(str::to_owned))
            })
            .and_then(|kib| kib.parse::<f64>().ok())
            .map(|kib| kib / 1024.0)
            .unwrap_or(f64::NAN)
    }

    /// Events stored, as the admin API lists them (up to 1,000).
    pub async fn stored_events(&self) -> anyhow::Result<usize> {
        let page: serde_json::Value = reqwest::Client::new()
            .get(format!("{}/api/events?limit=1000", self.admin))
            .bearer_auth(ADMIN_TOKEN)
            .send()
            .await?
            .error_for_status()?
            .json()
            .await?;
        Ok(page["data"].as_array().map(Vec::len).unwrap_or(0))
    }

    pub fn stop(mut self) -> anyhow::Result<()> {
        Command::new("kill")
            .arg("-TERM")
            .arg(self.child.id().to_string())
            .status()?;
        self.child.wait()?;
        Ok(())
    }
}
