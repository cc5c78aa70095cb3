//! The application's operations over the real SQLite store: preconditions
//! checked inside the write transaction (not pending, revision, not in use),
//! system-owned refusal whichever API asks, and the endpoint → session cascade.

mod common;

use app::{Dialect, Expect};
use common::*;
use model::nsx::*;
use model::realization::NodeReport;
use model::*;
use store::Scope;

/// Neutron's "not PENDING" rule reads node state in the write transaction: a
/// connection no node has realized can't be updated; once its gateway's node
/// reports the generation, it can.
#[tokio::test]
async fn pending_blocks_neutron_updates_until_a_node_realizes() {
    let (_d, store, app) = open().await;
    let s = site(&app, "p", 1).await;
    let node = store
        .node_create("n1", &s.gateway, "hash-of-a-token")
        .await
        .unwrap();
    let rename = |r: &mut Record<Connection>| {
        r.meta.name = "renamed".into();
        Ok(())
    };
    let err = app
        .update(
            &w(),
            &Scope::All,
            Dialect::Neutron,
            &s.conn,
            Expect::SETTLED,
            rename,
        )
        .await
        .unwrap_err();
    assert!(
        matches!(err, Error::Invalid(Violation::StateInvalidToUpdate { ref state, .. }) if state == "PENDING_CREATE"),
        "{err:?}"
    );
    let generation = store.generation_current().await.unwrap();
    let report = NodeReport {
        node_error: None,
        realized_generation: Some(generation),
        ..NodeReport::default()
    };
    store.node_report(&node.id, &report).await.unwrap();
    let done = app
        .update(
            &w(),
            &Scope::All,
            Dialect::Neutron,
            &s.conn,
            Expect::SETTLED,
            rename,
        )
        .await
        .unwrap();
    assert_eq!(done.record.meta.name, "renamed");
    // Without the precondition (NSX), pending does not matter.
    app.update(&w(), &Scope::All, Dialect::Nsx, &s.conn, Expect::NOTHING, rename)
        .await
        .unwrap();
}

/// A stale revision is refused and nothing is written; the system-owned
/// defaults are refused to every dialect, after visibility.
#[tokio::test]
async fn revisions_and_system_owned_objects() {
    let (_d, store, app) = open().await;
    let s = site(&app, "p", 1).await;
    let before = store.generation_current().await.unwrap();
    let err = app
        .update(
            &w(),
            &Scope::All,
            Dialect::Nsx,
            &s.ike,
            Expect::revision(7),
            |_: &mut Record<IkePolicy>| Ok(()),
        )
        .await
        .unwrap_err();
    assert!(
        matches!(
            err,
            Error::StaleRevision {
                given: Some(7),
                current: 0,
                ..
            }
        ),
        "{err:?}"
    );
    assert_eq!(store.generation_current().await.unwrap(), before);

    app.ensure_system_defaults("admin-project").await.unwrap();
    for dialect in [Dialect::Neutron, Dialect::Nsx, Dialect::Admin] {
        let err = app
            .update(
                &w(),
                &Scope::All,
                dialect,
                DEFAULT_DPD_PROFILE_ID,
                Expect::NOTHING,
                |_: &mut Record<DpdProfile>| Ok(()),
            )
            .await
            .unwrap_err();
        assert!(matches!(err, Error::SystemOwned { .. }), "{dialect:?}: {err:?}");
    }
    let err = app
        .delete::<DpdProfile>(&w(), &Scope::All, DEFAULT_DPD_PROFILE_ID)
        .await
        .unwrap_err();
    assert!(matches!(err, Error::SystemOwned { .. }), "{err:?}");
    // Another project does not learn that the default exists.
    let err = app
        .delete::<DpdProfile>(&w(), &Scope::Project("p".into()), DEFAULT_DPD_PROFILE_ID)
        .await
        .unwrap_err();
    assert!(matches!(err, Error::NotFound { .. }), "{err:?}");
}

/// Writing a peer endpoint re-derives every session built from it in the same
/// transaction: the session's copy (peer, key, DPD) follows, its generation
/// moves with the endpoint's, and a change a session's rules refuse is refused
/// as a whole.
#[tokio::test]
async fn an_endpoint_change_cascades_into_its_sessions() {
    let (_d, store, app) = open().await;
    let s = site(&app, "p", 1).await;
    let nsx = Dialect::Nsx;
    let all = &Scope::All;
    app.ensure_system_defaults("p").await.unwrap();
    let local = LocalEndpoint {
        vpnservice_id: s.service.clone(),
        local_address: "192.0.2.1".parse().unwrap(),
        local_id: String::new(),
        certificate_id: None,
        trust_ca_ids: vec![],
        trust_crl_ids: vec![],
        tags: vec![],
    };
    let local = app
        .create(&w(), all, nsx, meta("p", "le"), local)
        .await
        .unwrap()
        .record;
    let peer = PeerEndpoint {
        peer_address: "198.51.100.7".into(),
        peer_id: "peer7".into(),
        psk: Psk("first-key".into()),
        initiator: Initiator::BiDirectional,
        ikepolicy_id: DEFAULT_IKE_PROFILE_ID.into(),
        ipsecpolicy_id: DEFAULT_TUNNEL_PROFILE_ID.into(),
        dpd_profile_id: DEFAULT_DPD_PROFILE_ID.into(),
        tags: vec![],
    };
    let peer = app
        .create(&w(), all, nsx, meta("p", "pe"), peer)
        .await
        .unwrap()
        .record;
    let session = Connection {
        local_endpoint_id: Some(local.meta.id.clone()),
        peer_endpoint_id: Some(peer.meta.id.clone()),
        policy_rules: vec![PolicyRule {
            id: "r1".into(),
            sources: vec!["10.1.0.0/24".parse().unwrap()],
            destinations: vec!["10.50.0.0/24".parse().unwrap()],
            action: RuleAction::Protect,
            enabled: true,
            logged: false,
        }],
        ..Connection::default()
    };
    let session = app
        .create(&w(), all, nsx, meta("p", "s"), session)
        .await
        .unwrap()
        .record;
    assert_eq!(session.body.peer_address, "198.51.100.7");
    assert_eq!(session.body.vpnservice_id, s.service);

    let written = app
        .update(
            &w(),
            all,
            nsx,
            &peer.meta.id,
            Expect::revision(0),
            |r: &mut Record<PeerEndpoint>| {
                r.body.peer_address = "198.51.100.8".into();
                r.body.psk = Psk("second-key".into());
                Ok(())
            },
        )
        .await
        .unwrap();
    let after: Record<Connection> = store.get(all, &session.meta.id).await.unwrap();
    assert_eq!(after.body.peer_address, "198.51.100.8");
    assert_eq!(after.body.psk.expose(), "second-key");
    assert_eq!(after.meta.generation, written.generation);

    // A peer address of another IP version than the session's local address
    // is refused by the session's rules: the endpoint write fails as a whole.
    let before = store.generation_current().await.unwrap();
    let err = app
        .update(
            &w(),
            all,
            nsx,
            &peer.meta.id,
            Expect::revision(1),
            |r: &mut Record<PeerEndpoint>| {
                r.body.peer_address = "2001:db8::8".into();
                Ok(())
            },
        )
        .await
        .unwrap_err();
    assert!(
        matches!(err, Error::Invalid(Violation::Field { ref field, .. }) if field == "peer_address"),
        "{err:?}"
    );
    assert_eq!(store.generation_current().await.unwrap(), before);
    let unchanged: Record<PeerEndpoint> = store.get(all, &peer.meta.id).await.unwrap();
    assert_eq!(unchanged.body.peer_address, "198.51.100.8");
}
