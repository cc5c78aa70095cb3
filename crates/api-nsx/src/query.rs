//! NSX list semantics: the `ListResult` envelope (`results`, `result_count`,
//! `cursor`, `sort_by`, `sort_ascending`) with `cursor`, `page_size`,
//! `included_fields`, `sort_by` and `sort_ascending`, plus per-resource filters.
//!
//! The cursor names where the next page starts: `<offset>-<id>`, the number
//! of rows before it and the id of the last row shown (never starting with
//! "0000", which vmware-nsxlib reads as "no more pages"); the last page has no
//! cursor. A list whose order and filters the database can evaluate
//! ([`sql_page`]) reads only the page, after that id (keyset), so a walk is
//! stable under inserts and costs the page, not the table; when the row has
//! gone in between, the offset places the page. Any other list is sorted and
//! paged here, over every match, at the offset. `result_count` counts every
//! match, not just the page (in SQL: `COUNT(*)` under the same conditions).

use std::cmp::Ordering;

use model::Kind;
use serde_json::{Value, json};
use store::page::{Column, PageQuery, Refers};

use crate::error::{NsxError, NsxResult};
use crate::wire::Obj;

/// NSX's default and largest page.
pub const MAX_PAGE: usize = 1000;

/// A parsed list query.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListQuery {
    /// Where the page starts (from `cursor`; 0 without one).
    pub offset: usize,
    /// The id of the last row of the previous page (from `cursor`).
    pub after: Option<String>,
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
        after: None,
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
                let (offset, after) = match v.split_once('-') {
                    Some((n, id)) if !id.is_empty() => (n, Some(id.to_string())),
                    Some(_) => (v.as_str(), None),
                    None => (v.as_str(), None),
                };
                q.offset = offset
                    .parse()
                    .map_err(|_| NsxError::field("cursor", format!("invalid cursor {v}")))?;
                q.after = after;
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

/// The column a `sort_by` names, when it is one ([`sql_page`]).
fn sort_column(field: &str) -> Option<Column> {
    match field {
        "id" => Some(Column::Id),
        "display_name" => Some(Column::DisplayName),
        "_create_time" => Some(Column::CreatedAt),
        _ => None,
    }
}

/// The page of `kind` that `q` asks for, as SQL can read it: `None` when its
/// order or a filter needs the rendered objects (then [`render`] pages them).
///
/// Filters become reference conditions: `ipsec_vpn_service_id` is a reference
/// to that service; `logical_router_id` one to that gateway, directly (a
/// service) or through the service (local endpoints, sessions).
pub fn sql_page(kind: Kind, q: &ListQuery) -> Option<PageQuery> {
    let sort = match &q.sort_by {
        Some(f) => vec![(sort_column(f)?, q.sort_ascending)],
        None if q.sort_ascending => Vec::new(),
        // Creation order backwards, ties included.
        None => vec![(Column::CreatedAt, false), (Column::Id, false)],
    };
    let mut refers = Vec::new();
    for (k, v) in &q.filters {
        refers.push(match k.as_str() {
            "ipsec_vpn_service_id" => Refers {
                target: v.clone(),
                target_kind: Kind::VpnService,
                via: None,
            },
            "logical_router_id" => Refers {
                target: v.clone(),
                target_kind: Kind::Gateway,
                via: (kind != Kind::VpnService).then_some(Kind::VpnService),
            },
            _ => return None,
        });
    }
    Some(PageQuery {
        sort,
        refers,
        // One more than the page: whether another follows.
        limit: q.page_size + 1,
        marker: q.after.clone(),
        offset: q.offset,
        ..PageQuery::default()
    })
}

/// The cursor of the page after `shown` rows from `offset`, the last one `last_id`.
pub fn next_cursor(offset: usize, shown: usize, last_id: &str) -> String {
    format!("{}-{last_id}", offset + shown)
}

/// The `ListResult` envelope of one page: `page` projected onto the
/// included fields, `total` matches, `cursor` when more follow.
pub fn envelope(page: Vec<Obj>, total: usize, cursor: Option<String>, q: &ListQuery) -> Value {
    let page: Vec<Value> = page
        .into_iter()
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
    if let Some(c) = cursor {
        out["cursor"] = json!(c);
    }
    out
}

/// Sorts, pages and projects rendered objects (every match) into the
/// `ListResult` envelope, the page starting at the cursor's offset.
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
    let page: Vec<Obj> = items.into_iter().skip(q.offset).take(q.page_size).collect();
    let end = q.offset.saturating_add(page.len());
    let cursor = match page.last() {
        Some(last) if end < total => Some(next_cursor(
            q.offset,
            page.len(),
            last.get("id").and_then(Value::as_str).unwrap_or_default(),
        )),
        _ => None,
    };
    envelope(page, total, cursor, q)
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
        assert_eq!(v["cursor"], "2-id1");
        let q = parse(Some("page_size=2&cursor=2-id1"), &[]).unwrap();
        assert_eq!((q.offset, q.after.as_deref()), (2, Some("id1")));
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
