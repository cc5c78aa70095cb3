//! Golden files for the renderer: the exact VICI messages charon receives, in
//! `swanctl.conf` syntax (PSKs redacted). Regenerate with `UPDATE_GOLDEN=1`.

use std::path::PathBuf;

use agent::render::{EspMode, render};
use model::realization::{ChildProposal, IkeProposal, Tunnel};
use model::*;

fn base() -> Tunnel {
    Tunnel {
        id: "3f1c7d2e-0000-4000-8000-00000000000a".into(),
        name: "site-a-to-b".into(),
        enabled: true,
        local_address: "198.18.0.1".parse().unwrap(),
        local_id: "198.18.0.1".into(),
        peer_address: "198.18.0.2".parse().unwrap(),
        peer_id: "198.18.0.2".into(),
        psk: Psk("golden-secret-never-printed".into()),
        ike: IkeProposal {
            version: IkeVersion::V2,
            encryption: vec![EncryptionAlgorithm::Aes128],
            integrity: vec![AuthAlgorithm::Sha1],
            dh_groups: vec![DhGroup::Group5],
            lifetime_seconds: 3600,
            aggressive: false,
        },
        child: ChildProposal {
            protocol: TransformProtocol::Esp,
            mode: EncapsulationMode::Tunnel,
            encryption: vec![EncryptionAlgorithm::Aes128],
            integrity: vec![AuthAlgorithm::Sha1],
            pfs_groups: vec![DhGroup::Group5],
            lifetime_seconds: 3600,
        },
        local_ts: vec!["198.19.1.0/24".parse().unwrap()],
        remote_ts: vec!["198.19.2.0/24".parse().unwrap()],
        dpd: DpdSettings::default(),
        initiator: Initiator::BiDirectional,
        mtu: 1500,
        generation: 7,
    }
}

fn check(name: &str, t: &Tunnel, esp: EspMode) {
    let r = render(t, esp).expect("renders");
    let text = format!(
        "# load-conn\n{}# load-shared\n{}# children: {}\n# initiator: {}\n",
        r.conn,
        r.shared,
        r.children.join(","),
        r.initiator
    );
    assert!(!text.contains(t.psk.expose()), "a PSK reached the printed form");
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/golden")
        .join(format!("{name}.txt"));
    if std::env::var_os("UPDATE_GOLDEN").is_some() {
        std::fs::write(&path, &text).unwrap();
        return;
    }
    let want = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("{}: {e} (run with UPDATE_GOLDEN=1 to create it)", path.display()));
    assert_eq!(
        text,
        want,
        "{} drifted (UPDATE_GOLDEN=1 regenerates it)",
        path.display()
    );
}

#[test]
fn ikev2_defaults_userspace_esp() {
    check(
        "ikev2_aes128_sha1_modp1536_userspace",
        &base(),
        EspMode::Userspace,
    );
}

#[test]
fn ikev2_aead_multiple_selectors_kernel_esp() {
    let mut t = base();
    t.ike.encryption = vec![EncryptionAlgorithm::Aes256Gcm16, EncryptionAlgorithm::Aes256];
    t.ike.integrity = vec![AuthAlgorithm::Sha256];
    t.ike.dh_groups = vec![DhGroup::Group19, DhGroup::Group14];
    t.ike.lifetime_seconds = 28800;
    t.child.encryption = vec![EncryptionAlgorithm::Aes128Gcm16];
    t.child.integrity = vec![AuthAlgorithm::Sha256];
    t.child.pfs_groups = vec![];
    t.child.lifetime_seconds = 1200;
    t.local_ts.push("10.1.0.0/16".parse().unwrap());
    t.remote_ts.push("2001:db8::/64".parse().unwrap());
    t.local_id = "gw-a@example.test".into();
    t.peer_id = "gw b".into();
    t.dpd = DpdSettings {
        action: DpdAction::Restart,
        interval: 10,
        timeout: 40,
    };
    check("ikev2_aead_two_selectors_kernel", &t, EspMode::Kernel);
}

#[test]
fn ikev1_aggressive_one_child_per_selector_pair() {
    let mut t = base();
    t.ike.version = IkeVersion::V1;
    t.ike.aggressive = true;
    t.ike.encryption = vec![EncryptionAlgorithm::TripleDes];
    t.ike.integrity = vec![AuthAlgorithm::Sha256];
    t.ike.dh_groups = vec![DhGroup::Group2];
    t.child.mode = EncapsulationMode::Tunnel;
    t.child.integrity = vec![AuthAlgorithm::Sha512];
    t.child.pfs_groups = vec![DhGroup::Group14];
    t.local_ts.push("198.19.3.0/24".parse().unwrap());
    t.dpd = DpdSettings {
        action: DpdAction::Clear,
        interval: 30,
        timeout: 120,
    };
    t.initiator = Initiator::ResponseOnly;
    check("ikev1_aggressive_two_children_userspace", &t, EspMode::Userspace);
}

#[test]
fn ah_transport_without_dpd() {
    let mut t = base();
    t.child.protocol = TransformProtocol::AhEsp;
    t.child.mode = EncapsulationMode::Transport;
    t.local_ts.clear();
    t.remote_ts.clear();
    t.dpd = DpdSettings {
        action: DpdAction::Disabled,
        interval: 30,
        timeout: 120,
    };
    check("ah_esp_transport_no_dpd_kernel", &t, EspMode::Kernel);
}

#[test]
fn hold_maps_to_trap_and_ids_are_owners() {
    let r = render(&base(), EspMode::Userspace).unwrap();
    let conn = r.conn.get_section(&base().id).unwrap();
    let child = conn
        .get_section("children")
        .unwrap()
        .get_section(&base().id)
        .unwrap();
    assert_eq!(child.get_str("dpd_action"), Some("trap"));
    assert_eq!(child.get_str("start_action"), Some("none"));
    assert_eq!(conn.get_str("encap"), Some("yes"));
    assert_eq!(r.shared.get_str("id"), Some(base().id.as_str()));
}
