//! VPN services (`/v2.0/vpn/vpnservices`): attributes, the service body, and its view with derived status and external addresses.

use super::*;

/// `/v2.0/vpn/vpnservices`.
pub struct VpnServices;

static SERVICE_ATTRS: LazyLock<Vec<Attr>> = LazyLock::new(|| {
    let mut v = common(true).to_vec();
    v.extend([
        Attr::new("subnet_id").post_only().check(Check::UuidOrNone),
        Attr::new("router_id")
            .post_only()
            .required()
            .check(Check::Uuid)
            .sort(),
        Attr::new("admin_state_up")
            .default(Default::Bool(true))
            .conv(Conv::Bool)
            .check(Check::Boolean),
        Attr::new("flavor_id").post_only().check(Check::UuidOrNone),
        Attr::new("external_v4_ip").ro(),
        Attr::new("external_v6_ip").ro(),
        Attr::new("status").ro(),
    ]);
    v
});

impl View for VpnServices {
    type Body = VpnService;
    type Wire = wire::VpnService;
    const SINGULAR: &'static str = "vpnservice";
    const PLURAL: &'static str = "vpnservices";
    const RULE: &'static str = "vpnservice";
    const STATEFUL: bool = true;
    const UPDATE: Expect = Expect::SETTLED;
    const FROM_CTX: &'static [&'static str] = &["status", "external_v4_ip", "external_v6_ip"];

    fn attrs() -> &'static [Attr] {
        &SERVICE_ATTRS
    }

    fn wire(rec: &Record<VpnService>, ctx: &ViewCtx) -> wire::VpnService {
        wire::VpnService::new(
            rec,
            ctx.gateways.get(&rec.body.router_id),
            ctx.status.service(rec),
        )
    }

    fn status(rec: &Record<VpnService>, ctx: &ViewCtx) -> Option<Status> {
        Some(ctx.status.service(rec))
    }

    fn build(m: &Obj) -> ApiResult<VpnService> {
        if m.get("flavor_id").is_some_and(|v| !v.is_null()) {
            return Err(ApiError::FlavorsPluginNotLoaded);
        }
        Ok(VpnService {
            router_id: m.str_of("router_id").unwrap_or_default(),
            subnet_id: opt_str(m, "subnet_id"),
            flavor_id: None,
            admin_state_up: m.bool_of("admin_state_up").unwrap_or(true),
            ..VpnService::default()
        })
    }

    fn apply(rec: &mut Record<VpnService>, m: &Obj) {
        apply_meta(&mut rec.meta, m);
        if let Some(a) = m.bool_of("admin_state_up") {
            rec.body.admin_state_up = a;
        }
    }
}
