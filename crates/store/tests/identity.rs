//! The identity rows on the engine the run asks for (`VPNAAS_TEST_PG`):
//! projects, users, grants, revocation with the changes that imply it, the
//! bootstrap admin's protection and the project-in-use rule.

mod common;

use model::{Error, Kind};
use serde_json::json;
use store::identity::{BootstrapAdmin, ListFilter, NewProject, NewUser, ProjectPatch, TokenRow, UserPatch};
use store::{Store, now_ms};

async fn open() -> (store::testing::TestDb, Store) {
    let db = store::testing::fresh().await;
    let store = Store::open(db.db.clone(), common::cipher()).await.unwrap();
    (db, store)
}

async fn token(store: &Store, hash: &str, user: &str, project: &str) {
    let now = now_ms();
    store
        .token_insert(
            hash,
            &TokenRow {
                user_id: user.into(),
                project_id: project.into(),
                audit_id: "a".into(),
                issued_at: now,
                expires_at: now + 60_000,
            },
        )
        .await
        .unwrap();
}

#[tokio::test]
async fn projects_and_users_round_trip_with_filters_and_extras() {
    let (_db, store) = open().await;
    let mut extra = serde_json::Map::new();
    extra.insert("tags".into(), json!(["a"]));
    let p = store
        .project_insert(&NewProject {
            name: "p1".into(),
            description: "d".into(),
            enabled: false,
            extra,
        })
        .await
        .unwrap();
    store.project_create("p2", "").await.unwrap();
    assert_eq!(store.project_get(&p.id).await.unwrap(), p);
    assert!(matches!(
        store.project_get("p1").await,
        Err(Error::NotFound {
            kind: Kind::Project,
            ..
        })
    ));
    assert!(matches!(
        store.project_create("p1", "").await,
        Err(Error::AlreadyExists {
            kind: Kind::Project,
            ..
        })
    ));
    let only = |name: Option<&str>, enabled| ListFilter {
        name: name.map(str::to_string),
        enabled,
    };
    let names = |v: Vec<store::identity::Project>| v.into_iter().map(|p| p.name).collect::<Vec<_>>();
    assert_eq!(
        names(store.project_list(&only(None, None)).await.unwrap()),
        ["p1", "p2"]
    );
    assert_eq!(
        names(store.project_list(&only(None, Some(true))).await.unwrap()),
        ["p2"]
    );
    assert_eq!(
        names(store.project_list(&only(Some("p1"), None)).await.unwrap()),
        ["p1"]
    );

    let mut patch = ProjectPatch {
        name: Some("p1b".into()),
        enabled: Some(true),
        ..ProjectPatch::default()
    };
    patch.extra.insert("tags".into(), serde_json::Value::Null);
    patch.extra.insert("k".into(), json!(1));
    let p = store.project_update(&p.id, &patch).await.unwrap();
    assert_eq!((p.name.as_str(), p.enabled), ("p1b", true));
    assert_eq!(serde_json::Value::Object(p.extra.clone()), json!({"k": 1}));
    assert_eq!(store.project_get(&p.id).await.unwrap(), p);
    let taken = ProjectPatch {
        name: Some("p2".into()),
        ..ProjectPatch::default()
    };
    assert!(matches!(
        store.project_update(&p.id, &taken).await,
        Err(Error::AlreadyExists { .. })
    ));

    let mut extra = serde_json::Map::new();
    extra.insert("email".into(), json!("u@example.org"));
    let u = store
        .user_insert(&NewUser {
            name: "u1".into(),
            password_hash: "h".into(),
            enabled: true,
            default_project_id: Some(p.id.clone()),
            extra,
        })
        .await
        .unwrap();
    assert_eq!(store.user_get(&u.id).await.unwrap(), u);
    assert_eq!(store.user_find("u1").await.unwrap(), u);
    assert!(matches!(
        store.user_create("u1", "h").await,
        Err(Error::AlreadyExists { kind: Kind::User, .. })
    ));
    let users = store.user_list(&only(Some("u1"), Some(true))).await.unwrap();
    assert_eq!(users, std::slice::from_ref(&u));
    let u2 = store
        .user_update(
            &u.id,
            &UserPatch {
                name: Some("u1b".into()),
                default_project_id: Some(None),
                ..UserPatch::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(
        (u2.name.as_str(), u2.default_project_id.as_deref()),
        ("u1b", None)
    );
    assert_eq!(u2.extra["email"], "u@example.org");
    assert!(matches!(
        store.user_update("nosuch", &UserPatch::default()).await,
        Err(Error::NotFound { kind: Kind::User, .. })
    ));
}

#[tokio::test]
async fn changes_revoke_the_tokens_they_end() {
    let (_db, store) = open().await;
    let p = store.project_create("p", "").await.unwrap();
    let q = store.project_create("q", "").await.unwrap();
    let u = store.user_create("u", "h").await.unwrap();
    store.role_grant(&u.id, &p.id, "member").await.unwrap();
    store.role_grant(&u.id, &q.id, "member").await.unwrap();
    store.role_grant(&u.id, &q.id, "member").await.unwrap();
    assert_eq!(store.roles_of(&u.id, &q.id).await.unwrap(), ["member"]);

    // A removed grant ends the tokens on that project only.
    token(&store, "tp", &u.id, &p.id).await;
    token(&store, "tq", &u.id, &q.id).await;
    assert!(store.role_revoke(&u.id, &q.id, "member").await.unwrap());
    assert!(!store.role_revoke(&u.id, &q.id, "member").await.unwrap());
    assert!(store.token_get("tq").await.unwrap().is_none());
    assert!(store.token_get("tp").await.unwrap().is_some());
    let grants = store.grants(Some(&u.id), None).await.unwrap();
    assert_eq!(grants.len(), 1);
    assert_eq!(
        (grants[0].project_name.as_str(), grants[0].user_name.as_str()),
        ("p", "u")
    );
    assert_eq!(
        store.projects_of_user(&u.id).await.unwrap(),
        std::slice::from_ref(&p)
    );

    // Disabling a user ends its tokens; enabling does not bring them back.
    store.user_set_enabled(&u.id, false).await.unwrap();
    assert!(store.token_get("tp").await.unwrap().is_none());
    store.user_set_enabled(&u.id, true).await.unwrap();
    assert!(store.token_get("tp").await.unwrap().is_none());

    // So does a new password, and disabling the project.
    token(&store, "t2", &u.id, &p.id).await;
    store.user_set_password(&u.id, "h2").await.unwrap();
    assert!(store.token_get("t2").await.unwrap().is_none());
    assert_eq!(store.user_get(&u.id).await.unwrap().password_hash, "h2");
    token(&store, "t3", &u.id, &p.id).await;
    let off = ProjectPatch {
        enabled: Some(false),
        ..ProjectPatch::default()
    };
    store.project_update(&p.id, &off).await.unwrap();
    assert!(store.token_get("t3").await.unwrap().is_none());

    // Deleting the user ends everything of it.
    token(&store, "t4", &u.id, &q.id).await;
    store.user_delete(&u.id).await.unwrap();
    assert!(store.token_get("t4").await.unwrap().is_none());
    assert!(store.grants(None, Some(&p.id)).await.unwrap().is_empty());
    assert!(matches!(
        store.user_delete(&u.id).await,
        Err(Error::NotFound { .. })
    ));
}

#[tokio::test]
async fn the_bootstrap_admin_is_protected() {
    let (_db, store) = open().await;
    let p = store.project_create("admin", "").await.unwrap();
    let u = store.user_create("admin", "h").await.unwrap();
    store.role_grant(&u.id, &p.id, "admin").await.unwrap();
    store.role_grant(&u.id, &p.id, "member").await.unwrap();
    assert_eq!(store.bootstrap_admin().await.unwrap(), None);
    let b = BootstrapAdmin {
        user_id: u.id.clone(),
        project_id: p.id.clone(),
        role: "admin".into(),
    };
    assert_eq!(store.bootstrap_admin_set(&b).await.unwrap(), b);
    // The first record wins.
    let other = store.user_create("other", "h").await.unwrap();
    let again = BootstrapAdmin {
        user_id: other.id.clone(),
        ..b.clone()
    };
    assert_eq!(store.bootstrap_admin_set(&again).await.unwrap(), b);

    let system_owned = |r: Result<(), Error>| matches!(r, Err(Error::SystemOwned { .. }));
    assert!(system_owned(store.user_delete(&u.id).await));
    assert!(system_owned(store.user_set_enabled(&u.id, false).await));
    assert!(system_owned(store.project_delete(&p.id).await));
    let off = ProjectPatch {
        enabled: Some(false),
        ..ProjectPatch::default()
    };
    assert!(system_owned(store.project_update(&p.id, &off).await.map(drop)));
    assert!(system_owned(
        store.role_revoke(&u.id, &p.id, "admin").await.map(drop)
    ));
    // Everything else about it may change.
    assert!(store.role_revoke(&u.id, &p.id, "member").await.unwrap());
    store.user_set_password(&u.id, "h2").await.unwrap();
    let renamed = UserPatch {
        name: Some("root".into()),
        ..UserPatch::default()
    };
    store.user_update(&u.id, &renamed).await.unwrap();
    assert!(store.user_get(&u.id).await.unwrap().enabled);
    assert_eq!(store.roles_of(&u.id, &p.id).await.unwrap(), ["admin"]);
}

#[tokio::test]
async fn a_project_that_owns_objects_is_not_deleted() {
    let (_db, store) = open().await;
    let p = store.project_create("p", "").await.unwrap();
    let gw = common::gateway(&store, &p.id, "gw", 1).await;
    assert_eq!(store.project_objects(&p.id).await.unwrap(), [(Kind::Gateway, 1)]);
    assert!(matches!(
        store.project_delete(&p.id).await,
        Err(Error::InUse {
            kind: Kind::Project,
            ..
        })
    ));
    assert!(store.project_get(&p.id).await.is_ok());
    let mut tx = store.begin(&common::w()).await.unwrap();
    tx.delete::<model::Gateway>(&store::Scope::All, &gw.meta.id)
        .await
        .unwrap();
    tx.commit().await.unwrap();
    store.project_delete(&p.id).await.unwrap();
    assert!(matches!(
        store.project_get(&p.id).await,
        Err(Error::NotFound { .. })
    ));
    assert!(matches!(
        store.project_delete(&p.id).await,
        Err(Error::NotFound { .. })
    ));
}
