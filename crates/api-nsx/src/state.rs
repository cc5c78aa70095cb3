//! Realization state and runtime status of sessions, as NSX reports them:
//! `GET /api/v1/vpn/ipsec/sessions/{id}/state[?request_id=...]` (per transport
//! node `in_sync` / `in_progress` / `failed` / `unknown`, with the admin guide's
//! messages) and `GET .../sessions/{id}/status` (UP / DOWN / DEGRADED, IKE state,
//! tunnel and traffic counters). Both work for sessions created through either
//! API: a Neutron ipsec-site-connection id is a session id. The states
//! themselves are computed by `realize`; this module only renders them.

use app::App;
use axum::extract::{FromRef, Path, Query};
use axum::routing::get;
use axum::{Json, Router};
use identity::Identity;
use realize::Realizer;
use serde::Deserialize;
use serde_json::{Map, Value, json};
use store::Store;

use crate::PREFIX;
use crate::auth::NsxCaller;
use crate::error::{NsxError, NsxResult};

/// The state and status routes (they need the realization engine).
pub fn router<S>() -> Router<S>
where
    S: Clone + Send + Sync + 'static,
    Store: FromRef<S>,
    App: FromRef<S>,
    Identity: FromRef<S>,
    Realizer: FromRef<S>,
{
    Router::new()
        .route(&format!("{PREFIX}/sessions/{{id}}/state"), get(state))
        .route(&format!("{PREFIX}/sessions/{{id}}/status"), get(status))
}

#[derive(Debug, Deserialize)]
pub struct StateQuery {
    request_id: Option<String>,
    /// Deprecated alternative to `request_id`: a generation ("barrier") number.
    barrier_id: Option<i64>,
}

async fn state(
    axum::extract::State(r): axum::extract::State<Realizer>,
    NsxCaller(_): NsxCaller,
    Path(id): Path<String>,
    Query(q): Query<StateQuery>,
) -> NsxResult<Json<Value>> {
    let rid = q.request_id.as_deref().filter(|s| !s.is_empty());
    let st = match (rid, q.barrier_id) {
        (None, Some(barrier)) if barrier >= 0 => r.session_state_at(&id, barrier).await,
        (None, Some(_)) => return Err(NsxError::field("barrier_id", "must be 0 or greater")),
        _ => r.session_state(&id, rid).await,
    }
    .map_err(|e| NsxError::for_target(e, &id))?;
    let mut o = Map::new();
    if !st.details.is_empty() {
        let details: Vec<Value> = st
            .details
            .iter()
            .map(|d| {
                let mut e = Map::new();
                e.insert("sub_system_type".into(), json!("TransportNode"));
                e.insert("sub_system_id".into(), json!(d.node_id));
                e.insert("state".into(), json!(d.state.as_str()));
                if let Some(m) = &d.failure_message {
                    e.insert("failure_message".into(), json!(m));
                }
                Value::Object(e)
            })
            .collect();
        o.insert("details".into(), Value::Array(details));
    }
    o.insert("state".into(), json!(st.state.as_str()));
    if let Some(m) = &st.failure_message {
        o.insert("failure_message".into(), json!(m));
    }
    Ok(Json(Value::Object(o)))
}

#[derive(Debug, Deserialize)]
pub struct StatusQuery {
    source: Option<String>,
}

async fn status(
    axum::extract::State(r): axum::extract::State<Realizer>,
    NsxCaller(_): NsxCaller,
    Path(id): Path<String>,
    Query(q): Query<StatusQuery>,
) -> NsxResult<Json<Value>> {
    if let Some(s) = q.source.as_deref()
        && s != "realtime"
        && s != "cached"
    {
        return Err(NsxError::field("source", "must be realtime or cached"));
    }
    let (conn, s) = r
        .session_status(&id)
        .await
        .map_err(|e| NsxError::for_target(e, &id))?;
    let mut ike = Map::new();
    ike.insert("ike_session_state".into(), json!(s.ike_session_state));
    if let Some(f) = &s.fail_reason {
        ike.insert("fail_reason".into(), json!(f));
    }
    if let Some(n) = &s.transport_node_id {
        ike.insert("transport_node_id".into(), json!(n));
    }
    Ok(Json(json!({
        "ipsec_vpn_session_id": conn.meta.id,
        "display_name": conn.meta.name,
        "session_status": s.session_status,
        "ike_status": ike,
        "total_tunnels": s.total_tunnels,
        "negotiated_tunnels": s.negotiated_tunnels,
        "failed_tunnels": s.failed_tunnels,
        "aggregate_traffic_counters": {
            "bytes_in": s.bytes_in, "bytes_out": s.bytes_out,
            "packets_in": s.packets_in, "packets_out": s.packets_out,
            "dropped_packets_in": 0, "dropped_packets_out": 0
        },
        "last_update_timestamp": s.last_update_ms,
    })))
}
