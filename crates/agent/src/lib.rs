//! `vpnaas agent`: the gateway node agent.
//!
//! Until configuration reaches a real IPsec daemon, vpnaas is a database with two
//! APIs. The agent makes a gateway node real: it long-polls the node API for the
//! node's desired tunnels, keeps strongSwan's charon in line with them over VICI
//! (incrementally: only changed tunnels are touched), and reports back the
//! generation it realized, per-tunnel failures and the SAs' runtime state, which
//! drive realization states and Neutron/NSX status. It never touches the database.
//!
//! Code map:
//! - [`render`]: pure `Tunnel` → VICI `load-conn`/`load-shared` ([`message`] is the
//!   message tree; golden files in `tests/golden/`).
//! - [`vici`]: the `Vici` trait and its rsvici implementation; [`fake`]: the
//!   in-memory charon for tests.
//! - [`events`]: charon's VICI events → per-tunnel reasons, rekeys, log lines.
//! - [`reconcile`]: the exact diff, generation guard, failures, initiation queue;
//!   [`netif`]: route-based tunnels' interfaces, addresses and routes (`ip`);
//!   [`status`]: `list-sas` → `TunnelStatus`.
//! - [`runner`]: the per-node loop; [`api`]: the node API client and its
//!   poll/report loops; [`sim`]: simulated nodes for load tests.
//! - [`tls`]: HTTPS to the server (CA, client certificate) and the rule that
//!   refuses plain HTTP to anything but loopback.

pub mod api;
pub mod events;
pub mod fake;
pub mod message;
pub mod netif;
pub mod reconcile;
pub mod render;
pub mod runner;
pub mod sim;
pub mod status;
pub mod tls;
pub mod vici;

use std::path::PathBuf;
use std::time::Duration;

use model::realization::{NodeConfig, NodeReport};
use tokio::sync::watch;

pub use render::EspMode;

/// What can stop the agent from starting.
#[derive(Debug, thiserror::Error)]
pub enum AgentError {
    /// The arguments are incomplete, inconsistent or unusable (a bad certificate,
    /// an unsupported URL scheme); the text says which.
    #[error("invalid agent arguments: {0}")]
    Invalid(String),
    /// A file the arguments name (token, nodes file, certificate, key, CA) can't be read.
    #[error("cannot read {path}")]
    File {
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// reqwest could not build the HTTP client (e.g. its TLS backend failed to
    /// initialize).
    #[error("cannot build the HTTP client")]
    Http(#[source] reqwest::Error),
    /// The node API client refused its settings (node id, server list).
    #[error("node API client")]
    Api(#[source] api::ApiError),
}

/// Which IPsec backend the agent drives.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Backend {
    /// A real charon over its VICI socket.
    Charon,
    /// Simulated nodes (a load generator; see --nodes-file).
    Sim,
}

/// `vpnaas agent` arguments. (`Debug` is written by hand: it must not show the token.)
#[derive(Clone, clap::Args)]
pub struct AgentArgs {
    /// Base URL of the vpnaas server, e.g. https://vpnaas.example:9696, or
    /// several replicas' comma-separated: the agent uses one and moves to the
    /// next when it can't be reached or fails. Plain http:// is accepted only
    /// for a loopback server (or with --insecure-plain-http).
    #[arg(long, env = "VPNAAS_SERVER")]
    pub server: String,
    /// PEM file of the CA(s) that issued the server's certificate. When given,
    /// only these CAs are trusted (not the system trust store).
    #[arg(long)]
    pub ca_file: Option<PathBuf>,
    /// PEM file of this node's client certificate (mutual TLS; the node must be
    /// registered with `vpnaas node add --cert-file`). Needs --client-key; a
    /// token is then optional.
    #[arg(long, requires = "client_key")]
    pub client_cert: Option<PathBuf>,
    /// PEM file of the private key of --client-cert.
    #[arg(long, requires = "client_cert")]
    pub client_key: Option<PathBuf>,
    /// Allow plain http:// to a server that is not on loopback (the token and
    /// pre-shared keys then cross the network unencrypted).
    #[arg(long)]
    pub insecure_plain_http: bool,
    /// This node's id (from `vpnaas node add`).
    #[arg(long, env = "VPNAAS_NODE_ID")]
    pub node_id: Option<String>,
    /// Node token (visible in `ps`; prefer --token-file or VPNAAS_NODE_TOKEN).
    #[arg(long)]
    pub token: Option<String>,
    /// File holding the node token.
    #[arg(long)]
    pub token_file: Option<PathBuf>,
    /// charon's VICI socket.
    #[arg(long, default_value = "/var/run/charon.vici")]
    pub vici: PathBuf,
    /// ESP data path: `kernel` (kernel-netlink) or `userspace` (kernel-libipsec,
    /// forces UDP encapsulation).
    #[arg(long, value_enum, default_value = "kernel")]
    pub esp: EspMode,
    /// Make route-based tunnels' interfaces, addresses and routes in this
    /// network namespace (`ip -n NAME`): the one charon runs in, when the
    /// agent runs outside it.
    #[arg(long)]
    pub netns: Option<String>,
    /// Userspace ESP: charon's kernel-libipsec TUN device, which carries the
    /// (single) route-based tunnel's addresses and routes.
    #[arg(long, default_value = "ipsec0")]
    pub tun_device: String,
    /// iproute2's `ip`, which makes route-based tunnels' interfaces.
    #[arg(long, default_value = "ip")]
    pub ip_binary: PathBuf,
    /// `charon`, or `sim` for simulated nodes.
    #[arg(long, value_enum, default_value = "charon")]
    pub backend: Backend,
    /// Report at least this often (seconds).
    #[arg(long, default_value_t = 5)]
    pub heartbeat: u64,
    /// Read SA state from charon this often (seconds).
    #[arg(long, default_value_t = 5)]
    pub status_interval: u64,
    /// Long-poll wait (seconds).
    #[arg(long, default_value_t = 30)]
    pub wait: u64,
    /// Longest wait for one initiation before moving on (milliseconds).
    #[arg(long, default_value_t = 2000)]
    pub initiate_timeout_ms: u64,
    /// Longest back-off between initiation retries (seconds).
    #[arg(long, default_value_t = 60)]
    pub retry_max: u64,
    /// sim: JSON lines of {"id","token"} as printed by `vpnaas node add`.
    #[arg(long)]
    pub nodes_file: Option<PathBuf>,
    /// sim: how long applying a snapshot takes (milliseconds).
    #[arg(long, default_value_t = 0)]
    pub sim_delay_ms: u64,
    /// sim: probability that a tunnel fails to apply (0..1).
    #[arg(long, default_value_t = 0.0)]
    pub sim_failure_rate: f64,
}

impl std::fmt::Debug for AgentArgs {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AgentArgs")
            .field("server", &self.server)
            .field("ca_file", &self.ca_file)
            .field("client_cert", &self.client_cert)
            .field("client_key", &self.client_key)
            .field("insecure_plain_http", &self.insecure_plain_http)
            .field("node_id", &self.node_id)
            .field("token", &self.token.as_ref().map(|_| "<redacted>"))
            .field("token_file", &self.token_file)
            .field("vici", &self.vici)
            .field("esp", &self.esp)
            .field("netns", &self.netns)
            .field("tun_device", &self.tun_device)
            .field("ip_binary", &self.ip_binary)
            .field("backend", &self.backend)
            .field("heartbeat", &self.heartbeat)
            .field("status_interval", &self.status_interval)
            .field("wait", &self.wait)
            .field("initiate_timeout_ms", &self.initiate_timeout_ms)
            .field("retry_max", &self.retry_max)
            .field("nodes_file", &self.nodes_file)
            .field("sim_delay_ms", &self.sim_delay_ms)
            .field("sim_failure_rate", &self.sim_failure_rate)
            .finish()
    }
}

impl AgentArgs {
    /// --token, else --token-file, else VPNAAS_NODE_TOKEN; none at all only with
    /// a client certificate (the node then authenticates by mutual TLS).
    fn token(&self) -> Result<Option<String>, AgentError> {
        if let Some(t) = &self.token {
            return Ok(Some(t.trim().to_string()));
        }
        if let Some(p) = &self.token_file {
            return std::fs::read_to_string(p)
                .map(|t| Some(t.trim().to_string()))
                .map_err(|source| AgentError::File {
                    path: p.clone(),
                    source,
                });
        }
        match std::env::var("VPNAAS_NODE_TOKEN") {
            Ok(t) if !t.trim().is_empty() => Ok(Some(t.trim().to_string())),
            _ if self.tls().has_client_cert() => Ok(None),
            _ => Err(AgentError::Invalid(
                "a node token (--token, --token-file or VPNAAS_NODE_TOKEN) or a client \
                 certificate (--client-cert/--client-key) is required"
                    .into(),
            )),
        }
    }

    /// The transport settings.
    pub fn tls(&self) -> tls::TlsSettings {
        tls::TlsSettings {
            ca_file: self.ca_file.clone(),
            client_cert: self.client_cert.clone(),
            client_key: self.client_key.clone(),
            insecure_plain_http: self.insecure_plain_http,
        }
    }
}

/// Runs the agent until interrupted.
pub async fn run(args: AgentArgs) -> Result<(), AgentError> {
    if args.heartbeat == 0 || args.status_interval == 0 {
        return Err(AgentError::Invalid(
            "--heartbeat and --status-interval must be at least 1".into(),
        ));
    }
    tls::check_server_url(&args.server, &args.tls())?;
    let heartbeat = Duration::from_secs(args.heartbeat);
    let wait = Duration::from_secs(args.wait.min(120));
    let work = async {
        match args.backend {
            Backend::Sim => {
                let path = args
                    .nodes_file
                    .as_ref()
                    .ok_or_else(|| AgentError::Invalid("--backend sim needs --nodes-file".into()))?;
                if !(0.0..=1.0).contains(&args.sim_failure_rate) {
                    return Err(AgentError::Invalid(
                        "--sim-failure-rate must be within 0..1".into(),
                    ));
                }
                let nodes = sim::read_nodes_file(path)?;
                let s = sim::SimSettings {
                    delay: Duration::from_millis(args.sim_delay_ms),
                    failure_rate: args.sim_failure_rate,
                    heartbeat,
                    wait,
                };
                sim::run(tls::client_builder(&args.tls())?, &args.server, nodes, s).await
            }
            Backend::Charon => run_charon(&args, heartbeat, wait).await,
        }
    };
    tokio::select! {
        r = work => r,
        _ = shutdown() => {
            // charon keeps its tunnels: an agent restart must not cut traffic.
            tracing::info!("agent stopping; charon keeps its configuration");
            Ok(())
        }
    }
}

async fn run_charon(args: &AgentArgs, heartbeat: Duration, wait: Duration) -> Result<(), AgentError> {
    let node_id = args
        .node_id
        .as_deref()
        .ok_or_else(|| AgentError::Invalid("--node-id is required with --backend charon".into()))?;
    let http = tls::client_builder(&args.tls())?
        .build()
        .map_err(AgentError::Http)?;
    let api = api::NodeApi::with_token(http, &args.server, node_id, args.token()?.as_deref())
        .map_err(AgentError::Api)?;
    let settings = reconcile::Settings {
        esp: args.esp,
        initiate_timeout: Duration::from_millis(args.initiate_timeout_ms.max(100)),
        retry_max: Duration::from_secs(args.retry_max.max(1)),
        agent: format!(
            "vpnaas-agent {} (charon, esp={})",
            env!("CARGO_PKG_VERSION"),
            match args.esp {
                EspMode::Kernel => "kernel",
                EspMode::Userspace => "userspace",
            }
        ),
        netif: netif::NetifSettings {
            netns: args.netns.clone(),
            tun_device: args.tun_device.clone(),
            ip: Some(args.ip_binary.clone()),
        },
        ..reconcile::Settings::default()
    };
    tracing::info!(
        node = node_id,
        server = %args.server,
        auth = if api.has_token() { "token" } else { "client certificate" },
        vici = %args.vici.display(),
        esp = ?args.esp,
        "agent starting"
    );
    let (cfg_tx, cfg_rx) = watch::channel(None::<NodeConfig>);
    let (rep_tx, rep_rx) = watch::channel(NodeReport {
        node_error: None,
        agent: Some(settings.agent.clone()),
        ..NodeReport::default()
    });
    tokio::spawn(api::poll_config(api.clone(), cfg_tx, wait));
    tokio::spawn(api::push_reports(api, rep_rx, heartbeat));
    let agent = runner::Agent::new(
        vici::charon::CharonConnector::new(&args.vici),
        reconcile::Reconciler::new(settings),
        runner::LoopSettings {
            status_interval: Duration::from_secs(args.status_interval),
            ..runner::LoopSettings::default()
        },
    );
    agent.run(cfg_rx, rep_tx).await;
    Ok(())
}

async fn shutdown() {
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {},
        _ = term => {},
    }
}
