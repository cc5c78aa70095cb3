//! IPsec policies (`/v2.0/vpn/ipsecpolicies`): attributes, how a request becomes an `IpsecPolicy`, and its view.

use super::*;

/// `/v2.0/vpn/ipsecpolicies`.
pub struct IpsecPolicies;

static IPSEC_ATTRS: LazyLock<Vec<Attr>> = LazyLock::new(|| {
    let mut v = common(true).to_vec();
    v.extend([
        Attr::new("transform_protocol")
            .default(Default::Str("esp"))
            .check(Check::Values(&["esp", "ah", "ah-esp"])),
        Attr::new("auth_algorithm")
            .default(Default::Str("sha1"))
            .check(Check::Values(*AUTH)),
        Attr::new("encryption_algorithm")
            .default(Default::Str("aes-128"))
            .check(Check::Values(*ENC)),
        Attr::new("encapsulation_mode")
            .default(Default::Str("tunnel"))
            .check(Check::Values(&["tunnel", "transport"])),
        Attr::new("lifetime")
            .default(Default::EmptyDict)
            .conv(Conv::NoneToEmptyDict)
            .check(Check::Lifetime)
            .no_filter(),
        Attr::new("pfs")
            .default(Default::Str("group5"))
            .check(Check::Values(*PFS)),
    ]);
    v
});

fn ipsec_apply(p: &mut IpsecPolicy, m: &Obj) {
    if let Some(v) = parse_enum(m, "transform_protocol", TransformProtocol::parse) {
        p.transform_protocol = v;
    }
    if let Some(v) = parse_enum(m, "auth_algorithm", AuthAlgorithm::parse) {
        p.auth_algorithm = v;
    }
    if let Some(v) = parse_enum(m, "encryption_algorithm", EncryptionAlgorithm::parse) {
        p.encryption_algorithm = v;
    }
    if let Some(v) = parse_enum(m, "encapsulation_mode", EncapsulationMode::parse) {
        p.encapsulation_mode = v;
    }
    lifetime_apply(&mut p.lifetime, m.get("lifetime"));
    if let Some(v) = parse_enum(m, "pfs", DhGroup::parse) {
        p.pfs = v;
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
