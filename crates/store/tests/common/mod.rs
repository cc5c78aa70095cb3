//! Fixtures shared by the store's integration tests (each test file is its
//! own binary and includes this module; not every binary uses every item).
#![allow(dead_code)]

use model::*;
use store::{Cipher, NewMeta, Store, WriteCtx};

/// The key every test store encrypts with.
pub(crate) fn cipher() -> Cipher {
    Cipher::from_key(&[1; 32])
}

/// A fresh store in a temporary directory, and its database path.
pub(crate) async fn open() -> (tempfile::TempDir, std::path::PathBuf, Store) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("t.db");
    let store = Store::open(&path, cipher()).await.unwrap();
    (dir, path, store)
}

pub(crate) fn w() -> WriteCtx {
    WriteCtx::new("test")
}

pub(crate) fn meta(project: &str, name: &str) -> NewMeta {
    NewMeta {
        id: None,
        project_id: project.into(),
        name: name.into(),
        description: String::new(),
    }
}

/// A gateway of `project` with external address 192.0.2.`octet`.
pub(crate) async fn gateway(store: &Store, project: &str, name: &str, octet: u8) -> Record<Gateway> {
    let mut tx = store.begin(&w()).await.unwrap();
    let gateway = Gateway::with_addresses(Some(format!("192.0.2.{octet}").parse().unwrap()), None);
    let rec = tx.insert(meta(project, name), gateway).await.unwrap();
    tx.commit().await.unwrap();
    rec
}
