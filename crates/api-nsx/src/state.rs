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
use store::Store;

use crate::PREFIX;
use crate::auth::NsxCaller;
use crate::error::{NsxError, NsxResult};
use crate::response;

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
struct StateQuery {
    request_id: Option<String>,
    /// Deprecated alternative to `request_id`: a generation ("barrier") number.
    barrier_id: Option<i64>,
}

async fn state(
    axum::extract::State(r): axum::extract::State<Realizer>,
    NsxCaller(_): NsxCaller,
    Path(id): Path<String>,
    Query(q): Query<StateQuery>,
) -> NsxResult<Json<response::SessionState>> {
    let rid = q.request_id.as_deref().filter(|s| !s.is_empty());
    let st = match (rid, q.barrier_id) {
        (None, Some(barrier)) if barrier >= 0 => r.session_state_at(&id, barrier).await,
        (None, Some(_)) => return Err(NsxError::field("barrier_id", "must be 0 or greater")),
        _ => r.session_state(&id, rid).await,
    }
    .map_err(|e| NsxError::for_target(e, &id))?;
    Ok(Json(response::SessionState {
        details: st
            .details
            .iter()
            .map(|d| response::StateDetail {
                sub_system_type: "TransportNode",
                sub_system_id: d.node_id.clone(),
                state: d.state.as_str(),
                failure_message: d.failure_message.clone(),
            })
            .collect(),
        state: st.state.as_str(),
        failure_message: st.failure_message.clone(),
    }))
}

#[derive(Debug, Deserialize)]
struct StatusQuery {
    source: Option<String>,
}

async fn status(
    axum::extract::State(r): axum::extract::State<Realizer>,
    NsxCaller(_): NsxCaller,
    Path(id): Path<String>,
    Query(q): Query<StatusQuery>,
) -> NsxResult<Json<response::SessionStatus>> {
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
    Ok(Json(response::SessionStatus {
        ipsec_vpn_session_id: conn.meta.id.clone(),
        display_name: conn.meta.name.clone(),
        session_status: s.session_status,
        ike_status: response::IkeStatus {
            ike_session_state: s.ike_session_state,
            fail_reason: s.fail_reason.clone(),
            transport_node_id: s.transport_node_id.clone(),
        },
        total_tunnels: s.total_tunnels,
        negotiated_tunnels: s.negotiated_tunnels,
        failed_tunnels: s.failed_tunnels,
        aggregate_traffic_counters: response::TrafficCounters {
            bytes_in: s.bytes_in,
            bytes_out: s.bytes_out,
            packets_in: s.packets_in,
            packets_out: s.packets_out,
            dropped_packets_in: 0,
            dropped_packets_out: 0,
        },
        last_update_timestamp: s.last_update_ms,
    }))
}
