//! Turns what charon shows (`list-sas`) into the node API's [`TunnelStatus`].
//!
//! Pure, so the mapping rules are tested without charon:
//! - IKE state: ESTABLISHED (also while REKEYING/REKEYED) wins over CONNECTING
//!   (CREATED/CONNECTING); anything else, or no IKE_SA, is DOWN. A tunnel can have
//!   more than one IKE_SA (both sides initiated at once); the best one counts.
//! - CHILD SAs installed: distinct CHILD_SA configs with an installed SA
//!   (INSTALLED, UPDATING, REKEYING, REKEYED), capped at the expected count, so
//!   duplicates or an SA being replaced during a rekey don't count twice.
//! - Counters: summed over installed CHILD_SAs. They restart at 0 when an SA is
//!   rekeyed (charon counts per SA), so they are a liveness signal, not a meter.
//! - Message and reason: charon unreachable (`NODE_FAILURE`), else the apply
//!   failure (`CONFIGURATION_FAILED`), and while the tunnel is not up: what
//!   charon's events said last (see [`crate::events`]), else the last
//!   initiation failure (classified from its words, `OTHER` when they say
//!   nothing known), else a hint (waiting for the peer) with no reason. None
//!   of them while the tunnel is up.
//! - Established time from the best established IKE_SA; rekey counts, the last
//!   status change and the log lines from the tunnel's event track.

use std::collections::BTreeSet;

use model::realization::{DownReason, IkeState, TunnelStatus};

use crate::events::{self, Track};
use crate::vici::IkeSa;

/// charon's IKE_SA state as the node API's.
pub fn ike_state(state: &str) -> IkeState {
    match state {
        "ESTABLISHED" | "REKEYING" | "REKEYED" => IkeState::Established,
        "CREATED" | "CONNECTING" => IkeState::Connecting,
        _ => IkeState::Down,
    }
}

fn rank(s: IkeState) -> u8 {
    match s {
        IkeState::Established => 2,
        IkeState::Connecting => 1,
        IkeState::Down => 0,
    }
}

/// Whether a CHILD_SA in this state carries traffic.
pub fn child_installed(state: &str) -> bool {
    matches!(state, "INSTALLED" | "UPDATING" | "REKEYING" | "REKEYED")
}

/// What is known about a tunnel besides its SAs.
#[derive(Debug, Clone, Copy, Default)]
pub struct Context<'a> {
    /// CHILD_SAs the tunnel should have: one in IKEv2, one per traffic-selector
    /// pair in IKEv1.
    pub expected: u32,
    /// Why it could not be applied.
    pub failure: Option<&'a str>,
    /// Why the last initiation failed.
    pub initiate_error: Option<&'a str>,
    /// Shown when the tunnel is not up and nothing better is known.
    pub hint: Option<&'a str>,
    /// Why the node can't drive charon at all (every tunnel shares it).
    pub node_error: Option<&'a str>,
    /// What charon's events said about the tunnel.
    pub track: Option<&'a Track>,
}

/// The status of tunnel `id` from the IKE_SAs charon lists (any order, any names).
pub fn tunnel_status(id: &str, sas: &[IkeSa], cx: Context<'_>) -> TunnelStatus {
    let mut best = IkeState::Down;
    let mut established = None;
    let mut installed = BTreeSet::new();
    let (mut bytes_in, mut bytes_out, mut packets_in, mut packets_out) = (0, 0, 0, 0);
    for sa in sas.iter().filter(|sa| sa.name == id) {
        let st = ike_state(&sa.state);
        if rank(st) > rank(best) {
            best = st;
        }
        if st == IkeState::Established {
            // The oldest established SA (a duplicate being replaced is younger).
            established = established.max(sa.established);
        }
        for c in sa.children.iter().filter(|c| child_installed(&c.state)) {
            installed.insert(c.name.as_str());
            bytes_in += c.bytes_in;
            bytes_out += c.bytes_out;
            packets_in += c.packets_in;
            packets_out += c.packets_out;
        }
    }
    let child_sas_installed = (installed.len() as u32).min(cx.expected);
    let up = best == IkeState::Established && child_sas_installed > 0;
    let (down_reason, message) = reason(up, &cx);
    let track = cx.track;
    TunnelStatus {
        id: id.to_string(),
        ike_state: best,
        child_sas_installed,
        child_sas_expected: cx.expected,
        bytes_in,
        bytes_out,
        packets_in,
        packets_out,
        message,
        down_reason,
        last_status_change_ms: track.and_then(|t| t.last_change_ms),
        established_seconds: if best == IkeState::Established {
            established
        } else {
            None
        },
        ike_rekeys: track.map_or(0, |t| t.ike_rekeys),
        child_rekeys: track.map_or(0, |t| t.child_rekeys),
        log: track.map(|t| t.log.iter().cloned().collect()).unwrap_or_default(),
    }
}

/// The classified reason and the verbatim message (see the module doc).
fn reason(up: bool, cx: &Context<'_>) -> (Option<DownReason>, Option<String>) {
    let with = |r: DownReason, m: &str| (Some(r), Some(m.to_string()));
    if let Some(e) = cx.node_error {
        return with(DownReason::NodeFailure, e);
    }
    if let Some(f) = cx.failure {
        return with(DownReason::ConfigurationFailed, f);
    }
    if up {
        return (None, None);
    }
    if let Some((r, m)) = cx.track.and_then(|t| t.reason.as_ref()) {
        return with(*r, m);
    }
    if let Some(e) = cx.initiate_error {
        return with(events::classify(e).unwrap_or(DownReason::Other), e);
    }
    (None, cx.hint.map(str::to_string))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::vici::ChildSa;

    fn sa(name: &str, state: &str, children: &[(&str, &str, u64)]) -> IkeSa {
        IkeSa {
            name: name.into(),
            state: state.into(),
            established: None,
            children: children
                .iter()
                .map(|(n, s, p)| ChildSa {
                    name: n.to_string(),
                    state: s.to_string(),
                    packets_in: *p,
                    packets_out: *p,
                    bytes_in: p * 84,
                    bytes_out: p * 84,
                })
                .collect(),
        }
    }

    #[test]
    fn best_sa_wins_and_duplicates_count_once() {
        let sas = vec![
            sa("t1", "CONNECTING", &[]),
            sa("t1", "ESTABLISHED", &[("t1", "INSTALLED", 3)]),
            sa(
                "t1",
                "ESTABLISHED",
                &[("t1", "INSTALLED", 2), ("t1", "REKEYED", 1)],
            ),
            sa("t2", "ESTABLISHED", &[("t2", "INSTALLED", 100)]),
        ];
        let st = tunnel_status(
            "t1",
            &sas,
            Context {
                expected: 1,
                initiate_error: Some("old failure"),
                ..Context::default()
            },
        );
        assert_eq!(st.ike_state, IkeState::Established);
        assert_eq!(st.child_sas_installed, 1);
        assert_eq!(st.packets_in, 6);
        assert_eq!(st.bytes_out, 6 * 84);
        assert_eq!(st.message, None, "an up tunnel shows no stale error");
    }

    #[test]
    fn down_tunnel_explains_why() {
        let st = tunnel_status(
            "t1",
            &[sa("t1", "DELETING", &[("t1", "DELETED", 1)])],
            Context {
                expected: 2,
                initiate_error: Some("received AUTHENTICATION_FAILED notify error"),
                hint: Some("waiting"),
                ..Context::default()
            },
        );
        assert_eq!(st.ike_state, IkeState::Down);
        assert_eq!(st.child_sas_installed, 0);
        assert_eq!(st.child_sas_expected, 2);
        assert_eq!(
            st.message.as_deref(),
            Some("received AUTHENTICATION_FAILED notify error")
        );
        let st = tunnel_status(
            "t9",
            &[],
            Context {
                expected: 1,
                failure: Some("load-conn failed"),
                ..Context::default()
            },
        );
        assert_eq!(st.message.as_deref(), Some("load-conn failed"));
        assert_eq!(st.down_reason, Some(DownReason::ConfigurationFailed));
    }

    #[test]
    fn reasons_come_from_the_node_the_events_or_the_initiation() {
        let st = tunnel_status(
            "t1",
            &[],
            Context {
                expected: 1,
                initiate_error: Some("received AUTHENTICATION_FAILED notify error"),
                ..Context::default()
            },
        );
        assert_eq!(st.down_reason, Some(DownReason::AuthenticationFailed));
        let st = tunnel_status(
            "t1",
            &[],
            Context {
                expected: 1,
                initiate_error: Some("establishing CHILD_SA 't1' failed"),
                ..Context::default()
            },
        );
        assert_eq!(st.down_reason, Some(DownReason::Other));
        let st = tunnel_status(
            "t1",
            &[],
            Context {
                expected: 1,
                hint: Some("waiting for the peer to initiate"),
                ..Context::default()
            },
        );
        assert_eq!(st.down_reason, None, "waiting is not a failure");
        assert_eq!(st.message.as_deref(), Some("waiting for the peer to initiate"));

        let mut track = Track::default();
        track.apply(
            &crate::events::Event::Log {
                name: Some("t1".into()),
                ike_sa: Some(1),
                group: "IKE".into(),
                msg: "giving up after 5 retransmits".into(),
            },
            7,
        );
        track.ike_rekeys = 3;
        let st = tunnel_status(
            "t1",
            &[],
            Context {
                expected: 1,
                initiate_error: Some("older"),
                track: Some(&track),
                ..Context::default()
            },
        );
        assert_eq!(st.down_reason, Some(DownReason::PeerUnreachable));
        assert_eq!(st.message.as_deref(), Some("giving up after 5 retransmits"));
        assert_eq!(st.log, vec!["[IKE] giving up after 5 retransmits".to_string()]);
        assert_eq!(st.ike_rekeys, 3);

        let st = tunnel_status(
            "t1",
            &[],
            Context {
                expected: 1,
                node_error: Some("charon unreachable: cannot connect"),
                track: Some(&track),
                ..Context::default()
            },
        );
        assert_eq!(st.down_reason, Some(DownReason::NodeFailure));
        assert_eq!(st.message.as_deref(), Some("charon unreachable: cannot connect"));

        let mut up = sa("t1", "ESTABLISHED", &[("t1", "INSTALLED", 1)]);
        up.established = Some(42);
        let st = tunnel_status(
            "t1",
            &[up],
            Context {
                expected: 1,
                track: Some(&track),
                ..Context::default()
            },
        );
        assert_eq!((st.down_reason, st.message), (None, None));
        assert_eq!(st.established_seconds, Some(42));
    }
}
