//! An in-memory charon for reconciler tests (and a call recorder for benchmarks).
//!
//! Why: the reconciler's promises — an unchanged tunnel is never re-sent, a
//! removed one is terminated and unloaded, everything is re-applied after charon
//! restarts — are about *which VICI calls happen*. The fake keeps charon's state
//! (connections, shared keys, SAs) and a log of every call, so tests assert exactly
//! that, and can make charon refuse a command, fail an initiation, or restart.
//! [`tunnel`] is the tunnel those tests and the benchmarks start from.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use crate::message::Section;
use crate::vici::{ChildSa, Connector, IkeSa, Initiated, Vici, ViciError};

/// Tunnel number `n` from `local` to `peer`: an IKEv2 responder with
/// AES-128 / SHA-256 / MODP-2048 for IKE and ESP (PFS on), a distinct peer
/// identity and key, and `10.0.0.0/24` to `10.<1 + n/250>.<n%250>.0/24`.
/// Tests and benchmarks change what they are about with struct update syntax.
pub fn tunnel(n: u32, local: &str, peer: &str) -> model::realization::Tunnel {
    use model::realization::{ChildProposal, IkeProposal, Tunnel};
    use model::*;
    let net = |s: String| s.parse().expect("a valid CIDR");
    Tunnel {
        id: format!("t{n:04}"),
        name: format!("tunnel {n}"),
        enabled: true,
        local_address: local.parse().expect("an IP address"),
        local_id: local.into(),
        peer_address: peer.parse().expect("an IP address"),
        peer_id: format!("peer-{n}"),
        psk: Psk(format!("secret-{n}")),
        ike: IkeProposal {
            version: IkeVersion::V2,
            encryption: vec![EncryptionAlgorithm::Aes128],
            integrity: vec![AuthAlgorithm::Sha256],
            dh_groups: vec![DhGroup::Group14],
            lifetime_seconds: 3600,
            aggressive: false,
        },
        child: ChildProposal {
            protocol: TransformProtocol::Esp,
            mode: EncapsulationMode::Tunnel,
            encryption: vec![EncryptionAlgorithm::Aes128],
            integrity: vec![AuthAlgorithm::Sha256],
            pfs_groups: vec![DhGroup::Group14],
            lifetime_seconds: 3600,
        },
        local_ts: vec![net("10.0.0.0/24".into())],
        remote_ts: vec![net(format!("10.{}.{}.0/24", 1 + n / 250, n % 250))],
        dpd: DpdSettings::default(),
        initiator: Initiator::ResponseOnly,
        mtu: 1500,
        generation: 1,
        route: None,
    }
}

/// One VICI call, as recorded.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub enum Call {
    /// `load-conn` of the named connection.
    LoadConn(String),
    /// `unload-conn` of the named connection.
    UnloadConn(String),
    /// `load-shared` of the shared key with this id.
    LoadShared(String),
    /// `unload-shared` of the shared key with this id.
    UnloadShared(String),
    /// `terminate` of the named connection's IKE_SAs.
    Terminate(String),
    /// `initiate` of (connection, CHILD_SA).
    Initiate(String, String),
    /// `list-sas` of one connection, or of all (None).
    ListSas(Option<String>),
    /// `get-conns`.
    GetConns,
    /// `get-shared`.
    GetShared,
}

impl Call {
    /// Whether the call changes charon's configuration or SAs.
    pub fn is_write(&self) -> bool {
        !matches!(self, Call::ListSas(_) | Call::GetConns | Call::GetShared)
    }
}

/// The fake daemon's state.
#[derive(Debug, Default)]
pub struct FakeCharon {
    /// Loaded connections by name, as `load-conn` sent them.
    pub conns: BTreeMap<String, Section>,
    /// Loaded shared keys by id, as `load-shared` sent them.
    pub shared: BTreeMap<String, Section>,
    /// IKE_SAs by connection name.
    pub sas: BTreeMap<String, IkeSa>,
    /// Every call so far, in order.
    pub calls: Vec<Call>,
    /// `load-conn` of these names fails with this message.
    pub refuse_conn: BTreeMap<String, String>,
    /// `initiate` of these connections ends like this (default: established).
    pub initiate_outcome: BTreeMap<String, Initiated>,
    /// While false, connecting fails (charon is not running).
    pub running: bool,
    /// Bumped on every restart; sessions of an older epoch are broken.
    pub epoch: u64,
    /// The event stream handed to the agent (see [`Fake::events`]).
    pub events: Option<tokio::sync::mpsc::Receiver<crate::events::Event>>,
}

/// Shared handle to the fake daemon.
#[derive(Debug, Clone)]
pub struct Fake(pub Arc<Mutex<FakeCharon>>);

impl Default for Fake {
    fn default() -> Self {
        Fake::new()
    }
}

impl Fake {
    /// A running charon with nothing loaded.
    pub fn new() -> Fake {
        Fake(Arc::new(Mutex::new(FakeCharon {
            running: true,
            ..FakeCharon::default()
        })))
    }

    /// The daemon's state, for a test to inspect or change.
    pub fn state(&self) -> MutexGuard<'_, FakeCharon> {
        self.0.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Takes the call log.
    pub fn take_calls(&self) -> Vec<Call> {
        std::mem::take(&mut self.state().calls)
    }

    /// charon restarts: all configuration and SAs are gone, open sessions break.
    pub fn restart(&self) {
        let mut s = self.state();
        s.conns.clear();
        s.shared.clear();
        s.sas.clear();
        s.epoch += 1;
    }

    /// An event stream for the agent that connects next: what the test sends
    /// is what charon's events would have said.
    pub fn event_sender(&self) -> tokio::sync::mpsc::Sender<crate::events::Event> {
        let (tx, rx) = tokio::sync::mpsc::channel(64);
        self.state().events = Some(rx);
        tx
    }

    /// A session of the current epoch.
    pub fn session(&self) -> FakeVici {
        FakeVici {
            fake: self.clone(),
            epoch: self.state().epoch,
        }
    }
}

impl Connector for Fake {
    type Session = FakeVici;
    async fn connect(&mut self) -> Result<FakeVici, ViciError> {
        if !self.state().running {
            return Err(ViciError::Connect {
                path: "fake".into(),
                source: std::io::Error::from(std::io::ErrorKind::ConnectionRefused),
            });
        }
        Ok(self.session())
    }

    fn events(&mut self) -> Option<tokio::sync::mpsc::Receiver<crate::events::Event>> {
        self.state().events.take()
    }
}

/// A session to the fake daemon.
#[derive(Debug, Clone)]
pub struct FakeVici {
    fake: Fake,
    epoch: u64,
}

impl FakeVici {
    fn enter(&self, command: &'static str, call: Call) -> Result<MutexGuard<'_, FakeCharon>, ViciError> {
        let mut s = self.fake.state();
        if s.epoch != self.epoch || !s.running {
            return Err(ViciError::Session {
                command,
                source: None,
            });
        }
        s.calls.push(call);
        Ok(s)
    }
}

fn failed(command: &'static str, message: String) -> ViciError {
    ViciError::Failed { command, message }
}

impl Vici for FakeVici {
    async fn load_conn(&mut self, msg: &Section) -> Result<(), ViciError> {
        for (name, v) in msg.entries() {
            let mut s = self.enter("load-conn", Call::LoadConn(name.to_string()))?;
            if let Some(m) = s.refuse_conn.get(name) {
                return Err(failed("load-conn", m.clone()));
            }
            let crate::message::Value::Section(conn) = v else {
                return Err(failed("load-conn", format!("'{name}' is not a section")));
            };
            s.conns.insert(name.to_string(), conn.clone());
        }
        Ok(())
    }

    async fn unload_conn(&mut self, name: &str) -> Result<(), ViciError> {
        let mut s = self.enter("unload-conn", Call::UnloadConn(name.into()))?;
        s.sas.remove(name);
        match s.conns.remove(name) {
            Some(_) => Ok(()),
            None => Err(failed(
                "unload-conn",
                format!("unloading connection '{name}' failed"),
            )),
        }
    }

    async fn load_shared(&mut self, msg: &Section) -> Result<(), ViciError> {
        let id = msg.get_str("id").unwrap_or_default().to_string();
        let mut s = self.enter("load-shared", Call::LoadShared(id.clone()))?;
        s.shared.insert(id, msg.clone());
        Ok(())
    }

    async fn unload_shared(&mut self, id: &str) -> Result<(), ViciError> {
        let mut s = self.enter("unload-shared", Call::UnloadShared(id.into()))?;
        match s.shared.remove(id) {
            Some(_) => Ok(()),
            None => Err(failed("unload-shared", format!("unloading key '{id}' failed"))),
        }
    }

    async fn terminate(&mut self, ike: &str, _timeout: Duration) -> Result<(), ViciError> {
        let mut s = self.enter("terminate", Call::Terminate(ike.into()))?;
        s.sas.remove(ike);
        Ok(())
    }

    async fn initiate(&mut self, ike: &str, child: &str, _timeout: Duration) -> Result<Initiated, ViciError> {
        let mut s = self.enter("initiate", Call::Initiate(ike.into(), child.into()))?;
        if !s.conns.contains_key(ike) {
            return Err(failed("initiate", format!("CHILD_SA config '{child}' not found")));
        }
        let outcome = s
            .initiate_outcome
            .get(ike)
            .cloned()
            .unwrap_or(Initiated::Established);
        let state = match &outcome {
            Initiated::Established => "ESTABLISHED",
            Initiated::Pending => "CONNECTING",
            Initiated::Failed(_) => return Ok(outcome),
        };
        let sa = s.sas.entry(ike.to_string()).or_insert_with(|| IkeSa {
            name: ike.to_string(),
            ..IkeSa::default()
        });
        sa.state = state.to_string();
        if outcome == Initiated::Established && !sa.children.iter().any(|c| c.name == child) {
            sa.children.push(ChildSa {
                name: child.to_string(),
                state: "INSTALLED".into(),
                ..ChildSa::default()
            });
        }
        Ok(outcome)
    }

    async fn list_sas(&mut self, ike: Option<&str>) -> Result<Vec<IkeSa>, ViciError> {
        let s = self.enter("list-sas", Call::ListSas(ike.map(str::to_string)))?;
        Ok(s.sas
            .values()
            .filter(|sa| ike.is_none_or(|n| sa.name == n))
            .cloned()
            .collect())
    }

    async fn get_conns(&mut self) -> Result<Vec<String>, ViciError> {
        let s = self.enter("get-conns", Call::GetConns)?;
        Ok(s.conns.keys().cloned().collect())
    }

    async fn get_shared(&mut self) -> Result<Vec<String>, ViciError> {
        let s = self.enter("get-shared", Call::GetShared)?;
        Ok(s.shared.keys().cloned().collect())
    }
}

/// Wraps a real session and records every call (for the benchmark's call counts).
pub struct Recorder<V> {
    /// The session every call goes on to.
    pub inner: V,
    /// Every call so far, in order.
    pub calls: Arc<Mutex<Vec<Call>>>,
}

impl<V> Recorder<V> {
    /// Records the calls made on `inner`.
    pub fn new(inner: V) -> Recorder<V> {
        Recorder {
            inner,
            calls: Arc::default(),
        }
    }

    fn push(&self, c: Call) {
        if let Ok(mut l) = self.calls.lock() {
            l.push(c);
        }
    }

    /// Takes the recorded calls.
    pub fn take(&self) -> Vec<Call> {
        self.calls
            .lock()
            .map(|mut l| std::mem::take(&mut *l))
            .unwrap_or_default()
    }

    /// Distinct connections touched by write calls.
    pub fn written(calls: &[Call]) -> BTreeSet<String> {
        calls
            .iter()
            .filter_map(|c| match c {
                Call::LoadConn(n)
                | Call::UnloadConn(n)
                | Call::LoadShared(n)
                | Call::UnloadShared(n)
                | Call::Terminate(n)
                | Call::Initiate(n, _) => Some(n.clone()),
                _ => None,
            })
            .collect()
    }
}

impl<V: Vici> Vici for Recorder<V> {
    async fn load_conn(&mut self, msg: &Section) -> Result<(), ViciError> {
        for (name, _) in msg.entries() {
            self.push(Call::LoadConn(name.to_string()));
        }
        self.inner.load_conn(msg).await
    }
    async fn unload_conn(&mut self, name: &str) -> Result<(), ViciError> {
        self.push(Call::UnloadConn(name.into()));
        self.inner.unload_conn(name).await
    }
    async fn load_shared(&mut self, msg: &Section) -> Result<(), ViciError> {
        self.push(Call::LoadShared(msg.get_str("id").unwrap_or_default().into()));
        self.inner.load_shared(msg).await
    }
    async fn unload_shared(&mut self, id: &str) -> Result<(), ViciError> {
        self.push(Call::UnloadShared(id.into()));
        self.inner.unload_shared(id).await
    }
    async fn terminate(&mut self, ike: &str, timeout: Duration) -> Result<(), ViciError> {
        self.push(Call::Terminate(ike.into()));
        self.inner.terminate(ike, timeout).await
    }
    async fn initiate(&mut self, ike: &str, child: &str, timeout: Duration) -> Result<Initiated, ViciError> {
        self.push(Call::Initiate(ike.into(), child.into()));
        self.inner.initiate(ike, child, timeout).await
    }
    async fn list_sas(&mut self, ike: Option<&str>) -> Result<Vec<IkeSa>, ViciError> {
        self.push(Call::ListSas(ike.map(str::to_string)));
        self.inner.list_sas(ike).await
    }
    async fn get_conns(&mut self) -> Result<Vec<String>, ViciError> {
        self.push(Call::GetConns);
        self.inner.get_conns().await
    }
    async fn get_shared(&mut self) -> Result<Vec<String>, ViciError> {
        self.push(Call::GetShared);
        self.inner.get_shared().await
    }
}
