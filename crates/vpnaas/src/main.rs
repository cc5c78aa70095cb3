//! `vpnaas`: run the server, administer identity and gateways.

use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr};
use std::path::PathBuf;
use std::time::Duration;

use clap::{Parser, Subcommand};
use vpnaas::admin;
use vpnaas::server::{self, ServeConfig};

#[derive(Parser)]
#[command(
    name = "vpnaas",
    version,
    about = "IPsec site-to-site VPN control plane (Neutron VPNaaS and NSX APIs)"
)]
struct Cli {
    /// The database: a SQLite file (created on first use), or a PostgreSQL URL
    /// (`postgres://user:password@host:port/db`; several servers may share one).
    #[arg(long, env = "VPNAAS_DB", default_value = "vpnaas.db", global = true)]
    db: store::Database,
    /// File holding the key that encrypts pre-shared keys at rest (default: <db>.key,
    /// created on first use; required with PostgreSQL, the same file on every
    /// replica). VPNAAS_SECRET_KEY (base64) overrides it.
    #[arg(long, env = "VPNAAS_KEY_FILE", global = true)]
    key_file: Option<PathBuf>,
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Run the node agent: keep charon (VICI) in line with this node's tunnels.
    Agent(agent::AgentArgs),
    /// Run the API server (Keystone v3 subset, Neutron VPNaaS v2.0).
    Serve {
        #[arg(long, env = "VPNAAS_LISTEN", default_value = "127.0.0.1:9696")]
        listen: SocketAddr,
        /// URL clients use to reach this server (default: from --listen).
        #[arg(long, env = "VPNAAS_PUBLIC_URL")]
        public_url: Option<String>,
        #[arg(long, env = "VPNAAS_ADMIN_USER", default_value = "admin")]
        admin_user: String,
        #[arg(long, env = "VPNAAS_ADMIN_PROJECT", default_value = "admin")]
        admin_project: String,
        /// Admin password, used on first start only (default: generated and written to <db>.admin-password,
        /// or <key-file>.admin-password with PostgreSQL).
        #[arg(long, env = "VPNAAS_ADMIN_PASSWORD", hide_env_values = true)]
        admin_password: Option<String>,
        /// Token lifetime in seconds (at least 1).
        #[arg(long, env = "VPNAAS_TOKEN_TTL", default_value_t = 3600, value_parser = seconds_at_least_1)]
        token_ttl: u64,
        /// Seconds without a report after which a node is `unknown`.
        #[arg(long, env = "VPNAAS_NODE_TIMEOUT", default_value_t = 15)]
        node_timeout: u64,
        #[command(flatten)]
        net: server::NetArgs,
        #[command(flatten)]
        auth: AuthArgs,
    },
    /// Manage projects.
    Project {
        #[command(subcommand)]
        cmd: ProjectCmd,
    },
    /// Manage users.
    User {
        #[command(subcommand)]
        cmd: UserCmd,
    },
    /// Manage gateways (Neutron routers).
    Gateway {
        #[command(subcommand)]
        cmd: GatewayCmd,
    },
    /// Manage gateway subnets.
    Subnet {
        #[command(subcommand)]
        cmd: SubnetCmd,
    },
    /// Benchmark the API: N connection creates from C clients, then list and
    /// show them.
    Bench {
        /// Connection counts to run (one fresh server each).
        #[arg(long = "connections", default_values_t = [1000usize, 10000])]
        connections: Vec<usize>,
        #[arg(long, default_value_t = 8)]
        concurrency: usize,
        #[arg(long, default_value_t = 20)]
        list_iterations: usize,
        /// VPN services (each on its own gateway) the connections are spread over.
        #[arg(long, default_value_t = 1)]
        services: usize,
        /// Reporting transport nodes registered per gateway.
        #[arg(long, default_value_t = 0)]
        nodes_per_gateway: usize,
        /// Timed single-connection shows per API (one at a time).
        #[arg(long, default_value_t = 200)]
        show_iterations: usize,
    },
    /// Benchmark realization: PUT → in_sync with N simulated nodes reporting over
    /// HTTP, and long-poll fan-out to W waiting watchers.
    BenchRealize {
        #[arg(long, default_value_t = 100)]
        nodes: usize,
        #[arg(long, default_value_t = 50)]
        puts: usize,
        #[arg(long, default_value_t = 1000)]
        watchers: usize,
        #[arg(long, default_value_t = 5)]
        rounds: usize,
    },
    /// Load test a running server: C concurrent clients with a think time mixing
    /// Neutron and NSX reads and writes for S seconds; prints one JSON result.
    BenchLoad(vpnaas::load::LoadOpts),
    /// Manage transport nodes (gateway nodes running `vpnaas agent`).
    Node {
        #[command(subcommand)]
        cmd: NodeCmd,
    },
}

/// `vpnaas serve` flags that bound password authentication (identity::guard).
#[derive(clap::Args)]
struct AuthArgs {
    /// Consecutive failed password checks that lock a user (Keystone's
    /// lockout_failure_attempts; 0: never lock).
    #[arg(long, env = "VPNAAS_LOCKOUT_FAILURE_ATTEMPTS", default_value_t = 0)]
    lockout_failure_attempts: u32,
    /// Seconds a locked user stays locked after its last failure (Keystone's lockout_duration).
    #[arg(long, env = "VPNAAS_LOCKOUT_DURATION", default_value_t = 300, value_parser = seconds_at_least_1)]
    lockout_duration: u64,
    /// Failed password checks from one address (IPv6: one /64) within the window
    /// after which its password attempts get 429 until the window ends (0: no throttling).
    #[arg(long, env = "VPNAAS_AUTH_THROTTLE_FAILURES", default_value_t = 30)]
    auth_throttle_failures: u32,
    /// Seconds of the throttling window.
    #[arg(long, env = "VPNAAS_AUTH_THROTTLE_WINDOW", default_value_t = 60, value_parser = seconds_at_least_1)]
    auth_throttle_window: u64,
    /// Seconds a successful password check is remembered, so HTTP basic auth
    /// (NSX) does not run Argon2 on every request (0: never remember).
    #[arg(long, env = "VPNAAS_AUTH_CACHE_TTL", default_value_t = 60,
          value_parser = clap::value_parser!(u64).range(0..=3600))]
    auth_cache_ttl: u64,
    /// Password hashes computed at once, 19 MiB each (default: the number of cores).
    #[arg(long, env = "VPNAAS_AUTH_HASH_THREADS",
          value_parser = clap::value_parser!(u64).range(1..=256))]
    auth_hash_threads: Option<u64>,
}

/// A whole number of seconds, at least 1 (0 would make tokens, lock-outs or
/// windows that end before they start).
fn seconds_at_least_1(s: &str) -> Result<u64, String> {
    match s.trim().parse::<u64>() {
        Ok(0) => Err("must be at least 1 second".into()),
        Ok(n) => Ok(n),
        Err(_) => Err(format!("{s:?} is not a whole number of seconds")),
    }
}

impl AuthArgs {
    fn limits(&self) -> identity::AuthLimits {
        let d = identity::AuthLimits::default();
        identity::AuthLimits {
            hash_permits: self.auth_hash_threads.map_or(d.hash_permits, |n| n as usize),
            verified_ttl: Duration::from_secs(self.auth_cache_ttl),
            lockout_failure_attempts: self.lockout_failure_attempts,
            lockout_duration: Duration::from_secs(self.lockout_duration),
            throttle_failures: self.auth_throttle_failures,
            throttle_window: Duration::from_secs(self.auth_throttle_window),
            ..d
        }
    }
}

#[derive(Subcommand)]
enum NodeCmd {
    /// Register a node of a gateway; prints its id and API token (shown once),
    /// or, with --cert-file, registers its client certificate (mutual TLS) and
    /// issues no token.
    Add {
        name: String,
        #[arg(long)]
        gateway: String,
        /// PEM file of the node's client certificate (the first certificate is
        /// the node's; its SHA-256 fingerprint is registered).
        #[arg(long)]
        cert_file: Option<std::path::PathBuf>,
    },
    List,
    /// Unregister a node (by id, or by name when one node has it): its token
    /// or certificate stops authenticating at once, and its reports, status
    /// and statistics baselines go with it.
    Delete {
        node: String,
    },
}

#[derive(Subcommand)]
enum ProjectCmd {
    Create {
        name: String,
        #[arg(long, default_value = "")]
        description: String,
    },
    List,
}

#[derive(Subcommand)]
enum UserCmd {
    /// Create a user (or add roles to an existing one) in a project.
    Create {
        name: String,
        #[arg(long, env = "VPNAAS_USER_PASSWORD", hide_env_values = true)]
        password: String,
        #[arg(long)]
        project: String,
        /// Role(s) on the project: member, reader or admin.
        #[arg(long = "role", default_value = "member")]
        roles: Vec<String>,
    },
    /// Change a user's password, or disable / enable the user.
    Set {
        name: String,
        #[arg(long, env = "VPNAAS_USER_PASSWORD", hide_env_values = true)]
        password: Option<String>,
        #[arg(long, conflicts_with = "enable")]
        disable: bool,
        #[arg(long)]
        enable: bool,
    },
}

#[derive(Subcommand)]
enum GatewayCmd {
    Create {
        name: String,
        #[arg(long)]
        project: String,
        #[arg(long)]
        external_v4: Option<Ipv4Addr>,
        #[arg(long)]
        external_v6: Option<Ipv6Addr>,
    },
    List,
}

#[derive(Subcommand)]
enum SubnetCmd {
    Create {
        name: String,
        #[arg(long)]
        gateway: String,
        #[arg(long)]
        cidr: String,
    },
}

fn print(v: serde_json::Value) {
    println!("{v}");
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("VPNAAS_LOG")
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr)
        // Colours only on a terminal: a log file or journal gets plain text.
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
    let cli = Cli::parse();
    match cli.cmd {
        Cmd::Agent(args) => agent::run(args).await?,
        Cmd::Serve {
            listen,
            public_url,
            admin_user,
            admin_project,
            admin_password,
            token_ttl,
            node_timeout,
            net,
            auth,
        } => {
            let mut cfg = ServeConfig {
                db: cli.db.clone(),
                key_file: cli.key_file.clone(),
                listen,
                public_url,
                admin_user: admin_user.clone(),
                admin_project: admin_project.clone(),
                admin_password,
                token_ttl: Duration::from_secs(token_ttl),
                node_timeout: Duration::from_secs(node_timeout.max(1)),
                ..ServeConfig::default()
            };
            net.apply(&mut cfg);
            cfg.auth_limits = auth.limits();
            let running = server::start(cfg).await?;
            println!("vpnaas listening on {}", running.url);
            if let Some(plain) = running.plain_addr {
                println!("  plain HTTP (loopback only) on http://{plain}");
            }
            if let Some(m) = running.metrics_addr {
                println!("  metrics (no credentials) on http://{m}/metrics");
            }
            println!("  database: {} ({})", cli.db, cli.db.engine());
            println!(
                "  log in:   OS_AUTH_URL={}/v3 OS_USERNAME={admin_user} OS_PROJECT_NAME={admin_project} \\",
                running.url
            );
            println!(
                "            OS_USER_DOMAIN_NAME=Default OS_PROJECT_DOMAIN_NAME=Default OS_PASSWORD=<password>"
            );
            match &running.admin_password_file {
                Some(f) => println!("  the generated admin password is in {}", f.display()),
                None => println!("  (the admin password is the one set on first start)"),
            }
            use std::io::Write;
            std::io::stdout().flush()?;
            running.task.await??;
        }
        Cmd::Project { cmd } => {
            let store = server::open_store(&cli.db, cli.key_file.as_deref()).await?;
            match cmd {
                ProjectCmd::Create { name, description } => {
                    print(admin::project_create(&store, &name, &description).await?)
                }
                ProjectCmd::List => print(admin::project_list(&store).await?),
            }
        }
        Cmd::User { cmd } => {
            let store = server::open_store(&cli.db, cli.key_file.as_deref()).await?;
            match cmd {
                UserCmd::Create {
                    name,
                    password,
                    project,
                    roles,
                } => print(admin::user_create(&store, &name, &password, &project, &roles).await?),
                UserCmd::Set {
                    name,
                    password,
                    disable,
                    enable,
                } => {
                    let enabled = (disable || enable).then_some(enable);
                    print(admin::user_set(&store, &name, password.as_deref(), enabled).await?)
                }
            }
        }
        Cmd::Gateway { cmd } => {
            let store = server::open_store(&cli.db, cli.key_file.as_deref()).await?;
            match cmd {
                GatewayCmd::Create {
                    name,
                    project,
                    external_v4,
                    external_v6,
                } => print(admin::gateway_create(&store, &name, &project, external_v4, external_v6).await?),
                GatewayCmd::List => print(admin::gateway_list(&store).await?),
            }
        }
        Cmd::Bench {
            connections,
            concurrency,
            list_iterations,
            services,
            nodes_per_gateway,
            show_iterations,
        } => {
            for n in connections {
                let r = vpnaas::bench::run_local(&vpnaas::bench::BenchOpts {
                    connections: n,
                    concurrency,
                    list_iterations,
                    services,
                    nodes_per_gateway,
                    show_iterations,
                })
                .await?;
                r.print();
            }
        }
        Cmd::BenchRealize {
            nodes,
            puts,
            watchers,
            rounds,
        } => {
            vpnaas::bench::realize_run(&vpnaas::bench::RealizeBenchOpts {
                nodes,
                puts,
                watchers,
                rounds,
            })
            .await?;
        }
        Cmd::BenchLoad(opts) => print(vpnaas::load::run(&opts).await?),
        Cmd::Node { cmd } => {
            let store = server::open_store(&cli.db, cli.key_file.as_deref()).await?;
            match cmd {
                NodeCmd::Add {
                    name,
                    gateway,
                    cert_file,
                } => print(admin::node_add(&store, &name, &gateway, cert_file.as_deref()).await?),
                NodeCmd::List => print(admin::node_list(&store).await?),
                NodeCmd::Delete { node } => print(admin::node_delete(&store, &node).await?),
            }
        }
        Cmd::Subnet { cmd } => {
            let store = server::open_store(&cli.db, cli.key_file.as_deref()).await?;
            match cmd {
                SubnetCmd::Create { name, gateway, cidr } => {
                    print(admin::subnet_create(&store, &name, &gateway, &cidr).await?)
                }
            }
        }
    }
    Ok(())
}
