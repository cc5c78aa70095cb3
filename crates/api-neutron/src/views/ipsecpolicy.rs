//! IPsec policies (`/v2.0/vpn/ipsecpolicies`): attributes, how a request becomes an `IpsecPolicy`, and its view.

use super::*;

/// `/v2.0/vpn/ipsecpolicies`.
pub struct IpsecPolicies;

static IPSEC_ATTRS: LazyLock<Vec<Attr>> = LazyLock::new(|| {
    let mut v = common(true).to_vec();
    v.push(
        Attr::new("transform_protocol")
            .default(Default::Str("esp"))
            .check(Check::Values(&["esp", "ah", "ah-esp"])),
    );
    v.extend(algorithm_attrs());
    v.extend([
        Attr::new("encapsulation_mode")
            .default(Default::Str("tunnel"))
            .check(Check::Values(&["tunnel", "transport"])),
        lifetime_attr(),
        pfs_attr(),
    ]);
    v
});

fn ipsec_apply(p: &mut IpsecPolicy, m: &Obj) {
    policy_apply(
        m,
        &mut p.auth_algorithm,
        &mut p.encryption_algorithm,
        &mut p.lifetime,
        &mut p.pfs,
    );
    if let Some(v) = parse_enum(m, "transform_protocol", TransformProtocol::parse) {
        p.transform_protocol = v;
    }
    if let Some(v) = parse_enum(m, "encapsulation_mode", EncapsulationMode::parse) {
        p.encapsulation_mode = v;
    }
}

impl View for IpsecPolicies {
    type Body = IpsecPolicy;
    type Wire = wire::IpsecPolicy;
    const SINGULAR: &'static str = "ipsecpolicy";
    const PLURAL: &'static str = "ipsecpolicies";
    const RULE: &'static str = "ipsecpolicy";
    const UPDATE: Expect = Expect::UNUSED;

    fn attrs() -> &'static [Attr] {
        &IPSEC_ATTRS
    }

    fn wire(rec: &Record<IpsecPolicy>, _: &ViewCtx) -> wire::IpsecPolicy {
        wire::IpsecPolicy::from(rec)
    }

    fn build(m: &Obj) -> ApiResult<IpsecPolicy> {
        let mut p = IpsecPolicy::default();
        ipsec_apply(&mut p, m);
        Ok(p)
    }

    fn apply(rec: &mut Record<IpsecPolicy>, m: &Obj) {
        apply_meta(&mut rec.meta, m);
        ipsec_apply(&mut rec.body, m);
    }
}
