//! Renders a [`Tunnel`] into the VICI messages charon needs: one `load-conn` and one
//! `load-shared`. Pure functions, no I/O: the reconciler compares their output to
//! decide what changed, and golden files (`tests/golden/`) pin the exact output.
//!
//! Mapping decisions (each is what a strongSwan operator would write by hand):
//! - Connection name in charon = tunnel id; the shared key's `id` = tunnel id too,
//!   so `unload-shared` can remove exactly this tunnel's key.
//! - IKE proposal: `enc-integ-dh` (e.g. `aes128-sha1-modp1536`). AEAD ciphers (GCM,
//!   CCM) can't be mixed with classic ones in one strongSwan proposal, so they get a
//!   proposal of their own, `enc-prf-dh`, with the integrity algorithm used as PRF.
//! - ESP proposal: `enc-integ[-pfs]`; AEAD ciphers have no integrity algorithm. PFS
//!   groups are appended, none means no PFS. AH uses `ah_proposals` (`integ[-pfs]`).
//! - IKEv2: one CHILD_SA carries all local × remote traffic selectors. IKEv1 can
//!   negotiate only one selector pair per CHILD_SA, so it gets one child per pair.
//! - Lifetimes: the policy lifetime is the hard limit; rekeying starts at 90% of it
//!   (IKE: `rekey_time` + `over_time`; CHILD: `rekey_time` + `life_time`).
//! - DPD: `hold`→`trap`, `clear`→`clear`, `restart`→`restart`, `restart-by-peer`→
//!   `clear` (this side waits for the peer to re-establish), `disabled`→ no DPD.
//!   `dpd_timeout` only exists in IKEv1; IKEv2 uses retransmission timeouts.
//! - `start_action = none` for every tunnel: charon must not start 1,000 tunnels at
//!   once when their configs are loaded (peers' half-open limits drop most of them).
//!   The reconciler itself initiates `bi-directional` tunnels, one at a time, and
//!   retries them; `response-only` tunnels wait for the peer.
//! - `encap`: an agent setting ([`EspMode`]); userspace ESP (`kernel-libipsec`) only
//!   handles ESP in UDP, so it forces `encap = yes`.
//! - `mtu` has no per-connection knob in strongSwan; it is not rendered.
//! - Route-based tunnels ([`Tunnel::route`]): every CHILD_SA config gets
//!   `if_id_in` = `if_id_out` = the tunnel's interface id, so its SAs and
//!   policies belong to the XFRM interface of that id (kernel ESP: only what
//!   is routed into the interface is encrypted, and two tunnels' 0.0.0.0/0
//!   policies don't collide); the selectors are already everything
//!   (`model::traffic`). The interface itself is [`crate::netif`]'s.

use std::fmt;

use ipnet::IpNet;
use model::realization::{ChildProposal, IkeProposal, Tunnel};
use model::*;

use crate::message::Section;

/// Which ESP data path charon uses on this node.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum EspMode {
    /// Kernel ESP (XFRM) via charon's `kernel-netlink`: real gateways.
    Kernel,
    /// Userspace ESP via charon's `kernel-libipsec` (a TUN device): needs UDP
    /// encapsulation, so every connection gets `encap = yes`.
    Userspace,
}

/// A tunnel rendered for charon.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rendered {
    /// Connection (and IKE_SA) name in charon: the tunnel id.
    pub name: String,
    /// The `load-conn` message: `{ <name> { ... } }`.
    pub conn: Section,
    /// The `load-shared` message (holds the PSK; redacted when printed).
    pub shared: Section,
    /// CHILD_SA config names, in the order they are initiated.
    pub children: Vec<String>,
    /// Whether this side starts the negotiation (`bi-directional`).
    pub initiator: bool,
}

/// A tunnel that can't be expressed as a strongSwan configuration.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RenderError {
    /// The proposal (`IKE` or `ESP`) lists no encryption algorithm.
    #[error("the {0} proposal has no encryption algorithm")]
    NoEncryption(&'static str),
    /// The proposal (`IKE`, `ESP` or `AH`) has a non-AEAD cipher, or is AH, and
    /// lists no integrity algorithm.
    #[error("the {0} proposal has no integrity algorithm for a non-AEAD cipher")]
    NoIntegrity(&'static str),
    /// The IKE proposal lists no DH group (IKE always needs one).
    #[error("the IKE proposal has no Diffie-Hellman group")]
    NoDhGroup,
}

/// strongSwan's keyword for an encryption algorithm.
pub fn encryption_keyword(a: EncryptionAlgorithm) -> &'static str {
    use EncryptionAlgorithm::*;
    match a {
        TripleDes => "3des",
        Aes128 => "aes128",
        Aes192 => "aes192",
        Aes256 => "aes256",
        Aes128Ccm8 => "aes128ccm8",
        Aes192Ccm8 => "aes192ccm8",
        Aes256Ccm8 => "aes256ccm8",
        Aes128Ccm12 => "aes128ccm12",
        Aes192Ccm12 => "aes192ccm12",
        Aes256Ccm12 => "aes256ccm12",
        Aes128Ccm16 => "aes128ccm16",
        Aes192Ccm16 => "aes192ccm16",
        Aes256Ccm16 => "aes256ccm16",
        Aes128Gcm8 => "aes128gcm8",
        Aes192Gcm8 => "aes192gcm8",
        Aes256Gcm8 => "aes256gcm8",
        Aes128Gcm12 => "aes128gcm12",
        Aes192Gcm12 => "aes192gcm12",
        Aes256Gcm12 => "aes256gcm12",
        Aes128Gcm16 => "aes128gcm16",
        Aes192Gcm16 => "aes192gcm16",
        Aes256Gcm16 => "aes256gcm16",
        Aes128Ctr => "aes128ctr",
        Aes192Ctr => "aes192ctr",
        Aes256Ctr => "aes256ctr",
    }
}

/// strongSwan's keyword for an integrity algorithm (HMAC/MAC).
pub fn integrity_keyword(a: AuthAlgorithm) -> &'static str {
    match a {
        AuthAlgorithm::Sha1 => "sha1",
        AuthAlgorithm::Sha256 => "sha256",
        AuthAlgorithm::Sha384 => "sha384",
        AuthAlgorithm::Sha512 => "sha512",
        AuthAlgorithm::AesXcbc => "aesxcbc",
        AuthAlgorithm::AesCmac => "aescmac",
    }
}

/// strongSwan's keyword for the PRF of the same family (used with AEAD IKE ciphers).
pub fn prf_keyword(a: AuthAlgorithm) -> &'static str {
    match a {
        AuthAlgorithm::Sha1 => "prfsha1",
        AuthAlgorithm::Sha256 => "prfsha256",
        AuthAlgorithm::Sha384 => "prfsha384",
        AuthAlgorithm::Sha512 => "prfsha512",
        AuthAlgorithm::AesXcbc => "prfaesxcbc",
        AuthAlgorithm::AesCmac => "prfaescmac",
    }
}

/// strongSwan's keyword for a Diffie-Hellman group (RFC 3526/5114/5903/7027/8031).
pub fn dh_keyword(g: DhGroup) -> &'static str {
    use DhGroup::*;
    match g {
        Group2 => "modp1024",
        Group5 => "modp1536",
        Group14 => "modp2048",
        Group15 => "modp3072",
        Group16 => "modp4096",
        Group17 => "modp6144",
        Group18 => "modp8192",
        Group19 => "ecp256",
        Group20 => "ecp384",
        Group21 => "ecp521",
        Group22 => "modp1024s160",
        Group23 => "modp2048s224",
        Group24 => "modp2048s256",
        Group25 => "ecp192",
        Group26 => "ecp224",
        Group27 => "ecp224bp",
        Group28 => "ecp256bp",
        Group29 => "ecp384bp",
        Group30 => "ecp512bp",
        Group31 => "curve25519",
    }
}

/// Joins keyword groups with `-`, skipping empty groups.
fn proposal(parts: &[&[&str]]) -> String {
    parts
        .iter()
        .flat_map(|p| p.iter().copied())
        .collect::<Vec<_>>()
        .join("-")
}

/// Splits ciphers into (classic, AEAD) keyword lists, and says which comes first.
fn split_ciphers(enc: &[EncryptionAlgorithm]) -> (Vec<&'static str>, Vec<&'static str>, bool) {
    let classic = enc
        .iter()
        .filter(|a| !a.is_aead())
        .map(|a| encryption_keyword(*a))
        .collect();
    let aead = enc
        .iter()
        .filter(|a| a.is_aead())
        .map(|a| encryption_keyword(*a))
        .collect();
    let aead_first = enc.first().is_some_and(|a| a.is_aead());
    (classic, aead, aead_first)
}

fn ordered(classic: Option<String>, aead: Option<String>, aead_first: bool) -> Vec<String> {
    let (a, b) = if aead_first {
        (aead, classic)
    } else {
        (classic, aead)
    };
    a.into_iter().chain(b).collect()
}

/// IKE proposals, e.g. `["aes128-sha1-modp1536"]`.
pub fn ike_proposals(ike: &IkeProposal) -> Result<Vec<String>, RenderError> {
    if ike.encryption.is_empty() {
        return Err(RenderError::NoEncryption("IKE"));
    }
    if ike.dh_groups.is_empty() {
        return Err(RenderError::NoDhGroup);
    }
    let (classic, aead, aead_first) = split_ciphers(&ike.encryption);
    let integ: Vec<&str> = ike.integrity.iter().map(|a| integrity_keyword(*a)).collect();
    let mut prf: Vec<&str> = ike.integrity.iter().map(|a| prf_keyword(*a)).collect();
    if prf.is_empty() {
        prf.push("prfsha256");
    }
    let dh: Vec<&str> = ike.dh_groups.iter().map(|g| dh_keyword(*g)).collect();
    let classic = if classic.is_empty() {
        None
    } else if integ.is_empty() {
        return Err(RenderError::NoIntegrity("IKE"));
    } else {
        Some(proposal(&[&classic, &integ, &dh]))
    };
    let aead = (!aead.is_empty()).then(|| proposal(&[&aead, &prf, &dh]));
    Ok(ordered(classic, aead, aead_first))
}

/// ESP proposals, e.g. `["aes128-sha1-modp1536"]` (with PFS) or `["aes256gcm16"]`.
pub fn esp_proposals(child: &ChildProposal) -> Result<Vec<String>, RenderError> {
    if child.encryption.is_empty() {
        return Err(RenderError::NoEncryption("ESP"));
    }
    let (classic, aead, aead_first) = split_ciphers(&child.encryption);
    let integ: Vec<&str> = child.integrity.iter().map(|a| integrity_keyword(*a)).collect();
    let pfs: Vec<&str> = child.pfs_groups.iter().map(|g| dh_keyword(*g)).collect();
    let classic = if classic.is_empty() {
        None
    } else if integ.is_empty() {
        return Err(RenderError::NoIntegrity("ESP"));
    } else {
        Some(proposal(&[&classic, &integ, &pfs]))
    };
    let aead = (!aead.is_empty()).then(|| proposal(&[&aead, &pfs]));
    Ok(ordered(classic, aead, aead_first))
}

/// AH proposals: `integ[-pfs]`.
pub fn ah_proposals(child: &ChildProposal) -> Result<Vec<String>, RenderError> {
    if child.integrity.is_empty() {
        return Err(RenderError::NoIntegrity("AH"));
    }
    let integ: Vec<&str> = child.integrity.iter().map(|a| integrity_keyword(*a)).collect();
    let pfs: Vec<&str> = child.pfs_groups.iter().map(|g| dh_keyword(*g)).collect();
    Ok(vec![proposal(&[&integ, &pfs])])
}

/// A duration in charon's syntax.
struct Secs(u32);

impl fmt::Display for Secs {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}s", self.0)
    }
}

/// Rekeying starts at 90% of the lifetime.
fn rekey_at(lifetime: u32) -> u32 {
    (u64::from(lifetime) * 9 / 10) as u32
}

fn dpd_action(a: DpdAction) -> Option<&'static str> {
    match a {
        DpdAction::Hold => Some("trap"),
        DpdAction::Clear | DpdAction::RestartByPeer => Some("clear"),
        DpdAction::Restart => Some("restart"),
        DpdAction::Disabled => None,
    }
}

fn nets(ts: &[IpNet]) -> Vec<String> {
    ts.iter().map(ToString::to_string).collect()
}

/// One CHILD_SA config.
fn child(t: &Tunnel, local_ts: &[IpNet], remote_ts: &[IpNet]) -> Result<Section, RenderError> {
    let c = &t.child;
    let mut s = Section::new().str("mode", c.mode.as_str());
    if !local_ts.is_empty() {
        s = s.list("local_ts", nets(local_ts));
    }
    if !remote_ts.is_empty() {
        s = s.list("remote_ts", nets(remote_ts));
    }
    if matches!(c.protocol, TransformProtocol::Ah | TransformProtocol::AhEsp) {
        s = s.list("ah_proposals", ah_proposals(c)?);
    }
    if matches!(c.protocol, TransformProtocol::Esp | TransformProtocol::AhEsp) {
        s = s.list("esp_proposals", esp_proposals(c)?);
    }
    s = s
        .str("rekey_time", Secs(rekey_at(c.lifetime_seconds)).to_string())
        .str("life_time", Secs(c.lifetime_seconds).to_string());
    if let Some(r) = &t.route {
        s = s
            .str("if_id_in", r.if_id.to_string())
            .str("if_id_out", r.if_id.to_string());
    }
    if let Some(a) = dpd_action(t.dpd.action) {
        s = s.str("dpd_action", a);
    }
    // On demand (NSX ON_DEMAND): charon installs trap policies and negotiates when
    // traffic first matches; everything else is started (or not) by the agent.
    let start = if t.initiator == Initiator::OnDemand {
        "trap"
    } else {
        "none"
    };
    Ok(s.str("start_action", start))
}

/// Renders one tunnel (which must be enabled: disabled tunnels are not carried).
pub fn render(t: &Tunnel, esp: EspMode) -> Result<Rendered, RenderError> {
    let v1 = t.ike.version == IkeVersion::V1;
    let mut conn = Section::new()
        .str(
            "version",
            match t.ike.version {
                IkeVersion::V1 => "1",
                IkeVersion::V2 => "2",
                // NSX IKE_FLEX: accept either version, initiate with IKEv2.
                IkeVersion::Flex => "0",
            },
        )
        .list("local_addrs", [t.local_address.to_string()])
        .list("remote_addrs", [t.peer_address.to_string()])
        .list("proposals", ike_proposals(&t.ike)?);
    if v1 {
        conn = conn.flag("aggressive", t.ike.aggressive);
    }
    conn = conn.flag("encap", esp == EspMode::Userspace);
    if dpd_action(t.dpd.action).is_some() {
        conn = conn.str("dpd_delay", Secs(t.dpd.interval).to_string());
        if v1 {
            conn = conn.str("dpd_timeout", Secs(t.dpd.timeout).to_string());
        }
    }
    let life = t.ike.lifetime_seconds;
    conn = conn
        .str("rekey_time", Secs(rekey_at(life)).to_string())
        .str("over_time", Secs(life - rekey_at(life)).to_string())
        .section("local", Section::new().str("auth", "psk").str("id", &t.local_id))
        .section("remote", Section::new().str("auth", "psk").str("id", &t.peer_id));

    let mut children = Section::new();
    let mut names = Vec::new();
    if v1 {
        let locals: Vec<Option<IpNet>> = opt_each(&t.local_ts);
        let remotes: Vec<Option<IpNet>> = opt_each(&t.remote_ts);
        for l in &locals {
            for r in &remotes {
                let name = format!("{}-{}", t.id, names.len() + 1);
                let sec = child(t, opt_slice(l), opt_slice(r))?;
                children = children.section(&name, sec);
                names.push(name);
            }
        }
    } else {
        children = children.section(&t.id, child(t, &t.local_ts, &t.remote_ts)?);
        names.push(t.id.clone());
    }
    conn = conn.section("children", children);

    let shared = Section::new()
        .str("id", &t.id)
        .str("type", "IKE")
        .secret("data", t.psk.clone())
        .list("owners", [t.local_id.clone(), t.peer_id.clone()]);
    Ok(Rendered {
        name: t.id.clone(),
        conn: Section::new().section(&t.id, conn),
        shared,
        children: names,
        initiator: t.initiator == Initiator::BiDirectional,
    })
}

/// How many CHILD_SAs a tunnel needs: one for IKEv2, one per selector pair for IKEv1.
pub fn expected_children(t: &Tunnel) -> u32 {
    if t.ike.version == IkeVersion::V1 {
        (t.local_ts.len().max(1) * t.remote_ts.len().max(1)) as u32
    } else {
        1
    }
}

/// Each selector, or one "dynamic" (None) when there are none.
fn opt_each(ts: &[IpNet]) -> Vec<Option<IpNet>> {
    if ts.is_empty() {
        vec![None]
    } else {
        ts.iter().copied().map(Some).collect()
    }
}

fn opt_slice(n: &Option<IpNet>) -> &[IpNet] {
    n.as_slice()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_algorithm_has_a_keyword_strongswan_knows() {
        // strongSwan's keywords are Neutron's spelling without dashes.
        for a in EncryptionAlgorithm::ALL {
            assert_eq!(encryption_keyword(*a), a.as_str().replace('-', ""));
        }
        for a in AuthAlgorithm::ALL {
            assert_eq!(integrity_keyword(*a), a.as_str().replace('-', ""));
            assert_eq!(prf_keyword(*a), format!("prf{}", integrity_keyword(*a)));
        }
        assert_eq!(dh_keyword(DhGroup::Group5), "modp1536");
        assert_eq!(dh_keyword(DhGroup::Group14), "modp2048");
        assert_eq!(dh_keyword(DhGroup::Group31), "curve25519");
    }

    fn ike(enc: Vec<EncryptionAlgorithm>, integ: Vec<AuthAlgorithm>) -> IkeProposal {
        IkeProposal {
            version: IkeVersion::V2,
            encryption: enc,
            integrity: integ,
            dh_groups: vec![DhGroup::Group5],
            lifetime_seconds: 3600,
            aggressive: false,
        }
    }

    #[test]
    fn ike_proposals_split_aead_from_classic() {
        use EncryptionAlgorithm::*;
        assert_eq!(
            ike_proposals(&ike(vec![Aes128], vec![AuthAlgorithm::Sha1])).unwrap(),
            ["aes128-sha1-modp1536"]
        );
        assert_eq!(
            ike_proposals(&ike(vec![Aes256Gcm16], vec![AuthAlgorithm::Sha256])).unwrap(),
            ["aes256gcm16-prfsha256-modp1536"]
        );
        assert_eq!(
            ike_proposals(&ike(vec![Aes256Gcm16, Aes128], vec![AuthAlgorithm::Sha384])).unwrap(),
            ["aes256gcm16-prfsha384-modp1536", "aes128-sha384-modp1536"]
        );
        assert_eq!(
            ike_proposals(&ike(vec![Aes128], vec![])),
            Err(RenderError::NoIntegrity("IKE"))
        );
        assert_eq!(
            ike_proposals(&ike(vec![Aes128Gcm16], vec![])).unwrap(),
            ["aes128gcm16-prfsha256-modp1536"]
        );
    }

    #[test]
    fn esp_proposals_append_pfs_and_drop_integrity_for_aead() {
        use EncryptionAlgorithm::*;
        let mut c = ChildProposal {
            protocol: TransformProtocol::Esp,
            mode: EncapsulationMode::Tunnel,
            encryption: vec![Aes128],
            integrity: vec![AuthAlgorithm::Sha1],
            pfs_groups: vec![DhGroup::Group14],
            lifetime_seconds: 3600,
        };
        assert_eq!(esp_proposals(&c).unwrap(), ["aes128-sha1-modp2048"]);
        c.pfs_groups.clear();
        assert_eq!(esp_proposals(&c).unwrap(), ["aes128-sha1"]);
        c.encryption = vec![Aes128Gcm16];
        assert_eq!(esp_proposals(&c).unwrap(), ["aes128gcm16"]);
        c.pfs_groups = vec![DhGroup::Group19, DhGroup::Group14];
        assert_eq!(esp_proposals(&c).unwrap(), ["aes128gcm16-ecp256-modp2048"]);
        assert_eq!(ah_proposals(&c).unwrap(), ["sha1-ecp256-modp2048"]);
    }

    #[test]
    fn flex_accepts_any_version_and_on_demand_traps() {
        let t = Tunnel {
            id: "t1".into(),
            name: "t".into(),
            enabled: true,
            local_address: "192.0.2.1".parse().unwrap(),
            local_id: "192.0.2.1".into(),
            peer_address: "192.0.2.2".parse().unwrap(),
            peer_id: "192.0.2.2".into(),
            psk: Psk("k".into()),
            ike: IkeProposal {
                version: IkeVersion::Flex,
                ..ike(vec![EncryptionAlgorithm::Aes128], vec![AuthAlgorithm::Sha256])
            },
            child: ChildProposal {
                protocol: TransformProtocol::Esp,
                mode: EncapsulationMode::Tunnel,
                encryption: vec![EncryptionAlgorithm::Aes128],
                integrity: vec![AuthAlgorithm::Sha256],
                pfs_groups: vec![],
                lifetime_seconds: 3600,
            },
            local_ts: vec!["10.0.1.0/24".parse().unwrap()],
            remote_ts: vec!["10.0.2.0/24".parse().unwrap()],
            dpd: DpdSettings::default(),
            initiator: Initiator::OnDemand,
            mtu: 1500,
            generation: 1,
            route: None,
        };
        let r = render(&t, EspMode::Kernel).unwrap();
        let text = r.conn.to_string();
        assert!(text.contains("version = 0"), "{text}");
        assert!(text.contains("start_action = trap"), "{text}");
        assert!(!r.initiator, "the agent does not initiate on-demand tunnels");
        let t2 = Tunnel {
            initiator: Initiator::BiDirectional,
            ..t
        };
        let r2 = render(&t2, EspMode::Kernel).unwrap();
        assert!(r2.conn.to_string().contains("start_action = none"));
        assert!(r2.initiator);
        assert!(!r2.conn.to_string().contains("if_id"));
        // Route-based: the interface id on every CHILD config, IKEv1 too.
        let t3 = Tunnel {
            route: Some(model::realization::RouteSpec {
                if_id: 7,
                addresses: vec!["169.254.0.1/30".parse().unwrap()],
                routes: vec!["10.0.2.0/24".parse().unwrap()],
            }),
            local_ts: vec!["0.0.0.0/0".parse().unwrap()],
            remote_ts: vec!["0.0.0.0/0".parse().unwrap()],
            ike: IkeProposal {
                version: IkeVersion::V1,
                ..t2.ike.clone()
            },
            ..t2
        };
        let text = render(&t3, EspMode::Userspace).unwrap().conn.to_string();
        assert_eq!(text.matches("if_id_in = 7").count(), 1, "{text}");
        assert_eq!(text.matches("if_id_out = 7").count(), 1, "{text}");
        assert!(
            text.contains("local_ts = [0.0.0.0/0]") || text.contains("0.0.0.0/0"),
            "{text}"
        );
    }
}
