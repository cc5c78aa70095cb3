//! The harness: the real composed app ([`vpnaas::server::app`], every API behind
//! the edge) on a fresh database, called in-process with
//! `tower::ServiceExt::oneshot` — no socket, no port, no child process — and
//! simulated gateway nodes that register as `vpnaas node add` does and speak
//! the real node API through the same app.
//!
//! [`TestServer::listen`] also serves the same app over a socket with the
//! server's own listener, for clients that need one (the agent's node-API
//! client); stopping and listening again on the same address is a restart.
//!
//! In-process requests carry no `ConnectInfo`, like a request behind a proxy
//! the server can't attribute: nothing is throttled by address, which is what
//! these tests want (they authenticate many times in a row).
//!
//! Assertions are on the wire (status, headers, JSON), never on Rust error
//! types, so the tests judge what clients see.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::http::{HeaderMap, Method, Request, StatusCode};
use base64::Engine;
use http_body_util::BodyExt;
use model::realization::{IkeState, NodeConfig, NodeReport, TunnelStatus};
use serde_json::{Value, json};
use tower::ServiceExt;
use vpnaas::admin;
use vpnaas::listener::{self, ConnLimits, Listener};
use vpnaas::server::{self, AppState, ServeConfig};

/// The bootstrap admin's password (`admin` in project `admin`).
pub(crate) const ADMIN_PASSWORD: &str = "composed-admin-pw";

/// Neutron collection paths, by resource.
pub(crate) const IKE: &str = "/v2.0/vpn/ikepolicies";
pub(crate) const IPSEC: &str = "/v2.0/vpn/ipsecpolicies";
pub(crate) const SVC: &str = "/v2.0/vpn/vpnservices";
pub(crate) const EPG: &str = "/v2.0/vpn/endpoint-groups";
pub(crate) const CONN: &str = "/v2.0/vpn/ipsec-site-connections";
/// NSX resource prefix.
pub(crate) const VPN: &str = "/api/v1/vpn/ipsec";

/// How a request authenticates.
#[derive(Clone, Copy)]
pub(crate) enum Auth<'a> {
    None,
    /// A Keystone token in `X-Auth-Token` (Neutron).
    Token(&'a str),
    /// HTTP basic credentials (NSX).
    Basic(&'a str, &'a str),
    /// A node's bearer token (node API).
    Bearer(&'a str),
}

/// One answer, read whole.
#[derive(Debug)]
pub(crate) struct Reply {
    pub status: StatusCode,
    pub headers: HeaderMap,
    /// The JSON body; `Null` when the body is empty.
    pub body: Value,
}

impl Reply {
    /// The body, after checking the status (the body is in the panic message).
    #[track_caller]
    pub(crate) fn expect(self, status: u16) -> Value {
        assert_eq!(self.status.as_u16(), status, "body: {}", self.body);
        self.body
    }

    /// A header's value ("" when absent).
    pub(crate) fn header(&self, name: &str) -> &str {
        self.headers.get(name).and_then(|v| v.to_str().ok()).unwrap_or("")
    }

    /// Checks a Neutron error: status and `NeutronError.type`; returns the message.
    #[track_caller]
    pub(crate) fn neutron_error(self, status: u16, kind: &str) -> String {
        let body = self.expect(status);
        let e = &body["NeutronError"];
        assert_eq!(e["type"], kind, "{body}");
        assert!(e.get("detail").is_some(), "{body}");
        e["message"].as_str().expect("message").to_string()
    }

    /// Checks an NSX error: status, envelope keys and `error_code`; returns the body.
    #[track_caller]
    pub(crate) fn nsx_error(self, status: u16, code: i64) -> Value {
        let body = self.expect(status);
        for k in ["httpStatus", "error_code", "module_name", "error_message"] {
            assert!(body.get(k).is_some(), "no {k}: {body}");
        }
        assert_eq!(body["error_code"], code, "{body}");
        body
    }
}

/// The composed server on its own fresh database.
pub(crate) struct TestServer {
    pub state: AppState,
    app: Router,
    admin_token: String,
    _db: store::testing::TestDb,
    /// The encryption key file (removed on drop).
    key_file: std::path::PathBuf,
}

impl Drop for TestServer {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.key_file);
    }
}

impl TestServer {
    /// A fresh database, bootstrapped as `vpnaas serve` does on first start,
    /// with the app built from the same parts `server::start` builds it from.
    pub(crate) async fn new() -> TestServer {
        TestServer::with_node_timeout(ServeConfig::default().node_timeout).await
    }

    /// [`TestServer::new`] with `--node-timeout` (a node silent for longer is
    /// `unknown`).
    pub(crate) async fn with_node_timeout(node_timeout: Duration) -> TestServer {
        let db = store::testing::fresh().await;
        let key_file = db
            .dir
            .clone()
            .unwrap_or_else(std::env::temp_dir)
            .join(format!("vpnaas-composed-{}.key", uuid::Uuid::new_v4().simple()));
        let cfg = ServeConfig {
            db: db.db.clone(),
            key_file: Some(key_file.clone()),
            admin_password: Some(ADMIN_PASSWORD.into()),
            node_timeout,
            ..ServeConfig::default()
        };
        let store = server::open_store(&cfg.db, cfg.key_file.as_deref())
            .await
            .expect("open store");
        admin::bootstrap(&store, &cfg).await.expect("bootstrap");
        let state = server::state(store, &cfg, "http://vpnaas.test");
        let app = server::app(state.clone(), Arc::new(cfg.limits.clone()));
        let mut s = TestServer {
            state,
            app,
            admin_token: String::new(),
            _db: db,
            key_file,
        };
        s.admin_token = s.token("admin", ADMIN_PASSWORD, "admin").await;
        s
    }

    /// Serves the app on `addr` (port 0: any) with the server's listener (plain
    /// HTTP, as on a loopback `--listen`) until [`Serving::stop`].
    pub(crate) async fn listen(&self, addr: SocketAddr) -> Serving {
        let l = Listener::bind(addr, None).await.expect("bind");
        let addr = l.local_addr().expect("local address");
        let (stop, stop_rx) = tokio::sync::watch::channel(false);
        let task = tokio::spawn(listener::serve(
            vec![l],
            self.app.clone(),
            ConnLimits::default(),
            stop_rx,
            Duration::from_millis(100),
        ));
        Serving { addr, stop, task }
    }

    /// One request through the whole app (edge, request ids, routers).
    pub(crate) async fn call(
        &self,
        method: Method,
        path: &str,
        auth: Auth<'_>,
        body: Option<Value>,
    ) -> Reply {
        let mut req = Request::builder()
            .method(method)
            .uri(path)
            .header("host", "vpnaas.test")
            .header("accept", "application/json");
        req = match auth {
            Auth::None => req,
            Auth::Token(t) => req.header("x-auth-token", t),
            Auth::Basic(u, p) => {
                let b = base64::engine::general_purpose::STANDARD.encode(format!("{u}:{p}"));
                req.header("authorization", format!("Basic {b}"))
            }
            Auth::Bearer(t) => req.header("authorization", format!("Bearer {t}")),
        };
        let body = match body {
            Some(v) => {
                req = req.header("content-type", "application/json");
                Body::from(v.to_string())
            }
            None => Body::empty(),
        };
        let resp = self
            .app
            .clone()
            .oneshot(req.body(body).expect("request"))
            .await
            .expect("infallible");
        let (parts, body) = resp.into_parts();
        let bytes = body.collect().await.expect("body").to_bytes();
        let body = if bytes.is_empty() {
            Value::Null
        } else {
            serde_json::from_slice(&bytes).unwrap_or_else(|e| {
                panic!(
                    "{} {path}: not JSON ({e}): {}",
                    parts.status,
                    String::from_utf8_lossy(&bytes)
                )
            })
        };
        Reply {
            status: parts.status,
            headers: parts.headers,
            body,
        }
    }

    /// A project-scoped Keystone token (password method).
    pub(crate) async fn token(&self, user: &str, password: &str, project: &str) -> String {
        let body = json!({"auth": {
            "identity": {"methods": ["password"], "password": {"user": {
                "name": user, "password": password, "domain": {"name": "Default"}}}},
            "scope": {"project": {"name": project, "domain": {"name": "Default"}}}}});
        let r = self
            .call(Method::POST, "/v3/auth/tokens", Auth::None, Some(body))
            .await;
        let token = r.header("x-subject-token").to_string();
        r.expect(201);
        token
    }

    /// A Neutron request as the admin.
    pub(crate) async fn neutron(&self, method: Method, path: &str, body: Option<Value>) -> Reply {
        self.call(method, path, Auth::Token(&self.admin_token), body)
            .await
    }

    /// An NSX request as the admin (basic auth, as vmware-nsxlib sends it).
    pub(crate) async fn nsx(&self, method: Method, path: &str, body: Option<Value>) -> Reply {
        self.call(method, path, Auth::Basic("admin", ADMIN_PASSWORD), body)
            .await
    }

    /// `POST {collection}` with `{member: body}`; returns the created member.
    pub(crate) async fn neutron_create(&self, collection: &str, member: &str, body: Value) -> Value {
        let r = self
            .neutron(Method::POST, collection, Some(json!({ member: body })))
            .await;
        r.expect(201)[member].clone()
    }

    /// `POST` of an NSX object; returns it.
    pub(crate) async fn nsx_create(&self, segment: &str, body: Value) -> Value {
        self.nsx(Method::POST, &format!("{VPN}/{segment}"), Some(body))
            .await
            .expect(201)
    }

    /// A gateway (a Neutron router / NSX logical router) of the admin project
    /// with one local subnet `10.{octet}.0.0/24` and external address
    /// `172.30.{octet}.1`, as `vpnaas gateway create` / `subnet create` make them.
    pub(crate) async fn gateway(&self, name: &str, octet: u8) -> Gateway {
        let g = admin::gateway_create(
            &self.state.store,
            name,
            "admin",
            Some(format!("172.30.{octet}.1").parse().unwrap()),
            None,
        )
        .await
        .expect("gateway create");
        let s = admin::subnet_create(
            &self.state.store,
            &format!("{name}-net"),
            name,
            &format!("10.{octet}.0.0/24"),
        )
        .await
        .expect("subnet create");
        Gateway {
            id: g["id"].as_str().unwrap().to_string(),
            subnet_id: s["id"].as_str().unwrap().to_string(),
        }
    }

    /// The Neutron objects of one site and its connection, created in order.
    pub(crate) async fn site(&self, name: &str, octet: u8) -> Site {
        let gw = self.gateway(name, octet).await;
        let ike = self
            .neutron_create(IKE, "ikepolicy", json!({"name": format!("{name}-ike")}))
            .await;
        let ipsec = self
            .neutron_create(IPSEC, "ipsecpolicy", json!({"name": format!("{name}-ipsec")}))
            .await;
        let svc = self
            .neutron_create(
                SVC,
                "vpnservice",
                json!({"name": format!("{name}-svc"), "router_id": gw.id}),
            )
            .await;
        let local = self
            .neutron_create(
                EPG,
                "endpoint_group",
                json!({"name": format!("{name}-l"), "type": "subnet", "endpoints": [gw.subnet_id]}),
            )
            .await;
        let peer = self
            .neutron_create(
                EPG,
                "endpoint_group",
                json!({"name": format!("{name}-p"), "type": "cidr",
                       "endpoints": [format!("10.{}.0.0/24", octet + 100)]}),
            )
            .await;
        let r = self
            .neutron(
                Method::POST,
                CONN,
                Some(json!({"ipsec_site_connection": {
                    "name": format!("{name}-conn"), "vpnservice_id": svc["id"],
                    "ikepolicy_id": ike["id"], "ipsecpolicy_id": ipsec["id"],
                    "peer_address": format!("198.51.100.{octet}"), "peer_id": format!("peer-{octet}"),
                    "psk": format!("psk-{name}"), "local_ep_group_id": local["id"],
                    "peer_ep_group_id": peer["id"]}})),
            )
            .await;
        let create_request = r.header("x-nsx-requestid").to_string();
        let conn = r.expect(201)["ipsec_site_connection"].clone();
        Site {
            gateway: gw,
            ike: id_of(&ike),
            ipsec: id_of(&ipsec),
            service: id_of(&svc),
            local: id_of(&local),
            peer: id_of(&peer),
            conn: id_of(&conn),
            create_request,
        }
    }

    /// A transport node of `gateway`, registered as `vpnaas node add` does.
    pub(crate) async fn node(&self, name: &str, gateway: &str) -> SimNode {
        let n = admin::node_add(&self.state.store, name, gateway, None)
            .await
            .expect("node add");
        SimNode {
            id: n["id"].as_str().unwrap().to_string(),
            token: n["token"].as_str().unwrap().to_string(),
        }
    }

    /// `GET /internal/v1/nodes/{id}/config{query}` with the node's token.
    pub(crate) async fn node_config(&self, node: &SimNode, query: &str) -> Reply {
        self.call(
            Method::GET,
            &format!("/internal/v1/nodes/{}/config{query}", node.id),
            Auth::Bearer(&node.token),
            None,
        )
        .await
    }

    /// `POST /internal/v1/nodes/{id}/report`; a report is answered with 204.
    pub(crate) async fn report(&self, node: &SimNode, report: &NodeReport) {
        let r = self
            .call(
                Method::POST,
                &format!("/internal/v1/nodes/{}/report", node.id),
                Auth::Bearer(&node.token),
                Some(serde_json::to_value(report).unwrap()),
            )
            .await;
        r.expect(204);
    }

    /// What an agent does after an apply: fetch the latest configuration and
    /// report it realized, with the tunnels in `up` established (one CHILD SA
    /// each) and the others still connecting.
    pub(crate) async fn sync(&self, node: &SimNode, up: &[&str]) -> NodeConfig {
        let cfg: NodeConfig =
            serde_json::from_value(self.node_config(node, "").await.expect(200)).expect("a NodeConfig");
        let tunnels = cfg
            .tunnels
            .iter()
            .map(|t| {
                let is_up = up.contains(&t.id.as_str());
                TunnelStatus {
                    id: t.id.clone(),
                    ike_state: if is_up {
                        IkeState::Established
                    } else {
                        IkeState::Connecting
                    },
                    child_sas_installed: u32::from(is_up),
                    child_sas_expected: 1,
                    bytes_in: 1000,
                    bytes_out: 2000,
                    packets_in: 10,
                    packets_out: 20,
                    message: None,
                    ..TunnelStatus::default()
                }
            })
            .collect();
        let report = NodeReport {
            node_error: None,
            realized_generation: Some(cfg.generation),
            tunnels,
            agent: Some("composed-test".into()),
            ..NodeReport::default()
        };
        self.report(node, &report).await;
        cfg
    }

    /// A Neutron connection's `status`.
    pub(crate) async fn conn_status(&self, id: &str) -> String {
        let c = self
            .neutron(Method::GET, &format!("{CONN}/{id}"), None)
            .await
            .expect(200);
        c["ipsec_site_connection"]["status"].as_str().unwrap().to_string()
    }

    /// NSX realization state of a session, optionally of one request.
    pub(crate) async fn nsx_state(&self, session: &str, request_id: Option<&str>) -> Reply {
        let q = request_id.map_or(String::new(), |r| format!("?request_id={r}"));
        self.nsx(Method::GET, &format!("{VPN}/sessions/{session}/state{q}"), None)
            .await
    }
}

/// The app on a socket.
pub(crate) struct Serving {
    pub addr: SocketAddr,
    stop: tokio::sync::watch::Sender<bool>,
    task: tokio::task::JoinHandle<std::io::Result<()>>,
}

impl Serving {
    /// Stops listening and closes every connection (after a short grace).
    pub(crate) async fn stop(self) {
        let _ = self.stop.send(true);
        self.task.await.expect("serve task").expect("serve");
    }
}

/// A gateway and its local subnet.
pub(crate) struct Gateway {
    pub id: String,
    pub subnet_id: String,
}

/// Ids of one site's Neutron objects.
pub(crate) struct Site {
    pub gateway: Gateway,
    pub ike: String,
    pub ipsec: String,
    pub service: String,
    pub local: String,
    pub peer: String,
    pub conn: String,
    /// `x-nsx-requestid` of the connection's create.
    pub create_request: String,
}

/// A registered transport node.
pub(crate) struct SimNode {
    pub id: String,
    pub token: String,
}

/// `obj["id"]` as a string.
#[track_caller]
pub(crate) fn id_of(obj: &Value) -> String {
    obj["id"].as_str().expect("an id").to_string()
}

/// The keys of a JSON object, sorted.
#[track_caller]
pub(crate) fn keys(obj: &Value) -> Vec<String> {
    let mut k: Vec<String> = obj.as_object().expect("an object").keys().cloned().collect();
    k.sort();
    k
}
