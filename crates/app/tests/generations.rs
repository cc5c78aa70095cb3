//! Generations, spans and request logging of application writes, through the
//! real SQLite store.

mod common;

use app::{Dialect, Expect};
use common::*;
use model::*;
use store::{Scope, WriteCtx};

#[tokio::test]
async fn writes_stamp_only_their_gateways() {
    let (_d, store, app) = open().await;
    let a = site(&app, "a", 1).await;
    let b = site(&app, "b", 2).await;
    let ga = store.gateway_generation(&a.gateway).await.unwrap();
    let gb = store.gateway_generation(&b.gateway).await.unwrap();
    assert!(ga > 0 && gb > ga, "{ga} {gb}");
    assert_eq!(
        store.span_gateways(&a.conn).await.unwrap(),
        vec![a.gateway.clone()]
    );
    assert_eq!(
        store.span_gateways(&a.ike).await.unwrap(),
        vec![a.gateway.clone()]
    );

    // Updating a connection of A moves A's generation, not B's.
    let w = WriteCtx::new("test");
    let written = app
        .update(
            &w,
            &Scope::All,
            Dialect::Neutron,
            &a.conn,
            Expect::NOTHING,
            |r: &mut Record<Connection>| {
                r.body.mtu = 1400;
                Ok(())
            },
        )
        .await
        .unwrap();
    assert_eq!(
        store.gateway_generation(&a.gateway).await.unwrap(),
        written.generation
    );
    assert_eq!(store.gateway_generation(&b.gateway).await.unwrap(), gb);
    // The request id is logged with its generation and the touched object.
    let (g, ids) = store
        .request_get(&w.request_id.to_string())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(g, written.generation);
    assert_eq!(ids, vec![a.conn.clone()]);

    // A change to the service stamps the connection that uses it.
    let w2 = WriteCtx::new("test");
    let s = app
        .update::<VpnService>(
            &w2,
            &Scope::All,
            Dialect::Neutron,
            &a.service,
            Expect::NOTHING,
            |r| {
                r.body.admin_state_up = false;
                Ok(())
            },
        )
        .await
        .unwrap();
    let c: Record<Connection> = store.get(&Scope::All, &a.conn).await.unwrap();
    assert_eq!(c.meta.generation, s.generation);
    assert_eq!(c.meta.revision, 1, "stamping a user does not bump its revision");

    // In use: the policy can't be updated or deleted; the connection first.
    let err = app
        .delete::<IkePolicy>(&WriteCtx::new("t"), &Scope::All, &a.ike)
        .await
        .unwrap_err();
    assert!(matches!(err, Error::InUse { .. }));
    let del = app
        .delete::<Connection>(&WriteCtx::new("t"), &Scope::All, &a.conn)
        .await
        .unwrap();
    assert_eq!(
        store.gateway_generation(&a.gateway).await.unwrap(),
        del.generation
    );
    assert_eq!(
        store.tombstone(&a.conn).await.unwrap(),
        Some((Kind::Connection, del.generation))
    );
    app.delete::<IkePolicy>(&WriteCtx::new("t"), &Scope::All, &a.ike)
        .await
        .unwrap();
}

#[tokio::test]
async fn failed_writes_leave_nothing() {
    let (_d, store, app) = open().await;
    let a = site(&app, "a", 1).await;
    let before = store.generation_current().await.unwrap();
    let w = WriteCtx::new("test");
    let err = app
        .update(
            &w,
            &Scope::All,
            Dialect::Neutron,
            &a.conn,
            Expect::NOTHING,
            |r: &mut Record<Connection>| {
                r.body.dpd.timeout = 10;
                Ok(())
            },
        )
        .await
        .unwrap_err();
    assert!(matches!(
        err,
        Error::Invalid(Violation::DpdTimeoutNotAboveInterval)
    ));
    assert_eq!(store.generation_current().await.unwrap(), before);
    assert!(
        store
            .request_get(&w.request_id.to_string())
            .await
            .unwrap()
            .is_none()
    );
    let c: Record<Connection> = store.get(&Scope::All, &a.conn).await.unwrap();
    assert_eq!(c.body.dpd.timeout, 120);
    // Another project's scope does not see it.
    assert!(matches!(
        store
            .get::<Connection>(&Scope::Project("p2".into()), &a.conn)
            .await,
        Err(Error::NotFound { .. })
    ));
    // The PSK reads back, but is nowhere in the database files in clear.
    assert_eq!(c.body.psk.expose(), SITE_PSK);
    drop(app);
    drop(store);
    if let Some(dir) = &_d.dir {
        for f in std::fs::read_dir(dir).unwrap() {
            let bytes = std::fs::read(f.unwrap().path()).unwrap();
            assert!(!bytes.windows(18).any(|w| w == SITE_PSK.as_bytes()));
        }
    }
}

#[tokio::test]
async fn a_changed_peer_name_is_resolved_before_the_write() {
    let (_d, store, app) = open().await;
    let a = site(&app, "a", 1).await;
    let w = WriteCtx::new("test");
    let written = app
        .update(
            &w,
            &Scope::All,
            Dialect::Neutron,
            &a.conn,
            Expect::NOTHING,
            |r: &mut Record<Connection>| {
                r.body.peer_address = "localhost".into();
                Ok(())
            },
        )
        .await
        .unwrap();
    let ip: std::net::IpAddr = written.record.body.peer_address.parse().unwrap();
    assert!(ip.is_loopback(), "stored resolved: {ip}");

    let before = store.generation_current().await.unwrap();
    let err = app
        .update(
            &w,
            &Scope::All,
            Dialect::Neutron,
            &a.conn,
            Expect::NOTHING,
            |r: &mut Record<Connection>| {
                r.body.peer_address = "no-such-peer.invalid".into();
                Ok(())
            },
        )
        .await
        .unwrap_err();
    assert!(matches!(
        err,
        Error::Invalid(Violation::PeerAddressUnresolved { ref address }) if address == "no-such-peer.invalid"
    ));
    assert_eq!(store.generation_current().await.unwrap(), before);
    let rec: Record<Connection> = store.get(&Scope::All, &a.conn).await.unwrap();
    assert_eq!(rec.body.peer_address, ip.to_string());
}
