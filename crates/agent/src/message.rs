//! A VICI message as data: an ordered tree of sections, key/value pairs and lists.
//!
//! Why our own type instead of one serde struct per command: the renderer's output
//! must be (1) compared exactly, to decide whether a connection changed and must be
//! re-sent to charon (re-sending or changing a connection touches its SAs), (2)
//! printed readably for golden-file tests and debugging, in the syntax operators
//! know from `swanctl.conf`, and (3) serialized to the VICI wire format by rsvici.
//! One tree type does all three; key order is the order the renderer chose, so the
//! printed form is stable.
//!
//! Secrets are a separate value kind: they serialize to the wire but print (and
//! `Debug`) as `<redacted>`, so a rendered `load-shared` can't leak a PSK into a log
//! or a golden file.

use std::fmt;

use model::Psk;
use serde::ser::{SerializeMap, SerializeSeq};
use serde::{Serialize, Serializer};

/// One value in a section.
#[derive(Clone, PartialEq, Eq)]
pub enum Value {
    /// `key = value`.
    Str(String),
    /// `key = [a, b]`.
    List(Vec<String>),
    /// `key { ... }`.
    Section(Section),
    /// Sent to charon, never printed.
    Secret(Psk),
}

impl fmt::Debug for Value {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Value::Str(s) => write!(f, "{s:?}"),
            Value::List(l) => write!(f, "{l:?}"),
            Value::Section(s) => write!(f, "{s:?}"),
            Value::Secret(_) => f.write_str("<redacted>"),
        }
    }
}

/// An ordered VICI section (also the top level of a message).
#[derive(Clone, PartialEq, Eq, Default)]
pub struct Section {
    entries: Vec<(String, Value)>,
}

impl Section {
    /// An empty section.
    pub fn new() -> Section {
        Section::default()
    }

    /// Appends `key = value`.
    pub fn str(mut self, key: &str, value: impl Into<String>) -> Section {
        self.entries.push((key.to_string(), Value::Str(value.into())));
        self
    }

    /// Appends `key = yes|no`.
    pub fn flag(self, key: &str, value: bool) -> Section {
        self.str(key, if value { "yes" } else { "no" })
    }

    /// Appends a list (even an empty one: VICI distinguishes "no key" from "empty list"
    /// only for a few keys, and none the renderer uses).
    pub fn list<I, S>(mut self, key: &str, items: I) -> Section
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.entries.push((
            key.to_string(),
            Value::List(items.into_iter().map(Into::into).collect()),
        ));
        self
    }

    /// Appends a subsection.
    pub fn section(mut self, key: &str, value: Section) -> Section {
        self.entries.push((key.to_string(), Value::Section(value)));
        self
    }

    /// Appends a secret value (redacted when printed).
    pub fn secret(mut self, key: &str, value: Psk) -> Section {
        self.entries.push((key.to_string(), Value::Secret(value)));
        self
    }

    /// The value of `key`, if present.
    pub fn get(&self, key: &str) -> Option<&Value> {
        self.entries.iter().find(|(k, _)| k == key).map(|(_, v)| v)
    }

    /// The string value of `key`, if present and a string.
    pub fn get_str(&self, key: &str) -> Option<&str> {
        match self.get(key) {
            Some(Value::Str(s)) => Some(s),
            _ => None,
        }
    }

    /// The subsection `key`, if present.
    pub fn get_section(&self, key: &str) -> Option<&Section> {
        match self.get(key) {
            Some(Value::Section(s)) => Some(s),
            _ => None,
        }
    }

    /// The entries, in the order they were appended.
    pub fn entries(&self) -> impl Iterator<Item = (&str, &Value)> {
        self.entries.iter().map(|(k, v)| (k.as_str(), v))
    }

    /// Whether the section has no entry.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    fn write(&self, f: &mut fmt::Formatter<'_>, depth: usize) -> fmt::Result {
        let pad = "  ".repeat(depth);
        for (k, v) in &self.entries {
            match v {
                Value::Str(s) => writeln!(f, "{pad}{k} = {}", quote(s))?,
                Value::List(l) => {
                    let items: Vec<String> = l.iter().map(|s| quote(s)).collect();
                    writeln!(f, "{pad}{k} = {}", items.join(","))?
                }
                Value::Secret(_) => writeln!(f, "{pad}{k} = <redacted>")?,
                Value::Section(s) => {
                    writeln!(f, "{pad}{k} {{")?;
                    s.write(f, depth + 1)?;
                    writeln!(f, "{pad}}}")?;
                }
            }
        }
        Ok(())
    }
}

/// Quotes a value the way `swanctl.conf` needs it when it isn't a bare word.
fn quote(s: &str) -> String {
    let bare = !s.is_empty()
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_.:/@=+*%[]".contains(c));
    if bare {
        s.to_string()
    } else {
        format!("\"{}\"", s.replace('\\', "\\\\").replace('"', "\\\""))
    }
}

/// `swanctl.conf` syntax, secrets redacted: the golden-file and log format.
impl fmt::Display for Section {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.write(f, 0)
    }
}

impl fmt::Debug for Section {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_map()
            .entries(self.entries.iter().map(|(k, v)| (k, v)))
            .finish()
    }
}

impl Serialize for Value {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match self {
            Value::Str(s) => serializer.serialize_str(s),
            Value::Secret(p) => serializer.serialize_str(p.expose()),
            Value::List(l) => {
                let mut seq = serializer.serialize_seq(Some(l.len()))?;
                for item in l {
                    seq.serialize_element(item)?;
                }
                seq.end()
            }
            Value::Section(s) => s.serialize(serializer),
        }
    }
}

impl Serialize for Section {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut map = serializer.serialize_map(Some(self.entries.len()))?;
        for (k, v) in &self.entries {
            map.serialize_entry(k, v)?;
        }
        map.end()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prints_swanctl_syntax_and_redacts_secrets() {
        let s = Section::new()
            .str("type", "IKE")
            .secret("data", Psk("hunter2".into()))
            .list("owners", ["a.test", "b c"])
            .section("sub", Section::new().flag("encap", true));
        let text = s.to_string();
        assert_eq!(
            text,
            "type = IKE\ndata = <redacted>\nowners = a.test,\"b c\"\nsub {\n  encap = yes\n}\n"
        );
        assert!(!format!("{s:?}").contains("hunter2"));
    }

    #[test]
    fn serializes_secrets_to_the_wire() {
        let s = Section::new().secret("data", Psk("hunter2".into()));
        let json = serde_json::to_string(&s).unwrap();
        assert_eq!(json, r#"{"data":"hunter2"}"#);
    }
}
