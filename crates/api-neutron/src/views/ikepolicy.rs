//! IKE policies (`/v2.0/vpn/ikepolicies`): attributes, how a request becomes an `IkePolicy`, and its view.

use super::*;

/// `/v2.0/vpn/ikepolicies`.
pub struct IkePolicies;

static IKE_ATTRS: LazyLock<Vec<Attr>> = LazyLock::new(|| {
    let mut v = common(true).to_vec();
    v.extend(algorithm_attrs());
    v.extend([
        Attr::new("phase1_negotiation_mode")
            .default(Default::Str("main"))
            .check(Check::Values(&["main", "aggressive"])),
        lifetime_attr(),
        Attr::new("ike_version")
            .default(Default::Str("v1"))
            .check(Check::Values(&["v1", "v2"])),
        pfs_attr(),
    ]);
    v
});

fn ike_apply(p: &mut IkePolicy, m: &Obj) {
    policy_apply(
        m,
        &mut p.auth_algorithm,
        &mut p.encryption_algorithm,
        &mut p.lifetime,
        &mut p.pfs,
    );
    if let Some(v) = parse_enum(m, "phase1_negotiation_mode", Phase1Mode::parse) {
        p.phase1_negotiation_mode = v;
    }
    if let Some(v) = parse_enum(m, "ike_version", IkeVersion::parse) {
        p.ike_version = v;
    }
}

impl View for IkePolicies {
    type Body = IkePolicy;
    type Wire = wire::IkePolicy;
    const SINGULAR: &'static str = "ikepolicy";
    const PLURAL: &'static str = "ikepolicies";
    const RULE: &'static str = "ikepolicy";
    const UPDATE: Expect = Expect::UNUSED;

    fn attrs() -> &'static [Attr] {
        &IKE_ATTRS
    }

    fn wire(rec: &Record<IkePolicy>, _: &ViewCtx) -> wire::IkePolicy {
        wire::IkePolicy::from(rec)
    }

    fn build(m: &Obj) -> ApiResult<IkePolicy> {
        let mut p = IkePolicy::default();
        ike_apply(&mut p, m);
        Ok(p)
    }

    fn apply(rec: &mut Record<IkePolicy>, m: &Obj) {
        apply_meta(&mut rec.meta, m);
        ike_apply(&mut rec.body, m);
    }
}
