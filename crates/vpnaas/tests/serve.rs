//! The composed server started as `vpnaas serve` starts it: listener rules (no
//! plain HTTP off loopback unless asked), and the edge's envelopes and limits
//! over a real socket.

use std::time::Duration;

use vpnaas::server::{self, ServeConfig};

fn config(dir: &tempfile::TempDir) -> ServeConfig {
    ServeConfig {
        db: dir.path().join("t.db").into(),
        listen: "127.0.0.1:0".parse().unwrap(),
        admin_password: Some("pw".into()),
        ..ServeConfig::default()
    }
}

#[tokio::test]
async fn plain_http_off_loopback_is_refused_unless_asked() {
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = config(&dir);
    cfg.listen = "0.0.0.0:0".parse().unwrap();
    let err = server::start(cfg.clone()).await.err().expect("must refuse");
    assert!(err.to_string().contains("refusing plain HTTP"), "{err}");
    cfg.insecure_plain_http = true;
    let running = server::start(cfg)
        .await
        .expect("allowed with --insecure-plain-http");
    running.task.abort();
}

#[tokio::test]
async fn extra_plain_listener_needs_tls_and_loopback() {
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = config(&dir);
    cfg.plain_listen = Some("127.0.0.1:0".parse().unwrap());
    let err = server::start(cfg.clone()).await.err().expect("needs TLS");
    assert!(err.to_string().contains("--plain-listen"), "{err}");
    cfg.plain_listen = Some("0.0.0.0:0".parse().unwrap());
    let err = server::start(cfg).await.err().expect("needs loopback");
    assert!(err.to_string().contains("loopback"), "{err}");
}

#[tokio::test]
async fn edge_answers_in_each_apis_envelope_and_enforces_the_deadline() {
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = config(&dir);
    cfg.limits.body_timeout = Duration::from_secs(1);
    let running = server::start(cfg).await.unwrap();
    let http = reqwest::Client::new();
    let url = &running.url;
    let cases = [
        ("/v2.0/vpn/ikepolicies", "NeutronError"),
        ("/api/v1/vpn/ipsec/ike-profiles", "error_code"),
        ("/v3/auth/tokens", "error"),
        ("/internal/v1/nodes/x/config", "error"),
    ];
    for (path, key) in cases {
        let r = http
            .request(reqwest::Method::PATCH, format!("{url}{path}"))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 405, "{path}");
        assert!(r.headers().contains_key("allow"), "{path}");
        let body: serde_json::Value = r.json().await.unwrap();
        assert!(body.get(key).is_some(), "{path}: {body}");
    }
    // A body over the limit is refused before it is read, in the envelope.
    let r = http
        .post(format!("{url}/v3/auth/tokens"))
        .body(vec![b'x'; 200 * 1024])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 413);
    let body: serde_json::Value = r.json().await.unwrap();
    assert_eq!(body["error"]["code"], 413, "{body}");
    running.task.abort();
}
