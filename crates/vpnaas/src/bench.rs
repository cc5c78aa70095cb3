//! `vpnaas bench`: API throughput measured through HTTP with real concurrency.
//! Starts its own server on a temporary database (or targets `--url`), creates N
//! connections (with their policies, service and endpoint groups) from C
//! concurrent clients, then times `GET ipsec-site-connections?fields=id&fields=name`.
//! A benchmark, not a test: it prints rates and percentiles.

use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use app::Dialect;
use serde_json::{Value, json};
use tokio::sync::Mutex;

/// Options of one run.
#[derive(Debug, Clone)]
pub struct BenchOpts {
    pub connections: usize,
    pub concurrency: usize,
    pub list_iterations: usize,
}

/// Results of one run.
#[derive(Debug, Clone)]
pub struct BenchResult {
    pub connections: usize,
    pub concurrency: usize,
    pub create_seconds: f64,
    pub creates_per_second: f64,
    pub create_p50_ms: f64,
    pub create_p99_ms: f64,
    pub list_fields_p50_ms: f64,
    pub list_fields_p99_ms: f64,
    pub list_full_p50_ms: f64,
    pub list_bytes_fields: usize,
}

fn pct(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i.min(sorted.len() - 1)]
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
}

/// Runs the benchmark against a server at `url` whose admin can log in.
pub async fn run(
    url: &str,
    user: &str,
    password: &str,
    project: &str,
    opts: &BenchOpts,
) -> anyhow::Result<BenchResult> {
    let http = reqwest::Client::builder()
        .pool_max_idle_per_host(opts.concurrency * 2)
        .build()?;
    let auth = json!({"auth": {"identity": {"methods": ["password"], "password": {"user": {"name": user, "password": password, "domain": {"name": "Default"}}}}, "scope": {"project": {"name": project, "domain": {"name": "Default"}}}}});
    let r = http
        .post(format!("{url}/v3/auth/tokens"))
        .json(&auth)
        .send()
        .await?;
    if !r.status().is_success() {
        bail!("login failed: {}", r.status());
    }
    let token = r
        .headers()
        .get("X-Subject-Token")
        .and_then(|v| v.to_str().ok())
        .context("no X-Subject-Token")?
        .to_string();
    let api = Arc::new(Api {
        http,
        url: url.to_string(),
        token,
    });
    let routers: Value = api
        .http
        .get(format!("{url}/v2.0/routers?name=bench-gw"))
        .header("X-Auth-Token", &api.token)
        .send()
        .await?
        .json()
        .await?;
    let router = routers["routers"][0]["id"]
        .as_str()
        .context("gateway bench-gw missing")?
        .to_string();
    let subnets: Value = api
        .http
        .get(format!("{url}/v2.0/subnets?name=bench-subnet"))
        .header("X-Auth-Token", &api.token)
        .send()
        .await?
        .json()
        .await?;
    let subnet = subnets["subnets"][0]["id"]
        .as_str()
        .context("subnet bench-subnet missing")?
        .to_string();
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
    let svc = api
        .post(
            "/v2.0/vpn/vpnservices",
            json!({"vpnservice": {"name": "bench-svc", "router_id": router}}),
        )
        .await?;
    let local = api
        .post(
            "/v2.0/vpn/endpoint-groups",
            json!({"endpoint_group": {"name": "bench-local", "type": "subnet", "endpoints": [subnet]}}),
        )
        .await?;
    let peer = api
        .post(
            "/v2.0/vpn/endpoint-groups",
            json!({"endpoint_group": {"name": "bench-peer", "type": "cidr", "endpoints": ["10.200.0.0/16"]}}),
        )
        .await?;
    let ids = Arc::new((
        ike["ikepolicy"]["id"].as_str().unwrap_or_default().to_string(),
        ipsec["ipsecpolicy"]["id"]
            .as_str()
            .unwrap_or_default()
            .to_string(),
        svc["vpnservice"]["id"].as_str().unwrap_or_default().to_string(),
        local["endpoint_group"]["id"]
            .as_str()
            .unwrap_or_default()
            .to_string(),
        peer["endpoint_group"]["id"]
            .as_str()
            .unwrap_or_default()
            .to_string(),
    ));

    let next = Arc::new(Mutex::new(0usize));
    let latencies = Arc::new(Mutex::new(Vec::with_capacity(opts.connections)));
    let started = Instant::now();
    let mut workers = Vec::new();
    for _ in 0..opts.concurrency.max(1) {
        let (api, ids, next, lat) = (api.clone(), ids.clone(), next.clone(), latencies.clone());
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
                let body = json!({"ipsec_site_connection": {
                    "name": format!("conn-{i}"), "vpnservice_id": ids.2, "ikepolicy_id": ids.0, "ipsecpolicy_id": ids.1,
                    "peer_address": format!("198.51.{}.{}", (i / 250) % 250, i % 250 + 1),
                    "peer_id": format!("peer-{i}"), "psk": format!("secret-{i}"),
                    "local_ep_group_id": ids.3, "peer_ep_group_id": ids.4}});
                let t = Instant::now();
                api.post("/v2.0/vpn/ipsec-site-connections", body).await?;
                lat.lock().await.push(t.elapsed().as_secs_f64() * 1000.0);
            }
            anyhow::Ok(())
        }));
    }
    for w in workers {
        w.await??;
    }
    let create_seconds = started.elapsed().as_secs_f64();
    let mut lat = latencies.lock().await.clone();
    lat.sort_by(|a, b| a.total_cmp(b));

    let list = |q: &'static str| {
        let api = api.clone();
        async move {
            let t = Instant::now();
            let r = api
                .http
                .get(format!("{}/v2.0/vpn/ipsec-site-connections{q}", api.url))
                .header("X-Auth-Token", &api.token)
                .send()
                .await?;
            let bytes = r.bytes().await?;
            anyhow::Ok((t.elapsed().as_secs_f64() * 1000.0, bytes.len(), bytes))
        }
    };
    let mut fields = Vec::new();
    let mut full = Vec::new();
    let mut size = 0;
    for _ in 0..opts.list_iterations.max(1) {
        let (ms, len, body) = list("?fields=id&fields=name").await?;
        let v: Value = serde_json::from_slice(&body)?;
        let n = v["ipsec_site_connections"].as_array().map(Vec::len).unwrap_or(0);
        if n < opts.connections {
            bail!("list returned {n} rows, expected at least {}", opts.connections);
        }
        fields.push(ms);
        size = len;
        full.push(list("").await?.0);
    }
    fields.sort_by(|a, b| a.total_cmp(b));
    full.sort_by(|a, b| a.total_cmp(b));
    Ok(BenchResult {
        connections: opts.connections,
        concurrency: opts.concurrency,
        create_seconds,
        creates_per_second: opts.connections as f64 / create_seconds,
        create_p50_ms: pct(&lat, 0.5),
        create_p99_ms: pct(&lat, 0.99),
        list_fields_p50_ms: pct(&fields, 0.5),
        list_fields_p99_ms: pct(&fields, 0.99),
        list_full_p50_ms: pct(&full, 0.5),
        list_bytes_fields: size,
    })
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

/// Starts a private server on a temporary database with the bench gateway, then runs.
pub async fn run_local(opts: &BenchOpts) -> anyhow::Result<BenchResult> {
    let (dir, running) = private_server(Duration::from_secs(15)).await?;
    let store = &running.state.store;
    crate::admin::gateway_create(store, "bench-gw", "admin", Some("203.0.113.1".parse()?), None).await?;
    crate::admin::subnet_create(store, "bench-subnet", "bench-gw", "10.100.0.0/16").await?;
    let result = run(&running.url, "admin", "bench-password", "admin", opts).await;
    running.task.abort();
    let _ = std::fs::remove_dir_all(&dir);
    result
}

impl BenchResult {
    pub fn print(&self) {
        println!(
            "N={:>6} C={:>3}  creates/s {:>8.1}  create p50 {:>7.2} ms p99 {:>7.2} ms  list(fields=id,name) p50 {:>8.2} ms p99 {:>8.2} ms ({} bytes)  list(full) p50 {:>8.2} ms",
            self.connections,
            self.concurrency,
            self.creates_per_second,
            self.create_p50_ms,
            self.create_p99_ms,
            self.list_fields_p50_ms,
            self.list_fields_p99_ms,
            self.list_bytes_fields,
            self.list_full_p50_ms,
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
            Gateway {
                external_v4: Some(format!("203.0.113.{octet}").parse()?),
                external_v6: None,
            },
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
    let local = app
        .create(
            &w(),
            all,
            Dialect::Neutron,
            meta(name),
            EndpointGroup {
                endpoint_type: EndpointType::Subnet,
                endpoints: vec![subnet.meta.id.clone()],
            },
        )
        .await?
        .record;
    let peer = app
        .create(
            &w(),
            all,
            Dialect::Neutron,
            meta(name),
            EndpointGroup {
                endpoint_type: EndpointType::Cidr,
                endpoints: vec!["10.250.0.0/24".into()],
            },
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
