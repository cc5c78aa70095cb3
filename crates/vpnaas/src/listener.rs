//! Listeners: the accept loop, TLS, and the per-connection rules that protect
//! the server from slow or idle clients.
//!
//! Why our own loop instead of `axum::serve`: an operator needs TLS (rustls,
//! optionally asking gateway nodes for a client certificate), a bound on open
//! connections, and three distinct timeouts — a half-sent request head, an
//! idle keep-alive connection, and a slow body or handler (the last two are
//! the edge middleware's, see `edge`). `axum::serve` offers none of these.
//!
//! Per connection, a small watchdog reads two facts kept by the connection's IO
//! wrapper and service: when a request head started arriving, and when the
//! connection last moved a byte while no request was in flight. A head not
//! complete within `header_timeout` drops the connection; a connection idle for
//! `idle_timeout` is shut down gracefully. The connection limit is a semaphore:
//! at the limit, the loop stops accepting, and new clients wait in the kernel's
//! backlog until a slot frees.
//!
//! Each request gets the peer address (`ConnectInfo<SocketAddr>`) and, on a TLS
//! connection with a verified client certificate, its fingerprint
//! (`realize::http::ClientCertFingerprint`), which the node API accepts in place
//! of a bearer token.

use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use anyhow::Context as _;
use axum::Router;
use axum::extract::ConnectInfo;
use hyper_util::rt::{TokioIo, TokioTimer};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpListener;
use tokio::sync::{Semaphore, watch};
use tower::Service;

/// Connection-level settings.
#[derive(Debug, Clone)]
pub struct ConnLimits {
    /// Most open connections (all listeners together).
    pub max_connections: usize,
    /// Time a client may take to send a complete request head (and a TLS handshake).
    pub header_timeout: Duration,
    /// Time a keep-alive connection may stay open with no request.
    pub idle_timeout: Duration,
}

impl Default for ConnLimits {
    fn default() -> ConnLimits {
        ConnLimits {
            max_connections: 10_000,
            header_timeout: Duration::from_secs(10),
            idle_timeout: Duration::from_secs(60),
        }
    }
}

/// TLS settings of a listener.
#[derive(Debug, Clone)]
pub struct TlsFiles {
    /// The server's certificate chain (PEM).
    pub cert: std::path::PathBuf,
    /// Its private key (PEM).
    pub key: std::path::PathBuf,
    /// CA that signs node client certificates; when set, clients may (not must)
    /// present one.
    pub client_ca: Option<std::path::PathBuf>,
}

/// Builds the rustls server configuration from PEM files.
pub fn tls_config(files: &TlsFiles) -> anyhow::Result<Arc<rustls::ServerConfig>> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(&files.cert)
        .with_context(|| format!("read TLS certificate {}", files.cert.display()))?
        .collect::<Result<_, _>>()
        .with_context(|| format!("parse TLS certificate {}", files.cert.display()))?;
    if certs.is_empty() {
        anyhow::bail!("no certificate in {}", files.cert.display());
    }
    let key = PrivateKeyDer::from_pem_file(&files.key)
        .with_context(|| format!("read TLS private key {}", files.key.display()))?;
    let builder = rustls::ServerConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .context("TLS protocol versions")?;
    let builder = match &files.client_ca {
        Some(ca) => {
            let mut roots = rustls::RootCertStore::empty();
            for c in CertificateDer::pem_file_iter(ca)
                .with_context(|| format!("read client CA {}", ca.display()))?
            {
                roots
                    .add(c.with_context(|| format!("parse client CA {}", ca.display()))?)
                    .with_context(|| format!("client CA {}", ca.display()))?;
            }
            let verifier =
                rustls::server::WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider)
                    .allow_unauthenticated()
                    .build()
                    .context("client certificate verifier")?;
            builder.with_client_cert_verifier(verifier)
        }
        None => builder.with_no_client_auth(),
    };
    let mut cfg = builder
        .with_single_cert(certs, key)
        .context("TLS certificate and key do not match")?;
    cfg.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(Arc::new(cfg))
}

/// Activity of one connection, shared by its IO wrapper, service and watchdog.
struct Activity {
    start: Instant,
    /// Requests being handled.
    in_flight: AtomicUsize,
    /// Ms since `start` of the last byte moved (0: none yet).
    last: AtomicU64,
    /// Ms since `start` + 1 when a request head began arriving (0: none pending).
    /// A new connection owes its first head from the moment it is accepted, so
    /// one that sends nothing is held to the header timeout, not the idle one.
    head_since: AtomicU64,
    /// Requests started so far (tells the IO wrapper a new head begins).
    started: AtomicU64,
}

impl Activity {
    fn new() -> Activity {
        Activity {
            start: Instant::now(),
            in_flight: AtomicUsize::new(0),
            last: AtomicU64::new(0),
            head_since: AtomicU64::new(1),
            started: AtomicU64::new(0),
        }
    }

    fn now(&self) -> u64 {
        self.start.elapsed().as_millis() as u64 + 1
    }

    fn read(&self, n: usize) {
        if n == 0 {
            return;
        }
        let now = self.now();
        self.last.store(now, Ordering::Relaxed);
        if self.in_flight.load(Ordering::Relaxed) == 0 {
            let _ = self
                .head_since
                .compare_exchange(0, now, Ordering::Relaxed, Ordering::Relaxed);
        }
    }

    fn wrote(&self) {
        self.last.store(self.now(), Ordering::Relaxed);
    }

    fn request_started(&self) {
        self.in_flight.fetch_add(1, Ordering::Relaxed);
        self.started.fetch_add(1, Ordering::Relaxed);
        self.head_since.store(0, Ordering::Relaxed);
    }

    fn request_done(&self) {
        self.in_flight.fetch_sub(1, Ordering::Relaxed);
        self.last.store(self.now(), Ordering::Relaxed);
    }
}

/// The IO hyper reads and writes (plaintext, inside TLS): it records the
/// connection's activity for the watchdog, remembers the start of the request
/// head being received, and replaces the bare answers hyper
/// itself gives to requests it cannot parse (an empty 400, 414 or 431 with
/// `connection: close`, before any handler saw the request) by the same status
/// in the envelope of the API the request's path belongs to. Responses from
/// the app never match: the edge gives every 4xx a JSON body.
struct Enveloped<S> {
    inner: S,
    activity: Arc<Activity>,
    /// The first bytes of the current request head.
    head: Vec<u8>,
    /// `Activity::started` when `head` began.
    head_of: u64,
    /// The replacement for hyper's answer, while it is being delivered.
    replacing: Option<Replacement>,
}

/// Delivering a replacement answer: write it, end our side of the stream, then
/// read and discard what the client is still sending (a lingering close, as web
/// servers do), so that it reads the answer instead of a reset. Bounded: at most
/// [`DRAIN_MAX`] bytes, and the watchdog's header timeout for the whole.
struct Replacement {
    out: Vec<u8>,
    sent: usize,
    /// How many bytes of hyper's answer it stands for.
    stands_for: usize,
    closed: bool,
    drained: usize,
    done: bool,
}

/// Most bytes read and discarded after a replacement answer.
const DRAIN_MAX: usize = 1 << 20;

impl Replacement {
    fn poll_deliver<S: AsyncRead + AsyncWrite + Unpin>(
        &mut self,
        inner: &mut S,
        cx: &mut Context<'_>,
    ) -> Poll<std::io::Result<()>> {
        while self.sent < self.out.len() {
            match Pin::new(&mut *inner).poll_write(cx, &self.out[self.sent..]) {
                Poll::Ready(Ok(0)) => return Poll::Ready(Err(std::io::ErrorKind::WriteZero.into())),
                Poll::Ready(Ok(n)) => self.sent += n,
                Poll::Ready(Err(e)) => return Poll::Ready(Err(e)),
                Poll::Pending => return Poll::Pending,
            }
        }
        if !self.closed {
            match Pin::new(&mut *inner).poll_shutdown(cx) {
                Poll::Ready(_) => self.closed = true,
                Poll::Pending => return Poll::Pending,
            }
        }
        let mut scratch = [0u8; 8192];
        while self.drained < DRAIN_MAX {
            let mut rb = ReadBuf::new(&mut scratch);
            match Pin::new(&mut *inner).poll_read(cx, &mut rb) {
                Poll::Ready(Ok(())) if rb.filled().is_empty() => break,
                Poll::Ready(Ok(())) => self.drained += rb.filled().len(),
                Poll::Ready(Err(_)) => break,
                Poll::Pending => return Poll::Pending,
            }
        }
        self.done = true;
        Poll::Ready(Ok(()))
    }
}

/// How much of a request head is kept to find its path.
const HEAD_PREFIX: usize = 512;

impl<S> Enveloped<S> {
    fn new(inner: S, activity: Arc<Activity>) -> Enveloped<S> {
        Enveloped {
            inner,
            activity,
            head: Vec::new(),
            head_of: 0,
            replacing: None,
        }
    }

    fn saw(&mut self, bytes: &[u8]) {
        let started = self.activity.started.load(Ordering::Relaxed);
        if started != self.head_of {
            self.head.clear();
            self.head_of = started;
        }
        if self.activity.in_flight.load(Ordering::Relaxed) == 0 && self.head.len() < HEAD_PREFIX {
            let room = HEAD_PREFIX - self.head.len();
            self.head.extend_from_slice(&bytes[..bytes.len().min(room)]);
        }
    }

    /// The path of the request whose head is being received, if readable.
    fn path(&self) -> String {
        let line = self.head.split(|b| *b == b'\n').next().unwrap_or_default();
        let text = String::from_utf8_lossy(line);
        let target = text.split(' ').nth(1).unwrap_or("/");
        target.split('?').next().unwrap_or("/").to_string()
    }
}

/// hyper's own answer to an unparsable request: `HTTP/1.x 4xx`, no body, no
/// content type. Returns its status.
fn hypers_own_error(buf: &[u8]) -> Option<axum::http::StatusCode> {
    let end = buf.windows(4).position(|w| w == b"\r\n\r\n")?;
    let head = std::str::from_utf8(&buf[..end]).ok()?.to_ascii_lowercase();
    let rest = head
        .strip_prefix("http/1.1 ")
        .or_else(|| head.strip_prefix("http/1.0 "))?;
    let code: u16 = rest.get(..3)?.parse().ok()?;
    let bare = head.contains("\r\ncontent-length: 0") && !head.contains("\r\ncontent-type:");
    (matches!(code, 400 | 414 | 431) && bare)
        .then(|| axum::http::StatusCode::from_u16(code).ok())
        .flatten()
}

/// The replacement for hyper's answer, as bytes on the wire.
fn enveloped_answer(status: axum::http::StatusCode, path: &str) -> Vec<u8> {
    let api = crate::edge::Api::of(path);
    let message = match status.as_u16() {
        414 => "The request URL is too long.",
        431 => "The request header fields are too large.",
        _ => "The request could not be parsed (malformed request line, header or framing).",
    };
    let resp = api.error(status, message);
    let content_type = resp
        .headers()
        .get(axum::http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("application/json")
        .to_string();
    // The body is a complete in-memory JSON document: collecting it is
    // immediate, nothing here waits.
    let body =
        futures::executor::block_on(axum::body::to_bytes(resp.into_body(), 64 * 1024)).unwrap_or_default();
    let mut out = format!(
        "HTTP/1.1 {} {}\r\ncontent-type: {content_type}\r\ncontent-length: {}\r\nconnection: close\r\n\r\n",
        status.as_u16(),
        status.canonical_reason().unwrap_or(""),
        body.len()
    )
    .into_bytes();
    out.extend_from_slice(&body);
    out
}

impl<S: AsyncRead + Unpin> AsyncRead for Enveloped<S> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        let before = buf.filled().len();
        let r = Pin::new(&mut self.inner).poll_read(cx, buf);
        if let Poll::Ready(Ok(())) = r {
            let got = &buf.filled()[before..];
            self.activity.read(got.len());
            self.saw(got);
        }
        r
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin> AsyncWrite for Enveloped<S> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        if self.replacing.is_none()
            && self.activity.in_flight.load(Ordering::Relaxed) == 0
            && let Some(status) = hypers_own_error(buf)
        {
            let path = self.path();
            // hyper says 431 whenever its buffer fills; if the request line
            // itself never ended, it is the URL that is too long.
            let status = if status == axum::http::StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE
                && self.head.len() >= HEAD_PREFIX
                && !self.head.contains(&b'\n')
            {
                axum::http::StatusCode::URI_TOO_LONG
            } else {
                status
            };
            self.replacing = Some(Replacement {
                out: enveloped_answer(status, &path),
                sent: 0,
                stands_for: buf.len(),
                closed: false,
                drained: 0,
                done: false,
            });
        }
        let this = &mut *self;
        if let Some(rep) = &mut this.replacing {
            if rep.done {
                // The answer is out and our side closed: swallow the rest.
                return Poll::Ready(Ok(buf.len()));
            }
            return match rep.poll_deliver(&mut this.inner, cx) {
                Poll::Ready(Ok(())) => Poll::Ready(Ok(rep.stands_for.min(buf.len()))),
                Poll::Ready(Err(e)) => Poll::Ready(Err(e)),
                Poll::Pending => Poll::Pending,
            };
        }
        let r = Pin::new(&mut this.inner).poll_write(cx, buf);
        if let Poll::Ready(Ok(n)) = r
            && n > 0
        {
            this.activity.wrote();
        }
        r
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        if self.replacing.as_ref().is_some_and(|r| r.closed) {
            return Poll::Ready(Ok(()));
        }
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        if self.replacing.as_ref().is_some_and(|r| r.closed) {
            return Poll::Ready(Ok(()));
        }
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

/// What the watchdog decided about a connection.
enum Verdict {
    /// A request head did not arrive in time: drop the connection now.
    HeadTimeout,
    /// No request for `idle_timeout`: close it gracefully.
    Idle,
}

async fn watchdog(activity: Arc<Activity>, limits: ConnLimits) -> Verdict {
    let tick = (limits.header_timeout.min(limits.idle_timeout) / 4)
        .clamp(Duration::from_millis(50), Duration::from_secs(1));
    loop {
        tokio::time::sleep(tick).await;
        if activity.in_flight.load(Ordering::Relaxed) > 0 {
            continue;
        }
        let now = activity.now();
        let head = activity.head_since.load(Ordering::Relaxed);
        if head != 0 && now.saturating_sub(head) > limits.header_timeout.as_millis() as u64 {
            return Verdict::HeadTimeout;
        }
        let last = activity.last.load(Ordering::Relaxed);
        if head == 0 && now.saturating_sub(last) > limits.idle_timeout.as_millis() as u64 {
            return Verdict::Idle;
        }
    }
}

/// The fingerprint of a TLS peer's leaf certificate, if it presented one.
fn peer_fingerprint(conn: &rustls::ServerConnection) -> Option<realize::http::ClientCertFingerprint> {
    let leaf = conn.peer_certificates()?.first()?;
    Some(realize::http::ClientCertFingerprint::of_der(leaf.as_ref()))
}

/// One listener of the server: where it listens and whether it speaks TLS.
pub struct Listener {
    /// The bound socket.
    pub tcp: TcpListener,
    /// TLS settings; `None`: plain HTTP.
    pub tls: Option<Arc<rustls::ServerConfig>>,
}

impl Listener {
    /// Binds `addr` (port 0: any free port).
    pub async fn bind(addr: SocketAddr, tls: Option<Arc<rustls::ServerConfig>>) -> anyhow::Result<Listener> {
        let tcp = TcpListener::bind(addr)
            .await
            .with_context(|| format!("bind {addr}"))?;
        Ok(Listener { tcp, tls })
    }

    /// The address actually bound.
    pub fn local_addr(&self) -> std::io::Result<SocketAddr> {
        self.tcp.local_addr()
    }
}

/// Raises the open-files limit to what the connection limit needs, as far as
/// the hard limit allows; returns the connection limit that fits.
pub fn fit_connection_limit(wanted: usize) -> usize {
    let _ = rlimit::increase_nofile_limit((wanted as u64).saturating_add(256));
    match rlimit::getrlimit(rlimit::Resource::NOFILE) {
        // Keep room for the database, log and listener descriptors.
        Ok((soft, _)) => wanted.min(soft.saturating_sub(128).max(16) as usize),
        Err(_) => wanted,
    }
}

/// Serves `app` on every listener until `shutdown` fires, then lets open
/// connections finish their requests (at most `grace`).
pub async fn serve(
    listeners: Vec<Listener>,
    app: Router,
    limits: ConnLimits,
    mut shutdown: watch::Receiver<bool>,
    grace: Duration,
) -> std::io::Result<()> {
    let slots = Arc::new(Semaphore::new(limits.max_connections));
    let (closing_tx, closing) = watch::channel(false);
    let mut loops = Vec::new();
    for l in listeners {
        loops.push(tokio::spawn(accept_loop(
            l,
            app.clone(),
            limits.clone(),
            slots.clone(),
            closing.clone(),
        )));
    }
    let _ = shutdown.wait_for(|s| *s).await;
    let _ = closing_tx.send(true);
    for l in &loops {
        l.abort();
    }
    // Every connection holds a slot: wait for them to be given back.
    let all = u32::try_from(limits.max_connections).unwrap_or(u32::MAX);
    let _ = tokio::time::timeout(grace, slots.acquire_many(all)).await;
    Ok(())
}

async fn accept_loop(
    l: Listener,
    app: Router,
    limits: ConnLimits,
    slots: Arc<Semaphore>,
    closing: watch::Receiver<bool>,
) {
    let acceptor = l.tls.clone().map(tokio_rustls::TlsAcceptor::from);
    loop {
        let Ok(slot) = slots.clone().acquire_owned().await else {
            return;
        };
        let (tcp, peer) = match l.tcp.accept().await {
            Ok(c) => c,
            Err(e) => {
                // EMFILE and friends: back off instead of spinning.
                tracing::warn!(error = %e, "accept failed");
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        let _ = tcp.set_nodelay(true);
        let app = app.clone();
        let limits = limits.clone();
        let acceptor = acceptor.clone();
        let closing = closing.clone();
        tokio::spawn(async move {
            let _slot = slot;
            let activity = Arc::new(Activity::new());
            match acceptor {
                None => connection(tcp, peer, false, None, app, limits, activity, closing).await,
                Some(acceptor) => {
                    let tls = match tokio::time::timeout(limits.header_timeout, acceptor.accept(tcp)).await {
                        Ok(Ok(tls)) => tls,
                        Ok(Err(e)) => {
                            tracing::debug!(%peer, error = %e, "TLS handshake failed");
                            return;
                        }
                        Err(_) => {
                            tracing::debug!(%peer, "TLS handshake timed out");
                            return;
                        }
                    };
                    let cert = peer_fingerprint(tls.get_ref().1);
                    connection(tls, peer, true, cert, app, limits, activity, closing).await
                }
            }
        });
    }
}

#[allow(clippy::too_many_arguments)]
async fn connection<S>(
    io: S,
    peer: SocketAddr,
    is_tls: bool,
    cert: Option<realize::http::ClientCertFingerprint>,
    app: Router,
    limits: ConnLimits,
    activity: Arc<Activity>,
    mut closing: watch::Receiver<bool>,
) where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let tls = is_tls;
    let svc_activity = activity.clone();
    let svc = hyper::service::service_fn(move |req: hyper::Request<hyper::body::Incoming>| {
        let mut app = app.clone();
        let activity = svc_activity.clone();
        let cert = cert.clone();
        activity.request_started();
        async move {
            let mut req = req.map(axum::body::Body::new);
            if tls {
                // Links in responses must say https (see api-neutron's base_url).
                req.headers_mut()
                    .insert("x-forwarded-proto", axum::http::HeaderValue::from_static("https"));
            }
            req.extensions_mut().insert(ConnectInfo(peer));
            if let Some(c) = cert {
                req.extensions_mut().insert(c);
            }
            let resp = app.call(req).await;
            activity.request_done();
            resp
        }
    });
    let mut http = hyper::server::conn::http1::Builder::new();
    http.timer(TokioTimer::new())
        // Outer limits only: the edge answers the operator-facing ones (414, 431)
        // in the API's envelope; these stop a client that goes far beyond them.
        // 64 KiB: the edge's limits (8 KiB URL, 32 KiB of header fields) fit,
        // and a connection sending an endless head costs at most this much.
        .max_buf_size(64 * 1024)
        .max_headers(1000)
        // Backstop; the watchdog enforces header and idle timeouts precisely.
        .header_read_timeout(limits.idle_timeout.max(limits.header_timeout) + Duration::from_secs(5))
        .keep_alive(true);
    let io = Enveloped::new(io, activity.clone());
    let conn = http.serve_connection(TokioIo::new(io), svc);
    let mut conn = std::pin::pin!(conn);
    let dog = watchdog(activity, limits);
    let mut dog = std::pin::pin!(dog);
    let mut shutting_down = false;
    loop {
        tokio::select! {
            r = conn.as_mut() => {
                if let Err(e) = r {
                    tracing::debug!(%peer, error = %e, "connection ended with an error");
                }
                return;
            }
            v = dog.as_mut(), if !shutting_down => match v {
                Verdict::HeadTimeout => {
                    tracing::debug!(%peer, "request head not received in time; closing");
                    return;
                }
                Verdict::Idle => {
                    shutting_down = true;
                    conn.as_mut().graceful_shutdown();
                }
            },
            _ = closing.wait_for(|c| *c), if !shutting_down => {
                shutting_down = true;
                conn.as_mut().graceful_shutdown();
            }
        }
    }
}

/// Whether `addr` is a loopback address (plain HTTP is allowed there only).
pub fn is_loopback(addr: &SocketAddr) -> bool {
    addr.ip().is_loopback()
}
