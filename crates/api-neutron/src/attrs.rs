//! Neutron's attribute maps and its generic request-body processing
//! (`prepare_request_body`): shape checks, unknown/read-only attributes, defaults,
//! converters and validators, with Neutron's messages, in Neutron's order.
//! Resource modules only declare their map and build model values from the
//! already-checked attributes.

use serde_json::{Map, Value};

use crate::error::{ApiError, ApiResult};

/// How a raw value is converted before validation (`convert_to`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Conv {
    None,
    Bool,
    Int,
    /// `convert_to_list`: null → [], scalar → [scalar].
    List,
    /// `convert_none_to_empty_dict`.
    NoneToEmptyDict,
}

/// How a converted value is validated (`validate`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Check {
    None,
    /// `type:string` with a maximum length.
    Str(usize),
    /// `type:values`.
    Values(&'static [&'static str]),
    Uuid,
    UuidOrNone,
    NonNegative,
    Boolean,
    /// The `lifetime` dict (units in [seconds], value ≥ 60).
    Lifetime,
    /// The `dpd` dict.
    Dpd,
    /// `type:subnet_list` (each a CIDR), after `convert_to_list`, with at
    /// most this many entries (ours: Neutron sets no bound, but every entry
    /// becomes a traffic selector or route and is checked against the
    /// gateway's others).
    SubnetList(usize),
    /// A list of strings (endpoints).
    StrList,
    /// `type:subnet`: one CIDR.
    Cidr,
    /// `type:values` [4, 6] on an integer.
    IpVersion,
    /// `type:ip_address_or_none`; the empty string stands for "not given".
    IpOrNone,
    /// A router's `external_gateway_info` (null, `{}`, or a dict with
    /// `network_id`, `enable_snat`, `external_fixed_ips`).
    GatewayInfo,
}

/// Default of an attribute on POST.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Default {
    Required,
    Null,
    Str(&'static str),
    Bool(bool),
    Int(i64),
    EmptyDict,
    EmptyList,
}

#[derive(Debug, Clone, Copy)]
pub struct Attr {
    pub name: &'static str,
    pub post: bool,
    pub put: bool,
    pub default: Default,
    pub conv: Conv,
    pub check: Check,
    pub filter: bool,
    pub sort: bool,
}

impl Attr {
    pub const fn new(name: &'static str) -> Attr {
        Attr {
            name,
            post: true,
            put: true,
            default: Default::Null,
            conv: Conv::None,
            check: Check::None,
            filter: true,
            sort: false,
        }
    }
    pub const fn ro(mut self) -> Attr {
        self.post = false;
        self.put = false;
        self
    }
    pub const fn post_only(mut self) -> Attr {
        self.put = false;
        self
    }
    pub const fn required(mut self) -> Attr {
        self.default = Default::Required;
        self
    }
    pub const fn default(mut self, d: Default) -> Attr {
        self.default = d;
        self
    }
    pub const fn conv(mut self, c: Conv) -> Attr {
        self.conv = c;
        self
    }
    pub const fn check(mut self, c: Check) -> Attr {
        self.check = c;
        self
    }
    pub const fn no_filter(mut self) -> Attr {
        self.filter = false;
        self
    }
    pub const fn sort(mut self) -> Attr {
        self.sort = true;
        self
    }
}

pub(crate) const NAME_LEN: usize = 255;

/// The attributes every VPN resource has, in Neutron's order.
pub(crate) const fn common(sortable: bool) -> [Attr; 5] {
    let id = Attr::new("id").ro().check(Check::Uuid);
    let tenant = Attr::new("tenant_id")
        .post_only()
        .check(Check::Str(NAME_LEN))
        .default(Default::Null);
    let project = Attr::new("project_id")
        .post_only()
        .check(Check::Str(NAME_LEN))
        .default(Default::Null);
    let name = Attr::new("name")
        .default(Default::Str(""))
        .check(Check::Str(NAME_LEN));
    let desc = Attr::new("description")
        .default(Default::Str(""))
        .check(Check::Str(NAME_LEN));
    if sortable {
        [id.sort(), tenant.sort(), project.sort(), name.sort(), desc]
    } else {
        [id, tenant, project, name, desc]
    }
}

/// Renders a JSON value the way Python's `'%s' % value` would, for messages.
pub(crate) fn py(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Null => "None".into(),
        Value::Bool(true) => "True".into(),
        Value::Bool(false) => "False".into(),
        Value::Number(n) => n.to_string(),
        Value::Array(a) => format!("[{}]", a.iter().map(py_repr).collect::<Vec<_>>().join(", ")),
        Value::Object(o) => format!(
            "{{{}}}",
            o.iter()
                .map(|(k, v)| format!("'{k}': {}", py_repr(v)))
                .collect::<Vec<_>>()
                .join(", ")
        ),
    }
}

fn py_repr(v: &Value) -> String {
    match v {
        Value::String(s) => format!("'{s}'"),
        other => py(other),
    }
}

/// `convert_to_int`: Python's `int()` on a JSON value.
pub(crate) fn to_int(v: &Value) -> Option<i64> {
    match v {
        Value::Number(n) => n.as_i64().or_else(|| {
            n.as_f64()
                .filter(|f| f.is_finite() && f.abs() < 9e18)
                .map(|f| f.trunc() as i64)
        }),
        Value::Bool(b) => Some(*b as i64),
        Value::String(s) => s.trim().parse::<i64>().ok(),
        _ => None,
    }
}

/// `convert_to_boolean`.
pub(crate) fn to_bool(v: &Value) -> Option<bool> {
    match v {
        Value::Bool(b) => Some(*b),
        Value::String(s) => match s.to_ascii_lowercase().as_str() {
            "true" | "1" => Some(true),
            "false" | "0" => Some(false),
            _ => None,
        },
        Value::Number(n) => match n.as_i64() {
            Some(0) => Some(false),
            Some(1) => Some(true),
            _ => None,
        },
        _ => None,
    }
}

fn convert(attr: &Attr, v: Value) -> ApiResult<Value> {
    Ok(match attr.conv {
        Conv::None => v,
        Conv::Bool => {
            Value::Bool(to_bool(&v).ok_or_else(|| {
                ApiError::InvalidInput(format!("'{}' cannot be converted to boolean", py(&v)))
            })?)
        }
        Conv::Int => Value::from(
            to_int(&v).ok_or_else(|| ApiError::InvalidInput(format!("'{}' is not an integer", py(&v))))?,
        ),
        Conv::List => match v {
            Value::Null => Value::Array(vec![]),
            Value::Array(a) => Value::Array(a),
            other => Value::Array(vec![other]),
        },
        Conv::NoneToEmptyDict => match v {
            Value::Null => Value::Object(Map::new()),
            other => other,
        },
    })
}

fn check_string(v: &Value, max: usize) -> Option<String> {
    match v {
        Value::String(s) if s.chars().count() > max => Some(format!("'{s}' exceeds maximum length of {max}")),
        Value::String(_) => None,
        other => Some(format!("'{}' is not a valid string", py(other))),
    }
}

fn check_non_negative(v: &Value) -> Option<String> {
    match to_int(v) {
        None => Some(format!("'{}' is not an integer", py(v))),
        Some(n) if n < 0 => Some(format!("'{n}' should be non-negative")),
        Some(_) => None,
    }
}

fn check_values(v: &Value, values: &[&str]) -> Option<String> {
    match v {
        Value::String(s) if values.contains(&s.as_str()) => None,
        other => Some(format!("{} is not in valid_values", py(other))),
    }
}

fn check_uuid(v: &Value) -> Option<String> {
    match v {
        Value::String(s) if model::validate::is_uuid_like(s) => None,
        other => Some(format!("'{}' is not a valid UUID", py(other))),
    }
}

/// neutron-lib `validate_dict` with per-key value checks.
/// A check of one value; `Some(reason)` when it fails.
type ValueCheck<'a> = &'a dyn Fn(&Value) -> Option<String>;

fn check_dict(v: &Value, keys: &[(&str, ValueCheck<'_>)]) -> Option<String> {
    let Value::Object(o) = v else {
        return Some(format!("'{}' is not a dictionary", py(v)));
    };
    let unexpected: Vec<&str> = o
        .keys()
        .filter(|k| !keys.iter().any(|(name, _)| name == k))
        .map(String::as_str)
        .collect();
    if !unexpected.is_empty() {
        return Some(format!("Unexpected keys supplied: {}", unexpected.join(", ")));
    }
    for (name, check) in keys {
        if let Some(val) = o.get(*name)
            && let Some(msg) = check(val)
        {
            return Some(msg);
        }
    }
    None
}

/// `validate_subnet` on one entry of a subnet list.
pub(crate) fn check_subnet(v: &Value) -> Option<String> {
    let Value::String(s) = v else {
        return Some(format!("'{}' is not a valid IP subnet", py(v)));
    };
    if s.trim() != s || s.is_empty() {
        return Some(format!("'{s}' is not a valid IP subnet"));
    }
    match model::validate::parse_cidr(s) {
        None => Some(format!("'{s}' is not a valid IP subnet")),
        Some(net) if !s.contains('/') => Some(format!(
            "'{s}' isn't a recognized IP subnet cidr, '{}' is recommended",
            net.trunc()
        )),
        Some(_) => None,
    }
}

pub(crate) const LIFETIME_UNITS: &[&str] = &["seconds"];
pub(crate) const DPD_ACTIONS: &[&str] = &["clear", "disabled", "hold", "restart", "restart-by-peer"];

fn validate(attr: &Attr, v: &Value) -> Option<String> {
    match attr.check {
        Check::None => None,
        Check::Str(max) => check_string(v, max),
        Check::Values(values) => check_values(v, values),
        Check::Uuid => check_uuid(v),
        Check::UuidOrNone => match v {
            Value::Null => None,
            other => check_uuid(other),
        },
        Check::NonNegative => check_non_negative(v),
        Check::Boolean => match v {
            Value::Bool(_) => None,
            other => Some(format!("'{}' is not a valid boolean value", py(other))),
        },
        Check::Lifetime => check_dict(
            v,
            &[
                ("units", &|x: &Value| check_values(x, LIFETIME_UNITS)),
                ("value", &|x: &Value| match to_int(x) {
                    None => Some(format!("'{}' is not an integer", py(x))),
                    Some(n) if n < 60 => Some(format!("'{n}' is too small - must be at least '60'")),
                    Some(n) if n > u32::MAX as i64 => Some(format!(
                        "'{n}' is too large - must be no larger than '{}'",
                        u32::MAX
                    )),
                    Some(_) => None,
                }),
            ],
        ),
        Check::Dpd => check_dict(
            v,
            &[
                ("action", &|x: &Value| check_values(x, DPD_ACTIONS)),
                ("interval", &|x: &Value| {
                    check_non_negative(x).or_else(|| too_big(x))
                }),
                ("timeout", &|x: &Value| {
                    check_non_negative(x).or_else(|| too_big(x))
                }),
            ],
        ),
        Check::SubnetList(max) => match v {
            Value::Array(items) if items.len() > max => {
                Some(format!("{} entries are more than the {max} allowed", items.len()))
            }
            Value::Array(items) => items.iter().find_map(check_subnet),
            other => Some(format!("'{}' is not a list", py(other))),
        },
        Check::StrList => match v {
            Value::Array(items) => items.iter().find_map(|i| check_string(i, NAME_LEN)),
            other => Some(format!("'{}' is not a list", py(other))),
        },
        Check::Cidr => check_subnet(v),
        Check::IpVersion => match to_int(v) {
            Some(4 | 6) => None,
            _ => Some(format!("{} is not in valid_values", py(v))),
        },
        // "" is the "not given" default (the subnet's first host), see `views::router`.
        Check::IpOrNone => match v {
            Value::Null => None,
            Value::String(s) if s.is_empty() => None,
            other => check_ip(other),
        },
        Check::GatewayInfo => match v {
            Value::Null => None,
            Value::Object(o) if o.is_empty() => None,
            other => check_dict(
                other,
                &[
                    ("network_id", &check_uuid),
                    ("enable_snat", &|x: &Value| match to_bool(x) {
                        Some(_) => None,
                        None => Some(format!("'{}' is not a valid boolean value", py(x))),
                    }),
                    ("external_fixed_ips", &check_fixed_ips),
                    ("qos_policy_id", &|_: &Value| None),
                ],
            )
            .or_else(|| match other.get("network_id") {
                None => Some("Validation of dictionary's keys failed. Expected keys: {'network_id'}".into()),
                Some(_) => None,
            }),
        },
    }
}

fn check_ip(v: &Value) -> Option<String> {
    match v {
        Value::String(s) if s.parse::<std::net::IpAddr>().is_ok() => None,
        other => Some(format!("'{}' is not a valid IP address", py(other))),
    }
}

/// `external_fixed_ips`: a list of dicts of `subnet_id` and/or `ip_address`.
fn check_fixed_ips(v: &Value) -> Option<String> {
    let Value::Array(items) = v else {
        return Some(format!("'{}' is not a list", py(v)));
    };
    items
        .iter()
        .find_map(|i| check_dict(i, &[("subnet_id", &check_uuid), ("ip_address", &check_ip)]))
}

fn too_big(x: &Value) -> Option<String> {
    match to_int(x) {
        Some(n) if n > u32::MAX as i64 => Some(format!(
            "'{n}' is too large - must be no larger than '{}'",
            u32::MAX
        )),
        _ => None,
    }
}

/// Which kind of write the body is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    Create,
    Update,
}

/// Parses and checks a request body for `resource` (the singular key) against
/// `attrs`, exactly in Neutron's order. For a create, returns every POST
/// attribute (defaults filled); for an update, only the ones given.
/// `own_project` is the caller's project when it may not name another one
/// (anyone but an admin).
pub(crate) fn prepare_body(
    raw: &[u8],
    resource: &str,
    attrs: &[Attr],
    op: Op,
    own_project: Option<&str>,
) -> ApiResult<Map<String, Value>> {
    // What Neutron's body parser says first: an update with no body (or
    // `null`) has an invalid format, a create is told a body is required, and
    // blanks are no JSON.
    let invalid_format = |shown: &str| ApiError::BadRequestFor {
        resource: "body",
        msg: format!("Invalid format: b'{shown}'"),
    };
    if raw.is_empty() {
        return Err(match op {
            Op::Update => invalid_format(""),
            Op::Create => ApiError::BadRequest("Resource body required".into()),
        });
    }
    let body: Value = serde_json::from_slice(raw).map_err(|_| ApiError::MalformedBody)?;
    if body.is_null() {
        return Err(match op {
            Op::Update => invalid_format("null"),
            Op::Create => ApiError::BadRequest("Resource body required".into()),
        });
    }
    let Value::Object(mut body) = body else {
        return Err(ApiError::BadRequest("Body contains invalid data".into()));
    };
    if body.is_empty() {
        return Err(ApiError::BadRequest("Resource body required".into()));
    }
    let res = match body.remove(resource) {
        None | Some(Value::Null) => {
            return Err(ApiError::BadRequest(format!(
                "Unable to find '{resource}' in request body"
            )));
        }
        Some(Value::Object(o)) => o,
        Some(_) => {
            return Err(ApiError::BadRequest(format!(
                "Object '{resource}' contains invalid data"
            )));
        }
    };
    let mut res = res;
    // populate_project_info
    match (res.get("tenant_id"), res.get("project_id")) {
        (Some(t), Some(p)) if t != p => {
            return Err(ApiError::BadRequest(
                "'project_id' and 'tenant_id' do not match".into(),
            ));
        }
        (Some(t), None) => {
            let t = t.clone();
            res.insert("project_id".into(), t);
        }
        (None, Some(p)) => {
            let p = p.clone();
            res.insert("tenant_id".into(), p);
        }
        _ => {}
    }
    if let (Some(own), Some(given)) = (own_project, res.get("tenant_id"))
        && given.as_str() != Some(own)
    {
        return Err(ApiError::BadRequest(
            "Specifying 'project_id' other than the authenticated project in request is not allowed for the current user."
                .into(),
        ));
    }
    // verify_attributes
    let unknown: Vec<&str> = res
        .keys()
        .filter(|k| !attrs.iter().any(|a| a.name == k.as_str()))
        .map(String::as_str)
        .collect();
    if !unknown.is_empty() {
        return Err(ApiError::BadRequest(format!(
            "Unrecognized attribute(s) '{}'",
            unknown.join(", ")
        )));
    }
    match op {
        Op::Create => {
            for a in attrs {
                if a.post {
                    if !res.contains_key(a.name) {
                        let d = match a.default {
                            Default::Required => {
                                return Err(ApiError::BadRequest(format!(
                                    "Failed to parse request. Required attribute '{}' not specified",
                                    a.name
                                )));
                            }
                            Default::Null => Value::Null,
                            Default::Str(s) => Value::from(s),
                            Default::Bool(b) => Value::from(b),
                            Default::Int(i) => Value::from(i),
                            Default::EmptyDict => Value::Object(Map::new()),
                            Default::EmptyList => Value::Array(vec![]),
                        };
                        // Defaults are not validated (Neutron's ATTR_NOT_SPECIFIED rule),
                        // except that the project is filled in later from the token.
                        res.insert(a.name.to_string(), d);
                        continue;
                    }
                } else if res.contains_key(a.name) {
                    return Err(ApiError::BadRequest(format!(
                        "Attribute '{}' not allowed in POST",
                        a.name
                    )));
                }
            }
        }
        Op::Update => {
            for a in attrs {
                if res.contains_key(a.name) && !a.put {
                    return Err(ApiError::BadRequest(format!(
                        "Cannot update read-only attribute {}",
                        a.name
                    )));
                }
            }
        }
    }
    // convert_values
    for a in attrs {
        let Some(v) = res.remove(a.name) else { continue };
        let is_default_null = v.is_null() && op == Op::Create && matches!(a.default, Default::Null);
        let v = convert(a, v)?;
        if !is_default_null && let Some(reason) = validate(a, &v) {
            return Err(ApiError::BadRequest(format!(
                "Invalid input for {}. Reason: {reason}.",
                a.name
            )));
        }
        res.insert(a.name.to_string(), v);
    }
    Ok(res)
}

/// Typed getters for checked attribute maps.
pub(crate) trait Get {
    fn str_of(&self, k: &str) -> Option<String>;
    fn bool_of(&self, k: &str) -> Option<bool>;
    fn int_of(&self, k: &str) -> Option<i64>;
}

impl Get for Map<String, Value> {
    fn str_of(&self, k: &str) -> Option<String> {
        self.get(k).and_then(Value::as_str).map(str::to_string)
    }
    fn bool_of(&self, k: &str) -> Option<bool> {
        self.get(k).and_then(Value::as_bool)
    }
    fn int_of(&self, k: &str) -> Option<i64> {
        self.get(k).and_then(to_int)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn attrs() -> Vec<Attr> {
        let mut v = common(true).to_vec();
        v.push(
            Attr::new("ike_version")
                .default(Default::Str("v1"))
                .check(Check::Values(&["v1", "v2"])),
        );
        v.push(
            Attr::new("mtu")
                .default(Default::Int(1500))
                .conv(Conv::Int)
                .check(Check::NonNegative),
        );
        v.push(
            Attr::new("lifetime")
                .default(Default::EmptyDict)
                .conv(Conv::NoneToEmptyDict)
                .check(Check::Lifetime)
                .no_filter(),
        );
        v.push(Attr::new("status").ro());
        v
    }

    fn err(body: &str, op: Op) -> String {
        match prepare_body(body.as_bytes(), "x", &attrs(), op, None) {
            Err(ApiError::BadRequest(m)) => m,
            Err(ApiError::InvalidInput(m)) => format!("II:{m}"),
            Err(e @ (ApiError::MalformedBody | ApiError::BadRequestFor { .. })) => match e.answer() {
                crate::error::Answer::Neutron { message, .. } => message,
                a => panic!("unexpected {a:?}"),
            },
            other => panic!("unexpected {other:?}"),
        }
    }

    #[test]
    fn neutron_messages() {
        assert_eq!(err("", Op::Create), "Resource body required");
        assert_eq!(
            err("{", Op::Create),
            "Malformed request body: Cannot understand JSON."
        );
        assert_eq!(err("", Op::Update), "Bad body request: Invalid format: b''.");
        assert_eq!(err("", Op::Create), "Resource body required");
        assert_eq!(err("[]", Op::Create), "Body contains invalid data");
        assert_eq!(
            err(r#"{"y": {}}"#, Op::Create),
            "Unable to find 'x' in request body"
        );
        assert_eq!(err(r#"{"x": 1}"#, Op::Create), "Object 'x' contains invalid data");
        assert_eq!(
            err(r#"{"x": {"foo": 1}}"#, Op::Create),
            "Unrecognized attribute(s) 'foo'"
        );
        assert_eq!(
            err(r#"{"x": {"status": "A"}}"#, Op::Create),
            "Attribute 'status' not allowed in POST"
        );
        assert_eq!(
            err(r#"{"x": {"tenant_id": "a"}}"#, Op::Update),
            "Cannot update read-only attribute tenant_id"
        );
        assert_eq!(
            err(r#"{"x": {"ike_version": "foo"}}"#, Op::Create),
            "Invalid input for ike_version. Reason: foo is not in valid_values."
        );
        assert_eq!(
            err(r#"{"x": {"mtu": "x"}}"#, Op::Create),
            "II:'x' is not an integer"
        );
        assert_eq!(
            err(r#"{"x": {"mtu": -1}}"#, Op::Create),
            "Invalid input for mtu. Reason: '-1' should be non-negative."
        );
        assert_eq!(
            err(r#"{"x": {"lifetime": {"value": 10}}}"#, Op::Create),
            "Invalid input for lifetime. Reason: '10' is too small - must be at least '60'."
        );
        assert_eq!(
            err(r#"{"x": {"lifetime": {"foo": 1}}}"#, Op::Create),
            "Invalid input for lifetime. Reason: Unexpected keys supplied: foo."
        );
        assert_eq!(
            err(r#"{"x": {"description": 5}}"#, Op::Create),
            "Invalid input for description. Reason: '5' is not a valid string."
        );
        assert_eq!(
            err(r#"{"x": {"tenant_id": "a", "project_id": "b"}}"#, Op::Create),
            "'project_id' and 'tenant_id' do not match"
        );
        let own = prepare_body(
            br#"{"x": {"tenant_id": "b"}}"#,
            "x",
            &attrs(),
            Op::Update,
            Some("a"),
        );
        assert!(
            matches!(own, Err(ApiError::BadRequest(m)) if m.starts_with("Specifying 'project_id' other than")),
        );
    }

    #[test]
    fn defaults_and_conversion() {
        let m = prepare_body(
            br#"{"x": {"mtu": "1400", "lifetime": null}}"#,
            "x",
            &attrs(),
            Op::Create,
            None,
        )
        .unwrap();
        assert_eq!(m["mtu"], 1400);
        assert_eq!(m["ike_version"], "v1");
        assert_eq!(m["name"], "");
        assert_eq!(m["lifetime"], serde_json::json!({}));
        let m = prepare_body(br#"{"x": {"name": "n"}}"#, "x", &attrs(), Op::Update, None).unwrap();
        assert_eq!(m.len(), 1);
    }

    #[test]
    fn subnets() {
        assert_eq!(check_subnet(&"10.0.0.1/24".into()), None);
        assert_eq!(
            check_subnet(&"10.0.0.0/33".into()).unwrap(),
            "'10.0.0.0/33' is not a valid IP subnet"
        );
        assert!(
            check_subnet(&"10.0.0.1".into())
                .unwrap()
                .contains("'10.0.0.1/32' is recommended")
        );
    }
}
