//! The tunnel variants pinned by golden files (`tests/golden/<name>.txt`) and
//! loaded into a real charon by `tests/charon.rs`.

use agent::render::EspMode;
use model::realization::Tunnel;
use model::*;

pub(crate) fn base() -> Tunnel {
    let mut t = Tunnel {
        id: "3f1c7d2e-0000-4000-8000-00000000000a".into(),
        name: "site-a-to-b".into(),
        local_id: "198.18.0.1".into(),
        peer_id: "198.18.0.2".into(),
        psk: Psk("golden-secret-never-printed".into()),
        local_ts: vec!["198.19.1.0/24".parse().unwrap()],
        remote_ts: vec!["198.19.2.0/24".parse().unwrap()],
        initiator: Initiator::BiDirectional,
        generation: 7,
        ..agent::fake::tunnel(0, "198.18.0.1", "198.18.0.2")
    };
    // Neutron's default policies: SHA-1 and MODP-1536 (group 5).
    t.ike.integrity = vec![AuthAlgorithm::Sha1];
    t.ike.dh_groups = vec![DhGroup::Group5];
    t.child.integrity = vec![AuthAlgorithm::Sha1];
    t.child.pfs_groups = vec![DhGroup::Group5];
    t
}

/// (golden file name, tunnel, ESP mode).
pub(crate) fn variants() -> Vec<(&'static str, Tunnel, EspMode)> {
    let mut v = vec![("ikev2_aes128_sha1_modp1536_userspace", base(), EspMode::Userspace)];

    let mut t = base();
    t.id = "3f1c7d2e-0000-4000-8000-00000000000b".into();
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
    v.push(("ikev2_aead_two_selectors_kernel", t, EspMode::Kernel));

    let mut t = base();
    t.id = "3f1c7d2e-0000-4000-8000-00000000000c".into();
    t.ike.version = IkeVersion::V1;
    t.ike.aggressive = true;
    t.ike.encryption = vec![EncryptionAlgorithm::TripleDes];
    t.ike.integrity = vec![AuthAlgorithm::Sha256];
    t.ike.dh_groups = vec![DhGroup::Group2];
    t.child.integrity = vec![AuthAlgorithm::Sha512];
    t.child.pfs_groups = vec![DhGroup::Group14];
    t.local_ts.push("198.19.3.0/24".parse().unwrap());
    t.dpd = DpdSettings {
        action: DpdAction::Clear,
        interval: 30,
        timeout: 120,
    };
    t.initiator = Initiator::ResponseOnly;
    v.push(("ikev1_aggressive_two_children_userspace", t, EspMode::Userspace));

    let mut t = base();
    t.id = "3f1c7d2e-0000-4000-8000-00000000000d".into();
    t.child.protocol = TransformProtocol::AhEsp;
    t.child.mode = EncapsulationMode::Transport;
    t.local_ts.clear();
    t.remote_ts.clear();
    t.dpd = DpdSettings {
        action: DpdAction::Disabled,
        interval: 30,
        timeout: 120,
    };
    v.push(("ah_esp_transport_no_dpd_kernel", t, EspMode::Kernel));
    v
}
