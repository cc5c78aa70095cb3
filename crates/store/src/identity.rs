//! Identity rows: projects, users, role grants, tokens and the bootstrap admin.
//! Password hashing, role implication and access policy live in the `identity`
//! crate; this module only stores, with the few guarantees only a transaction
//! can give:
//!
//! - Every write that changes more than one row (a user disabled and its
//!   tokens revoked, a grant removed and the tokens it backed revoked, a
//!   project deleted only if it owns no objects) is one transaction, taken in
//!   turn with every other write of the store (the write gate, SQLite's write
//!   lock, PostgreSQL's generation-counter row lock). So a project can't be
//!   deleted while a concurrent write creates an object in it, and a revoked
//!   token can't outlive the change that revoked it.
//! - The bootstrap admin ([`BootstrapAdmin`]) is refused as
//!   [`Error::SystemOwned`] inside those transactions: its user and project
//!   can't be deleted or disabled, its grant can't be removed.
//! - Lists are read in SQL with their filters; names and ids are exact
//!   matches, as Keystone's.

use std::future::Future;
use std::pin::Pin;

use model::{Error, Kind, Result};
use serde_json::{Map, Value};
use sqlx::{AnyConnection, Executor, Row};

use crate::{Store, db_err, now_ms};

/// A Keystone project: what owns resources and what a token is scoped to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Project {
    /// 32 lower-case hex digits (a UUID without dashes), as Keystone's ids.
    pub id: String,
    /// Unique.
    pub name: String,
    /// Free-form; may be empty.
    pub description: String,
    /// False: no token can be scoped to it.
    pub enabled: bool,
    /// Other attributes a client stored with it (Keystone's `extra`).
    pub extra: Map<String, Value>,
}

/// A Keystone user.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct User {
    /// 32 lower-case hex digits (a UUID without dashes), as Keystone's ids.
    pub id: String,
    /// Unique; what clients log in with.
    pub name: String,
    /// Argon2id PHC string, made and checked by the `identity` crate.
    pub password_hash: String,
    /// False: the user can't authenticate.
    pub enabled: bool,
    /// Keystone's `default_project_id` (grants nothing by itself).
    pub default_project_id: Option<String>,
    /// Other attributes a client stored with it (`email`, `description`, ...).
    pub extra: Map<String, Value>,
}

/// A new project.
#[derive(Debug, Clone, Default)]
pub struct NewProject {
    /// Unique.
    pub name: String,
    /// Free-form.
    pub description: String,
    /// Whether tokens may be scoped to it.
    pub enabled: bool,
    /// Other attributes.
    pub extra: Map<String, Value>,
}

/// What a project update changes; `None` keeps the current value.
#[derive(Debug, Clone, Default)]
pub struct ProjectPatch {
    /// A new unique name.
    pub name: Option<String>,
    /// A new description.
    pub description: Option<String>,
    /// Enable or disable (disabling revokes every token scoped to it).
    pub enabled: Option<bool>,
    /// Attributes to set; a JSON `null` removes one.
    pub extra: Map<String, Value>,
}

/// A new user.
#[derive(Debug, Clone, Default)]
pub struct NewUser {
    /// Unique.
    pub name: String,
    /// Argon2id PHC string (or one no password matches).
    pub password_hash: String,
    /// Whether the user can authenticate.
    pub enabled: bool,
    /// Keystone's `default_project_id`.
    pub default_project_id: Option<String>,
    /// Other attributes.
    pub extra: Map<String, Value>,
}

/// What a user update changes; `None` keeps the current value.
#[derive(Debug, Clone, Default)]
pub struct UserPatch {
    /// A new unique name.
    pub name: Option<String>,
    /// A new password hash (revokes every token of the user).
    pub password_hash: Option<String>,
    /// Enable or disable (disabling revokes every token of the user).
    pub enabled: Option<bool>,
    /// A new default project (`Some(None)` clears it).
    pub default_project_id: Option<Option<String>>,
    /// Attributes to set; a JSON `null` removes one.
    pub extra: Map<String, Value>,
}

/// Which projects or users a list answers (exact matches; `None`: any).
#[derive(Debug, Clone, Default)]
pub struct ListFilter {
    /// Only this name.
    pub name: Option<String>,
    /// Only enabled (or only disabled) ones.
    pub enabled: Option<bool>,
}

/// One stored (direct) role grant, with the names of what it joins.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Grant {
    /// The user's id.
    pub user_id: String,
    /// The user's name.
    pub user_name: String,
    /// The project's id.
    pub project_id: String,
    /// The project's name.
    pub project_name: String,
    /// The role, as stored (`admin`, `member`, ...).
    pub role: String,
}

/// The operator's own account, made at first start: protected from deletion,
/// disabling and the removal of its grant.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BootstrapAdmin {
    /// The admin user's id.
    pub user_id: String,
    /// The admin project's id.
    pub project_id: String,
    /// The role granted there (`admin`).
    pub role: String,
}

/// A stored token (by hash) with what it grants.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenRow {
    /// Whose token it is.
    pub user_id: String,
    /// The project it is scoped to.
    pub project_id: String,
    /// Keystone's `audit_ids` entry: a random id that names the token in logs
    /// without revealing it.
    pub audit_id: String,
    /// Epoch milliseconds.
    pub issued_at: i64,
    /// Epoch milliseconds; the token is refused from then on.
    pub expires_at: i64,
}

fn new_id() -> String {
    uuid::Uuid::new_v4().simple().to_string()
}

const SELECT_PROJECT: &str =
    "SELECT id, name, description, CASE WHEN enabled THEN 1 ELSE 0 END AS enabled, extra FROM projects";
const SELECT_USER: &str = "SELECT id, name, password_hash, CASE WHEN enabled THEN 1 ELSE 0 END AS enabled, \
     default_project_id, extra FROM users";
/// The row lock that serializes PostgreSQL writers across replicas (the one
/// every batch of resource writes takes first).
const LOCK_COUNTER: &str = "SELECT value FROM counters WHERE name = 'generation' FOR UPDATE";

fn extra_from(text: &str) -> Map<String, Value> {
    serde_json::from_str(text).unwrap_or_default()
}

fn extra_text(extra: &Map<String, Value>) -> String {
    Value::Object(extra.clone()).to_string()
}

fn merge_extra(into: &mut Map<String, Value>, patch: &Map<String, Value>) {
    for (k, v) in patch {
        if v.is_null() {
            into.remove(k);
        } else {
            into.insert(k.clone(), v.clone());
        }
    }
}

fn project_from(row: &crate::backend::Row) -> Project {
    Project {
        id: row.get(0),
        name: row.get(1),
        description: row.get(2),
        enabled: row.get::<i64, _>(3) != 0,
        extra: extra_from(row.get::<&str, _>(4)),
    }
}

fn user_from(row: &crate::backend::Row) -> User {
    User {
        id: row.get(0),
        name: row.get(1),
        password_hash: row.get(2),
        enabled: row.get::<i64, _>(3) != 0,
        default_project_id: row.get(4),
        extra: extra_from(row.get::<&str, _>(5)),
    }
}

/// `WHERE ...` for a [`ListFilter`], with its binds in order.
fn list_where(f: &ListFilter) -> (String, Vec<ListBind>) {
    let mut conds = Vec::new();
    let mut binds = Vec::new();
    if let Some(n) = &f.name {
        binds.push(ListBind::Text(n.clone()));
        conds.push(format!("name = ${}", binds.len()));
    }
    if let Some(e) = f.enabled {
        binds.push(ListBind::Bool(e));
        conds.push(format!("enabled = ${}", binds.len()));
    }
    let w = if conds.is_empty() {
        String::new()
    } else {
        format!(" WHERE {}", conds.join(" AND "))
    };
    (w, binds)
}

enum ListBind {
    Text(String),
    Bool(bool),
}

fn unique_name(kind: Kind, name: &str, context: &'static str) -> impl FnOnce(sqlx::Error) -> Error {
    let name = name.to_string();
    move |e| match &e {
        sqlx::Error::Database(d) if d.is_unique_violation() => Error::already_exists(kind, "name", name),
        _ => Error::internal(context, e),
    }
}

/// The future of one identity write, borrowing its connection.
type WriteFuture<'c, T> = Pin<Box<dyn Future<Output = Result<T>> + Send + 'c>>;

async fn bootstrap_of(conn: &mut AnyConnection) -> Result<Option<BootstrapAdmin>> {
    let row = sqlx::query("SELECT user_id, project_id, role FROM bootstrap_admin WHERE name = 'admin'")
        .fetch_optional(&mut *conn)
        .await
        .map_err(db_err("read bootstrap admin"))?;
    Ok(row.map(|r| BootstrapAdmin {
        user_id: r.get(0),
        project_id: r.get(1),
        role: r.get(2),
    }))
}

async fn project_in(conn: &mut AnyConnection, id: &str) -> Result<Project> {
    let row = sqlx::query(&format!("{SELECT_PROJECT} WHERE id = $1"))
        .bind(id)
        .fetch_optional(&mut *conn)
        .await
        .map_err(db_err("read project"))?;
    row.map(|r| project_from(&r))
        .ok_or_else(|| Error::not_found(Kind::Project, id))
}

async fn user_in(conn: &mut AnyConnection, id: &str) -> Result<User> {
    let row = sqlx::query(&format!("{SELECT_USER} WHERE id = $1"))
        .bind(id)
        .fetch_optional(&mut *conn)
        .await
        .map_err(db_err("read user"))?;
    row.map(|r| user_from(&r))
        .ok_or_else(|| Error::not_found(Kind::User, id))
}

impl Store {
    /// Runs `f` as one write transaction, in turn with every other write of
    /// the store. It runs in a task of its own, so a caller that goes away
    /// (a client that hung up) can't leave it half-done: it commits or rolls
    /// back whole.
    async fn identity_write<T, F>(&self, f: F) -> Result<T>
    where
        T: Send + 'static,
        F: for<'c> FnOnce(&'c mut AnyConnection) -> WriteFuture<'c, T> + Send + 'static,
    {
        let store = self.clone();
        tokio::spawn(async move {
            let _turn = store.db.exclusive().await;
            let mut conn = store
                .db
                .write
                .acquire()
                .await
                .map_err(db_err("open write connection"))?;
            conn.execute(store.db.begin_write())
                .await
                .map_err(db_err("begin identity write"))?;
            let postgres = store.db.is_postgres();
            let done = async {
                if postgres {
                    sqlx::query(LOCK_COUNTER)
                        .fetch_one(&mut *conn)
                        .await
                        .map_err(db_err("lock writers"))?;
                }
                f(&mut conn).await
            }
            .await;
            match done {
                Ok(v) => match conn.execute("COMMIT").await {
                    Ok(_) => Ok(v),
                    Err(e) => {
                        let _ = conn.execute("ROLLBACK").await;
                        Err(Error::internal("commit identity write", e))
                    }
                },
                Err(e) => {
                    let _ = conn.execute("ROLLBACK").await;
                    Err(e)
                }
            }
        })
        .await
        .map_err(|e| Error::internal("identity write task", e))?
    }

    // ------------------------------------------------------------ projects

    /// Creates an enabled project; a taken name is [`Error::AlreadyExists`].
    pub async fn project_create(&self, name: &str, description: &str) -> Result<Project> {
        self.project_insert(&NewProject {
            name: name.to_string(),
            description: description.to_string(),
            enabled: true,
            extra: Map::new(),
        })
        .await
    }

    /// Creates a project; a taken name is [`Error::AlreadyExists`].
    pub async fn project_insert(&self, new: &NewProject) -> Result<Project> {
        let p = Project {
            id: new_id(),
            name: new.name.clone(),
            description: new.description.clone(),
            enabled: new.enabled,
            extra: new.extra.clone(),
        };
        sqlx::query(
            "INSERT INTO projects (id, name, description, enabled, created_at, extra) VALUES ($1, $2, $3, $4, $5, $6)",
        )
        .bind(&p.id)
        .bind(&p.name)
        .bind(&p.description)
        .bind(p.enabled)
        .bind(now_ms())
        .bind(extra_text(&p.extra))
        .execute(self.write_pool())
        .await
        .map_err(unique_name(Kind::Project, &p.name, "insert project"))?;
        Ok(p)
    }

    /// The project with this id (ids only: a name is not an id).
    pub async fn project_get(&self, id: &str) -> Result<Project> {
        let row = sqlx::query(&format!("{SELECT_PROJECT} WHERE id = $1"))
            .bind(id)
            .fetch_optional(self.read_pool())
            .await
            .map_err(db_err("read project"))?;
        row.map(|r| project_from(&r))
            .ok_or_else(|| Error::not_found(Kind::Project, id))
    }

    /// Finds a project by id or, failing that, by name.
    pub async fn project_find(&self, id_or_name: &str) -> Result<Project> {
        let row = sqlx::query(&format!(
            "{SELECT_PROJECT} WHERE id = $1 OR name = $1 ORDER BY CASE WHEN id = $1 THEN 0 ELSE 1 END LIMIT 1"
        ))
        .bind(id_or_name)
        .fetch_optional(self.read_pool())
        .await
        .map_err(db_err("read project"))?;
        row.map(|r| project_from(&r))
            .ok_or_else(|| Error::not_found(Kind::Project, id_or_name))
    }

    /// The projects `filter` matches, by name.
    pub async fn project_list(&self, filter: &ListFilter) -> Result<Vec<Project>> {
        let rows = self.filtered(SELECT_PROJECT, filter, "list projects").await?;
        Ok(rows.iter().map(project_from).collect())
    }

    /// The rows of `select` (projects or users) that `filter` matches, by name.
    async fn filtered(
        &self,
        select: &str,
        filter: &ListFilter,
        what: &'static str,
    ) -> Result<Vec<crate::backend::Row>> {
        let (w, binds) = list_where(filter);
        let sql = format!("{select}{w} ORDER BY name");
        let mut q = sqlx::query(&sql);
        for b in binds {
            q = match b {
                ListBind::Text(t) => q.bind(t),
                ListBind::Bool(v) => q.bind(v),
            };
        }
        q.fetch_all(self.read_pool()).await.map_err(db_err(what))
    }

    /// The projects where `user_id` holds at least one role, by name.
    pub async fn projects_of_user(&self, user_id: &str) -> Result<Vec<Project>> {
        let rows = sqlx::query(&format!(
            "{SELECT_PROJECT} WHERE id IN (SELECT project_id FROM role_assignments WHERE user_id = $1) ORDER BY name"
        ))
        .bind(user_id)
        .fetch_all(self.read_pool())
        .await
        .map_err(db_err("list projects of user"))?;
        Ok(rows.iter().map(project_from).collect())
    }

    /// Changes a project. A taken name is [`Error::AlreadyExists`]; disabling
    /// the bootstrap admin's project is [`Error::SystemOwned`]; disabling
    /// revokes every token scoped to the project.
    pub async fn project_update(&self, id: &str, patch: &ProjectPatch) -> Result<Project> {
        let id = id.to_string();
        let patch = patch.clone();
        self.identity_write(move |conn| {
            Box::pin(async move {
                let mut p = project_in(conn, &id).await?;
                if patch.enabled == Some(false)
                    && bootstrap_of(conn).await?.is_some_and(|b| b.project_id == id)
                {
                    return Err(Error::system_owned(Kind::Project, &id));
                }
                if let Some(n) = &patch.name {
                    p.name = n.clone();
                }
                if let Some(d) = &patch.description {
                    p.description = d.clone();
                }
                if let Some(e) = patch.enabled {
                    p.enabled = e;
                }
                merge_extra(&mut p.extra, &patch.extra);
                sqlx::query(
                    "UPDATE projects SET name = $1, description = $2, enabled = $3, extra = $4 WHERE id = $5",
                )
                .bind(&p.name)
                .bind(&p.description)
                .bind(p.enabled)
                .bind(extra_text(&p.extra))
                .bind(&id)
                .execute(&mut *conn)
                .await
                .map_err(unique_name(Kind::Project, &p.name, "update project"))?;
                if !p.enabled {
                    sqlx::query("DELETE FROM tokens WHERE project_id = $1")
                        .bind(&id)
                        .execute(&mut *conn)
                        .await
                        .map_err(db_err("revoke project tokens"))?;
                }
                Ok(p)
            })
        })
        .await
    }

    /// Deletes a project with its grants and tokens. The bootstrap admin's
    /// project is [`Error::SystemOwned`]; a project that still owns objects
    /// is [`Error::InUse`] (see [`Store::project_objects`]).
    pub async fn project_delete(&self, id: &str) -> Result<()> {
        let id = id.to_string();
        self.identity_write(move |conn| {
            Box::pin(async move {
                project_in(conn, &id).await?;
                if bootstrap_of(conn).await?.is_some_and(|b| b.project_id == id) {
                    return Err(Error::system_owned(Kind::Project, &id));
                }
                if !objects_of(conn, &id).await?.is_empty() {
                    return Err(Error::in_use(Kind::Project, &id));
                }
                sqlx::query("DELETE FROM projects WHERE id = $1")
                    .bind(&id)
                    .execute(&mut *conn)
                    .await
                    .map_err(db_err("delete project"))?;
                Ok(())
            })
        })
        .await
    }

    /// How many objects (of each kind that has any) a project owns.
    pub async fn project_objects(&self, id: &str) -> Result<Vec<(Kind, i64)>> {
        let mut conn = self
            .read_pool()
            .acquire()
            .await
            .map_err(db_err("open read connection"))?;
        objects_of(&mut conn, id).await
    }

    // ---------------------------------------------------------------- users

    /// Creates an enabled user; a taken name is [`Error::AlreadyExists`].
    pub async fn user_create(&self, name: &str, password_hash: &str) -> Result<User> {
        self.user_insert(&NewUser {
            name: name.to_string(),
            password_hash: password_hash.to_string(),
            enabled: true,
            default_project_id: None,
            extra: Map::new(),
        })
        .await
    }

    /// Creates a user; a taken name is [`Error::AlreadyExists`].
    pub async fn user_insert(&self, new: &NewUser) -> Result<User> {
        let u = User {
            id: new_id(),
            name: new.name.clone(),
            password_hash: new.password_hash.clone(),
            enabled: new.enabled,
            default_project_id: new.default_project_id.clone(),
            extra: new.extra.clone(),
        };
        sqlx::query(
            "INSERT INTO users (id, name, password_hash, enabled, created_at, default_project_id, extra) \
             VALUES ($1, $2, $3, $4, $5, $6, $7)",
        )
        .bind(&u.id)
        .bind(&u.name)
        .bind(&u.password_hash)
        .bind(u.enabled)
        .bind(now_ms())
        .bind(u.default_project_id.clone())
        .bind(extra_text(&u.extra))
        .execute(self.write_pool())
        .await
        .map_err(unique_name(Kind::User, &u.name, "insert user"))?;
        Ok(u)
    }

    /// Changes a user. A taken name is [`Error::AlreadyExists`]; disabling
    /// the bootstrap admin is [`Error::SystemOwned`]. A new password or
    /// disabling revokes every token of the user.
    pub async fn user_update(&self, id: &str, patch: &UserPatch) -> Result<User> {
        let id = id.to_string();
        let patch = patch.clone();
        self.identity_write(move |conn| {
            Box::pin(async move {
                let mut u = user_in(conn, &id).await?;
                if patch.enabled == Some(false) && bootstrap_of(conn).await?.is_some_and(|b| b.user_id == id)
                {
                    return Err(Error::system_owned(Kind::User, &id));
                }
                if let Some(n) = &patch.name {
                    u.name = n.clone();
                }
                if let Some(h) = &patch.password_hash {
                    u.password_hash = h.clone();
                }
                if let Some(e) = patch.enabled {
                    u.enabled = e;
                }
                if let Some(d) = &patch.default_project_id {
                    u.default_project_id = d.clone();
                }
                merge_extra(&mut u.extra, &patch.extra);
                sqlx::query(
                    "UPDATE users SET name = $1, password_hash = $2, enabled = $3, default_project_id = $4, \
                     extra = $5 WHERE id = $6",
                )
                .bind(&u.name)
                .bind(&u.password_hash)
                .bind(u.enabled)
                .bind(u.default_project_id.clone())
                .bind(extra_text(&u.extra))
                .bind(&id)
                .execute(&mut *conn)
                .await
                .map_err(unique_name(Kind::User, &u.name, "update user"))?;
                if patch.password_hash.is_some() || !u.enabled {
                    sqlx::query("DELETE FROM tokens WHERE user_id = $1")
                        .bind(&id)
                        .execute(&mut *conn)
                        .await
                        .map_err(db_err("revoke user tokens"))?;
                }
                Ok(u)
            })
        })
        .await
    }

    /// Replaces a user's password hash and revokes every token of the user.
    pub async fn user_set_password(&self, user_id: &str, password_hash: &str) -> Result<()> {
        self.user_update(
            user_id,
            &UserPatch {
                password_hash: Some(password_hash.to_string()),
                ..UserPatch::default()
            },
        )
        .await
        .map(drop)
    }

    /// Enables or disables a user (a disabled user can't authenticate, and
    /// its tokens are revoked).
    pub async fn user_set_enabled(&self, user_id: &str, enabled: bool) -> Result<()> {
        self.user_update(
            user_id,
            &UserPatch {
                enabled: Some(enabled),
                ..UserPatch::default()
            },
        )
        .await
        .map(drop)
    }

    /// Deletes a user with its grants and tokens; the bootstrap admin is
    /// [`Error::SystemOwned`].
    pub async fn user_delete(&self, id: &str) -> Result<()> {
        let id = id.to_string();
        self.identity_write(move |conn| {
            Box::pin(async move {
                user_in(conn, &id).await?;
                if bootstrap_of(conn).await?.is_some_and(|b| b.user_id == id) {
                    return Err(Error::system_owned(Kind::User, &id));
                }
                sqlx::query("DELETE FROM users WHERE id = $1")
                    .bind(&id)
                    .execute(&mut *conn)
                    .await
                    .map_err(db_err("delete user"))?;
                Ok(())
            })
        })
        .await
    }

    /// The user with this id (ids only: a name is not an id).
    pub async fn user_get(&self, id: &str) -> Result<User> {
        let row = sqlx::query(&format!("{SELECT_USER} WHERE id = $1"))
            .bind(id)
            .fetch_optional(self.read_pool())
            .await
            .map_err(db_err("read user"))?;
        row.map(|r| user_from(&r))
            .ok_or_else(|| Error::not_found(Kind::User, id))
    }

    /// Finds a user by id or name.
    pub async fn user_find(&self, id_or_name: &str) -> Result<User> {
        let row = sqlx::query(&format!(
            "{SELECT_USER} WHERE id = $1 OR name = $1 ORDER BY CASE WHEN id = $1 THEN 0 ELSE 1 END LIMIT 1"
        ))
        .bind(id_or_name)
        .fetch_optional(self.read_pool())
        .await
        .map_err(db_err("read user"))?;
        row.map(|r| user_from(&r))
            .ok_or_else(|| Error::not_found(Kind::User, id_or_name))
    }

    /// The users `filter` matches, by name.
    pub async fn user_list(&self, filter: &ListFilter) -> Result<Vec<User>> {
        let rows = self.filtered(SELECT_USER, filter, "list users").await?;
        Ok(rows.iter().map(user_from).collect())
    }

    // --------------------------------------------------------------- grants

    /// Gives `user_id` the role `role` on a project; granting it again
    /// changes nothing. Which role names exist is the `identity` crate's.
    pub async fn role_grant(&self, user_id: &str, project_id: &str, role: &str) -> Result<()> {
        sqlx::query(
            "INSERT INTO role_assignments (user_id, project_id, role) VALUES ($1, $2, $3) ON CONFLICT DO NOTHING",
        )
        .bind(user_id)
        .bind(project_id)
        .bind(role)
        .execute(self.write_pool())
        .await
        .map_err(db_err("grant role"))?;
        Ok(())
    }

    /// Removes a grant and revokes the user's tokens on that project (as
    /// Keystone does, whatever roles remain); whether there was one. The
    /// bootstrap admin's grant is [`Error::SystemOwned`].
    pub async fn role_revoke(&self, user_id: &str, project_id: &str, role: &str) -> Result<bool> {
        let (user_id, project_id, role) = (user_id.to_string(), project_id.to_string(), role.to_string());
        self.identity_write(move |conn| {
            Box::pin(async move {
                if bootstrap_of(conn)
                    .await?
                    .is_some_and(|b| b.user_id == user_id && b.project_id == project_id && b.role == role)
                {
                    return Err(Error::system_owned(Kind::User, &user_id));
                }
                let done = sqlx::query(
                    "DELETE FROM role_assignments WHERE user_id = $1 AND project_id = $2 AND role = $3",
                )
                .bind(&user_id)
                .bind(&project_id)
                .bind(&role)
                .execute(&mut *conn)
                .await
                .map_err(db_err("revoke role"))?;
                if done.rows_affected() == 0 {
                    return Ok(false);
                }
                sqlx::query("DELETE FROM tokens WHERE user_id = $1 AND project_id = $2")
                    .bind(&user_id)
                    .bind(&project_id)
                    .execute(&mut *conn)
                    .await
                    .map_err(db_err("revoke tokens"))?;
                Ok(true)
            })
        })
        .await
    }

    /// Roles of a user on a project (direct grants), sorted.
    pub async fn roles_of(&self, user_id: &str, project_id: &str) -> Result<Vec<String>> {
        let rows = sqlx::query(
            "SELECT role FROM role_assignments WHERE user_id = $1 AND project_id = $2 ORDER BY role",
        )
        .bind(user_id)
        .bind(project_id)
        .fetch_all(self.read_pool())
        .await
        .map_err(db_err("read roles"))?;
        Ok(rows.iter().map(|r| r.get::<String, _>(0)).collect())
    }

    /// Direct grants, of one user and/or on one project (`None`: any), with
    /// names, by project name, user name and role.
    pub async fn grants(&self, user_id: Option<&str>, project_id: Option<&str>) -> Result<Vec<Grant>> {
        let mut sql = String::from(
            "SELECT r.user_id, u.name, r.project_id, p.name, r.role FROM role_assignments r \
             JOIN users u ON u.id = r.user_id JOIN projects p ON p.id = r.project_id",
        );
        let mut conds = Vec::new();
        let mut binds = Vec::new();
        if let Some(u) = user_id {
            binds.push(u.to_string());
            conds.push(format!("r.user_id = ${}", binds.len()));
        }
        if let Some(p) = project_id {
            binds.push(p.to_string());
            conds.push(format!("r.project_id = ${}", binds.len()));
        }
        if !conds.is_empty() {
            sql.push_str(" WHERE ");
            sql.push_str(&conds.join(" AND "));
        }
        sql.push_str(" ORDER BY p.name, u.name, r.role");
        let mut q = sqlx::query(&sql);
        for b in binds {
            q = q.bind(b);
        }
        let rows = q
            .fetch_all(self.read_pool())
            .await
            .map_err(db_err("list grants"))?;
        Ok(rows
            .iter()
            .map(|r| Grant {
                user_id: r.get(0),
                user_name: r.get(1),
                project_id: r.get(2),
                project_name: r.get(3),
                role: r.get(4),
            })
            .collect())
    }

    // ------------------------------------------------------- bootstrap admin

    /// The recorded bootstrap admin, if any.
    pub async fn bootstrap_admin(&self) -> Result<Option<BootstrapAdmin>> {
        let mut conn = self
            .read_pool()
            .acquire()
            .await
            .map_err(db_err("open read connection"))?;
        bootstrap_of(&mut conn).await
    }

    /// Records the bootstrap admin (first record wins: later calls change
    /// nothing and answer the recorded one).
    pub async fn bootstrap_admin_set(&self, admin: &BootstrapAdmin) -> Result<BootstrapAdmin> {
        sqlx::query(
            "INSERT INTO bootstrap_admin (name, user_id, project_id, role) VALUES ('admin', $1, $2, $3) \
             ON CONFLICT (name) DO NOTHING",
        )
        .bind(&admin.user_id)
        .bind(&admin.project_id)
        .bind(&admin.role)
        .execute(self.write_pool())
        .await
        .map_err(db_err("record bootstrap admin"))?;
        self.bootstrap_admin()
            .await?
            .ok_or_else(|| Error::not_found(Kind::User, &admin.user_id))
    }

    // --------------------------------------------------------------- tokens

    /// Stores a token under its hash, pruning expired tokens on the way.
    pub async fn token_insert(&self, token_hash: &str, row: &TokenRow) -> Result<()> {
        let now = now_ms();
        // Expired tokens are pruned on the way; the index makes this cheap.
        sqlx::query("DELETE FROM tokens WHERE expires_at < $1")
            .bind(now)
            .execute(self.write_pool())
            .await
            .map_err(db_err("prune tokens"))?;
        sqlx::query(
            "INSERT INTO tokens (token_hash, user_id, project_id, audit_id, issued_at, expires_at) \
             VALUES ($1, $2, $3, $4, $5, $6)",
        )
        .bind(token_hash)
        .bind(&row.user_id)
        .bind(&row.project_id)
        .bind(&row.audit_id)
        .bind(row.issued_at)
        .bind(row.expires_at)
        .execute(self.write_pool())
        .await
        .map_err(db_err("insert token"))?;
        Ok(())
    }

    /// The token stored under `token_hash`, expired or not.
    pub async fn token_get(&self, token_hash: &str) -> Result<Option<TokenRow>> {
        let row = sqlx::query(
            "SELECT user_id, project_id, audit_id, issued_at, expires_at FROM tokens WHERE token_hash = $1",
        )
        .bind(token_hash)
        .fetch_optional(self.read_pool())
        .await
        .map_err(db_err("read token"))?;
        Ok(row.map(|r| TokenRow {
            user_id: r.get(0),
            project_id: r.get(1),
            audit_id: r.get(2),
            issued_at: r.get(3),
            expires_at: r.get(4),
        }))
    }

    /// Revokes a token; whether there was one to revoke.
    pub async fn token_delete(&self, token_hash: &str) -> Result<bool> {
        let done = sqlx::query("DELETE FROM tokens WHERE token_hash = $1")
            .bind(token_hash)
            .execute(self.write_pool())
            .await
            .map_err(db_err("delete token"))?;
        Ok(done.rows_affected() > 0)
    }

    /// The project a user works in when none is named: its default project
    /// if it holds a role there, else one where it is admin, else the first
    /// by name.
    pub async fn default_project_of(&self, user_id: &str) -> Result<Option<String>> {
        let row = sqlx::query(
            "SELECT p.id FROM role_assignments r JOIN projects p ON p.id = r.project_id \
             JOIN users u ON u.id = r.user_id WHERE r.user_id = $1 \
             ORDER BY CASE WHEN p.id = u.default_project_id THEN 0 ELSE 1 END, \
             CASE WHEN r.role = 'admin' THEN 0 ELSE 1 END, p.name LIMIT 1",
        )
        .bind(user_id)
        .fetch_optional(self.read_pool())
        .await
        .map_err(db_err("read default project"))?;
        Ok(row.map(|r| r.get::<String, _>(0)))
    }
}

/// The objects a project owns, counted per kind (only kinds it has), through
/// the `(kind, project_id, ...)` index.
async fn objects_of(conn: &mut AnyConnection, project_id: &str) -> Result<Vec<(Kind, i64)>> {
    let kinds: Vec<String> = Kind::ALL.iter().map(|k| format!("'{}'", k.as_str())).collect();
    let rows = sqlx::query(&format!(
        "SELECT kind, COUNT(*) FROM resources WHERE kind IN ({}) AND project_id = $1 GROUP BY kind ORDER BY kind",
        kinds.join(", ")
    ))
    .bind(project_id)
    .fetch_all(&mut *conn)
    .await
    .map_err(db_err("count project objects"))?;
    Ok(rows
        .iter()
        .filter_map(|r| Kind::parse(r.get::<&str, _>(0)).map(|k| (k, r.get::<i64, _>(1))))
        .collect())
}
