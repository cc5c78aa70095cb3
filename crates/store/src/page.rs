//! One page of a kind, read in SQL: filters, order, keyset pagination and the
//! marker all resolved by the database, so a `limit=100` list reads 100 rows
//! whatever the size of the table.
//!
//! Why keyset and not `OFFSET`: a marker names the last row of the previous
//! page (Neutron's `marker`), and the next page is "the rows after it in the
//! sort order". The database finds it through the `(kind, project_id,
//! created_at, id)` index (migration 0004) instead of counting rows from the
//! start; the marker's own sort values are read by a sub-select in the same
//! statement, so a page is one query.
//!
//! Order: the caller's sort keys first, then `created_at, id` ascending as the
//! tie-breaker (the order a list without sort keys has, oldest first), so the
//! order is total and a walk through the pages sees every row once. Text is
//! compared bytewise (SQLite's `BINARY`, PostgreSQL `COLLATE "C"`), the same
//! as the in-memory path that sorts on rendered values.
//!
//! Only what lives in columns can be filtered or sorted here ([`Column`]);
//! callers filter on anything else in memory, over the whole collection.

use model::{Kind, Record, Result};

use crate::backend::Db;
use crate::{Body, Cipher, SELECT_RESOURCE, Scope, db_err, decode_row};

/// The metadata columns a page can be filtered and sorted on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Column {
    /// The object id.
    Id,
    /// The owning project.
    ProjectId,
    /// The free-form name.
    Name,
    /// The free-form description.
    Description,
    /// Creation time (epoch ms).
    CreatedAt,
    /// The name, or the id when the name is empty (NSX's `display_name`).
    DisplayName,
}

impl Column {
    fn sql(self) -> &'static str {
        match self {
            Column::Id => "id",
            Column::ProjectId => "project_id",
            Column::Name => "name",
            Column::Description => "description",
            Column::CreatedAt => "created_at",
            Column::DisplayName => "(CASE WHEN name = '' THEN id ELSE name END)",
        }
    }

    fn is_text(self) -> bool {
        self != Column::CreatedAt
    }
}

/// What page to read.
#[derive(Debug, Clone, Default)]
pub struct PageQuery {
    /// Rows whose column equals one of the values (all filters must hold).
    pub filters: Vec<(Column, Vec<String>)>,
    /// Sort keys, `true` = ascending; `created_at, id` ascending follow.
    pub sort: Vec<(Column, bool)>,
    /// Most rows returned.
    pub limit: usize,
    /// The id of the row the page starts after (before, with `reverse`). A
    /// marker that names no row visible in the scope gives an empty page.
    pub marker: Option<String>,
    /// The page before the marker (the last `limit` rows without one); its
    /// rows still come in the sort order.
    pub reverse: bool,
    /// Rows whose references reach each of these objects (all must hold).
    pub refers: Vec<Refers>,
    /// Rows skipped before the page, without a marker (NSX's cursor of a
    /// page whose last row has since gone).
    pub offset: usize,
}

/// "References `target`, of kind `target_kind`": directly, or through an
/// object of kind `via` that does (a session's service's router).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refers {
    /// The referenced object's id.
    pub target: String,
    /// Its kind: an id of another kind matches nothing.
    pub target_kind: Kind,
    /// The kind of the object in between, for a reference two hops away.
    pub via: Option<Kind>,
}

/// Binds `v` as the next placeholder.
fn bind(v: &str, binds: &mut Vec<String>) -> String {
    binds.push(v.to_string());
    format!("${}", binds.len())
}

/// `COLLATE "C"` on PostgreSQL text (bytewise order, as SQLite's `BINARY`).
fn collate(c: Column, postgres: bool) -> &'static str {
    if postgres && c.is_text() {
        " COLLATE \"C\""
    } else {
        ""
    }
}

/// The conditions every row of the page (and of its count) meets, after
/// `kind = $1`: scope, column filters and references.
fn conditions(scope_sql: &str, q: &PageQuery, binds: &mut Vec<String>) -> String {
    let mut conds = format!("kind = $1{scope_sql}");
    for (c, values) in &q.filters {
        if values.is_empty() {
            continue;
        }
        let ph: Vec<String> = values.iter().map(|v| bind(v, binds)).collect();
        conds.push_str(&format!(" AND {} IN ({})", c.sql(), ph.join(", ")));
    }
    for r in &q.refers {
        // From the target back to the rows (`resource_refs_dst`), so a
        // selective filter reads only the rows that match.
        let t = bind(&r.target, binds);
        let tk = bind(r.target_kind.as_str(), binds);
        let sub = match r.via {
            None => format!(
                "SELECT r1.src_id FROM resource_refs r1 JOIN resources t ON t.id = r1.dst_id \
                 WHERE r1.dst_id = {t} AND t.kind = {tk}"
            ),
            Some(via) => {
                let v = bind(via.as_str(), binds);
                format!(
                    "SELECT r1.src_id FROM resource_refs r2 JOIN resources t ON t.id = r2.dst_id \
                     JOIN resources v ON v.id = r2.src_id JOIN resource_refs r1 ON r1.dst_id = r2.src_id \
                     WHERE r2.dst_id = {t} AND t.kind = {tk} AND v.kind = {v}"
                )
            }
        };
        conds.push_str(&format!(" AND id IN ({sub})"));
    }
    conds
}

/// The scope condition (` AND project_id = $n`, or nothing).
fn scope_condition(scope: &Scope, binds: &mut Vec<String>) -> String {
    match scope {
        Scope::Project(p) => format!(" AND project_id = {}", bind(p, binds)),
        Scope::All => String::new(),
    }
}

/// The statement and its bound text values (`$1` is the kind).
fn statement(
    select: &str,
    kind: Kind,
    scope: &Scope,
    q: &PageQuery,
    postgres: bool,
) -> (String, Vec<String>) {
    let mut binds = vec![kind.as_str().to_string()];
    let collate = |c: Column| collate(c, postgres);
    let mut keys: Vec<(Column, bool)> = q.sort.clone();
    keys.push((Column::CreatedAt, true));
    keys.push((Column::Id, true));
    // The direction each key is walked in: reversed for a page before the marker.
    let keys: Vec<(Column, bool)> = keys.into_iter().map(|(c, asc)| (c, asc != q.reverse)).collect();

    let scope_sql = scope_condition(scope, &mut binds);
    let mut sql = String::new();
    let mut marker_conds = String::new();
    if let Some(marker) = &q.marker {
        let cols: Vec<String> = keys
            .iter()
            .enumerate()
            .map(|(i, (c, _))| format!("{} AS m{i}", c.sql()))
            .collect();
        let m = bind(marker, &mut binds);
        sql.push_str(&format!(
            "WITH m AS (SELECT {} FROM resources WHERE id = {m} AND kind = $1{scope_sql}) ",
            cols.join(", ")
        ));
        // (k0 > m0) OR (k0 = m0 AND k1 > m1) OR ...: "after the marker" in a
        // mixed-direction order, which a row-value comparison can't say.
        let ors: Vec<String> = (0..keys.len())
            .map(|i| {
                let mut ands: Vec<String> = (0..i).map(|j| format!("{} = m.m{j}", keys[j].0.sql())).collect();
                let (c, asc) = keys[i];
                let op = if asc { ">" } else { "<" };
                ands.push(format!("{}{} {op} m.m{i}{}", c.sql(), collate(c), collate(c)));
                format!("({})", ands.join(" AND "))
            })
            .collect();
        // The same bound on the first key alone, which an index can seek to
        // (the OR form alone makes SQLite walk the index from its start).
        let (c0, asc0) = keys[0];
        let op0 = if asc0 { ">=" } else { "<=" };
        marker_conds = format!(
            " AND {}{} {op0} m.m0{} AND ({})",
            c0.sql(),
            collate(c0),
            collate(c0),
            ors.join(" OR ")
        );
    }
    let conds = conditions(&scope_sql, q, &mut binds) + &marker_conds;
    let order: Vec<String> = keys
        .iter()
        .map(|(c, asc)| format!("{}{} {}", c.sql(), collate(*c), if *asc { "ASC" } else { "DESC" }))
        .collect();
    let from = if q.marker.is_some() {
        "resources, m"
    } else {
        "resources"
    };
    // `select` is `SELECT <columns> FROM resources`: keep its columns, use our FROM.
    let columns = select
        .strip_suffix(" FROM resources")
        .expect("a SELECT ... FROM resources statement");
    sql.push_str(&format!(
        "{columns} FROM {from} WHERE {conds} ORDER BY {} LIMIT {}",
        order.join(", "),
        q.limit
    ));
    if q.marker.is_none() && q.offset > 0 {
        sql.push_str(&format!(" OFFSET {}", q.offset));
    }
    (sql, binds)
}

/// How many rows of the kind meet the page's filters (marker, limit and
/// offset aside): NSX's `result_count`.
pub(crate) async fn count_with<'e, E>(exec: E, kind: Kind, scope: &Scope, q: &PageQuery) -> Result<u64>
where
    E: sqlx::Executor<'e, Database = Db>,
{
    let mut binds = vec![kind.as_str().to_string()];
    let scope_sql = scope_condition(scope, &mut binds);
    let conds = conditions(&scope_sql, q, &mut binds);
    let sql = format!("SELECT COUNT(*) FROM resources WHERE {conds}");
    let mut query = sqlx::query_scalar::<_, i64>(&sql);
    for b in &binds {
        query = query.bind(b);
    }
    let n = query.fetch_one(exec).await.map_err(db_err("count rows"))?;
    Ok(n.max(0) as u64)
}

/// Runs the statement and decodes each row as it arrives, so a row's text is
/// dropped as soon as it is decoded (a page never holds its rows twice).
async fn fetch<'e, E, O>(
    exec: E,
    sql: &str,
    binds: &[String],
    decode: impl Fn(&crate::backend::Row) -> Result<O>,
) -> Result<Vec<O>>
where
    E: sqlx::Executor<'e, Database = Db>,
{
    use futures::TryStreamExt;
    let mut query = sqlx::query(sql);
    for b in binds {
        query = query.bind(b);
    }
    let mut rows = query.fetch(exec);
    let mut out = Vec::new();
    while let Some(row) = rows.try_next().await.map_err(db_err("read page"))? {
        out.push(decode(&row)?);
    }
    Ok(out)
}

/// One page of records, through any executor.
pub(crate) async fn page_with<'e, T: Body, E>(
    exec: E,
    cipher: &Cipher,
    scope: &Scope,
    q: &PageQuery,
    postgres: bool,
) -> Result<Vec<Record<T>>>
where
    E: sqlx::Executor<'e, Database = Db>,
{
    let (sql, binds) = statement(SELECT_RESOURCE, T::KIND, scope, q, postgres);
    let mut out: Vec<Record<T>> = fetch(exec, &sql, &binds, |r| decode_row(r, cipher)).await?;
    if q.reverse {
        out.reverse();
    }
    Ok(out)
}

/// The columns of a [`Names`] row.
const SELECT_NAMES: &str = "SELECT id, project_id, name, description FROM resources";

/// What names an object, the columns an answer like `fields=id&fields=name`
/// shows: read without the body, which is neither decoded nor decrypted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Names {
    /// The object id.
    pub id: String,
    /// The owning project.
    pub project_id: String,
    /// The free-form name.
    pub name: String,
    /// The free-form description.
    pub description: String,
}

/// One page of [`Names`] only.
pub(crate) async fn page_names_with<'e, E>(
    exec: E,
    kind: Kind,
    scope: &Scope,
    q: &PageQuery,
    postgres: bool,
) -> Result<Vec<Names>>
where
    E: sqlx::Executor<'e, Database = Db>,
{
    use sqlx::Row;
    let (sql, binds) = statement(SELECT_NAMES, kind, scope, q, postgres);
    let mut out: Vec<Names> = fetch(exec, &sql, &binds, |r| {
        Ok(Names {
            id: r.get(0),
            project_id: r.get(1),
            name: r.get(2),
            description: r.get(3),
        })
    })
    .await?;
    if q.reverse {
        out.reverse();
    }
    Ok(out)
}

/// A page of [`Names`] fields as one JSON array the database built, and how
/// many objects it holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NamesJson {
    /// `[{"id": ..., "name": ...}, ...]`, in the page's order.
    pub json: String,
    /// Objects in `json`.
    pub len: usize,
}

/// The text of a JSON key: letters, digits and `_` only (keys are the API's
/// attribute names, written into the statement).
fn is_plain_key(k: &str) -> bool {
    !k.is_empty() && k.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
}

/// One page of metadata columns as a JSON array of objects, each with
/// `keys` (a key and the column it shows), built in SQL: one row crosses from
/// the database whatever the page's length, where [`page_names_with`] moves
/// (and allocates) every row. The objects come in the page's order (the
/// aggregate's `ORDER BY`; SQLite 3.44 or later).
pub(crate) async fn page_names_json_with<'e, E>(
    exec: E,
    kind: Kind,
    scope: &Scope,
    q: &PageQuery,
    keys: &[(&str, Column)],
    postgres: bool,
) -> Result<NamesJson>
where
    E: sqlx::Executor<'e, Database = Db>,
{
    use sqlx::Row;
    assert!(
        keys.iter().all(|(k, _)| is_plain_key(k)),
        "JSON keys are attribute names"
    );
    let (inner, binds) = statement(SELECT_JSON_COLUMNS, kind, scope, q, postgres);
    let mut order: Vec<(Column, bool)> = q.sort.clone();
    order.push((Column::CreatedAt, true));
    order.push((Column::Id, true));
    let order: Vec<String> = order
        .iter()
        .map(|(c, asc)| {
            format!(
                "{}{} {}",
                c.sql(),
                collate(*c, postgres),
                if *asc { "ASC" } else { "DESC" }
            )
        })
        .collect();
    let pairs: Vec<String> = keys.iter().map(|(k, c)| format!("'{k}', {}", c.sql())).collect();
    let agg = if postgres {
        format!(
            "COALESCE(json_agg(json_build_object({}) ORDER BY {})::text, '[]')",
            pairs.join(", "),
            order.join(", ")
        )
    } else {
        format!(
            "json_group_array(json_object({}) ORDER BY {})",
            pairs.join(", "),
            order.join(", ")
        )
    };
    let sql = format!("SELECT {agg}, COUNT(*) FROM ({inner}) p");
    let mut query = sqlx::query(&sql);
    for b in &binds {
        query = query.bind(b);
    }
    let row = query.fetch_one(exec).await.map_err(db_err("read page as JSON"))?;
    let json: Option<String> = row.try_get(0).map_err(db_err("read page as JSON"))?;
    let len: i64 = row.try_get(1).map_err(db_err("read page as JSON"))?;
    Ok(NamesJson {
        json: json.unwrap_or_else(|| "[]".into()),
        len: len.max(0) as usize,
    })
}

/// The columns a JSON page may show (and sort on).
const SELECT_JSON_COLUMNS: &str = "SELECT id, project_id, name, description, created_at FROM resources";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statements_name_the_marker_once_and_bind_everything() {
        let q = PageQuery {
            filters: vec![(Column::Name, vec!["a".into(), "b'; --".into()])],
            sort: vec![(Column::Name, false)],
            limit: 10,
            marker: Some("m-id".into()),
            reverse: false,
            ..Default::default()
        };
        let (sql, binds) = statement(
            SELECT_NAMES,
            Kind::IkePolicy,
            &Scope::Project("p".into()),
            &q,
            true,
        );
        assert_eq!(binds, ["ike_policy", "p", "m-id", "a", "b'; --"]);
        assert!(sql.contains("WITH m AS (SELECT name AS m0, created_at AS m1, id AS m2 FROM resources WHERE id = $3 AND kind = $1 AND project_id = $2)"), "{sql}");
        assert!(sql.contains("(name COLLATE \"C\" < m.m0 COLLATE \"C\")"), "{sql}");
        assert!(sql.contains("(name = m.m0 AND created_at > m.m1)"), "{sql}");
        assert!(
            sql.ends_with("ORDER BY name COLLATE \"C\" DESC, created_at ASC, id COLLATE \"C\" ASC LIMIT 10"),
            "{sql}"
        );
        let (sql, _) = statement(
            SELECT_NAMES,
            Kind::IkePolicy,
            &Scope::All,
            &PageQuery {
                limit: 5,
                reverse: true,
                ..Default::default()
            },
            false,
        );
        assert!(
            sql.ends_with("WHERE kind = $1 ORDER BY created_at DESC, id DESC LIMIT 5"),
            "{sql}"
        );
    }
}
