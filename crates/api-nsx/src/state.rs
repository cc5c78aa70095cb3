//! Realization state and runtime status of sessions, as NSX reports them:
//! `GET /api/v1/vpn/ipsec/sessions/{id}/state[?request_id=...]` (per transport
//! node `in_sync` / `in_progress` / `failed` / `unknown`, with the admin guide's
//! messages) and `GET .../sessions/{id}/status` (UP / DOWN / DEGRADED, IKE state,
//! tunnel and traffic counters). Both work for sessions created through either
//! API: a Neutron ipsec-site-connection id is a session id. The states
//! themselves are computed by `realize`; this module only renders them.
//!
//! The runtime routes beside them (`realize::stats` says what the counters
//! mean): `GET .../sessions/{id}/statistics` (per policy and selector pair,
//! counters since the last reset, per node), `POST
//! .../sessions/{id}/statistics?action=reset` (200, no body, as NSX's SDKs
//! expect), and `GET .../sessions/summary` (totals over every session; the
//! route's literal segment wins over `{id}`, so no session is looked up by
//! the id "summary"). NSX's Manager API has no detailed-status endpoint: the
//! per-node detail (IKE state, reason, last change, rekeys, IKE log) is a
//! field of our own on `/status`, `transport_node_status`.

use app::App;
use axum::extract::{FromRef, Path, Query};
use axum::http::StatusCode;
use axum::routing::get;
use axum::{Json, Router};
use identity::Identity;
use realize::Realizer;
use serde::Deserialize;
use store::{Scope, Store};

use crate::PREFIX;
use crate::auth::NsxCaller;
use crate::error::{NsxError, NsxResult};
use crate::resources::session;
use crate::response;
use realize::stats::{self, Counters};

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
        .route(
            &format!("{PREFIX}/sessions/{{id}}/statistics"),
            get(statistics).post(statistics_action),
        )
        .route(&format!("{PREFIX}/sessions/summary"), get(summary))
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
    check_source(q.source.as_deref())?;
    let (conn, st) = r
        .session_detailed_status(&id)
        .await
        .map_err(|e| NsxError::for_target(e, &id))?;
    let s = &st.status;
    Ok(Json(response::SessionStatus {
        ipsec_vpn_session_id: conn.meta.id.clone(),
        display_name: conn.meta.name.clone(),
        session_status: s.session_status,
        ike_status: ike_status(s),
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
        transport_node_status: st.nodes.iter().map(|n| node_status(n, true)).collect(),
    }))
}

/// `source` is `realtime` or `cached`; both answer the nodes' last reports
/// (which nodes send at least every heartbeat, and within a second of a
/// change).
fn check_source(source: Option<&str>) -> NsxResult<()> {
    match source {
        None | Some("realtime") | Some("cached") => Ok(()),
        Some(_) => Err(NsxError::field("source", "must be realtime or cached")),
    }
}

fn ike_status(s: &realize::SessionStatus) -> response::IkeStatus {
    response::IkeStatus {
        ike_session_state: s.ike_session_state,
        fail_reason: s.fail_reason.clone(),
        transport_node_id: s.transport_node_id.clone(),
    }
}

fn counters(c: Counters) -> response::TrafficCounters {
    response::TrafficCounters {
        bytes_in: c.bytes_in,
        bytes_out: c.bytes_out,
        packets_in: c.packets_in,
        packets_out: c.packets_out,
        dropped_packets_in: 0,
        dropped_packets_out: 0,
    }
}

fn node_status(n: &stats::NodeStatistics, with_log: bool) -> response::TransportNodeStatus {
    response::TransportNodeStatus {
        transport_node_id: n.node_id.clone(),
        display_name: n.node_name.clone(),
        reachable: n.alive,
        last_update_timestamp: n.last_update_ms,
        ike_session_state: n.ike_session_state,
        fail_reason: n.fail_reason.clone(),
        traffic_counters: counters(n.counters),
        last_status_change_timestamp: n.last_status_change_ms,
        established_seconds: n.established_seconds,
        ike_rekeys: n.ike_rekeys,
        child_rekeys: n.child_rekeys,
        log: if with_log { n.log.clone() } else { Vec::new() },
    }
}

async fn statistics(
    axum::extract::State(r): axum::extract::State<Realizer>,
    NsxCaller(_): NsxCaller,
    Path(id): Path<String>,
    Query(q): Query<StatusQuery>,
) -> NsxResult<Json<response::SessionStatistics>> {
    check_source(q.source.as_deref())?;
    let (conn, st) = r
        .session_statistics(&id)
        .await
        .map_err(|e| NsxError::for_target(e, &id))?;
    Ok(Json(response::SessionStatistics {
        ipsec_vpn_session_id: conn.meta.id.clone(),
        display_name: conn.meta.name.clone(),
        partial_stats: st.partial,
        last_update_timestamp: st.last_update_ms,
        ike_status: ike_status(&st.status),
        aggregate_traffic_counters: counters(st.counters),
        ike_traffic_statistics: response::IkeTrafficStatistics::default(),
        policy_statistics: st
            .policies
            .iter()
            .map(|p| response::PolicyTrafficStatistics {
                policy_id: p.policy_id.clone(),
                tunnel_port_id: p.tunnel_port_id.clone(),
                aggregate_traffic_counters: counters(p.counters),
                tunnel_statistics: p
                    .pairs
                    .iter()
                    .map(|t| response::TunnelTrafficStatistics {
                        local_subnet: t.local_subnet.to_string(),
                        peer_subnet: t.peer_subnet.to_string(),
                        tunnel_status: t.status.as_str(),
                        tunnel_down_reason: t.down_reason.clone().unwrap_or_default(),
                        bytes_in: t.counters.bytes_in,
                        bytes_out: t.counters.bytes_out,
                        packets_in: t.counters.packets_in,
                        packets_out: t.counters.packets_out,
                        dropped_packets_in: 0,
                        dropped_packets_out: 0,
                        integrity_failures: 0,
                        encryption_failures: 0,
                        decryption_failures: 0,
                        replay_errors: 0,
                        sa_mismatch_errors_in: 0,
                        sa_mismatch_errors_out: 0,
                        nomatching_policy_errors: 0,
                        seq_number_overflow_error: 0,
                        packets_sent_other_error: 0,
                        packets_received_other_error: 0,
                    })
                    .collect(),
            })
            .collect(),
        transport_node_statistics: st.nodes.iter().map(|n| node_status(n, false)).collect(),
    }))
}

#[derive(Debug, Deserialize)]
struct ActionQuery {
    action: Option<String>,
}

/// `POST .../statistics?action=reset`: 200 with no body (NSX's SDKs declare
/// no return value).
async fn statistics_action(
    axum::extract::State(r): axum::extract::State<Realizer>,
    NsxCaller(_): NsxCaller,
    Path(id): Path<String>,
    Query(q): Query<ActionQuery>,
) -> NsxResult<StatusCode> {
    match q.action.as_deref() {
        Some("reset") => {}
        _ => return Err(NsxError::field("action", "must be reset")),
    }
    r.session_statistics_reset(&id)
        .await
        .map_err(|e| NsxError::for_target(e, &id))?;
    Ok(StatusCode::OK)
}

#[derive(Debug, Deserialize)]
struct SummaryQuery {
    /// A peer endpoint's id: only the sessions made from it.
    site_id: Option<String>,
    source: Option<String>,
}

async fn summary(
    axum::extract::State(r): axum::extract::State<Realizer>,
    NsxCaller(_): NsxCaller,
    Query(q): Query<SummaryQuery>,
) -> NsxResult<Json<response::SessionSummary>> {
    // As NSX: the summary is only ever cached.
    if let Some(s) = q.source.as_deref()
        && s != "cached"
    {
        return Err(NsxError::field("source", "the summary supports only cached"));
    }
    let site = q.site_id.as_deref().filter(|s| !s.is_empty());
    // NSX callers are admins: every session.
    let sum = r.sessions_summary(&Scope::All, site).await?;
    Ok(Json(response::SessionSummary {
        last_update_timestamp: sum.last_update_ms,
        session_summary: response::IkeSessionSummary {
            total_sessions: sum.total,
            established_sessions: sum.established,
            failed_sessions: sum.failed,
            degraded_sessions: sum.degraded,
        },
        aggregate_traffic_counters: counters(sum.counters),
        traffic_summary_per_session: sum
            .per_session
            .into_iter()
            .map(|t| response::SessionTrafficSummary {
                ipsec_vpn_session: response::ResourceReference {
                    target_id: t.id,
                    target_type: if t.route_based {
                        session::ROUTE_BASED
                    } else {
                        session::POLICY_BASED
                    },
                    is_valid: true,
                    target_display_name: Some(t.name),
                },
                traffic_counters: counters(t.counters),
            })
            .collect(),
    }))
}
