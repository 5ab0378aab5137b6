//! Hostile input against the real `paybridge serve` binary: N requests (default 10,000)
//! mixing forged, stale, future, oversized, malformed, non-UTF-8, slow-header and slow-body
//! webhooks. Every one must be refused (4xx, 408, 413, 503, or the connection closed on a
//! client too slow to finish its request), none stored, while `/healthz` answers with a p99
//! under 50 ms; the server's peak resident memory is printed.
//!
//!     cargo build --release -p paybridge
//!     cargo run --release -p paybridge --example hostile_bench [-- REQUESTS CONCURRENCY SLOW_AT_ONCE]
//!
//! Defaults: 10000 requests, 64 fast at once, 400 slow clients at once. The slow ones wait
//! out the server's 10 s header and 15 s body limits, so the run takes about a minute.

#[path = "support/binary.rs"]
mod binary;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use binary::{SECRET, percentile};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::Semaphore;

const KINDS: [&str; 8] = [
    "forged",
    "stale",
    "future",
    "oversized",
    "malformed",
    "non-utf8",
    "slow-header",
    "slow-body",
];

fn event(i: usize) -> Vec<u8> {
    serde_json::to_vec(&serde_json::json!({
        "id": format!("evt_hostile_{i}"),
        "object": "event",
        "api_version": "2026-08-26.dahlia",
        "created": chrono::Utc::now().timestamp(),
        "livemode": false,
        "type": "invoice.paid",
        "data": {"object": {"id": format!("in_{i}"), "object": "invoice", "customer": "cus_hostile"}}
    }))
    .unwrap_or_default()
}

fn request(signature: &[u8], body: &[u8], declared: usize) -> Vec<u8> {
    let mut r = format!(
        "POST /webhooks/stripe HTTP/1.1\r\nHost: bench\r\nContent-Type: application/json\r\nConnection: close\r\nContent-Length: {declared}\r\nStripe-Signature: "
    )
    .into_bytes();
    r.extend_from_slice(signature);
    r.extend_from_slice(b"\r\n\r\n");
    r.extend_from_slice(body);
    r
}

/// The bytes to send for request `i` of `kind`, and how many of them to send (the rest is
/// withheld: a slow client).
fn hostile(kind: &str, i: usize) -> (Vec<u8>, usize) {
    let now = chrono::Utc::now().timestamp();
    let body = event(i);
    let signed = |t: i64, secret: &str, body: &[u8]| paybridge::stripe::sign(secret, t, body);
    let full = |r: Vec<u8>| {
        let n = r.len();
        (r, n)
    };
    match kind {
        "forged" => full(request(
            signed(now, "whsec_not_the_secret", &body).as_bytes(),
            &body,
            body.len(),
        )),
        "stale" => full(request(
            signed(now - 3_600, SECRET, &body).as_bytes(),
            &body,
            body.len(),
        )),
        "future" => full(request(
            signed(now + 3_600, SECRET, &body).as_bytes(),
            &body,
            body.len(),
        )),
        "oversized" => {
            // Declares 2 MiB (over server.max_body_bytes) and sends a first chunk.
            let r = request(
                signed(now, SECRET, &body).as_bytes(),
                &vec![b'x'; 16 * 1024],
                2 * 1024 * 1024,
            );
            full(r)
        }
        "malformed" => {
            let junk = format!("{{\"id\": \"evt_hostile_{i}\", \"object\": \"event\", \"type\": ");
            full(request(
                signed(now, SECRET, junk.as_bytes()).as_bytes(),
                junk.as_bytes(),
                junk.len(),
            ))
        }
        "non-utf8" => {
            let mut bytes = body.clone();
            bytes.splice(10..10, [0xff, 0xfe, 0xc3]);
            let mut signature = signed(now, SECRET, &bytes).into_bytes();
            if i.is_multiple_of(2) {
                signature.extend_from_slice(&[0xff, 0x80]);
            }
            full(request(&signature, &bytes, bytes.len()))
        }
        "slow-header" => {
            let r = request(signed(now, SECRET, &body).as_bytes(), &body, body.len());
            (r, 40)
        }
        _ => {
            // slow-body: the headers, then a tenth of the body, then nothing.
            let r = request(signed(now, SECRET, &body).as_bytes(), &body, body.len());
            let head = r.len() - body.len();
            (r, head + body.len() / 10)
        }
    }
}

/// Sends a request (or its first part) and reads until the server closes: the status code,
/// or 0 when the server closed without an answer.
async fn send(addr: &str, bytes: &[u8], send: usize) -> anyhow::Result<u16> {
    let mut stream = TcpStream::connect(addr).await?;
    stream.write_all(&bytes[..send]).await?;
    let mut answer = Vec::new();
    let read = tokio::time::timeout(Duration::from_secs(60), async {
        let mut buf = [0u8; 4096];
        loop {
            match stream.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(n) => {
                    answer.extend_from_slice(&buf[..n]);
                    if answer.len() > 12 {
                        break;
                    }
                }
            }
        }
    })
    .await;
    anyhow::ensure!(
        read.is_ok(),
        "the server kept a hostile connection for 60 s"
    );
    let status = std::str::from_utf8(answer.get(9..12).unwrap_or_default())
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    Ok(status)
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let arg = |i: usize, d: usize| args.get(i).and_then(|a| a.parse().ok()).unwrap_or(d);
    let (total, concurrency, slow_at_once) = (arg(0, 10_000), arg(1, 64), arg(2, 400));
    paybridge::http::listener::fit_connections(slow_at_once + concurrency + 256, 64);

    let server = binary::start("")?;
    let addr = server.url.trim_start_matches("http://").to_owned();
    println!(
        "hostile run: {total} requests against {} (pid {})",
        server.url,
        server.child.id()
    );

    // /healthz every 20 ms throughout, on its own connection.
    let done = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let probe = {
        let (url, done) = (server.url.clone(), done.clone());
        tokio::spawn(async move {
            let client = reqwest::Client::new();
            let mut samples = Vec::new();
            let mut failures = 0usize;
            while !done.load(Ordering::Relaxed) {
                let t = Instant::now();
                match client.get(format!("{url}/healthz")).send().await {
                    Ok(r) if r.status() == 200 => samples.push(t.elapsed()),
                    _ => failures += 1,
                }
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            (samples, failures)
        })
    };

    let fast = Arc::new(Semaphore::new(concurrency));
    let slow = Arc::new(Semaphore::new(slow_at_once));
    let counts: Arc<Vec<AtomicUsize>> = Arc::new((0..600).map(|_| AtomicUsize::new(0)).collect());
    let errors = Arc::new(AtomicUsize::new(0));
    let started = Instant::now();
    let mut tasks = Vec::with_capacity(total);
    for i in 0..total {
        let kind = KINDS[i % KINDS.len()];
        let gate = if kind.starts_with("slow") {
            &slow
        } else {
            &fast
        };
        let permit = gate.clone().acquire_owned().await?;
        let (addr, counts, errors) = (addr.clone(), counts.clone(), errors.clone());
        tasks.push(tokio::spawn(async move {
            let (bytes, n) = hostile(kind, i);
            match send(&addr, &bytes, n).await {
                Ok(status) => {
                    counts[usize::from(status).min(599)].fetch_add(1, Ordering::Relaxed);
                }
                Err(e) => {
                    errors.fetch_add(1, Ordering::Relaxed);
                    eprintln!("{kind}: {e:#}");
                }
            }
            drop(permit);
        }));
    }
    for t in tasks {
        t.await?;
    }
    let elapsed = started.elapsed();
    done.store(true, Ordering::Relaxed);
    let (mut samples, probe_failures) = probe.await?;
    samples.sort();

    let stored = server.stored_events().await?;
    let rss = server.peak_rss_mib();
    let by_status: Vec<(usize, usize)> = counts
        .iter()
        .enumerate()
        .map(|(s, c)| (s, c.load(Ordering::Relaxed)))
        .filter(|(_, c)| *c > 0)
        .collect();
    let accepted: usize = by_status
        .iter()
        .filter(|(s, _)| (200..300).contains(s))
        .map(|(_, c)| c)
        .sum();
    let odd: usize = by_status
        .iter()
        .filter(|(s, _)| *s != 0 && !(400..500).contains(s) && *s != 503)
        .map(|(_, c)| c)
        .sum();
    println!("finished in {:.1} s", elapsed.as_secs_f64());
    println!(
        "answers by status (0 = closed by the server without an answer): {}",
        by_status
            .iter()
            .map(|(s, c)| format!("{s}: {c}"))
            .collect::<Vec<_>>()
            .join(", ")
    );
    println!(
        "client errors: {}; accepted: {accepted}; other than 4xx/503/closed: {odd}; events stored: {stored}",
        errors.load(Ordering::Relaxed)
    );
    println!(
        "/healthz during the run: {} probes, {probe_failures} failed, p50 {:.2} ms, p99 {:.2} ms, max {:.2} ms",
        samples.len(),
        percentile(&samples, 50.0).as_secs_f64() * 1e3,
        percentile(&samples, 99.0).as_secs_f64() * 1e3,
        samples.last().copied().unwrap_or_default().as_secs_f64() * 1e3,
    );
    println!("server peak resident memory (VmHWM): {rss:.1} MiB");
    server.stop()?;
    let p99_ok = percentile(&samples, 99.0) < Duration::from_millis(50);
    anyhow::ensure!(
        accepted == 0 && odd == 0 && stored == 0 && probe_failures == 0 && p99_ok,
        "FAILED: accepted {accepted}, odd answers {odd}, stored {stored}, probe failures {probe_failures}, p99 under 50 ms: {p99_ok}"
    );
    println!("ok: every hostile request refused, none stored");
    Ok(())
}
