//! `IPSecVPNPeerEndpoint` (`/api/v1/vpn/ipsec/peer-endpoints`) over `PeerEndpoint` (its PSK shown only with `action=show-sensitive-data`), and the read-only peer endpoint derived from a Neutron connection.

use super::*;

/// `/api/v1/vpn/ipsec/peer-endpoints`: peer endpoints over canonical [`PeerEndpoint`]s.
pub struct PeerEndpoints;

/// A parsed peer endpoint body: what it sets, `None` for what it leaves alone.
pub struct PeerPatch {
    address: Option<std::net::IpAddr>,
    peer_id: Option<String>,
    psk: Option<String>,
    initiator: Option<Initiator>,
    ike: Option<String>,
    tunnel: Option<String>,
    dpd: Option<String>,
    tags: Option<Vec<Tag>>,
}

impl Resource for PeerEndpoints {
    type Body = PeerEndpoint;
    type Wire = response::PeerEndpoint;
    type Patch = PeerPatch;
    const SEGMENT: &'static str = "peer-endpoints";
    const RESOURCE_TYPE: &'static str = "IPSecVPNPeerEndpoint";

    /// The pre-shared key: never in a plain GET or list.
    fn sensitive(rec: &Record<PeerEndpoint>) -> Option<Obj> {
        let mut o = Obj::new();
        o.insert("psk".into(), json!(rec.body.psk.expose()));
        Some(o)
    }

    const DERIVED: bool = true;

    /// The peer of a Neutron connection: its address, identity, key,
    /// initiation mode and policies. Its DPD settings are the connection's
    /// own, not a profile, so the view names no `dpd_profile_id`.
    fn derived(conn: &Record<Connection>, _: &Gateway) -> Option<Record<PeerEndpoint>> {
        let c = &conn.body;
        Some(Record {
            meta: conn.meta.clone(),
            body: PeerEndpoint {
                peer_address: c.peer_address.clone(),
                peer_id: c.peer_id.clone(),
                psk: c.psk.clone(),
                initiator: c.initiator,
                ikepolicy_id: c.ikepolicy_id.clone(),
                ipsecpolicy_id: c.ipsecpolicy_id.clone(),
                dpd_profile_id: String::new(),
                tags: Vec::new(),
            },
        })
    }

    fn render(rec: &Record<PeerEndpoint>, _: &RenderCtx) -> response::PeerEndpoint {
        let b = &rec.body;
        response::PeerEndpoint {
            managed: Managed::new(&rec.meta, Self::RESOURCE_TYPE),
            peer_address: b.peer_address.clone(),
            peer_id: b.peer_id.clone(),
            authentication_mode: "PSK",
            connection_initiation_mode: name_of(INITIATION, b.initiator),
            ike_profile_id: b.ikepolicy_id.clone(),
            ipsec_tunnel_profile_id: b.ipsecpolicy_id.clone(),
            dpd_profile_id: Some(b.dpd_profile_id.clone()).filter(|d| !d.is_empty()),
            psk: None,
            tags: response::tags(&b.tags),
        }
    }

    fn parse(f: &Fields<'_>, create: bool) -> NsxResult<PeerPatch> {
        if let Some(Value::String(m)) = f.get("authentication_mode") {
            match m.as_str() {
                "PSK" => {}
                "CERTIFICATE" => {
                    return Err(model::Error::Unsupported(
                        "authentication_mode CERTIFICATE is not supported by this server; use PSK".into(),
                    )
                    .into());
                }
                other => {
                    return Err(NsxError::field(
                        "authentication_mode",
                        format!("invalid value {other}; allowed values are PSK, CERTIFICATE"),
                    ));
                }
            }
        } else if let Some(v) = f.get("authentication_mode") {
            return Err(NsxError::field(
                "authentication_mode",
                format!("expected string, got {v}"),
            ));
        }
        let address = f.ip("peer_address")?;
        let peer_id = f.string("peer_id", 255)?;
        let psk = f.string("psk", PSK_MAX_LEN)?;
        if create {
            if address.is_none() {
                return Err(NsxError::field("peer_address", "required property is missing"));
            }
            if peer_id.as_deref().is_none_or(str::is_empty) {
                return Err(NsxError::field("peer_id", "required property is missing"));
            }
            if psk.as_deref().is_none_or(str::is_empty) {
                return Err(NsxError::field(
                    "psk",
                    "required property is missing (authentication_mode PSK)",
                ));
            }
        }
        if psk.as_deref() == Some("") {
            return Err(NsxError::field("psk", "must not be empty"));
        }
        Ok(PeerPatch {
            address,
            peer_id,
            psk,
            initiator: f.enum_of("connection_initiation_mode", INITIATION)?,
            ike: f.string("ike_profile_id", 64)?,
            tunnel: f.string("ipsec_tunnel_profile_id", 64)?,
            dpd: f.string("dpd_profile_id", 64)?,
            tags: f.tags()?,
        })
    }

    fn new_body(p: &PeerPatch) -> model::Result<PeerEndpoint> {
        let mut b = PeerEndpoint {
            peer_address: String::new(),
            peer_id: String::new(),
            psk: Psk::default(),
            initiator: Initiator::BiDirectional,
            ikepolicy_id: DEFAULT_IKE_PROFILE_ID.into(),
            ipsecpolicy_id: DEFAULT_TUNNEL_PROFILE_ID.into(),
            dpd_profile_id: DEFAULT_DPD_PROFILE_ID.into(),
            tags: Vec::new(),
        };
        Self::apply(p, &mut b)?;
        Ok(b)
    }

    fn apply(p: &PeerPatch, b: &mut PeerEndpoint) -> model::Result<()> {
        if let Some(a) = p.address {
            b.peer_address = a.to_string();
        }
        if let Some(v) = &p.peer_id {
            if v.is_empty() {
                return Err(Error::field("peer_id", "must not be empty"));
            }
            b.peer_id = v.clone();
        }
        if let Some(v) = &p.psk {
            b.psk = Psk(v.clone());
        }
        if let Some(v) = p.initiator {
            b.initiator = v;
        }
        if let Some(v) = p.ike.as_ref().filter(|v| !v.is_empty()) {
            b.ikepolicy_id = v.clone();
        }
        if let Some(v) = p.tunnel.as_ref().filter(|v| !v.is_empty()) {
            b.ipsecpolicy_id = v.clone();
        }
        if let Some(v) = p.dpd.as_ref().filter(|v| !v.is_empty()) {
            b.dpd_profile_id = v.clone();
        }
        if let Some(t) = &p.tags {
            b.tags = t.clone();
        }
        Ok(())
    }
}
