//! charon's VICI events, and what they teach about each tunnel.
//!
//! Why events and not only `list-sas`: polling every few seconds shows *that* a
//! tunnel is down, late, and never *why* — the reason is in charon's log and
//! notifies at the moment it happens (an AUTHENTICATION_FAILED notify, "giving
//! up after 5 retransmits"). The agent subscribes to `ike-updown`,
//! `child-updown`, `ike-rekey`, `child-rekey` and `log` on a second VICI
//! connection (see `vici::charon::spawn_events`), keeps per tunnel what they
//! said ([`Track`]), and reports within a second of a change; the periodic
//! `list-sas` stays as the reconciling heartbeat.
//!
//! Everything here is pure: the mapping from charon's words to a
//! [`DownReason`] is tested against recorded charon 5.9 log lines.
//!
//! Attribution: a `log` event belongs to a tunnel by its `ikesa-name`, which
//! is the tunnel id once the IKE_SA has a config. A responder's lines before
//! that (its IKE_SA_INIT: "received proposals unacceptable", "no IKE config
//! found for A...B") carry `(unnamed)`, but also the IKE_SA's `ikesa-uniqueid`:
//! [`Tracks`] learns which tunnel an IKE_SA is from a named line of it, or
//! from the peer address its first lines name ("198.18.0.2 is initiating an
//! IKE_SA", "A...B") when exactly one tunnel has that peer, and attributes
//! the IKE_SA's unnamed lines by it. Lines with neither stay unattributed.
//! charon forwards log lines up to level 1 to VICI clients.

use std::collections::{BTreeMap, VecDeque};

use model::realization::{DownReason, TUNNEL_LOG_LINES};

/// Wall-clock epoch milliseconds (status changes are reported on the node's clock).
pub fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

/// One event from charon, reduced to what the agent uses.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// The event stream (re)connected: state may have changed while it was away.
    Connected,
    /// The event stream lost charon.
    Lost,
    /// `ike-updown` for IKE_SA config `name`.
    IkeUpDown {
        /// The connection name (tunnel id).
        name: String,
        /// `up = yes`.
        up: bool,
    },
    /// `child-updown` of a CHILD_SA of IKE_SA config `name`.
    ChildUpDown {
        /// The connection name (tunnel id).
        name: String,
        /// `up = yes`.
        up: bool,
    },
    /// `ike-rekey` of IKE_SA config `name`.
    IkeRekey {
        /// The connection name (tunnel id).
        name: String,
    },
    /// `child-rekey`: `children` CHILD_SAs of IKE_SA config `name` rekeyed.
    ChildRekey {
        /// The connection name (tunnel id).
        name: String,
        /// How many CHILD_SAs the event names (at least 1).
        children: u64,
    },
    /// A `log` line.
    Log {
        /// `ikesa-name`, when the line belongs to an IKE_SA with a config.
        name: Option<String>,
        /// `ikesa-uniqueid`, when the line belongs to an IKE_SA.
        ike_sa: Option<u32>,
        /// charon's log group (`IKE`, `CFG`, `NET`, ...).
        group: String,
        /// The line, verbatim.
        msg: String,
    },
}

impl Event {
    /// The tunnel the event is about, if any.
    pub fn tunnel(&self) -> Option<&str> {
        match self {
            Event::IkeUpDown { name, .. }
            | Event::ChildUpDown { name, .. }
            | Event::IkeRekey { name }
            | Event::ChildRekey { name, .. } => Some(name),
            Event::Log { name, .. } => name.as_deref(),
            Event::Connected | Event::Lost => None,
        }
    }
}

/// What a line of charon's log says about why a tunnel is (going) down, if
/// anything. `None` for the ordinary chatter of a negotiation.
pub fn classify(line: &str) -> Option<DownReason> {
    use DownReason::*;
    // Order matters only where a line could match two rules; none do today.
    const RULES: &[(&str, DownReason)] = &[
        ("AUTHENTICATION_FAILED", AuthenticationFailed),
        ("N(AUTH_FAILED)", AuthenticationFailed),
        ("MAC mismatched", AuthenticationFailed),
        ("no shared key found", AuthenticationFailed),
        ("peer authentication failed", AuthenticationFailed),
        ("no matching peer config found", AuthenticationFailed),
        ("NO_PROPOSAL_CHOSEN", NoProposalChosen),
        ("N(NO_PROP)", NoProposalChosen),
        ("proposals unacceptable", NoProposalChosen),
        ("proposals inacceptable", NoProposalChosen),
        ("no acceptable proposal found", NoProposalChosen),
        ("TS_UNACCEPTABLE", TsUnacceptable),
        ("N(TS_UNACCEPT)", TsUnacceptable),
        ("no acceptable traffic selectors found", TsUnacceptable),
        ("DPD check timed out", DpdTimeout),
        ("giving up after", PeerUnreachable),
        ("peer not responding", PeerUnreachable),
    ];
    if let Some((_, r)) = RULES.iter().find(|(needle, _)| line.contains(needle)) {
        return Some(*r);
    }
    // "authentication of 'sun' with pre-shared key failed" and the like.
    if line.starts_with("authentication of") && line.contains("failed") {
        return Some(AuthenticationFailed);
    }
    // "tried 1 shared key for 'a' - 'b', but MAC mismatched" is matched above;
    // "tried 0 shared keys ..." has no MAC part.
    if line.starts_with("tried ") && line.contains("shared key") {
        return Some(AuthenticationFailed);
    }
    None
}

/// Whether a line is one of charon's message dumps (`parsed IKE_AUTH response
/// 1 [ N(AUTH_FAILED) ]`): classifiable, but less telling than a sentence.
fn is_dump(line: &str) -> bool {
    line.contains(" [ ")
}

/// What the events said about one tunnel.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Track {
    /// Why it went down last, and charon's words; cleared when it comes up.
    pub reason: Option<(DownReason, String)>,
    /// The last log lines for it, oldest first, at most [`TUNNEL_LOG_LINES`].
    pub log: VecDeque<String>,
    /// IKE_SA rekeys seen.
    pub ike_rekeys: u64,
    /// CHILD_SA rekeys seen.
    pub child_rekeys: u64,
    /// Epoch ms of the last up/down change seen.
    pub last_change_ms: Option<i64>,
    /// The (IKE established, CHILD SAs installed) pair last seen, by events or
    /// by `list-sas`: a change of it is a status change.
    pub seen: Option<(bool, u32)>,
}

impl Track {
    /// Whether the tunnel was last seen with an IKE_SA up.
    fn was_up(&self) -> bool {
        self.seen.is_some_and(|(ike, _)| ike)
    }

    /// Records what `list-sas` (or an event) shows now: a different picture
    /// than the last one is a status change at `now_ms`; coming up clears the
    /// down reason.
    pub fn observed(&mut self, ike_up: bool, children: u32, now_ms: i64) {
        let now = (ike_up, children);
        if self.seen != Some(now) {
            if self.seen.is_some() || ike_up {
                self.last_change_ms = Some(now_ms);
            }
            self.seen = Some(now);
        }
        if ike_up && children > 0 {
            self.reason = None;
        }
    }

    /// Takes one event about this tunnel.
    pub fn apply(&mut self, ev: &Event, now_ms: i64) {
        match ev {
            Event::IkeUpDown { up, .. } => {
                let children = if *up { self.seen.map_or(0, |(_, c)| c) } else { 0 };
                self.observed(*up, children, now_ms);
                if *up {
                    // An IKE_SA alone is not the tunnel; keep a reason until
                    // the CHILD_SA is up too, except a node-level one.
                    if matches!(self.reason, Some((DownReason::NodeFailure, _))) {
                        self.reason = None;
                    }
                }
            }
            Event::ChildUpDown { up, .. } => {
                let (ike, c) = self.seen.unwrap_or((false, 0));
                let c = if *up {
                    c.saturating_add(1).max(1)
                } else {
                    c.saturating_sub(1)
                };
                self.observed(ike || *up, c, now_ms);
            }
            Event::IkeRekey { .. } => self.ike_rekeys += 1,
            Event::ChildRekey { children, .. } => self.child_rekeys += (*children).max(1),
            Event::Log { group, msg, .. } => {
                if self.log.len() >= TUNNEL_LOG_LINES {
                    self.log.pop_front();
                }
                self.log.push_back(format!("[{group}] {msg}"));
                if let Some(mut r) = classify(msg) {
                    // Retransmits exhausted on an SA that was up: the peer
                    // stopped answering liveness checks.
                    if r == DownReason::PeerUnreachable && self.was_up() {
                        r = DownReason::DpdTimeout;
                    }
                    let keep = matches!(&self.reason, Some((cur, line))
                        if *cur == r && is_dump(msg) && !is_dump(line));
                    if !keep {
                        self.reason = Some((r, msg.trim().to_string()));
                    }
                }
            }
            Event::Connected | Event::Lost => {}
        }
    }
}

/// How many IKE_SAs' tunnels [`Tracks`] remembers (charon's unique ids only
/// grow; the oldest are forgotten first).
pub const IKE_SAS_REMEMBERED: usize = 4096;

/// The tracks of every tunnel, by tunnel id, and which tunnel each recently
/// seen IKE_SA (charon's unique id) belongs to.
#[derive(Debug, Clone, Default)]
pub struct Tracks {
    /// Per tunnel id.
    pub tunnels: BTreeMap<String, Track>,
    /// IKE_SA unique id → tunnel id (at most [`IKE_SAS_REMEMBERED`]).
    ike_sas: BTreeMap<u32, String>,
}

impl Tracks {
    /// Takes one event; returns whether it concerned a tunnel in `known`.
    /// `by_peer` names the one desired tunnel with a peer address, if exactly
    /// one has it: it attributes an unnamed IKE_SA's lines (see the module).
    pub fn apply(
        &mut self,
        ev: &Event,
        now_ms: i64,
        known: impl Fn(&str) -> bool,
        by_peer: impl Fn(std::net::IpAddr) -> Option<String>,
    ) -> bool {
        let (sa, msg) = match ev {
            Event::Log { ike_sa, msg, .. } => (*ike_sa, msg.as_str()),
            _ => (None, ""),
        };
        let id = match (ev.tunnel(), sa) {
            (Some(id), _) if !known(id) => None,
            (Some(id), Some(sa)) => {
                self.remember(sa, id);
                Some(id.to_string())
            }
            (Some(id), None) => Some(id.to_string()),
            (None, Some(sa)) => self.ike_sas.get(&sa).cloned().or_else(|| {
                let found = addresses(msg).into_iter().find_map(&by_peer);
                if let Some(id) = &found {
                    self.remember(sa, id);
                }
                found
            }),
            (None, None) => None,
        };
        match id {
            Some(id) if known(&id) => {
                self.tunnels.entry(id).or_default().apply(ev, now_ms);
                true
            }
            _ => false,
        }
    }

    fn remember(&mut self, sa: u32, id: &str) {
        if self.ike_sas.get(&sa).map(String::as_str) == Some(id) {
            return;
        }
        self.ike_sas.insert(sa, id.to_string());
        while self.ike_sas.len() > IKE_SAS_REMEMBERED {
            self.ike_sas.pop_first();
        }
    }

    /// One tunnel's track.
    pub fn get(&self, id: &str) -> Option<&Track> {
        self.tunnels.get(id)
    }

    /// Forgets tunnels no longer desired.
    pub fn retain(&mut self, keep: impl Fn(&str) -> bool) {
        self.tunnels.retain(|id, _| keep(id));
        self.ike_sas.retain(|_, id| keep(id));
    }
}

/// The IP addresses a log line names as words, as charon prints hosts (`%H`):
/// `198.18.0.2`, `198.18.0.2[500]`, and pairs `A...B`; in order.
pub fn addresses(msg: &str) -> Vec<std::net::IpAddr> {
    msg.split(|c: char| c.is_whitespace() || c == ',')
        .flat_map(|w| w.split("..."))
        .filter_map(|w| {
            let host = w.split('[').next().unwrap_or(w);
            host.trim_end_matches(['.', ':', ';']).parse().ok()
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn log(msg: &str) -> Event {
        Event::Log {
            name: Some("t1".into()),
            ike_sa: Some(1),
            group: "IKE".into(),
            msg: msg.into(),
        }
    }

    /// A line of IKE_SA `sa` logged before it had a config (`(unnamed)`).
    fn unnamed(sa: u32, msg: &str) -> Event {
        Event::Log {
            name: None,
            ike_sa: Some(sa),
            group: "IKE".into(),
            msg: msg.into(),
        }
    }

    #[test]
    fn addresses_are_read_as_charon_prints_hosts() {
        let ip = |s: &str| s.parse::<std::net::IpAddr>().unwrap();
        assert_eq!(
            addresses("198.18.0.2 is initiating an IKE_SA"),
            vec![ip("198.18.0.2")]
        );
        assert_eq!(
            addresses("no IKE config found for 198.18.0.1...198.18.0.2, sending NO_PROPOSAL_CHOSEN"),
            vec![ip("198.18.0.1"), ip("198.18.0.2")]
        );
        assert_eq!(
            addresses("received packet: from 2001:db8::2[500] to 2001:db8::1[500] (464 bytes)"),
            vec![ip("2001:db8::2"), ip("2001:db8::1")]
        );
        assert!(addresses("received proposals unacceptable").is_empty());
    }

    #[test]
    fn a_responders_unnamed_lines_are_attributed_by_ike_sa() {
        let peers = |ip: std::net::IpAddr| (ip.to_string() == "198.18.0.1").then(|| "t1".to_string());
        let known = |id: &str| id == "t1";
        let mut tracks = Tracks::default();
        // charon 5.9 as a responder whose proposals the initiator refuses.
        assert!(tracks.apply(&unnamed(7, "198.18.0.1 is initiating an IKE_SA"), 1, known, peers));
        assert!(tracks.apply(&unnamed(7, "received proposals unacceptable"), 2, known, peers));
        let t = tracks.get("t1").unwrap();
        assert_eq!(t.reason.as_ref().map(|r| r.0), Some(DownReason::NoProposalChosen));
        assert_eq!(t.log.len(), 2);
        // Another IKE_SA naming no known peer, and a line of no IKE_SA: nobody's.
        assert!(!tracks.apply(
            &unnamed(8, "203.0.113.9 is initiating an IKE_SA"),
            3,
            known,
            peers
        ));
        assert!(!tracks.apply(&unnamed(8, "received proposals unacceptable"), 3, known, peers));
        let none = Event::Log {
            name: None,
            ike_sa: None,
            group: "CFG".into(),
            msg: "x".into(),
        };
        assert!(!tracks.apply(&none, 4, known, peers));
        // A named line teaches its IKE_SA too; a tunnel no longer desired is forgotten.
        let named = Event::Log {
            name: Some("t1".into()),
            ike_sa: Some(9),
            group: "IKE".into(),
            msg: "a".into(),
        };
        assert!(tracks.apply(&named, 5, known, |_| None));
        assert!(tracks.apply(&unnamed(9, "sending DELETE for IKE_SA"), 6, known, |_| None));
        tracks.retain(|_| false);
        assert!(!tracks.apply(&unnamed(9, "b"), 7, known, |_| None));
    }

    /// Lines as charon 5.9.8 logs them (recorded from the e2e namespaces and
    /// strongSwan's own test logs).
    #[test]
    fn classifies_recorded_lines() {
        use DownReason::*;
        let cases: &[(&str, Option<DownReason>)] = &[
            (
                "received AUTHENTICATION_FAILED notify error",
                Some(AuthenticationFailed),
            ),
            (
                "tried 1 shared key for '198.18.0.1' - '198.18.0.2', but MAC mismatched",
                Some(AuthenticationFailed),
            ),
            ("peer authentication failed", Some(AuthenticationFailed)),
            (
                "parsed IKE_AUTH response 1 [ N(AUTH_FAILED) ]",
                Some(AuthenticationFailed),
            ),
            (
                "no shared key found for '198.18.0.1' - '198.18.0.2'",
                Some(AuthenticationFailed),
            ),
            (
                "authentication of '198.18.0.2' with pre-shared key failed",
                Some(AuthenticationFailed),
            ),
            ("received NO_PROPOSAL_CHOSEN notify error", Some(NoProposalChosen)),
            ("received proposals unacceptable", Some(NoProposalChosen)),
            ("no acceptable proposal found", Some(NoProposalChosen)),
            (
                "received TS_UNACCEPTABLE notify, no CHILD_SA built",
                Some(TsUnacceptable),
            ),
            ("giving up after 5 retransmits", Some(PeerUnreachable)),
            ("DPD check timed out, enforcing DPD action", Some(DpdTimeout)),
            ("initiating IKE_SA t1[1] to 198.18.0.2", None),
            (
                "authentication of '198.18.0.1' (myself) with pre-shared key",
                None,
            ),
            (
                "authentication of '198.18.0.2' with pre-shared key successful",
                None,
            ),
            (
                "IKE_SA t1[1] established between 198.18.0.1[198.18.0.1]...198.18.0.2[198.18.0.2]",
                None,
            ),
            ("sending DPD request", None),
        ];
        for (line, want) in cases {
            assert_eq!(classify(line), *want, "{line}");
        }
    }

    #[test]
    fn a_sentence_beats_a_message_dump_and_up_clears_the_reason() {
        let mut t = Track::default();
        t.apply(&log("initiating IKE_SA t1[1] to 198.18.0.2"), 1);
        t.apply(&log("received AUTHENTICATION_FAILED notify error"), 2);
        t.apply(&log("parsed IKE_AUTH response 1 [ N(AUTH_FAILED) ]"), 3);
        assert_eq!(
            t.reason,
            Some((
                DownReason::AuthenticationFailed,
                "received AUTHENTICATION_FAILED notify error".into()
            ))
        );
        assert_eq!(t.log.len(), 3);
        assert_eq!(t.log[1], "[IKE] received AUTHENTICATION_FAILED notify error");
        let up = |name: &str| Event::IkeUpDown {
            name: name.into(),
            up: true,
        };
        t.apply(&up("t1"), 10);
        assert!(t.reason.is_some(), "IKE up alone is not the tunnel up");
        t.apply(
            &Event::ChildUpDown {
                name: "t1".into(),
                up: true,
            },
            11,
        );
        assert_eq!(t.reason, None);
        assert_eq!(t.last_change_ms, Some(11));
        assert_eq!(t.seen, Some((true, 1)));
    }

    #[test]
    fn retransmits_on_an_up_tunnel_are_a_dpd_timeout() {
        let mut t = Track::default();
        t.observed(true, 1, 5);
        t.apply(&log("giving up after 5 retransmits"), 6);
        assert_eq!(t.reason.as_ref().map(|r| r.0), Some(DownReason::DpdTimeout));
        let mut fresh = Track::default();
        fresh.apply(&log("giving up after 5 retransmits"), 6);
        assert_eq!(
            fresh.reason.as_ref().map(|r| r.0),
            Some(DownReason::PeerUnreachable)
        );
    }

    #[test]
    fn log_is_bounded_and_rekeys_count() {
        let mut t = Track::default();
        for i in 0..(TUNNEL_LOG_LINES + 5) {
            t.apply(&log(&format!("line {i}")), 1);
        }
        assert_eq!(t.log.len(), TUNNEL_LOG_LINES);
        assert_eq!(t.log.front().map(String::as_str), Some("[IKE] line 5"));
        t.apply(&Event::IkeRekey { name: "t1".into() }, 2);
        t.apply(
            &Event::ChildRekey {
                name: "t1".into(),
                children: 2,
            },
            2,
        );
        assert_eq!((t.ike_rekeys, t.child_rekeys), (1, 2));
        let mut all = Tracks::default();
        assert!(!all.apply(&log("x"), 1, |id| id == "other", |_| None));
        assert!(all.apply(&log("x"), 1, |id| id == "t1", |_| None));
        assert_eq!(all.get("t1").map(|t| t.log.len()), Some(1));
    }
}
