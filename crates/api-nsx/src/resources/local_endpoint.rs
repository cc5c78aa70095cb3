//! `IPSecVPNLocalEndpoint` (`/api/v1/vpn/ipsec/local-endpoints`) over `LocalEndpoint`, and the read-only local endpoint derived from a Neutron connection.

use super::*;

/// `/api/v1/vpn/ipsec/local-endpoints`: local endpoints over canonical [`LocalEndpoint`]s.
pub struct LocalEndpoints;

/// A parsed local endpoint body: what it sets, `None` for what it leaves alone.
pub struct LocalPatch {
    address: Option<std::net::IpAddr>,
    service: Option<String>,
    local_id: Option<String>,
    certificate_id: Option<String>,
    trust_ca_ids: Option<Vec<String>>,
    trust_crl_ids: Option<Vec<String>>,
    tags: Option<Vec<Tag>>,
}

impl Resource for LocalEndpoints {
    type Body = LocalEndpoint;
    type Wire = response::LocalEndpoint;
    type Patch = LocalPatch;
    const SEGMENT: &'static str = "local-endpoints";
    const RESOURCE_TYPE: &'static str = "IPSecVPNLocalEndpoint";
    const NEEDS_CTX: bool = true;
    const FILTERS: &'static [&'static str] = &["logical_router_id", "ipsec_vpn_service_id"];

    const DERIVED: bool = true;

    /// The local side of a Neutron connection: its service, the address its
    /// tunnel terminates on (the gateway's external address of the peer's
    /// family, as realization picks it) and its IKE identity.
    fn derived(conn: &Record<Connection>, gateway: &Gateway) -> Option<Record<LocalEndpoint>> {
        let c = &conn.body;
        let peer: std::net::IpAddr = c.peer_address.parse().ok()?;
        let address = c.local_address.or(match peer {
            std::net::IpAddr::V4(_) => gateway.external_v4.map(std::net::IpAddr::V4),
            std::net::IpAddr::V6(_) => gateway.external_v6.map(std::net::IpAddr::V6),
        })?;
        Some(Record {
            meta: conn.meta.clone(),
            body: LocalEndpoint {
                vpnservice_id: c.vpnservice_id.clone(),
                local_address: address,
                local_id: if c.local_id.is_empty() {
                    address.to_string()
                } else {
                    c.local_id.clone()
                },
                certificate_id: None,
                trust_ca_ids: Vec::new(),
                trust_crl_ids: Vec::new(),
                tags: Vec::new(),
            },
        })
    }

    fn render(rec: &Record<LocalEndpoint>, _: &RenderCtx) -> response::LocalEndpoint {
        let b = &rec.body;
        response::LocalEndpoint {
            managed: Managed::new(&rec.meta, Self::RESOURCE_TYPE),
            local_address: b.local_address.to_string(),
            local_id: b.local_id.clone(),
            ipsec_vpn_service_id: response::ResourceReference {
                target_id: b.vpnservice_id.clone(),
                target_type: Services::RESOURCE_TYPE,
                is_valid: true,
                target_display_name: None,
            },
            certificate_id: b.certificate_id.clone(),
            trust_ca_ids: b.trust_ca_ids.clone(),
            trust_crl_ids: b.trust_crl_ids.clone(),
            tags: response::tags(&b.tags),
        }
    }

    fn parse(f: &Fields<'_>, create: bool) -> NsxResult<LocalPatch> {
        // A ResourceReference `{"target_id": ...}`; a plain id string is accepted too.
        let service = match f.get("ipsec_vpn_service_id") {
            Some(Value::String(s)) => Some(s.clone()),
            Some(_) => f
                .object("ipsec_vpn_service_id")?
                .map(|r| r.required_string("target_id", 64))
                .transpose()?,
            None => None,
        };
        let address = f.ip("local_address")?;
        if create {
            if address.is_none() {
                return Err(NsxError::field("local_address", "required property is missing"));
            }
            if service.is_none() {
                return Err(NsxError::field(
                    "ipsec_vpn_service_id",
                    "required property is missing",
                ));
            }
        }
        Ok(LocalPatch {
            address,
            service,
            local_id: f.string("local_id", 255)?,
            certificate_id: f.string("certificate_id", 64)?,
            trust_ca_ids: f.string_list("trust_ca_ids", 128, 64)?,
            trust_crl_ids: f.string_list("trust_crl_ids", 128, 64)?,
            tags: f.tags()?,
        })
    }

    fn new_body(p: &LocalPatch) -> model::Result<LocalEndpoint> {
        let address = p
            .address
            .ok_or_else(|| Error::field("local_address", "required"))?;
        let mut b = LocalEndpoint {
            vpnservice_id: p.service.clone().unwrap_or_default(),
            local_address: address,
            local_id: address.to_string(),
            certificate_id: None,
            trust_ca_ids: Vec::new(),
            trust_crl_ids: Vec::new(),
            tags: Vec::new(),
        };
        Self::apply(p, &mut b)?;
        Ok(b)
    }

    fn apply(p: &LocalPatch, b: &mut LocalEndpoint) -> model::Result<()> {
        if let Some(a) = p.address {
            b.local_address = a;
        }
        if let Some(s) = &p.service {
            b.vpnservice_id = s.clone();
        }
        if let Some(v) = &p.local_id {
            b.local_id = v.clone();
        }
        if p.certificate_id.is_some() {
            b.certificate_id = p.certificate_id.clone().filter(|c| !c.is_empty());
        }
        if let Some(v) = &p.trust_ca_ids {
            b.trust_ca_ids = v.clone();
        }
        if let Some(v) = &p.trust_crl_ids {
            b.trust_crl_ids = v.clone();
        }
        if let Some(t) = &p.tags {
            b.tags = t.clone();
        }
        Ok(())
    }
}
