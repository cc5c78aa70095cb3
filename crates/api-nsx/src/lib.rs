//! The NSX Manager IPSec VPN API (`/api/v1/vpn/ipsec/...`) as vmware-nsxlib
//! 19.4.3 drives it, over the same canonical store as the Neutron API: an NSX
//! IKE profile is a Neutron ikepolicy, an NSX session is a Neutron
//! ipsec-site-connection, and so on (see [`resources`] for the mapping).
//!
//! Handlers are generic over [`resources::Resource`]: authenticate (admin only,
//! [`auth`]), parse with NSX's types ([`wire`]), call one store operation, render.
//! All JSON shapes live in `resources`, all error wording in [`error`], list
//! semantics in [`query`].
//!
//! Besides the seven resources: `POST /api/session/create` and
//! `/api/session/destroy` (cookie + XSRF sessions), `GET
//! /api/v1/reverse-proxy/node/health` (healthy while the store answers a read)
//! and `GET /api/v1/node` ([`NODE_VERSION`]). Writes answer 201
//! (create) or 200 (update, delete — never 204, which nsxlib treats as an error);
//! the `x-nsx-requestid` header comes from the server's request-id middleware.
//!
//! # Error codes
//!
//! Every error is `{"httpStatus", "error_code", "module_name", "error_message"}`.
//! The rows below are exactly the (HTTP, `error_code`, `module_name`) answers
//! that [`error`] gives; a test there fails when the two differ.
//!
//! | HTTP | `error_code` | `module_name` | when |
//! |---|---|---|---|
//! | 400 | 255 | common-services | body not JSON or not an object, field of the wrong type, missing required field, unknown enum value, value out of range, bad query parameter |
//! | 400 | 110001 | VPN | a rule across fields or objects failed (AES-GCM IKE without IKE_V2, lifetime out of NSX's range, DPD interval for the probe mode, mixed IP versions in policy rules, peer/local address families, changing a service's router or a session's type, ...) |
//! | 400 | 110002 | VPN | not supported by vpnaas: `authentication_mode` CERTIFICATE, GMAC digests |
//! | 400 | 110003 | VPN | PUT or DELETE of a system-owned default profile |
//! | 400 | 110004 | VPN | a concurrent change made the write impossible (an object it refers to was deleted meanwhile) |
//! | 400 | 110199 | VPN | realization state of a session whose service is disabled |
//! | 400 | 500030 | VPN | DELETE of an object that others use (nsxlib: `ResourceInUse`) |
//! | 403 | 403 | common-services | missing or wrong credentials (nsxlib: `InvalidCredentials`) |
//! | 403 | 98 | common-services | session cookie on a write without its `X-XSRF-TOKEN` (nsxlib: `BadXSRFToken`) |
//! | 403 | 401 | common-services | authenticated, but not an admin |
//! | 404 | 600 | common-services | unknown id (the object named by the URL, or one the body refers to: "object identifier `<Type>/<id>` is missing"), unknown path |
//! | 412 | 206 | common-services | PUT without `_revision`, or with a stale one (nsxlib: `StaleRevision`) |
//! | 400 | 255 | common-services | unparsable path or query value (`/ike-profiles/%FF`, `?barrier_id=abc`), answered by the server's edge |
//! | 405 | 405 | common-services | method not supported on the path (with `Allow`) |
//! | 408 | 408 | common-services | request body not received within the body timeout (`Connection: close`) |
//! | 413 | 255 | common-services | body over 1 MiB |
//! | 414 | 255 | common-services | request URL over 8 KiB |
//! | 431 | 255 | common-services | more than 100 header fields or 32 KiB of them |
//! | 503 | 503 | common-services | request not handled within the request timeout; it was not applied (`Retry-After`) |
//! | 429 | 110005 | common-services | too many failed password checks from the caller's address (`Retry-After`; nsxlib retries it as ServerBusy) |
//! | 503 | 110006 | common-services | every password-hashing thread busy for 2 s (`Retry-After`; nsxlib retries it as ServerBusy) |
//! | 500 | 100 | common-services | internal failure (details only in the server log) |

pub mod auth;
pub mod error;
mod openapi;
pub mod query;
pub mod resources;
pub mod response;
pub mod state;
pub mod wire;

use app::{App, Dialect, Expect};
use axum::body::Bytes;
use axum::extract::{FromRef, OriginalUri, Path, RawQuery, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{any, get, post};
use axum::{Extension, Json, Router};
use identity::request::RequestId;
use identity::{AuthContext, Identity};
use model::{Connection, Gateway, Record, VpnService};
use serde_json::Value;
use store::page::PageQuery;
use store::read::{Need, Snapshot};
use store::{NewMeta, Scope, Store, WriteCtx};

pub use crate::auth::NsxCaller;
pub use crate::error::{NsxError, NsxResult};
use crate::resources::{
    DpdProfiles, IkeProfiles, LocalEndpoints, PeerEndpoints, RenderCtx, Resource, Services, Sessions,
    TunnelProfiles,
};
use crate::wire::{Fields, Obj};

pub use crate::openapi::openapi;

/// Largest request body accepted.
pub const MAX_BODY: usize = 1 << 20;

/// Where the resources live.
pub const PREFIX: &str = "/api/v1/vpn/ipsec";

/// The NSX routes. Needs a [`Store`] and an [`Identity`] in the state.
pub fn router<S>() -> Router<S>
where
    S: Clone + Send + Sync + 'static,
    Store: FromRef<S>,
    App: FromRef<S>,
    Identity: FromRef<S>,
{
    let r = Router::new()
        .route("/api/session/create", post(auth::session_create))
        .route("/api/session/destroy", post(auth::session_destroy))
        .route("/api/v1/reverse-proxy/node/health", get(health))
        .route("/api/v1/node", get(node))
        .route("/api/v1/{*rest}", any(no_route));
    let r = resource::<S, IkeProfiles>(r);
    let r = resource::<S, TunnelProfiles>(r);
    let r = resource::<S, DpdProfiles>(r);
    let r = resource::<S, Services>(r);
    let r = resource::<S, LocalEndpoints>(r);
    let r = resource::<S, PeerEndpoints>(r);
    resource::<S, Sessions>(r)
}

fn resource<S, R: Resource>(r: Router<S>) -> Router<S>
where
    S: Clone + Send + Sync + 'static,
    Store: FromRef<S>,
    App: FromRef<S>,
    Identity: FromRef<S>,
{
    let path = format!("{PREFIX}/{}", R::SEGMENT);
    r.route(&path, get(list::<R>).post(create::<R>)).route(
        &format!("{path}/{{id}}"),
        get(show::<R>).put(update::<R>).delete(delete::<R>),
    )
}

async fn no_route(uri: OriginalUri) -> NsxError {
    NsxError::NoRoute(uri.0.path().to_string())
}

/// The NSX Manager version `GET /api/v1/node` reports. vmware-nsxlib reads
/// `node_version` (`get_version()`) and turns features on by comparing it with
/// the release that introduced them, so this names the NSX-T release whose
/// Manager IPSec VPN API this server implements as nsxlib 19.4.3 drives it.
pub const NODE_VERSION: &str = "3.2.0.0.0";
/// The product version `GET /api/v1/node` reports beside [`NODE_VERSION`].
pub const PRODUCT_VERSION: &str = "3.2.0";

/// How long the health check waits for the store before answering unhealthy.
const HEALTH_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(5);

/// `GET /api/v1/reverse-proxy/node/health`, vmware-nsxlib's cluster probe: it
/// marks the manager DOWN unless this answers 200 `{"healthy": true}`, so it
/// says healthy only when the store answers a read in time; otherwise 503
/// `{"healthy": false}` (the cause goes to the log), and nsxlib stops sending
/// writes that would fail.
async fn health(State(store): State<Store>) -> Response {
    match tokio::time::timeout(HEALTH_TIMEOUT, store.generation_current()).await {
        Ok(Ok(_)) => return Json(response::Health { healthy: true }).into_response(),
        Ok(Err(e)) => {
            tracing::warn!(error = %e, source = ?std::error::Error::source(&e), "health check: the store failed a read");
        }
        Err(_) => tracing::warn!(timeout = ?HEALTH_TIMEOUT, "health check: the store did not answer in time"),
    }
    (
        StatusCode::SERVICE_UNAVAILABLE,
        Json(response::Health { healthy: false }),
    )
        .into_response()
}

async fn node(NsxCaller(_): NsxCaller) -> Json<response::NodeProperties> {
    Json(response::NodeProperties {
        node_version: NODE_VERSION,
        product_version: PRODUCT_VERSION,
    })
}

/// The store context of a write by `ctx`, logged under the request's id.
pub fn write_ctx(ctx: &AuthContext, rid: Option<Extension<RequestId>>) -> WriteCtx {
    WriteCtx {
        request_id: rid.map(|Extension(r)| r.0).unwrap_or_else(uuid::Uuid::new_v4),
        actor: ctx.user_name.clone(),
    }
}

/// What rendering `records` needs, read from `snap` (the snapshot they were
/// read from): for sessions, their services and the endpoint groups and
/// subnets their traffic is named by — one query per kind, whatever the
/// number of records (see [`store::read`]). Other resources render alone.
async fn render_ctx_in<R: Resource>(
    snap: &mut Snapshot,
    records: &[Record<R::Body>],
) -> NsxResult<RenderCtx> {
    let mut ctx = RenderCtx::default();
    if R::NEEDS_CTX {
        let need = Need {
            traffic: true,
            ..Need::default()
        };
        let refs = snap.refs_of(records, need).await?;
        ctx.services = refs.services;
        ctx.groups = refs.groups;
        ctx.subnets = refs.subnets;
    }
    Ok(ctx)
}

/// [`render_ctx_in`] for one record written outside a snapshot (a create or
/// update answers with what it wrote).
async fn render_ctx_for<R: Resource>(store: &Store, rec: &Record<R::Body>) -> NsxResult<RenderCtx> {
    if !R::NEEDS_CTX {
        return Ok(RenderCtx::default());
    }
    let mut snap = store.snapshot().await?;
    render_ctx_in::<R>(&mut snap, std::slice::from_ref(rec)).await
}

/// An object as NSX shows it, as the JSON object list semantics work on.
fn full<R: Resource>(rec: &Record<R::Body>, ctx: &RenderCtx) -> Obj {
    response::to_obj(&R::render(rec, ctx))
}

/// The VPN service an object belongs to (a plain id, or a ResourceReference).
fn service_of(o: &Obj) -> Option<&str> {
    match o.get("ipsec_vpn_service_id")? {
        Value::String(s) => Some(s),
        Value::Object(r) => r.get("target_id")?.as_str(),
        _ => None,
    }
}

fn matches(o: &Obj, filters: &[(String, String)], ctx: &RenderCtx) -> bool {
    filters.iter().all(|(k, v)| match k.as_str() {
        "ipsec_vpn_service_id" => service_of(o) == Some(v.as_str()),
        "logical_router_id" => {
            o.get("logical_router_id").and_then(Value::as_str) == Some(v.as_str())
                || service_of(o)
                    .and_then(|s| ctx.services.get(s))
                    .is_some_and(|s| s.body.router_id == *v)
        }
        "session_type" => o.get("resource_type").and_then(Value::as_str) == Some(v.as_str()),
        _ => true,
    })
}

async fn list<R: Resource>(
    NsxCaller(_): NsxCaller,
    State(store): State<Store>,
    RawQuery(raw): RawQuery,
) -> NsxResult<Json<Value>> {
    let q = query::parse(raw.as_deref(), R::FILTERS)?;
    if let Some(page) = query::sql_page(<R::Body as store::Body>::KIND, &q) {
        return list_page::<R>(&store, &q, page).await.map(Json);
    }
    let (records, ctx) = if R::NEEDS_CTX {
        let mut snap = store.snapshot().await?;
        let records = snap.list::<R::Body>().await?;
        let ctx = render_ctx_in::<R>(&mut snap, &records).await?;
        (records, ctx)
    } else {
        (store.list::<R::Body>(&Scope::All).await?, RenderCtx::default())
    };
    let items = records
        .iter()
        .map(|r| full::<R>(r, &ctx))
        .filter(|o| matches(o, &q.filters, &ctx))
        .collect();
    Ok(Json(query::render(items, &q)))
}

/// A list read as one page in SQL ([`query::sql_page`]): the page's rows,
/// the count of every match and what the page renders with, from one
/// snapshot. A cursor whose last row has since gone places the page by its
/// offset instead.
async fn list_page<R: Resource>(
    store: &Store,
    q: &query::ListQuery,
    mut page: PageQuery,
) -> NsxResult<Value> {
    let kind = <R::Body as store::Body>::KIND;
    let mut snap = store.snapshot().await?;
    let mut rows = snap.page::<R::Body>(&Scope::All, &page).await?;
    if rows.is_empty()
        && let Some(after) = page.marker.take()
        && matches!(
            snap.get::<R::Body>(&after).await,
            Err(model::Error::NotFound { .. })
        )
    {
        rows = snap.page::<R::Body>(&Scope::All, &page).await?;
    }
    let total = snap.count(kind, &Scope::All, &page).await?;
    let more = rows.len() > q.page_size;
    rows.truncate(q.page_size);
    let ctx = render_ctx_in::<R>(&mut snap, &rows).await?;
    drop(snap);
    let cursor = match rows.last() {
        Some(last) if more => Some(query::next_cursor(q.offset, rows.len(), &last.meta.id)),
        _ => None,
    };
    let items = rows.iter().map(|r| full::<R>(r, &ctx)).collect();
    Ok(query::envelope(items, total as usize, cursor, q))
}

async fn show<R: Resource>(
    NsxCaller(_): NsxCaller,
    State(store): State<Store>,
    Path(id): Path<String>,
    RawQuery(raw): RawQuery,
) -> NsxResult<Json<Value>> {
    let q = query::parse(raw.as_deref(), &[])?;
    // A resource that renders with references reads the record and those
    // references from one snapshot, by key; any other is one read.
    let mut snap = match R::NEEDS_CTX {
        true => Some(store.snapshot().await?),
        false => None,
    };
    let got = match snap.as_mut() {
        Some(snap) => snap.get::<R::Body>(&id).await,
        None => store.get::<R::Body>(&Scope::All, &id).await,
    };
    let rec = match got {
        Ok(rec) => rec,
        Err(e @ model::Error::NotFound { .. }) => {
            // `derived` reads through the store: not while holding a snapshot.
            snap = None;
            derived::<R>(&store, &id)
                .await?
                .ok_or_else(|| NsxError::for_target(e, &id))?
        }
        Err(e) => return Err(NsxError::for_target(e, &id)),
    };
    let ctx = match snap.as_mut() {
        Some(snap) => render_ctx_in::<R>(snap, std::slice::from_ref(&rec)).await?,
        None => render_ctx_for::<R>(&store, &rec).await?,
    };
    drop(snap);
    let mut o = full::<R>(&rec, &ctx);
    match q.action.as_deref() {
        None | Some("") => {}
        Some("show-sensitive-data") => {
            if let Some(extra) = R::sensitive(&rec) {
                o.extend(extra);
            }
        }
        Some(a) => return Err(NsxError::field("action", format!("unsupported action {a}"))),
    }
    Ok(Json(Value::Object(o)))
}

/// The view of `id` as a Neutron connection's endpoint (see
/// [`Resource::derived`]): a session made through Neutron names its own id as
/// `local_endpoint_id` and `peer_endpoint_id`, and reading those answers what
/// the connection says. Read-only: such ids are not in lists, and a PUT or
/// DELETE of one finds no object (the connection is changed through Neutron).
async fn derived<R: Resource>(store: &Store, id: &str) -> NsxResult<Option<Record<R::Body>>> {
    if !R::DERIVED {
        return Ok(None);
    }
    let conn = match store.get::<Connection>(&Scope::All, id).await {
        Ok(c) if !c.body.is_endpoint_form() => c,
        Ok(_) | Err(model::Error::NotFound { .. }) => return Ok(None),
        Err(e) => return Err(e.into()),
    };
    // The connection refers to its service and the service to its gateway, so
    // both exist; a failure to read them is the store's.
    let service = store
        .get::<VpnService>(&Scope::All, &conn.body.vpnservice_id)
        .await?;
    let gateway = store.get::<Gateway>(&Scope::All, &service.body.router_id).await?;
    Ok(R::derived(&conn, &gateway.body))
}

/// `display_name` and `description`, common to every resource.
struct Common {
    name: Option<String>,
    description: Option<String>,
}

impl Common {
    fn parse<R: Resource>(f: &Fields<'_>) -> NsxResult<Common> {
        if let Some(t) = f.string("resource_type", 255)?
            && !R::accepts(&t)
        {
            return Err(NsxError::field(
                "resource_type",
                format!("invalid value {t}; this path takes {}", R::RESOURCE_TYPE),
            ));
        }
        Ok(Common {
            name: f.string("display_name", 255)?,
            description: f.string("description", 1024)?,
        })
    }
}

async fn create<R: Resource>(
    NsxCaller(ctx): NsxCaller,
    State(app): State<App>,
    State(store): State<Store>,
    rid: Option<Extension<RequestId>>,
    raw: Bytes,
) -> NsxResult<Response> {
    let o = wire::body_object(&raw)?;
    let f = Fields::new(&o);
    let common = Common::parse::<R>(&f)?;
    let patch = R::parse(&f, true)?;
    let body = R::new_body(&patch)?;
    let id = uuid::Uuid::new_v4().to_string();
    let meta = NewMeta {
        id: Some(id.clone()),
        project_id: ctx.project_id.clone(),
        name: common.name.filter(|n| !n.is_empty()).unwrap_or(id),
        description: common.description.unwrap_or_default(),
    };
    let written = app
        .create(&write_ctx(&ctx, rid), &Scope::All, Dialect::Nsx, meta, body)
        .await?;
    let rctx = render_ctx_for::<R>(&store, &written.record).await?;
    Ok((StatusCode::CREATED, Json(full::<R>(&written.record, &rctx))).into_response())
}

async fn update<R: Resource>(
    NsxCaller(ctx): NsxCaller,
    State(app): State<App>,
    State(store): State<Store>,
    rid: Option<Extension<RequestId>>,
    Path(id): Path<String>,
    raw: Bytes,
) -> NsxResult<Json<Value>> {
    let o = wire::body_object(&raw)?;
    let f = Fields::new(&o);
    if let Some(given) = f.string("id", 255)?
        && given != id
    {
        return Err(NsxError::field(
            "id",
            format!("{given} does not match the URL's {id}"),
        ));
    }
    let revision = match f.get("_revision") {
        Some(Value::Number(n)) => n
            .as_i64()
            .ok_or_else(|| NsxError::field("_revision", "expected integer"))?,
        Some(_) => return Err(NsxError::field("_revision", "expected integer")),
        None => {
            store
                .get::<R::Body>(&Scope::All, &id)
                .await
                .map_err(|e| NsxError::for_target(e, &id))?;
            return Err(NsxError::RevisionMissing);
        }
    };
    let common = Common::parse::<R>(&f)?;
    let patch = R::parse(&f, false)?;
    let edit = |rec: &mut Record<R::Body>| {
        if let Some(n) = &common.name {
            rec.meta.name = if n.is_empty() { id.clone() } else { n.clone() };
        }
        if let Some(d) = &common.description {
            rec.meta.description = d.clone();
        }
        R::apply_record(&patch, rec)
    };
    let expect = Expect::revision(revision);
    let written = app
        .update(
            &write_ctx(&ctx, rid),
            &Scope::All,
            Dialect::Nsx,
            &id,
            expect,
            edit,
        )
        .await
        .map_err(|e| NsxError::for_target(e, &id))?;
    let rctx = render_ctx_for::<R>(&store, &written.record).await?;
    Ok(Json(Value::Object(full::<R>(&written.record, &rctx))))
}

async fn delete<R: Resource>(
    NsxCaller(ctx): NsxCaller,
    State(app): State<App>,
    rid: Option<Extension<RequestId>>,
    Path(id): Path<String>,
) -> NsxResult<StatusCode> {
    app.delete::<R::Body>(&write_ctx(&ctx, rid), &Scope::All, &id)
        .await
        .map_err(|e| NsxError::for_target(e, &id))?;
    Ok(StatusCode::OK)
}
