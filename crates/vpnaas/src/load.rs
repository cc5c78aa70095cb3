//! `vpnaas bench-load`: many concurrent API clients with a think time, mixing reads
//! and writes over both APIs, against a running server (`--url`).
//!
//! Why a separate generator: the question it answers is "does the server degrade
//! when many clients are connected at once?", not "how fast is one request". Each
//! of the C clients is its own HTTP client (own keep-alive connection), loops over
//! a fixed mix of operations and sleeps a jittered think time between iterations,
//! so the offered rate is about `C / (think + latency)` and can be set below the
//! machine's capacity. Python threads can't drive 200 clients on 2 cores shared
//! with the server; tokio tasks can.
//!
//! The mix per iteration (weights out of 100):
//! - 30 `GET /v2.0/vpn/ikepolicies` (Neutron list, Keystone token)
//! - 25 `GET /v2.0/vpn/ikepolicies/<id>` of a seeded policy
//! - 15 `POST /v2.0/vpn/ikepolicies` then `DELETE` of it (two requests, durable writes)
//! - 15 `GET /api/v1/vpn/ipsec/ike-profiles` (NSX list, `X-Auth-Token` of the admin)
//! - 15 `GET /api/v1/vpn/ipsec/ike-profiles/<id>`
//!
//! `--basic-share F` turns a fraction F of the NSX shows into HTTP basic-auth
//! requests (every one of which verifies the password).
//!
//! A request fails when its status is not the one the API documents for it
//! (200 / 201 / 204) or the transport fails; failures are counted by status and
//! the first few are kept verbatim. The result is one JSON object on stdout.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use base64::Engine;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

/// Seeded ikepolicies the show operations read.
const SEEDED: usize = 20;
/// Failures kept verbatim in the result.
const SAMPLES: usize = 10;

/// Options of one run (the `vpnaas bench-load` flags).
#[derive(Debug, Clone, clap::Args)]
pub struct LoadOpts {
    /// The server's URL (`http://host:port`).
    #[arg(long)]
    pub url: String,
    /// The user the clients log in as.
    #[arg(long, default_value = "admin")]
    pub user: String,
    /// That user's password.
    #[arg(long, env = "VPNAAS_LOAD_PASSWORD", hide_env_values = true)]
    pub password: String,
    /// The project the clients work in.
    #[arg(long, default_value = "admin")]
    pub project: String,
    /// How many concurrent clients to run.
    #[arg(long, default_value_t = 200)]
    pub clients: usize,
    /// How long to run them, seconds.
    #[arg(long, default_value_t = 30.0)]
    pub seconds: f64,
    /// Mean think time between a client's iterations (jittered ±50%).
    #[arg(long, default_value_t = 1000)]
    pub think_ms: u64,
    /// Fraction of NSX shows that use HTTP basic auth instead of a token.
    #[arg(long, default_value_t = 0.0)]
    pub basic_share: f64,
    /// Per-request timeout, seconds.
    #[arg(long = "timeout", default_value_t = 30)]
    pub timeout_s: u64,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Op {
    NeutronList,
    NeutronShow,
    NeutronCreate,
    NeutronDelete,
    NsxList,
    NsxShow,
    NsxBasicShow,
}

impl Op {
    fn name(self) -> &'static str {
        match self {
            Op::NeutronList => "neutron_list",
            Op::NeutronShow => "neutron_show",
            Op::NeutronCreate => "neutron_create",
            Op::NeutronDelete => "neutron_delete",
            Op::NsxList => "nsx_list",
            Op::NsxShow => "nsx_show",
            Op::NsxBasicShow => "nsx_basic_show",
        }
    }
}

/// What one client measured.
#[derive(Default)]
struct Tally {
    latencies: BTreeMap<Op, Vec<f64>>,
    errors: BTreeMap<String, u64>,
    samples: Vec<String>,
    requests: u64,
    failed: u64,
}

impl Tally {
    fn merge(&mut self, o: Tally) {
        for (op, mut v) in o.latencies {
            self.latencies.entry(op).or_default().append(&mut v);
        }
        for (k, n) in o.errors {
            *self.errors.entry(k).or_default() += n;
        }
        for s in o.samples {
            if self.samples.len() < SAMPLES {
                self.samples.push(s);
            }
        }
        self.requests += o.requests;
        self.failed += o.failed;
    }

    fn fail(&mut self, key: String, sample: String) {
        self.failed += 1;
        *self.errors.entry(key).or_default() += 1;
        if self.samples.len() < SAMPLES {
            self.samples.push(sample);
        }
    }
}

fn pct(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

fn summary(v: &mut [f64]) -> Value {
    v.sort_by(f64::total_cmp);
    let r = |x: f64| (x * 100.0).round() / 100.0;
    json!({
        "count": v.len(),
        "p50_ms": r(pct(v, 0.50)),
        "p90_ms": r(pct(v, 0.90)),
        "p99_ms": r(pct(v, 0.99)),
        "max_ms": r(v.last().copied().unwrap_or(0.0)),
    })
}

/// Shared, read-only inputs of every client.
struct Ctx {
    url: String,
    token: String,
    basic: String,
    seeded: Vec<String>,
    basic_share: f64,
    deadline: Instant,
    think_ms: u64,
}

struct Client {
    http: reqwest::Client,
    ctx: Arc<Ctx>,
    tally: Tally,
}

impl Client {
    /// One request; records its latency, or a failure. Returns the body on success.
    async fn call(&mut self, op: Op, method: Method, path: &str, body: Option<&Value>) -> Option<Value> {
        let want = match op {
            Op::NeutronCreate => StatusCode::CREATED,
            Op::NeutronDelete => StatusCode::NO_CONTENT,
            _ => StatusCode::OK,
        };
        let mut rq = self
            .http
            .request(method.clone(), format!("{}{path}", self.ctx.url))
            .header("Accept", "application/json");
        rq = if op == Op::NsxBasicShow {
            rq.header("Authorization", &self.ctx.basic)
        } else {
            rq.header("X-Auth-Token", &self.ctx.token)
        };
        if let Some(b) = body {
            rq = rq.json(b);
        }
        self.tally.requests += 1;
        let t = Instant::now();
        let res = match rq.send().await {
            Ok(r) => {
                let status = r.status();
                r.bytes().await.map(|b| (status, b))
            }
            Err(e) => Err(e),
        };
        let ms = t.elapsed().as_secs_f64() * 1000.0;
        match res {
            Ok((status, bytes)) if status == want => {
                self.tally.latencies.entry(op).or_default().push(ms);
                if bytes.is_empty() {
                    Some(Value::Null)
                } else {
                    serde_json::from_slice(&bytes).ok().or(Some(Value::Null))
                }
            }
            Ok((status, bytes)) => {
                let text = String::from_utf8_lossy(&bytes[..bytes.len().min(300)]).into_owned();
                self.tally.fail(
                    status.as_u16().to_string(),
                    format!("{} {method} {path}: {status} {text}", op.name()),
                );
                None
            }
            Err(e) => {
                let kind = if e.is_timeout() { "timeout" } else { "transport" };
                self.tally
                    .fail(kind.to_string(), format!("{} {method} {path}: {e}", op.name()));
                None
            }
        }
    }

    async fn run(mut self, seed: u64) -> Tally {
        let mut rng = StdRng::seed_from_u64(seed);
        // Spread the clients' first requests over one think time.
        let first = rng.gen_range(0..=self.ctx.think_ms.max(1));
        tokio::time::sleep(Duration::from_millis(first)).await;
        let mut i = 0u64;
        while Instant::now() < self.ctx.deadline {
            let pick = rng.gen_range(0..100u32);
            let id = self.ctx.seeded[rng.gen_range(0..self.ctx.seeded.len())].clone();
            match pick {
                0..30 => {
                    self.call(Op::NeutronList, Method::GET, "/v2.0/vpn/ikepolicies", None)
                        .await;
                }
                30..55 => {
                    self.call(
                        Op::NeutronShow,
                        Method::GET,
                        &format!("/v2.0/vpn/ikepolicies/{id}"),
                        None,
                    )
                    .await;
                }
                55..70 => {
                    i += 1;
                    let body = json!({"ikepolicy": {"name": format!("load-{seed}-{i}"), "lifetime": {"units": "seconds", "value": 7200}}});
                    let made = self
                        .call(
                            Op::NeutronCreate,
                            Method::POST,
                            "/v2.0/vpn/ikepolicies",
                            Some(&body),
                        )
                        .await;
                    if let Some(new_id) = made.as_ref().and_then(|v| v["ikepolicy"]["id"].as_str()) {
                        let path = format!("/v2.0/vpn/ikepolicies/{new_id}");
                        self.call(Op::NeutronDelete, Method::DELETE, &path, None).await;
                    }
                }
                70..85 => {
                    self.call(Op::NsxList, Method::GET, "/api/v1/vpn/ipsec/ike-profiles", None)
                        .await;
                }
                _ => {
                    let op = if rng.gen_bool(self.ctx.basic_share.clamp(0.0, 1.0)) {
                        Op::NsxBasicShow
                    } else {
                        Op::NsxShow
                    };
                    self.call(
                        op,
                        Method::GET,
                        &format!("/api/v1/vpn/ipsec/ike-profiles/{id}"),
                        None,
                    )
                    .await;
                }
            }
            let think = self.ctx.think_ms;
            if think > 0 {
                let ms = rng.gen_range(think / 2..=think + think / 2);
                let left = self.ctx.deadline.saturating_duration_since(Instant::now());
                tokio::time::sleep(Duration::from_millis(ms).min(left)).await;
            }
        }
        self.tally
    }
}

async fn login(http: &reqwest::Client, o: &LoadOpts) -> anyhow::Result<String> {
    let auth = json!({"auth": {"identity": {"methods": ["password"], "password": {"user": {"name": o.user, "password": o.password, "domain": {"name": "Default"}}}}, "scope": {"project": {"name": o.project, "domain": {"name": "Default"}}}}});
    let r = http
        .post(format!("{}/v3/auth/tokens", o.url))
        .json(&auth)
        .send()
        .await
        .context("POST /v3/auth/tokens")?;
    if r.status() != StatusCode::CREATED {
        bail!("login as {} failed: {}", o.user, r.status());
    }
    Ok(r.headers()
        .get("X-Subject-Token")
        .and_then(|v| v.to_str().ok())
        .context("no X-Subject-Token")?
        .to_string())
}

/// Seeds [`SEEDED`] ikepolicies, runs the clients until the deadline, removes the
/// seeds, and returns the result object.
pub async fn run(o: &LoadOpts) -> anyhow::Result<Value> {
    let timeout = Duration::from_secs(o.timeout_s.max(1));
    let setup = reqwest::Client::builder().timeout(timeout).build()?;
    let token = login(&setup, o).await?;
    let mut seeded = Vec::with_capacity(SEEDED);
    for i in 0..SEEDED {
        let r = setup
            .post(format!("{}/v2.0/vpn/ikepolicies", o.url))
            .header("X-Auth-Token", &token)
            .json(&json!({"ikepolicy": {"name": format!("load-seed-{i}")}}))
            .send()
            .await?;
        let status = r.status();
        let v: Value = r.json().await?;
        if status != StatusCode::CREATED {
            bail!("seeding ikepolicy: {status} {v}");
        }
        seeded.push(v["ikepolicy"]["id"].as_str().context("seeded id")?.to_string());
    }
    let basic = format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(format!("{}:{}", o.user, o.password))
    );
    let started = Instant::now();
    let ctx = Arc::new(Ctx {
        url: o.url.clone(),
        token: token.clone(),
        basic,
        seeded: seeded.clone(),
        basic_share: o.basic_share,
        deadline: started + Duration::from_secs_f64(o.seconds.max(0.1)),
        think_ms: o.think_ms,
    });
    let mut tasks = Vec::with_capacity(o.clients);
    for c in 0..o.clients.max(1) {
        // One HTTP client (one keep-alive connection) per simulated client.
        let http = reqwest::Client::builder()
            .timeout(timeout)
            .pool_max_idle_per_host(1)
            .build()?;
        let client = Client {
            http,
            ctx: ctx.clone(),
            tally: Tally::default(),
        };
        tasks.push(tokio::spawn(client.run(c as u64 + 1)));
    }
    let mut total = Tally::default();
    for t in tasks {
        total.merge(t.await?);
    }
    let elapsed = started.elapsed().as_secs_f64();
    for id in &seeded {
        let _ = setup
            .delete(format!("{}/v2.0/vpn/ikepolicies/{id}", o.url))
            .header("X-Auth-Token", &token)
            .send()
            .await;
    }

    let mut all: Vec<f64> = total.latencies.values().flatten().copied().collect();
    let mut ops = serde_json::Map::new();
    for (op, v) in total.latencies.iter_mut() {
        ops.insert(op.name().to_string(), summary(v));
    }
    Ok(json!({
        "clients": o.clients,
        "seconds": (elapsed * 100.0).round() / 100.0,
        "think_ms": o.think_ms,
        "basic_share": o.basic_share,
        "requests": total.requests,
        "ok": total.requests - total.failed,
        "failed": total.failed,
        "errors": total.errors,
        "error_samples": total.samples,
        "rps": ((total.requests as f64 / elapsed) * 10.0).round() / 10.0,
        "all": summary(&mut all),
        "ops": ops,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_and_summary() {
        let mut v: Vec<f64> = (1..=100).rev().map(f64::from).collect();
        let s = summary(&mut v);
        assert_eq!(s["count"], 100);
        assert_eq!(s["p50_ms"], 51.0);
        assert_eq!(s["p99_ms"], 99.0);
        assert_eq!(s["max_ms"], 100.0);
        assert_eq!(summary(&mut [])["p99_ms"], 0.0);
    }

    #[test]
    fn tally_merge_keeps_counts_and_bounded_samples() {
        let mut a = Tally::default();
        let mut b = Tally::default();
        for i in 0..SAMPLES + 3 {
            b.fail("500".into(), format!("sample {i}"));
        }
        b.requests = 20;
        a.requests = 5;
        a.latencies.entry(Op::NsxList).or_default().push(1.0);
        a.merge(b);
        assert_eq!(a.requests, 25);
        assert_eq!(a.failed, (SAMPLES + 3) as u64);
        assert_eq!(a.errors["500"], (SAMPLES + 3) as u64);
        assert_eq!(a.samples.len(), SAMPLES);
        assert_eq!(a.latencies[&Op::NsxList], vec![1.0]);
    }
}
