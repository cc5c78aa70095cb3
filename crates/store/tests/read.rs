//! The read model (`store::read`): a snapshot sees one committed state, and
//! the references of some records are exactly what those records name — the
//! nodes and generations of their gateways only, never a whole table.

use model::realization::NodeReport;
use model::*;
use store::read::{CHUNK, Keys, Need, Refs};
use store::{Body, NewMeta, Scope, Store};

mod common;
use common::{gateway, meta, open, w};

/// Inserts one object without any rule (the fixtures are consistent by construction).
async fn put<T: Body>(store: &Store, meta: NewMeta, body: T) -> Record<T> {
    let mut tx = store.begin(&w()).await.unwrap();
    let rec = tx.insert(meta, body).await.unwrap();
    tx.commit().await.unwrap();
    rec
}

/// One site: a gateway with a subnet, a service, a local (subnet) and a peer
/// (CIDR) endpoint group, and two connections.
struct Site {
    gateway: Record<Gateway>,
    subnet: Record<Subnet>,
    service: Record<VpnService>,
    local: Record<EndpointGroup>,
    peer: Record<EndpointGroup>,
    conns: Vec<Record<Connection>>,
}

async fn site(store: &Store, project: &str, i: u8, ike: &str, ipsec: &str) -> Site {
    let gateway = gateway(store, project, &format!("gw{i}"), i).await;
    let subnet = put(
        store,
        meta(project, "subnet"),
        Subnet::attached("", &gateway.meta.id, format!("10.{i}.0.0/24").parse().unwrap()),
    )
    .await;
    let service = put(
        store,
        meta(project, "svc"),
        VpnService {
            router_id: gateway.meta.id.clone(),
            ..VpnService::default()
        },
    )
    .await;
    let local = put(
        store,
        meta(project, "local"),
        EndpointGroup {
            endpoint_type: EndpointType::Subnet,
            endpoints: vec![subnet.meta.id.clone()],
        },
    )
    .await;
    let peer = put(
        store,
        meta(project, "peer"),
        EndpointGroup {
            endpoint_type: EndpointType::Cidr,
            endpoints: vec!["10.200.0.0/16".into()],
        },
    )
    .await;
    let mut conns = Vec::new();
    for k in 0..2 {
        conns.push(
            put(
                store,
                meta(project, &format!("c{i}-{k}")),
                Connection {
                    vpnservice_id: service.meta.id.clone(),
                    ikepolicy_id: ike.into(),
                    ipsecpolicy_id: ipsec.into(),
                    peer_address: format!("198.51.100.{}", i * 10 + k),
                    peer_id: "peer".into(),
                    psk: Psk(format!("psk-{i}-{k}")),
                    local_ep_group_id: Some(local.meta.id.clone()),
                    peer_ep_group_id: Some(peer.meta.id.clone()),
                    ..Connection::default()
                },
            )
            .await,
        );
    }
    Site {
        gateway,
        subnet,
        service,
        local,
        peer,
        conns,
    }
}

/// Three sites (two nodes reporting on each gateway) sharing one IKE and one
/// IPsec policy.
async fn sites(store: &Store) -> Vec<Site> {
    let ike = put(store, meta("p1", "ike"), IkePolicy::default()).await;
    let ipsec = put(store, meta("p1", "ipsec"), IpsecPolicy::default()).await;
    let mut out = Vec::new();
    for i in 1..=3 {
        let s = site(store, "p1", i, &ike.meta.id, &ipsec.meta.id).await;
        for n in 0..2 {
            let node = store
                .node_create(&format!("n{i}-{n}"), &s.gateway.meta.id, &format!("hash-{i}-{n}"))
                .await
                .unwrap();
            let report = NodeReport {
                node_error: None,
                realized_generation: Some(i as i64),
                ..NodeReport::default()
            };
            store.node_report(&node.id, &report).await.unwrap();
        }
        out.push(s);
    }
    out
}

fn ids<T>(m: &std::collections::HashMap<String, T>) -> Vec<String> {
    let mut v: Vec<String> = m.keys().cloned().collect();
    v.sort();
    v
}

#[tokio::test]
async fn a_connections_references_are_its_own_only() {
    let (_dir, _, store) = open().await;
    let all = sites(&store).await;
    let s = &all[1];
    let mut snap = store.snapshot().await.unwrap();
    let everything = Need {
        gateways: true,
        status: true,
        traffic: true,
        policies: true,
    };
    let refs = snap.refs_of(&s.conns[..1], everything).await.unwrap();
    assert_eq!(ids(&refs.services), vec![s.service.meta.id.clone()]);
    assert_eq!(ids(&refs.gateways), vec![s.gateway.meta.id.clone()]);
    let mut groups = vec![s.local.meta.id.clone(), s.peer.meta.id.clone()];
    groups.sort();
    assert_eq!(ids(&refs.groups), groups);
    assert_eq!(ids(&refs.subnets), vec![s.subnet.meta.id.clone()]);
    assert_eq!(ids(&refs.ike), vec![s.conns[0].body.ikepolicy_id.clone()]);
    assert_eq!(ids(&refs.ipsec), vec![s.conns[0].body.ipsecpolicy_id.clone()]);
    // The nodes and generation of this connection's gateway, nobody else's.
    assert_eq!(refs.node_states.len(), 2);
    assert!(
        refs.node_states
            .iter()
            .all(|n| n.node.gateway_id == s.gateway.meta.id && n.realized_generation == Some(2))
    );
    assert_eq!(
        refs.gateway_generations.keys().collect::<Vec<_>>(),
        vec![&s.gateway.meta.id]
    );
    // Its traffic, as the selectors derive it from these references.
    let ts = traffic::selectors(&s.conns[0].body, &s.service.body, &refs.traffic());
    assert_eq!(ts.local, vec![s.subnet.body.cidr]);

    // Without a need, only the services.
    let refs = snap.refs_of(&s.conns, Need::default()).await.unwrap();
    assert_eq!(ids(&refs.services), vec![s.service.meta.id.clone()]);
    assert!(refs.gateways.is_empty() && refs.groups.is_empty() && refs.node_states.is_empty());

    // A service's own references: its gateway and that gateway's nodes.
    let status = Need {
        gateways: true,
        status: true,
        ..Need::default()
    };
    let refs = snap
        .refs_of([&all[0].service, &all[2].service], status)
        .await
        .unwrap();
    let mut gws = vec![all[0].gateway.meta.id.clone(), all[2].gateway.meta.id.clone()];
    gws.sort();
    assert_eq!(ids(&refs.gateways), gws);
    assert_eq!(refs.node_states.len(), 4);
    assert!(refs.services.is_empty());
}

#[tokio::test]
async fn load_reads_only_what_refs_does_not_hold() {
    let (_dir, _, store) = open().await;
    let all = sites(&store).await;
    let mut snap = store.snapshot().await.unwrap();
    let mut refs = Refs::default();
    // A service already known (as realization knows its gateway's services)
    // is not read again: a changed copy stays as given.
    let mut known = all[0].service.clone();
    known.meta.name = "as given".into();
    refs.services.insert(known.meta.id.clone(), known);
    let need = Need {
        status: true,
        ..Need::default()
    };
    let conns: Vec<&Record<Connection>> = all.iter().flat_map(|s| &s.conns).collect();
    snap.load(&mut refs, Keys::of(conns.iter().copied()), need)
        .await
        .unwrap();
    assert_eq!(refs.services.len(), 3);
    assert_eq!(refs.services[&all[0].service.meta.id].meta.name, "as given");
    assert_eq!(refs.node_states.len(), 6);
    // Loading the same gateways' status again adds nothing.
    snap.load(&mut refs, Keys::of(conns.iter().copied()), need)
        .await
        .unwrap();
    assert_eq!(refs.node_states.len(), 6);
}

#[tokio::test]
async fn many_ids_are_read_in_chunks() {
    let (_dir, _, store) = open().await;
    let mut tx = store.begin(&w()).await.unwrap();
    let mut want = Vec::new();
    for i in 0..CHUNK + 7 {
        let rec = tx
            .insert(meta("p1", &format!("ike{i}")), IkePolicy::default())
            .await
            .unwrap();
        want.push(rec.meta.id);
    }
    tx.commit().await.unwrap();
    let mut snap = store.snapshot().await.unwrap();
    let mut asked = want.clone();
    asked.push("no-such-id".into());
    asked.push(String::new());
    let got = snap.get_many::<IkePolicy>(&asked).await.unwrap();
    assert_eq!(got.len(), CHUNK + 7);
    assert!(want.iter().all(|id| got.contains_key(id)));
    // Another kind's ids are not this kind's objects.
    assert!(snap.get_many::<IpsecPolicy>(&want).await.unwrap().is_empty());
}

#[tokio::test]
async fn scoped_reads_and_users() {
    let (_dir, _, store) = open().await;
    let all = sites(&store).await;
    let other = put(&store, meta("p2", "theirs"), IkePolicy::default()).await;
    let mut snap = store.snapshot().await.unwrap();
    let mine = Scope::Project("p1".into());
    assert!(matches!(
        snap.get_in::<IkePolicy>(&mine, &other.meta.id).await,
        Err(Error::NotFound { .. })
    ));
    assert_eq!(
        snap.get_in::<IkePolicy>(&Scope::All, &other.meta.id)
            .await
            .unwrap()
            .meta
            .name,
        "theirs"
    );
    assert_eq!(snap.list_in::<IkePolicy>(&mine).await.unwrap().len(), 1);
    assert_eq!(snap.list::<IkePolicy>().await.unwrap().len(), 2);
    // The connections of two services, decrypted, oldest first.
    let services = [all[0].service.meta.id.clone(), all[2].service.meta.id.clone()];
    let conns = snap.users_of_any::<Connection>(&services).await.unwrap();
    // Oldest first; objects made in the same millisecond are ordered by id.
    let order: Vec<(i64, &str)> = conns
        .iter()
        .map(|c| (c.meta.created_at, c.meta.id.as_str()))
        .collect();
    assert!(order.windows(2).all(|w| w[0] <= w[1]), "{order:?}");
    let mut names: Vec<&str> = conns.iter().map(|c| c.meta.name.as_str()).collect();
    names.sort();
    assert_eq!(names, ["c1-0", "c1-1", "c3-0", "c3-1"]);
    let first = conns.iter().find(|c| c.meta.name == "c1-0").unwrap();
    assert_eq!(first.body.psk.expose(), "psk-1-0");
}

#[tokio::test]
async fn a_snapshot_sees_one_committed_state() {
    let (_dir, _, store) = open().await;
    let before = put(&store, meta("p1", "before"), IkePolicy::default()).await;
    let mut snap = store.snapshot().await.unwrap();
    let after = put(&store, meta("p1", "after"), IkePolicy::default()).await;
    assert!(after.meta.generation > snap.generation);
    snap.get::<IkePolicy>(&before.meta.id).await.unwrap();
    assert!(matches!(
        snap.get::<IkePolicy>(&after.meta.id).await,
        Err(Error::NotFound { .. })
    ));
    assert_eq!(snap.list::<IkePolicy>().await.unwrap().len(), 1);
    drop(snap);
    let mut fresh = store.snapshot().await.unwrap();
    fresh.get::<IkePolicy>(&after.meta.id).await.unwrap();
}

/// A snapshot abandoned at any point of its start (a client that disconnects,
/// the edge's deadline) leaves no pooled connection inside a transaction: every
/// later snapshot begins and sees the latest commit, not a stale view.
#[tokio::test]
async fn a_snapshot_dropped_while_it_begins_leaves_no_open_transaction() {
    let (_dir, _path, store) = open().await;
    for i in 0..400u64 {
        // Cut off after 0..~60 µs: before, during and after the BEGIN.
        let cut = std::time::Duration::from_nanos((i % 61) * 1_000);
        let _ = tokio::time::timeout(cut, store.snapshot()).await;
        if i % 20 == 0 {
            gateway(&store, "p", &format!("gw{i}"), 1).await;
        }
        let want = store.generation_current().await.unwrap();
        let snap = store
            .snapshot()
            .await
            .unwrap_or_else(|e| panic!("snapshot after a cut-off at {cut:?}: {e}"));
        assert_eq!(
            snap.generation, want,
            "a snapshot after a cut-off at {cut:?} is stale"
        );
    }
}

/// What realization states read of a gateway's nodes is their reports without
/// the tunnels' statuses, the rest equal to the full read.
#[tokio::test]
async fn node_realization_is_the_full_state_without_tunnels() {
    let (_dir, _path, store) = open().await;
    let gw = gateway(&store, "p", "gw", 1).await;
    let node = store.node_create("n", &gw.meta.id, "hash-n").await.unwrap();
    let report = NodeReport {
        realized_generation: Some(3),
        tunnels: vec![model::realization::TunnelStatus {
            id: "t1".into(),
            ..Default::default()
        }],
        failures: vec![model::realization::Failure {
            entity_id: "t2".into(),
            message: "no".into(),
        }],
        ..NodeReport::default()
    };
    store.node_report(&node.id, &report).await.unwrap();
    let ids = [gw.meta.id.clone()];
    let mut snap = store.snapshot().await.unwrap();
    let full = snap.node_states_of(&ids).await.unwrap();
    let brief = snap.node_realization_of(&ids).await.unwrap();
    assert_eq!(full.len(), 1);
    assert_eq!(full[0].tunnels.len(), 1);
    assert!(brief[0].tunnels.is_empty());
    assert_eq!(brief[0].realized_generation, Some(3));
    assert_eq!(brief[0].failures, full[0].failures);
    assert_eq!(brief[0].last_seen, full[0].last_seen);
    assert_eq!(brief[0].node.id, node.id);
}
