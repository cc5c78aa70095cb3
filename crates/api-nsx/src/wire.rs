//! Reading NSX request bodies with NSX's types, and the enum spellings. Every
//! type or value error becomes a 400 [`NsxError::Field`], never a panic or 500.
//!
//! JSON `null` means "not given" everywhere (vmware-nsxlib sends
//! `"description": null`); unknown fields (including read-only ones echoed back
//! from a GET, like `_create_time`) are ignored.

use std::net::IpAddr;
use std::ops::RangeInclusive;

use ipnet::IpNet;
use model::nsx::{DfPolicy, DpdProbeMode, IkeLogLevel, MssDirection, RuleAction, Tag};
use model::*;
use serde_json::{Map, Value};

use crate::error::{NsxError, NsxResult};

/// A JSON object: a request body, or a rendered response object.
pub type Obj = Map<String, Value>;

/// A canonical value and its NSX spelling.
pub type Table<E> = &'static [(&'static str, E)];

/// `encryption_algorithms` of IKE and tunnel profiles (NSX has no 3DES or AES-192-CBC).
pub const ENCRYPTION: Table<EncryptionAlgorithm> = &[
    ("AES_128", EncryptionAlgorithm::Aes128),
    ("AES_256", EncryptionAlgorithm::Aes256),
    ("AES_GCM_128", EncryptionAlgorithm::Aes128Gcm16),
    ("AES_GCM_192", EncryptionAlgorithm::Aes192Gcm16),
    ("AES_GCM_256", EncryptionAlgorithm::Aes256Gcm16),
];
/// `digest_algorithms` of IKE and tunnel profiles.
pub const DIGEST: Table<AuthAlgorithm> = &[
    ("SHA1", AuthAlgorithm::Sha1),
    ("SHA2_256", AuthAlgorithm::Sha256),
    ("SHA2_384", AuthAlgorithm::Sha384),
    ("SHA2_512", AuthAlgorithm::Sha512),
];
/// NSX values vpnaas knows but does not carry (so: 400 unsupported, not "unknown").
pub const DIGEST_UNSUPPORTED: &[&str] = &["GMAC_128", "GMAC_192", "GMAC_256"];
/// `dh_groups` of IKE and tunnel profiles.
pub const DH_GROUP: Table<DhGroup> = &[
    ("GROUP2", DhGroup::Group2),
    ("GROUP5", DhGroup::Group5),
    ("GROUP14", DhGroup::Group14),
    ("GROUP15", DhGroup::Group15),
    ("GROUP16", DhGroup::Group16),
    ("GROUP19", DhGroup::Group19),
    ("GROUP20", DhGroup::Group20),
    ("GROUP21", DhGroup::Group21),
];
/// An IKE profile's `ike_version`.
pub const IKE_VERSION: Table<IkeVersion> = &[
    ("IKE_V1", IkeVersion::V1),
    ("IKE_V2", IkeVersion::V2),
    ("IKE_FLEX", IkeVersion::Flex),
];
/// A peer endpoint's `connection_initiation_mode`.
pub const INITIATION: Table<Initiator> = &[
    ("INITIATOR", Initiator::BiDirectional),
    ("RESPOND_ONLY", Initiator::ResponseOnly),
    ("ON_DEMAND", Initiator::OnDemand),
];
/// A DPD profile's `dpd_probe_mode`.
pub const PROBE_MODE: Table<DpdProbeMode> = &[
    ("PERIODIC", DpdProbeMode::Periodic),
    ("ON_DEMAND", DpdProbeMode::OnDemand),
];
/// A service's `ike_log_level`.
pub const LOG_LEVEL: Table<IkeLogLevel> = &[
    ("DEBUG", IkeLogLevel::Debug),
    ("INFO", IkeLogLevel::Info),
    ("WARN", IkeLogLevel::Warn),
    ("ERROR", IkeLogLevel::Error),
    ("EMERGENCY", IkeLogLevel::Emergency),
];
/// A tunnel profile's `df_policy`.
pub const DF_POLICY: Table<DfPolicy> = &[("COPY", DfPolicy::Copy), ("CLEAR", DfPolicy::Clear)];
/// A policy rule's `action`.
pub const ACTION: Table<RuleAction> = &[("PROTECT", RuleAction::Protect), ("BYPASS", RuleAction::Bypass)];
/// A tunnel profile's `encapsulation_mode`: NSX knows tunnel mode only.
pub const ENCAPSULATION: Table<EncapsulationMode> = &[("TUNNEL_MODE", EncapsulationMode::Tunnel)];
/// A tunnel profile's `transform_protocol`: NSX knows ESP only.
pub const TRANSFORM: Table<TransformProtocol> = &[("ESP", TransformProtocol::Esp)];
/// A session's `tcp_mss_clamping.direction`.
pub const MSS_DIRECTION: Table<MssDirection> = &[
    ("NONE", MssDirection::None),
    ("INBOUND_CONNECTION", MssDirection::InboundConnection),
    ("OUTBOUND_CONNECTION", MssDirection::OutboundConnection),
    ("BOTH", MssDirection::Both),
];

/// The NSX spelling of a canonical value, if NSX has one.
pub fn spell<E: PartialEq + Copy>(table: Table<E>, v: E) -> Option<&'static str> {
    table.iter().find(|(_, e)| *e == v).map(|(s, _)| *s)
}

fn type_name(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "boolean",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

fn wrong(field: &str, want: &str, got: &Value) -> NsxError {
    NsxError::field(field, format!("expected {want}, got {}", type_name(got)))
}

/// Typed access to one request object; `path` prefixes field names in errors.
pub struct Fields<'a> {
    /// The object read.
    pub obj: &'a Obj,
    /// Where it is in the body (`tcp_mss_clamping`), empty for the body itself.
    pub path: String,
}

impl<'a> Fields<'a> {
    /// The fields of a whole request body.
    pub fn new(obj: &'a Obj) -> Fields<'a> {
        Fields {
            obj,
            path: String::new(),
        }
    }

    fn name(&self, k: &str) -> String {
        if self.path.is_empty() {
            k.to_string()
        } else {
            format!("{}.{k}", self.path)
        }
    }

    /// The value of `k`, None when absent or null.
    pub fn get(&self, k: &str) -> Option<&'a Value> {
        self.obj.get(k).filter(|v| !v.is_null())
    }

    /// Whether `k` is given (present and not null).
    pub fn has(&self, k: &str) -> bool {
        self.get(k).is_some()
    }

    /// A string of at most `max` characters.
    pub fn string(&self, k: &str, max: usize) -> NsxResult<Option<String>> {
        match self.get(k) {
            None => Ok(None),
            Some(Value::String(s)) if s.chars().count() <= max => Ok(Some(s.clone())),
            Some(Value::String(_)) => Err(NsxError::field(
                self.name(k),
                format!("must be at most {max} characters"),
            )),
            Some(v) => Err(wrong(&self.name(k), "string", v)),
        }
    }

    /// A non-empty string of at most `max` characters that must be given.
    pub fn required_string(&self, k: &str, max: usize) -> NsxResult<String> {
        self.string(k, max)?
            .filter(|s| !s.is_empty())
            .ok_or_else(|| NsxError::field(self.name(k), "required property is missing"))
    }

    /// A boolean.
    pub fn boolean(&self, k: &str) -> NsxResult<Option<bool>> {
        match self.get(k) {
            None => Ok(None),
            Some(Value::Bool(b)) => Ok(Some(*b)),
            Some(v) => Err(wrong(&self.name(k), "boolean", v)),
        }
    }

    /// An integer within `range`.
    pub fn int_in(&self, k: &str, range: RangeInclusive<i64>) -> NsxResult<Option<i64>> {
        match self.get(k) {
            None => Ok(None),
            Some(Value::Number(n)) => match n.as_i64() {
                Some(i) if range.contains(&i) => Ok(Some(i)),
                Some(_) => Err(NsxError::field(
                    self.name(k),
                    format!("must be between {} and {}", range.start(), range.end()),
                )),
                None => Err(wrong(&self.name(k), "integer", &Value::Number(n.clone()))),
            },
            Some(v) => Err(wrong(&self.name(k), "integer", v)),
        }
    }

    /// An unsigned 32-bit integer (any value; ranges that depend on other
    /// fields are model rules).
    pub fn u32(&self, k: &str) -> NsxResult<Option<u32>> {
        Ok(self.int_in(k, 0..=i64::from(u32::MAX))?.map(|i| i as u32))
    }

    fn enum_value<E: Copy>(&self, field: &str, v: &Value, table: Table<E>) -> NsxResult<E> {
        let Value::String(s) = v else {
            return Err(wrong(field, "string", v));
        };
        table
            .iter()
            .find(|(n, _)| n == s)
            .map(|(_, e)| *e)
            .ok_or_else(|| {
                let allowed: Vec<&str> = table.iter().map(|(n, _)| *n).collect();
                NsxError::field(
                    field,
                    format!("invalid value {s}; allowed values are {}", allowed.join(", ")),
                )
            })
    }

    /// One of `table`'s NSX names, as its canonical value.
    pub fn enum_of<E: Copy>(&self, k: &str, table: Table<E>) -> NsxResult<Option<E>> {
        self.get(k)
            .map(|v| self.enum_value(&self.name(k), v, table))
            .transpose()
    }

    /// A list of enum values; `unsupported` names values refused as unsupported.
    pub fn enum_list<E: Copy>(
        &self,
        k: &str,
        table: Table<E>,
        unsupported: &[&str],
    ) -> NsxResult<Option<Vec<E>>> {
        let Some(v) = self.get(k) else { return Ok(None) };
        let Value::Array(items) = v else {
            return Err(wrong(&self.name(k), "array", v));
        };
        let mut out = Vec::with_capacity(items.len());
        for item in items {
            if let Value::String(s) = item
                && unsupported.contains(&s.as_str())
            {
                return Err(model::Error::Unsupported(format!(
                    "{} value {s} is not supported by this server",
                    self.name(k)
                ))
                .into());
            }
            out.push(self.enum_value(&self.name(k), item, table)?);
        }
        Ok(Some(out))
    }

    /// A list of at most `max_items` strings of at most `max_len` characters.
    pub fn string_list(&self, k: &str, max_items: usize, max_len: usize) -> NsxResult<Option<Vec<String>>> {
        let Some(v) = self.get(k) else { return Ok(None) };
        let Value::Array(items) = v else {
            return Err(wrong(&self.name(k), "array", v));
        };
        if items.len() > max_items {
            return Err(NsxError::field(
                self.name(k),
                format!("at most {max_items} items are allowed"),
            ));
        }
        items
            .iter()
            .map(|i| match i {
                Value::String(s) if s.chars().count() <= max_len => Ok(s.clone()),
                Value::String(_) => Err(NsxError::field(
                    self.name(k),
                    format!("items must be at most {max_len} characters"),
                )),
                other => Err(wrong(&self.name(k), "array of strings", other)),
            })
            .collect::<NsxResult<Vec<_>>>()
            .map(Some)
    }

    /// An IP address (v4 or v6), given as a string.
    pub fn ip(&self, k: &str) -> NsxResult<Option<IpAddr>> {
        match self.string(k, 64)? {
            None => Ok(None),
            Some(s) => s
                .parse()
                .map(Some)
                .map_err(|_| NsxError::field(self.name(k), format!("{s} is not a valid IP address"))),
        }
    }

    /// A nested object.
    pub fn object(&self, k: &str) -> NsxResult<Option<Fields<'a>>> {
        match self.get(k) {
            None => Ok(None),
            Some(Value::Object(o)) => Ok(Some(Fields {
                obj: o,
                path: self.name(k),
            })),
            Some(v) => Err(wrong(&self.name(k), "object", v)),
        }
    }

    /// An array of objects.
    pub fn objects(&self, k: &str, max_items: usize) -> NsxResult<Option<Vec<Fields<'a>>>> {
        let Some(v) = self.get(k) else { return Ok(None) };
        let Value::Array(items) = v else {
            return Err(wrong(&self.name(k), "array", v));
        };
        if items.len() > max_items {
            return Err(NsxError::field(
                self.name(k),
                format!("at most {max_items} items are allowed"),
            ));
        }
        items
            .iter()
            .enumerate()
            .map(|(i, item)| match item {
                Value::Object(o) => Ok(Fields {
                    obj: o,
                    path: format!("{}[{i}]", self.name(k)),
                }),
                other => Err(wrong(&format!("{}[{i}]", self.name(k)), "object", other)),
            })
            .collect::<NsxResult<Vec<_>>>()
            .map(Some)
    }

    /// `tags`: at most 30 `{scope, tag}` objects.
    pub fn tags(&self) -> NsxResult<Option<Vec<Tag>>> {
        let Some(items) = self.objects("tags", 30)? else {
            return Ok(None);
        };
        items
            .iter()
            .map(|t| {
                Ok(Tag {
                    scope: t.string("scope", 128)?.unwrap_or_default(),
                    tag: t.string("tag", 256)?.unwrap_or_default(),
                })
            })
            .collect::<NsxResult<Vec<_>>>()
            .map(Some)
    }

    /// A list of `{"subnet": "<cidr>"}` objects.
    pub fn subnets(&self, k: &str) -> NsxResult<Vec<IpNet>> {
        let Some(items) = self.objects(k, 128)? else {
            return Ok(Vec::new());
        };
        items
            .iter()
            .map(|s| {
                let text = s.required_string("subnet", 64)?;
                validate::parse_cidr(&text)
                    .map(|n| n.trunc())
                    .ok_or_else(|| NsxError::field(s.name("subnet"), format!("{text} is not a valid subnet")))
            })
            .collect()
    }
}

/// Parses a JSON request body into an object.
pub fn body_object(raw: &[u8]) -> NsxResult<Obj> {
    if raw.iter().all(u8::is_ascii_whitespace) {
        return Err(NsxError::field("body", "a JSON object is required"));
    }
    match serde_json::from_slice::<Value>(raw) {
        Ok(Value::Object(o)) => Ok(o),
        Ok(other) => Err(wrong("body", "JSON object", &other)),
        Err(e) => Err(NsxError::field("body", format!("not valid JSON: {e}"))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn obj(v: Value) -> Obj {
        match v {
            Value::Object(o) => o,
            _ => unreachable!(),
        }
    }

    #[test]
    fn spellings_round_trip() {
        for (s, e) in ENCRYPTION {
            assert_eq!(spell(ENCRYPTION, *e), Some(*s));
        }
        assert_eq!(spell(ENCRYPTION, EncryptionAlgorithm::TripleDes), None);
        assert_eq!(
            crate::response::names_of(DIGEST, &[AuthAlgorithm::AesXcbc, AuthAlgorithm::Sha256]),
            vec!["SHA2_256"]
        );
        assert_eq!(spell(DH_GROUP, DhGroup::Group14), Some("GROUP14"));
        assert_eq!(spell(IKE_VERSION, IkeVersion::Flex), Some("IKE_FLEX"));
        assert_eq!(spell(INITIATION, Initiator::ResponseOnly), Some("RESPOND_ONLY"));
    }

    #[test]
    fn typed_fields() {
        let o = obj(json!({"a": "x", "n": 5, "f": 1.5, "b": true, "z": null,
                           "e": ["AES_128", "AES_GCM_256"], "bad": ["DES"], "g": ["GMAC_128"],
                           "s": [{"subnet": "10.0.0.1/24"}], "tags": [{"scope": "s", "tag": "t"}]}));
        let f = Fields::new(&o);
        assert_eq!(f.string("a", 10).unwrap().as_deref(), Some("x"));
        assert!(f.string("n", 10).is_err());
        assert!(f.string("a", 0).is_err());
        assert_eq!(f.string("z", 10).unwrap(), None);
        assert_eq!(f.int_in("n", 0..=10).unwrap(), Some(5));
        assert!(f.int_in("n", 6..=10).is_err());
        assert!(f.int_in("f", 0..=10).is_err());
        assert!(f.boolean("a").is_err());
        assert_eq!(
            f.enum_list("e", ENCRYPTION, &[]).unwrap().unwrap(),
            vec![EncryptionAlgorithm::Aes128, EncryptionAlgorithm::Aes256Gcm16]
        );
        assert!(matches!(
            f.enum_list("bad", ENCRYPTION, &[]),
            Err(NsxError::Field { .. })
        ));
        assert!(matches!(
            f.enum_list("g", DIGEST, DIGEST_UNSUPPORTED),
            Err(NsxError::Model(model::Error::Unsupported(_)))
        ));
        assert_eq!(
            f.subnets("s").unwrap(),
            vec!["10.0.0.0/24".parse::<IpNet>().unwrap()]
        );
        assert_eq!(f.tags().unwrap().unwrap()[0].tag, "t");
        assert!(body_object(b"[1]").is_err());
        assert!(body_object(b"{").is_err());
        assert!(body_object(b"").is_err());
    }
}
