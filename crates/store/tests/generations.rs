//! Generations, spans and request logging through the real SQLite store.

use model::*;
use store::{Cipher, NewMeta, Scope, Store, WriteCtx};

fn meta(name: &str) -> NewMeta {
    NewMeta {
        id: None,
        project_id: "p1".into(),
        name: name.into(),
        description: String::new(),
    }
}

async fn open() -> (tempfile::TempDir, Store) {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(&dir.path().join("t.db"), Cipher::from_key(&[1; 32]))
        .await
        .unwrap();
    (dir, store)
}

struct Site {
    gateway: String,
    service: String,
    ike: String,
    conn: String,
}

async fn site(store: &Store, name: &str, octet: u8) -> Site {
    let w = || WriteCtx::new("test");
    let gw = store
        .gateway_create(
            &w(),
            meta(name),
            Gateway {
                external_v4: Some(format!("192.0.2.{octet}").parse().unwrap()),
                external_v6: None,
            },
        )
        .await
        .unwrap()
        .record;
    let subnet = store
        .subnet_create(
            &w(),
            "s",
            &gw.meta.id,
            format!("10.{octet}.0.0/24").parse().unwrap(),
        )
        .await
        .unwrap()
        .record;
    let ike = store
        .simple_create(&w(), meta("ike"), IkePolicy::default())
        .await
        .unwrap()
        .record;
    let ipsec = store
        .simple_create(&w(), meta("ipsec"), IpsecPolicy::default())
        .await
        .unwrap()
        .record;
    let svc = store
        .vpn_service_create(
            &w(),
            &Scope::All,
            meta("svc"),
            VpnService {
                router_id: gw.meta.id.clone(),
                ..VpnService::default()
            },
        )
        .await
        .unwrap()
        .record;
    let scope = Scope::All;
    let local = store
        .endpoint_group_create(
            &w(),
            &scope,
            meta("l"),
            EndpointGroup {
                endpoint_type: EndpointType::Subnet,
                endpoints: vec![subnet.meta.id.clone()],
            },
        )
        .await
        .unwrap()
        .record;
    let peer = store
        .endpoint_group_create(
            &w(),
            &scope,
            meta("r"),
            EndpointGroup {
                endpoint_type: EndpointType::Cidr,
                endpoints: vec!["10.200.0.0/24".into()],
            },
        )
        .await
        .unwrap()
        .record;
    let conn = store
        .connection_create(
            &w(),
            &scope,
            meta("c"),
            Connection {
                vpnservice_id: svc.meta.id.clone(),
                ikepolicy_id: ike.meta.id.clone(),
                ipsecpolicy_id: ipsec.meta.id.clone(),
                peer_address: "198.51.100.1".into(),
                peer_id: "peer".into(),
                psk: Psk("super-secret-key-1".into()),
                local_ep_group_id: Some(local.meta.id.clone()),
                peer_ep_group_id: Some(peer.meta.id.clone()),
                ..Connection::default()
            },
        )
        .await
        .unwrap()
        .record;
    Site {
        gateway: gw.meta.id,
        service: svc.meta.id,
        ike: ike.meta.id,
        conn: conn.meta.id,
    }
}

#[tokio::test]
async fn writes_stamp_only_their_gateways() {
    let (_d, store) = open().await;
    let a = site(&store, "a", 1).await;
    let b = site(&store, "b", 2).await;
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
    let written = store
        .connection_update(&w, &Scope::All, &a.conn, |r| {
            r.body.mtu = 1400;
            Ok(())
        })
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
    let s = store
        .simple_update::<VpnService>(&w2, &Scope::All, &a.service, |r| {
            r.body.admin_state_up = false;
            Ok(())
        })
        .await
        .unwrap();
    let c: Record<Connection> = store.get(&Scope::All, &a.conn).await.unwrap();
    assert_eq!(c.meta.generation, s.generation);
    assert_eq!(c.meta.revision, 1, "stamping a user does not bump its revision");

    // In use: the policy can't be updated or deleted; the connection first.
    let err = store
        .delete::<IkePolicy>(&WriteCtx::new("t"), &Scope::All, &a.ike)
        .await
        .unwrap_err();
    assert!(matches!(err, Error::InUse { .. }));
    let del = store
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
    store
        .delete::<IkePolicy>(&WriteCtx::new("t"), &Scope::All, &a.ike)
        .await
        .unwrap();
}

#[tokio::test]
async fn failed_writes_leave_nothing() {
    let (_d, store) = open().await;
    let a = site(&store, "a", 1).await;
    let before = store.generation_current().await.unwrap();
    let w = WriteCtx::new("test");
    let err = store
        .connection_update(&w, &Scope::All, &a.conn, |r| {
            r.body.dpd.timeout = 10;
            Ok(())
        })
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
    assert_eq!(c.body.psk.expose(), "super-secret-key-1");
    drop(store);
    for f in std::fs::read_dir(_d.path()).unwrap() {
        let bytes = std::fs::read(f.unwrap().path()).unwrap();
        assert!(!bytes.windows(18).any(|w| w == b"super-secret-key-1"));
    }
}

#[tokio::test]
async fn a_changed_peer_name_is_resolved_before_the_write() {
    let (_d, store) = open().await;
    let a = site(&store, "a", 1).await;
    let w = WriteCtx::new("test");
    let written = store
        .connection_update(&w, &Scope::All, &a.conn, |r| {
            r.body.peer_address = "localhost".into();
            Ok(())
        })
        .await
        .unwrap();
    let ip: std::net::IpAddr = written.record.body.peer_address.parse().unwrap();
    assert!(ip.is_loopback(), "stored resolved: {ip}");

    let before = store.generation_current().await.unwrap();
    let err = store
        .connection_update(&w, &Scope::All, &a.conn, |r| {
            r.body.peer_address = "no-such-peer.invalid".into();
            Ok(())
        })
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
