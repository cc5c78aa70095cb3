//! Neutron's collection query semantics: `fields`, attribute filters, sorting
//! (`sort_key`/`sort_dir`) and marker pagination with `*_links`, emulated over the
//! project's rows as the VPN plugin itself does.

use std::cmp::Ordering;

use serde_json::{Map, Value, json};
use store::page::{Column, Names, PageQuery};

use crate::attrs::{Attr, Conv, to_bool, to_int};
use crate::error::{ApiError, ApiResult};

/// Most items in one list response (Neutron's `pagination_max_limit`).
pub(crate) const MAX_PAGE: usize = 10_000;

/// A parsed collection query.
#[derive(Debug, Default)]
pub(crate) struct Query {
    pub fields: Vec<String>,
    pub filters: Vec<(String, Vec<Value>)>,
    pub sort: Vec<(String, bool)>,
    pub limit: Option<usize>,
    pub marker: Option<String>,
    pub page_reverse: bool,
    /// The original parameters, for building links.
    pub raw: Vec<(String, String)>,
}

/// Splits a raw query string into ordered pairs.
pub(crate) fn pairs(raw: Option<&str>) -> Vec<(String, String)> {
    raw.map(|q| url::form_urlencoded::parse(q.as_bytes()).into_owned().collect())
        .unwrap_or_default()
}

/// Only `fields` (used by member GET).
pub(crate) fn fields_only(raw: &[(String, String)]) -> Vec<String> {
    raw.iter()
        .filter(|(k, v)| k == "fields" && !v.is_empty())
        .map(|(_, v)| v.clone())
        .collect()
}

fn convert_filter(attr: &Attr, v: &str) -> ApiResult<Value> {
    let raw = Value::from(v);
    Ok(match attr.conv {
        Conv::Bool => Value::Bool(
            to_bool(&raw)
                .ok_or_else(|| ApiError::InvalidInput(format!("'{v}' cannot be converted to boolean")))?,
        ),
        Conv::Int => Value::from(
            to_int(&raw).ok_or_else(|| ApiError::InvalidInput(format!("'{v}' is not an integer")))?,
        ),
        _ => raw,
    })
}

/// Parses and checks the query against a resource's attribute map.
/// `aliases` maps extra filter names onto attributes (e.g. `endpoint_type` → `type`).
pub(crate) fn parse(
    raw: Vec<(String, String)>,
    attrs: &[Attr],
    aliases: &[(&str, &str)],
) -> ApiResult<Query> {
    let mut q = Query {
        fields: fields_only(&raw),
        ..Query::default()
    };
    let mut sort_keys = Vec::new();
    let mut sort_dirs = Vec::new();
    let mut invalid = Vec::new();
    for (k, v) in &raw {
        match k.as_str() {
            "fields" => {}
            "sort_key" => sort_keys.push(v.clone()),
            "sort_dir" => sort_dirs.push(v.clone()),
            "limit" => {
                let n = v.trim().parse::<i64>().ok().filter(|n| *n >= 0).ok_or_else(|| {
                    ApiError::BadRequestFor {
                        resource: "limit",
                        msg: format!("Limit must be an integer 0 or greater and not '{v}'"),
                    }
                })?;
                q.limit = if n == 0 { None } else { Some(n as usize) };
            }
            "marker" => q.marker = Some(v.clone()).filter(|m| !m.is_empty()),
            "page_reverse" => q.page_reverse = v.eq_ignore_ascii_case("true"),
            _ => {
                let name = aliases
                    .iter()
                    .find(|(alias, _)| alias == k)
                    .map(|(_, target)| *target)
                    .unwrap_or(k.as_str());
                match attrs.iter().find(|a| a.name == name && a.filter) {
                    None => invalid.push(k.clone()),
                    Some(_) if v.is_empty() => {}
                    Some(attr) => {
                        let value = convert_filter(attr, v)?;
                        match q.filters.iter_mut().find(|(n, _)| n == name) {
                            Some((_, vals)) => vals.push(value),
                            None => q.filters.push((name.to_string(), vec![value])),
                        }
                    }
                }
            }
        }
    }
    if !invalid.is_empty() {
        let list = invalid
            .iter()
            .map(|k| format!("'{k}'"))
            .collect::<Vec<_>>()
            .join(", ");
        return Err(ApiError::BadRequest(format!(
            "[{list}] is invalid attribute for filtering"
        )));
    }
    if sort_keys.len() != sort_dirs.len() {
        return Err(ApiError::BadRequest(
            "The number of sort_keys and sort_dirs must be same".into(),
        ));
    }
    let bad_keys: Vec<&String> = sort_keys
        .iter()
        .filter(|k| !attrs.iter().any(|a| a.name == k.as_str() && a.sort))
        .collect();
    if !bad_keys.is_empty() {
        let list = bad_keys
            .iter()
            .map(|k| format!("'{k}'"))
            .collect::<Vec<_>>()
            .join(", ");
        return Err(ApiError::BadRequest(format!(
            "[{list}] is invalid attribute for sort_keys"
        )));
    }
    let bad_dirs: Vec<&String> = sort_dirs.iter().filter(|d| *d != "asc" && *d != "desc").collect();
    if !bad_dirs.is_empty() {
        let list = bad_dirs
            .iter()
            .map(|k| format!("'{k}'"))
            .collect::<Vec<_>>()
            .join(", ");
        return Err(ApiError::BadRequest(format!(
            "[{list}] is invalid value for sort_dirs, valid value is 'asc' and 'desc'"
        )));
    }
    q.sort = sort_keys
        .into_iter()
        .zip(sort_dirs.into_iter().map(|d| d == "asc"))
        .collect();
    q.raw = raw;
    Ok(q)
}

fn cmp_values(a: Option<&Value>, b: Option<&Value>) -> Ordering {
    fn rank(v: Option<&Value>) -> u8 {
        match v {
            None | Some(Value::Null) => 0,
            _ => 1,
        }
    }
    match (a, b) {
        (Some(Value::String(x)), Some(Value::String(y))) => x.cmp(y),
        (Some(Value::Number(x)), Some(Value::Number(y))) => {
            x.as_f64().partial_cmp(&y.as_f64()).unwrap_or(Ordering::Equal)
        }
        (Some(Value::Bool(x)), Some(Value::Bool(y))) => x.cmp(y),
        _ => rank(a).cmp(&rank(b)),
    }
}

fn matches(item: &Map<String, Value>, name: &str, wanted: &[Value]) -> bool {
    let Some(have) = item.get(name) else { return false };
    wanted.iter().any(|w| match (have, w) {
        (Value::Number(h), Value::Number(w)) => h.as_f64() == w.as_f64(),
        (h, w) => h == w,
    })
}

/// A collection document: `{plural: [...], plural_links: [...]}` (the links
/// only when there are any), serialized straight from its items, typed wire
/// bodies or pruned objects alike.
pub(crate) struct Collection<I> {
    /// The collection's JSON key (`ikepolicies`).
    pub plural: &'static str,
    /// The page, in order: anything that serializes as a sequence.
    pub items: I,
    /// `next` / `previous` links, when paginated.
    pub links: Vec<Value>,
}

impl<I> Collection<I> {
    /// A page and its links under the collection's key.
    pub(crate) fn new(plural: &'static str, items: I, links: Vec<Value>) -> Collection<I> {
        Collection { plural, items, links }
    }
}

impl<I: serde::Serialize> serde::Serialize for Collection<I> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap;
        let mut m = s.serialize_map(Some(if self.links.is_empty() { 1 } else { 2 }))?;
        m.serialize_entry(self.plural, &self.items)?;
        if !self.links.is_empty() {
            m.serialize_entry(&format!("{}_links", self.plural), &self.links)?;
        }
        m.end()
    }
}

/// The page size a query asks for: its `limit`, lowered to Neutron's
/// `pagination_max_limit`; `None` for the whole collection (which still comes
/// in pages of [`MAX_PAGE`] when longer than that).
pub(crate) fn page_limit(q: &Query) -> Option<usize> {
    q.limit.map(|l| l.min(MAX_PAGE))
}

/// The `next` / `previous` links of a page of `len` items cut with `limit`
/// (none without a limit), from the ids of its first and last item.
pub(crate) fn links(
    q: &Query,
    limit: Option<usize>,
    ends: Option<(&str, &str)>,
    len: usize,
    self_url: &str,
) -> Vec<Value> {
    let mut links = Vec::new();
    if let (Some(limit), Some((first, last))) = (limit, ends) {
        let full = len >= limit;
        if full || q.page_reverse {
            links.push(json!({"rel": "next", "href": link(self_url, &q.raw, last, false)}));
        }
        if full || !q.page_reverse {
            links.push(json!({"rel": "previous", "href": link(self_url, &q.raw, first, true)}));
        }
    }
    links
}

/// The metadata column a Neutron attribute is stored in, if any: what the
/// store can filter and sort on in SQL.
fn column(name: &str) -> Option<Column> {
    Some(match name {
        "id" => Column::Id,
        "tenant_id" | "project_id" => Column::ProjectId,
        "name" => Column::Name,
        "description" => Column::Description,
        _ => return None,
    })
}

/// The query as one page read in SQL, when everything it filters and sorts on
/// is a metadata column; `None` sends it down the in-memory path.
pub(crate) fn sql_page(q: &Query) -> Option<PageQuery> {
    let mut filters = Vec::new();
    for (name, values) in &q.filters {
        let values = values
            .iter()
            .map(|v| v.as_str().map(str::to_string))
            .collect::<Option<Vec<_>>>()?;
        filters.push((column(name)?, values));
    }
    let sort = q
        .sort
        .iter()
        .map(|(k, asc)| column(k).map(|c| (c, *asc)))
        .collect::<Option<Vec<_>>>()?;
    Some(PageQuery {
        filters,
        sort,
        // One more than the bound without a limit: whether the collection is
        // longer than a page.
        limit: page_limit(q).unwrap_or(MAX_PAGE + 1),
        marker: q.marker.clone(),
        reverse: q.page_reverse,
        ..PageQuery::default()
    })
}

/// Whether an answer shows metadata columns only (`fields=id&fields=name`):
/// then no body need be decoded.
pub(crate) fn meta_only(fields: &[String]) -> bool {
    !fields.is_empty() && fields.iter().all(|f| column(f).is_some())
}

/// The keys (and their columns) an answer of metadata `fields` shows, in the
/// order [`Picked`] writes them.
pub(crate) fn picked_keys(fields: &[String]) -> Vec<(&'static str, Column)> {
    [
        ("description", Column::Description),
        ("id", Column::Id),
        ("name", Column::Name),
        ("project_id", Column::ProjectId),
        ("tenant_id", Column::ProjectId),
    ]
    .into_iter()
    .filter(|(k, _)| fields.iter().any(|f| f == k))
    .collect()
}

/// The requested metadata fields of one object, as every view renders them,
/// serialized straight from
/// the row: keys in the order a JSON object of them has, each once.
pub(crate) struct Picked<'a> {
    /// The row.
    pub row: &'a Names,
    /// The requested fields (all of them metadata columns, see [`meta_only`]).
    pub fields: &'a [String],
}

impl serde::Serialize for Picked<'_> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap;
        let want = |c: Column| self.fields.iter().any(|f| column(f) == Some(c));
        let asked = |k: &str| self.fields.iter().any(|f| f == k);
        let mut m = s.serialize_map(None)?;
        if want(Column::Description) {
            m.serialize_entry("description", &self.row.description)?;
        }
        if want(Column::Id) {
            m.serialize_entry("id", &self.row.id)?;
        }
        if want(Column::Name) {
            m.serialize_entry("name", &self.row.name)?;
        }
        if asked("project_id") {
            m.serialize_entry("project_id", &self.row.project_id)?;
        }
        if asked("tenant_id") {
            m.serialize_entry("tenant_id", &self.row.project_id)?;
        }
        m.end()
    }
}

/// The in-memory path: applies filters, sorting, pagination and field
/// selection to every rendered object of the collection.
pub(crate) fn render(
    items: Vec<Map<String, Value>>,
    q: &Query,
    plural: &'static str,
    self_url: &str,
) -> Collection<Vec<Map<String, Value>>> {
    let mut items: Vec<Map<String, Value>> = items
        .into_iter()
        .filter(|i| q.filters.iter().all(|(n, w)| matches(i, n, w)))
        .collect();
    if !q.sort.is_empty() {
        items.sort_by(|a, b| {
            for (key, asc) in &q.sort {
                let o = cmp_values(a.get(key), b.get(key));
                let o = if *asc { o } else { o.reverse() };
                if o != Ordering::Equal {
                    return o;
                }
            }
            Ordering::Equal
        });
    }
    let mut links_out = Vec::new();
    // Neutron's `pagination_max_limit`: a larger `limit` is lowered to it, and a
    // collection longer than it comes in pages of it, with a `next` link.
    let limit = match page_limit(q) {
        Some(l) => Some(l),
        None if items.len() > MAX_PAGE => Some(MAX_PAGE),
        None => None,
    };
    if let Some(limit) = limit {
        let pos = q.marker.as_ref().map(|m| {
            items
                .iter()
                .position(|i| i.get("id").and_then(Value::as_str) == Some(m))
        });
        let page: Vec<Map<String, Value>> = match (pos, q.page_reverse) {
            (Some(None), _) => Vec::new(),
            (Some(Some(p)), false) => items.into_iter().skip(p + 1).take(limit).collect(),
            (Some(Some(p)), true) => {
                let start = p.saturating_sub(limit);
                items.into_iter().take(p).skip(start).collect()
            }
            (None, false) => items.into_iter().take(limit).collect(),
            (None, true) => {
                let n = items.len();
                items.into_iter().skip(n.saturating_sub(limit)).collect()
            }
        };
        let id_of = |i: &Map<String, Value>| i.get("id").and_then(Value::as_str).unwrap_or("").to_string();
        let ends = page.first().zip(page.last()).map(|(f, l)| (id_of(f), id_of(l)));
        links_out = links(
            q,
            Some(limit),
            ends.as_ref().map(|(f, l)| (f.as_str(), l.as_str())),
            page.len(),
            self_url,
        );
        items = page;
    }
    Collection {
        plural,
        items: items.into_iter().map(|i| select_fields(i, &q.fields)).collect(),
        links: links_out,
    }
}

/// Keeps only the requested fields (`fields=tenant_id` shows `tenant_id`
/// alone, as Neutron does).
pub(crate) fn select_fields(item: Map<String, Value>, fields: &[String]) -> Map<String, Value> {
    if fields.is_empty() {
        return item;
    }
    item.into_iter()
        .filter(|(k, _)| fields.iter().any(|f| f == k))
        .collect()
}

fn link(self_url: &str, raw: &[(String, String)], marker: &str, previous: bool) -> String {
    let mut ser = url::form_urlencoded::Serializer::new(String::new());
    for (k, v) in raw {
        if k == "marker" || k == "page_reverse" {
            continue;
        }
        ser.append_pair(k, v);
    }
    ser.append_pair("marker", marker);
    if previous {
        ser.append_pair("page_reverse", "True");
    }
    format!("{self_url}?{}", ser.finish())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::attrs::{Attr, Check};

    fn attrs() -> Vec<Attr> {
        vec![
            Attr::new("id").ro().sort(),
            Attr::new("name").sort(),
            Attr::new("mtu").conv(Conv::Int),
            Attr::new("admin_state_up").conv(Conv::Bool).check(Check::Boolean),
            Attr::new("peer_cidrs").no_filter(),
        ]
    }

    fn items() -> Vec<Map<String, Value>> {
        (0..5)
            .map(|i| {
                json!({"id": format!("id{i}"), "name": format!("n{}", 4 - i), "mtu": 1400 + i, "admin_state_up": i % 2 == 0})
                    .as_object()
                    .unwrap()
                    .clone()
            })
            .collect()
    }

    fn run(qs: &str) -> Value {
        let q = parse(pairs(Some(qs)), &attrs(), &[]).unwrap();
        serde_json::to_value(render(items(), &q, "xs", "http://h/v2.0/xs")).unwrap()
    }

    #[test]
    fn filters_sort_fields() {
        let v = run("admin_state_up=True&sort_key=name&sort_dir=asc&fields=id");
        assert_eq!(v["xs"], json!([{"id": "id4"}, {"id": "id2"}, {"id": "id0"}]));
        let v = run("mtu=1401&mtu=1403");
        assert_eq!(v["xs"].as_array().unwrap().len(), 2);
    }

    #[test]
    fn pagination_walks_everything() {
        let v = run("limit=2");
        assert_eq!(v["xs"].as_array().unwrap().len(), 2);
        let next = v["xs_links"][0]["href"].as_str().unwrap().to_string();
        assert!(next.contains("marker=id1"), "{next}");
        let v = run("limit=2&marker=id3");
        assert_eq!(v["xs"], run("marker=id3&limit=2")["xs"]);
        assert_eq!(v["xs"].as_array().unwrap().len(), 1);
        assert!(
            v["xs_links"]
                .as_array()
                .unwrap()
                .iter()
                .all(|l| l["rel"] != "next")
        );
        let v = run("limit=2&marker=id3&page_reverse=True");
        assert_eq!(v["xs"][0]["id"], "id1");
        assert_eq!(run("limit=2&marker=nope")["xs"], json!([]));
    }

    #[test]
    fn bad_queries() {
        let e = |qs: &str| match parse(pairs(Some(qs)), &attrs(), &[]) {
            Err(ApiError::BadRequest(m)) => m,
            Err(ApiError::InvalidInput(m)) => m,
            Err(e @ ApiError::BadRequestFor { .. }) => match e.answer() {
                crate::error::Answer::Neutron { message, .. } => message,
                other => panic!("{other:?}"),
            },
            other => panic!("{other:?}"),
        };
        assert_eq!(
            e("limit=-1"),
            "Bad limit request: Limit must be an integer 0 or greater and not '-1'."
        );
        assert_eq!(
            e("peer_cidrs=x"),
            "['peer_cidrs'] is invalid attribute for filtering"
        );
        assert_eq!(
            e("sort_key=mtu&sort_dir=asc"),
            "['mtu'] is invalid attribute for sort_keys"
        );
        assert_eq!(
            e("sort_key=name&sort_dir=up"),
            "['up'] is invalid value for sort_dirs, valid value is 'asc' and 'desc'"
        );
        assert_eq!(
            e("sort_key=name"),
            "The number of sort_keys and sort_dirs must be same"
        );
        assert_eq!(e("mtu=abc"), "'abc' is not an integer");
    }

    #[test]
    fn pages_are_bounded_by_the_max_page() {
        let many: Vec<Map<String, Value>> = (0..MAX_PAGE + 5)
            .map(|i| {
                let mut m = Map::new();
                m.insert("id".into(), json!(format!("id{i:06}")));
                m
            })
            .collect();
        let q = parse(pairs(Some("")), &attrs(), &[]).unwrap();
        let v = serde_json::to_value(render(many.clone(), &q, "xs", "http://h/v2.0/xs")).unwrap();
        assert_eq!(v["xs"].as_array().unwrap().len(), MAX_PAGE);
        let next = v["xs_links"][0]["href"].as_str().unwrap();
        assert!(next.contains(&format!("marker=id{:06}", MAX_PAGE - 1)), "{next}");
        let q = parse(pairs(Some("limit=50000")), &attrs(), &[]).unwrap();
        let v = serde_json::to_value(render(many.clone(), &q, "xs", "http://h/v2.0/xs")).unwrap();
        assert_eq!(v["xs"].as_array().unwrap().len(), MAX_PAGE);
        // A collection within the bound comes whole, without links, as before.
        let v = serde_json::to_value(render(
            many[..10].to_vec(),
            &parse(pairs(None), &attrs(), &[]).unwrap(),
            "xs",
            "u",
        ))
        .unwrap();
        assert_eq!(v["xs"].as_array().unwrap().len(), 10);
        assert!(v.get("xs_links").is_none());
    }
}
