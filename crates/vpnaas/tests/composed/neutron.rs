//! The Neutron VPNaaS API (`/v2.0/vpn/...`): create / show / list / update /
//! delete of each resource with Neutron's status codes, defaults and field sets,
//! request ids, and the in-use conflicts between them.

use axum::http::Method;
use serde_json::{Value, json};

use crate::harness::*;

/// One resource's whole lifecycle: create (201, `fields` exactly), show and list
/// (the same object), update (200, `changed` applied), delete (204, empty body),
/// then show and delete answer 404 with `not_found` and its message.
async fn lifecycle(
    s: &TestServer,
    collection: &str,
    member: &str,
    create: Value,
    fields: &[&str],
    update: Value,
    not_found: &str,
) -> Value {
    let r = s
        .neutron(Method::POST, collection, Some(json!({ member: create })))
        .await;
    let rid = r.header("x-nsx-requestid").to_string();
    assert_eq!(r.header("x-openstack-request-id"), format!("req-{rid}"));
    let created = r.expect(201)[member].clone();
    let mut want: Vec<String> = fields.iter().map(|f| f.to_string()).collect();
    want.sort();
    assert_eq!(keys(&created), want, "{member}: {created}");
    let id = id_of(&created);
    let project = created["project_id"].clone();
    assert_eq!(created["tenant_id"], project);
    let path = format!("{collection}/{id}");

    let shown = s.neutron(Method::GET, &path, None).await.expect(200)[member].clone();
    assert_eq!(shown, created);
    let plural = collection.rsplit('/').next().unwrap().replace('-', "_");
    let listed = s.neutron(Method::GET, collection, None).await.expect(200);
    let items = listed[&plural].as_array().expect("a list");
    assert!(items.contains(&created), "{plural}: {listed}");

    let r = s
        .neutron(Method::PUT, &path, Some(json!({ member: update.clone() })))
        .await;
    assert_ne!(r.header("x-nsx-requestid"), rid, "a new request id");
    let updated = r.expect(200)[member].clone();
    for (k, v) in update.as_object().unwrap() {
        assert_eq!(&updated[k], v, "{member}.{k}: {updated}");
    }
    assert_eq!(keys(&updated), want);
    let shown = s.neutron(Method::GET, &path, None).await.expect(200)[member].clone();
    assert_eq!(shown, updated);

    let r = s.neutron(Method::DELETE, &path, None).await;
    assert_eq!(r.expect(204), Value::Null);
    let msg = s
        .neutron(Method::GET, &path, None)
        .await
        .neutron_error(404, not_found);
    assert!(msg.contains(&id), "{msg}");
    s.neutron(Method::DELETE, &path, None)
        .await
        .neutron_error(404, not_found);
    let listed = s.neutron(Method::GET, collection, None).await.expect(200);
    assert!(
        !listed[&plural]
            .as_array()
            .unwrap()
            .iter()
            .any(|o| o["id"] == id.as_str())
    );
    updated
}

const COMMON: [&str; 5] = ["id", "tenant_id", "project_id", "name", "description"];

fn with_common(extra: &[&'static str]) -> Vec<&'static str> {
    COMMON.iter().chain(extra).copied().collect()
}

#[tokio::test]
async fn ikepolicy_lifecycle_and_defaults() {
    let s = TestServer::new().await;
    let fields = with_common(&[
        "auth_algorithm",
        "encryption_algorithm",
        "phase1_negotiation_mode",
        "lifetime",
        "ike_version",
        "pfs",
    ]);
    let r = s
        .neutron(
            Method::POST,
            IKE,
            Some(json!({"ikepolicy": {"name": "defaults"}})),
        )
        .await
        .expect(201);
    let p = &r["ikepolicy"];
    assert_eq!(p["auth_algorithm"], "sha1");
    assert_eq!(p["encryption_algorithm"], "aes-128");
    assert_eq!(p["phase1_negotiation_mode"], "main");
    assert_eq!(p["ike_version"], "v1");
    assert_eq!(p["pfs"], "group5");
    assert_eq!(p["lifetime"], json!({"units": "seconds", "value": 3600}));
    assert_eq!(p["description"], "");

    let done = lifecycle(
        &s,
        IKE,
        "ikepolicy",
        json!({"name": "ike1", "auth_algorithm": "sha256", "encryption_algorithm": "aes-256",
               "ike_version": "v2", "pfs": "group14", "lifetime": {"units": "seconds", "value": 7200}}),
        &fields,
        json!({"name": "ike1b", "description": "d", "pfs": "group19"}),
        "IKEPolicyNotFound",
    )
    .await;
    assert_eq!(done["ike_version"], "v2");
    assert_eq!(done["lifetime"]["value"], 7200);
}

#[tokio::test]
async fn ipsecpolicy_lifecycle_and_defaults() {
    let s = TestServer::new().await;
    let fields = with_common(&[
        "transform_protocol",
        "auth_algorithm",
        "encryption_algorithm",
        "encapsulation_mode",
        "lifetime",
        "pfs",
    ]);
    let r = s
        .neutron(Method::POST, IPSEC, Some(json!({"ipsecpolicy": {}})))
        .await
        .expect(201);
    let p = &r["ipsecpolicy"];
    assert_eq!(p["transform_protocol"], "esp");
    assert_eq!(p["auth_algorithm"], "sha1");
    assert_eq!(p["encryption_algorithm"], "aes-128");
    assert_eq!(p["encapsulation_mode"], "tunnel");
    assert_eq!(p["pfs"], "group5");
    assert_eq!(p["lifetime"], json!({"units": "seconds", "value": 3600}));
    assert_eq!(p["name"], "");

    lifecycle(
        &s,
        IPSEC,
        "ipsecpolicy",
        json!({"name": "ipsec1", "encryption_algorithm": "aes-256", "auth_algorithm": "sha256"}),
        &fields,
        json!({"name": "ipsec1b", "pfs": "group14", "lifetime": {"units": "seconds", "value": 1800}}),
        "IPsecPolicyNotFound",
    )
    .await;
}

#[tokio::test]
async fn vpnservice_lifecycle_on_a_gateway() {
    let s = TestServer::new().await;
    let gw = s.gateway("gw", 7).await;
    let fields = with_common(&[
        "subnet_id",
        "router_id",
        "flavor_id",
        "admin_state_up",
        "external_v4_ip",
        "external_v6_ip",
        "status",
    ]);
    let r = s
        .neutron(
            Method::POST,
            SVC,
            Some(json!({"vpnservice": {"name": "svc", "router_id": gw.id}})),
        )
        .await
        .expect(201);
    let v = &r["vpnservice"];
    assert_eq!(v["router_id"], gw.id.as_str());
    assert_eq!(v["external_v4_ip"], "172.30.7.1");
    assert_eq!(v["external_v6_ip"], Value::Null);
    assert_eq!(v["subnet_id"], Value::Null);
    assert_eq!(v["admin_state_up"], true);
    // No transport node carries the gateway: DOWN (pending needs a node).
    assert_eq!(v["status"], "DOWN");

    // An unknown router is Neutron's 404 for the reference.
    s.neutron(
        Method::POST,
        SVC,
        Some(json!({"vpnservice": {"router_id": "8d2c0a64-5c9d-4d4e-9d6f-3a7c1e0b2f11"}})),
    )
    .await
    .neutron_error(404, "RouterNotFound");

    lifecycle(
        &s,
        SVC,
        "vpnservice",
        json!({"name": "svc2", "router_id": gw.id}),
        &fields,
        json!({"name": "svc2b", "description": "touched"}),
        "VPNServiceNotFound",
    )
    .await;
}

#[tokio::test]
async fn endpoint_group_lifecycle_of_both_types() {
    let s = TestServer::new().await;
    let gw = s.gateway("gw", 8).await;
    let fields = with_common(&["type", "endpoints"]);
    let subnets = lifecycle(
        &s,
        EPG,
        "endpoint_group",
        json!({"name": "local", "type": "subnet", "endpoints": [gw.subnet_id]}),
        &fields,
        json!({"name": "local-b", "description": "ours"}),
        "VPNEndpointGroupNotFound",
    )
    .await;
    assert_eq!(subnets["type"], "subnet");
    assert_eq!(subnets["endpoints"], json!([gw.subnet_id]));
    let cidrs = lifecycle(
        &s,
        EPG,
        "endpoint_group",
        json!({"name": "peer", "type": "cidr", "endpoints": ["10.108.0.0/24", "10.109.0.0/24"]}),
        &fields,
        json!({"name": "peer-b"}),
        "VPNEndpointGroupNotFound",
    )
    .await;
    assert_eq!(cidrs["endpoints"], json!(["10.108.0.0/24", "10.109.0.0/24"]));
}

#[tokio::test]
async fn connection_lifecycle_defaults_and_pending_rule() {
    let s = TestServer::new().await;
    let site = s.site("site", 9).await;
    // A node of the gateway that has not realized anything yet.
    let node = s.node("site-n1", "site").await;
    let path = format!("{CONN}/{}", site.conn);
    let c = s.neutron(Method::GET, &path, None).await.expect(200)["ipsec_site_connection"].clone();
    let mut want: Vec<String> = with_common(&[
        "peer_address",
        "peer_id",
        "local_id",
        "route_mode",
        // ours: the tunnel interface's addresses in route mode
        "tunnel_addresses",
        "mtu",
        "auth_mode",
        "psk",
        "initiator",
        "dpd",
        "admin_state_up",
        "status",
        "status_description",
        "vpnservice_id",
        "ikepolicy_id",
        "ipsecpolicy_id",
        "peer_cidrs",
        "local_ep_group_id",
        "peer_ep_group_id",
    ])
    .into_iter()
    .map(String::from)
    .collect();
    want.sort();
    assert_eq!(keys(&c), want, "{c}");
    assert_eq!(c["status"], "PENDING_CREATE");
    assert_eq!(c["psk"], "psk-site");
    assert_eq!(c["mtu"], 1500);
    assert_eq!(c["initiator"], "bi-directional");
    assert_eq!(
        c["dpd"],
        json!({"action": "hold", "interval": 30, "timeout": 120})
    );
    assert_eq!(
        (&c["route_mode"], &c["auth_mode"]),
        (&json!("static"), &json!("psk"))
    );
    assert_eq!(c["peer_cidrs"], json!([]));
    assert_eq!(c["vpnservice_id"], site.service.as_str());
    assert_eq!(c["ikepolicy_id"], site.ike.as_str());
    assert_eq!(c["ipsecpolicy_id"], site.ipsec.as_str());
    assert_eq!(c["local_ep_group_id"], site.local.as_str());
    assert_eq!(c["peer_ep_group_id"], site.peer.as_str());
    let listed = s.neutron(Method::GET, CONN, None).await.expect(200);
    assert_eq!(listed["ipsec_site_connections"], json!([c]));

    // Neutron refuses to update a connection that is still PENDING_*.
    let msg = s
        .neutron(
            Method::PUT,
            &path,
            Some(json!({"ipsec_site_connection": {"mtu": 1400}})),
        )
        .await
        .neutron_error(400, "VPNStateInvalidToUpdate");
    assert_eq!(
        msg,
        format!(
            "Invalid state PENDING_CREATE of vpnaas resource {} for updating",
            site.conn
        )
    );
    // Once a node realized it (DOWN: tunnel not up yet), updates go through
    // and the connection is pending again until the nodes catch up.
    s.sync(&node, &[]).await;
    assert_eq!(s.conn_status(&site.conn).await, "DOWN");
    let u = s
        .neutron(
            Method::PUT,
            &path,
            Some(json!({"ipsec_site_connection": {"mtu": 1400, "psk": "new-psk",
                        "dpd": {"action": "restart", "interval": 10, "timeout": 50}}})),
        )
        .await
        .expect(200)["ipsec_site_connection"]
        .clone();
    assert_eq!(
        (u["mtu"].clone(), u["psk"].clone()),
        (json!(1400), json!("new-psk"))
    );
    assert_eq!(
        u["dpd"],
        json!({"action": "restart", "interval": 10, "timeout": 50})
    );
    assert_eq!(u["status"], "PENDING_UPDATE");
    assert_eq!(keys(&u), want);

    assert_eq!(
        s.neutron(Method::DELETE, &path, None).await.expect(204),
        Value::Null
    );
    let msg = s
        .neutron(Method::GET, &path, None)
        .await
        .neutron_error(404, "IPsecSiteConnectionNotFound");
    assert_eq!(msg, format!("ipsec_site_connection {} not found", site.conn));
}

#[tokio::test]
async fn objects_in_use_are_refused_until_the_connection_goes() {
    let s = TestServer::new().await;
    let site = s.site("used", 10).await;
    let ike = format!("{IKE}/{}", site.ike);
    let ipsec = format!("{IPSEC}/{}", site.ipsec);
    let svc = format!("{SVC}/{}", site.service);
    let local = format!("{EPG}/{}", site.local);
    let peer = format!("{EPG}/{}", site.peer);

    let msg = s
        .neutron(Method::DELETE, &ike, None)
        .await
        .neutron_error(409, "IKEPolicyInUse");
    assert_eq!(
        msg,
        format!(
            "IKEPolicy {} is in use by existing IPsecSiteConnection and can't be updated or deleted",
            site.ike
        )
    );
    // A used IKE policy can't be changed either (Neutron's rule).
    s.neutron(Method::PUT, &ike, Some(json!({"ikepolicy": {"pfs": "group14"}})))
        .await
        .neutron_error(409, "IKEPolicyInUse");
    let msg = s
        .neutron(Method::DELETE, &ipsec, None)
        .await
        .neutron_error(409, "IPsecPolicyInUse");
    assert!(
        msg.starts_with(&format!("IPsecPolicy {} is in use", site.ipsec)),
        "{msg}"
    );
    let msg = s
        .neutron(Method::DELETE, &svc, None)
        .await
        .neutron_error(409, "VPNServiceInUse");
    assert_eq!(msg, format!("VPNService {} is still in use", site.service));
    for epg in [&local, &peer] {
        let msg = s
            .neutron(Method::DELETE, epg, None)
            .await
            .neutron_error(400, "EndpointGroupInUse");
        assert!(msg.ends_with("is in use and cannot be deleted"), "{msg}");
    }
    // The refusals changed nothing.
    let p = s.neutron(Method::GET, &ike, None).await.expect(200);
    assert_eq!(p["ikepolicy"]["pfs"], "group5");

    s.neutron(Method::DELETE, &format!("{CONN}/{}", site.conn), None)
        .await
        .expect(204);
    for path in [&ike, &ipsec, &svc, &local, &peer] {
        s.neutron(Method::DELETE, path, None).await.expect(204);
    }
    for (collection, plural) in [
        (IKE, "ikepolicies"),
        (IPSEC, "ipsecpolicies"),
        (SVC, "vpnservices"),
        (EPG, "endpoint_groups"),
        (CONN, "ipsec_site_connections"),
    ] {
        let l = s.neutron(Method::GET, collection, None).await.expect(200);
        assert_eq!(l[plural], json!([]), "{collection}");
    }
}

#[tokio::test]
async fn unknown_references_and_unauthenticated_callers() {
    let s = TestServer::new().await;
    let site = s.site("refs", 11).await;
    let missing = "0b9f6a1e-3c55-4e8a-9d3b-6f2a7c4d1e90";
    let conn = |over: Value| {
        let mut body = json!({"vpnservice_id": site.service, "ikepolicy_id": site.ike,
            "ipsecpolicy_id": site.ipsec, "peer_address": "198.51.100.99", "peer_id": "p",
            "psk": "k", "local_ep_group_id": site.local, "peer_ep_group_id": site.peer});
        for (k, v) in over.as_object().unwrap() {
            body[k] = v.clone();
        }
        json!({"ipsec_site_connection": body})
    };
    let cases = [
        ("ikepolicy_id", "IKEPolicyNotFound"),
        ("ipsecpolicy_id", "IPsecPolicyNotFound"),
        ("vpnservice_id", "VPNServiceNotFound"),
        ("peer_ep_group_id", "VPNEndpointGroupNotFound"),
    ];
    for (field, kind) in cases {
        let msg = s
            .neutron(Method::POST, CONN, Some(conn(json!({ field: missing }))))
            .await
            .neutron_error(404, kind);
        assert!(msg.contains(missing), "{field}: {msg}");
    }
    // Nothing was created by the failed posts.
    let l = s.neutron(Method::GET, CONN, None).await.expect(200);
    assert_eq!(l["ipsec_site_connections"].as_array().unwrap().len(), 1);

    let r = s.call(Method::GET, IKE, Auth::None, None).await;
    assert_eq!(r.status.as_u16(), 401, "{}", r.body);
    let r = s.call(Method::GET, IKE, Auth::Token("not-a-token"), None).await;
    assert_eq!(r.status.as_u16(), 401, "{}", r.body);
}

/// A list read as one page in SQL (filters and sort keys on columns) answers
/// exactly what the in-memory path answers for the same query: the same items
/// in the same order with the same fields, and the same links. The in-memory
/// path is forced by adding a filter on a body attribute that every object
/// matches (`auth_algorithm=sha1`, the default).
#[tokio::test]
async fn sql_pages_agree_with_the_in_memory_path() {
    let s = TestServer::new().await;
    let names = ["b", "a", "dup", "c", "dup", "", "Z", "dup", "e", "a"];
    let mut ids = Vec::new();
    for (i, name) in names.iter().cycle().take(23).enumerate() {
        let p = s
            .neutron_create(
                IKE,
                "ikepolicy",
                json!({"name": name, "description": format!("d{}", i % 3)}),
            )
            .await;
        ids.push(id_of(&p));
    }
    // Text the database's JSON must escape as serde does.
    let p = s
        .neutron_create(
            IKE,
            "ikepolicy",
            json!({"name": "q\"uote\\back\tü 😀 </x>", "description": "\u{1}\n"}),
        )
        .await;
    ids.push(id_of(&p));
    let strip_links = |v: &Value| -> Vec<(String, String)> {
        v["ikepolicies_links"]
            .as_array()
            .map(|ls| {
                ls.iter()
                    .map(|l| {
                        let href = l["href"].as_str().unwrap();
                        let marker = href.split("marker=").nth(1).unwrap().split('&').next().unwrap();
                        (l["rel"].as_str().unwrap().to_string(), marker.to_string())
                    })
                    .collect()
            })
            .unwrap_or_default()
    };
    let queries = [
        String::new(),
        "limit=7".into(),
        format!("limit=7&marker={}", ids[4]),
        format!("limit=7&marker={}&page_reverse=True", ids[12]),
        "limit=4&page_reverse=True".into(),
        format!("sort_key=name&sort_dir=desc&limit=5&marker={}", ids[2]),
        "sort_key=name&sort_dir=asc&sort_key=id&sort_dir=desc".into(),
        format!(
            "sort_key=tenant_id&sort_dir=asc&sort_key=name&sort_dir=desc&limit=6&marker={}",
            ids[9]
        ),
        "fields=id&fields=name&limit=3".into(),
        "fields=tenant_id".into(),
        "fields=id&fields=auth_algorithm&sort_key=name&sort_dir=asc".into(),
        "name=dup".into(),
        "name=dup&name=a&sort_key=name&sort_dir=desc&limit=2".into(),
        "limit=3&marker=8d2c0a64-5c9d-4d4e-9d6f-3a7c1e0b2f11".into(),
        format!("id={}&id={}", ids[3], ids[20]),
        "description=d1&fields=name&fields=description".into(),
        "fields=id&fields=name".into(),
        "fields=name&fields=description&fields=tenant_id&sort_key=name&sort_dir=desc".into(),
        "fields=id&fields=project_id&name=dup".into(),
    ];
    for q in &queries {
        let sep = if q.is_empty() { "" } else { "&" };
        let sql = s
            .neutron(Method::GET, &format!("{IKE}?{q}"), None)
            .await
            .expect(200);
        let mem = s
            .neutron(Method::GET, &format!("{IKE}?{q}{sep}auth_algorithm=sha1"), None)
            .await
            .expect(200);
        assert_eq!(sql["ikepolicies"], mem["ikepolicies"], "items of ?{q}");
        assert_eq!(strip_links(&sql), strip_links(&mem), "links of ?{q}");
    }
    // Names without a limit come as one JSON array the database builds; with
    // a limit, row by row: the same objects, the marker honoured by both.
    for q in [
        "fields=id&fields=name".to_string(),
        format!("fields=name&fields=id&marker={}&page_reverse=True", ids[12]),
        format!("fields=description&fields=tenant_id&marker={}", ids[5]),
        "fields=name&sort_key=name&sort_dir=desc&sort_key=id&sort_dir=asc".into(),
    ] {
        let json = s
            .neutron(Method::GET, &format!("{IKE}?{q}"), None)
            .await
            .expect(200);
        let rows = s
            .neutron(Method::GET, &format!("{IKE}?{q}&limit=10000"), None)
            .await
            .expect(200);
        assert_eq!(json["ikepolicies"], rows["ikepolicies"], "items of ?{q}");
        assert!(json.get("ikepolicies_links").is_none(), "{json}");
    }
    // Following `next` links walks every object once, in the list's order.
    let mut seen = Vec::new();
    let mut marker = String::new();
    loop {
        let page = s
            .neutron(Method::GET, &format!("{IKE}?limit=4&fields=id{marker}"), None)
            .await
            .expect(200);
        let items = page["ikepolicies"].as_array().unwrap().clone();
        if items.is_empty() {
            break;
        }
        seen.extend(items.iter().map(id_of));
        marker = format!("&marker={}", seen.last().unwrap());
    }
    // The list order: oldest first, ties (the same millisecond) by id.
    let all = s
        .neutron(Method::GET, &format!("{IKE}?fields=id"), None)
        .await
        .expect(200);
    let in_order: Vec<String> = all["ikepolicies"].as_array().unwrap().iter().map(id_of).collect();
    assert_eq!(seen, in_order);
    let mut sorted = seen.clone();
    sorted.sort();
    ids.sort();
    assert_eq!(sorted, ids, "every object once");
}
