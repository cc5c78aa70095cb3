//! The OpenStack Neutron VPNaaS v2.0 API (`/v2.0/vpn/...`), the minimal core
//! network API a VPN needs (`/v2.0/networks`, `/v2.0/subnets`, `/v2.0/routers`
//! with their interfaces, and the read-only `/v2.0/ports` derived from them),
//! and the version/extension documents clients probe.
//!
//! Handlers are generic over [`views::View`]: parse (Neutron's attribute rules),
//! authorize (Neutron's default policy), call one `app` operation, render. All
//! JSON shapes live in `views`, all error wording in `error`.

mod attrs;
pub mod error;
mod openapi;
mod query;
pub mod status;
pub mod views;
pub mod watch;
pub mod wire;

use app::{App, Dialect};
use axum::body::Bytes;
use axum::extract::{FromRef, OriginalUri, Path, RawQuery, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{any, get};
use axum::{Extension, Json, Router};
use identity::keystone::Caller;
use identity::request::RequestId;
use identity::{AuthContext, Identity};
use model::Record;
use realize::Realizer;
use serde_json::{Map, Value, json};
use store::read::{Need, Snapshot};
use store::{NewMeta, Scope, Store, WriteCtx};

use crate::attrs::{Get, Op, prepare_body};
use crate::error::{ApiError, ApiResult};
use crate::query::Collection;
use crate::views::{
    Connections, EndpointGroups, IkePolicies, IpsecPolicies, Networks, Routers, Subnets, View, ViewCtx,
    VpnServices,
};

/// Largest request body accepted (Neutron's default `max_request_body_size`).
pub const MAX_BODY: usize = 1 << 20;

pub use crate::openapi::openapi;

/// The Neutron routes. Needs a [`Store`] and an [`Identity`] in the state.
pub fn router<S>() -> Router<S>
where
    S: Clone + Send + Sync + 'static,
    Store: FromRef<S>,
    App: FromRef<S>,
    Identity: FromRef<S>,
    Realizer: FromRef<S>,
{
    let r = Router::new()
        .route("/", get(versions))
        .route("/v2.0", get(v2_root))
        .route("/v2.0/", get(v2_root))
        .route("/v2.0/extensions", get(extensions))
        .route("/v2.0/extensions/{alias}", get(extension_show))
        .route("/v2.0/networks", get(network_list).post(create::<Networks>))
        .route(
            "/v2.0/networks/{id}",
            get(network_show).put(update::<Networks>).delete(network_delete),
        )
        .route("/v2.0/subnets", get(list::<Subnets>).post(create::<Subnets>))
        .route(
            "/v2.0/subnets/{id}",
            get(show::<Subnets>).put(update::<Subnets>).delete(subnet_delete),
        )
        .route("/v2.0/routers", get(list::<Routers>).post(router_create))
        .route(
            "/v2.0/routers/{id}",
            get(show::<Routers>).put(router_update).delete(router_delete),
        )
        .route(
            "/v2.0/routers/{id}/add_router_interface",
            axum::routing::put(router_add_interface),
        )
        .route(
            "/v2.0/routers/{id}/remove_router_interface",
            axum::routing::put(router_remove_interface),
        )
        .route("/v2.0/ports", get(port_list))
        .route("/v2.0/ports/{id}", get(port_show))
        .route(watch::PATH, get(watch::watch))
        .route("/v2.0/{*rest}", any(no_route));
    let r = resource::<S, IkePolicies>(r, "/v2.0/vpn/ikepolicies");
    let r = resource::<S, IpsecPolicies>(r, "/v2.0/vpn/ipsecpolicies");
    let r = resource::<S, VpnServices>(r, "/v2.0/vpn/vpnservices");
    let r = resource::<S, EndpointGroups>(r, "/v2.0/vpn/endpoint-groups");
    resource::<S, Connections>(r, "/v2.0/vpn/ipsec-site-connections")
}

fn resource<S, V: View>(r: Router<S>, path: &str) -> Router<S>
where
    S: Clone + Send + Sync + 'static,
    Store: FromRef<S>,
    App: FromRef<S>,
    Identity: FromRef<S>,
    Realizer: FromRef<S>,
{
    r.route(path, get(list::<V>).post(create::<V>)).route(
        &format!("{path}/{{id}}"),
        get(show::<V>).put(update::<V>).delete(delete::<V>),
    )
}

async fn no_route() -> ApiError {
    ApiError::NoRoute
}

/// What a caller may read: admins everything, members their project, others
/// nothing (Neutron's `ADMIN_OR_PROJECT_MEMBER` default for `get_*`).
fn read_scope(ctx: &AuthContext) -> Option<Scope> {
    if ctx.is_admin() {
        Some(Scope::All)
    } else if ctx.is_member() {
        Some(Scope::Project(ctx.project_id.clone()))
    } else {
        None
    }
}

fn write_ctx(ctx: &AuthContext, rid: RequestId) -> WriteCtx {
    WriteCtx {
        request_id: rid.0,
        actor: ctx.user_name.clone(),
    }
}

/// `scheme://host` of the request, as the client addressed it: the listener
/// sets `X-Forwarded-Proto: https` on TLS connections (a TLS-terminating proxy
/// in front of a plain listener does the same), so links work over HTTPS.
fn base_url(headers: &HeaderMap) -> String {
    let host = headers
        .get(axum::http::header::HOST)
        .and_then(|h| h.to_str().ok())
        .unwrap_or("localhost");
    let scheme = match headers.get("x-forwarded-proto").and_then(|v| v.to_str().ok()) {
        Some(p) if p.eq_ignore_ascii_case("https") => "https",
        _ => "http",
    };
    format!("{scheme}://{host}")
}

fn self_url(headers: &HeaderMap, uri: &OriginalUri) -> String {
    format!("{}{}", base_url(headers), uri.0.path())
}

/// What rendering `records` needs, read from `snap` (the snapshot the records
/// were read from): for the stateful views, the records' services, those
/// services' gateways, and the node states and generations of those gateways
/// only — a bounded number of queries, whatever the number of records (see
/// [`store::read`]). The other views render from the record alone.
async fn view_ctx_in<V: View>(
    r: &Realizer,
    snap: &mut Snapshot,
    records: &[Record<V::Body>],
) -> ApiResult<ViewCtx> {
    let mut ctx = ViewCtx::default();
    if V::STATEFUL {
        let need = Need {
            gateways: true,
            status: true,
            ..Need::default()
        };
        let mut refs = snap.refs_of(records, need).await?;
        ctx.status = r.status_index(&mut refs);
        ctx.gateways = refs.gateways;
        ctx.services = refs.services;
    }
    if V::NETWORKS {
        for s in snap.list_in::<model::Subnet>(&Scope::All).await? {
            ctx.network_subnets
                .entry(s.body.network_id.clone())
                .or_default()
                .push(s.meta.id);
        }
    }
    Ok(ctx)
}

/// [`view_ctx_in`] for one record read or written outside a snapshot (create
/// and update answer with the record they wrote; update checks the status of
/// the record it is about to change).
async fn view_ctx_for<V: View>(r: &Realizer, rec: &Record<V::Body>) -> ApiResult<ViewCtx> {
    if !V::STATEFUL && !V::NETWORKS {
        return Ok(ViewCtx::default());
    }
    let mut snap = r.store.snapshot().await?;
    view_ctx_in::<V>(r, &mut snap, std::slice::from_ref(rec)).await
}

/// Whether an answer that shows `fields` (every field when empty) and filters
/// or sorts on `also` renders anything from the view's ctx ([`View::FROM_CTX`]):
/// `fields=id&fields=name` reads no reference at all.
fn shows_derived<'a, V: View>(fields: &[String], mut also: impl Iterator<Item = &'a str>) -> bool {
    let derived = |name: &str| V::FROM_CTX.contains(&name);
    !V::FROM_CTX.is_empty() && (fields.is_empty() || fields.iter().any(|f| derived(f)) || also.any(derived))
}

fn one<V: View>(obj: Map<String, Value>) -> Json<Value> {
    Json(json!({ V::SINGULAR: obj }))
}

async fn list<V: View>(
    State(store): State<Store>,
    State(realizer): State<Realizer>,
    Caller(ctx): Caller,
    headers: HeaderMap,
    uri: OriginalUri,
    RawQuery(raw): RawQuery,
) -> ApiResult<Response> {
    let q = query::parse(query::pairs(raw.as_deref()), V::attrs(), V::ALIASES)?;
    let self_url = self_url(&headers, &uri);
    let Some(scope) = read_scope(&ctx) else {
        return Ok(Json(query::render(Vec::new(), &q, V::PLURAL, &self_url)).into_response());
    };
    let keys = q
        .filters
        .iter()
        .map(|(n, _)| n.as_str())
        .chain(q.sort.iter().map(|(k, _)| k.as_str()));
    let derived = shows_derived::<V>(&q.fields, keys);
    let page = query::sql_page(&q);
    // A large answer (or one read in memory) holds its rows and their JSON until
    // it is sent: only a few are built at once, so memory stays flat under a
    // storm of concurrent lists (the others wait their turn, within the
    // request deadline).
    let turn = match &page {
        Some(p) if p.limit <= SMALL_PAGE => None,
        _ => Some(LARGE_LISTS.clone().acquire_owned().await.expect("never closed")),
    };
    let Some(page) = page else {
        // Filters or sort keys on attributes that are not columns: filter and
        // sort the rendered collection in memory, as the VPN plugin does.
        let (records, vctx) = if derived {
            let mut snap = store.snapshot().await?;
            let records = snap.list_in::<V::Body>(&scope).await?;
            let vctx = view_ctx_in::<V>(&realizer, &mut snap, &records).await?;
            (records, vctx)
        } else {
            (store.list::<V::Body>(&scope).await?, ViewCtx::default())
        };
        let items = records.iter().map(|r| V::render(r, &vctx)).collect();
        return answer(&query::render(items, &q, V::PLURAL, &self_url), turn);
    };
    // One page read in SQL; the references of its records only.
    let limit = query::page_limit(&q);
    if query::meta_only(&q.fields) && limit.is_none() {
        // The whole collection's names (up to a page): the database builds the
        // JSON array, one row instead of one per object. A collection longer
        // than a page takes the row path below, which knows its ends for links.
        let kind = <V::Body as store::Body>::KIND;
        let got = store
            .page_names_json(kind, &scope, &page, &query::picked_keys(&q.fields))
            .await?;
        if got.len <= query::MAX_PAGE {
            return answer_raw(V::PLURAL, &got.json, turn);
        }
    }
    if query::meta_only(&q.fields) {
        let mut rows = store
            .page_names(<V::Body as store::Body>::KIND, &scope, &page)
            .await?;
        let limit = cut_to_page(&mut rows, limit, q.page_reverse);
        let ends = rows
            .first()
            .zip(rows.last())
            .map(|(f, l)| (f.id.as_str(), l.id.as_str()));
        let links = query::links(&q, limit, ends, rows.len(), &self_url);
        let items: Vec<_> = rows
            .iter()
            .map(|row| query::Picked {
                row,
                fields: &q.fields,
            })
            .collect();
        return answer(&Collection::new(V::PLURAL, items, links), turn);
    }
    let (records, vctx, limit) = if derived {
        let mut snap = store.snapshot().await?;
        let mut records = snap.page::<V::Body>(&scope, &page).await?;
        let limit = cut_to_page(&mut records, limit, q.page_reverse);
        let vctx = view_ctx_in::<V>(&realizer, &mut snap, &records).await?;
        (records, vctx, limit)
    } else {
        let mut records = store.page::<V::Body>(&scope, &page).await?;
        let limit = cut_to_page(&mut records, limit, q.page_reverse);
        (records, ViewCtx::default(), limit)
    };
    let ends = records
        .first()
        .zip(records.last())
        .map(|(f, l)| (f.meta.id.as_str(), l.meta.id.as_str()));
    let links = query::links(&q, limit, ends, records.len(), &self_url);
    if q.fields.is_empty() {
        // Straight from the typed bodies, each built as it is written out.
        let items = Wires::<V> {
            records: &records,
            ctx: &vctx,
        };
        answer(&Collection::new(V::PLURAL, items, links), turn)
    } else {
        let items: Vec<_> = records
            .iter()
            .map(|r| query::select_fields(V::render(r, &vctx), &q.fields))
            .collect();
        answer(&Collection::new(V::PLURAL, items, links), turn)
    }
}

/// A list answer whose page is JSON text already (`[...]`, built by the
/// database): `{"<plural>": <page>}`, sent as [`answer`] sends.
fn answer_raw(
    plural: &str,
    page: &str,
    turn: Option<tokio::sync::OwnedSemaphorePermit>,
) -> ApiResult<Response> {
    let mut body = Vec::with_capacity(page.len() + plural.len() + 8);
    body.extend_from_slice(b"{\"");
    body.extend_from_slice(plural.as_bytes());
    body.extend_from_slice(b"\": ");
    body.extend_from_slice(page.as_bytes());
    body.push(b'}');
    Ok(send(Bytes::from(body), turn))
}

/// A list answer as JSON. With a large-list turn, the body is sent in chunks
/// and the turn is held until the last one has been taken by the connection,
/// so the answers in memory at once are bounded by the turns, however slowly
/// their clients read (the length is known: `content-length` as usual).
fn answer<T: serde::Serialize>(
    doc: &T,
    turn: Option<tokio::sync::OwnedSemaphorePermit>,
) -> ApiResult<Response> {
    let Some(turn) = turn else {
        return Ok(Json(doc).into_response());
    };
    let bytes = Bytes::from(serde_json::to_vec(doc).map_err(|e| model::Error::internal("render list", e))?);
    Ok(send(bytes, Some(turn)))
}

/// A JSON body; with a turn, in chunks, the turn held until the last one.
fn send(bytes: Bytes, turn: Option<tokio::sync::OwnedSemaphorePermit>) -> Response {
    let len = bytes.len();
    const CHUNK: usize = 64 * 1024;
    let body = match turn {
        None => axum::body::Body::from(bytes),
        Some(turn) => {
            let chunks = (0..len).step_by(CHUNK).map(move |at| {
                let _held = &turn;
                Ok::<_, std::convert::Infallible>(bytes.slice(at..(at + CHUNK).min(len)))
            });
            axum::body::Body::from_stream(futures::stream::iter(chunks))
        }
    };
    (
        [
            (axum::http::header::CONTENT_TYPE, "application/json".to_string()),
            (axum::http::header::CONTENT_LENGTH, len.to_string()),
        ],
        body,
    )
        .into_response()
}

/// The typed bodies of a page, each built while the answer is serialized
/// and dropped after it: no second copy of the page in memory.
struct Wires<'a, V: View> {
    records: &'a [Record<V::Body>],
    ctx: &'a ViewCtx,
}

impl<V: View> serde::Serialize for Wires<'_, V> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_seq(self.records.iter().map(|r| V::wire(r, self.ctx)))
    }
}

/// Pages up to this many rows are built without waiting for a turn.
const SMALL_PAGE: usize = 1000;

/// Turns to build a larger list answer: one per core (more would not be
/// faster, only hold more memory).
static LARGE_LISTS: std::sync::LazyLock<std::sync::Arc<tokio::sync::Semaphore>> =
    std::sync::LazyLock::new(|| {
        let cores = std::thread::available_parallelism().map_or(2, |n| n.get());
        std::sync::Arc::new(tokio::sync::Semaphore::new(cores))
    });

/// Cuts a page read without a limit (one row more than [`query::MAX_PAGE`]
/// asked for) to the bound, and says the page size its links follow: the
/// query's limit, the bound when the collection was longer, else none.
fn cut_to_page<I>(items: &mut Vec<I>, limit: Option<usize>, reverse: bool) -> Option<usize> {
    if limit.is_some() {
        return limit;
    }
    if items.len() <= query::MAX_PAGE {
        return None;
    }
    if reverse {
        // The rows before the marker, oldest first: the extra one is the oldest.
        items.drain(..items.len() - query::MAX_PAGE);
    } else {
        items.truncate(query::MAX_PAGE);
    }
    Some(query::MAX_PAGE)
}

async fn get_visible<V: View>(store: &Store, ctx: &AuthContext, id: &str) -> ApiResult<Record<V::Body>> {
    match read_scope(ctx) {
        Some(scope) => Ok(store.get::<V::Body>(&scope, id).await?),
        None => Err(model::Error::not_found(<V::Body as store::Body>::KIND, id).into()),
    }
}

async fn show<V: View>(
    State(store): State<Store>,
    State(realizer): State<Realizer>,
    Caller(ctx): Caller,
    Path(id): Path<String>,
    RawQuery(raw): RawQuery,
) -> ApiResult<Json<Value>> {
    let fields = query::fields_only(&query::pairs(raw.as_deref()));
    let (rec, vctx) = match read_scope(&ctx) {
        Some(scope) if shows_derived::<V>(&fields, std::iter::empty()) => {
            // The record and what it references, from one snapshot, by key.
            let mut snap = store.snapshot().await?;
            let rec = snap.get_in::<V::Body>(&scope, &id).await?;
            let vctx = view_ctx_in::<V>(&realizer, &mut snap, std::slice::from_ref(&rec)).await?;
            (rec, vctx)
        }
        _ => (get_visible::<V>(&store, &ctx, &id).await?, ViewCtx::default()),
    };
    Ok(one::<V>(query::select_fields(V::render(&rec, &vctx), &fields)))
}

/// The project a caller's bodies may name: its own, unless it is an admin.
fn own_project(ctx: &AuthContext) -> Option<&str> {
    (!ctx.is_admin()).then_some(ctx.project_id.as_str())
}

async fn create<V: View>(
    State(app): State<App>,
    State(realizer): State<Realizer>,
    Caller(ctx): Caller,
    Extension(rid): Extension<RequestId>,
    raw: Bytes,
) -> ApiResult<Response> {
    let m = prepare_body(&raw, V::SINGULAR, V::attrs(), Op::Create, own_project(&ctx))?;
    if !ctx.is_member() {
        return Err(ApiError::Policy(format!("create_{}", V::RULE)));
    }
    V::authorize(&m, &ctx, Op::Create)?;
    let body = V::build(&m)?;
    let meta = NewMeta {
        id: None,
        project_id: create_project(&m, &ctx),
        name: m.str_of("name").unwrap_or_default(),
        description: m.str_of("description").unwrap_or_default(),
    };
    let written = app
        .create(&write_ctx(&ctx, rid), &ctx.scope(), Dialect::Neutron, meta, body)
        .await?;
    let vctx = view_ctx_for::<V>(&realizer, &written.record).await?;
    Ok((StatusCode::CREATED, one::<V>(V::render(&written.record, &vctx))).into_response())
}

async fn update<V: View>(
    State(app): State<App>,
    State(realizer): State<Realizer>,
    Caller(ctx): Caller,
    Extension(rid): Extension<RequestId>,
    Path(id): Path<String>,
    raw: Bytes,
) -> ApiResult<Json<Value>> {
    let m = prepare_body(&raw, V::SINGULAR, V::attrs(), Op::Update, own_project(&ctx))?;
    let Some(scope) = read_scope(&ctx) else {
        return Err(model::Error::not_found(<V::Body as store::Body>::KIND, &id).into());
    };
    V::authorize(&m, &ctx, Op::Update)?;
    let written = app
        .update(
            &write_ctx(&ctx, rid),
            &scope,
            Dialect::Neutron,
            &id,
            V::UPDATE,
            |rec| {
                V::apply(rec, &m);
                Ok(())
            },
        )
        .await?;
    let vctx = view_ctx_for::<V>(&realizer, &written.record).await?;
    Ok(one::<V>(V::render(&written.record, &vctx)))
}

async fn delete<V: View>(
    State(app): State<App>,
    Caller(ctx): Caller,
    Extension(rid): Extension<RequestId>,
    Path(id): Path<String>,
) -> ApiResult<StatusCode> {
    let Some(scope) = read_scope(&ctx) else {
        return Err(model::Error::not_found(<V::Body as store::Body>::KIND, &id).into());
    };
    app.delete::<V::Body>(&write_ctx(&ctx, rid), &scope, &id).await?;
    Ok(StatusCode::NO_CONTENT)
}

// ------------------------------------------------------------- core network

/// The project a create is for: the caller's, or the one named (which
/// [`prepare_body`] allows admins only).
fn create_project(m: &Map<String, Value>, ctx: &AuthContext) -> String {
    match m.str_of("tenant_id") {
        Some(p) if !p.is_empty() => p,
        _ => ctx.project_id.clone(),
    }
}

/// The networks a caller sees: its project's and every external one.
async fn networks_visible(
    store: &Store,
    realizer: &Realizer,
    ctx: &AuthContext,
) -> ApiResult<(Vec<Record<model::Network>>, ViewCtx)> {
    let Some(scope) = read_scope(ctx) else {
        return Ok((Vec::new(), ViewCtx::default()));
    };
    let mut snap = store.snapshot().await?;
    let nets: Vec<_> = snap
        .list_in::<model::Network>(&Scope::All)
        .await?
        .into_iter()
        .filter(|n| views::network_visible(&scope, n))
        .collect();
    let vctx = view_ctx_in::<Networks>(realizer, &mut snap, &nets).await?;
    Ok((nets, vctx))
}

async fn network_list(
    State(store): State<Store>,
    State(realizer): State<Realizer>,
    Caller(ctx): Caller,
    headers: HeaderMap,
    uri: OriginalUri,
    RawQuery(raw): RawQuery,
) -> ApiResult<Json<Collection<Vec<Map<String, Value>>>>> {
    let q = query::parse(query::pairs(raw.as_deref()), Networks::attrs(), &[])?;
    let (nets, vctx) = networks_visible(&store, &realizer, &ctx).await?;
    let items = nets.iter().map(|n| Networks::render(n, &vctx)).collect();
    Ok(Json(query::render(
        items,
        &q,
        Networks::PLURAL,
        &self_url(&headers, &uri),
    )))
}

async fn network_show(
    State(store): State<Store>,
    State(realizer): State<Realizer>,
    Caller(ctx): Caller,
    Path(id): Path<String>,
    RawQuery(raw): RawQuery,
) -> ApiResult<Json<Value>> {
    let fields = query::fields_only(&query::pairs(raw.as_deref()));
    let (nets, vctx) = networks_visible(&store, &realizer, &ctx).await?;
    let net = nets
        .iter()
        .find(|n| n.meta.id == id)
        .ok_or_else(|| model::Error::not_found(model::Kind::Network, &id))?;
    Ok(one::<Networks>(query::select_fields(
        Networks::render(net, &vctx),
        &fields,
    )))
}

async fn network_delete(
    State(app): State<App>,
    Caller(ctx): Caller,
    Extension(rid): Extension<RequestId>,
    Path(id): Path<String>,
) -> ApiResult<StatusCode> {
    let scope = read_scope(&ctx).ok_or_else(|| model::Error::not_found(model::Kind::Network, &id))?;
    app.network_delete(&write_ctx(&ctx, rid), &scope, &id).await?;
    Ok(StatusCode::NO_CONTENT)
}

async fn subnet_delete(
    State(app): State<App>,
    Caller(ctx): Caller,
    Extension(rid): Extension<RequestId>,
    Path(id): Path<String>,
) -> ApiResult<StatusCode> {
    let scope = read_scope(&ctx).ok_or_else(|| model::Error::not_found(model::Kind::Subnet, &id))?;
    app.subnet_delete(&write_ctx(&ctx, rid), &scope, &id).await?;
    Ok(StatusCode::NO_CONTENT)
}

async fn router_create(
    State(app): State<App>,
    Caller(ctx): Caller,
    Extension(rid): Extension<RequestId>,
    raw: Bytes,
) -> ApiResult<Response> {
    let m = prepare_body(
        &raw,
        Routers::SINGULAR,
        Routers::attrs(),
        Op::Create,
        own_project(&ctx),
    )?;
    if !ctx.is_member() {
        return Err(ApiError::Policy("create_router".into()));
    }
    Routers::authorize(&m, &ctx, Op::Create)?;
    let body = Routers::build(&m)?;
    let external = match views::gateway_change(&m)? {
        app::network::GatewayChange::Set(g) => Some(g),
        _ => None,
    };
    let meta = NewMeta {
        id: None,
        project_id: create_project(&m, &ctx),
        name: m.str_of("name").unwrap_or_default(),
        description: m.str_of("description").unwrap_or_default(),
    };
    let written = app
        .router_create(
            &write_ctx(&ctx, rid),
            &ctx.scope(),
            meta,
            body.admin_state_up,
            external,
        )
        .await?;
    let obj = Routers::render(&written.record, &ViewCtx::default());
    Ok((StatusCode::CREATED, one::<Routers>(obj)).into_response())
}

async fn router_update(
    State(app): State<App>,
    Caller(ctx): Caller,
    Extension(rid): Extension<RequestId>,
    Path(id): Path<String>,
    raw: Bytes,
) -> ApiResult<Json<Value>> {
    let m = prepare_body(
        &raw,
        Routers::SINGULAR,
        Routers::attrs(),
        Op::Update,
        own_project(&ctx),
    )?;
    let scope = read_scope(&ctx).ok_or_else(|| model::Error::not_found(model::Kind::Gateway, &id))?;
    Routers::authorize(&m, &ctx, Op::Update)?;
    let change = views::gateway_change(&m)?;
    let written = app
        .router_update(
            &write_ctx(&ctx, rid),
            &scope,
            &id,
            |rec| Routers::apply(rec, &m),
            change,
        )
        .await?;
    Ok(one::<Routers>(Routers::render(
        &written.record,
        &ViewCtx::default(),
    )))
}

async fn router_delete(
    State(app): State<App>,
    Caller(ctx): Caller,
    Extension(rid): Extension<RequestId>,
    Path(id): Path<String>,
) -> ApiResult<StatusCode> {
    let scope = read_scope(&ctx).ok_or_else(|| model::Error::not_found(model::Kind::Gateway, &id))?;
    app.router_delete(&write_ctx(&ctx, rid), &scope, &id).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// The `subnet_id` of an interface request body (`{"subnet_id": ...}`; a
/// `port_id` is refused: ports are derived, not created).
fn interface_subnet(raw: &[u8]) -> ApiResult<String> {
    let body: Value =
        serde_json::from_slice(raw).map_err(|_| ApiError::BadRequest("Malformed request body".into()))?;
    let Value::Object(o) = body else {
        return Err(ApiError::BadRequest("Body contains invalid data".into()));
    };
    if o.contains_key("port_id") {
        return Err(model::Error::Unsupported(
            "router interfaces are added by subnet_id on this server, not by port_id".into(),
        )
        .into());
    }
    match o.get("subnet_id") {
        Some(Value::String(s)) if model::validate::is_uuid_like(s) => Ok(s.clone()),
        Some(v) => Err(ApiError::BadRequest(format!(
            "Invalid input for subnet_id. Reason: '{}' is not a valid UUID.",
            attrs::py(v)
        ))),
        None => Err(ApiError::BadRequestFor {
            resource: "router",
            msg: "Either subnet_id or port_id must be specified".into(),
        }),
    }
}

async fn router_add_interface(
    State(app): State<App>,
    Caller(ctx): Caller,
    Extension(rid): Extension<RequestId>,
    Path(id): Path<String>,
    raw: Bytes,
) -> ApiResult<Json<wire::RouterInterface>> {
    let scope = read_scope(&ctx).ok_or_else(|| model::Error::not_found(model::Kind::Gateway, &id))?;
    let subnet_id = interface_subnet(&raw)?;
    let w = app
        .router_add_interface(&write_ctx(&ctx, rid), &scope, &id, &subnet_id)
        .await?;
    let gw: Record<model::Gateway> = app.store().get(&Scope::All, &id).await?;
    Ok(Json(wire::RouterInterface::new(&gw, &w.record)))
}

async fn router_remove_interface(
    State(app): State<App>,
    Caller(ctx): Caller,
    Extension(rid): Extension<RequestId>,
    Path(id): Path<String>,
    raw: Bytes,
) -> ApiResult<Json<wire::RouterInterface>> {
    let scope = read_scope(&ctx).ok_or_else(|| model::Error::not_found(model::Kind::Gateway, &id))?;
    let subnet_id = interface_subnet(&raw)?;
    let w = app
        .router_remove_interface(&write_ctx(&ctx, rid), &scope, &id, &subnet_id)
        .await?;
    let gw: Record<model::Gateway> = app.store().get(&Scope::All, &id).await?;
    Ok(Json(wire::RouterInterface::new(&gw, &w.record)))
}

/// Every port the caller sees, derived from its routers and their subnets
/// (one snapshot).
async fn ports_visible(store: &Store, ctx: &AuthContext) -> ApiResult<Vec<Map<String, Value>>> {
    let Some(scope) = read_scope(ctx) else {
        return Ok(Vec::new());
    };
    let mut snap = store.snapshot().await?;
    let gateways = snap.list_in::<model::Gateway>(&scope).await?;
    let subnets = snap.list_in::<model::Subnet>(&Scope::All).await?;
    Ok(views::ports(&gateways, &subnets)
        .iter()
        .map(wire::to_obj)
        .collect())
}

async fn port_list(
    State(store): State<Store>,
    Caller(ctx): Caller,
    headers: HeaderMap,
    uri: OriginalUri,
    RawQuery(raw): RawQuery,
) -> ApiResult<Json<Collection<Vec<Map<String, Value>>>>> {
    let (fixed_ips, pairs): (Vec<_>, Vec<_>) = query::pairs(raw.as_deref())
        .into_iter()
        .partition(|(k, _)| k == "fixed_ips");
    let q = query::parse(pairs, &views::PORT_ATTRS, &[])?;
    let wanted = fixed_ips
        .iter()
        .map(|(_, v)| views::fixed_ip_filter(v))
        .collect::<ApiResult<Vec<_>>>()?;
    let items = ports_visible(&store, &ctx)
        .await?
        .into_iter()
        .filter(|p| wanted.iter().all(|w| views::port_has_fixed_ip(p, w)))
        .collect();
    Ok(Json(query::render(items, &q, "ports", &self_url(&headers, &uri))))
}

async fn port_show(
    State(store): State<Store>,
    Caller(ctx): Caller,
    Path(id): Path<String>,
    RawQuery(raw): RawQuery,
) -> ApiResult<Json<Value>> {
    let fields = query::fields_only(&query::pairs(raw.as_deref()));
    let port = ports_visible(&store, &ctx)
        .await?
        .into_iter()
        .find(|p| p.get("id").and_then(Value::as_str) == Some(id.as_str()))
        .ok_or(ApiError::PortNotFound(id))?;
    Ok(Json(json!({ "port": query::select_fields(port, &fields) })))
}

// --------------------------------------------------------- discovery documents

async fn versions(headers: HeaderMap) -> Json<wire::Versions> {
    let base = base_url(&headers);
    Json(wire::Versions {
        versions: vec![wire::ApiVersion {
            status: "CURRENT",
            id: "v2.0",
            links: vec![wire::Link {
                rel: "self".into(),
                href: format!("{base}/v2.0/"),
            }],
        }],
    })
}

const COLLECTIONS: &[(&str, &str)] = &[
    ("ikepolicy", "vpn/ikepolicies"),
    ("ipsecpolicy", "vpn/ipsecpolicies"),
    ("vpnservice", "vpn/vpnservices"),
    ("endpoint_group", "vpn/endpoint-groups"),
    ("ipsec_site_connection", "vpn/ipsec-site-connections"),
    ("network", "networks"),
    ("subnet", "subnets"),
    ("router", "routers"),
    ("port", "ports"),
];

async fn v2_root(headers: HeaderMap, Caller(_): Caller) -> Json<wire::Resources> {
    let base = base_url(&headers);
    let resources = COLLECTIONS
        .iter()
        .map(|(name, coll)| wire::ResourceLink {
            name,
            collection: coll.rsplit('/').next().unwrap_or(coll),
            links: vec![wire::Link {
                rel: "self".into(),
                href: format!("{base}/v2.0/{coll}"),
            }],
        })
        .collect();
    Json(wire::Resources { resources })
}

const EXTENSIONS: &[(&str, &str, &str)] = &[
    ("vpnaas", "VPN service", "Extension for VPN service"),
    (
        "vpn-endpoint-groups",
        "VPN Endpoint Groups",
        "VPN endpoint groups support",
    ),
    (
        "service-type",
        "Neutron Service Type Management",
        "API for retrieving service providers for Neutron advanced services",
    ),
    (
        "vpn-flavors",
        "VPN Service Flavor Extension",
        "Flavor support for vpnservice resource",
    ),
    (
        "vpn-aes-ctr",
        "VPN Encryption with AES-CTR",
        "Add AES-CTR encryption algorithms to IKE and IPsec policies",
    ),
    (
        "router",
        "Neutron L3 Router",
        "Router abstraction for basic L3 forwarding between L2 Neutron networks and access to external networks via a NAT gateway.",
    ),
    (
        "filter-validation",
        "Filter parameters validation",
        "Provides validation on filter parameters.",
    ),
    ("sorting", "Sorting support", "Enables sorting of resources"),
    (
        "pagination",
        "Pagination support",
        "Enables pagination of resources",
    ),
    (
        "project-id",
        "project_id field enabled",
        "Extension that indicates that project_id field is enabled.",
    ),
];

fn extension(e: &(&'static str, &'static str, &'static str)) -> wire::Extension {
    wire::Extension {
        alias: e.0,
        name: e.1,
        description: e.2,
        updated: "2024-01-01T00:00:00-00:00",
        links: Vec::new(),
    }
}

async fn extensions(Caller(_): Caller) -> Json<wire::Extensions> {
    Json(wire::Extensions {
        extensions: EXTENSIONS.iter().map(extension).collect(),
    })
}

async fn extension_show(
    Caller(_): Caller,
    Path(alias): Path<String>,
) -> ApiResult<Json<wire::ExtensionDocument>> {
    EXTENSIONS
        .iter()
        .find(|e| e.0 == alias)
        .map(|e| {
            Json(wire::ExtensionDocument {
                extension: extension(e),
            })
        })
        .ok_or(ApiError::ExtensionNotFound(alias))
}
