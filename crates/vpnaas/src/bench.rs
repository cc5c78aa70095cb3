//! `vpnaas bench`: API throughput and read latency measured through HTTP with
//! real concurrency. Starts its own server on a temporary database, creates N
//! connections (with their policies, services and endpoint groups) from C
//! concurrent clients, optionally registers transport nodes that report every
//! connection up, then times reads: `GET ipsec-site-connections?fields=id&fields=name`,
//! the full list, and one-at-a-time shows of single connections through both APIs.
//! A benchmark, not a test: it prints rates and percentiles.
//!
//! Why services and nodes are options: what a read costs beyond the rows it
//! shows depends on what those rows reference. With one service on one gateway
//! every "load all services / gateways / node states" is one row and invisible;
//! spreading the connections over S services on S gateways with K reporting
//! nodes each makes a read that loads whole tables pay for them.

use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use app::Dialect;
use futures::StreamExt;
use serde_json::{Value, json};
use tokio::sync::Mutex;

/// Options of one run.
#[derive(Debug, Clone)]
pub struct BenchOpts {
    /// How many ipsec-site-connections to create (N).
    pub connections: usize,
    /// How many clients create them at once (C).
    pub concurrency: usize,
    /// Timed lists of all connections (each with `fields=id,name`, then in full).
    pub list_iterations: usize,
    /// VPN services the connections are spread over (round robin), each on a
    /// gateway of its own with its own subnet and endpoint groups.
    pub services: usize,
    /// Transport nodes registered on each gateway; each reports its gateway's
    /// connections realized and established once all are created.
    pub nodes_per_gateway: usize,
    /// Timed shows of single connections per API, one request at a time.
    pub show_iterations: usize,
}

/// Results of one run.
#[derive(Debug, Clone)]
pub struct BenchResult {
    /// Connections created.
    pub connections: usize,
    /// Concurrent creating clients.
    pub concurrency: usize,
    /// VPN services (and gateways) the connections were spread over.
    pub services: usize,
    /// Transport nodes registered in all.
    pub nodes: usize,
    /// Wall time of all creates.
    pub create_seconds: f64,
    /// Creates per second of wall time.
    pub creates_per_second: f64,
    /// Median latency of one create.
    pub create_p50_ms: f64,
    /// 99th percentile latency of one create.
    pub create_p99_ms: f64,
    /// Median latency of a list with `fields=id,name`.
    pub list_fields_p50_ms: f64,
    /// 99th percentile latency of a list with `fields=id,name`.
    pub list_fields_p99_ms: f64,
    /// Median latency of a list of whole objects.
    pub list_full_p50_ms: f64,
    /// Size in bytes of the `fields=id,name` list's body.
    pub list_bytes_fields: usize,
    /// Median latency of a Neutron show of one connection.
    pub show_p50_ms: f64,
    /// 99th percentile latency of a Neutron show.
    pub show_p99_ms: f64,
    /// Median latency of an NSX show of one session.
    pub nsx_show_p50_ms: f64,
    /// 99th percentile latency of an NSX show.
    pub nsx_show_p99_ms: f64,
}

fn pct(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

fn sorted(mut v: Vec<f64>) -> Vec<f64> {
    v.sort_by(|a, b| a.total_cmp(b));
    v
}

struct Api {
    http: reqwest::Client,
    url: String,
    token: String,
}

impl Api {
    async fn post(&self, path: &str, body: Value) -> anyhow::Result<Value> {
        let r = self
            .http
            .post(format!("{}{path}", self.url))
            .header("X-Auth-Token", &self.token)
            .json(&body)
            .send()
            .await?;
        let status = r.status();
        let v: Value = r.json().await?;
        if !status.is_success() {
            bail!("POST {path}: {status} {v}");
        }
        Ok(v)
    }

    /// A timed GET: milliseconds and the body (an error unless 200).
    async fn get(&self, path: &str) -> anyhow::Result<(f64, axum::body::Bytes)> {
        let t = Instant::now();
        let r = self
            .http
            .get(format!("{}{path}", self.url))
            .header("X-Auth-Token", &self.token)
            .send()
            .await?;
        let status = r.status();
        let bytes = r.bytes().await?;
        let ms = t.elapsed().as_secs_f64() * 1000.0;
        if status != reqwest::StatusCode::OK {
            bail!("GET {path}: {status} {}", String::from_utf8_lossy(&bytes));
        }
        Ok((ms, bytes))
    }
}

/// A gateway made for the benchmark and the subnet behind it.
#[derive(Debug, Clone)]
struct Site {
    gateway_id: String,
    subnet_id: String,
}

/// What one service's connections use.
struct ServiceIds {
    service: String,
    local: String,
    peer: String,
}

fn id_of(v: &Value, singular: &str) -> anyhow::Result<String> {
    v[singular]["id"]
        .as_str()
        .map(str::to_string)
        .with_context(|| format!("{singular} without id: {v}"))
}

async fn login(
    http: &reqwest::Client,
    url: &str,
    user: &str,
    password: &str,
    project: &str,
) -> anyhow::Result<String> {
    let auth = json!({"auth": {"identity": {"methods": ["password"], "password": {"user": {"name": user, "password": password, "domain": {"name": "Default"}}}}, "scope": {"project": {"name": project, "domain": {"name": "Default"}}}}});
    let r = http
        .post(format!("{url}/v3/auth/tokens"))
        .json(&auth)
        .send()
        .await?;
    if !r.status().is_success() {
        bail!("login failed: {}", r.status());
    }
    Ok(r.headers()
        .get("X-Subject-Token")
        .and_then(|v| v.to_str().ok())
        .context("no X-Subject-Token")?
        .to_string())
}

/// Creates the policies, one service with its endpoint groups per site, and
/// N connections from C concurrent clients. Returns the connections' ids with
/// the index of their site, and the create latencies (sorted) and wall time.
async fn populate(
    api: &Arc<Api>,
    sites: &[Site],
    opts: &BenchOpts,
) -> anyhow::Result<(Vec<(String, usize)>, Vec<f64>, f64)> {
    let ike = api
        .post(
            "/v2.0/vpn/ikepolicies",
            json!({"ikepolicy": {"name": "bench-ike", "auth_algorithm": "sha256", "ike_version": "v2"}}),
        )
        .await?;
    let ipsec = api
        .post(
            "/v2.0/vpn/ipsecpolicies",
            json!({"ipsecpolicy": {"name": "bench-ipsec", "auth_algorithm": "sha256"}}),
        )
        .await?;
    let (ike, ipsec) = (id_of(&ike, "ikepolicy")?, id_of(&ipsec, "ipsecpolicy")?);
    let services: Vec<ServiceIds> = futures::stream::iter(sites.iter().enumerate())
        .map(|(i, site)| {
            let api = api.clone();
            async move {
                let svc = api
                    .post(
                        "/v2.0/vpn/vpnservices",
                        json!({"vpnservice": {"name": format!("bench-svc-{i}"), "router_id": site.gateway_id}}),
                    )
                    .await?;
                let local = api
                    .post(
                        "/v2.0/vpn/endpoint-groups",
                        json!({"endpoint_group": {"name": format!("bench-local-{i}"), "type": "subnet", "endpoints": [site.subnet_id]}}),
                    )
                    .await?;
                let peer = api
                    .post(
                        "/v2.0/vpn/endpoint-groups",
                        json!({"endpoint_group": {"name": format!("bench-peer-{i}"), "type": "cidr", "endpoints": ["10.200.0.0/16"]}}),
                    )
                    .await?;
                anyhow::Ok(ServiceIds {
                    service: id_of(&svc, "vpnservice")?,
                    local: id_of(&local, "endpoint_group")?,
                    peer: id_of(&peer, "endpoint_group")?,
                })
            }
        })
        .buffered(opts.concurrency.max(1))
        .collect::<Vec<_>>()
        .await
        .into_iter()
        .collect::<anyhow::Result<_>>()?;
    let services = Arc::new(services);
    let ids = Arc::new((ike, ipsec));

    let next = Arc::new(Mutex::new(0usize));
    let created = Arc::new(Mutex::new(Vec::with_capacity(opts.connections)));
    let latencies = Arc::new(Mutex::new(Vec::with_capacity(opts.connections)));
    let started = Instant::now();
    let mut workers = Vec::new();
    for _ in 0..opts.concurrency.max(1) {
        let (api, ids, services, next, lat, created) = (
            api.clone(),
            ids.clone(),
            services.clone(),
            next.clone(),
            latencies.clone(),
            created.clone(),
        );
        let n = opts.connections;
        workers.push(tokio::spawn(async move {
            loop {
                let i = {
                    let mut g = next.lock().await;
                    if *g >= n {
                        break;
                    }
                    *g += 1;
                    *g
                };
                let site = i % services.len();
                let s = &services[site];
                let body = json!({"ipsec_site_connection": {
                    "name": format!("conn-{i}"), "vpnservice_id": s.service, "ikepolicy_id": ids.0, "ipsecpolicy_id": ids.1,
                    "peer_address": format!("198.51.{}.{}", (i / 250) % 250, i % 250 + 1),
                    "peer_id": format!("peer-{i}"), "psk": format!("secret-{i}"),
                    "local_ep_group_id": s.local, "peer_ep_group_id": s.peer}});
                let t = Instant::now();
                let v = api.post("/v2.0/vpn/ipsec-site-connections", body).await?;
                lat.lock().await.push(t.elapsed().as_secs_f64() * 1000.0);
                created
                    .lock()
                    .await
                    .push((id_of(&v, "ipsec_site_connection")?, site));
            }
            anyhow::Ok(())
        }));
    }
    for w in workers {
        w.await??;
    }
    let create_seconds = started.elapsed().as_secs_f64();
    let lat = sorted(latencies.lock().await.clone());
    let created = std::mem::take(&mut *created.lock().await);
    Ok((created, lat, create_seconds))
}

/// Registers `per_gateway` nodes on every site's gateway; each reports the
/// current generation realized and its gateway's connections established.
async fn report_nodes(
    store: &store::Store,
    sites: &[Site],
    conns: &[(String, usize)],
    per_gateway: usize,
) -> anyhow::Result<usize> {
    use model::realization::{IkeState, NodeReport, TunnelStatus};
    if per_gateway == 0 {
        return Ok(0);
    }
    let mut by_site: Vec<Vec<TunnelStatus>> = vec![Vec::new(); sites.len()];
    for (id, site) in conns {
        by_site[*site].push(TunnelStatus {
            id: id.clone(),
            ike_state: IkeState::Established,
            child_sas_installed: 1,
            child_sas_expected: 1,
            bytes_in: 1000,
            bytes_out: 1000,
            packets_in: 10,
            packets_out: 10,
            message: None,
            ..TunnelStatus::default()
        });
    }
    let mut nodes = Vec::new();
    for (i, site) in sites.iter().enumerate() {
        for k in 0..per_gateway {
            let (_, hash) = store::new_token();
            let node = store
                .node_create(&format!("bench-node-{i}-{k}"), &site.gateway_id, &hash)
                .await?;
            nodes.push((node.id, i));
        }
    }
    let generation = store.generation_current().await?;
    for (id, site) in &nodes {
        let report = NodeReport {
            node_error: None,
            realized_generation: Some(generation),
            tunnels: by_site[*site].clone(),
            agent: Some("bench".into()),
            ..NodeReport::default()
        };
        store.node_report(id, &report).await?;
    }
    Ok(nodes.len())
}

/// Times the reads: lists (`fields=id,name` and all fields), then single
/// shows through Neutron and NSX, one request at a time on one connection.
async fn measure(api: &Arc<Api>, conns: &[(String, usize)], opts: &BenchOpts) -> anyhow::Result<ReadFigures> {
    let mut fields = Vec::new();
    let mut full = Vec::new();
    let mut size = 0;
    for _ in 0..opts.list_iterations.max(1) {
        let (ms, body) = api
            .get("/v2.0/vpn/ipsec-site-connections?fields=id&fields=name")
            .await?;
        let v: Value = serde_json::from_slice(&body)?;
        let n = v["ipsec_site_connections"].as_array().map(Vec::len).unwrap_or(0);
        if n < opts.connections {
            bail!("list returned {n} rows, expected at least {}", opts.connections);
        }
        fields.push(ms);
        size = body.len();
        full.push(api.get("/v2.0/vpn/ipsec-site-connections").await?.0);
    }
    // Shows walk the connections with a stride, so that consecutive requests
    // read different rows (and different services, when there are several).
    let pick = |k: usize| &conns[(k * 7919) % conns.len()].0;
    let mut show = Vec::new();
    let mut nsx_show = Vec::new();
    if !conns.is_empty() {
        for k in 0..opts.show_iterations {
            let (ms, body) = api
                .get(&format!("/v2.0/vpn/ipsec-site-connections/{}", pick(k)))
                .await?;
            let v: Value = serde_json::from_slice(&body)?;
            if v["ipsec_site_connection"]["status"].as_str().is_none() {
                bail!("show without status: {v}");
            }
            show.push(ms);
        }
        for k in 0..opts.show_iterations {
            nsx_show.push(
                api.get(&format!("/api/v1/vpn/ipsec/sessions/{}", pick(k)))
                    .await?
                    .0,
            );
        }
    }
    Ok(ReadFigures {
        list_fields: sorted(fields),
        list_full: sorted(full),
        list_bytes: size,
        show: sorted(show),
        nsx_show: sorted(nsx_show),
    })
}

struct ReadFigures {
    list_fields: Vec<f64>,
    list_full: Vec<f64>,
    list_bytes: usize,
    show: Vec<f64>,
    nsx_show: Vec<f64>,
}

/// Starts a server on a fresh database in a temporary directory, with admin
/// password `bench-password`; returns the directory (to remove) and the server.
async fn private_server(
    node_timeout: Duration,
) -> anyhow::Result<(std::path::PathBuf, crate::server::Running)> {
    let dir = std::env::temp_dir().join(format!("vpnaas-bench-{}", uuid::Uuid::new_v4()));
    std::fs::create_dir_all(&dir)?;
    let cfg = crate::server::ServeConfig {
        db: dir.join("bench.db").into(),
        key_file: None,
        listen: "127.0.0.1:0".parse()?,
        public_url: None,
        admin_user: "admin".into(),
        admin_project: "admin".into(),
        admin_password: Some("bench-password".into()),
        token_ttl: Duration::from_secs(3600),
        node_timeout,
        ..crate::server::ServeConfig::default()
    };
    Ok((dir, crate::server::start(cfg).await?))
}

/// Starts a private server on a temporary database with the bench gateways,
/// fills it and times the reads.
pub async fn run_local(opts: &BenchOpts) -> anyhow::Result<BenchResult> {
    let (dir, running) = private_server(Duration::from_secs(3600)).await?;
    let result = run_on(&running, opts).await;
    running.task.abort();
    let _ = std::fs::remove_dir_all(&dir);
    result
}

async fn run_on(running: &crate::server::Running, opts: &BenchOpts) -> anyhow::Result<BenchResult> {
    let store = &running.state.store;
    let mut sites = Vec::new();
    for i in 0..opts.services.max(1) {
        let name = format!("bench-gw-{i}");
        let v4 = std::net::Ipv4Addr::new(
            100,
            64 + (i / 65536) as u8,
            (i / 256 % 256) as u8,
            (i % 256) as u8,
        );
        let gw = crate::admin::gateway_create(store, &name, "admin", Some(v4), None).await?;
        let gateway_id = gw["id"].as_str().context("gateway id")?.to_string();
        let cidr = format!("10.{}.{}.0/24", 100 + i / 256 % 100, i % 256);
        let subnet =
            crate::admin::subnet_create(store, &format!("bench-subnet-{i}"), &gateway_id, &cidr).await?;
        let subnet_id = subnet["id"].as_str().context("subnet id")?.to_string();
        sites.push(Site {
            gateway_id,
            subnet_id,
        });
    }
    let http = reqwest::Client::builder()
        .pool_max_idle_per_host(opts.concurrency * 2)
        .build()?;
    let token = login(&http, &running.url, "admin", "bench-password", "admin").await?;
    let api = Arc::new(Api {
        http,
        url: running.url.clone(),
        token,
    });
    let (conns, lat, create_seconds) = populate(&api, &sites, opts).await?;
    let nodes = report_nodes(store, &sites, &conns, opts.nodes_per_gateway).await?;
    let reads = measure(&api, &conns, opts).await?;
    Ok(BenchResult {
        connections: opts.connections,
        concurrency: opts.concurrency,
        services: sites.len(),
        nodes,
        create_seconds,
        creates_per_second: opts.connections as f64 / create_seconds,
        create_p50_ms: pct(&lat, 0.5),
        create_p99_ms: pct(&lat, 0.99),
        list_fields_p50_ms: pct(&reads.list_fields, 0.5),
        list_fields_p99_ms: pct(&reads.list_fields, 0.99),
        list_full_p50_ms: pct(&reads.list_full, 0.5),
        list_bytes_fields: reads.list_bytes,
        show_p50_ms: pct(&reads.show, 0.5),
        show_p99_ms: pct(&reads.show, 0.99),
        nsx_show_p50_ms: pct(&reads.nsx_show, 0.5),
        nsx_show_p99_ms: pct(&reads.nsx_show, 0.99),
    })
}

impl BenchResult {
    /// Prints the figures on one line, for a person comparing runs.
    pub fn print(&self) {
        println!(
            "N={:>6} C={:>3} services={} nodes={}  creates/s {:>8.1}  create p50 {:>7.2} ms p99 {:>7.2} ms  list(fields=id,name) p50 {:>8.2} ms p99 {:>8.2} ms ({} bytes)  list(full) p50 {:>8.2} ms  show p50 {:>6.2} ms p99 {:>6.2} ms  NSX show p50 {:>6.2} ms p99 {:>6.2} ms",
            self.connections,
            self.concurrency,
            self.services,
            self.nodes,
            self.creates_per_second,
            self.create_p50_ms,
            self.create_p99_ms,
            self.list_fields_p50_ms,
            self.list_fields_p99_ms,
            self.list_bytes_fields,
            self.list_full_p50_ms,
            self.show_p50_ms,
            self.show_p99_ms,
            self.nsx_show_p50_ms,
            self.nsx_show_p99_ms,
        );
    }
}

/// Options of the realization benchmark.
#[derive(Debug, Clone)]
pub struct RealizeBenchOpts {
    /// Nodes that report over HTTP while PUTs are timed.
    pub nodes: usize,
    /// Timed PUTs.
    pub puts: usize,
    /// Waiting watchers for the fan-out measurement.
    pub watchers: usize,
    /// Fan-out rounds.
    pub rounds: usize,
}

/// A node that long-polls its configuration and reports each snapshot realized.
async fn sim_node(http: reqwest::Client, url: String, id: String, token: String) -> anyhow::Result<()> {
    let mut known: Option<i64> = None;
    loop {
        let mut req = http
            .get(format!("{url}/internal/v1/nodes/{id}/config"))
            .bearer_auth(&token)
            .query(&[("wait", "30")]);
        if let Some(k) = known {
            req = req.query(&[("known", k)]);
        }
        let r = req.send().await?;
        if r.status() == reqwest::StatusCode::OK {
            let cfg: model::realization::NodeConfig = r.json().await?;
            known = Some(cfg.generation);
            let report = model::realization::NodeReport {
                node_error: None,
                realized_generation: Some(cfg.generation),
                agent: Some("bench".into()),
                ..Default::default()
            };
            http.post(format!("{url}/internal/v1/nodes/{id}/report"))
                .bearer_auth(&token)
                .json(&report)
                .send()
                .await?;
        }
    }
}

/// Builds a gateway with one connection; returns (gateway id, connection id).
async fn realize_site(store: &store::Store, name: &str, octet: u8) -> anyhow::Result<(String, String)> {
    use model::*;
    use store::{NewMeta, Scope, WriteCtx};
    let project = store.project_find("admin").await?.id;
    let meta = |n: &str| NewMeta {
        id: None,
        project_id: project.clone(),
        name: n.to_string(),
        description: String::new(),
    };
    let w = || WriteCtx::new("bench");
    let app = crate::admin::operator(store);
    let all = &Scope::All;
    let gw = app
        .create(
            &w(),
            all,
            Dialect::Admin,
            meta(name),
            Gateway::with_addresses(Some(format!("203.0.113.{octet}").parse()?), None),
        )
        .await?
        .record;
    let subnet = app
        .subnet_create(&w(), name, &gw.meta.id, format!("10.{octet}.0.0/24").parse()?)
        .await?
        .record;
    let ike = app
        .create(&w(), all, Dialect::Neutron, meta(name), IkePolicy::default())
        .await?
        .record;
    let ipsec = app
        .create(&w(), all, Dialect::Neutron, meta(name), IpsecPolicy::default())
        .await?
        .record;
    let svc = app
        .create(
            &w(),
            all,
            Dialect::Neutron,
            meta(name),
            VpnService {
                router_id: gw.meta.id.clone(),
                ..VpnService::default()
            },
        )
        .await?
        .record;
    let group = |endpoint_type, endpoints: Vec<String>| EndpointGroup {
        endpoint_type,
        endpoints,
    };
    let local = app
        .create(
            &w(),
            all,
            Dialect::Neutron,
            meta(name),
            group(EndpointType::Subnet, vec![subnet.meta.id.clone()]),
        )
        .await?
        .record;
    let peer = app
        .create(
            &w(),
            all,
            Dialect::Neutron,
            meta(name),
            group(EndpointType::Cidr, vec!["10.250.0.0/24".into()]),
        )
        .await?
        .record;
    let conn = app
        .create(
            &w(),
            all,
            Dialect::Neutron,
            meta(name),
            Connection {
                vpnservice_id: svc.meta.id.clone(),
                ikepolicy_id: ike.meta.id.clone(),
                ipsecpolicy_id: ipsec.meta.id.clone(),
                peer_address: "198.51.100.200".into(),
                peer_id: "peer".into(),
                psk: Psk("bench-psk".into()),
                local_ep_group_id: Some(local.meta.id.clone()),
                peer_ep_group_id: Some(peer.meta.id.clone()),
                ..Connection::default()
            },
        )
        .await?
        .record;
    Ok((gw.meta.id, conn.meta.id))
}

/// PUT → all nodes `in_sync` latency with simulated nodes reporting over HTTP,
/// and long-poll fan-out (time until every waiting watcher is answered).
pub async fn realize_run(opts: &RealizeBenchOpts) -> anyhow::Result<()> {
    let (dir, running) = private_server(Duration::from_secs(60)).await?;
    let store = running.state.store.clone();
    let realizer = running.state.realizer.clone();
    let url = running.url.clone();
    let http = reqwest::Client::builder()
        .pool_max_idle_per_host(opts.watchers.max(opts.nodes) + 16)
        .build()?;

    // Phase 1: PUT → in_sync on every node.
    let (_gw, conn) = realize_site(&store, "put-gw", 1).await?;
    let mut sims = Vec::new();
    for i in 0..opts.nodes {
        let (token, hash) = store::new_token();
        let node = store.node_create(&format!("n{i}"), &_gw, &hash).await?;
        sims.push(tokio::spawn(sim_node(http.clone(), url.clone(), node.id, token)));
    }
    let auth = json!({"auth": {"identity": {"methods": ["password"], "password": {"user": {"name": "admin", "password": "bench-password", "domain": {"name": "Default"}}}}, "scope": {"project": {"name": "admin", "domain": {"name": "Default"}}}}});
    let r = http
        .post(format!("{url}/v3/auth/tokens"))
        .json(&auth)
        .send()
        .await?;
    let token = r
        .headers()
        .get("X-Subject-Token")
        .and_then(|v| v.to_str().ok())
        .context("token")?
        .to_string();
    let wait_in_sync = |rid: Option<String>| {
        let realizer = realizer.clone();
        let conn = conn.clone();
        async move {
            let deadline = Instant::now() + Duration::from_secs(60);
            loop {
                let st = realizer.session_state(&conn, rid.as_deref()).await?;
                if st.state == realize::RealizationState::InSync && st.details.len() == opts.nodes {
                    return anyhow::Ok(());
                }
                if Instant::now() > deadline {
                    bail!("not in sync after 60 s: {st:?}");
                }
                tokio::time::sleep(Duration::from_millis(1)).await;
            }
        }
    };
    wait_in_sync(None).await?;
    let mut lat = Vec::new();
    for i in 0..opts.puts {
        let t = Instant::now();
        let r = http
            .put(format!("{url}/v2.0/vpn/ipsec-site-connections/{conn}"))
            .header("X-Auth-Token", &token)
            .json(&json!({"ipsec_site_connection": {"mtu": 1400 + (i % 50) as u32}}))
            .send()
            .await?;
        if !r.status().is_success() {
            bail!("PUT failed: {} {}", r.status(), r.text().await?);
        }
        let rid = r
            .headers()
            .get("x-nsx-requestid")
            .and_then(|v| v.to_str().ok())
            .map(str::to_string);
        wait_in_sync(rid).await?;
        lat.push(t.elapsed().as_secs_f64() * 1000.0);
    }
    lat.sort_by(|a, b| a.total_cmp(b));
    println!(
        "PUT -> in_sync on all {} nodes (HTTP long-poll + report): n={} p50 {:.1} ms  p99 {:.1} ms  max {:.1} ms",
        opts.nodes,
        lat.len(),
        pct(&lat, 0.5),
        pct(&lat, 0.99),
        lat.last().copied().unwrap_or(0.0)
    );
    for s in sims {
        s.abort();
    }

    // Phase 2: fan-out to waiting watchers.
    let (fan_gw, fan_conn) = realize_site(&store, "fan-gw", 2).await?;
    let mut nodes = Vec::new();
    for i in 0..opts.watchers {
        let (token, hash) = store::new_token();
        let node = store.node_create(&format!("w{i}"), &fan_gw, &hash).await?;
        nodes.push((node.id, token));
    }
    let mut rounds = Vec::new();
    for round in 0..opts.rounds {
        let known = store.generation_current().await?;
        let mut waits = Vec::new();
        for (id, token) in &nodes {
            let req = http
                .get(format!("{url}/internal/v1/nodes/{id}/config"))
                .bearer_auth(token)
                .query(&[("wait", "60"), ("known", &known.to_string())]);
            waits.push(tokio::spawn(async move {
                let r = req.send().await?;
                if r.status() != reqwest::StatusCode::OK {
                    bail!("watcher answered {}", r.status());
                }
                let _ = r.bytes().await?;
                anyhow::Ok(Instant::now())
            }));
        }
        // Let every watcher reach the server and park.
        tokio::time::sleep(Duration::from_secs(2)).await;
        let t0 = Instant::now();
        crate::admin::operator(&store)
            .update(
                &store::WriteCtx::new("bench"),
                &store::Scope::All,
                Dialect::Neutron,
                &fan_conn,
                app::Expect::NOTHING,
                |r: &mut model::Record<model::Connection>| {
                    r.body.mtu = 1300 + round as u32;
                    Ok(())
                },
            )
            .await?;
        let mut last = t0;
        for w in waits {
            last = last.max(w.await??);
        }
        let ms = last.duration_since(t0).as_secs_f64() * 1000.0;
        rounds.push(ms);
        println!(
            "fan-out round {}: {} watchers answered {:.1} ms after the commit",
            round + 1,
            opts.watchers,
            ms
        );
    }
    rounds.sort_by(|a, b| a.total_cmp(b));
    println!(
        "fan-out: {} waiting watchers, one commit: median {:.1} ms, worst {:.1} ms until all answered",
        opts.watchers,
        pct(&rounds, 0.5),
        rounds.last().copied().unwrap_or(0.0)
    );
    running.task.abort();
    let _ = std::fs::remove_dir_all(&dir);
    Ok(())
}
