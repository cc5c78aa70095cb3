//! The VICI session to charon, behind a small trait.
//!
//! Why a trait: the reconciler's logic (exact diff, generation guard, failures,
//! re-apply after a charon restart, serial initiation) is tested against
//! [`crate::fake::FakeVici`], and only the end-to-end test needs a real charon.
//! Why here and not spread over the reconciler: rsvici 0.1.5 is a small crate from
//! one author, so everything that knows it lives in [`charon`] and could be
//! replaced by a hand-written codec without touching anything else.

use std::future::Future;
use std::time::Duration;

use crate::message::Section;

/// A failed VICI call.
#[derive(Debug, thiserror::Error)]
pub enum ViciError {
    /// The socket could not be opened (charon not running, wrong path).
    #[error("cannot connect to charon's VICI socket {path}")]
    Connect {
        /// The socket path.
        path: String,
        /// Why it could not be opened.
        #[source]
        source: std::io::Error,
    },
    /// The session broke (charon exited or restarted) or got out of step.
    #[error("VICI session lost during {command}")]
    Session {
        /// The VICI command under way.
        command: &'static str,
        /// rsvici's error, when it gave one.
        #[source]
        source: Option<rsvici::Error>,
    },
    /// charon did not answer in time; the session can't be trusted any more
    /// (VICI has no request ids, a late answer would be taken for the next one).
    #[error("charon did not answer {command} within {timeout:?}")]
    Timeout {
        /// The VICI command under way.
        command: &'static str,
        /// How long it was given.
        timeout: Duration,
    },
    /// charon answered `success = no`: a per-object failure, the session is fine.
    #[error("{command} failed: {message}")]
    Failed {
        /// The refused VICI command.
        command: &'static str,
        /// charon's `errmsg`.
        message: String,
    },
}

impl ViciError {
    /// Whether the session must be dropped and re-established (and the full state
    /// re-applied), as opposed to one command having been refused.
    pub fn is_session(&self) -> bool {
        !matches!(self, ViciError::Failed { .. })
    }

    /// charon's own words, for failures reported to the server.
    pub fn message(&self) -> String {
        match self {
            ViciError::Failed { message, .. } => message.clone(),
            other => other.to_string(),
        }
    }
}

/// One IKE_SA as `list-sas` shows it.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct IkeSa {
    /// The connection (config) name: the tunnel id.
    pub name: String,
    /// charon's IKE_SA state: CREATED, CONNECTING, ESTABLISHED, PASSIVE, REKEYING,
    /// REKEYED, DELETING, DESTROYING.
    pub state: String,
    /// Seconds since it was established (`established`), when it is.
    pub established: Option<u64>,
    /// Its CHILD_SAs.
    pub children: Vec<ChildSa>,
}

/// One CHILD_SA of an IKE_SA.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ChildSa {
    /// The CHILD_SA config name.
    pub name: String,
    /// CREATED, ROUTED, INSTALLING, INSTALLED, UPDATING, REKEYING, REKEYED,
    /// RETRYING, DELETING, DELETED, DESTROYING.
    pub state: String,
    /// Bytes received (charon's `bytes-in`).
    pub bytes_in: u64,
    /// Bytes sent (`bytes-out`).
    pub bytes_out: u64,
    /// Packets received (`packets-in`).
    pub packets_in: u64,
    /// Packets sent (`packets-out`).
    pub packets_out: u64,
}

/// What initiating a CHILD_SA ended with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Initiated {
    /// IKE_SA and CHILD_SA are up.
    Established,
    /// Not up within the timeout; charon keeps trying in the background.
    Pending,
    /// charon gave up; the reason, from its log (e.g. an authentication failure).
    Failed(String),
}

/// The VICI commands the agent uses. One session handles one command at a time.
pub trait Vici: Send {
    /// `load-conn`: add or replace connections (re-sending an identical one is a no-op).
    fn load_conn(&mut self, msg: &Section) -> impl Future<Output = Result<(), ViciError>> + Send;
    /// `unload-conn`.
    fn unload_conn(&mut self, name: &str) -> impl Future<Output = Result<(), ViciError>> + Send;
    /// `load-shared`: add or replace a shared secret (by its `id`).
    fn load_shared(&mut self, msg: &Section) -> impl Future<Output = Result<(), ViciError>> + Send;
    /// `unload-shared` by id.
    fn unload_shared(&mut self, id: &str) -> impl Future<Output = Result<(), ViciError>> + Send;
    /// `terminate` every IKE_SA of connection `ike` (forced after `timeout`). Having
    /// nothing to terminate is success.
    fn terminate(
        &mut self,
        ike: &str,
        timeout: Duration,
    ) -> impl Future<Output = Result<(), ViciError>> + Send;
    /// `initiate` CHILD_SA `child` of connection `ike`, waiting at most `timeout`.
    fn initiate(
        &mut self,
        ike: &str,
        child: &str,
        timeout: Duration,
    ) -> impl Future<Output = Result<Initiated, ViciError>> + Send;
    /// `list-sas`, of one connection or all.
    fn list_sas(&mut self, ike: Option<&str>) -> impl Future<Output = Result<Vec<IkeSa>, ViciError>> + Send;
    /// `get-conns`: names of the loaded connections.
    fn get_conns(&mut self) -> impl Future<Output = Result<Vec<String>, ViciError>> + Send;
    /// `get-shared`: ids of the loaded shared secrets.
    fn get_shared(&mut self) -> impl Future<Output = Result<Vec<String>, ViciError>> + Send;
    /// Turns `true` when the session is known to be broken (charon went away), so
    /// the owner can reconnect at once instead of at its next call. `None`: the
    /// session can't tell; its next call fails instead.
    fn lost(&self) -> Option<tokio::sync::watch::Receiver<bool>> {
        None
    }
}

/// Opens VICI sessions (again after charon restarts).
pub trait Connector: Send {
    /// The session type it opens.
    type Session: Vici;
    /// Opens a new session.
    fn connect(&mut self) -> impl Future<Output = Result<Self::Session, ViciError>> + Send;
    /// charon's events, on a connection of their own that reconnects by
    /// itself (called once, when the agent starts); None: no events, status
    /// comes from polling alone.
    fn events(&mut self) -> Option<tokio::sync::mpsc::Receiver<crate::events::Event>> {
        None
    }
}

/// Picks the most telling reason out of charon's control log of a failed initiate.
pub fn failure_reason(log: &[String], errmsg: &str) -> String {
    const TELLING: &[&str] = &[
        "AUTHENTICATION_FAILED",
        "NO_PROPOSAL_CHOSEN",
        "TS_UNACCEPTABLE",
        "INVALID_KE_PAYLOAD",
        "MAC mismatched",
        "no shared key found",
        "no matching peer config",
        "no IKE config found",
        "giving up after",
        "peer not responding",
        "establishing IKE_SA",
    ];
    for needle in TELLING {
        if let Some(line) = log.iter().find(|l| l.contains(needle)) {
            return line.trim().to_string();
        }
    }
    errmsg.to_string()
}

/// The real session: rsvici over charon's unix socket.
pub mod charon {
    use std::collections::BTreeMap;
    use std::path::PathBuf;
    use std::sync::Arc;
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::time::Duration;

    use futures::StreamExt;
    use futures::future::{BoxFuture, FutureExt};
    use serde::{Deserialize, Serialize};
    use tokio::sync::{Mutex, Notify};

    use super::*;
    use crate::events::Event;

    /// Extra time given to charon beyond a command's own timeout.
    const MARGIN: Duration = Duration::from_secs(5);

    /// Connects to charon's VICI socket.
    #[derive(Debug, Clone)]
    pub struct CharonConnector {
        /// charon's VICI socket (`--vici`).
        pub path: PathBuf,
        /// Longest wait for any plain command.
        pub call_timeout: Duration,
    }

    impl CharonConnector {
        /// A connector to the socket at `path`, with a 10 s call timeout.
        pub fn new(path: impl Into<PathBuf>) -> CharonConnector {
            CharonConnector {
                path: path.into(),
                call_timeout: Duration::from_secs(10),
            }
        }
    }

    impl Connector for CharonConnector {
        type Session = Charon;
        async fn connect(&mut self) -> Result<Charon, ViciError> {
            Charon::connect(&self.path, self.call_timeout).await
        }

        fn events(&mut self) -> Option<tokio::sync::mpsc::Receiver<Event>> {
            Some(spawn_events(self.path.clone()))
        }
    }

    /// The events the agent subscribes to.
    const EVENTS: &[&str] = &["ike-updown", "child-updown", "ike-rekey", "child-rekey", "log"];

    /// Subscribes to charon's events on a VICI connection of its own (a
    /// command waiting for its answer and an event on one socket would
    /// interleave) and forwards them; reconnects, with back-off, whenever
    /// charon goes away. Sends [`Event::Connected`] after each (re)subscription
    /// and [`Event::Lost`] when the stream breaks. Stops when the receiver is
    /// dropped.
    pub fn spawn_events(path: PathBuf) -> tokio::sync::mpsc::Receiver<Event> {
        let (tx, rx) = tokio::sync::mpsc::channel(1024);
        tokio::spawn(async move {
            let mut backoff = crate::api::Backoff::new(Duration::from_millis(200), Duration::from_secs(5));
            loop {
                if tx.is_closed() {
                    return;
                }
                let mut subscribed = false;
                match event_session(&path, &tx, &mut subscribed).await {
                    Ok(()) => return,
                    Err(e) => {
                        if subscribed {
                            backoff.reset();
                        }
                        if tx.send(Event::Lost).await.is_err() {
                            return;
                        }
                        let delay = backoff.next_delay();
                        tracing::debug!(error = %e, retry_in = ?delay, "VICI event stream down");
                        tokio::time::sleep(delay).await;
                    }
                }
            }
        });
        rx
    }

    /// One event session: Ok when the receiver is gone, Err when charon is.
    async fn event_session(
        path: &std::path::Path,
        tx: &tokio::sync::mpsc::Sender<Event>,
        subscribed: &mut bool,
    ) -> Result<(), String> {
        let mut client = rsvici::unix::connect(path)
            .await
            .map_err(|e| format!("cannot connect: {e}"))?;
        let mut errors = client.listen_for_errors();
        let mut streams = futures::stream::SelectAll::new();
        for name in EVENTS {
            let s = client
                .subscribe::<RawEvent>(name)
                .map(move |r| r.map(|raw| (*name, raw)));
            streams.push(Box::pin(s));
        }
        // `subscribe` registers when first polled: announce the session once
        // the registrations are under way (the first event or a short wait).
        let mut announced = false;
        let announce = tokio::time::sleep(Duration::from_millis(300));
        tokio::pin!(announce);
        loop {
            tokio::select! {
                ev = streams.next() => match ev {
                    Some(Ok((name, raw))) => {
                        for e in raw.into_events(name) {
                            match &e {
                                Event::Log { name: Some(n), msg, .. } => {
                                    tracing::debug!(tunnel = %n, line = %msg, "charon log");
                                }
                                Event::Log { msg, .. } => tracing::trace!(line = %msg, "charon log"),
                                other => tracing::debug!(event = ?other, "charon event"),
                            }
                            if tx.send(e).await.is_err() {
                                return Ok(());
                            }
                        }
                    }
                    Some(Err(e)) => return Err(e.to_string()),
                    None => return Err("event streams ended".into()),
                },
                e = errors.next() => match e {
                    Some(e) if e.is_io() || e.is_closed() => return Err(e.to_string()),
                    Some(e) => tracing::debug!(error = %e, "VICI event background error"),
                    None => return Err("VICI listener ended".into()),
                },
                _ = &mut announce, if !announced => {
                    announced = true;
                    *subscribed = true;
                    tracing::info!("subscribed to charon's events");
                    if tx.send(Event::Connected).await.is_err() {
                        return Ok(());
                    }
                }
                _ = tx.closed() => return Ok(()),
            }
        }
        // Dropping `client` aborts rsvici's listener task (see `Charon`).
    }

    /// An event message: `up = yes` (updown events), the IKE_SA sections by
    /// config name, or a log line's fields. Read key by key because the
    /// section names are connection names.
    #[derive(Default)]
    struct RawEvent {
        up: bool,
        sas: Vec<(String, EventSa)>,
        log: Option<(Option<String>, Option<u32>, String, String)>,
    }

    /// What the agent reads of an IKE_SA section in an event.
    #[derive(Deserialize, Default)]
    struct EventSa {
        #[serde(rename = "child-sas", default)]
        child_sas: BTreeMap<String, serde::de::IgnoredAny>,
    }

    impl RawEvent {
        fn into_events(self, event: &str) -> Vec<Event> {
            if let Some((name, ike_sa, group, msg)) = self.log {
                return vec![Event::Log {
                    name,
                    ike_sa,
                    group,
                    msg,
                }];
            }
            let up = self.up;
            self.sas
                .into_iter()
                .filter_map(|(name, sa)| match event {
                    "ike-updown" => Some(Event::IkeUpDown { name, up }),
                    "child-updown" => Some(Event::ChildUpDown { name, up }),
                    "ike-rekey" => Some(Event::IkeRekey { name }),
                    "child-rekey" => Some(Event::ChildRekey {
                        name,
                        children: sa.child_sas.len().max(1) as u64,
                    }),
                    _ => None,
                })
                .collect()
        }
    }

    impl<'de> Deserialize<'de> for RawEvent {
        fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<RawEvent, D::Error> {
            struct V;
            impl<'de> serde::de::Visitor<'de> for V {
                type Value = RawEvent;
                fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                    f.write_str("a VICI event message")
                }
                fn visit_map<A: serde::de::MapAccess<'de>>(self, mut m: A) -> Result<RawEvent, A::Error> {
                    let mut ev = RawEvent::default();
                    let (mut name, mut ike_sa, mut group, mut msg, mut is_log) =
                        (None, None, String::new(), String::new(), false);
                    while let Some(key) = m.next_key::<String>()? {
                        match key.as_str() {
                            "up" => ev.up = m.next_value::<String>()? == "yes",
                            "msg" => {
                                is_log = true;
                                msg = m.next_value()?;
                            }
                            "group" => group = m.next_value()?,
                            "ikesa-name" => name = Some(m.next_value::<String>()?),
                            "ikesa-uniqueid" => ike_sa = m.next_value::<String>()?.parse().ok(),
                            "level" | "thread" => {
                                m.next_value::<String>()?;
                            }
                            _ => {
                                let sa: EventSa = m.next_value()?;
                                ev.sas.push((key, sa));
                            }
                        }
                    }
                    if is_log {
                        ev.sas.clear();
                        ev.log = Some((name.filter(|n| n != "(unnamed)"), ike_sa, group, msg));
                    }
                    Ok(ev)
                }
            }
            d.deserialize_map(V)
        }
    }

    /// State shared with the task that watches the session for I/O errors.
    struct Shared {
        client: Mutex<Option<rsvici::Client>>,
        dead: AtomicBool,
        died: Notify,
        lost: tokio::sync::watch::Sender<bool>,
    }

    /// One VICI session.
    ///
    /// rsvici 0.1.5 gotcha: when charon closes the socket, rsvici's listener task
    /// keeps reading EOF in a hot loop (100% CPU) and never answers pending calls.
    /// A watcher task takes its background errors; on the first I/O error it marks
    /// the session dead, wakes pending calls, and drops the client, which aborts the
    /// listener.
    pub struct Charon {
        shared: Arc<Shared>,
        call_timeout: Duration,
    }

    #[derive(Deserialize)]
    struct Status {
        success: Option<bool>,
        errmsg: Option<String>,
    }

    #[derive(Serialize)]
    struct ByName {
        name: String,
    }

    #[derive(Serialize)]
    struct ById {
        id: String,
    }

    #[derive(Serialize)]
    struct Terminate {
        ike: String,
        force: bool,
        timeout: i64,
        loglevel: i32,
    }

    #[derive(Serialize)]
    struct Initiate {
        ike: String,
        child: String,
        timeout: i64,
        loglevel: i32,
    }

    #[derive(Deserialize)]
    struct ControlLog {
        #[serde(default)]
        msg: String,
    }

    #[derive(Serialize)]
    struct ListSas {
        noblock: bool,
        #[serde(skip_serializing_if = "Option::is_none")]
        ike: Option<String>,
    }

    #[derive(Deserialize)]
    struct WireIke {
        #[serde(default)]
        state: String,
        #[serde(default)]
        established: Option<u64>,
        #[serde(rename = "child-sas", default)]
        child_sas: BTreeMap<String, WireChild>,
    }

    #[derive(Deserialize)]
    struct WireChild {
        #[serde(default)]
        name: String,
        #[serde(default)]
        state: String,
        #[serde(rename = "bytes-in", default)]
        bytes_in: u64,
        #[serde(rename = "bytes-out", default)]
        bytes_out: u64,
        #[serde(rename = "packets-in", default)]
        packets_in: u64,
        #[serde(rename = "packets-out", default)]
        packets_out: u64,
    }

    #[derive(Deserialize)]
    struct Conns {
        #[serde(default)]
        conns: Vec<String>,
    }

    #[derive(Deserialize)]
    struct Keys {
        #[serde(default)]
        keys: Vec<String>,
    }

    impl Charon {
        /// Opens a session on `path`.
        pub async fn connect(path: &std::path::Path, call_timeout: Duration) -> Result<Charon, ViciError> {
            let mut client = rsvici::unix::connect(path)
                .await
                .map_err(|source| ViciError::Connect {
                    path: path.display().to_string(),
                    source,
                })?;
            let mut errors = client.listen_for_errors();
            let shared = Arc::new(Shared {
                client: Mutex::new(Some(client)),
                dead: AtomicBool::new(false),
                died: Notify::new(),
                lost: tokio::sync::watch::channel(false).0,
            });
            let weak = Arc::downgrade(&shared);
            tokio::spawn(async move {
                while let Some(e) = errors.next().await {
                    if !(e.is_io() || e.is_closed()) {
                        tracing::debug!(error = %e, "VICI background error");
                        continue;
                    }
                    tracing::warn!(error = %e, "VICI session to charon lost");
                    let Some(shared) = weak.upgrade() else { break };
                    shared.dead.store(true, Ordering::SeqCst);
                    shared.died.notify_waiters();
                    shared.lost.send_replace(true);
                    // Dropping the client aborts rsvici's (now spinning) listener task.
                    drop(shared.client.lock().await.take());
                    break;
                }
            });
            Ok(Charon { shared, call_timeout })
        }

        /// Runs `f` on the client, bounded by `timeout` and cut short if the session dies.
        async fn with_client<T, F>(
            &self,
            command: &'static str,
            timeout: Duration,
            f: F,
        ) -> Result<T, ViciError>
        where
            F: for<'c> FnOnce(&'c mut rsvici::Client) -> BoxFuture<'c, Result<T, rsvici::Error>>,
        {
            let lost = || ViciError::Session {
                command,
                source: None,
            };
            let died = self.shared.died.notified();
            tokio::pin!(died);
            died.as_mut().enable();
            if self.shared.dead.load(Ordering::SeqCst) {
                return Err(lost());
            }
            let mut guard = self.shared.client.lock().await;
            let client = guard.as_mut().ok_or_else(lost)?;
            let fut = f(client);
            tokio::select! {
                r = tokio::time::timeout(timeout, fut) => match r {
                    Err(_) => {
                        // A late answer would be read as the next command's: give up the session.
                        self.shared.dead.store(true, Ordering::SeqCst);
                        guard.take();
                        Err(ViciError::Timeout { command, timeout })
                    }
                    Ok(Ok(v)) => Ok(v),
                    Ok(Err(e)) if e.is_command_failed() => Err(ViciError::Failed {
                        command,
                        message: strip_failed(&e.to_string()),
                    }),
                    Ok(Err(e)) => {
                        self.shared.dead.store(true, Ordering::SeqCst);
                        guard.take();
                        Err(ViciError::Session { command, source: Some(e) })
                    }
                },
                _ = &mut died => Err(lost()),
            }
        }

        /// A plain request whose answer is `{success, errmsg}`.
        async fn simple<T: Serialize + Send + 'static>(
            &self,
            command: &'static str,
            msg: T,
        ) -> Result<(), ViciError> {
            let st: Status = self
                .with_client(command, self.call_timeout, |c| c.request(command, msg).boxed())
                .await?;
            match st.success {
                Some(false) => Err(ViciError::Failed {
                    command,
                    message: st.errmsg.unwrap_or_else(|| "unknown error".into()),
                }),
                _ => Ok(()),
            }
        }
    }

    fn strip_failed(s: &str) -> String {
        s.strip_prefix("command failed: ").unwrap_or(s).to_string()
    }

    fn millis(d: Duration) -> i64 {
        i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
    }

    impl Vici for Charon {
        async fn load_conn(&mut self, msg: &Section) -> Result<(), ViciError> {
            self.simple("load-conn", msg.clone()).await
        }

        async fn unload_conn(&mut self, name: &str) -> Result<(), ViciError> {
            self.simple(
                "unload-conn",
                ByName {
                    name: name.to_string(),
                },
            )
            .await
        }

        async fn load_shared(&mut self, msg: &Section) -> Result<(), ViciError> {
            self.simple("load-shared", msg.clone()).await
        }

        async fn unload_shared(&mut self, id: &str) -> Result<(), ViciError> {
            self.simple("unload-shared", ById { id: id.to_string() }).await
        }

        async fn terminate(&mut self, ike: &str, timeout: Duration) -> Result<(), ViciError> {
            let msg = Terminate {
                ike: ike.to_string(),
                force: true,
                timeout: millis(timeout),
                loglevel: -1,
            };
            let r = self
                .with_client("terminate", timeout + MARGIN, |c| {
                    async move {
                        let stream = c.stream_request::<_, ControlLog>("terminate", "control-log", msg);
                        let v: Vec<_> = stream.collect().await;
                        v.into_iter().collect::<Result<Vec<_>, _>>()
                    }
                    .boxed()
                })
                .await;
            match r {
                Ok(_) => Ok(()),
                Err(ViciError::Failed { message, .. }) if message.contains("no matching") => Ok(()),
                Err(e) => Err(e),
            }
        }

        async fn initiate(
            &mut self,
            ike: &str,
            child: &str,
            timeout: Duration,
        ) -> Result<Initiated, ViciError> {
            let msg = Initiate {
                ike: ike.to_string(),
                child: child.to_string(),
                timeout: millis(timeout),
                loglevel: 1,
            };
            let log = std::sync::Arc::new(std::sync::Mutex::new(Vec::<String>::new()));
            let sink = log.clone();
            let r = self
                .with_client("initiate", timeout + MARGIN, |c| {
                    async move {
                        let stream = c.stream_request::<_, ControlLog>("initiate", "control-log", msg);
                        tokio::pin!(stream);
                        while let Some(item) = stream.next().await {
                            let line = item?;
                            if let Ok(mut l) = sink.lock() {
                                l.push(line.msg);
                            }
                        }
                        Ok(())
                    }
                    .boxed()
                })
                .await;
            let lines = log.lock().map(|l| l.clone()).unwrap_or_default();
            match r {
                Ok(()) => Ok(Initiated::Established),
                Err(ViciError::Failed { message, .. }) if message.contains("not established after") => {
                    Ok(Initiated::Pending)
                }
                Err(ViciError::Failed { message, .. }) => {
                    Ok(Initiated::Failed(failure_reason(&lines, &message)))
                }
                Err(e) => Err(e),
            }
        }

        async fn list_sas(&mut self, ike: Option<&str>) -> Result<Vec<IkeSa>, ViciError> {
            let msg = ListSas {
                noblock: true,
                ike: ike.map(str::to_string),
            };
            let events: Vec<BTreeMap<String, WireIke>> = self
                .with_client("list-sas", self.call_timeout, |c| {
                    async move {
                        let stream =
                            c.stream_request::<_, BTreeMap<String, WireIke>>("list-sas", "list-sa", msg);
                        let v: Vec<_> = stream.collect().await;
                        v.into_iter().collect::<Result<Vec<_>, _>>()
                    }
                    .boxed()
                })
                .await?;
            Ok(events
                .into_iter()
                .flatten()
                .map(|(name, sa)| IkeSa {
                    name,
                    state: sa.state,
                    established: sa.established,
                    children: sa
                        .child_sas
                        .into_values()
                        .map(|c| ChildSa {
                            name: c.name,
                            state: c.state,
                            bytes_in: c.bytes_in,
                            bytes_out: c.bytes_out,
                            packets_in: c.packets_in,
                            packets_out: c.packets_out,
                        })
                        .collect(),
                })
                .collect())
        }

        async fn get_conns(&mut self) -> Result<Vec<String>, ViciError> {
            let c: Conns = self
                .with_client("get-conns", self.call_timeout, |c| {
                    c.request("get-conns", ()).boxed()
                })
                .await?;
            Ok(c.conns)
        }

        fn lost(&self) -> Option<tokio::sync::watch::Receiver<bool>> {
            Some(self.shared.lost.subscribe())
        }

        async fn get_shared(&mut self) -> Result<Vec<String>, ViciError> {
            let k: Keys = self
                .with_client("get-shared", self.call_timeout, |c| {
                    c.request("get-shared", ()).boxed()
                })
                .await?;
            Ok(k.keys)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn picks_the_telling_line() {
        let log = vec![
            "initiating IKE_SA x[1] to 198.18.0.2".to_string(),
            "received AUTHENTICATION_FAILED notify error".to_string(),
            "establishing connection 'x' failed".to_string(),
        ];
        assert_eq!(
            failure_reason(&log, "establishing CHILD_SA 'x' failed"),
            "received AUTHENTICATION_FAILED notify error"
        );
        assert_eq!(failure_reason(&[], "boom"), "boom");
    }
}
