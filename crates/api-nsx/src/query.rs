//! NSX list semantics: the `ListResult` envelope (`results`, `result_count`,
//! `cursor`, `sort_by`, `sort_ascending`) with `cursor`, `page_size`,
//! `included_fields`, `sort_by` and `sort_ascending`, plus per-resource filters.
//!
//! The cursor is the offset of the next page as a decimal number (never starting
//! with "0000", which vmware-nsxlib reads as "no more pages"); the last page has
//! no cursor. `result_count` counts every match, not just the page.

use std::cmp::Ordering;

use serde_json::{Value, json};

use crate::error::{NsxError, NsxResult};
use crate::wire::Obj;

/// NSX's default and largest page.
pub const MAX_PAGE: usize = 1000;

/// A parsed list query.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListQuery {
    /// Where the page starts (from `cursor`; 0 without one).
    pub offset: usize,
    /// Objects per page (`page_size`; 0 or absent: [`MAX_PAGE`]).
    pub page_size: usize,
    /// Only these fields of each object (`included_fields`, comma-separated).
    pub included_fields: Option<Vec<String>>,
    /// The field to sort by (`sort_by`); absent: creation order.
    pub sort_by: Option<String>,
    /// Sort order (`sort_ascending`, default true).
    pub sort_ascending: bool,
    /// `action`, which a show (`show-sensitive-data`) takes.
    pub action: Option<String>,
    /// Filters this resource supports, as given.
    pub filters: Vec<(String, String)>,
}

/// Parses the query string; `filters` names the resource's filter parameters.
pub fn parse(raw: Option<&str>, filters: &[&str]) -> NsxResult<ListQuery> {
    let mut q = ListQuery {
        offset: 0,
        page_size: MAX_PAGE,
        included_fields: None,
        sort_by: None,
        sort_ascending: true,
        action: None,
        filters: Vec::new(),
    };
    let pairs = raw
        .map(|r| {
            url::form_urlencoded::parse(r.as_bytes())
                .into_owned()
                .collect::<Vec<_>>()
        })
        .unwrap_or_default();
    for (k, v) in pairs {
        match k.as_str() {
            "cursor" if !v.is_empty() => {
                q.offset = v
                    .parse()
                    .map_err(|_| NsxError::field("cursor", format!("invalid cursor {v}")))?;
            }
            "page_size" => {
                let n: usize = v.parse().ok().filter(|n| *n <= MAX_PAGE).ok_or_else(|| {
                    NsxError::field("page_size", format!("must be an integer from 0 to {MAX_PAGE}"))
                })?;
                q.page_size = if n == 0 { MAX_PAGE } else { n };
            }
            "included_fields" => {
                let f: Vec<String> = v
                    .split(',')
                    .map(str::trim)
                    .filter(|s| !s.is_empty())
                    .map(str::to_string)
                    .collect();
                if !f.is_empty() {
                    q.included_fields = Some(f);
                }
            }
            "sort_by" if !v.is_empty() => q.sort_by = Some(v),
            "sort_ascending" => {
                q.sort_ascending = match v.to_ascii_lowercase().as_str() {
                    "true" => true,
                    "false" => false,
                    _ => return Err(NsxError::field("sort_ascending", "must be true or false")),
                }
            }
            "action" => q.action = Some(v),
            k if filters.contains(&k) => q.filters.push((k.to_string(), v)),
            // NSX ignores parameters it does not know (e.g. `force` on GET).
            _ => {}
        }
    }
    Ok(q)
}

fn compare(a: Option<&Value>, b: Option<&Value>) -> Ordering {
    match (a, b) {
        (None, None) => Ordering::Equal,
        (None, Some(_)) => Ordering::Greater,
        (Some(_), None) => Ordering::Less,
        (Some(x), Some(y)) => match (x, y) {
            (Value::Number(m), Value::Number(n)) => {
                m.as_f64().partial_cmp(&n.as_f64()).unwrap_or(Ordering::Equal)
            }
            (Value::String(m), Value::String(n)) => m.cmp(n),
            (Value::Bool(m), Value::Bool(n)) => m.cmp(n),
            _ => x.to_string().cmp(&y.to_string()),
        },
    }
}

/// Sorts, pages and projects rendered objects into the `ListResult` envelope.
pub fn render(mut items: Vec<Obj>, q: &ListQuery) -> Value {
    if let Some(key) = &q.sort_by {
        // Stable: equal keys keep creation order. Missing values sort last.
        items.sort_by(|a, b| {
            let o = compare(a.get(key), b.get(key));
            if q.sort_ascending { o } else { o.reverse() }
        });
    } else if !q.sort_ascending {
        items.reverse();
    }
    let total = items.len();
    let end = q.offset.saturating_add(q.page_size).min(total);
    let page: Vec<Value> = items
        .into_iter()
        .skip(q.offset)
        .take(q.page_size)
        .map(|o| match &q.included_fields {
            Some(f) => Value::Object(o.into_iter().filter(|(k, _)| f.contains(k)).collect()),
            None => Value::Object(o),
        })
        .collect();
    let mut out = json!({
        "results": page,
        "result_count": total,
        "sort_ascending": q.sort_ascending,
    });
    if let Some(s) = &q.sort_by {
        out["sort_by"] = json!(s);
    }
    if end < total {
        out["cursor"] = json!(end.to_string());
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn items(n: usize) -> Vec<Obj> {
        (0..n)
            .map(
                |i| match json!({"id": format!("id{i}"), "n": (n - i), "x": "y"}) {
                    Value::Object(o) => o,
                    _ => unreachable!(),
                },
            )
            .collect()
    }

    #[test]
    fn pages_with_cursor() {
        let q = parse(Some("page_size=2"), &[]).unwrap();
        let v = render(items(5), &q);
        assert_eq!(v["result_count"], 5);
        assert_eq!(v["results"].as_array().unwrap().len(), 2);
        assert_eq!(v["cursor"], "2");
        let q = parse(Some("page_size=2&cursor=4"), &[]).unwrap();
        let v = render(items(5), &q);
        assert_eq!(v["results"][0]["id"], "id4");
        assert!(v.get("cursor").is_none());
        assert!(parse(Some("page_size=abc"), &[]).is_err());
        assert!(parse(Some("page_size=1001"), &[]).is_err());
        assert!(parse(Some("cursor=-1"), &[]).is_err());
        assert!(parse(Some("sort_ascending=maybe"), &[]).is_err());
    }

    #[test]
    fn sorts_and_projects() {
        let q = parse(Some("sort_by=n&included_fields=id,n"), &["x"]).unwrap();
        let v = render(items(3), &q);
        assert_eq!(v["results"][0], json!({"id": "id2", "n": 1}));
        assert_eq!(v["sort_by"], "n");
        let q = parse(Some("sort_by=n&sort_ascending=false"), &[]).unwrap();
        let v = render(items(3), &q);
        assert_eq!(v["results"][0]["id"], "id0");
        let q = parse(Some("logical_router_id=r&other=1"), &["logical_router_id"]).unwrap();
        assert_eq!(
            q.filters,
            vec![("logical_router_id".to_string(), "r".to_string())]
        );
    }
}
