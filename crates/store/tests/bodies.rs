//! The stored JSON document of every kind is a golden file
//! (`tests/golden/bodies.json`): rows written today must stay readable by
//! tomorrow's code, so a renamed, retyped or removed field of a body must not
//! slip through as a quiet serde change. One object per kind, with every
//! optional field set, is encoded the way the store writes it and compared with
//! the file; the file is decoded back the way the store reads it and compared
//! with the objects. After an intended change of a stored format (with a
//! migration or a `serde(default)`/`alias` that keeps old rows readable),
//! regenerate it with
//!
//! ```text
//! UPDATE_GOLDEN=1 cargo nextest run -p store --test bodies
//! ```

use std::path::PathBuf;

use model::nsx::*;
use model::*;
use serde_json::{Map, Value};
use store::Body;
use store::body::{decode, encode};

fn golden_path() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/golden/bodies.json")
}

fn net(s: &str) -> ipnet::IpNet {
    s.parse().unwrap()
}

fn tags() -> Vec<Tag> {
    vec![Tag {
        scope: "os-project".into(),
        tag: "blue".into(),
    }]
}

fn rule(id: &str, action: RuleAction) -> PolicyRule {
    PolicyRule {
        id: id.into(),
        sources: vec![net("10.1.0.0/24")],
        destinations: vec![net("10.2.0.0/24"), net("2001:db8:2::/64")],
        action,
        enabled: false,
        logged: true,
    }
}

fn ike() -> IkePolicy {
    IkePolicy {
        auth_algorithm: AuthAlgorithm::Sha256,
        encryption_algorithm: EncryptionAlgorithm::Aes256,
        phase1_negotiation_mode: Phase1Mode::Aggressive,
        lifetime: Lifetime::seconds(28_800),
        ike_version: IkeVersion::V2,
        pfs: DhGroup::Group14,
        extra_encryption_algorithms: vec![EncryptionAlgorithm::Aes128],
        extra_auth_algorithms: vec![AuthAlgorithm::Sha512],
        extra_dh_groups: vec![DhGroup::Group19],
        tags: tags(),
    }
}

fn ipsec() -> IpsecPolicy {
    IpsecPolicy {
        transform_protocol: TransformProtocol::Esp,
        auth_algorithm: AuthAlgorithm::Sha384,
        encryption_algorithm: EncryptionAlgorithm::Aes256Gcm16,
        encapsulation_mode: EncapsulationMode::Tunnel,
        lifetime: Lifetime::seconds(3_600),
        pfs: DhGroup::Group20,
        extra_encryption_algorithms: vec![EncryptionAlgorithm::Aes128Gcm16],
        extra_auth_algorithms: vec![AuthAlgorithm::Sha256],
        auth_implicit: true,
        extra_dh_groups: vec![DhGroup::Group21],
        pfs_enabled: false,
        df_policy: DfPolicy::Clear,
        tags: tags(),
    }
}

fn gateway() -> Gateway {
    Gateway {
        external_network_id: Some("net-ext".into()),
        external_v4_subnet_id: Some("sub-ext-4".into()),
        external_v6_subnet_id: Some("sub-ext-6".into()),
        enable_snat: true,
        admin_state_up: false,
        ..Gateway::with_addresses(
            Some("192.0.2.1".parse().unwrap()),
            Some("2001:db8::1".parse().unwrap()),
        )
    }
}

fn network() -> Network {
    Network {
        admin_state_up: true,
        external: true,
    }
}

fn subnet() -> Subnet {
    Subnet {
        gateway_id: Some("gw-1".into()),
        network_id: "net-1".into(),
        cidr: net("10.1.0.0/24"),
        gateway_ip: Some("10.1.0.1".parse().unwrap()),
        enable_dhcp: true,
    }
}

fn service() -> VpnService {
    VpnService {
        router_id: "gw-1".into(),
        subnet_id: Some("subnet-1".into()),
        flavor_id: Some("flavor-1".into()),
        admin_state_up: false,
        ike_log_level: IkeLogLevel::Debug,
        ipsec_ha_sync: false,
        bypass_rules: vec![rule("1001", RuleAction::Bypass)],
        tags: tags(),
    }
}

fn group() -> EndpointGroup {
    EndpointGroup {
        endpoint_type: EndpointType::Cidr,
        endpoints: vec!["10.9.0.0/24".into(), "10.10.0.0/24".into()],
    }
}

/// Every field of a connection set (both forms' fields at once: the document
/// format is what is pinned, not a valid combination).
fn connection() -> Connection {
    Connection {
        vpnservice_id: "svc-1".into(),
        ikepolicy_id: "ike-1".into(),
        ipsecpolicy_id: "ipsec-1".into(),
        peer_address: "198.51.100.7".into(),
        peer_id: "peer.example".into(),
        local_id: "local.example".into(),
        psk: Psk("never-in-the-document".into()),
        initiator: Initiator::ResponseOnly,
        dpd: DpdSettings {
            action: DpdAction::Restart,
            interval: 15,
            timeout: 60,
        },
        mtu: 1400,
        admin_state_up: false,
        peer_cidrs: vec![net("10.20.0.0/16")],
        local_ep_group_id: Some("epg-local".into()),
        peer_ep_group_id: Some("epg-peer".into()),
        local_endpoint_id: Some("le-1".into()),
        peer_endpoint_id: Some("pe-1".into()),
        local_address: Some("192.0.2.1".parse().unwrap()),
        policy_rules: vec![rule("1002", RuleAction::Protect)],
        route_based: true,
        tunnel_ports: vec![TunnelPort {
            tunnel_port_id: "tp-1".into(),
            ip_subnets: vec![TunnelSubnet {
                ip_addresses: vec!["169.254.0.1".parse().unwrap()],
                prefix_length: 30,
            }],
        }],
        if_id: 3,
        tcp_mss_clamping: Some(TcpMssClamping {
            direction: MssDirection::Both,
            max_segment_size: Some(1360),
        }),
        tags: tags(),
    }
}

fn dpd_profile() -> DpdProfile {
    DpdProfile {
        enabled: false,
        probe_mode: DpdProbeMode::OnDemand,
        probe_interval: 5,
        retry_count: 7,
        tags: tags(),
    }
}

fn local_endpoint() -> LocalEndpoint {
    LocalEndpoint {
        vpnservice_id: "svc-1".into(),
        local_address: "192.0.2.1".parse().unwrap(),
        local_id: "local.example".into(),
        certificate_id: Some("cert-1".into()),
        trust_ca_ids: vec!["ca-1".into()],
        trust_crl_ids: vec!["crl-1".into()],
        tags: tags(),
    }
}

fn peer_endpoint() -> PeerEndpoint {
    PeerEndpoint {
        peer_address: "198.51.100.7".into(),
        peer_id: "peer.example".into(),
        psk: Psk("never-in-the-document".into()),
        initiator: Initiator::OnDemand,
        ikepolicy_id: "ike-1".into(),
        ipsecpolicy_id: "ipsec-1".into(),
        dpd_profile_id: "dpd-1".into(),
        tags: tags(),
    }
}

fn system_defaults() -> SystemDefaults {
    SystemDefaults {
        ids: vec!["ike-default".into(), "dpd-default".into()],
    }
}

/// Encodes `body` as the store does; checks that its secret stays out and that
/// `golden` (when given) decodes back into it. Returns the document.
fn check<T: Body + PartialEq + std::fmt::Debug>(body: T, golden: Option<&Value>) -> (String, Value) {
    let doc = encode(&body).unwrap();
    if let Some(secret) = body.secret() {
        assert!(!doc.contains(secret), "{:?}: secret in the document", T::KIND);
    }
    let kind = format!("{:?}", T::KIND);
    if let Some(g) = golden {
        let mut want = body.clone();
        // The secret lives in its own column: a decoded body has none yet.
        if want.secret().is_some() {
            want.set_secret(String::new());
        }
        let read: T = decode(&g.to_string())
            .unwrap_or_else(|e| panic!("{kind}: the golden document no longer decodes: {e}"));
        assert_eq!(read, want, "{kind}: the golden document decodes differently");
    }
    (kind, serde_json::from_str(&doc).unwrap())
}

#[test]
fn stored_documents_are_the_golden_ones() {
    let path = golden_path();
    let update = std::env::var_os("UPDATE_GOLDEN").is_some();
    let golden: Map<String, Value> = if update {
        Map::new()
    } else {
        let text = std::fs::read_to_string(&path).expect("tests/golden/bodies.json");
        serde_json::from_str(&text).expect("golden JSON")
    };
    let g = |k: &str| (!update).then(|| golden.get(k).unwrap_or(&Value::Null));
    let docs: Map<String, Value> = [
        check(ike(), g("IkePolicy")),
        check(ipsec(), g("IpsecPolicy")),
        check(gateway(), g("Gateway")),
        check(subnet(), g("Subnet")),
        check(network(), g("Network")),
        check(service(), g("VpnService")),
        check(group(), g("EndpointGroup")),
        check(connection(), g("Connection")),
        check(dpd_profile(), g("DpdProfile")),
        check(local_endpoint(), g("LocalEndpoint")),
        check(peer_endpoint(), g("PeerEndpoint")),
        check(system_defaults(), g("SystemDefaults")),
    ]
    .into_iter()
    .collect();
    let mut text = serde_json::to_string_pretty(&docs).unwrap();
    text.push('\n');
    if update {
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, text).unwrap();
        return;
    }
    if docs != golden {
        panic!(
            "a stored body format changed (tests/golden/bodies.json); rows already written must stay \
             readable. If the change is intended and old rows still decode, regenerate and review:\n    \
             UPDATE_GOLDEN=1 cargo nextest run -p store --test bodies\nnow:\n{text}"
        );
    }
}

/// Rows written before networks existed (issue 11) still decode: a gateway
/// with bare addresses, a subnet with a plain `gateway_id` and no network.
#[test]
fn documents_from_before_networks_decode() {
    let gw: Gateway = decode(r#"{"external_v4":"192.0.2.1","external_v6":null}"#).unwrap();
    assert_eq!(
        gw,
        Gateway::with_addresses(Some("192.0.2.1".parse().unwrap()), None)
    );
    let s: Subnet = decode(r#"{"gateway_id":"gw-1","cidr":"10.1.0.0/24"}"#).unwrap();
    assert_eq!(
        s,
        Subnet {
            gateway_id: Some("gw-1".into()),
            network_id: String::new(),
            cidr: net("10.1.0.0/24"),
            gateway_ip: None,
            enable_dhcp: false,
        }
    );
}
