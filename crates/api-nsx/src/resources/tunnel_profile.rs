//! `IPSecVPNTunnelProfile` (`/api/v1/vpn/ipsec/tunnel-profiles`) over `IpsecPolicy`: what a body may say, NSX defaults, and the view.

use super::*;

/// `/api/v1/vpn/ipsec/tunnel-profiles`: tunnel profiles over canonical [`IpsecPolicy`]s.
pub struct TunnelProfiles;

/// A parsed tunnel profile body: what it sets, `None` for what it leaves alone.
pub struct TunnelPatch {
    algorithms: AlgorithmsPatch,
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
            algorithms: algorithms_view(b),
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
            algorithms: AlgorithmsPatch::parse(f)?,
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
        p.algorithms.apply(b);
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
