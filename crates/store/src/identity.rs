//! Identity rows: projects, users, role assignments and tokens. Password hashing
//! and token policy live in the `identity` crate; this module only stores.

use model::{Error, Kind, Result};
use sqlx::Row;

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

impl Store {
    /// Creates an enabled project; a taken name is [`Error::AlreadyExists`].
    pub async fn project_create(&self, name: &str, description: &str) -> Result<Project> {
        let p = Project {
            id: new_id(),
            name: name.to_string(),
            description: description.to_string(),
            enabled: true,
        };
        sqlx::query(
            "INSERT INTO projects (id, name, description, enabled, created_at) VALUES ($1, $2, $3, $4, $5)",
        )
        .bind(&p.id)
        .bind(&p.name)
        .bind(&p.description)
        .bind(p.enabled)
        .bind(now_ms())
        .execute(self.write_pool())
        .await
        .map_err(|e| match &e {
            sqlx::Error::Database(d) if d.is_unique_violation() => {
                Error::already_exists(Kind::Project, "name", name)
            }
            _ => Error::internal("insert project", e),
        })?;
        Ok(p)
    }

    fn project_from(row: &crate::backend::Row) -> Project {
        Project {
            id: row.get(0),
            name: row.get(1),
            description: row.get(2),
            enabled: row.get::<i64, _>(3) != 0,
        }
    }

    /// Finds a project by id or, failing that, by name.
    pub async fn project_find(&self, id_or_name: &str) -> Result<Project> {
        let row = sqlx::query(
            "SELECT id, name, description, CASE WHEN enabled THEN 1 ELSE 0 END AS enabled FROM projects WHERE id = $1 OR name = $1 \
             ORDER BY CASE WHEN id = $1 THEN 0 ELSE 1 END LIMIT 1",
        )
        .bind(id_or_name)
        .fetch_optional(self.read_pool())
        .await
        .map_err(db_err("read project"))?;
        row.map(|r| Self::project_from(&r))
            .ok_or_else(|| Error::not_found(Kind::Project, id_or_name))
    }

    /// Every project, by name.
    pub async fn project_list(&self) -> Result<Vec<Project>> {
        let rows = sqlx::query("SELECT id, name, description, CASE WHEN enabled THEN 1 ELSE 0 END AS enabled FROM projects ORDER BY name")
            .fetch_all(self.read_pool())
            .await
            .map_err(db_err("list projects"))?;
        Ok(rows.iter().map(Self::project_from).collect())
    }

    /// Creates an enabled user; a taken name is [`Error::AlreadyExists`].
    pub async fn user_create(&self, name: &str, password_hash: &str) -> Result<User> {
        let u = User {
            id: new_id(),
            name: name.to_string(),
            password_hash: password_hash.to_string(),
            enabled: true,
        };
        sqlx::query(
            "INSERT INTO users (id, name, password_hash, enabled, created_at) VALUES ($1, $2, $3, $4, $5)",
        )
        .bind(&u.id)
        .bind(&u.name)
        .bind(&u.password_hash)
        .bind(u.enabled)
        .bind(now_ms())
        .execute(self.write_pool())
        .await
        .map_err(|e| match &e {
            sqlx::Error::Database(d) if d.is_unique_violation() => {
                Error::already_exists(Kind::User, "name", name)
            }
            _ => Error::internal("insert user", e),
        })?;
        Ok(u)
    }

    /// Replaces a user's password hash and revokes every token of the user.
    pub async fn user_set_password(&self, user_id: &str, password_hash: &str) -> Result<()> {
        sqlx::query("UPDATE users SET password_hash = $1 WHERE id = $2")
            .bind(password_hash)
            .bind(user_id)
            .execute(self.write_pool())
            .await
            .map_err(db_err("update password"))?;
        // A changed password ends the user's sessions.
        sqlx::query("DELETE FROM tokens WHERE user_id = $1")
            .bind(user_id)
            .execute(self.write_pool())
            .await
            .map_err(db_err("revoke tokens"))?;
        Ok(())
    }

    /// Enables or disables a user (a disabled user can't authenticate).
    pub async fn user_set_enabled(&self, user_id: &str, enabled: bool) -> Result<()> {
        sqlx::query("UPDATE users SET enabled = $1 WHERE id = $2")
            .bind(enabled)
            .bind(user_id)
            .execute(self.write_pool())
            .await
            .map_err(db_err("update user"))?;
        Ok(())
    }

    /// Finds a user by id or name.
    pub async fn user_find(&self, id_or_name: &str) -> Result<User> {
        let row = sqlx::query(
            "SELECT id, name, password_hash, CASE WHEN enabled THEN 1 ELSE 0 END AS enabled FROM users WHERE id = $1 OR name = $1 \
             ORDER BY CASE WHEN id = $1 THEN 0 ELSE 1 END LIMIT 1",
        )
        .bind(id_or_name)
        .fetch_optional(self.read_pool())
        .await
        .map_err(db_err("read user"))?;
        row.map(|r| User {
            id: r.get(0),
            name: r.get(1),
            password_hash: r.get(2),
            enabled: r.get::<i64, _>(3) != 0,
        })
        .ok_or_else(|| Error::not_found(Kind::User, id_or_name))
    }

    /// Gives `user_id` the role `role` (`admin`, `member`, `reader`) on a
    /// project; granting it again changes nothing.
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

    /// Roles of a user on a project, sorted.
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
}

impl Store {
    /// The project a user works in when none is named: one where the user is
    /// admin, else the first by name.
    pub async fn default_project_of(&self, user_id: &str) -> Result<Option<String>> {
        let row = sqlx::query(
            "SELECT p.id FROM role_assignments r JOIN projects p ON p.id = r.project_id \
             WHERE r.user_id = $1 ORDER BY CASE WHEN r.role = 'admin' THEN 0 ELSE 1 END, p.name LIMIT 1",
        )
        .bind(user_id)
        .fetch_optional(self.read_pool())
        .await
        .map_err(db_err("read default project"))?;
        Ok(row.map(|r| r.get::<String, _>(0)))
    }
}
