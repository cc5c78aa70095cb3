//! `IPSecVPNService` (`/api/v1/vpn/ipsec/services`) over `VpnService`: `logical_router_id` is the gateway (a Neutron router).

use super::*;

/// `/api/v1/vpn/ipsec/services`: IPSec VPN services over canonical [`VpnService`]s.
pub struct Services;

/// A parsed service body: what it sets, `None` for what it leaves alone.
pub struct ServicePatch {
    router: Option<String>,
    enabled: Option<bool>,
    log_level: Option<IkeLogLevel>,
    ha_sync: Option<bool>,
    bypass: Option<Vec<RuleIn>>,
    tags: Option<Vec<Tag>>,
}

impl Resource for Services {
    type Body = VpnService;
    type Wire = response::Service;
    type Patch = ServicePatch;
    const SEGMENT: &'static str = "services";
    const RESOURCE_TYPE: &'static str = "IPSecVPNService";
    const FILTERS: &'static [&'static str] = &["logical_router_id"];

    fn render(rec: &Record<VpnService>, _: &RenderCtx) -> response::Service {
        let b = &rec.body;
        response::Service {
            managed: Managed::new(&rec.meta, Self::RESOURCE_TYPE),
            logical_router_id: b.router_id.clone(),
            enabled: b.admin_state_up,
            ike_log_level: name_of(LOG_LEVEL, b.ike_log_level),
            ipsec_ha_sync: b.ipsec_ha_sync,
            bypass_rules: b.bypass_rules.iter().map(Rule::from).collect(),
            tags: response::tags(&b.tags),
        }
    }

    fn parse(f: &Fields<'_>, create: bool) -> NsxResult<ServicePatch> {
        let router = if create {
            Some(f.required_string("logical_router_id", 64)?)
        } else {
            f.string("logical_router_id", 64)?
        };
        Ok(ServicePatch {
            router,
            enabled: f.boolean("enabled")?,
            log_level: f.enum_of("ike_log_level", LOG_LEVEL)?,
            ha_sync: f.boolean("ipsec_ha_sync")?,
            bypass: parse_rules(f, "bypass_rules")?,
            tags: f.tags()?,
        })
    }

    fn new_body(p: &ServicePatch) -> model::Result<VpnService> {
        let mut b = VpnService {
            router_id: p.router.clone().unwrap_or_default(),
            ..VpnService::default()
        };
        Self::apply(p, &mut b)?;
        Ok(b)
    }

    fn apply(p: &ServicePatch, b: &mut VpnService) -> model::Result<()> {
        if let Some(r) = &p.router
            && *r != b.router_id
        {
            return Err(Error::field(
                "logical_router_id",
                "the logical router of a VPN service can not be changed",
            ));
        }
        if let Some(v) = p.enabled {
            b.admin_state_up = v;
        }
        if let Some(v) = p.log_level {
            b.ike_log_level = v;
        }
        if let Some(v) = p.ha_sync {
            b.ipsec_ha_sync = v;
        }
        if let Some(r) = &p.bypass {
            b.bypass_rules = rules_from(r, RuleAction::Bypass);
        }
        if let Some(t) = &p.tags {
            b.tags = t.clone();
        }
        Ok(())
    }
}
