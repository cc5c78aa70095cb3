//! The NSX Manager IPSec VPN API (`/api/v1/vpn/ipsec/...`): each resource's
//! lifecycle as vmware-nsxlib drives it — 201 on create, `_revision` that must be
//! current on PUT (412 otherwise), 200 (never 204) on delete —, the system-owned
//! default profiles, and in-use refusals (400 / 500030, nsxlib's `ResourceInUse`).

use axum::http::Method;
use serde_json::{Value, json};

use crate::harness::*;

/// Create, show, list, update with the current `_revision`, refuse a missing or
/// stale one, delete (200), then 404 / 600. Returns the updated object.
async fn lifecycle(
    s: &TestServer,
    segment: &str,
    resource_type: &str,
    create: Value,
    update: Value,
) -> Value {
    let base = format!("{VPN}/{segment}");
    let r = s.nsx(Method::POST, &base, Some(create)).await;
    assert!(!r.header("x-nsx-requestid").is_empty(), "a request id");
    let created = r.expect(201);
    assert_eq!(created["resource_type"], resource_type, "{created}");
    assert_eq!(created["_revision"], 0);
    assert_eq!(created["_system_owned"], false);
    assert_eq!(created["_protection"], "NOT_PROTECTED");
    assert_eq!(created["_create_user"], "admin");
    for k in ["_create_time", "_last_modified_time", "_last_modified_user"] {
        assert!(created.get(k).is_some(), "{segment}: no {k}: {created}");
    }
    let id = id_of(&created);
    let path = format!("{base}/{id}");
    assert_eq!(s.nsx(Method::GET, &path, None).await.expect(200), created);
    let list = s.nsx(Method::GET, &base, None).await.expect(200);
    let results = list["results"].as_array().expect("results");
    assert!(results.contains(&created), "{segment}: {list}");
    assert_eq!(list["result_count"], results.len());

    // A PUT is the whole object as GET showed it, with changes.
    let mut body = created.clone();
    for (k, v) in update.as_object().unwrap() {
        body[k] = v.clone();
    }
    let mut no_rev = body.clone();
    no_rev.as_object_mut().unwrap().remove("_revision");
    let e = s.nsx(Method::PUT, &path, Some(no_rev)).await.nsx_error(412, 206);
    assert_eq!(
        e,
        json!({"httpStatus": "PRECONDITION_FAILED", "error_code": 206,
               "module_name": "common-services",
               "error_message": "The object was modified by somebody else. Please retry."})
    );
    let updated = s.nsx(Method::PUT, &path, Some(body.clone())).await.expect(200);
    assert_eq!(updated["_revision"], 1);
    for (k, v) in update.as_object().unwrap() {
        assert_eq!(&updated[k], v, "{segment}.{k}: {updated}");
    }
    // The same body again carries a stale revision now.
    s.nsx(Method::PUT, &path, Some(body)).await.nsx_error(412, 206);
    assert_eq!(s.nsx(Method::GET, &path, None).await.expect(200), updated);

    let r = s.nsx(Method::DELETE, &path, None).await;
    assert_eq!(
        r.status.as_u16(),
        200,
        "nsxlib accepts only 200 on delete: {}",
        r.body
    );
    let e = s.nsx(Method::GET, &path, None).await.nsx_error(404, 600);
    assert_eq!(
        e["error_message"],
        format!("The requested object : {id} could not be found. Object identifiers are case sensitive.")
    );
    assert_eq!(e["httpStatus"], "NOT_FOUND");
    s.nsx(Method::DELETE, &path, None).await.nsx_error(404, 600);
    updated
}

#[tokio::test]
async fn profiles_lifecycle() {
    let s = TestServer::new().await;
    let ike = lifecycle(
        &s,
        "ike-profiles",
        "IPSecVPNIKEProfile",
        json!({"display_name": "ike1", "description": "d", "encryption_algorithms": ["AES_128"],
               "digest_algorithms": ["SHA2_256"], "ike_version": "IKE_V2", "dh_groups": ["GROUP14"],
               "sa_life_time": 86400, "tags": [{"scope": "s", "tag": "t"}]}),
        json!({"display_name": "ike1b", "dh_groups": ["GROUP19"]}),
    )
    .await;
    assert_eq!(ike["tags"], json!([{"scope": "s", "tag": "t"}]));
    assert_eq!(ike["sa_life_time"], 86400);
    let tun = lifecycle(
        &s,
        "tunnel-profiles",
        "IPSecVPNTunnelProfile",
        json!({"display_name": "tun1", "encryption_algorithms": ["AES_GCM_128"],
               "enable_perfect_forward_secrecy": true, "dh_groups": ["GROUP14"], "sa_life_time": 3600}),
        json!({"sa_life_time": 7200}),
    )
    .await;
    assert_eq!(tun["encryption_algorithms"], json!(["AES_GCM_128"]));
    assert_eq!(tun["enable_perfect_forward_secrecy"], true);
    lifecycle(
        &s,
        "dpd-profiles",
        "IPSecVPNDPDProfile",
        json!({"display_name": "dpd1", "dpd_probe_interval": 60}),
        json!({"dpd_probe_interval": 30, "display_name": "dpd1b"}),
    )
    .await;
}

#[tokio::test]
async fn bad_input_and_unknown_ids_answer_in_the_envelope() {
    let s = TestServer::new().await;
    let ike = format!("{VPN}/ike-profiles");
    for body in [
        json!({"encryption_algorithms": ["AES_512"]}),
        json!({"sa_life_time": "long"}),
        json!([1, 2]),
    ] {
        s.nsx(Method::POST, &ike, Some(body)).await.nsx_error(400, 255);
    }
    // A rule across fields: AES-GCM IKE needs IKE_V2.
    s.nsx(
        Method::POST,
        &ike,
        Some(json!({"encryption_algorithms": ["AES_GCM_128"], "ike_version": "IKE_V1"})),
    )
    .await
    .nsx_error(400, 110001);
    let missing = "5f0d3f5e-8d1b-4f0e-a3c2-1b9e7d6c4a21";
    s.nsx(
        Method::POST,
        &format!("{VPN}/services"),
        Some(json!({"logical_router_id": missing})),
    )
    .await
    .nsx_error(404, 600);
    s.nsx(
        Method::PUT,
        &format!("{VPN}/dpd-profiles/{missing}"),
        Some(json!({"_revision": 0})),
    )
    .await
    .nsx_error(404, 600);
    // NSX credentials are checked on every call: none, or wrong ones, is 403 / 403.
    s.call(Method::GET, &format!("{VPN}/sessions"), Auth::None, None)
        .await
        .nsx_error(403, 403);
    s.call(
        Method::GET,
        &format!("{VPN}/sessions"),
        Auth::Basic("admin", "wrong"),
        None,
    )
    .await
    .nsx_error(403, 403);
}

#[tokio::test]
async fn system_owned_defaults_are_read_only() {
    let s = TestServer::new().await;
    for (segment, name) in [
        ("ike-profiles", "nsx-default-l3vpn-ike-profile"),
        ("tunnel-profiles", "nsx-default-l3vpn-tunnel-profile"),
        ("dpd-profiles", "nsx-default-l3vpn-dpd-profile"),
    ] {
        let list = s
            .nsx(Method::GET, &format!("{VPN}/{segment}"), None)
            .await
            .expect(200);
        let found: Vec<&Value> = list["results"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|o| o["display_name"] == name)
            .collect();
        assert_eq!(found.len(), 1, "{segment}: {list}");
        let d = found[0].clone();
        assert_eq!(d["_system_owned"], true);
        let path = format!("{VPN}/{segment}/{}", id_of(&d));
        s.nsx(Method::DELETE, &path, None).await.nsx_error(400, 110003);
        let mut changed = d.clone();
        changed["display_name"] = json!("mine now");
        s.nsx(Method::PUT, &path, Some(changed))
            .await
            .nsx_error(400, 110003);
        assert_eq!(s.nsx(Method::GET, &path, None).await.expect(200), d);
    }
}

#[tokio::test]
async fn service_endpoints_and_session_lifecycle_with_in_use_refusals() {
    let s = TestServer::new().await;
    let gw = s.gateway("nsx-gw", 20).await;
    let ike = s.nsx_create("ike-profiles", json!({"display_name": "ike"})).await;
    let tun = s
        .nsx_create("tunnel-profiles", json!({"display_name": "tun"}))
        .await;
    let dpd = s
        .nsx_create(
            "dpd-profiles",
            json!({"display_name": "dpd", "dpd_probe_interval": 45}),
        )
        .await;
    let svc = s
        .nsx_create(
            "services",
            json!({"display_name": "svc", "logical_router_id": gw.id, "enabled": true,
                   "ike_log_level": "INFO"}),
        )
        .await;
    assert_eq!(svc["resource_type"], "IPSecVPNService");
    assert_eq!(svc["logical_router_id"], gw.id.as_str());
    let lep = s
        .nsx_create(
            "local-endpoints",
            json!({"display_name": "lep", "local_address": "172.30.20.1", "local_id": "172.30.20.1",
                   "ipsec_vpn_service_id": {"target_id": svc["id"]}}),
        )
        .await;
    assert_eq!(lep["resource_type"], "IPSecVPNLocalEndpoint");
    assert_eq!(lep["ipsec_vpn_service_id"]["target_id"], svc["id"]);
    let pep = s
        .nsx_create(
            "peer-endpoints",
            json!({"display_name": "pep", "peer_address": "203.0.113.7", "peer_id": "peer7",
                   "psk": "very-secret", "authentication_mode": "PSK",
                   "ike_profile_id": ike["id"], "ipsec_tunnel_profile_id": tun["id"],
                   "dpd_profile_id": dpd["id"], "connection_initiation_mode": "INITIATOR"}),
        )
        .await;
    assert_eq!(pep["resource_type"], "IPSecVPNPeerEndpoint");
    assert!(pep.get("psk").is_none(), "the PSK is never shown: {pep}");
    let r = s
        .nsx(
            Method::POST,
            &format!("{VPN}/sessions"),
            Some(json!({
                "display_name": "sess", "resource_type": "PolicyBasedIPSecVPNSession",
                "local_endpoint_id": lep["id"], "peer_endpoint_id": pep["id"], "enabled": true,
                "policy_rules": [{"sources": [{"subnet": "10.20.0.0/24"}],
                                  "destinations": [{"subnet": "10.120.0.0/24"}]}]})),
        )
        .await;
    let sess = r.expect(201);
    assert_eq!(sess["resource_type"], "PolicyBasedIPSecVPNSession");
    assert_eq!(sess["_revision"], 0);
    assert_eq!(sess["ipsec_vpn_service_id"], svc["id"]);
    let rule = &sess["policy_rules"][0];
    assert_eq!(
        (&rule["action"], &rule["enabled"]),
        (&json!("PROTECT"), &json!(true))
    );
    assert!(rule["id"].is_string());
    let sess_path = format!("{VPN}/sessions/{}", id_of(&sess));
    let listed = s
        .nsx(Method::GET, &format!("{VPN}/sessions"), None)
        .await
        .expect(200);
    assert_eq!(listed["results"], json!([sess]));

    // Everything the session uses is in use.
    for (segment, obj) in [
        ("ike-profiles", &ike),
        ("tunnel-profiles", &tun),
        ("dpd-profiles", &dpd),
        ("services", &svc),
        ("local-endpoints", &lep),
        ("peer-endpoints", &pep),
    ] {
        s.nsx(Method::DELETE, &format!("{VPN}/{segment}/{}", id_of(obj)), None)
            .await
            .nsx_error(400, 500030);
    }

    // An update keeps the rule ids; a stale revision is refused.
    let mut body = sess.clone();
    body["display_name"] = json!("sess-b");
    body["enabled"] = json!(false);
    let u = s
        .nsx(Method::PUT, &sess_path, Some(body.clone()))
        .await
        .expect(200);
    assert_eq!(
        (&u["_revision"], &u["display_name"]),
        (&json!(1), &json!("sess-b"))
    );
    assert_eq!(u["enabled"], false);
    assert_eq!(u["policy_rules"][0]["id"], rule["id"]);
    s.nsx(Method::PUT, &sess_path, Some(body))
        .await
        .nsx_error(412, 206);
    // Changing the session's type is a rule across fields.
    let mut retyped = u.clone();
    retyped["resource_type"] = json!("RouteBasedIPSecVPNSession");
    s.nsx(Method::PUT, &sess_path, Some(retyped))
        .await
        .nsx_error(400, 110001);

    // A peer endpoint update (a new PSK) is a new revision, still without the PSK.
    let pep_path = format!("{VPN}/peer-endpoints/{}", id_of(&pep));
    let mut p = pep.clone();
    p["psk"] = json!("s2");
    let p = s.nsx(Method::PUT, &pep_path, Some(p)).await.expect(200);
    assert_eq!(p["_revision"], 1);
    assert!(p.get("psk").is_none());

    // Deleted in dependency order, each answered 200.
    for path in [
        sess_path,
        pep_path,
        format!("{VPN}/local-endpoints/{}", id_of(&lep)),
        format!("{VPN}/services/{}", id_of(&svc)),
        format!("{VPN}/dpd-profiles/{}", id_of(&dpd)),
        format!("{VPN}/tunnel-profiles/{}", id_of(&tun)),
        format!("{VPN}/ike-profiles/{}", id_of(&ike)),
    ] {
        let r = s.nsx(Method::DELETE, &path, None).await;
        assert_eq!(r.status.as_u16(), 200, "{path}: {}", r.body);
        s.nsx(Method::GET, &path, None).await.nsx_error(404, 600);
    }
    let l = s
        .nsx(Method::GET, &format!("{VPN}/sessions"), None)
        .await
        .expect(200);
    assert_eq!(l["results"], json!([]));
    assert_eq!(l["result_count"], 0);
}

/// Route-based sessions: `tunnel_ports` and our `peer_cidrs` as written,
/// validation errors in NSX's envelope, an interface id per session that is
/// unique on its gateway, stable across updates and reused once freed, and
/// the node configuration's `route` (if_id, VTI address, routed networks)
/// with 0.0.0.0/0 selectors.
#[tokio::test]
async fn route_based_sessions_get_interface_ids_and_routes() {
    let s = TestServer::new().await;
    let gw = s.gateway("rb-gw", 41).await;
    let node = s.node("rb-node", &gw.id).await;
    let ike = s.nsx_create("ike-profiles", json!({"display_name": "ike"})).await;
    let tun = s
        .nsx_create("tunnel-profiles", json!({"display_name": "tun"}))
        .await;
    let dpd = s.nsx_create("dpd-profiles", json!({"display_name": "dpd"})).await;
    let svc = s
        .nsx_create(
            "services",
            json!({"display_name": "svc", "logical_router_id": gw.id, "enabled": true}),
        )
        .await;
    let lep = s
        .nsx_create(
            "local-endpoints",
            json!({"display_name": "lep", "local_address": "172.30.41.1", "local_id": "172.30.41.1",
                   "ipsec_vpn_service_id": {"target_id": svc["id"]}}),
        )
        .await;
    let pep = |n: u8| {
        json!({"display_name": format!("pep{n}"), "peer_address": format!("203.0.113.{n}"),
               "peer_id": format!("peer{n}"), "psk": "very-secret", "authentication_mode": "PSK",
               "ike_profile_id": ike["id"], "ipsec_tunnel_profile_id": tun["id"],
               "dpd_profile_id": dpd["id"], "connection_initiation_mode": "INITIATOR"})
    };
    let session = |peer: &Value, vti: &str, routes: Value| {
        json!({"display_name": "rb", "resource_type": "RouteBasedIPSecVPNSession",
               "local_endpoint_id": lep["id"], "peer_endpoint_id": peer["id"], "enabled": true,
               "tunnel_ports": [{"ip_subnets": [{"ip_addresses": [vti], "prefix_length": 30}]}],
               "peer_cidrs": routes})
    };
    let sessions = format!("{VPN}/sessions");
    let p1 = s.nsx_create("peer-endpoints", pep(1)).await;
    let p2 = s.nsx_create("peer-endpoints", pep(2)).await;
    let p3 = s.nsx_create("peer-endpoints", pep(3)).await;

    // Bad routes: NSX's envelope, 400 / invalid value.
    for bad in [
        json!(["0.0.0.0/0"]),
        json!(["203.0.113.0/24"]),
        json!(["10.9.0.1/24"]),
        json!(["169.254.1.0/24"]),
        json!(["not-a-cidr"]),
    ] {
        let e = s
            .nsx(
                Method::POST,
                &sessions,
                Some(session(&p1, "169.254.1.1", bad.clone())),
            )
            .await;
        assert_eq!(e.status, 400, "{bad}: {:?}", e.body);
        assert!(e.body["error_code"].is_i64(), "{bad}: {}", e.body);
        assert!(
            e.body["error_message"].as_str().unwrap().contains("peer_cidrs"),
            "{bad}: {}",
            e.body
        );
    }
    // A policy-based session routes nothing.
    let mut policy = session(&p1, "169.254.1.1", json!(["10.9.0.0/24"]));
    policy["resource_type"] = json!("PolicyBasedIPSecVPNSession");
    policy["policy_rules"] = json!([{"sources": [{"subnet": "10.41.0.0/24"}],
                                     "destinations": [{"subnet": "10.9.0.0/24"}]}]);
    s.nsx(Method::POST, &sessions, Some(policy))
        .await
        .nsx_error(400, 110001);

    let a = s
        .nsx_create(
            "sessions",
            session(&p1, "169.254.1.1", json!(["10.9.0.0/24", "10.10.0.0/16"])),
        )
        .await;
    assert_eq!(a["resource_type"], "RouteBasedIPSecVPNSession");
    assert_eq!(a["peer_cidrs"], json!(["10.9.0.0/24", "10.10.0.0/16"]));
    assert!(a.get("policy_rules").is_none(), "{a}");
    let b = s
        .nsx_create("sessions", session(&p2, "169.254.2.1", json!([])))
        .await;
    assert_eq!(b["peer_cidrs"], json!([]));
    // Sessions of one gateway: no two tunnel subnets overlap, no network is
    // routed twice, and no tunnel subnet holds the peer.
    for (vti, routes, field) in [
        ("169.254.1.2", json!([]), "tunnel_ports"),
        ("169.254.9.1", json!(["10.10.1.0/24"]), "peer_cidrs"),
        ("203.0.113.2", json!([]), "tunnel_ports"),
    ] {
        let e = s
            .nsx(Method::POST, &sessions, Some(session(&p3, vti, routes)))
            .await;
        assert_eq!(e.status, 400, "{vti}: {:?}", e.body);
        let msg = e.body["error_message"].as_str().unwrap();
        assert!(msg.contains(field), "{vti}: {msg}");
    }

    let route_of = |cfg: &Value, id: &str| {
        cfg["tunnels"]
            .as_array()
            .unwrap()
            .iter()
            .find(|t| t["id"] == id)
            .map(|t| (t["route"].clone(), t["local_ts"].clone(), t["remote_ts"].clone()))
            .unwrap()
    };
    let cfg = s.node_config(&node, "").await.expect(200);
    let (ra, lts, rts) = route_of(&cfg, &id_of(&a));
    assert_eq!(
        ra,
        json!({"if_id": 1, "addresses": ["169.254.1.1/30"], "routes": ["10.9.0.0/24", "10.10.0.0/16"]})
    );
    assert_eq!((lts, rts), (json!(["0.0.0.0/0"]), json!(["0.0.0.0/0"])));
    assert_eq!(route_of(&cfg, &id_of(&b)).0["if_id"], 2);

    // An update keeps the id; a delete frees it for the next session.
    let mut upd = a.clone();
    upd["peer_cidrs"] = json!(["10.9.0.0/24"]);
    let upd = s
        .nsx(Method::PUT, &format!("{sessions}/{}", id_of(&a)), Some(upd))
        .await
        .expect(200);
    assert_eq!(upd["peer_cidrs"], json!(["10.9.0.0/24"]));
    let cfg = s.node_config(&node, "").await.expect(200);
    assert_eq!(route_of(&cfg, &id_of(&a)).0["if_id"], 1);
    assert_eq!(route_of(&cfg, &id_of(&a)).0["routes"], json!(["10.9.0.0/24"]));
    s.nsx(Method::DELETE, &format!("{sessions}/{}", id_of(&a)), None)
        .await
        .expect(200);
    let c = s
        .nsx_create("sessions", session(&p3, "169.254.3.1", json!(["10.11.0.0/24"])))
        .await;
    let cfg = s.node_config(&node, "").await.expect(200);
    assert_eq!(route_of(&cfg, &id_of(&c)).0["if_id"], 1, "the lowest free id");
    assert_eq!(route_of(&cfg, &id_of(&b)).0["if_id"], 2, "the others keep theirs");
}
