//! The Keystone admin operations: projects, users, role grants, role
//! assignments, password changes. The `/v3` handlers ([`crate::admin_api`]) and
//! the operator's `vpnaas project|user` commands both call these, so a rule
//! holds whichever way an operator goes.
//!
//! What they add to the store: role names checked against [`crate::roles`]
//! (and implied roles expanded in effective listings), passwords hashed off the
//! async threads, the protection of the operator's access worded for the
//! operation it refused, and the one rule Keystone does not have:
//!
//! **A project that still owns objects can't be deleted.** Keystone deletes a
//! project whatever other services hold for it; here the objects of the
//! network APIs (gateways, subnets, VPN policies, services, connections, NSX
//! endpoints and sessions) would be left owned by a project no token can be
//! scoped to again: only an admin could still see them, tunnels would keep
//! running for a tenant that no longer exists, and a new project can never
//! take the old id over. So `DELETE /v3/projects/{id}` answers 409 naming what
//! the project still owns; delete those first, or disable the project (which
//! revokes its tokens and refuses new ones, and keeps its tunnels). The check
//! and the delete are one store transaction, taken in turn with every object
//! write, so no create can slip in between.
//!
//! **The operator can't lock themselves out.** The bootstrap admin (the
//! server's `--admin-user` with `admin` on `--admin-project`, recorded at first
//! start) can't be deleted or disabled, its project can't be deleted or
//! disabled, and its `admin` grant can't be removed (403, saying why). An
//! admin also can't remove `admin` from itself on the project its token is
//! scoped to. Everything else is as in Keystone.

use model::{Error, Kind};
use serde_json::{Map, Value};
use store::Store;
use store::identity::{Grant, ListFilter, NewProject, NewUser, Project, ProjectPatch, User, UserPatch};

use crate::error::{KeystoneError, Lockout};
use crate::{AuthContext, roles};

type Result<T> = std::result::Result<T, KeystoneError>;

/// A new user as a client asks for it (the password in the clear, hashed here).
#[derive(Debug, Clone, Default)]
pub struct UserInput {
    /// Unique.
    pub name: String,
    /// Its password; `None`: the user can't authenticate with a password.
    pub password: Option<String>,
    /// Whether the user can authenticate.
    pub enabled: bool,
    /// Keystone's `default_project_id`.
    pub default_project_id: Option<String>,
    /// Other attributes (`email`, `description`, ...).
    pub extra: Map<String, Value>,
}

/// A change to a user (`None`: unchanged).
#[derive(Debug, Clone, Default)]
pub struct UserChange {
    /// A new unique name.
    pub name: Option<String>,
    /// A new password (revokes the user's tokens).
    pub password: Option<String>,
    /// Enable or disable (disabling revokes the user's tokens).
    pub enabled: Option<bool>,
    /// A new default project (`Some(None)` clears it).
    pub default_project_id: Option<Option<String>>,
    /// Attributes to set; `null` removes one.
    pub extra: Map<String, Value>,
}

/// Which role assignments to list (Keystone's `GET /v3/role_assignments`).
#[derive(Debug, Clone, Default)]
pub struct AssignmentQuery {
    /// `user.id`.
    pub user_id: Option<String>,
    /// `scope.project.id`.
    pub project_id: Option<String>,
    /// `role.id`.
    pub role_id: Option<String>,
    /// `effective`: also the roles the grants imply.
    pub effective: bool,
}

/// One role assignment: a grant, or in effective mode a role a grant implies.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Assignment {
    /// The grant it comes from (for an implied role: the grant of the role
    /// that implies it, with `role` replaced).
    pub grant: Grant,
    /// For an implied role: the role that implies it directly.
    pub prior_role: Option<&'static str>,
}

async fn hash(password: String) -> Result<String> {
    tokio::task::spawn_blocking(move || crate::hash_password(&password))
        .await
        .map_err(|e| KeystoneError::Internal(Error::internal("hash password", e)))?
        .map_err(KeystoneError::Internal)
}

fn role(id: &str) -> Result<&'static roles::RoleDef> {
    roles::find(id).ok_or_else(|| KeystoneError::not_found("role", id))
}

/// Creates a project.
pub async fn project_create(store: &Store, new: &NewProject) -> Result<Project> {
    store.project_insert(new).await.map_err(project_conflict)
}

fn project_conflict(e: Error) -> KeystoneError {
    match e {
        Error::AlreadyExists {
            kind: Kind::Project,
            value,
            ..
        } => KeystoneError::Conflict {
            kind: "project",
            details: format!(
                "it is not permitted to have two projects with either the same name or same id in the same domain: name is {value}"
            ),
        },
        e => e.into(),
    }
}

/// The project with this id.
pub async fn project_get(store: &Store, id: &str) -> Result<Project> {
    Ok(store.project_get(id).await?)
}

/// The projects `filter` matches.
pub async fn project_list(store: &Store, filter: &ListFilter) -> Result<Vec<Project>> {
    Ok(store.project_list(filter).await?)
}

/// Changes a project; disabling revokes the tokens scoped to it.
pub async fn project_update(store: &Store, id: &str, patch: &ProjectPatch) -> Result<Project> {
    store.project_update(id, patch).await.map_err(|e| match e {
        Error::SystemOwned { .. } => KeystoneError::Lockout(Lockout::DisableAdminProject(id.into())),
        e => project_conflict(e),
    })
}

/// Deletes a project that owns no objects (see the module doc).
pub async fn project_delete(store: &Store, id: &str) -> Result<()> {
    match store.project_delete(id).await {
        Ok(()) => Ok(()),
        Err(Error::SystemOwned { .. }) => Err(KeystoneError::Lockout(Lockout::DeleteAdminProject(id.into()))),
        Err(Error::InUse { .. }) => {
            let owned = store.project_objects(id).await?;
            let objects = owned
                .iter()
                .map(|(k, n)| format!("{n} {}", k.as_str()))
                .collect::<Vec<_>>()
                .join(", ");
            Err(KeystoneError::ProjectInUse {
                id: id.into(),
                objects: if objects.is_empty() {
                    "objects".into()
                } else {
                    format!("objects of the network APIs ({objects})")
                },
            })
        }
        Err(e) => Err(e.into()),
    }
}

/// Creates a user.
pub async fn user_create(store: &Store, input: UserInput) -> Result<User> {
    let password_hash = match input.password {
        Some(p) => hash(p).await?,
        None => crate::password::dummy_hash().to_string(),
    };
    Ok(store
        .user_insert(&NewUser {
            name: input.name,
            password_hash,
            enabled: input.enabled,
            default_project_id: input.default_project_id,
            extra: input.extra,
        })
        .await?)
}

/// The user with this id.
pub async fn user_get(store: &Store, id: &str) -> Result<User> {
    Ok(store.user_get(id).await?)
}

/// The users `filter` matches.
pub async fn user_list(store: &Store, filter: &ListFilter) -> Result<Vec<User>> {
    Ok(store.user_list(filter).await?)
}

/// Changes a user; a new password or disabling revokes the user's tokens.
pub async fn user_update(store: &Store, id: &str, change: UserChange) -> Result<User> {
    let password_hash = match change.password {
        Some(p) => Some(hash(p).await?),
        None => None,
    };
    let patch = UserPatch {
        name: change.name,
        password_hash,
        enabled: change.enabled,
        default_project_id: change.default_project_id,
        extra: change.extra,
    };
    store.user_update(id, &patch).await.map_err(|e| match e {
        Error::SystemOwned { .. } => KeystoneError::Lockout(Lockout::DisableAdminUser(id.into())),
        e => e.into(),
    })
}

/// Deletes a user with its grants and tokens.
pub async fn user_delete(store: &Store, id: &str) -> Result<()> {
    store.user_delete(id).await.map_err(|e| match e {
        Error::SystemOwned { .. } => KeystoneError::Lockout(Lockout::DeleteAdminUser(id.into())),
        e => e.into(),
    })
}

/// The project, user and role of a grant, each checked to exist (404 in
/// Keystone's words otherwise).
async fn grant_parts(store: &Store, project: &str, user: &str, role_id: &str) -> Result<&'static str> {
    store.project_get(project).await?;
    store.user_get(user).await?;
    Ok(role(role_id)?.name)
}

/// Grants `role_id` to a user on a project (again: no change).
pub async fn grant(store: &Store, project: &str, user: &str, role_id: &str) -> Result<()> {
    let role = grant_parts(store, project, user, role_id).await?;
    Ok(store.role_grant(user, project, role).await?)
}

/// Whether the grant exists (directly): `Ok` or Keystone's 404.
pub async fn check_grant(store: &Store, project: &str, user: &str, role_id: &str) -> Result<()> {
    let role = grant_parts(store, project, user, role_id).await?;
    if store.roles_of(user, project).await?.iter().any(|r| r == role) {
        Ok(())
    } else {
        Err(grant_not_found(project, user, role))
    }
}

fn grant_not_found(project: &str, user: &str, role: &str) -> KeystoneError {
    KeystoneError::GrantNotFound {
        role: role.into(),
        user: user.into(),
        project: project.into(),
    }
}

/// The roles granted directly to a user on a project.
pub async fn grants_on(store: &Store, project: &str, user: &str) -> Result<Vec<&'static roles::RoleDef>> {
    store.project_get(project).await?;
    store.user_get(user).await?;
    Ok(store
        .roles_of(user, project)
        .await?
        .iter()
        .filter_map(|r| roles::find(r))
        .collect())
}

/// Removes a grant and revokes the user's tokens on that project. `caller`
/// (an API request's) may not remove `admin` from itself on its token's project.
pub async fn revoke(
    store: &Store,
    caller: Option<&AuthContext>,
    project: &str,
    user: &str,
    role_id: &str,
) -> Result<()> {
    let role = grant_parts(store, project, user, role_id).await?;
    if role == "admin" && caller.is_some_and(|c| c.user_id == user && c.project_id == project) {
        return Err(KeystoneError::Lockout(Lockout::RevokeOwnAdmin));
    }
    match store.role_revoke(user, project, role).await {
        Ok(true) => Ok(()),
        Ok(false) => Err(grant_not_found(project, user, role)),
        Err(Error::SystemOwned { .. }) => Err(KeystoneError::Lockout(Lockout::RevokeAdminGrant {
            role: role.into(),
        })),
        Err(e) => Err(e.into()),
    }
}

/// Role assignments as `GET /v3/role_assignments` lists them: the grants
/// matching the query and, in effective mode, the roles they imply (each
/// with the role it is implied by, once), filtered by role last, as Keystone.
pub async fn assignments(store: &Store, q: &AssignmentQuery) -> Result<Vec<Assignment>> {
    let grants = store
        .grants(q.user_id.as_deref(), q.project_id.as_deref())
        .await?;
    let mut out: Vec<Assignment> = Vec::new();
    // Direct grants first, then what they imply, as Keystone lists them.
    for g in &grants {
        let direct = Assignment {
            grant: g.clone(),
            prior_role: None,
        };
        if !out.contains(&direct) {
            out.push(direct);
        }
    }
    if q.effective {
        for g in &grants {
            for (role, prior) in roles::implied(&g.role) {
                let a = Assignment {
                    grant: Grant {
                        role: role.to_string(),
                        ..g.clone()
                    },
                    prior_role: Some(prior),
                };
                if !out.contains(&a) {
                    out.push(a);
                }
            }
        }
    }
    if let Some(r) = &q.role_id {
        out.retain(|a| &a.grant.role == r);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn effective_assignments_expand_implied_roles_once() {
        let db = store::testing::fresh().await;
        let store = Store::open(db.db.clone(), store::Cipher::from_key(&[7; 32]))
            .await
            .unwrap();
        let p = store.project_create("p", "").await.unwrap();
        let u = store.user_create("u", "x").await.unwrap();
        grant(&store, &p.id, &u.id, "admin").await.unwrap();
        grant(&store, &p.id, &u.id, "member").await.unwrap();
        let q = |effective, role: Option<&str>| AssignmentQuery {
            user_id: Some(u.id.clone()),
            effective,
            role_id: role.map(str::to_string),
            ..Default::default()
        };
        let direct: Vec<_> = assignments(&store, &q(false, None)).await.unwrap();
        assert_eq!(direct.len(), 2);
        let eff = assignments(&store, &q(true, None)).await.unwrap();
        let got: Vec<(&str, Option<&str>)> = eff
            .iter()
            .map(|a| (a.grant.role.as_str(), a.prior_role))
            .collect();
        // admin, member (direct), member (implied by admin), reader (implied by member).
        assert_eq!(got.len(), 4, "{got:?}");
        assert!(got.contains(&("member", Some("admin"))));
        assert!(got.contains(&("reader", Some("member"))));
        let readers = assignments(&store, &q(true, Some("reader"))).await.unwrap();
        assert_eq!(readers.len(), 1);
        assert!(matches!(
            grant(&store, &p.id, &u.id, "nosuch").await,
            Err(KeystoneError::NotFound { kind: "role", .. })
        ));
        assert!(matches!(
            revoke(&store, None, &p.id, &u.id, "reader").await,
            Err(KeystoneError::GrantNotFound { .. })
        ));
    }
}
