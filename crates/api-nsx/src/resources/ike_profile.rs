//! `IPSecVPNIKEProfile` (`/api/v1/vpn/ipsec/ike-profiles`) over `IkePolicy`: what a body may say, NSX defaults, and the view.

use super::*;

pub struct IkeProfiles;

pub struct IkePatch {
    encryption: Option<Vec<EncryptionAlgorithm>>,
    digest: Option<Vec<AuthAlgorithm>>,
    dh: Option<Vec<DhGroup>>,
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
            encryption_algorithms: names_of(ENCRYPTION, &b.encryption_algorithms()),
            digest_algorithms: names_of(DIGEST, &b.auth_algorithms()),
            dh_groups: names_of(DH_GROUP, &b.dh_groups()),
            sa_life_time: b.lifetime.value,
            ike_version: name_of(IKE_VERSION, b.ike_version),
            tags: response::tags(&b.tags),
        }
    }

    fn parse(f: &Fields<'_>, _: bool) -> NsxResult<IkePatch> {
        Ok(IkePatch {
            encryption: non_empty(
                "encryption_algorithms",
                f.enum_list("encryption_algorithms", ENCRYPTION, &[])?,
            )?,
            digest: f.enum_list("digest_algorithms", DIGEST, DIGEST_UNSUPPORTED)?,
            dh: non_empty("dh_groups", f.enum_list("dh_groups", DH_GROUP, &[])?)?,
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
        if p.digest.as_ref().is_some_and(Vec::is_empty) && !names_of(DIGEST, &b.auth_algorithms()).is_empty()
        {
            return Err(Error::field(
                "digest_algorithms",
                "an IKE profile needs at least one digest algorithm",
            ));
        }
        let cur = b.encryption_algorithms();
        set_list(ENCRYPTION, &p.encryption, &cur, |l| {
            b.set_encryption_algorithms(l)
        });
        let cur = b.auth_algorithms();
        set_list(DIGEST, &p.digest, &cur, |l| b.set_auth_algorithms(l));
        let cur = b.dh_groups();
        set_list(DH_GROUP, &p.dh, &cur, |l| b.set_dh_groups(l));
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
