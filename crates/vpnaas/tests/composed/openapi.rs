//! The OpenAPI document is a golden file: `GET /openapi.json` must serve
//! exactly `docs/openapi.json`, so a field renamed, retyped or added in any
//! response is a diff in review. After an intended change, regenerate it with
//!
//! ```text
//! UPDATE_GOLDEN=1 cargo nextest run -p vpnaas --test composed openapi
//! ```
//!
//! and read the diff. The document must also only name operations that are
//! routed: each one, asked without credentials, reaches its handler (an answer
//! other than the router's 404 or 405).

use std::path::PathBuf;

use axum::http::Method;
use serde_json::Value;

use crate::harness::{Auth, TestServer};

fn golden_path() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../docs/openapi.json")
}

#[tokio::test]
async fn served_document_is_the_golden_file() {
    let s = TestServer::new().await;
    let r = s.call(Method::GET, "/openapi.json", Auth::None, None).await;
    assert_eq!(r.status.as_u16(), 200);
    assert_eq!(r.header("content-type"), "application/json");
    let served = vpnaas::openapi::json();
    // The served body is the same document.
    assert_eq!(r.body, serde_json::from_str::<Value>(served).unwrap());
    let path = golden_path();
    if std::env::var_os("UPDATE_GOLDEN").is_some() {
        std::fs::write(&path, served).expect("write docs/openapi.json");
        return;
    }
    let golden = std::fs::read_to_string(&path).unwrap_or_default();
    if golden != served {
        panic!(
            "docs/openapi.json differs from the document the code builds.\n\
             If the change is intended, regenerate it and review the diff:\n    \
             UPDATE_GOLDEN=1 cargo nextest run -p vpnaas --test composed openapi"
        );
    }
}

/// `{name}` path parameters become `x`.
fn concrete(path: &str) -> String {
    let mut out = String::new();
    let mut in_param = false;
    for c in path.chars() {
        match c {
            '{' => in_param = true,
            '}' => {
                in_param = false;
                out.push('x');
            }
            _ if in_param => {}
            c => out.push(c),
        }
    }
    out
}

#[tokio::test]
async fn every_documented_operation_is_routed() {
    let s = TestServer::new().await;
    let doc: Value = serde_json::from_str(vpnaas::openapi::json()).unwrap();
    let paths = doc["paths"].as_object().expect("paths");
    assert!(!paths.is_empty());
    let mut checked = 0;
    for (path, item) in paths {
        for (method, op) in item.as_object().unwrap() {
            let Ok(m) = method.to_uppercase().parse::<Method>() else {
                continue;
            };
            if !op.is_object() || m == Method::OPTIONS {
                continue;
            }
            let body = matches!(m, Method::POST | Method::PUT).then(|| serde_json::json!({}));
            let r = s.call(m.clone(), &concrete(path), Auth::None, body).await;
            let status = r.status.as_u16();
            assert!(
                status != 404 && status != 405,
                "{method} {path}: {status} {} (documented but not routed?)",
                r.body
            );
            checked += 1;
        }
    }
    assert!(checked >= 6, "{checked} operations");
}
