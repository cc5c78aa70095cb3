//! Golden files for the renderer: the exact VICI messages charon receives, in
//! `swanctl.conf` syntax (PSKs redacted). Regenerate with `UPDATE_GOLDEN=1`.
//! `tests/charon.rs` loads the same variants into a real charon.

use std::path::PathBuf;

use agent::render::{EspMode, render};

mod support {
    pub(crate) mod variants;
}
use support::variants::{base, variants};

#[test]
fn renderings_match_the_golden_files() {
    let mut drifted = Vec::new();
    for (name, t, esp) in variants() {
        let r = render(&t, esp).expect("renders");
        let text = format!(
            "# load-conn\n{}# load-shared\n{}# children: {}\n# initiator: {}\n",
            r.conn,
            r.shared,
            r.children.join(","),
            r.initiator
        );
        assert!(
            !text.contains(t.psk.expose()),
            "{name}: a PSK reached the printed form"
        );
        let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
            .join("tests/golden")
            .join(format!("{name}.txt"));
        if std::env::var_os("UPDATE_GOLDEN").is_some() {
            std::fs::write(&path, &text).unwrap();
            continue;
        }
        let want = std::fs::read_to_string(&path)
            .unwrap_or_else(|e| panic!("{}: {e} (run with UPDATE_GOLDEN=1 to create it)", path.display()));
        if text != want {
            eprintln!("--- {}\n{want}+++ rendered\n{text}", path.display());
            drifted.push(name);
        }
    }
    assert!(
        drifted.is_empty(),
        "drifted from golden files (UPDATE_GOLDEN=1 regenerates): {drifted:?}"
    );
}

#[test]
fn hold_maps_to_trap_and_ids_are_owners() {
    let r = render(&base(), EspMode::Userspace).unwrap();
    let conn = r.conn.get_section(&base().id).unwrap();
    let child = conn
        .get_section("children")
        .unwrap()
        .get_section(&base().id)
        .unwrap();
    assert_eq!(child.get_str("dpd_action"), Some("trap"));
    assert_eq!(child.get_str("start_action"), Some("none"));
    assert_eq!(conn.get_str("encap"), Some("yes"));
    assert_eq!(r.shared.get_str("id"), Some(base().id.as_str()));
}
