//! The network guard: tests reach loopback only. A [`Tripwire`] is a local HTTP proxy that
//! connects nowhere: every request it is asked to forward (`CONNECT host:port`, or an
//! absolute URL) and every request sent to it directly is recorded, answered 403 and
//! closed. Child processes get it as `HTTP_PROXY`/`HTTPS_PROXY`/`ALL_PROXY` with loopback
//! in `NO_PROXY` (reqwest and hyper-util honour both, lower or upper case); Chromium gets
//! it as `--proxy-server` (which bypasses loopback by default); in-process apps get it as
//! their HubSpot and Stripe `api_base` until a test points them at a sandbox. A test that
//! tried to reach anything else fails when it stops its app or process
//! ([`assert_untouched`]), naming the address, with or without internet on the machine.
//! Rule calls (Slack, provisioning) ignore proxies by design (`worker::outbound`): the
//! tests' `[outbound] allow_hosts` (loopback only) is what keeps them home.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

/// A recording, refusing proxy on `127.0.0.1`, served by a thread of its own for the life
/// of the test process.
#[derive(Clone)]
pub struct Tripwire {
    addr: SocketAddr,
    attempts: Arc<Mutex<Vec<String>>>,
}

impl Tripwire {
    pub fn start() -> Tripwire {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind the tripwire");
        let addr = listener.local_addr().expect("the tripwire's address");
        let attempts: Arc<Mutex<Vec<String>>> = Arc::default();
        let recorded = attempts.clone();
        std::thread::spawn(move || {
            for stream in listener.incoming().map_while(Result::ok) {
                let recorded = recorded.clone();
                std::thread::spawn(move || refuse(stream, &recorded));
            }
        });
        Tripwire { addr, attempts }
    }

    /// `http://127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// What was asked of it so far: `CONNECT api.hubapi.com:443`, `GET http://…`, or a
    /// direct request's `POST /crm/…`.
    pub fn attempts(&self) -> Vec<String> {
        self.attempts.lock().map(|a| a.clone()).unwrap_or_default()
    }

    /// The environment that routes a child's outbound HTTP through the tripwire, loopback
    /// excepted.
    pub fn proxy_env(&self) -> Vec<(&'static str, String)> {
        self.proxy_env_except(LOOPBACK)
    }

    /// The environment that routes a child's outbound HTTP through the tripwire, the hosts
    /// of `no_proxy` (comma-separated) excepted.
    pub fn proxy_env_except(&self, no_proxy: &str) -> Vec<(&'static str, String)> {
        let url = self.url();
        let mut env = Vec::new();
        for name in ["HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY"] {
            env.push((name, url.clone()));
            env.push((lower(name), url.clone()));
        }
        for name in ["NO_PROXY", "no_proxy"] {
            env.push((name, no_proxy.to_owned()));
        }
        env
    }
}

const LOOPBACK: &str = "127.0.0.1,localhost,::1";

fn lower(name: &'static str) -> &'static str {
    match name {
        "HTTP_PROXY" => "http_proxy",
        "HTTPS_PROXY" => "https_proxy",
        _ => "all_proxy",
    }
}

/// Reads the request line, records it, answers 403 and closes.
fn refuse(stream: TcpStream, attempts: &Mutex<Vec<String>>) {
    let _ = stream.set_read_timeout(Some(Duration::from_secs(5)));
    let mut line = String::new();
    let mut reader = BufReader::new(&stream);
    // A request line is short; anything longer is recorded cut.
    let _ = reader.by_ref().take(2048).read_line(&mut line);
    let line = line.trim_end();
    let shown = line
        .rsplit_once(' ')
        .map(|(request, _version)| request)
        .unwrap_or(line);
    if let Ok(mut a) = attempts.lock() {
        a.push(if shown.is_empty() {
            "(a connection with no request)".to_owned()
        } else {
            shown.to_owned()
        });
    }
    let mut stream = &stream;
    let _ = stream.write_all(
        b"HTTP/1.1 403 Forbidden\r\ncontent-type: text/plain\r\ncontent-length: 46\r\nconnection: close\r\n\r\ntests reach loopback only (the network guard)\n",
    );
}

/// The test process's tripwire.
pub fn tripwire() -> &'static Tripwire {
    static TRIPWIRE: OnceLock<Tripwire> = OnceLock::new();
    TRIPWIRE.get_or_init(Tripwire::start)
}

/// Panics (failing the test) if anything in this test process tried to leave loopback.
pub fn assert_untouched() {
    let attempts = tripwire().attempts();
    assert!(
        attempts.is_empty(),
        "the tests tried to reach beyond loopback (point them at a local sandbox): {attempts:?}"
    );
}
