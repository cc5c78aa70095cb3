//! Endpoint groups (`/v2.0/vpn/endpoint-groups`): attributes, the group body, and its view.

use super::*;

/// `/v2.0/vpn/endpoint-groups`.
pub struct EndpointGroups;

static GROUP_ATTRS: LazyLock<Vec<Attr>> = LazyLock::new(|| {
    let mut v = common(false).to_vec();
    v.extend([
        Attr::new("type")
            .post_only()
            .required()
            .check(Check::Values(&["cidr", "network", "router", "subnet", "vlan"])),
        Attr::new("endpoints")
            .post_only()
            .default(Default::EmptyList)
            .conv(Conv::List)
            .check(Check::StrList)
            .no_filter(),
    ]);
    v
});

impl View for EndpointGroups {
    type Body = EndpointGroup;
    type Wire = wire::EndpointGroup;
    const SINGULAR: &'static str = "endpoint_group";
    const PLURAL: &'static str = "endpoint_groups";
    const RULE: &'static str = "endpoint_group";
    const ALIASES: &'static [(&'static str, &'static str)] = &[("endpoint_type", "type")];

    fn attrs() -> &'static [Attr] {
        &GROUP_ATTRS
    }

    fn wire(rec: &Record<EndpointGroup>, _: &ViewCtx) -> wire::EndpointGroup {
        wire::EndpointGroup::from(rec)
    }

    fn build(m: &Obj) -> ApiResult<EndpointGroup> {
        Ok(EndpointGroup {
            endpoint_type: parse_enum(m, "type", EndpointType::parse).unwrap_or(EndpointType::Cidr),
            endpoints: m
                .get("endpoints")
                .and_then(Value::as_array)
                .map(|a| a.iter().filter_map(|e| e.as_str().map(str::to_string)).collect())
                .unwrap_or_default(),
        })
    }

    fn apply(rec: &mut Record<EndpointGroup>, m: &Obj) {
        apply_meta(&mut rec.meta, m);
    }
}
