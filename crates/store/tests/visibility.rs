//! Visibility comes before every other answer: through a project scope, another
//! project's object gives exactly the error a missing id gives, even when the
//! object is in use (which would otherwise answer "in use" and so confirm that
//! it exists). Runs on the real SQLite store.

use model::*;
use store::{Cipher, NewMeta, Scope, Store, WriteCtx};

const OWNER: &str = "p-owner";

fn meta(project: &str, name: &str) -> NewMeta {
    NewMeta {
        id: None,
        project_id: project.into(),
        name: name.into(),
        description: String::new(),
    }
}

fn w() -> WriteCtx {
    WriteCtx::new("test")
}

fn stranger() -> Scope {
    Scope::Project("p-stranger".into())
}

fn owner() -> Scope {
    Scope::Project(OWNER.into())
}

/// The owner's objects: a gateway and subnet, policies, a service, endpoint
/// groups, and a connection that puts all of them in use.
struct Site {
    gateway: String,
    subnet: String,
    ike: String,
    ipsec: String,
    service: String,
    local: String,
    peer: String,
    conn: Connection,
}

async fn site(store: &Store, project: &str, octet: u8) -> Site {
    let scope = Scope::Project(project.into());
    let gw = store
        .gateway_create(
            &w(),
            meta(project, "gw"),
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
        .simple_create(&w(), meta(project, "ike"), IkePolicy::default())
        .await
        .unwrap()
        .record;
    let ipsec = store
        .simple_create(&w(), meta(project, "ipsec"), IpsecPolicy::default())
        .await
        .unwrap()
        .record;
    let svc = store
        .vpn_service_create(
            &w(),
            &scope,
            meta(project, "svc"),
            VpnService {
                router_id: gw.meta.id.clone(),
                ..VpnService::default()
            },
        )
        .await
        .unwrap()
        .record;
    let group = |t: EndpointType, e: &str| EndpointGroup {
        endpoint_type: t,
        endpoints: vec![e.to_string()],
    };
    let local = store
        .endpoint_group_create(
            &w(),
            &scope,
            meta(project, "l"),
            group(EndpointType::Subnet, &subnet.meta.id),
        )
        .await
        .unwrap()
        .record;
    let peer = store
        .endpoint_group_create(
            &w(),
            &scope,
            meta(project, "r"),
            group(EndpointType::Cidr, "10.200.0.0/24"),
        )
        .await
        .unwrap()
        .record;
    let conn = Connection {
        vpnservice_id: svc.meta.id.clone(),
        ikepolicy_id: ike.meta.id.clone(),
        ipsecpolicy_id: ipsec.meta.id.clone(),
        peer_address: "198.51.100.1".into(),
        peer_id: "peer".into(),
        psk: Psk("visibility-psk".into()),
        local_ep_group_id: Some(local.meta.id.clone()),
        peer_ep_group_id: Some(peer.meta.id.clone()),
        ..Connection::default()
    };
    store
        .connection_create(&w(), &scope, meta(project, "c"), conn.clone())
        .await
        .unwrap();
    Site {
        gateway: gw.meta.id,
        subnet: subnet.meta.id,
        ike: ike.meta.id,
        ipsec: ipsec.meta.id,
        service: svc.meta.id,
        local: local.meta.id,
        peer: peer.meta.id,
        conn,
    }
}

/// The error with `id` masked, so a foreign id and a missing one compare equal.
fn shape<T: std::fmt::Debug>(r: Result<T>, id: &str) -> String {
    match r {
        Ok(v) => panic!("expected an error for {id}, got {v:?}"),
        Err(e) => format!("{e:?}").replace(id, "<id>"),
    }
}

fn missing() -> String {
    uuid::Uuid::new_v4().to_string()
}

async fn open() -> (tempfile::TempDir, Store) {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(&dir.path().join("t.db"), Cipher::from_key(&[2; 32]))
        .await
        .unwrap();
    (dir, store)
}

#[tokio::test]
async fn foreign_in_use_policy_update_is_not_found() {
    let (_d, store) = open().await;
    let s = site(&store, OWNER, 1).await;
    let nop = |_: &mut Record<IkePolicy>| Ok(());
    let nop_ipsec = |_: &mut Record<IpsecPolicy>| Ok(());

    // the owner is told the policy is in use ...
    let own = store.policy_update(&w(), &owner(), &s.ike, nop).await;
    assert!(matches!(own, Err(Error::InUse { .. })), "{own:?}");
    // ... a stranger gets what a missing id gets
    let m = missing();
    let foreign = shape(store.policy_update(&w(), &stranger(), &s.ike, nop).await, &s.ike);
    let absent = shape(store.policy_update(&w(), &stranger(), &m, nop).await, &m);
    assert_eq!(foreign, absent);
    assert!(foreign.starts_with("NotFound"), "{foreign}");

    let own = store.policy_update(&w(), &owner(), &s.ipsec, nop_ipsec).await;
    assert!(matches!(own, Err(Error::InUse { .. })), "{own:?}");
    let foreign = shape(
        store.policy_update(&w(), &stranger(), &s.ipsec, nop_ipsec).await,
        &s.ipsec,
    );
    let absent = shape(store.policy_update(&w(), &stranger(), &m, nop_ipsec).await, &m);
    assert_eq!(foreign, absent);
    assert!(foreign.starts_with("NotFound"), "{foreign}");
}

#[tokio::test]
async fn foreign_in_use_delete_is_not_found() {
    let (_d, store) = open().await;
    let s = site(&store, OWNER, 1).await;
    let m = missing();
    macro_rules! check {
        ($t:ty, $id:expr) => {{
            let own = store.delete::<$t>(&w(), &owner(), $id).await;
            assert!(matches!(own, Err(Error::InUse { .. })), "{own:?}");
            let foreign = shape(store.delete::<$t>(&w(), &stranger(), $id).await, $id);
            let absent = shape(store.delete::<$t>(&w(), &stranger(), &m).await, &m);
            assert_eq!(foreign, absent);
        }};
    }
    check!(IkePolicy, &s.ike);
    check!(IpsecPolicy, &s.ipsec);
    check!(VpnService, &s.service);
    check!(EndpointGroup, &s.local);
    check!(EndpointGroup, &s.peer);
}

#[tokio::test]
async fn references_to_foreign_objects_are_missing() {
    let (_d, store) = open().await;
    let s = site(&store, OWNER, 1).await;
    let m = missing();
    let sm = |p: &str| meta(p, "x");

    // a service on the owner's gateway / subnet
    let svc = |router: &str, subnet: Option<&str>| VpnService {
        router_id: router.into(),
        subnet_id: subnet.map(str::to_string),
        ..VpnService::default()
    };
    let foreign = shape(
        store
            .vpn_service_create(&w(), &stranger(), sm("p-stranger"), svc(&s.gateway, None))
            .await,
        &s.gateway,
    );
    let absent = shape(
        store
            .vpn_service_create(&w(), &stranger(), sm("p-stranger"), svc(&m, None))
            .await,
        &m,
    );
    assert_eq!(foreign, absent);

    // an endpoint group naming the owner's subnet
    let group = |e: &str| EndpointGroup {
        endpoint_type: EndpointType::Subnet,
        endpoints: vec![e.to_string()],
    };
    let foreign = shape(
        store
            .endpoint_group_create(&w(), &stranger(), sm("p-stranger"), group(&s.subnet))
            .await,
        &s.subnet,
    );
    let absent = shape(
        store
            .endpoint_group_create(&w(), &stranger(), sm("p-stranger"), group(&m))
            .await,
        &m,
    );
    assert_eq!(foreign, absent);

    // the stranger's own connection, with one reference swapped for the
    // owner's object: answered exactly like a missing id in that place
    let mine = site(&store, "p-stranger", 2).await;
    type Edit = fn(&mut Connection, &str);
    let edits: [(&str, &str, Edit); 5] = [
        ("vpnservice", &s.service, |c, v| c.vpnservice_id = v.into()),
        ("ikepolicy", &s.ike, |c, v| c.ikepolicy_id = v.into()),
        ("ipsecpolicy", &s.ipsec, |c, v| c.ipsecpolicy_id = v.into()),
        ("local group", &s.local, |c, v| {
            c.local_ep_group_id = Some(v.into())
        }),
        ("peer group", &s.peer, |c, v| c.peer_ep_group_id = Some(v.into())),
    ];
    for (what, foreign_id, edit) in edits {
        let mut with_foreign = mine.conn.clone();
        edit(&mut with_foreign, foreign_id);
        let mut with_missing = mine.conn.clone();
        edit(&mut with_missing, &m);
        let f = shape(
            store
                .connection_create(&w(), &stranger(), sm("p-stranger"), with_foreign)
                .await,
            foreign_id,
        );
        let a = shape(
            store
                .connection_create(&w(), &stranger(), sm("p-stranger"), with_missing)
                .await,
            &m,
        );
        assert_eq!(f, a, "{what}");
        assert!(f.starts_with("NotFound"), "{what}: {f}");
    }
    // and the stranger's own connection is fine
    store
        .connection_create(&w(), &stranger(), sm("p-stranger"), mine.conn.clone())
        .await
        .unwrap();
}
