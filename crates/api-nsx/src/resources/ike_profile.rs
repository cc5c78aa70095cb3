//! `IPSecVPNIKEProfile` (`/api/v1/vpn/ipsec/ike-profiles`) over `IkePolicy`: what a body may say, NSX defaults, and the view.

use super::*;

/// `/api/v1/vpn/ipsec/ike-profiles`: IKE profiles over canonical [`IkePolicy`]s.
pub struct IkeProfiles;

/// A parsed IKE profile body: what it sets, `None` for what it leaves alone.
pub struct IkePatch {
    algorithms: AlgorithmsPatch,
    lifetime: Option<u32>,
    version: Option<IkeVersion>,
    tags: Option<Vec<Tag>>,
}

impl Resource for IkeProfiles {
    type Body = IkePolicy;
    type Wire = response::IkeProfile;
    type Patch = IkePatch;
    const SEGMENT: &'static str = "ike-profiles";
    const RESOURCE_TYPE: &'static str = "IPSecVPNIKEProfile";

    fn render(rec: &Record<IkePolicy>, _: &RenderCtx) -> response::IkeProfile {
        let b = &rec.body;
        response::IkeProfile {
            managed: Managed::new(&rec.meta, Self::RESOURCE_TYPE),
            algorithms: algorithms_view(b),
            sa_life_time: b.lifetime.value,
            ike_version: name_of(IKE_VERSION, b.ike_version),
            tags: response::tags(&b.tags),
        }
    }

    fn parse(f: &Fields<'_>, _: bool) -> NsxResult<IkePatch> {
        Ok(IkePatch {
            algorithms: AlgorithmsPatch::parse(f)?,
            lifetime: f.u32("sa_life_time")?,
            version: f.enum_of("ike_version", IKE_VERSION)?,
            tags: f.tags()?,
        })
    }

    fn new_body(p: &IkePatch) -> model::Result<IkePolicy> {
        let mut b = ike_profile_defaults();
        Self::apply(p, &mut b)?;
        Ok(b)
    }

    fn apply(p: &IkePatch, b: &mut IkePolicy) -> model::Result<()> {
        if p.algorithms.digest.as_ref().is_some_and(Vec::is_empty)
            && !names_of(DIGEST, &b.auth_algorithms()).is_empty()
        {
            return Err(Error::field(
                "digest_algorithms",
                "an IKE profile needs at least one digest algorithm",
            ));
        }
        p.algorithms.apply(b);
        lifetime(p.lifetime, &mut b.lifetime);
        if let Some(v) = p.version {
            b.ike_version = v;
        }
        if let Some(t) = &p.tags {
            b.tags = t.clone();
        }
        Ok(())
    }
}
