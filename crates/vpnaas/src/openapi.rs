//! The one OpenAPI 3.1 document of everything `vpnaas serve` answers: the
//! Keystone subset, the Neutron VPNaaS API, the NSX Manager IPSec VPN API and
//! the node API, composed from each API crate's own `openapi()` (built from its
//! handlers' path attributes and its response types' schemas, so the document
//! is the code's, not a hand-kept copy).
//!
//! Why it exists: a field renamed or retyped in a response shows up as a diff
//! of the checked-in `docs/openapi.json` (a test fails until the file is
//! regenerated, see `crates/vpnaas/tests/composed/openapi.rs`), and
//! schemathesis fuzzes a real server against this document in `scripts/test.sh`.
//!
//! `GET /openapi.json` is served without authentication, as Keystone's and
//! Neutron's version documents are: it describes the public wire contract (the
//! same as the docs), holds no data of any project, and a client needs it
//! before it has credentials.

use std::sync::LazyLock;

use axum::Router;
use axum::http::header;
use axum::response::IntoResponse;
use axum::routing::get;
use utoipa::openapi::tag::TagBuilder;
use utoipa::openapi::{InfoBuilder, OpenApi, OpenApiBuilder};

/// The path the document is served at.
pub const PATH: &str = "/openapi.json";

/// The composed document.
pub fn document() -> OpenApi {
    let mut doc = OpenApiBuilder::new()
        .info(
            InfoBuilder::new()
                .title("vpnaas")
                .version(env!("CARGO_PKG_VERSION"))
                .description(Some(
                    "The IPsec VPN control plane's HTTP APIs on one listener: the Keystone v3 subset \
                     (`/v3`), Neutron VPNaaS v2.0 (`/v2.0`), the NSX Manager IPSec VPN API (`/api`) and \
                     the gateway nodes' API (`/internal/v1/nodes`). Each API answers errors in its own \
                     envelope.",
                ))
                .build(),
        )
        .tags(Some([
            tag(
                "keystone",
                "Keystone v3 subset: version discovery and password/token authentication",
            ),
            tag(
                "nsx",
                "The NSX Manager IPSec VPN API as vmware-nsxlib drives it (admin users, basic auth or a login session)",
            ),
            tag("node", "The gateway node agents' API (docs/node-api.md)"),
            tag("metrics", "Prometheus metrics of the server (docs/metrics.md)"),
        ]))
        .build();
    doc.merge(identity::keystone::openapi());
    doc.merge(api_neutron::openapi());
    doc.merge(api_nsx::openapi());
    doc.merge(realize::http::openapi());
    doc.merge(metrics_openapi());
    add_edge_responses(&mut doc);
    doc
}

impl crate::edge::Api {
    /// The schema of this API's error envelope in the document.
    fn error_schema(self) -> &'static str {
        match self {
            crate::edge::Api::Keystone => "keystone.Error",
            crate::edge::Api::Neutron => "neutron.Error",
            crate::edge::Api::Nsx => "nsx.ApiError",
            crate::edge::Api::Node => "node.Error",
        }
    }
}

/// Documents what the edge ([`crate::edge`]) may answer for any operation
/// before or instead of its handler: 414 and 431 (URL and header limits), 503
/// (the request deadline) and, for operations with a body, 408 and 413. Each is
/// in the error envelope of the API owning the path; an operation that already
/// documents the code (e.g. a 503 of its own) keeps its description.
fn add_edge_responses(doc: &mut OpenApi) {
    let common = [
        (
            "414",
            "The request URL is longer than the server's limit (8 KiB by default)",
        ),
        ("431", "Too many request header fields or too many bytes of them"),
        (
            "503",
            "Not handled within the request timeout; nothing was applied (`Retry-After`)",
        ),
    ];
    let with_body = [
        ("408", "The request body was not received within the body timeout"),
        ("413", "The request body is larger than the API's limit"),
    ];
    for (path, item) in doc.paths.paths.iter_mut() {
        let schema = crate::edge::Api::of(path).error_schema();
        let ops = [
            &mut item.get,
            &mut item.put,
            &mut item.post,
            &mut item.delete,
            &mut item.patch,
            &mut item.head,
        ];
        for op in ops.into_iter().flatten() {
            let codes = common.iter().chain(if op.request_body.is_some() {
                &with_body[..]
            } else {
                &[]
            });
            for (code, description) in codes {
                op.responses
                    .responses
                    .entry((*code).to_string())
                    .or_insert_with(|| {
                        model::openapi::json_response(description, model::openapi::schema_ref(schema)).into()
                    });
            }
        }
    }
}

/// `GET /metrics` (see [`crate::metrics`]).
fn metrics_openapi() -> OpenApi {
    use utoipa::openapi::path::{HttpMethod, OperationBuilder};
    use utoipa::openapi::schema::{ObjectBuilder, Type};
    use utoipa::openapi::security::SecurityRequirement;
    use utoipa::openapi::{ContentBuilder, Paths, ResponseBuilder};
    let text = ResponseBuilder::new()
        .description("The Prometheus text exposition format (0.0.4); names and labels in docs/metrics.md")
        .content(
            "text/plain",
            ContentBuilder::new()
                .schema(Some(ObjectBuilder::new().schema_type(Type::String)))
                .build(),
        )
        .build();
    let error = |description: &str, schema: &str| {
        model::openapi::json_response(description, model::openapi::schema_ref(schema))
    };
    let op = OperationBuilder::new()
        .tag("metrics")
        .operation_id(Some("metrics"))
        .summary(Some(
            "Prometheus metrics (admin token here; no credentials on --metrics-listen)",
        ))
        .security(SecurityRequirement::new(
            identity::keystone::TOKEN_SCHEME,
            Vec::<String>::new(),
        ))
        .response("200", text)
        .response(
            "401",
            error(
                "Missing or invalid `X-Auth-Token` (or bearer token)",
                "keystone.Error",
            ),
        )
        .response("403", error("The token's user is not an admin", "neutron.Error"))
        .build();
    let mut paths = Paths::new();
    paths.add_path_operation(crate::metrics::PATH, vec![HttpMethod::Get], op);
    let mut doc = OpenApiBuilder::new().build();
    doc.paths = paths;
    doc
}

fn tag(name: &str, description: &str) -> utoipa::openapi::tag::Tag {
    TagBuilder::new()
        .name(name)
        .description(Some(description))
        .build()
}

/// The document as served: pretty JSON with a final newline, byte for byte
/// what `docs/openapi.json` holds.
pub fn json() -> &'static str {
    static JSON: LazyLock<String> = LazyLock::new(|| {
        let mut s = serde_json::to_string_pretty(&document()).expect("the OpenAPI document serializes");
        s.push('\n');
        s
    });
    &JSON
}

/// `GET /openapi.json`.
pub fn router<S: Clone + Send + Sync + 'static>() -> Router<S> {
    Router::new().route(
        PATH,
        get(|| async { ([(header::CONTENT_TYPE, "application/json")], json()).into_response() }),
    )
}
