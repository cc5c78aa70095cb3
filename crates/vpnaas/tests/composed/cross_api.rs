//! The cross-API invariant: one canonical store, two views. A Neutron
//! connection *is* an NSX session (same id), its policies are NSX profiles, its
//! realization reads through the session's `/state` and `/status`; a change
//! through either API is what the other one shows, and in-use holds across them.

use axum::http::Method;
use serde_json::json;

use crate::harness::*;

#[tokio::test]
async fn a_neutron_connection_reads_as_an_nsx_session() {
    let s = TestServer::new().await;
    let site = s.site("x", 30).await;
    let n = s.node("x-n1", "x").await;

    let sess = s
        .nsx(Method::GET, &format!("{VPN}/sessions/{}", site.conn), None)
        .await
        .expect(200);
    assert_eq!(sess["id"], site.conn.as_str());
    assert_eq!(sess["display_name"], "x-conn");
    assert_eq!(sess["resource_type"], "PolicyBasedIPSecVPNSession");
    assert_eq!(sess["ipsec_vpn_service_id"], site.service.as_str());
    assert!(sess.get("psk").is_none(), "{sess}");
    let rule = &sess["policy_rules"][0];
    assert_eq!(rule["sources"], json!([{"subnet": "10.30.0.0/24"}]));
    assert_eq!(rule["destinations"], json!([{"subnet": "10.130.0.0/24"}]));

    // Its policies are NSX profiles under the same ids, with NSX's names for
    // Neutron's defaults (IKE v1, AES-128, SHA-1, group 5).
    let ike = s
        .nsx(Method::GET, &format!("{VPN}/ike-profiles/{}", site.ike), None)
        .await
        .expect(200);
    assert_eq!(ike["display_name"], "x-ike");
    assert_eq!(ike["ike_version"], "IKE_V1");
    assert_eq!(ike["encryption_algorithms"], json!(["AES_128"]));
    assert_eq!(ike["digest_algorithms"], json!(["SHA1"]));
    assert_eq!(ike["dh_groups"], json!(["GROUP5"]));
    let svc = s
        .nsx(Method::GET, &format!("{VPN}/services/{}", site.service), None)
        .await
        .expect(200);
    assert_eq!(svc["logical_router_id"], site.gateway.id.as_str());
    // Realization through the NSX API, status through both.
    s.report(&n, &model::realization::NodeReport::default()).await;
    let st = s.nsx_state(&site.conn, None).await.expect(200);
    assert_eq!(st["state"], "in_progress", "{st}");
    assert_eq!(st["details"][0]["sub_system_id"], n.id.as_str());
    s.sync(&n, &[&site.conn]).await;
    let st = s.nsx_state(&site.conn, None).await.expect(200);
    assert_eq!(
        st,
        json!({"details": [{"sub_system_type": "TransportNode", "sub_system_id": n.id, "state": "in_sync"}],
               "state": "in_sync"})
    );
    let status = s
        .nsx(
            Method::GET,
            &format!("{VPN}/sessions/{}/status?source=realtime", site.conn),
            None,
        )
        .await
        .expect(200);
    assert_eq!(status["session_status"], "UP", "{status}");
    assert_eq!(status["ike_status"]["ike_session_state"], "UP");
    assert_eq!(status["aggregate_traffic_counters"]["packets_in"], 10);
    assert_eq!(s.conn_status(&site.conn).await, "ACTIVE");

    // A PUT of what GET showed changes only what it says (the name).
    let mut body = s
        .nsx(Method::GET, &format!("{VPN}/sessions/{}", site.conn), None)
        .await
        .expect(200);
    body["display_name"] = json!("x-renamed");
    s.nsx(Method::PUT, &format!("{VPN}/sessions/{}", site.conn), Some(body))
        .await
        .expect(200);
    let c = s
        .neutron(Method::GET, &format!("{CONN}/{}", site.conn), None)
        .await
        .expect(200)["ipsec_site_connection"]
        .clone();
    assert_eq!(c["name"], "x-renamed");
    assert_eq!(c["psk"], "psk-x");
    assert_eq!(c["local_ep_group_id"], site.local.as_str());
    assert_eq!(c["peer_ep_group_id"], site.peer.as_str());
    // A Neutron policy in use is in use for NSX too.
    s.nsx(
        Method::DELETE,
        &format!("{VPN}/tunnel-profiles/{}", site.ipsec),
        None,
    )
    .await
    .nsx_error(400, 500030);
    s.nsx(Method::DELETE, &format!("{VPN}/ike-profiles/{}", site.ike), None)
        .await
        .nsx_error(400, 500030);
    // Deleted through NSX, gone from Neutron.
    s.nsx(Method::DELETE, &format!("{VPN}/sessions/{}", site.conn), None)
        .await
        .expect(200);
    s.neutron(Method::GET, &format!("{CONN}/{}", site.conn), None)
        .await
        .neutron_error(404, "IPsecSiteConnectionNotFound");
}

#[tokio::test]
async fn an_nsx_session_reads_as_a_neutron_connection() {
    let s = TestServer::new().await;
    let gw = s.gateway("v", 31).await;
    let svc = s
        .nsx_create(
            "services",
            json!({"display_name": "v-svc", "logical_router_id": gw.id}),
        )
        .await;
    let lep = s
        .nsx_create(
            "local-endpoints",
            json!({"display_name": "v-lep", "local_address": "172.30.31.1",
                   "ipsec_vpn_service_id": {"target_id": svc["id"]}}),
        )
        .await;
    let pep = s
        .nsx_create(
            "peer-endpoints",
            json!({"display_name": "v-pep", "peer_address": "203.0.113.5", "peer_id": "peer.example",
                   "psk": "k1", "connection_initiation_mode": "RESPOND_ONLY"}),
        )
        .await;
    let sess = s
        .nsx_create(
            "sessions",
            json!({"display_name": "v-sess", "resource_type": "PolicyBasedIPSecVPNSession",
                   "local_endpoint_id": lep["id"], "peer_endpoint_id": pep["id"],
                   "policy_rules": [{"sources": [{"subnet": "10.31.0.0/24"}],
                                     "destinations": [{"subnet": "10.131.0.0/24"}]}]}),
        )
        .await;
    let c = s
        .neutron(Method::GET, &format!("{CONN}/{}", id_of(&sess)), None)
        .await
        .expect(200)["ipsec_site_connection"]
        .clone();
    assert_eq!(c["name"], "v-sess");
    assert_eq!(c["peer_address"], "203.0.113.5");
    assert_eq!(c["peer_id"], "peer.example");
    assert_eq!(c["psk"], "k1");
    assert_eq!(c["initiator"], "response-only");
    assert_eq!(c["vpnservice_id"], svc["id"]);
    assert_eq!(c["local_id"], "172.30.31.1");
    // The default profiles the peer endpoint got are the connection's policies.
    assert_eq!(c["ikepolicy_id"], pep["ike_profile_id"]);
    assert_eq!(c["ipsecpolicy_id"], pep["ipsec_tunnel_profile_id"]);
    let v = s
        .neutron(Method::GET, &format!("{SVC}/{}", id_of(&svc)), None)
        .await
        .expect(200);
    assert_eq!(v["vpnservice"]["router_id"], gw.id.as_str());

    // Mixed address families across the rules are refused by the canonical rule.
    let mut body = s
        .nsx(Method::GET, &format!("{VPN}/sessions/{}", id_of(&sess)), None)
        .await
        .expect(200);
    body["policy_rules"][0]["destinations"] = json!([{"subnet": "2001:db8:9::/64"}]);
    s.nsx(
        Method::PUT,
        &format!("{VPN}/sessions/{}", id_of(&sess)),
        Some(body),
    )
    .await
    .nsx_error(400, 110001);
    // Deleted through Neutron, gone from NSX.
    s.neutron(Method::DELETE, &format!("{CONN}/{}", id_of(&sess)), None)
        .await
        .expect(204);
    s.nsx(Method::GET, &format!("{VPN}/sessions/{}", id_of(&sess)), None)
        .await
        .nsx_error(404, 600);
}
