//! `IPSecVPNTunnelProfile` (`/api/v1/vpn/ipsec/tunnel-profiles`) over `IpsecPolicy`: what a body may say, NSX defaults, and the view.

use super::*;

pub struct TunnelProfiles;

pub struct TunnelPatch {
    encryption: Option<Vec<EncryptionAlgorithm>>,
    digest: Option<Vec<AuthAlgorithm>>,
    dh: Option<Vec<DhGroup>>,
    pfs: Option<bool>,
    lifetime: Option<u32>,
    df: Option<DfPolicy>,
    tags: Option<Vec<Tag>>,
}

impl Resource for TunnelProfiles {
    type Body = IpsecPolicy;
    type Wire = response::TunnelProfile;
    type Patch = TunnelPatch;
    const SEGMENT: &'static str = "tunnel-profiles";
    const RESOURCE_TYPE: &'static str = "IPSecVPNTunnelProfile";

    fn render(rec: &Record<IpsecPolicy>, _: &RenderCtx) -> response::TunnelProfile {
        let b = &rec.body;
        response::TunnelProfile {
            managed: Managed::new(&rec.meta, Self::RESOURCE_TYPE),
            encryption_algorithms: names_of(ENCRYPTION, &b.encryption_algorithms()),
            digest_algorithms: names_of(DIGEST, &b.auth_algorithms()),
            dh_groups: names_of(DH_GROUP, &b.dh_groups()),
            enable_perfect_forward_secrecy: b.pfs_enabled,
            sa_life_time: b.lifetime.value,
            encapsulation_mode: spell(ENCAPSULATION, b.encapsulation_mode),
            transform_protocol: spell(TRANSFORM, b.transform_protocol),
            df_policy: name_of(DF_POLICY, b.df_policy),
            tags: response::tags(&b.tags),
        }
    }

    fn parse(f: &Fields<'_>, _: bool) -> NsxResult<TunnelPatch> {
        // Only one value of each exists; checked so a typo is an error.
        f.enum_of("encapsulation_mode", ENCAPSULATION)?;
        f.enum_of("transform_protocol", TRANSFORM)?;
        Ok(TunnelPatch {
            encryption: non_empty(
                "encryption_algorithms",
                f.enum_list("encryption_algorithms", ENCRYPTION, &[])?,
            )?,
            digest: f.enum_list("digest_algorithms", DIGEST, DIGEST_UNSUPPORTED)?,
            dh: non_empty("dh_groups", f.enum_list("dh_groups", DH_GROUP, &[])?)?,
            pfs: f.boolean("enable_perfect_forward_secrecy")?,
            lifetime: f.u32("sa_life_time")?,
            df: f.enum_of("df_policy", DF_POLICY)?,
            tags: f.tags()?,
        })
    }

    fn new_body(p: &TunnelPatch) -> model::Result<IpsecPolicy> {
        let mut b = tunnel_profile_defaults();
        Self::apply(p, &mut b)?;
        Ok(b)
    }

    fn apply(p: &TunnelPatch, b: &mut IpsecPolicy) -> model::Result<()> {
        let cur = b.encryption_algorithms();
        set_list(ENCRYPTION, &p.encryption, &cur, |l| {
            b.set_encryption_algorithms(l)
        });
        let cur = b.auth_algorithms();
        set_list(DIGEST, &p.digest, &cur, |l| b.set_auth_algorithms(l));
        let cur = b.dh_groups();
        set_list(DH_GROUP, &p.dh, &cur, |l| b.set_dh_groups(l));
        if let Some(v) = p.pfs {
            b.pfs_enabled = v;
        }
        lifetime(p.lifetime, &mut b.lifetime);
        if let Some(v) = p.df {
            b.df_policy = v;
        }
        if let Some(t) = &p.tags {
            b.tags = t.clone();
        }
        Ok(())
    }
}
