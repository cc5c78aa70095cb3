//! Password authentication through a real store: the verified cache, lock-out,
//! throttling by address and the bounded hashing pool as callers see them, and
//! Keystone's token-introspection policy over HTTP.

use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::extract::ConnectInfo;
use axum::http::{Method, Request, StatusCode};
use identity::{AuthError, AuthLimits, Identity, IdentityConfig, Peer};
use serde_json::{Value, json};
use store::{Cipher, Store};
use tower::ServiceExt;

struct Env {
    _db: store::testing::TestDb,
    store: Store,
    id: Identity,
    /// user name → id
    users: std::collections::HashMap<String, String>,
}

async fn env(limits: AuthLimits) -> Env {
    let db = store::testing::fresh().await;
    let store = Store::open(db.db.clone(), Cipher::from_key(&[7; 32]))
        .await
        .unwrap();
    let admin_p = store.project_create("admin", "").await.unwrap();
    let demo_p = store.project_create("demo", "").await.unwrap();
    let mut users = std::collections::HashMap::new();
    for (name, project, role) in [
        ("admin", &admin_p, "admin"),
        ("demo", &demo_p, "member"),
        ("other", &demo_p, "member"),
        ("svc", &demo_p, "service"),
    ] {
        let u = store
            .user_create(name, &identity::hash_password(&format!("{name}-pw")).unwrap())
            .await
            .unwrap();
        store.role_grant(&u.id, &project.id, role).await.unwrap();
        users.insert(name.to_string(), u.id);
    }
    let id = Identity::new(
        store.clone(),
        IdentityConfig {
            limits,
            ..IdentityConfig::default()
        },
    );
    Env {
        _db: db,
        store,
        id,
        users,
    }
}

fn peer(ip: &str) -> Peer {
    Peer(Some(ip.parse().unwrap()))
}

async fn basic(e: &Env, user: &str, pw: &str, p: Peer) -> Result<String, AuthError> {
    e.id.basic(user, pw, None, p).await.map(|c| c.user_id)
}

#[tokio::test]
async fn a_cached_verification_skips_argon2() {
    let e = env(AuthLimits::default()).await;
    for _ in 0..5 {
        basic(&e, "admin", "admin-pw", Peer(None)).await.unwrap();
    }
    assert_eq!(e.id.hash_stats().total(), 1, "one hash for five basic-auth calls");
    // a wrong password is not a hit
    assert!(matches!(
        basic(&e, "admin", "admin-pwX", Peer(None)).await,
        Err(AuthError::Unauthenticated)
    ));
    assert_eq!(e.id.hash_stats().total(), 2);
}

#[tokio::test]
async fn a_cache_hit_still_honours_a_disabled_user_and_a_changed_password() {
    let e = env(AuthLimits::default()).await;
    let uid = &e.users["demo"];
    basic(&e, "demo", "demo-pw", Peer(None)).await.unwrap();
    e.store.user_set_enabled(uid, false).await.unwrap();
    assert!(matches!(
        basic(&e, "demo", "demo-pw", Peer(None)).await,
        Err(AuthError::Unauthenticated)
    ));
    e.store.user_set_enabled(uid, true).await.unwrap();
    basic(&e, "demo", "demo-pw", Peer(None)).await.unwrap();
    let hashes = e.id.hash_stats().total();
    e.store
        .user_set_password(uid, &identity::hash_password("new-pw").unwrap())
        .await
        .unwrap();
    assert!(matches!(
        basic(&e, "demo", "demo-pw", Peer(None)).await,
        Err(AuthError::Unauthenticated)
    ));
    assert_eq!(
        e.id.hash_stats().total(),
        hashes + 1,
        "the old entry is not trusted"
    );
    basic(&e, "demo", "new-pw", Peer(None)).await.unwrap();
}

#[tokio::test]
async fn lockout_refuses_even_the_right_password_without_hashing() {
    let e = env(AuthLimits {
        lockout_failure_attempts: 3,
        lockout_duration: Duration::from_millis(400),
        ..AuthLimits::default()
    })
    .await;
    let uid = e.users["demo"].clone();
    // two failures, a success: the count starts again
    for _ in 0..2 {
        assert!(basic(&e, "demo", "bad", Peer(None)).await.is_err());
    }
    basic(&e, "demo", "demo-pw", Peer(None)).await.unwrap();
    for _ in 0..2 {
        assert!(basic(&e, "demo", "bad", Peer(None)).await.is_err());
    }
    basic(&e, "demo", "demo-pw", Peer(None)).await.unwrap();
    // three in a row lock it, by name and by id, even with the right (cached) password
    for _ in 0..3 {
        assert!(matches!(
            basic(&e, "demo", "bad", Peer(None)).await,
            Err(AuthError::Unauthenticated)
        ));
    }
    let hashes = e.id.hash_stats().total();
    for who in ["demo", uid.as_str()] {
        match basic(&e, who, "demo-pw", Peer(None)).await {
            Err(AuthError::Locked { user_id }) => assert_eq!(user_id, uid),
            other => panic!("expected Locked, got {other:?}"),
        }
    }
    assert!(matches!(
        basic(&e, "demo", "bad", Peer(None)).await,
        Err(AuthError::Locked { .. })
    ));
    assert_eq!(e.id.hash_stats().total(), hashes, "no hashing while locked");
    // other users are not affected
    basic(&e, "other", "other-pw", Peer(None)).await.unwrap();
    // the lock ends after the duration
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(basic(&e, "demo", "demo-pw", Peer(None)).await.unwrap(), uid);
}

#[tokio::test]
async fn throttling_is_per_address_and_skips_hashing() {
    let e = env(AuthLimits {
        throttle_failures: 3,
        throttle_window: Duration::from_millis(500),
        ..AuthLimits::default()
    })
    .await;
    let a = peer("192.0.2.7");
    // unknown users count too (they cost a dummy hash)
    assert!(basic(&e, "nobody", "x", a).await.is_err());
    assert!(basic(&e, "demo", "bad", a).await.is_err());
    assert!(basic(&e, "other", "bad", a).await.is_err());
    let hashes = e.id.hash_stats().total();
    assert_eq!(hashes, 3, "the unknown user went through the pool");
    match basic(&e, "admin", "admin-pw", a).await {
        Err(AuthError::Throttled { retry_after }) => assert!(retry_after <= Duration::from_millis(500)),
        other => panic!("expected Throttled, got {other:?}"),
    }
    assert_eq!(e.id.hash_stats().total(), hashes);
    basic(&e, "admin", "admin-pw", peer("192.0.2.8")).await.unwrap();
    basic(&e, "admin", "admin-pw", Peer(None)).await.unwrap();
    tokio::time::sleep(Duration::from_millis(600)).await;
    basic(&e, "admin", "admin-pw", a).await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn parallel_wrong_passwords_never_hash_more_than_the_permits() {
    let e = env(AuthLimits {
        hash_permits: 2,
        hash_wait: Duration::from_secs(60),
        lockout_failure_attempts: 0,
        ..AuthLimits::default()
    })
    .await;
    let tasks: Vec<_> = (0..10)
        .map(|i| {
            let id = e.id.clone();
            let user = if i % 2 == 0 { "demo" } else { "no-such-user" };
            tokio::spawn(async move { id.basic(user, &format!("bad{i}"), None, Peer(None)).await })
        })
        .collect();
    for t in tasks {
        assert!(matches!(t.await.unwrap(), Err(AuthError::Unauthenticated)));
    }
    assert_eq!(e.id.hash_stats().total(), 10);
    assert_eq!(e.id.hash_stats().max_in_flight(), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_saturated_pool_answers_busy() {
    let e = env(AuthLimits {
        hash_permits: 1,
        hash_wait: Duration::from_millis(1),
        lockout_failure_attempts: 0,
        ..AuthLimits::default()
    })
    .await;
    let tasks: Vec<_> = (0..8)
        .map(|i| {
            let id = e.id.clone();
            tokio::spawn(async move { id.basic("demo", &format!("bad{i}"), None, Peer(None)).await })
        })
        .collect();
    let mut busy = 0;
    for t in tasks {
        match t.await.unwrap() {
            Err(AuthError::Busy { retry_after }) => {
                busy += 1;
                assert!(retry_after >= Duration::from_secs(1));
            }
            Err(AuthError::Unauthenticated) => {}
            other => panic!("unexpected {other:?}"),
        }
    }
    assert!(busy >= 1);
}

// ---------------------------------------------------------------- HTTP

async fn call(app: &Router, req: Request<Body>) -> (StatusCode, axum::http::HeaderMap, Value) {
    let resp = app.clone().oneshot(req).await.unwrap();
    let status = resp.status();
    let headers = resp.headers().clone();
    let bytes = axum::body::to_bytes(resp.into_body(), 1 << 20).await.unwrap();
    let body = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
    (status, headers, body)
}

fn password_body(user: &str, pw: &str) -> String {
    json!({"auth": {"identity": {"methods": ["password"],
        "password": {"user": {"name": user, "password": pw, "domain": {"name": "Default"}}}}}})
    .to_string()
}

fn login_req(user: &str, pw: &str, from: Option<&str>) -> Request<Body> {
    let mut req = Request::post("/v3/auth/tokens")
        .header("content-type", "application/json")
        .body(Body::from(password_body(user, pw)))
        .unwrap();
    if let Some(ip) = from {
        let addr = SocketAddr::new(ip.parse::<IpAddr>().unwrap(), 40000);
        req.extensions_mut().insert(ConnectInfo(addr));
    }
    req
}

async fn token(app: &Router, user: &str) -> String {
    let (s, h, b) = call(app, login_req(user, &format!("{user}-pw"), None)).await;
    assert_eq!(s, StatusCode::CREATED, "{b}");
    h["x-subject-token"].to_str().unwrap().to_string()
}

fn introspect(method: Method, caller: &str, subject: &str) -> Request<Body> {
    Request::builder()
        .method(method)
        .uri("/v3/auth/tokens")
        .header("x-auth-token", caller)
        .header("x-subject-token", subject)
        .body(Body::empty())
        .unwrap()
}

#[tokio::test]
async fn only_admin_owner_or_service_may_introspect_a_token() {
    let e = env(AuthLimits::default()).await;
    let app: Router = identity::keystone::router().with_state(e.id.clone());
    let demo = token(&app, "demo").await;
    let other = token(&app, "other").await;
    let admin = token(&app, "admin").await;
    let svc = token(&app, "svc").await;

    for (method, policy) in [
        (Method::GET, "identity:validate_token"),
        (Method::HEAD, "identity:check_token"),
        (Method::DELETE, "identity:revoke_token"),
    ] {
        let (s, _, b) = call(&app, introspect(method.clone(), &other, &demo)).await;
        assert_eq!(s, StatusCode::FORBIDDEN, "{method} of another user's token");
        if method != Method::HEAD {
            assert_eq!(
                b,
                json!({"error": {"code": 403, "title": "Forbidden",
                    "message": format!("You are not authorized to perform the requested action: {policy}.")}})
            );
        }
        // an invalid subject is 404 whoever asks
        let (s, _, _) = call(&app, introspect(method, &other, "no-such-token")).await;
        assert_eq!(s, StatusCode::NOT_FOUND);
    }
    // the token survived the refused DELETE
    assert!(e.id.validate(&demo).await.is_ok());

    // the owner and an admin may
    let (s, h, b) = call(&app, introspect(Method::GET, &demo, &demo)).await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(h["x-subject-token"], demo.as_str());
    assert_eq!(b["token"]["user"]["name"], "demo");
    let (s, _, b) = call(&app, introspect(Method::GET, &admin, &demo)).await;
    assert_eq!((s, &b["token"]["user"]["name"]), (StatusCode::OK, &json!("demo")));
    let (s, _, _) = call(&app, introspect(Method::HEAD, &admin, &demo)).await;
    assert_eq!(s, StatusCode::OK);
    // a service may validate, not revoke
    let (s, _, _) = call(&app, introspect(Method::GET, &svc, &demo)).await;
    assert_eq!(s, StatusCode::OK);
    let (s, _, _) = call(&app, introspect(Method::DELETE, &svc, &demo)).await;
    assert_eq!(s, StatusCode::FORBIDDEN);
    // the owner may revoke its own token
    let (s, _, _) = call(&app, introspect(Method::DELETE, &demo, &demo)).await;
    assert_eq!(s, StatusCode::NO_CONTENT);
    assert!(e.id.validate(&demo).await.is_err());
    let (s, _, _) = call(&app, introspect(Method::DELETE, &admin, &other)).await;
    assert_eq!(s, StatusCode::NO_CONTENT);
}

#[tokio::test]
async fn keystone_answers_locked_and_throttled_in_its_envelope() {
    let e = env(AuthLimits {
        lockout_failure_attempts: 2,
        throttle_failures: 4,
        ..AuthLimits::default()
    })
    .await;
    let app: Router = identity::keystone::router().with_state(e.id.clone());
    for _ in 0..2 {
        let (s, _, _) = call(&app, login_req("demo", "bad", Some("198.51.100.1"))).await;
        assert_eq!(s, StatusCode::UNAUTHORIZED);
    }
    let (s, h, b) = call(&app, login_req("demo", "demo-pw", Some("198.51.100.1"))).await;
    assert_eq!(s, StatusCode::UNAUTHORIZED);
    assert_eq!(
        b,
        json!({"error": {"code": 401, "title": "Unauthorized",
            "message": format!("The account is locked for user: {}.", e.users["demo"])}})
    );
    assert!(h.contains_key("www-authenticate"));
    // two more failures from the address (other users) reach the throttle
    for _ in 0..2 {
        let (s, _, _) = call(&app, login_req("other", "bad", Some("198.51.100.1"))).await;
        assert_eq!(s, StatusCode::UNAUTHORIZED);
    }
    let (s, h, b) = call(&app, login_req("admin", "admin-pw", Some("198.51.100.1"))).await;
    assert_eq!(s, StatusCode::TOO_MANY_REQUESTS, "{b}");
    assert_eq!(b["error"]["code"], 429);
    assert_eq!(b["error"]["title"], "Too Many Requests");
    let retry: u64 = h["retry-after"].to_str().unwrap().parse().unwrap();
    assert!((1..=60).contains(&retry));
    // another address, or none, is fine
    let (s, _, _) = call(&app, login_req("admin", "admin-pw", Some("198.51.100.2"))).await;
    assert_eq!(s, StatusCode::CREATED);
    let (s, _, _) = call(&app, login_req("admin", "admin-pw", None)).await;
    assert_eq!(s, StatusCode::CREATED);
}

// ------------------------------------------------------ the admin subset

fn admin_req(method: Method, uri: &str, token: &str, body: Option<Value>) -> Request<Body> {
    let b = Request::builder()
        .method(method)
        .uri(uri)
        .header("x-auth-token", token)
        .header("content-type", "application/json");
    match body {
        Some(v) => b.body(Body::from(v.to_string())).unwrap(),
        None => b.body(Body::empty()).unwrap(),
    }
}

#[tokio::test]
async fn the_admin_subset_answers_in_keystones_words_and_revokes_at_once() {
    let e = env(AuthLimits::default()).await;
    let app: Router = identity::keystone::router().with_state(e.id.clone());
    let admin = token(&app, "admin").await;
    let demo = token(&app, "demo").await;

    // Create, duplicate, unknown, bad body.
    let (s, _, b) = call(
        &app,
        admin_req(
            Method::POST,
            "/v3/projects",
            &admin,
            Some(json!({"project": {"name": "p1"}})),
        ),
    )
    .await;
    assert_eq!(s, StatusCode::CREATED, "{b}");
    let p = b["project"].clone();
    assert_eq!(
        (p["domain_id"].clone(), p["parent_id"].clone()),
        (json!("default"), json!("default"))
    );
    assert_eq!(p["is_domain"], false);
    assert!(
        p["links"]["self"]
            .as_str()
            .unwrap()
            .ends_with(&format!("/v3/projects/{}", p["id"].as_str().unwrap()))
    );
    let (s, _, b) = call(
        &app,
        admin_req(
            Method::POST,
            "/v3/projects",
            &admin,
            Some(json!({"project": {"name": "p1"}})),
        ),
    )
    .await;
    assert_eq!(
        (s, b["error"]["code"].clone()),
        (StatusCode::CONFLICT, json!(409))
    );
    let (s, _, b) = call(&app, admin_req(Method::GET, "/v3/users/nosuch", &admin, None)).await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    assert_eq!(
        b,
        json!({"error": {"code": 404, "title": "Not Found", "message": "Could not find user: nosuch."}})
    );
    let req = Request::post("/v3/users")
        .header("x-auth-token", &admin)
        .body(Body::from("{garbage"))
        .unwrap();
    let (s, _, b) = call(&app, req).await;
    assert_eq!(
        (s, b["error"]["code"].clone()),
        (StatusCode::BAD_REQUEST, json!(400))
    );
    let (s, _, b) = call(&app, admin_req(Method::GET, "/v3/projects", &demo, None)).await;
    assert_eq!(s, StatusCode::FORBIDDEN);
    assert_eq!(
        b["error"]["message"],
        "You are not authorized to perform the requested action: identity:list_projects."
    );

    // Implied roles: a user granted only admin gets all three.
    let uid = &e.users["admin"];
    let pid = p["id"].as_str().unwrap();
    let (s, _, _) = call(
        &app,
        admin_req(
            Method::PUT,
            &format!("/v3/projects/{pid}/users/{uid}/roles/admin"),
            &admin,
            None,
        ),
    )
    .await;
    assert_eq!(s, StatusCode::NO_CONTENT);
    let ctx =
        e.id.context_for(&e.store.user_get(uid).await.unwrap(), pid)
            .await
            .unwrap();
    assert_eq!(ctx.roles, ["admin", "member", "reader"]);

    // Disabling the demo user ends its token at once, even if it was cached.
    let (s, _, _) = call(
        &app,
        admin_req(
            Method::GET,
            &format!("/v3/users/{}", e.users["demo"]),
            &demo,
            None,
        ),
    )
    .await;
    assert_eq!(s, StatusCode::OK, "reading oneself");
    let (s, _, b) = call(
        &app,
        admin_req(
            Method::PATCH,
            &format!("/v3/users/{}", e.users["demo"]),
            &admin,
            Some(json!({"user": {"enabled": false}})),
        ),
    )
    .await;
    assert_eq!(s, StatusCode::OK, "{b}");
    assert_eq!(b["user"]["enabled"], false);
    assert!(b["user"].get("password").is_none());
    let (s, _, _) = call(
        &app,
        admin_req(
            Method::GET,
            &format!("/v3/users/{}", e.users["demo"]),
            &demo,
            None,
        ),
    )
    .await;
    assert_eq!(s, StatusCode::UNAUTHORIZED);
}
