//! The NSX API end to end over a real store: every resource, revisions,
//! in-use and system-owned refusals, cascades from endpoints into sessions,
//! authentication, and bad input. One test binary; each test gets a fresh DB.

use std::time::Duration;

use app::{App, Dialect, Expect};
use axum::Router;
use axum::body::Body;
use axum::extract::FromRef;
use axum::http::{Request, StatusCode, header};
use base64::Engine;
use identity::{Identity, IdentityConfig};
use model::{Connection, Gateway, Record};
use serde_json::{Value, json};
use store::{Cipher, NewMeta, Scope, Store, WriteCtx};
use tower::ServiceExt;

#[derive(Clone, FromRef)]
struct State {
    store: Store,
    app: App,
    identity: Identity,
}

struct Env {
    db: store::testing::TestDb,
    store: Store,
    ops: App,
    app: Router,
    gateway: String,
}

const ADMIN: (&str, &str) = ("admin", "admin-pw");
const MEMBER: (&str, &str) = ("demo", "demo-pw");

async fn env() -> Env {
    let db = store::testing::fresh().await;
    let store = Store::open(db.db.clone(), Cipher::from_key(&[7; 32]))
        .await
        .unwrap();
    let admin_p = store.project_create("admin", "").await.unwrap();
    let demo_p = store.project_create("demo", "").await.unwrap();
    for ((name, pw), project, role) in [(ADMIN, &admin_p, "admin"), (MEMBER, &demo_p, "member")] {
        let u = store
            .user_create(name, &identity::hash_password(pw).unwrap())
            .await
            .unwrap();
        store.role_grant(&u.id, &project.id, role).await.unwrap();
    }
    let ops = App::new(store.clone(), Duration::from_secs(15));
    let gw = ops
        .create(
            &WriteCtx::new("test"),
            &Scope::All,
            Dialect::Admin,
            NewMeta {
                id: None,
                project_id: demo_p.id.clone(),
                name: "gw1".into(),
                description: String::new(),
            },
            Gateway::with_addresses(Some("172.24.4.10".parse().unwrap()), None),
        )
        .await
        .unwrap();
    let identity = Identity::new(
        store.clone(),
        IdentityConfig {
            public_url: "http://localhost".into(),
            token_ttl: Duration::from_secs(3600),
            region: "RegionOne".into(),
            ..IdentityConfig::default()
        },
    );
    // What the server's request-id middleware (`vpnaas::request_id::assign`,
    // which this crate can't depend on) does, over the same type.
    let request_id = |mut req: axum::extract::Request, next: axum::middleware::Next| async move {
        let id = identity::request::RequestId::new();
        let write = identity::request::RequestId::is_write(req.method());
        req.extensions_mut().insert(id);
        let mut resp = next.run(req).await;
        id.stamp(resp.headers_mut(), write);
        resp
    };
    let app = api_nsx::router()
        .layer(axum::middleware::from_fn(request_id))
        .with_state(State {
            store: store.clone(),
            app: ops.clone(),
            identity,
        });
    Env {
        db,
        store,
        ops,
        app,
        gateway: gw.record.meta.id,
    }
}

fn basic((u, p): (&str, &str)) -> String {
    format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(format!("{u}:{p}"))
    )
}

struct Resp {
    status: StatusCode,
    headers: axum::http::HeaderMap,
    body: Value,
}

impl Env {
    async fn raw(&self, req: Request<Body>) -> Resp {
        let resp = self.app.clone().oneshot(req).await.unwrap();
        let status = resp.status();
        let headers = resp.headers().clone();
        let bytes = axum::body::to_bytes(resp.into_body(), 1 << 22).await.unwrap();
        let body = if bytes.is_empty() {
            Value::Null
        } else {
            serde_json::from_slice(&bytes)
                .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&bytes).into()))
        };
        Resp {
            status,
            headers,
            body,
        }
    }

    async fn call(&self, method: &str, path: &str, body: Option<Value>) -> Resp {
        self.call_as(ADMIN, method, path, body).await
    }

    async fn call_as(&self, who: (&str, &str), method: &str, path: &str, body: Option<Value>) -> Resp {
        let req = Request::builder()
            .method(method)
            .uri(path)
            .header(header::AUTHORIZATION, basic(who))
            .header(header::CONTENT_TYPE, "application/json")
            .body(body.map(|b| Body::from(b.to_string())).unwrap_or_default())
            .unwrap();
        self.raw(req).await
    }

    async fn create(&self, seg: &str, body: Value) -> Value {
        let r = self
            .call("POST", &format!("/api/v1/vpn/ipsec/{seg}"), Some(body))
            .await;
        assert_eq!(r.status, StatusCode::CREATED, "{seg}: {}", r.body);
        assert!(r.headers.contains_key("x-nsx-requestid"));
        r.body
    }

    /// IKE, tunnel and DPD profiles, a service, endpoints and a session.
    async fn chain(&self) -> Value {
        let ike = self
            .create(
                "ike-profiles",
                json!({"display_name": "ike1", "encryption_algorithms": ["AES_128"],
                       "digest_algorithms": ["SHA2_256"], "ike_version": "IKE_V2",
                       "dh_groups": ["GROUP14"], "sa_life_time": 86400,
                       "tags": [{"scope": "s", "tag": "t"}]}),
            )
            .await;
        let tun = self
            .create(
                "tunnel-profiles",
                json!({"display_name": "tun1", "encryption_algorithms": ["AES_GCM_128"],
                       "digest_algorithms": ["SHA2_256"], "enable_perfect_forward_secrecy": true,
                       "dh_groups": ["GROUP14"], "sa_life_time": 3600}),
            )
            .await;
        let dpd = self
            .create(
                "dpd-profiles",
                json!({"display_name": "dpd1", "enabled": true, "dpd_probe_interval": 60}),
            )
            .await;
        let svc = self
            .create(
                "services",
                json!({"display_name": "svc1", "logical_router_id": self.gateway, "enabled": true,
                       "ike_log_level": "INFO"}),
            )
            .await;
        let lep = self
            .create(
                "local-endpoints",
                json!({"display_name": "lep1", "local_address": "172.24.4.10",
                       "ipsec_vpn_service_id": {"target_id": svc["id"]}, "local_id": "172.24.4.10"}),
            )
            .await;
        let pep = self
            .create(
                "peer-endpoints",
                json!({"display_name": "pep1", "peer_address": "192.0.2.2", "peer_id": "192.0.2.2",
                       "authentication_mode": "PSK", "dpd_profile_id": dpd["id"], "ike_profile_id": ike["id"],
                       "ipsec_tunnel_profile_id": tun["id"], "connection_initiation_mode": "INITIATOR",
                       "psk": "secret"}),
            )
            .await;
        let sess = self
            .create(
                "sessions",
                json!({"display_name": "sess1", "description": null, "local_endpoint_id": lep["id"],
                       "peer_endpoint_id": pep["id"], "enabled": true,
                       "resource_type": "PolicyBasedIPSecVPNSession",
                       "policy_rules": [{"sources": [{"subnet": "10.0.1.0/24"}],
                                         "destinations": [{"subnet": "10.0.2.0/24"}]}]}),
            )
            .await;
        json!({"ike": ike, "tun": tun, "dpd": dpd, "svc": svc, "lep": lep, "pep": pep, "sess": sess})
    }
}

fn assert_error(r: &Resp, status: StatusCode, code: i64) {
    assert_eq!(r.status, status, "{}", r.body);
    assert_eq!(r.body["error_code"], json!(code), "{}", r.body);
    for k in ["httpStatus", "module_name", "error_message"] {
        assert!(r.body.get(k).is_some(), "{k} missing: {}", r.body);
    }
}

#[tokio::test]
async fn defaults_are_there_and_protected() {
    let e = env().await;
    for (seg, name) in [
        ("ike-profiles", "nsx-default-l3vpn-ike-profile"),
        ("tunnel-profiles", "nsx-default-l3vpn-tunnel-profile"),
        ("dpd-profiles", "nsx-default-l3vpn-dpd-profile"),
    ] {
        let r = e.call("GET", &format!("/api/v1/vpn/ipsec/{seg}"), None).await;
        assert_eq!(r.status, StatusCode::OK);
        let d = &r.body["results"][0];
        assert_eq!(d["display_name"], json!(name));
        assert_eq!(d["_system_owned"], json!(true));
        assert_eq!(d["_create_user"], json!("system"));
        let id = d["id"].as_str().unwrap();
        let mut put = d.clone();
        put["description"] = json!("changed");
        let r = e
            .call("PUT", &format!("/api/v1/vpn/ipsec/{seg}/{id}"), Some(put))
            .await;
        assert_error(&r, StatusCode::BAD_REQUEST, 110_003);
        let r = e
            .call("DELETE", &format!("/api/v1/vpn/ipsec/{seg}/{id}"), None)
            .await;
        assert_error(&r, StatusCode::BAD_REQUEST, 110_003);
    }
    // The Neutron path (any application operation) can't change or delete them either.
    let w = WriteCtx::new("neutron-admin");
    let id = model::nsx::DEFAULT_IKE_PROFILE_ID;
    assert!(matches!(
        e.ops.delete::<model::IkePolicy>(&w, &Scope::All, id).await,
        Err(model::Error::SystemOwned { .. })
    ));
    assert!(matches!(
        e.ops
            .update::<model::IkePolicy>(&w, &Scope::All, Dialect::Neutron, id, Expect::UNUSED, |_| Ok(()))
            .await,
        Err(model::Error::SystemOwned { .. })
    ));
    // Ensuring them again is a no-op.
    let before = e.store.generation_current().await.unwrap();
    e.ops.ensure_system_defaults("p").await.unwrap();
    assert_eq!(e.store.generation_current().await.unwrap(), before);
    let r = e.call("GET", "/api/v1/vpn/ipsec/ike-profiles", None).await;
    let ike = &r.body["results"][0];
    assert_eq!(ike["ike_version"], json!("IKE_V2"));
    assert_eq!(ike["encryption_algorithms"], json!(["AES_128"]));
    assert_eq!(ike["digest_algorithms"], json!(["SHA2_256"]));
    assert_eq!(ike["dh_groups"], json!(["GROUP14"]));
}

#[tokio::test]
async fn full_lifecycle() {
    let e = env().await;
    let c = e.chain().await;
    let sess = &c["sess"];
    assert_eq!(sess["resource_type"], json!("PolicyBasedIPSecVPNSession"));
    assert_eq!(sess["_revision"], json!(0));
    assert_eq!(sess["ipsec_vpn_service_id"], c["svc"]["id"]);
    let rule = &sess["policy_rules"][0];
    assert_eq!(rule["action"], json!("PROTECT"));
    assert_eq!(rule["enabled"], json!(true));
    assert_eq!(rule["logged"], json!(false));
    assert!(rule["id"].as_str().is_some_and(|s| !s.is_empty()));
    assert!(c["pep"].get("psk").is_none());

    // The session is a canonical connection built from the endpoints.
    let sid = sess["id"].as_str().unwrap();
    let conn: Record<Connection> = e.store.get(&Scope::All, sid).await.unwrap();
    assert_eq!(conn.body.peer_address, "192.0.2.2");
    assert_eq!(conn.body.psk.expose(), "secret");
    assert_eq!(conn.body.ikepolicy_id, c["ike"]["id"].as_str().unwrap());
    assert_eq!(conn.body.dpd.interval, 60);

    // PUT with the current revision; then a stale one and a missing one.
    let path = format!("/api/v1/vpn/ipsec/sessions/{sid}");
    let mut body = e.call("GET", &path, None).await.body;
    body["display_name"] = json!("sess1b");
    body["enabled"] = json!(false);
    let r = e.call("PUT", &path, Some(body.clone())).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(r.body["_revision"], json!(1));
    assert_eq!(r.body["enabled"], json!(false));
    assert_eq!(r.body["policy_rules"][0]["id"], rule["id"]);
    assert!(r.headers.contains_key("x-nsx-requestid"));
    let r = e.call("PUT", &path, Some(body.clone())).await;
    assert_error(&r, StatusCode::PRECONDITION_FAILED, 206);
    assert_eq!(
        r.body["error_message"],
        json!("The object was modified by somebody else. Please retry.")
    );
    body.as_object_mut().unwrap().remove("_revision");
    let r = e.call("PUT", &path, Some(body)).await;
    assert_error(&r, StatusCode::PRECONDITION_FAILED, 206);

    // A peer endpoint change flows into the session in the same write.
    let pep_path = format!(
        "/api/v1/vpn/ipsec/peer-endpoints/{}",
        c["pep"]["id"].as_str().unwrap()
    );
    let mut pep = e.call("GET", &pep_path, None).await.body;
    assert!(pep.get("psk").is_none());
    pep["psk"] = json!("s2");
    pep["peer_address"] = json!("192.0.2.3");
    let r = e.call("PUT", &pep_path, Some(pep)).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    let conn2: Record<Connection> = e.store.get(&Scope::All, sid).await.unwrap();
    assert_eq!(conn2.body.psk.expose(), "s2");
    assert_eq!(conn2.body.peer_address, "192.0.2.3");
    // ...and its generation is that write's, so realization re-runs.
    assert_eq!(conn2.meta.generation, e.store.generation_current().await.unwrap());
    let shown = e
        .call("GET", &format!("{pep_path}?action=show-sensitive-data"), None)
        .await;
    assert_eq!(shown.body["psk"], json!("s2"));

    // So does a DPD profile change.
    let dpd_path = format!(
        "/api/v1/vpn/ipsec/dpd-profiles/{}",
        c["dpd"]["id"].as_str().unwrap()
    );
    let mut dpd = e.call("GET", &dpd_path, None).await.body;
    dpd["dpd_probe_interval"] = json!(30);
    assert_eq!(e.call("PUT", &dpd_path, Some(dpd)).await.status, StatusCode::OK);
    let conn3: Record<Connection> = e.store.get(&Scope::All, sid).await.unwrap();
    assert_eq!(conn3.body.dpd.interval, 30);

    // In use: the profiles, endpoints and service can't go before the session.
    for (seg, key) in [
        ("ike-profiles", "ike"),
        ("tunnel-profiles", "tun"),
        ("dpd-profiles", "dpd"),
        ("services", "svc"),
        ("local-endpoints", "lep"),
        ("peer-endpoints", "pep"),
    ] {
        let r = e
            .call(
                "DELETE",
                &format!("/api/v1/vpn/ipsec/{seg}/{}", c[key]["id"].as_str().unwrap()),
                None,
            )
            .await;
        assert_error(&r, StatusCode::BAD_REQUEST, 500_030);
    }
    for (seg, key) in [
        ("sessions", "sess"),
        ("peer-endpoints", "pep"),
        ("local-endpoints", "lep"),
        ("services", "svc"),
        ("dpd-profiles", "dpd"),
        ("tunnel-profiles", "tun"),
        ("ike-profiles", "ike"),
    ] {
        let r = e
            .call(
                "DELETE",
                &format!("/api/v1/vpn/ipsec/{seg}/{}", c[key]["id"].as_str().unwrap()),
                None,
            )
            .await;
        assert_eq!(r.status, StatusCode::OK, "{seg}: {}", r.body);
        assert!(r.headers.contains_key("x-nsx-requestid"));
    }
    let r = e.call("GET", &path, None).await;
    assert_error(&r, StatusCode::NOT_FOUND, 600);
    assert_eq!(
        r.body["error_message"],
        json!(format!(
            "The requested object : {sid} could not be found. Object identifiers are case sensitive."
        ))
    );
    let r = e.call("GET", "/api/v1/vpn/ipsec/sessions", None).await;
    assert_eq!(r.body["results"], json!([]));
    assert_eq!(r.body["result_count"], json!(0));
}

#[tokio::test]
async fn references_and_rules() {
    let e = env().await;
    // Unknown logical router: 404, naming the missing object.
    let r = e
        .call(
            "POST",
            "/api/v1/vpn/ipsec/services",
            Some(json!({"logical_router_id": "nope"})),
        )
        .await;
    assert_error(&r, StatusCode::NOT_FOUND, 600);
    assert!(
        r.body["error_message"]
            .as_str()
            .unwrap()
            .contains("LogicalRouter/nope")
    );
    // GCM for IKE needs IKE_V2.
    let r = e
        .call(
            "POST",
            "/api/v1/vpn/ipsec/ike-profiles",
            Some(json!({"encryption_algorithms": ["AES_GCM_128"], "ike_version": "IKE_V1"})),
        )
        .await;
    assert_error(&r, StatusCode::BAD_REQUEST, 110_001);
    // Lifetime out of NSX's range.
    let r = e
        .call(
            "POST",
            "/api/v1/vpn/ipsec/tunnel-profiles",
            Some(json!({"sa_life_time": 60})),
        )
        .await;
    assert_error(&r, StatusCode::BAD_REQUEST, 110_001);
    // Mixed IP versions in the rules of a session (model rule).
    let c = e.chain().await;
    let r = e
        .call(
            "POST",
            "/api/v1/vpn/ipsec/sessions",
            Some(json!({"resource_type": "PolicyBasedIPSecVPNSession",
                        "local_endpoint_id": c["lep"]["id"], "peer_endpoint_id": c["pep"]["id"],
                        "policy_rules": [{"sources": [{"subnet": "10.0.1.0/24"}],
                                          "destinations": [{"subnet": "2001:db8::/64"}]}]})),
        )
        .await;
    assert_error(&r, StatusCode::BAD_REQUEST, 110_001);
    // A route-based session.
    let r = e
        .call(
            "POST",
            "/api/v1/vpn/ipsec/sessions",
            Some(json!({"resource_type": "RouteBasedIPSecVPNSession",
                        "local_endpoint_id": c["lep"]["id"], "peer_endpoint_id": c["pep"]["id"],
                        "tunnel_ports": [{"ip_subnets": [{"ip_addresses": ["169.254.10.1"], "prefix_length": 30}]}]})),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    assert_eq!(r.body["resource_type"], json!("RouteBasedIPSecVPNSession"));
    assert!(r.body.get("policy_rules").is_none());
    // Filters.
    let r = e
        .call(
            "GET",
            "/api/v1/vpn/ipsec/sessions?session_type=RouteBasedIPSecVPNSession",
            None,
        )
        .await;
    assert_eq!(r.body["result_count"], json!(1));
    let r = e
        .call(
            "GET",
            &format!("/api/v1/vpn/ipsec/sessions?logical_router_id={}", e.gateway),
            None,
        )
        .await;
    assert_eq!(r.body["result_count"], json!(2));
    let r = e
        .call(
            "GET",
            "/api/v1/vpn/ipsec/local-endpoints?logical_router_id=other",
            None,
        )
        .await;
    assert_eq!(r.body["result_count"], json!(0));
}

#[tokio::test]
async fn lists_page_sort_and_project() {
    let e = env().await;
    for i in 0..3 {
        e.create(
            "dpd-profiles",
            json!({"display_name": format!("d{i}"), "dpd_probe_interval": 10 + i}),
        )
        .await;
    }
    let mut seen = Vec::new();
    let mut url = "/api/v1/vpn/ipsec/dpd-profiles?page_size=2".to_string();
    loop {
        let r = e.call("GET", &url, None).await;
        assert_eq!(r.body["result_count"], json!(4));
        for o in r.body["results"].as_array().unwrap() {
            seen.push(o["display_name"].as_str().unwrap().to_string());
        }
        match r.body.get("cursor").and_then(Value::as_str) {
            Some(c) => url = format!("/api/v1/vpn/ipsec/dpd-profiles?page_size=2&cursor={c}"),
            None => break,
        }
    }
    assert_eq!(seen.len(), 4);
    let r = e
        .call(
            "GET",
            "/api/v1/vpn/ipsec/dpd-profiles?sort_by=dpd_probe_interval&sort_ascending=false&included_fields=id,dpd_probe_interval",
            None,
        )
        .await;
    let first = &r.body["results"][0];
    assert_eq!(first["dpd_probe_interval"], json!(60));
    assert_eq!(first.as_object().unwrap().len(), 2);
    assert_eq!(r.body["sort_by"], json!("dpd_probe_interval"));
    assert_eq!(r.body["sort_ascending"], json!(false));
    let r = e
        .call("GET", "/api/v1/vpn/ipsec/dpd-profiles?page_size=x", None)
        .await;
    assert_error(&r, StatusCode::BAD_REQUEST, 255);
}

/// Walks `url` page by page (`page_size=2`), checking `result_count` on each
/// page; the ids in the order shown.
async fn walk(e: &Env, url: &str, total: usize) -> Vec<String> {
    let mut ids = Vec::new();
    let mut next = format!("{url}&page_size=2");
    loop {
        let r = e.call("GET", &next, None).await;
        assert_eq!(r.status, StatusCode::OK, "{next}: {}", r.body);
        assert_eq!(r.body["result_count"], json!(total), "{next}");
        for o in r.body["results"].as_array().unwrap() {
            ids.push(o["id"].as_str().unwrap().to_string());
        }
        match r.body.get("cursor").and_then(Value::as_str) {
            Some(c) => {
                assert!(!c.starts_with("0000"), "{c}");
                next = format!("{url}&page_size=2&cursor={c}");
            }
            None => return ids,
        }
    }
}

/// Lists read in SQL (sort on `id` / `display_name` / `_create_time`,
/// reference filters) give the order the in-memory path's stable sort gives,
/// page by page; a walk survives inserts and a deleted cursor row.
#[tokio::test]
async fn sql_pages_agree_with_a_stable_sort() {
    let e = env().await;
    for name in ["b", "a", "c", "a", "b", "a"] {
        e.create(
            "dpd-profiles",
            json!({"display_name": name, "dpd_probe_interval": 10}),
        )
        .await;
    }
    let all = e.call("GET", "/api/v1/vpn/ipsec/dpd-profiles", None).await.body["results"]
        .as_array()
        .unwrap()
        .clone();
    let n = all.len();
    let key = |o: &Value, k: &str| o[k].to_string();
    for (sort, asc) in [
        ("display_name", true),
        ("display_name", false),
        ("id", true),
        ("id", false),
        ("_create_time", false),
    ] {
        let mut want = all.clone();
        want.sort_by(|a, b| {
            let o = if sort == "_create_time" {
                a[sort].as_i64().cmp(&b[sort].as_i64())
            } else {
                key(a, sort).cmp(&key(b, sort))
            };
            if asc { o } else { o.reverse() }
        });
        let want: Vec<String> = want
            .iter()
            .map(|o| o["id"].as_str().unwrap().to_string())
            .collect();
        let url = format!("/api/v1/vpn/ipsec/dpd-profiles?sort_by={sort}&sort_ascending={asc}");
        assert_eq!(walk(&e, &url, n).await, want, "{url}");
    }
    let mut back: Vec<String> = all
        .iter()
        .map(|o| o["id"].as_str().unwrap().to_string())
        .collect();
    back.reverse();
    assert_eq!(
        walk(&e, "/api/v1/vpn/ipsec/dpd-profiles?sort_ascending=false", n).await,
        back
    );

    // A row inserted behind the cursor doesn't shift the walk; a deleted cursor
    // row falls back to the offset.
    let r = e
        .call(
            "GET",
            "/api/v1/vpn/ipsec/dpd-profiles?sort_by=display_name&page_size=2",
            None,
        )
        .await;
    let cursor = r.body["cursor"].as_str().unwrap().to_string();
    e.create(
        "dpd-profiles",
        json!({"display_name": "0", "dpd_probe_interval": 10}),
    )
    .await;
    let r = e
        .call(
            "GET",
            &format!("/api/v1/vpn/ipsec/dpd-profiles?sort_by=display_name&page_size=2&cursor={cursor}"),
            None,
        )
        .await;
    let names: Vec<&str> = r.body["results"]
        .as_array()
        .unwrap()
        .iter()
        .map(|o| o["display_name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["a", "b"], "{}", r.body);
    let gone = cursor.split_once('-').unwrap().1;
    let r = e
        .call("DELETE", &format!("/api/v1/vpn/ipsec/dpd-profiles/{gone}"), None)
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    let r = e
        .call(
            "GET",
            &format!("/api/v1/vpn/ipsec/dpd-profiles?sort_by=display_name&page_size=2&cursor={cursor}"),
            None,
        )
        .await;
    assert_eq!(r.body["results"].as_array().unwrap().len(), 2, "{}", r.body);

    // Reference filters, direct and through the service.
    let c = e.chain().await;
    for (url, want) in [
        (
            format!("/api/v1/vpn/ipsec/services?logical_router_id={}", e.gateway),
            &c["svc"],
        ),
        (
            format!(
                "/api/v1/vpn/ipsec/local-endpoints?logical_router_id={}",
                e.gateway
            ),
            &c["lep"],
        ),
        (
            format!("/api/v1/vpn/ipsec/sessions?logical_router_id={}", e.gateway),
            &c["sess"],
        ),
        (
            format!(
                "/api/v1/vpn/ipsec/sessions?ipsec_vpn_service_id={}",
                c["svc"]["id"].as_str().unwrap()
            ),
            &c["sess"],
        ),
        (
            format!(
                "/api/v1/vpn/ipsec/local-endpoints?ipsec_vpn_service_id={}",
                c["svc"]["id"].as_str().unwrap()
            ),
            &c["lep"],
        ),
    ] {
        let ids = walk(&e, &url, 1).await;
        assert_eq!(ids, [want["id"].as_str().unwrap()], "{url}");
    }
    // An id of the wrong kind matches nothing.
    let url = format!(
        "/api/v1/vpn/ipsec/sessions?logical_router_id={}",
        c["svc"]["id"].as_str().unwrap()
    );
    assert!(walk(&e, &url, 0).await.is_empty());
}

#[tokio::test]
async fn bad_input_is_400_never_500() {
    let e = env().await;
    for body in [
        json!({"encryption_algorithms": "AES_128"}),
        json!({"encryption_algorithms": ["DES"]}),
        json!({"sa_life_time": "x"}),
        json!({"sa_life_time": 1.5}),
        json!({"display_name": 5}),
        json!({"tags": [{"tag": 5}]}),
        json!({"resource_type": "IPSecVPNService"}),
        json!([]),
    ] {
        let r = e
            .call("POST", "/api/v1/vpn/ipsec/ike-profiles", Some(body.clone()))
            .await;
        assert_error(&r, StatusCode::BAD_REQUEST, 255);
    }
    let r = e
        .raw(
            Request::builder()
                .method("POST")
                .uri("/api/v1/vpn/ipsec/ike-profiles")
                .header(header::AUTHORIZATION, basic(ADMIN))
                .body(Body::from("{not json"))
                .unwrap(),
        )
        .await;
    assert_error(&r, StatusCode::BAD_REQUEST, 255);
    let big = format!("{{\"display_name\": \"{}\"}}", "x".repeat(1 << 21));
    let r = e
        .raw(
            Request::builder()
                .method("POST")
                .uri("/api/v1/vpn/ipsec/ike-profiles")
                .header(header::AUTHORIZATION, basic(ADMIN))
                .body(Body::from(big))
                .unwrap(),
        )
        .await;
    assert_eq!(r.status, StatusCode::PAYLOAD_TOO_LARGE);
    let r = e
        .call(
            "POST",
            "/api/v1/vpn/ipsec/tunnel-profiles",
            Some(json!({"digest_algorithms": ["GMAC_128"]})),
        )
        .await;
    assert_error(&r, StatusCode::BAD_REQUEST, 110_002);
    let r = e
        .call(
            "POST",
            "/api/v1/vpn/ipsec/peer-endpoints",
            Some(json!({"peer_address": "2.2.2.2", "peer_id": "x"})),
        )
        .await;
    assert_error(&r, StatusCode::BAD_REQUEST, 255);
    let r = e.call("GET", "/api/v1/vpn/ipsec/nothing-here", None).await;
    assert_error(&r, StatusCode::NOT_FOUND, 600);
    let r = e
        .call(
            "PUT",
            "/api/v1/vpn/ipsec/ike-profiles/missing",
            Some(json!({"_revision": 0})),
        )
        .await;
    assert_error(&r, StatusCode::NOT_FOUND, 600);
}

#[tokio::test]
async fn authentication() {
    let e = env().await;
    let r = e
        .raw(
            Request::builder()
                .uri("/api/v1/vpn/ipsec/ike-profiles")
                .body(Body::empty())
                .unwrap(),
        )
        .await;
    assert_error(&r, StatusCode::FORBIDDEN, 403);
    let r = e
        .call_as(("admin", "wrong"), "GET", "/api/v1/vpn/ipsec/ike-profiles", None)
        .await;
    assert_error(&r, StatusCode::FORBIDDEN, 403);
    let r = e
        .call_as(MEMBER, "GET", "/api/v1/vpn/ipsec/ike-profiles", None)
        .await;
    assert_error(&r, StatusCode::FORBIDDEN, 401);
    // Health needs nothing; node needs an admin.
    let r = e
        .raw(
            Request::builder()
                .uri("/api/v1/reverse-proxy/node/health")
                .body(Body::empty())
                .unwrap(),
        )
        .await;
    assert_eq!(r.body, json!({"healthy": true}));
    let r = e.call("GET", "/api/v1/node", None).await;
    assert_eq!(r.body["node_version"], json!("3.2.0.0.0"));

    // Session: cookie + XSRF.
    let r = e
        .raw(
            Request::builder()
                .method("POST")
                .uri("/api/session/create")
                .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
                .body(Body::from("j_username=admin&j_password=admin-pw"))
                .unwrap(),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK);
    let cookie = r.headers[header::SET_COOKIE].to_str().unwrap().to_string();
    assert!(cookie.starts_with("JSESSIONID=") && cookie.contains("Path=/") && cookie.contains("HttpOnly"));
    let jsession = cookie.split(';').next().unwrap().to_string();
    let xsrf = r.headers["x-xsrf-token"].to_str().unwrap().to_string();
    let with_session = |method: &str, xsrf: Option<&str>| {
        let mut b = Request::builder()
            .method(method)
            .uri("/api/v1/vpn/ipsec/dpd-profiles")
            .header(header::COOKIE, format!("{jsession};"));
        if let Some(x) = xsrf {
            b = b.header("X-XSRF-TOKEN", x);
        }
        b.body(Body::from("{}")).unwrap()
    };
    assert_eq!(e.raw(with_session("GET", None)).await.status, StatusCode::OK);
    assert_eq!(
        e.raw(with_session("POST", Some(&xsrf))).await.status,
        StatusCode::CREATED
    );
    assert_error(
        &e.raw(with_session("POST", Some("forged"))).await,
        StatusCode::FORBIDDEN,
        98,
    );
    let r = e
        .raw(
            Request::builder()
                .method("POST")
                .uri("/api/session/create")
                .body(Body::from("j_username=admin&j_password=nope"))
                .unwrap(),
        )
        .await;
    assert_error(&r, StatusCode::FORBIDDEN, 403);
}

/// The health probe answers healthy only while the store answers reads.
#[tokio::test]
async fn health_follows_the_store() {
    use sqlx::Connection as _;
    let e = env().await;
    let probe = || {
        Request::builder()
            .uri("/api/v1/reverse-proxy/node/health")
            .body(Body::empty())
            .unwrap()
    };
    let r = e.raw(probe()).await;
    assert_eq!((r.status, r.body), (StatusCode::OK, json!({"healthy": true})));
    // Break the database under the running store, from another connection.
    sqlx::any::install_default_drivers();
    let url = match &e.db.db {
        store::Database::Sqlite(path) => format!("sqlite://{}", path.display()),
        store::Database::Postgres(url) => url.clone(),
    };
    let mut other = sqlx::AnyConnection::connect(&url).await.unwrap();
    sqlx::query("ALTER TABLE counters RENAME TO counters_gone")
        .execute(&mut other)
        .await
        .unwrap();
    let r = e.raw(probe()).await;
    assert_eq!(
        (r.status, r.body),
        (StatusCode::SERVICE_UNAVAILABLE, json!({"healthy": false}))
    );
}

/// A connection made through Neutron, read through NSX: its session names the
/// endpoint views derived from it (its own id), those read as a local and a
/// peer endpoint, and a PUT of what GET showed changes only what it says.
#[tokio::test]
async fn neutron_connection_names_readable_endpoints() {
    let e = env().await;
    // One request id per write.
    let w = || WriteCtx::new("test");
    let meta = |name: &str| NewMeta {
        id: None,
        project_id: "p".into(),
        name: name.into(),
        description: String::new(),
    };
    let sub = e
        .ops
        .subnet_create(&w(), "sub1", &e.gateway, "10.1.0.0/24".parse().unwrap())
        .await
        .unwrap()
        .record;
    let ike = e
        .ops
        .create(
            &w(),
            &Scope::All,
            Dialect::Neutron,
            meta("ike"),
            model::IkePolicy::default(),
        )
        .await
        .unwrap()
        .record;
    let ipsec = e
        .ops
        .create(
            &w(),
            &Scope::All,
            Dialect::Neutron,
            meta("ipsec"),
            model::IpsecPolicy::default(),
        )
        .await
        .unwrap()
        .record;
    let svc = e
        .ops
        .create(
            &w(),
            &Scope::All,
            Dialect::Neutron,
            meta("svc"),
            model::VpnService {
                router_id: e.gateway.clone(),
                subnet_id: Some(sub.meta.id.clone()),
                ..model::VpnService::default()
            },
        )
        .await
        .unwrap()
        .record;
    let conn = e
        .ops
        .create(
            &w(),
            &Scope::All,
            Dialect::Neutron,
            meta("conn"),
            Connection {
                vpnservice_id: svc.meta.id.clone(),
                ikepolicy_id: ike.meta.id.clone(),
                ipsecpolicy_id: ipsec.meta.id.clone(),
                peer_address: "192.0.2.9".into(),
                peer_id: "peer9".into(),
                psk: model::Psk("neutron-key".into()),
                peer_cidrs: vec!["10.9.0.0/24".parse().unwrap()],
                ..Connection::default()
            },
        )
        .await
        .unwrap()
        .record;
    let id = conn.meta.id.as_str();
    let path = format!("/api/v1/vpn/ipsec/sessions/{id}");
    let sess = e.call("GET", &path, None).await.body;
    assert_eq!(sess["local_endpoint_id"], json!(id));
    assert_eq!(sess["peer_endpoint_id"], json!(id));

    let lep = e
        .call("GET", &format!("/api/v1/vpn/ipsec/local-endpoints/{id}"), None)
        .await;
    assert_eq!(lep.status, StatusCode::OK, "{}", lep.body);
    assert_eq!(lep.body["local_address"], json!("172.24.4.10"));
    assert_eq!(lep.body["local_id"], json!("172.24.4.10"));
    assert_eq!(lep.body["ipsec_vpn_service_id"]["target_id"], json!(svc.meta.id));
    let pep = e
        .call("GET", &format!("/api/v1/vpn/ipsec/peer-endpoints/{id}"), None)
        .await;
    assert_eq!(pep.status, StatusCode::OK, "{}", pep.body);
    assert_eq!(pep.body["peer_address"], json!("192.0.2.9"));
    assert_eq!(pep.body["ike_profile_id"], json!(ike.meta.id));
    assert!(pep.body.get("dpd_profile_id").is_none() && pep.body.get("psk").is_none());
    let sensitive = e
        .call(
            "GET",
            &format!("/api/v1/vpn/ipsec/peer-endpoints/{id}?action=show-sensitive-data"),
            None,
        )
        .await;
    assert_eq!(sensitive.body["psk"], json!("neutron-key"));
    // Views, not objects: not listed, and not writable through NSX.
    let listed = e.call("GET", "/api/v1/vpn/ipsec/peer-endpoints", None).await.body;
    assert!(
        !listed["results"]
            .as_array()
            .unwrap()
            .iter()
            .any(|p| p["id"] == json!(id))
    );
    let r = e
        .call("DELETE", &format!("/api/v1/vpn/ipsec/peer-endpoints/{id}"), None)
        .await;
    assert_error(&r, StatusCode::NOT_FOUND, 600);
    // An id of another kind is still unknown here.
    let r = e
        .call(
            "GET",
            &format!("/api/v1/vpn/ipsec/local-endpoints/{}", svc.meta.id),
            None,
        )
        .await;
    assert_error(&r, StatusCode::NOT_FOUND, 600);

    // The echo of a GET is accepted; naming other endpoints is refused.
    let mut body = sess.clone();
    body["display_name"] = json!("renamed");
    let r = e.call("PUT", &path, Some(body)).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(r.body["local_endpoint_id"], json!(id));
    let after: Record<Connection> = e.store.get(&Scope::All, id).await.unwrap();
    assert_eq!(after.meta.name, "renamed");
    assert!(!after.body.is_endpoint_form());
    let mut body = r.body.clone();
    body["local_endpoint_id"] = json!("other");
    assert_eq!(
        e.call("PUT", &path, Some(body)).await.status,
        StatusCode::BAD_REQUEST
    );
}
