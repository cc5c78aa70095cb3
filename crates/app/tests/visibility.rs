//! Visibility comes before every other answer: through a project scope, another
//! project's object gives exactly the error a missing id gives, even when the
//! object is in use (which would otherwise answer "in use" and so confirm that
//! it exists). Runs on the real SQLite store.

mod common;

use app::{Dialect, Expect};
use common::*;
use model::*;
use store::Scope;

const OWNER: &str = "p-owner";

fn stranger() -> Scope {
    Scope::Project("p-stranger".into())
}

fn owner() -> Scope {
    Scope::Project(OWNER.into())
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

#[tokio::test]
async fn foreign_in_use_policy_update_is_not_found() {
    let (_d, _store, app) = open().await;
    let s = site(&app, OWNER, 1).await;
    let nop = |_: &mut Record<IkePolicy>| Ok(());
    let nop_ipsec = |_: &mut Record<IpsecPolicy>| Ok(());

    // the owner is told the policy is in use ...
    let own = app
        .update(&w(), &owner(), Dialect::Neutron, &s.ike, Expect::UNUSED, nop)
        .await;
    assert!(matches!(own, Err(Error::InUse { .. })), "{own:?}");
    // ... a stranger gets what a missing id gets
    let m = missing();
    let foreign = shape(
        app.update(&w(), &stranger(), Dialect::Neutron, &s.ike, Expect::UNUSED, nop)
            .await,
        &s.ike,
    );
    let absent = shape(
        app.update(&w(), &stranger(), Dialect::Neutron, &m, Expect::UNUSED, nop)
            .await,
        &m,
    );
    assert_eq!(foreign, absent);
    assert!(foreign.starts_with("NotFound"), "{foreign}");

    let own = app
        .update(
            &w(),
            &owner(),
            Dialect::Neutron,
            &s.ipsec,
            Expect::UNUSED,
            nop_ipsec,
        )
        .await;
    assert!(matches!(own, Err(Error::InUse { .. })), "{own:?}");
    let foreign = shape(
        app.update(
            &w(),
            &stranger(),
            Dialect::Neutron,
            &s.ipsec,
            Expect::UNUSED,
            nop_ipsec,
        )
        .await,
        &s.ipsec,
    );
    let absent = shape(
        app.update(&w(), &stranger(), Dialect::Neutron, &m, Expect::UNUSED, nop_ipsec)
            .await,
        &m,
    );
    assert_eq!(foreign, absent);
    assert!(foreign.starts_with("NotFound"), "{foreign}");
}

#[tokio::test]
async fn foreign_in_use_delete_is_not_found() {
    let (_d, _store, app) = open().await;
    let s = site(&app, OWNER, 1).await;
    let m = missing();
    macro_rules! check {
        ($t:ty, $id:expr) => {{
            let own = app.delete::<$t>(&w(), &owner(), $id).await;
            assert!(matches!(own, Err(Error::InUse { .. })), "{own:?}");
            let foreign = shape(app.delete::<$t>(&w(), &stranger(), $id).await, $id);
            let absent = shape(app.delete::<$t>(&w(), &stranger(), &m).await, &m);
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
    let (_d, _store, app) = open().await;
    let s = site(&app, OWNER, 1).await;
    let m = missing();
    let sm = |p: &str| meta(p, "x");

    // a service on the owner's gateway / subnet
    let svc = |router: &str, subnet: Option<&str>| VpnService {
        router_id: router.into(),
        subnet_id: subnet.map(str::to_string),
        ..VpnService::default()
    };
    let foreign = shape(
        app.create(
            &w(),
            &stranger(),
            Dialect::Neutron,
            sm("p-stranger"),
            svc(&s.gateway, None),
        )
        .await,
        &s.gateway,
    );
    let absent = shape(
        app.create(
            &w(),
            &stranger(),
            Dialect::Neutron,
            sm("p-stranger"),
            svc(&m, None),
        )
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
        app.create(
            &w(),
            &stranger(),
            Dialect::Neutron,
            sm("p-stranger"),
            group(&s.subnet),
        )
        .await,
        &s.subnet,
    );
    let absent = shape(
        app.create(&w(), &stranger(), Dialect::Neutron, sm("p-stranger"), group(&m))
            .await,
        &m,
    );
    assert_eq!(foreign, absent);

    // the stranger's own connection, with one reference swapped for the
    // owner's object: answered exactly like a missing id in that place
    let mine = site(&app, "p-stranger", 2).await;
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
        let mut with_foreign = mine.conn_body.clone();
        edit(&mut with_foreign, foreign_id);
        let mut with_missing = mine.conn_body.clone();
        edit(&mut with_missing, &m);
        let f = shape(
            app.create(
                &w(),
                &stranger(),
                Dialect::Neutron,
                sm("p-stranger"),
                with_foreign,
            )
            .await,
            foreign_id,
        );
        let a = shape(
            app.create(
                &w(),
                &stranger(),
                Dialect::Neutron,
                sm("p-stranger"),
                with_missing,
            )
            .await,
            &m,
        );
        assert_eq!(f, a, "{what}");
        assert!(f.starts_with("NotFound"), "{what}: {f}");
    }
    // and the stranger's own connection is fine
    app.create(
        &w(),
        &stranger(),
        Dialect::Neutron,
        sm("p-stranger"),
        mine.conn_body.clone(),
    )
    .await
    .unwrap();
}
