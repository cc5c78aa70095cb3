//! Reconciler and run-loop behaviour against the in-memory charon: which VICI
//! calls happen for new, unchanged, changed, removed and failing tunnels, the
//! generation guard, initiation, and recovery from a charon restart.

use std::time::Duration;

use agent::fake::{Call, Fake};
use agent::reconcile::{Reconciler, Settings, Stale};
use agent::render::EspMode;
use agent::runner::{Agent, LoopSettings};
use agent::vici::{Connector, Initiated};
use model::realization::{IkeState, NodeConfig, NodeReport, Tunnel};
use model::*;
use tokio::sync::watch;
use tokio::time::Instant;

fn tunnel(n: u32) -> Tunnel {
    let peer = format!("203.0.113.{}", n % 250 + 1);
    agent::fake::tunnel(n, "198.18.0.1", &peer)
}

fn config(generation: i64, tunnels: Vec<Tunnel>) -> NodeConfig {
    NodeConfig {
        node_id: "node-1".into(),
        gateway_id: "gw-1".into(),
        generation,
        tunnels,
    }
}

fn writes(calls: Vec<Call>) -> Vec<Call> {
    calls.into_iter().filter(Call::is_write).collect()
}

fn settings() -> Settings {
    Settings {
        esp: EspMode::Userspace,
        ..Settings::default()
    }
}

#[tokio::test]
async fn unchanged_tunnels_get_no_calls_and_changes_touch_only_their_tunnel() {
    let fake = Fake::new();
    let mut s = fake.session();
    let mut rec = Reconciler::new(settings());
    let tunnels: Vec<Tunnel> = (0..10).map(tunnel).collect();
    rec.accept(config(5, tunnels.clone())).unwrap();
    let stats = rec.apply(&mut s, Instant::now()).await.unwrap();
    assert_eq!(stats.loaded, 10);
    assert_eq!(fake.state().conns.len(), 10);
    assert_eq!(fake.state().shared.len(), 10);
    assert_eq!(rec.report().realized_generation, Some(5));
    fake.take_calls();

    // Same content at a newer generation (e.g. another gateway changed): nothing sent.
    rec.accept(config(6, tunnels.clone())).unwrap();
    let stats = rec.apply(&mut s, Instant::now()).await.unwrap();
    assert_eq!(stats.unchanged, 10);
    assert_eq!(writes(fake.take_calls()), vec![]);
    assert_eq!(rec.report().realized_generation, Some(6));

    // A name or generation change alone renders identically: still nothing sent.
    let mut renamed = tunnels.clone();
    renamed[3].name = "renamed".into();
    renamed[3].generation = 7;
    rec.accept(config(7, renamed.clone())).unwrap();
    rec.apply(&mut s, Instant::now()).await.unwrap();
    assert_eq!(writes(fake.take_calls()), vec![]);

    // Traffic selectors of one tunnel: terminate + load-conn of that one only.
    let mut changed = renamed.clone();
    changed[3].remote_ts = vec!["10.99.0.0/16".parse().unwrap()];
    rec.accept(config(8, changed.clone())).unwrap();
    let stats = rec.apply(&mut s, Instant::now()).await.unwrap();
    assert_eq!((stats.loaded, stats.unchanged), (1, 9));
    assert_eq!(
        writes(fake.take_calls()),
        vec![Call::Terminate("t0003".into()), Call::LoadConn("t0003".into())]
    );

    // PSK of one tunnel: terminate + load-shared (the connection is unchanged).
    changed[4].psk = Psk("rotated".into());
    rec.accept(config(9, changed.clone())).unwrap();
    rec.apply(&mut s, Instant::now()).await.unwrap();
    assert_eq!(
        writes(fake.take_calls()),
        vec![Call::Terminate("t0004".into()), Call::LoadShared("t0004".into())]
    );

    // Disabled and deleted: terminate, unload-conn, unload-shared.
    changed[5].enabled = false;
    changed.remove(6);
    rec.accept(config(10, changed.clone())).unwrap();
    let stats = rec.apply(&mut s, Instant::now()).await.unwrap();
    assert_eq!(stats.removed, 2);
    let mut w = writes(fake.take_calls());
    w.sort();
    assert_eq!(
        w,
        vec![
            Call::UnloadConn("t0005".into()),
            Call::UnloadConn("t0006".into()),
            Call::UnloadShared("t0005".into()),
            Call::UnloadShared("t0006".into()),
            Call::Terminate("t0005".into()),
            Call::Terminate("t0006".into()),
        ]
    );
    assert_eq!(fake.state().conns.len(), 8);
    assert!(!fake.state().shared.contains_key("t0005"));
    let report = rec.report();
    assert_eq!(report.tunnels.len(), 8, "disabled tunnels are not carried");
}

#[tokio::test]
async fn older_generations_are_refused() {
    let mut rec = Reconciler::new(settings());
    rec.accept(config(5, vec![tunnel(1)])).unwrap();
    assert_eq!(
        rec.accept(config(4, vec![])),
        Err(Stale {
            offered: 4,
            accepted: 5
        })
    );
    let fake = Fake::new();
    rec.apply(&mut fake.session(), Instant::now()).await.unwrap();
    assert_eq!(
        fake.state().conns.len(),
        1,
        "the refused snapshot did not remove anything"
    );
    assert!(
        rec.accept(config(5, vec![tunnel(1)])).is_ok(),
        "the same generation is fine"
    );
}

#[tokio::test]
async fn a_refused_tunnel_is_a_failure_and_is_retried() {
    let fake = Fake::new();
    fake.state()
        .refuse_conn
        .insert("t0002".into(), "invalid traffic selector".into());
    let mut s = fake.session();
    let mut rec = Reconciler::new(settings());
    let mut bad_render = tunnel(3);
    bad_render.ike.dh_groups.clear();
    rec.accept(config(3, vec![tunnel(1), tunnel(2), bad_render]))
        .unwrap();
    let stats = rec.apply(&mut s, Instant::now()).await.unwrap();
    assert_eq!((stats.loaded, stats.failed), (1, 2));
    let report = rec.report();
    assert_eq!(report.realized_generation, Some(3));
    let failures: Vec<(&str, &str)> = report
        .failures
        .iter()
        .map(|f| (f.entity_id.as_str(), f.message.as_str()))
        .collect();
    assert_eq!(
        failures,
        vec![
            ("t0002", "invalid traffic selector"),
            ("t0003", "the IKE proposal has no Diffie-Hellman group")
        ]
    );
    let t2 = report.tunnels.iter().find(|t| t.id == "t0002").unwrap();
    assert_eq!(t2.message.as_deref(), Some("invalid traffic selector"));

    // charon accepts it later: the timer-driven retry applies it, the failure clears.
    fake.state().refuse_conn.clear();
    rec.retry_failed();
    assert!(rec.needs_apply());
    fake.take_calls();
    rec.apply(&mut s, Instant::now()).await.unwrap();
    let w = writes(fake.take_calls());
    assert!(w.contains(&Call::LoadConn("t0002".into())), "{w:?}");
    assert!(
        !w.iter().any(|c| matches!(c, Call::LoadConn(n) if n == "t0001")),
        "{w:?}"
    );
    assert_eq!(rec.report().failures.len(), 1);
}

#[tokio::test]
async fn initiators_are_initiated_one_at_a_time_and_backed_off() {
    let fake = Fake::new();
    let mut s = fake.session();
    let mut rec = Reconciler::new(settings());
    let mut a = tunnel(1);
    a.initiator = Initiator::BiDirectional;
    let mut b = tunnel(2);
    b.initiator = Initiator::BiDirectional;
    let c = tunnel(3); // response-only
    fake.state().initiate_outcome.insert(
        "t0002".into(),
        Initiated::Failed("received AUTHENTICATION_FAILED notify error".into()),
    );
    rec.accept(config(1, vec![a, b, c])).unwrap();
    let now = Instant::now();
    rec.apply(&mut s, now).await.unwrap();
    fake.take_calls();
    assert!(rec.initiate_due(&mut s, now).await.unwrap());
    assert!(rec.initiate_due(&mut s, now).await.unwrap());
    assert!(
        !rec.initiate_due(&mut s, now).await.unwrap(),
        "responders are not initiated"
    );
    let inits: Vec<Call> = fake
        .take_calls()
        .into_iter()
        .filter(|c| matches!(c, Call::Initiate(..)))
        .collect();
    assert_eq!(
        inits,
        vec![
            Call::Initiate("t0001".into(), "t0001".into()),
            Call::Initiate("t0002".into(), "t0002".into())
        ]
    );
    rec.observe(&mut s, now).await.unwrap();
    let report = rec.report();
    let st = |id: &str| report.tunnels.iter().find(|t| t.id == id).unwrap().clone();
    assert_eq!(st("t0001").ike_state, IkeState::Established);
    assert_eq!(st("t0001").child_sas_installed, 1);
    assert_eq!(st("t0002").ike_state, IkeState::Down);
    assert_eq!(
        st("t0002").message.as_deref(),
        Some("received AUTHENTICATION_FAILED notify error")
    );
    assert_eq!(
        st("t0003").message.as_deref(),
        Some("waiting for the peer to initiate")
    );

    // Retried only after the back-off.
    let retry = rec.next_initiation().expect("a retry is scheduled");
    assert_eq!(retry - now, Duration::from_secs(2));
    assert!(
        !rec.initiate_due(&mut s, now + Duration::from_secs(1))
            .await
            .unwrap()
    );
    fake.state().initiate_outcome.clear();
    assert!(rec.initiate_due(&mut s, retry).await.unwrap());
    rec.observe(&mut s, retry).await.unwrap();
    let report = rec.report();
    assert!(
        report
            .tunnels
            .iter()
            .all(|t| t.id == "t0003" || t.ike_state == IkeState::Established)
    );

    // An IKE_SA the peer brought up is never duplicated.
    fake.state().sas.remove("t0001");
    rec.observe(&mut s, retry).await.unwrap();
    fake.state().sas.insert(
        "t0001".into(),
        agent::vici::IkeSa {
            name: "t0001".into(),
            state: "CONNECTING".into(),
            children: vec![],
            established: None,
        },
    );
    fake.take_calls();
    assert!(rec.initiate_due(&mut s, retry).await.unwrap());
    assert!(!fake.take_calls().iter().any(|c| matches!(c, Call::Initiate(..))));
}

#[tokio::test]
async fn a_fresh_session_sweeps_unwanted_config_and_keeps_wanted_sas() {
    let fake = Fake::new();
    let mut s = fake.session();
    // Left over from before the agent (re)started: one wanted, one stale.
    let mut rec0 = Reconciler::new(settings());
    rec0.accept(config(1, vec![tunnel(1), tunnel(2)])).unwrap();
    rec0.apply(&mut s, Instant::now()).await.unwrap();
    fake.take_calls();

    let mut rec = Reconciler::new(settings());
    rec.accept(config(2, vec![tunnel(1)])).unwrap();
    let stats = rec.apply(&mut s, Instant::now()).await.unwrap();
    assert_eq!(stats.swept, 2, "t0002's connection and key");
    let w = writes(fake.take_calls());
    assert!(
        !w.contains(&Call::Terminate("t0001".into())),
        "wanted SAs are not torn down: {w:?}"
    );
    assert!(w.contains(&Call::UnloadConn("t0002".into())));
    assert!(w.contains(&Call::UnloadShared("t0002".into())));
    assert_eq!(fake.state().conns.keys().collect::<Vec<_>>(), vec!["t0001"]);
}

/// Waits (in paused time) until the published report satisfies `f`.
async fn until(rx: &mut watch::Receiver<NodeReport>, f: impl Fn(&NodeReport) -> bool) -> NodeReport {
    tokio::time::timeout(Duration::from_secs(120), async {
        loop {
            {
                let r = rx.borrow_and_update();
                if f(&r) {
                    return r.clone();
                }
            }
            rx.changed().await.unwrap();
        }
    })
    .await
    .unwrap_or_else(|_| panic!("report condition not reached; last report: {:?}", rx.borrow()))
}

#[tokio::test(start_paused = true)]
async fn run_loop_reapplies_everything_after_charon_restarts() {
    let _ = tracing_subscriber::fmt()
        .with_test_writer()
        .with_env_filter("info")
        .try_init();
    let fake = Fake::new();
    let (cfg_tx, cfg_rx) = watch::channel(None);
    let (rep_tx, mut rep_rx) = watch::channel(NodeReport::default());
    let mut a = tunnel(1);
    a.initiator = Initiator::BiDirectional;
    let agent = Agent::new(fake.clone(), Reconciler::new(settings()), LoopSettings::default());
    let task = tokio::spawn(agent.run(cfg_rx, rep_tx));

    cfg_tx.send(Some(config(4, vec![a.clone(), tunnel(2)]))).unwrap();
    let r = until(&mut rep_rx, |r| {
        r.realized_generation == Some(4)
            && r.tunnels
                .iter()
                .any(|t| t.id == "t0001" && t.ike_state == IkeState::Established)
    })
    .await;
    assert_eq!(r.tunnels.len(), 2);

    // charon dies and comes back empty.
    fake.state().running = false;
    fake.restart();
    let r = until(&mut rep_rx, |r| {
        r.tunnels
            .iter()
            .all(|t| t.message.as_deref().is_some_and(|m| m.contains("charon")))
    })
    .await;
    assert!(r.tunnels.iter().all(|t| t.ike_state == IkeState::Down));
    assert!(r.node_error.as_deref().is_some_and(|e| e.contains("charon")));
    assert!(
        r.tunnels
            .iter()
            .all(|t| t.down_reason == Some(model::realization::DownReason::NodeFailure))
    );
    fake.state().running = true;
    until(&mut rep_rx, |r| {
        r.tunnels
            .iter()
            .any(|t| t.id == "t0001" && t.ike_state == IkeState::Established)
    })
    .await;
    {
        let st = fake.state();
        assert_eq!(st.conns.len(), 2);
        assert_eq!(st.shared.len(), 2);
        let loads = st.calls.iter().filter(|c| matches!(c, Call::LoadConn(_))).count();
        assert_eq!(loads, 4, "each tunnel loaded once per charon lifetime");
    }

    // A stale snapshot arriving late is ignored; a newer one is applied.
    cfg_tx.send(Some(config(3, vec![]))).unwrap();
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert_eq!(fake.state().conns.len(), 2);
    cfg_tx.send(Some(config(9, vec![tunnel(2)]))).unwrap();
    until(&mut rep_rx, |r| {
        r.realized_generation == Some(9) && r.tunnels.len() == 1
    })
    .await;
    assert_eq!(fake.state().conns.len(), 1);

    drop(cfg_tx);
    task.await.unwrap();
}

#[tokio::test]
async fn fake_connector_refuses_while_charon_is_down() {
    let mut fake = Fake::new();
    fake.state().running = false;
    assert!(fake.connect().await.is_err());
}

/// charon's socket is missing from the start: the very first report says so
/// (node-level error, every tunnel NODE_FAILURE with the reason), instead of a
/// silent agent whose connections stay pending.
#[tokio::test(start_paused = true)]
async fn an_agent_that_cannot_reach_charon_says_so_at_once() {
    let fake = Fake::new();
    fake.state().running = false;
    let (cfg_tx, cfg_rx) = watch::channel(None);
    let (rep_tx, mut rep_rx) = watch::channel(NodeReport::default());
    let agent = Agent::new(fake.clone(), Reconciler::new(settings()), LoopSettings::default());
    let task = tokio::spawn(agent.run(cfg_rx, rep_tx));
    cfg_tx.send(Some(config(2, vec![tunnel(1)]))).unwrap();
    let started = Instant::now();
    let r = until(&mut rep_rx, |r| r.node_error.is_some() && !r.tunnels.is_empty()).await;
    assert!(started.elapsed() <= LoopSettings::default().status_interval);
    assert_eq!(r.realized_generation, None, "nothing was applied");
    let e = r.node_error.clone().unwrap();
    assert!(e.starts_with("charon unreachable"), "{e}");
    assert_eq!(
        r.tunnels[0].down_reason,
        Some(model::realization::DownReason::NodeFailure)
    );
    assert_eq!(r.tunnels[0].message.as_deref(), Some(e.as_str()));
    // charon starts: the error goes, the tunnel is applied.
    fake.state().running = true;
    let r = until(&mut rep_rx, |r| {
        r.node_error.is_none() && r.realized_generation == Some(2)
    })
    .await;
    assert_eq!(r.tunnels[0].down_reason, None);
    drop(cfg_tx);
    task.await.unwrap();
}

/// An event about a tunnel is reported within a second (coalesced), with
/// the reason and charon's words, and rekeys are counted.
#[tokio::test]
async fn events_are_reported_at_once_with_their_reason() {
    use agent::events::Event;
    use model::realization::DownReason;
    let fake = Fake::new();
    let events = fake.event_sender();
    let (cfg_tx, cfg_rx) = watch::channel(None);
    let (rep_tx, mut rep_rx) = watch::channel(NodeReport::default());
    let settings = LoopSettings {
        status_interval: Duration::from_secs(30),
        ..LoopSettings::default()
    };
    let agent = Agent::new(fake.clone(), Reconciler::new(self::settings()), settings);
    let task = tokio::spawn(agent.run(cfg_rx, rep_tx));
    let mut t = tunnel(1);
    t.initiator = Initiator::ResponseOnly;
    cfg_tx.send(Some(config(3, vec![t]))).unwrap();
    until(&mut rep_rx, |r| r.realized_generation == Some(3)).await;

    let sent = std::time::Instant::now();
    for msg in [
        "initiating IKE_SA t0001[1] to 198.51.100.1",
        "received AUTHENTICATION_FAILED notify error",
        "parsed IKE_AUTH response 1 [ N(AUTH_FAILED) ]",
    ] {
        events
            .send(Event::Log {
                name: Some("t0001".into()),
                ike_sa: Some(1),
                group: "IKE".into(),
                msg: msg.into(),
            })
            .await
            .unwrap();
    }
    let r = until(&mut rep_rx, |r| r.tunnels[0].down_reason.is_some()).await;
    assert!(sent.elapsed() < Duration::from_secs(1), "{:?}", sent.elapsed());
    let st = &r.tunnels[0];
    assert_eq!(st.down_reason, Some(DownReason::AuthenticationFailed));
    assert_eq!(
        st.message.as_deref(),
        Some("received AUTHENTICATION_FAILED notify error")
    );
    assert_eq!(st.log.len(), 3);

    // A line about a tunnel this node does not carry changes nothing.
    events
        .send(Event::IkeRekey {
            name: "elsewhere".into(),
        })
        .await
        .unwrap();
    events
        .send(Event::IkeRekey { name: "t0001".into() })
        .await
        .unwrap();
    let r = until(&mut rep_rx, |r| r.tunnels[0].ike_rekeys == 1).await;
    assert_eq!(r.tunnels.len(), 1);
    drop(cfg_tx);
    task.await.unwrap();
}
