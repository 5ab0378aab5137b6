//! Serving a router on a socket that faces the internet (plain HTTP or TLS), bounded in
//! every direction:
//!
//! - at most `max_connections` connections at once; one more is answered `503` with
//!   `Retry-After` and closed (over TLS it is closed at once: answering would cost a
//!   handshake), so a flood of idle sockets cannot use up the process's descriptors;
//! - request headers within [`Limits::header_timeout`] (hyper's timer, which also closes
//!   a keep-alive connection that sends nothing), a TLS handshake within the same;
//! - a connection with no request in flight and no byte moving for
//!   [`Limits::idle_timeout`] is closed (a client that stops reading its answer, too);
//! - failed accepts (out of descriptors) back off from 5 ms to 1 s and are logged at most
//!   once a second, with the count of those not logged;
//! - on shutdown, open connections get [`Limits::shutdown_grace`] to finish, then are
//!   dropped.
//!
//! Only HTTP/1.1 is served: it is what Stripe and browsers use here, and it keeps one set of
//! timeouts to reason about. The handler sees the client's address as `ConnectInfo` and
//! whether the connection is TLS as [`Tls`].

use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::task::{Context, Poll};
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::extract::ConnectInfo;
use hyper::body::{Body as HttpBody, Bytes, Frame, Incoming, SizeHint};
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto::Builder;
use hyper_util::server::graceful::GracefulShutdown;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Semaphore;
use tokio::time::Instant;
use tokio_rustls::TlsAcceptor;
use tokio_util::sync::CancellationToken;
use tower::ServiceExt as _;

use super::throttle::{LogLimiter, monotonic_ms};

/// The bounds of one listener.
#[derive(Debug, Clone)]
pub struct Limits {
    pub max_connections: usize,
    /// Request headers (and a TLS handshake) must arrive within this.
    pub header_timeout: Duration,
    /// A request body must have arrived this long after its headers.
    pub body_deadline: Duration,
    /// No request in flight and no byte read or written for this long: closed.
    pub idle_timeout: Duration,
    /// How long open connections may take to finish after shutdown begins.
    pub shutdown_grace: Duration,
}

impl Limits {
    pub fn new(max_connections: usize, t: &crate::config::Timeouts) -> Self {
        Self {
            max_connections,
            header_timeout: t.header,
            body_deadline: t.body,
            idle_timeout: t.idle,
            shutdown_grace: t.shutdown,
        }
    }
}

/// In a request's extensions: whether it came over TLS (for the `Secure` cookie flag).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Tls(pub bool);

/// The 503 a connection over the cap gets, before it is closed.
const SHED_RESPONSE: &[u8] = b"HTTP/1.1 503 Service Unavailable\r\nRetry-After: 1\r\nContent-Type: application/json\r\nConnection: close\r\nContent-Length: 78\r\n\r\n{\"error\":\"overloaded\",\"message\":\"too many connections; retry in a second\"}\r\n";
/// Connections being answered 503 at once; past this they are closed without a word.
const SHEDDING_AT_ONCE: usize = 64;

static ACCEPT_LOG: LogLimiter = LogLimiter::new(1_000);
static SHED_LOG: LogLimiter = LogLimiter::new(1_000);

/// Serves `router` on `listener` (TLS with `tls`) until `cancel`, within `limits`.
pub async fn serve(
    listener: TcpListener,
    tls: Option<TlsAcceptor>,
    router: Router,
    limits: Limits,
    cancel: CancellationToken,
) -> anyhow::Result<()> {
    let graceful = GracefulShutdown::new();
    let mut builder = Builder::new(TokioExecutor::new()).http1_only();
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(limits.header_timeout)
        .max_buf_size(64 * 1024)
        .keep_alive(true);
    let builder = Arc::new(builder);
    let connections = Arc::new(Semaphore::new(limits.max_connections.max(1)));
    let shedding = Arc::new(Semaphore::new(SHEDDING_AT_ONCE));
    let mut backoff = Duration::ZERO;
    let mut tasks = tokio::task::JoinSet::new();
    loop {
        while tasks.try_join_next().is_some() {}
        let accepted = tokio::select! {
            accepted = listener.accept() => accepted,
            _ = cancel.cancelled() => break,
        };
        let (stream, peer) = match accepted {
            Ok(a) => {
                backoff = Duration::ZERO;
                a
            }
            Err(e) => {
                backoff = next_backoff(backoff);
                if let Some(suppressed) = ACCEPT_LOG.admit(monotonic_ms()) {
                    tracing::warn!(error = %e, suppressed, backoff_ms = backoff.as_millis() as u64, "accepting a connection failed; backing off");
                }
                tokio::select! {
                    _ = tokio::time::sleep(backoff) => continue,
                    _ = cancel.cancelled() => break,
                }
            }
        };
        let Ok(permit) = connections.clone().try_acquire_owned() else {
            shed(stream, tls.is_some(), &shedding);
            continue;
        };
        let _ = stream.set_nodelay(true);
        let connection = Connection {
            router: router.clone(),
            builder: builder.clone(),
            tls: tls.clone(),
            limits: limits.clone(),
            peer,
        };
        let watcher = graceful.watcher();
        tasks.spawn(async move {
            connection.run(stream, watcher).await;
            drop(permit);
        });
    }
    drop(listener);
    if tokio::time::timeout(limits.shutdown_grace, graceful.shutdown())
        .await
        .is_err()
    {
        tracing::warn!(
            grace_s = limits.shutdown_grace.as_secs(),
            "open connections did not finish in time; they were dropped"
        );
    }
    tasks.abort_all();
    Ok(())
}

/// The wait after a failed accept: 5 ms, doubling to 1 s while accepts keep failing (out
/// of descriptors, the usual cause, clears only as connections close: retrying at once
/// would spin).
fn next_backoff(previous: Duration) -> Duration {
    (previous * 2).clamp(Duration::from_millis(5), Duration::from_secs(1))
}

/// Answers a connection over the cap with a 503 (plain HTTP), or closes it (TLS, or when
/// too many are being answered already).
fn shed(stream: TcpStream, tls: bool, shedding: &Arc<Semaphore>) {
    metrics::counter!("paybridge_connections_shed_total").increment(1);
    if let Some(suppressed) = SHED_LOG.admit(monotonic_ms()) {
        tracing::warn!(
            suppressed,
            "connection refused: server.max_connections reached"
        );
    }
    if tls {
        return;
    }
    let Ok(permit) = shedding.clone().try_acquire_owned() else {
        return;
    };
    tokio::spawn(async move {
        let _permit = permit;
        let mut stream = stream;
        let answer = async {
            stream.write_all(SHED_RESPONSE).await?;
            stream.shutdown().await?;
            // Read what the client sent, so the close does not reset the answer away.
            let mut sink = [0u8; 4096];
            let mut left = 64 * 1024usize;
            while left > 0 {
                let n = stream.read(&mut sink).await?;
                if n == 0 {
                    break;
                }
                left = left.saturating_sub(n);
            }
            Ok::<_, io::Error>(())
        };
        let _ = tokio::time::timeout(Duration::from_secs(1), answer).await;
    });
}

struct Connection {
    router: Router,
    builder: Arc<Builder<TokioExecutor>>,
    tls: Option<TlsAcceptor>,
    limits: Limits,
    peer: SocketAddr,
}

impl Connection {
    async fn run(self, stream: TcpStream, watcher: hyper_util::server::graceful::Watcher) {
        let activity = Arc::new(Activity::new());
        let is_tls = self.tls.is_some();
        let io: Box<dyn Io> = match &self.tls {
            None => Box::new(stream),
            Some(acceptor) => {
                match tokio::time::timeout(self.limits.header_timeout, acceptor.accept(stream))
                    .await
                {
                    Ok(Ok(tls)) => Box::new(tls),
                    Ok(Err(e)) => {
                        tracing::debug!(peer = %self.peer, error = %e, "TLS handshake failed");
                        return;
                    }
                    Err(_) => {
                        tracing::debug!(peer = %self.peer, "TLS handshake timed out");
                        return;
                    }
                }
            }
        };
        let io = Watched {
            inner: io,
            activity: activity.clone(),
        };
        let (router, peer, counted) = (self.router, self.peer, activity.clone());
        let body_deadline = self.limits.body_deadline;
        let service = hyper::service::service_fn(move |request: hyper::Request<Incoming>| {
            let mut request = request.map(|inner| {
                Body::new(DeadlineBody {
                    inner,
                    deadline: Box::pin(tokio::time::sleep(body_deadline)),
                })
            });
            request.extensions_mut().insert(ConnectInfo(peer));
            request.extensions_mut().insert(Tls(is_tls));
            let guard = InFlight::new(counted.clone());
            let router = router.clone();
            async move {
                let response = router.oneshot(request).await;
                drop(guard);
                response
            }
        });
        let connection = self
            .builder
            .serve_connection_with_upgrades(TokioIo::new(io), service)
            .into_owned();
        tokio::select! {
            ended = watcher.watch(connection) => {
                if let Err(e) = ended {
                    tracing::debug!(peer = %peer, error = %e, "connection ended with an error");
                }
            }
            _ = activity.idle(self.limits.idle_timeout) => {
                tracing::debug!(peer = %peer, "idle connection closed");
            }
        }
    }
}

trait Io: AsyncRead + AsyncWrite + Send + Unpin {}
impl<T: AsyncRead + AsyncWrite + Send + Unpin> Io for T {}

/// When a connection last moved a byte, and how many of its requests are being handled.
struct Activity {
    start: Instant,
    last_ms: AtomicU64,
    in_flight: AtomicUsize,
}

impl Activity {
    fn new() -> Self {
        Self {
            start: Instant::now(),
            last_ms: AtomicU64::new(0),
            in_flight: AtomicUsize::new(0),
        }
    }

    fn touch(&self) {
        let ms = u64::try_from(self.start.elapsed().as_millis()).unwrap_or(u64::MAX);
        self.last_ms.store(ms, Ordering::Relaxed);
    }

    /// Resolves once nothing has happened for `limit`.
    async fn idle(&self, limit: Duration) {
        loop {
            let last = Duration::from_millis(self.last_ms.load(Ordering::Relaxed));
            let deadline = self.start + last + limit;
            tokio::time::sleep_until(deadline).await;
            let moved = Duration::from_millis(self.last_ms.load(Ordering::Relaxed)) != last;
            if !moved && self.in_flight.load(Ordering::Relaxed) == 0 {
                return;
            }
            if !moved {
                // A request is being handled: look again a little later.
                self.touch();
            }
        }
    }
}

/// Counts a request as in flight until dropped.
struct InFlight(Arc<Activity>);

impl InFlight {
    fn new(activity: Arc<Activity>) -> Self {
        activity.in_flight.fetch_add(1, Ordering::Relaxed);
        Self(activity)
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.in_flight.fetch_sub(1, Ordering::Relaxed);
        self.0.touch();
    }
}

/// An IO that records its progress in an [`Activity`].
struct Watched {
    inner: Box<dyn Io>,
    activity: Arc<Activity>,
}

impl AsyncRead for Watched {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let before = buf.filled().len();
        let polled = Pin::new(&mut self.inner).poll_read(cx, buf);
        if matches!(polled, Poll::Ready(Ok(()))) && buf.filled().len() > before {
            self.activity.touch();
        }
        polled
    }
}

impl AsyncWrite for Watched {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        data: &[u8],
    ) -> Poll<io::Result<usize>> {
        let polled = Pin::new(&mut self.inner).poll_write(cx, data);
        if matches!(polled, Poll::Ready(Ok(n)) if n > 0) {
            self.activity.touch();
        }
        polled
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let polled = Pin::new(&mut self.inner).poll_write_vectored(cx, bufs);
        if matches!(polled, Poll::Ready(Ok(n)) if n > 0) {
            self.activity.touch();
        }
        polled
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

/// Raises the soft limit on open files toward the hard limit so `max_connections` sockets
/// fit beside the store's and clients' own (`reserve`); returns the connection cap that
/// fits what the system allows (smaller than asked when the hard limit is lower).
pub fn fit_connections(wanted: usize, reserve: u64) -> usize {
    #[cfg(unix)]
    {
        use rustix::process::{Resource, Rlimit, getrlimit, setrlimit};
        let limit = getrlimit(Resource::Nofile);
        let need = wanted as u64 + reserve;
        let soft = limit.current.unwrap_or(u64::MAX);
        if soft >= need {
            return wanted;
        }
        let hard = limit.maximum.unwrap_or(u64::MAX);
        let target = need.min(hard);
        let raised = setrlimit(
            Resource::Nofile,
            Rlimit {
                current: Some(target),
                maximum: limit.maximum,
            },
        )
        .is_ok();
        let soft = if raised { target } else { soft };
        let fits = usize::try_from(soft.saturating_sub(reserve)).unwrap_or(usize::MAX);
        if fits < wanted {
            tracing::warn!(
                wanted,
                fits,
                open_files_limit = soft,
                "server.max_connections lowered to what the open-files limit allows (raise it with `ulimit -n` or LimitNOFILE=)"
            );
        }
        fits.clamp(1, wanted)
    }
    #[cfg(not(unix))]
    {
        let _ = reserve;
        wanted
    }
}

/// The request body within a deadline counted from the end of the headers: past it, the
/// next read fails with [`BodyDeadline`] (the webhook handler answers 408).
struct DeadlineBody {
    inner: Incoming,
    deadline: Pin<Box<tokio::time::Sleep>>,
}

/// The error a body read gets past [`Limits::body_deadline`].
#[derive(Debug, thiserror::Error)]
#[error("the request body did not arrive in time")]
pub struct BodyDeadline;

impl HttpBody for DeadlineBody {
    type Data = Bytes;
    type Error = Box<dyn std::error::Error + Send + Sync>;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
        let this = self.get_mut();
        if let Poll::Ready(frame) = Pin::new(&mut this.inner).poll_frame(cx) {
            return Poll::Ready(frame.map(|r| r.map_err(Into::into)));
        }
        if this.deadline.as_mut().poll(cx).is_ready() {
            return Poll::Ready(Some(Err(Box::new(BodyDeadline))));
        }
        Poll::Pending
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn failed_accepts_back_off_to_a_second() {
        let mut waits = vec![next_backoff(Duration::ZERO)];
        for _ in 0..12 {
            let last = *waits.last().unwrap_or(&Duration::ZERO);
            waits.push(next_backoff(last));
        }
        assert_eq!(waits[0], Duration::from_millis(5));
        assert_eq!(waits[1], Duration::from_millis(10));
        assert!(waits.windows(2).all(|w| w[1] >= w[0]));
        assert_eq!(
            *waits.last().unwrap_or(&Duration::ZERO),
            Duration::from_secs(1)
        );
    }
}
