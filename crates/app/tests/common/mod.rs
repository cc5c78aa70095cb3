//! Fixtures shared by the application's integration tests (each test file is
//! its own binary and includes this module; not every binary uses every item).
#![allow(dead_code)]

use std::time::Duration;

use app::{App, Dialect};
use model::*;
use store::{Cipher, NewMeta, Scope, Store, WriteCtx};

/// A fresh store (on the engine the test run asks for, see
/// `store::testing`) and the application over it.
pub(crate) async fn open() -> (store::testing::TestDb, Store, App) {
    let db = store::testing::fresh().await;
    let store = Store::open(db.db.clone(), Cipher::from_key(&[1; 32]))
        .await
        .unwrap();
    let app = App::new(store.clone(), Duration::from_secs(15));
    (db, store, app)
}

pub(crate) fn w() -> WriteCtx {
    WriteCtx::new("test")
}

pub(crate) fn meta(project: &str, name: &str) -> NewMeta {
    NewMeta {
        id: None,
        project_id: project.into(),
        name: name.into(),
        description: String::new(),
    }
}

/// The pre-shared key of every [`site`]'s connection.
pub(crate) const SITE_PSK: &str = "super-secret-key-1";

/// One project's objects: a gateway and subnet, policies, a service, endpoint
/// groups, and a connection that puts all of them in use.
pub(crate) struct Site {
    pub gateway: String,
    pub subnet: String,
    pub ike: String,
    pub ipsec: String,
    pub service: String,
    pub local: String,
    pub peer: String,
    /// The connection's id and the body it was created from.
    pub conn: String,
    pub conn_body: Connection,
}

/// A [`Site`] of `project`, made through Neutron's rules in that project's
/// scope, with gateway address 192.0.2.`octet` and subnet 10.`octet`.0.0/24.
pub(crate) async fn site(app: &App, project: &str, octet: u8) -> Site {
    let scope = Scope::Project(project.into());
    let neutron = Dialect::Neutron;
    let gw = app
        .create(
            &w(),
            &Scope::All,
            Dialect::Admin,
            meta(project, "gw"),
            Gateway::with_addresses(Some(format!("192.0.2.{octet}").parse().unwrap()), None),
        )
        .await
        .unwrap()
        .record;
    let subnet = app
        .subnet_create(
            &w(),
            "s",
            &gw.meta.id,
            format!("10.{octet}.0.0/24").parse().unwrap(),
        )
        .await
        .unwrap()
        .record;
    let ike = app
        .create(&w(), &scope, neutron, meta(project, "ike"), IkePolicy::default())
        .await
        .unwrap()
        .record;
    let ipsec = app
        .create(
            &w(),
            &scope,
            neutron,
            meta(project, "ipsec"),
            IpsecPolicy::default(),
        )
        .await
        .unwrap()
        .record;
    let service = VpnService {
        router_id: gw.meta.id.clone(),
        ..VpnService::default()
    };
    let svc = app
        .create(&w(), &scope, neutron, meta(project, "svc"), service)
        .await
        .unwrap()
        .record;
    let group = |t: EndpointType, e: &str| EndpointGroup {
        endpoint_type: t,
        endpoints: vec![e.to_string()],
    };
    let local = app
        .create(
            &w(),
            &scope,
            neutron,
            meta(project, "l"),
            group(EndpointType::Subnet, &subnet.meta.id),
        )
        .await
        .unwrap()
        .record;
    let peer = app
        .create(
            &w(),
            &scope,
            neutron,
            meta(project, "r"),
            group(EndpointType::Cidr, "10.200.0.0/24"),
        )
        .await
        .unwrap()
        .record;
    let conn_body = Connection {
        vpnservice_id: svc.meta.id.clone(),
        ikepolicy_id: ike.meta.id.clone(),
        ipsecpolicy_id: ipsec.meta.id.clone(),
        peer_address: "198.51.100.1".into(),
        peer_id: "peer".into(),
        psk: Psk(SITE_PSK.into()),
        local_ep_group_id: Some(local.meta.id.clone()),
        peer_ep_group_id: Some(peer.meta.id.clone()),
        ..Connection::default()
    };
    let conn = app
        .create(&w(), &scope, neutron, meta(project, "c"), conn_body.clone())
        .await
        .unwrap()
        .record;
    Site {
        gateway: gw.meta.id,
        subnet: subnet.meta.id,
        ike: ike.meta.id,
        ipsec: ipsec.meta.id,
        service: svc.meta.id,
        local: local.meta.id,
        peer: peer.meta.id,
        conn: conn.meta.id,
        conn_body,
    }
}
