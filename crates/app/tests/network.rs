//! The core network operations (`app::network`): address allocation from an
//! external network, interfaces and their in-use rules, the network cascade,
//! and that an interface change reaches the gateway's nodes (its generation)
//! the way an operator-made subnet does. Runs on the engine the test run asks
//! for (`VPNAAS_TEST_PG`, see `store::testing`).

mod common;

use app::Dialect;
use app::network::{ExternalGateway, FixedIpRequest, GatewayChange};
use common::*;
use model::*;
use store::Scope;

fn project(p: &str) -> Scope {
    Scope::Project(p.into())
}

async fn network(app: &app::App, p: &str, name: &str, external: bool) -> Record<Network> {
    app.create(
        &w(),
        &Scope::All,
        Dialect::Neutron,
        meta(p, name),
        Network {
            admin_state_up: true,
            external,
        },
    )
    .await
    .unwrap()
    .record
}

async fn subnet(app: &app::App, p: &str, net: &str, cidr: &str) -> Result<Record<Subnet>> {
    let cidr: ipnet::IpNet = cidr.parse().unwrap();
    let body = Subnet {
        gateway_id: None,
        network_id: net.into(),
        cidr,
        gateway_ip: first_host(&cidr),
        enable_dhcp: false,
    };
    app.create(&w(), &project(p), Dialect::Neutron, meta(p, "s"), body)
        .await
        .map(|w| w.record)
}

fn gw(net: &str) -> ExternalGateway {
    ExternalGateway {
        network_id: net.into(),
        enable_snat: true,
        fixed_ips: Vec::new(),
    }
}

#[tokio::test]
async fn external_addresses_come_from_the_external_subnets() {
    let (_d, _store, app) = open().await;
    let ext = network(&app, "admin", "ext", true).await;
    let v4 = subnet(&app, "admin", &ext.meta.id, "198.51.100.0/30")
        .await
        .unwrap();
    let v6 = subnet(&app, "admin", &ext.meta.id, "2001:db8:9::/64")
        .await
        .unwrap();
    // A member of another project sees the external network.
    let a = app
        .router_create(&w(), &project("p"), meta("p", "a"), true, Some(gw(&ext.meta.id)))
        .await
        .unwrap()
        .record;
    assert_eq!(a.body.external_v4, Some("198.51.100.2".parse().unwrap()));
    assert_eq!(a.body.external_v6, Some("2001:db8:9::2".parse().unwrap()));
    assert_eq!(a.body.external_v4_subnet_id.as_deref(), Some(v4.meta.id.as_str()));
    assert_eq!(a.body.external_v6_subnet_id.as_deref(), Some(v6.meta.id.as_str()));
    // The /30 is exhausted (.1 is its gateway address, .2 is a's): nothing is written.
    let err = app
        .router_create(&w(), &project("p"), meta("p", "b"), true, Some(gw(&ext.meta.id)))
        .await
        .unwrap_err();
    assert!(matches!(err, Error::AddressesExhausted { .. }), "{err:?}");
    assert_eq!(app.store().list::<Gateway>(&Scope::All).await.unwrap().len(), 1);
    // An address asked for, outside the subnet: refused.
    let ask = ExternalGateway {
        fixed_ips: vec![FixedIpRequest {
            subnet_id: Some(v4.meta.id.clone()),
            ip_address: Some("198.51.101.9".parse().unwrap()),
        }],
        ..gw(&ext.meta.id)
    };
    let err = app
        .router_create(&w(), &project("p"), meta("p", "c"), true, Some(ask))
        .await
        .unwrap_err();
    assert!(
        matches!(err, Error::Invalid(Violation::AddressNotInSubnet { .. })),
        "{err:?}"
    );
    // A network that is not external, and one of another project that is not: 400 / 404.
    let own = network(&app, "p", "own", false).await;
    let err = app
        .router_update(
            &w(),
            &project("p"),
            &a.meta.id,
            |_| {},
            GatewayChange::Set(gw(&own.meta.id)),
        )
        .await
        .unwrap_err();
    assert!(
        matches!(err, Error::Invalid(Violation::NetworkNotExternal { .. })),
        "{err:?}"
    );
    let theirs = network(&app, "q", "theirs", false).await;
    let err = app
        .router_update(
            &w(),
            &project("p"),
            &a.meta.id,
            |_| {},
            GatewayChange::Set(gw(&theirs.meta.id)),
        )
        .await
        .unwrap_err();
    assert!(
        matches!(
            err,
            Error::NotFound {
                kind: Kind::Network,
                ..
            }
        ),
        "{err:?}"
    );
    // Clearing frees the address for the next router.
    app.router_update(&w(), &project("p"), &a.meta.id, |_| {}, GatewayChange::Clear)
        .await
        .unwrap();
    let b = app
        .router_create(&w(), &project("p"), meta("p", "b"), true, Some(gw(&ext.meta.id)))
        .await
        .unwrap()
        .record;
    assert_eq!(b.body.external_v4, Some("198.51.100.2".parse().unwrap()));
    // The external network can't be deleted while b holds an address on it.
    let err = app
        .network_delete(&w(), &Scope::All, &ext.meta.id)
        .await
        .unwrap_err();
    assert!(
        matches!(
            err,
            Error::InUse {
                kind: Kind::Network,
                ..
            }
        ),
        "{err:?}"
    );
}

#[tokio::test]
async fn interfaces_follow_neutron_and_vpnaas_rules() {
    let (_d, store, app) = open().await;
    let net = network(&app, "p", "net", false).await;
    let s1 = subnet(&app, "p", &net.meta.id, "10.50.0.0/24").await.unwrap();
    let s2 = subnet(&app, "p", &net.meta.id, "10.51.0.0/24").await.unwrap();
    // Overlap within the network.
    let err = subnet(&app, "p", &net.meta.id, "10.50.0.128/25")
        .await
        .unwrap_err();
    assert!(
        matches!(err, Error::Invalid(Violation::SubnetOverlap { .. })),
        "{err:?}"
    );
    // Another project's network: not found.
    let err = subnet(&app, "q", &net.meta.id, "10.52.0.0/24").await.unwrap_err();
    assert!(
        matches!(
            err,
            Error::NotFound {
                kind: Kind::Network,
                ..
            }
        ),
        "{err:?}"
    );

    let ext = network(&app, "admin", "ext", true).await;
    subnet(&app, "admin", &ext.meta.id, "198.51.100.0/29")
        .await
        .unwrap();
    let r = app
        .router_create(&w(), &project("p"), meta("p", "r"), true, Some(gw(&ext.meta.id)))
        .await
        .unwrap()
        .record;
    let before = store.gateway_generation(&r.meta.id).await.unwrap();
    let attached = app
        .router_add_interface(&w(), &project("p"), &r.meta.id, &s1.meta.id)
        .await
        .unwrap();
    assert!(attached.record.body.is_on(&r.meta.id));
    // The attach reaches the gateway's nodes: its generation moves.
    let after = store.gateway_generation(&r.meta.id).await.unwrap();
    assert!(after > before && after == attached.generation, "{before} {after}");
    // Twice, or from another project: refused.
    let err = app
        .router_add_interface(&w(), &project("p"), &r.meta.id, &s1.meta.id)
        .await
        .unwrap_err();
    assert!(
        matches!(err, Error::Invalid(Violation::SubnetAlreadyAttached { .. })),
        "{err:?}"
    );
    let err = app
        .router_add_interface(&w(), &project("q"), &r.meta.id, &s2.meta.id)
        .await
        .unwrap_err();
    assert!(
        matches!(
            err,
            Error::NotFound {
                kind: Kind::Gateway,
                ..
            }
        ),
        "{err:?}"
    );

    // A VPN service with s2 (not attached): SubnetNotOnRouter, not NotFound.
    let svc = VpnService {
        router_id: r.meta.id.clone(),
        subnet_id: Some(s2.meta.id.clone()),
        ..VpnService::default()
    };
    let err = app
        .create(&w(), &project("p"), Dialect::Neutron, meta("p", "svc"), svc)
        .await
        .unwrap_err();
    assert!(
        matches!(err, Error::Invalid(Violation::SubnetNotOnRouter { .. })),
        "{err:?}"
    );

    // A subnet endpoint group on s1 keeps the interface.
    let group = app
        .create(
            &w(),
            &project("p"),
            Dialect::Neutron,
            meta("p", "g"),
            EndpointGroup {
                endpoint_type: EndpointType::Subnet,
                endpoints: vec![s1.meta.id.clone()],
            },
        )
        .await
        .unwrap()
        .record;
    let err = app
        .router_remove_interface(&w(), &project("p"), &r.meta.id, &s1.meta.id)
        .await
        .unwrap_err();
    assert!(
        matches!(&err, Error::UsedBy { user_kind: Kind::EndpointGroup, user, .. } if *user == group.meta.id),
        "{err:?}"
    );
    // Nor can the router, the subnet or the network go.
    let err = app
        .router_delete(&w(), &project("p"), &r.meta.id)
        .await
        .unwrap_err();
    assert!(
        matches!(
            err,
            Error::InUse {
                kind: Kind::Gateway,
                ..
            }
        ),
        "{err:?}"
    );
    let err = app
        .subnet_delete(&w(), &project("p"), &s1.meta.id)
        .await
        .unwrap_err();
    assert!(
        matches!(
            err,
            Error::InUse {
                kind: Kind::Subnet,
                ..
            }
        ),
        "{err:?}"
    );
    let err = app
        .network_delete(&w(), &project("p"), &net.meta.id)
        .await
        .unwrap_err();
    assert!(
        matches!(
            err,
            Error::InUse {
                kind: Kind::Network,
                ..
            }
        ),
        "{err:?}"
    );

    // Without the group, the interface goes; then the network with both subnets.
    app.delete::<EndpointGroup>(&w(), &project("p"), &group.meta.id)
        .await
        .unwrap();
    let detached = app
        .router_remove_interface(&w(), &project("p"), &r.meta.id, &s1.meta.id)
        .await
        .unwrap();
    assert_eq!(detached.record.body.gateway_id, None);
    assert_eq!(
        store.gateway_generation(&r.meta.id).await.unwrap(),
        detached.generation
    );
    let err = app
        .router_remove_interface(&w(), &project("p"), &r.meta.id, &s1.meta.id)
        .await
        .unwrap_err();
    assert!(matches!(err, Error::InterfaceNotFound { .. }), "{err:?}");
    app.network_delete(&w(), &project("p"), &net.meta.id)
        .await
        .unwrap();
    assert!(store.list::<Subnet>(&project("p")).await.unwrap().is_empty());
    app.router_delete(&w(), &project("p"), &r.meta.id).await.unwrap();
}

#[tokio::test]
async fn a_router_with_a_vpn_service_keeps_its_gateway() {
    let (_d, _store, app) = open().await;
    let ext = network(&app, "admin", "ext", true).await;
    subnet(&app, "admin", &ext.meta.id, "198.51.100.0/29")
        .await
        .unwrap();
    let r = app
        .router_create(&w(), &project("p"), meta("p", "r"), true, Some(gw(&ext.meta.id)))
        .await
        .unwrap()
        .record;
    let svc = app
        .create(
            &w(),
            &project("p"),
            Dialect::Neutron,
            meta("p", "svc"),
            VpnService {
                router_id: r.meta.id.clone(),
                ..VpnService::default()
            },
        )
        .await
        .unwrap()
        .record;
    for change in [GatewayChange::Clear, GatewayChange::Set(gw(&ext.meta.id))] {
        let moving = matches!(change, GatewayChange::Clear);
        let res = app
            .router_update(&w(), &project("p"), &r.meta.id, |_| {}, change)
            .await;
        if moving {
            let err = res.unwrap_err();
            assert!(
                matches!(&err, Error::UsedBy { kind: Kind::Gateway, user, .. } if *user == svc.meta.id),
                "{err:?}"
            );
        } else {
            // Setting the same network again keeps the address.
            assert_eq!(res.unwrap().record.body.external_v4, r.body.external_v4);
        }
    }
    let err = app
        .router_delete(&w(), &project("p"), &r.meta.id)
        .await
        .unwrap_err();
    assert!(
        matches!(
            err,
            Error::UsedBy {
                user_kind: Kind::VpnService,
                ..
            }
        ),
        "{err:?}"
    );
}

#[tokio::test]
async fn operator_subnets_get_their_gateways_network() {
    let (_d, store, app) = open().await;
    let a = site(&app, "p", 7).await;
    let s: Record<Subnet> = store.get(&Scope::All, &a.subnet).await.unwrap();
    assert_eq!(s.body.network_id, gateway_network_id(&a.gateway));
    assert!(s.body.is_on(&a.gateway));
    let net: Record<Network> = store.get(&Scope::All, &s.body.network_id).await.unwrap();
    assert_eq!(net.meta.project_id, "p");
    // The operator's command follows the same overlap rule.
    let err = app
        .subnet_create(&w(), "x", &a.gateway, "10.7.0.0/25".parse().unwrap())
        .await
        .unwrap_err();
    assert!(
        matches!(err, Error::Invalid(Violation::SubnetOverlap { .. })),
        "{err:?}"
    );
    // Nothing to upgrade.
    assert_eq!(app.upgrade_core_network().await.unwrap(), 0);
}

#[tokio::test]
async fn subnets_from_before_networks_are_upgraded() {
    let (_d, store, app) = open().await;
    let g = app
        .create(
            &w(),
            &Scope::All,
            Dialect::Admin,
            meta("p", "g"),
            Gateway::with_addresses(Some("192.0.2.1".parse().unwrap()), None),
        )
        .await
        .unwrap()
        .record;
    // A row as an older version wrote it: no network.
    let mut tx = store.begin(&w()).await.unwrap();
    let old = tx
        .insert(
            meta("p", "old"),
            Subnet::attached("", &g.meta.id, "10.9.0.0/24".parse().unwrap()),
        )
        .await
        .unwrap();
    tx.commit().await.unwrap();
    assert_eq!(app.upgrade_core_network().await.unwrap(), 1);
    let s: Record<Subnet> = store.get(&Scope::All, &old.meta.id).await.unwrap();
    assert_eq!(s.body.network_id, gateway_network_id(&g.meta.id));
    assert!(s.body.is_on(&g.meta.id));
    assert_eq!(app.upgrade_core_network().await.unwrap(), 0);
}

#[test]
fn host_ranges() {
    let r = |c: &str| host_range(&c.parse().unwrap());
    assert_eq!(
        r("10.0.0.0/24"),
        ("10.0.0.1".parse().unwrap(), "10.0.0.254".parse().unwrap())
    );
    assert_eq!(
        r("10.0.0.4/31"),
        ("10.0.0.4".parse().unwrap(), "10.0.0.5".parse().unwrap())
    );
    assert_eq!(
        r("10.0.0.9/32"),
        ("10.0.0.9".parse().unwrap(), "10.0.0.9".parse().unwrap())
    );
    assert_eq!(
        r("2001:db8::/64"),
        (
            "2001:db8::1".parse().unwrap(),
            "2001:db8::ffff:ffff:ffff:ffff".parse().unwrap()
        )
    );
    assert_eq!(
        first_host(&"2001:db8::/64".parse().unwrap()),
        Some("2001:db8::1".parse().unwrap())
    );
}
