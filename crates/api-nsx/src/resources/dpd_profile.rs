//! `IPSecVPNDPDProfile` (`/api/v1/vpn/ipsec/dpd-profiles`) over `DpdProfile`.

use super::*;

/// `/api/v1/vpn/ipsec/dpd-profiles`: DPD profiles over canonical [`DpdProfile`]s.
pub struct DpdProfiles;

/// A parsed DPD profile body: what it sets, `None` for what it leaves alone.
pub struct DpdPatch {
    enabled: Option<bool>,
    interval: Option<u32>,
    mode: Option<DpdProbeMode>,
    retry: Option<u32>,
    tags: Option<Vec<Tag>>,
}

impl Resource for DpdProfiles {
    type Body = DpdProfile;
    type Wire = response::DpdProfile;
    type Patch = DpdPatch;
    const SEGMENT: &'static str = "dpd-profiles";
    const RESOURCE_TYPE: &'static str = "IPSecVPNDPDProfile";

    fn render(rec: &Record<DpdProfile>, _: &RenderCtx) -> response::DpdProfile {
        let b = &rec.body;
        response::DpdProfile {
            managed: Managed::new(&rec.meta, Self::RESOURCE_TYPE),
            enabled: b.enabled,
            dpd_probe_interval: b.probe_interval,
            dpd_probe_mode: name_of(PROBE_MODE, b.probe_mode),
            retry_count: b.retry_count,
            tags: response::tags(&b.tags),
        }
    }

    fn parse(f: &Fields<'_>, _: bool) -> NsxResult<DpdPatch> {
        Ok(DpdPatch {
            enabled: f.boolean("enabled")?,
            interval: f.u32("dpd_probe_interval")?,
            mode: f.enum_of("dpd_probe_mode", PROBE_MODE)?,
            retry: f.u32("retry_count")?,
            tags: f.tags()?,
        })
    }

    fn new_body(p: &DpdPatch) -> model::Result<DpdProfile> {
        let mut b = DpdProfile::default();
        if p.mode == Some(DpdProbeMode::OnDemand) {
            b.probe_interval = 3;
        }
        Self::apply(p, &mut b)?;
        Ok(b)
    }

    fn apply(p: &DpdPatch, b: &mut DpdProfile) -> model::Result<()> {
        if let Some(v) = p.enabled {
            b.enabled = v;
        }
        if let Some(v) = p.mode {
            b.probe_mode = v;
        }
        if let Some(v) = p.interval {
            b.probe_interval = v;
        }
        if let Some(v) = p.retry {
            b.retry_count = v;
        }
        if let Some(t) = &p.tags {
            b.tags = t.clone();
        }
        Ok(())
    }
}
