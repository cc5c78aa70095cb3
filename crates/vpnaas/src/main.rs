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
    /// SQLite database file (created on first use).
    #[arg(long, env = "VPNAAS_DB", default_value = "vpnaas.db", global = true)]
    db: PathBuf,
    /// File holding the key that encrypts pre-shared keys at rest (default: <db>.key,
    /// created on first use). VPNAAS_SECRET_KEY (base64) overrides it.
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
        /// Admin password, used on first start only (default: generated and written to <db>.admin-password).
        #[arg(long, env = "VPNAAS_ADMIN_PASSWORD", hide_env_values = true)]
        admin_password: Option<String>,
        /// Token lifetime in seconds.
        #[arg(long, env = "VPNAAS_TOKEN_TTL", default_value_t = 3600)]
        token_ttl: u64,
        /// Seconds without a report after which a node is `unknown`.
        #[arg(long, env = "VPNAAS_NODE_TIMEOUT", default_value_t = 15)]
        node_timeout: u64,
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
    /// Benchmark the API: N connection creates from C clients, then list them.
    Bench {
        /// Connection counts to run (one fresh server each).
        #[arg(long = "connections", default_values_t = [1000usize, 10000])]
        connections: Vec<usize>,
        #[arg(long, default_value_t = 8)]
        concurrency: usize,
        #[arg(long, default_value_t = 20)]
        list_iterations: usize,
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
    /// Manage transport nodes (gateway nodes running `vpnaas agent`).
    Node {
        #[command(subcommand)]
        cmd: NodeCmd,
    },
}

#[derive(Subcommand)]
enum NodeCmd {
    /// Register a node of a gateway; prints its id and API token (shown once).
    Add {
        name: String,
        #[arg(long)]
        gateway: String,
    },
    List,
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
        } => {
            let cfg = ServeConfig {
                db: cli.db.clone(),
                key_file: cli.key_file.clone(),
                listen,
                public_url,
                admin_user: admin_user.clone(),
                admin_project: admin_project.clone(),
                admin_password,
                token_ttl: Duration::from_secs(token_ttl.max(60)),
                node_timeout: Duration::from_secs(node_timeout.max(1)),
            };
            let running = server::start(cfg).await?;
            println!("vpnaas listening on {}", running.url);
            println!("  database: {}", cli.db.display());
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
        } => {
            for n in connections {
                let r = vpnaas::bench::run_local(&vpnaas::bench::BenchOpts {
                    connections: n,
                    concurrency,
                    list_iterations,
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
        Cmd::Node { cmd } => {
            let store = server::open_store(&cli.db, cli.key_file.as_deref()).await?;
            match cmd {
                NodeCmd::Add { name, gateway } => print(admin::node_add(&store, &name, &gateway).await?),
                NodeCmd::List => print(admin::node_list(&store).await?),
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
