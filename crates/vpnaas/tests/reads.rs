//! What a read costs the database: the SQL statements a Neutron or NSX `show`
//! and a Neutron list issue, counted from sqlx's own statement log
//! (`sqlx::query` events), as the database grows.
//!
//! The property: a `show` reads the object and what it references by key, so
//! its statements and the rows they return do not change when other
//! services, gateways and nodes are added; a list issues the same number of
//! statements however many rows it renders, and a page (`limit`) reads its
//! rows only. A whole-table read of services,
//! gateways or node states would grow with every site added below.
//!
//! A test binary of its own, with one test: the statement log is
//! process-global, and nothing else may run while it records.

#[allow(dead_code)]
#[path = "composed/harness.rs"]
mod harness;

use axum::http::Method;
use harness::{CONN, SimNode, Site, TestServer, VPN};
use store::testing::statements::{self, Statement, record};

fn rows(log: &[Statement]) -> u64 {
    log.iter().map(|s| s.rows).sum()
}

/// A statement that reads every row of a kind, every node or every
/// gateway's generation.
fn whole_table(s: &Statement) -> bool {
    let sql = s.sql.split_whitespace().collect::<Vec<_>>().join(" ");
    sql.contains("WHERE kind = $1 ORDER BY")
        || (sql.contains("FROM nodes n LEFT JOIN node_status") && !sql.contains("WHERE"))
        || (sql.contains("FROM gateway_generations") && !sql.contains("WHERE"))
}

/// Adds sites `from..to`, each with two nodes that report its connection up.
async fn grow(s: &TestServer, from: u8, to: u8) -> Vec<Site> {
    let mut sites = Vec::new();
    for i in from..to {
        let site = s.site(&format!("s{i}"), i).await;
        for n in 0..2 {
            let node: SimNode = s.node(&format!("s{i}-n{n}"), &site.gateway.id).await;
            s.sync(&node, &[&site.conn]).await;
        }
        sites.push(site);
    }
    sites
}

/// What each read costs at one database size.
struct Costs {
    show: Vec<Statement>,
    nsx_show: Vec<Statement>,
    list_fields: Vec<Statement>,
    list: Vec<Statement>,
    list_page: Vec<Statement>,
}

async fn costs(s: &TestServer, conn: &str, n: usize) -> Costs {
    let show_path = format!("{CONN}/{conn}");
    let nsx_path = format!("{VPN}/sessions/{conn}");
    // Warm up whatever authentication caches, so both sizes see the same.
    s.neutron(Method::GET, &show_path, None).await.expect(200);
    s.nsx(Method::GET, &nsx_path, None).await.expect(200);
    let show = record(async {
        let c = s.neutron(Method::GET, &show_path, None).await.expect(200);
        assert_eq!(c["ipsec_site_connection"]["status"], "ACTIVE", "{c}");
    })
    .await;
    let nsx_show = record(async {
        let v = s.nsx(Method::GET, &nsx_path, None).await.expect(200);
        assert_eq!(v["policy_rules"][0]["sources"][0]["subnet"], "10.1.0.0/24", "{v}");
    })
    .await;
    let list_fields = record(async {
        let v = s
            .neutron(Method::GET, &format!("{CONN}?fields=id&fields=name"), None)
            .await
            .expect(200);
        assert_eq!(v["ipsec_site_connections"].as_array().unwrap().len(), n);
    })
    .await;
    let list = record(async {
        let v = s.neutron(Method::GET, CONN, None).await.expect(200);
        let all = v["ipsec_site_connections"].as_array().unwrap();
        assert_eq!(all.len(), n);
        assert!(all.iter().all(|c| c["status"] == "ACTIVE"), "{v}");
    })
    .await;
    let list_page = record(async {
        let v = s
            .neutron(Method::GET, &format!("{CONN}?limit=2"), None)
            .await
            .expect(200);
        let page = v["ipsec_site_connections"].as_array().unwrap();
        assert_eq!(page.len(), 2);
        assert!(page.iter().all(|c| c["status"] == "ACTIVE"), "{v}");
    })
    .await;
    Costs {
        show,
        nsx_show,
        list_fields,
        list,
        list_page,
    }
}

#[tokio::test]
async fn reads_are_bounded_by_what_they_render() {
    statements::install();
    let s = TestServer::new().await;
    let first = grow(&s, 1, 3).await;
    let small = costs(&s, &first[0].conn, 2).await;
    grow(&s, 3, 9).await;
    let large = costs(&s, &first[0].conn, 8).await;

    for (what, log) in [
        ("show", &large.show),
        ("NSX show", &large.nsx_show),
        ("list fields=id,name", &large.list_fields),
        ("list", &large.list),
    ] {
        let scans: Vec<&Statement> = log.iter().filter(|s| whole_table(s)).collect();
        // A list reads its own kind whole (it shows every row; names only: as
        // one JSON row the database builds); nothing else.
        let json = |s: &Statement| s.sql.contains("json_group_array") || s.sql.contains("json_agg");
        let own = |s: &&Statement| {
            what.starts_with("list")
                && s.sql.contains("FROM resources")
                && (s.rows == 8 || (s.rows == 1 && json(s)))
        };
        let others: Vec<&&Statement> = scans.iter().filter(|s| !own(s)).collect();
        assert!(others.is_empty(), "{what} reads whole tables: {others:#?}");
    }
    // A show costs the same with 3× the services, gateways and nodes.
    assert_eq!(small.show.len(), large.show.len(), "{:#?}", large.show);
    assert_eq!(rows(&small.show), rows(&large.show), "{:#?}", large.show);
    assert_eq!(
        small.nsx_show.len(),
        large.nsx_show.len(),
        "{:#?}\n{:#?}",
        small.nsx_show,
        large.nsx_show
    );
    assert_eq!(
        rows(&small.nsx_show),
        rows(&large.nsx_show),
        "{:#?}",
        large.nsx_show
    );
    // A list issues as many statements for 8 rows as for 2, and reads only
    // the rows it shows and what those reference (+6 rows per site: the
    // connection, its service, gateway, two node states and one generation).
    assert_eq!(small.list.len(), large.list.len(), "{:#?}", large.list);
    assert_eq!(rows(&large.list) - rows(&small.list), 6 * 6, "{:#?}", large.list);
    // Names only: no references at all, and one row (the JSON array the
    // database builds) at either size.
    assert_eq!(small.list_fields.len(), large.list_fields.len());
    assert_eq!(
        rows(&large.list_fields),
        rows(&small.list_fields),
        "{:#?}",
        large.list_fields
    );
    // A page (`limit=2`) is read in SQL: the same statements and the same rows
    // at 2 and at 8 connections.
    assert_eq!(
        small.list_page.len(),
        large.list_page.len(),
        "{:#?}",
        large.list_page
    );
    assert_eq!(
        rows(&small.list_page),
        rows(&large.list_page),
        "{:#?}",
        large.list_page
    );
}
