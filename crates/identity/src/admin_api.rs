//! The Keystone admin subset over HTTP: `/v3/domains`, `/v3/projects`,
//! `/v3/users` (and a user's password and projects), `/v3/roles`,
//! `/v3/role_assignments` and the grants under
//! `/v3/projects/{p}/users/{u}/roles/{r}`: what `openstack project|user|role|
//! domain ...` and openstacksdk's `conn.identity` call.
//!
//! Each handler parses its request, checks Keystone's default policy for a
//! project-scoped token, calls one operation of [`crate::admin`] and renders
//! the answer through the typed bodies of [`crate::wire`]; every refusal is a
//! [`KeystoneError`]. The policy: everything needs `admin`, except what
//! Keystone's defaults give anyone about themselves — reading one's own user,
//! project and projects, the `Default` domain, and changing one's own password
//! (`POST /v3/users/{id}/password`, which like Keystone's needs no token: the
//! original password is the credential, checked through the same guard as a
//! login, so its failures count towards lock-out and throttling).
//!
//! Request bodies are read as JSON values and checked field by field, so a
//! refusal says which field and why in Keystone's schema wording; attributes
//! Keystone keeps as "extra" (a user's `email`, `description`, anything
//! unknown) are stored and shown back. Changes that revoke tokens also drop
//! them from this process's validation cache at once (other replicas notice
//! within the cache's few seconds).

use std::collections::HashMap;

use axum::extract::{FromRef, Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde_json::{Map, Value};
use store::identity::{Grant, ListFilter, NewProject, Project, ProjectPatch, User};

use crate::admin::{self, AssignmentQuery, UserChange, UserInput};
use crate::error::KeystoneError;
use crate::keystone::Caller;
use crate::wire::*;
use crate::{AuthContext, DEFAULT_DOMAIN_ID, DEFAULT_DOMAIN_NAME, Identity, Peer, roles};

type Result<T> = std::result::Result<T, KeystoneError>;

/// Routes of the admin subset (merged into [`crate::keystone::router`]).
pub fn router<S>() -> Router<S>
where
    S: Clone + Send + Sync + 'static,
    Identity: FromRef<S>,
{
    Router::new()
        .route("/v3/domains", get(domain_list))
        .route("/v3/domains/{domain_id}", get(domain_show))
        .route("/v3/projects", get(project_list).post(project_create))
        .route(
            "/v3/projects/{project_id}",
            get(project_show).patch(project_update).delete(project_delete),
        )
        .route("/v3/projects/{project_id}/users/{user_id}/roles", get(grant_list))
        .route(
            "/v3/projects/{project_id}/users/{user_id}/roles/{role_id}",
            get(grant_check)
                .head(grant_head)
                .put(grant_create)
                .delete(grant_delete),
        )
        .route("/v3/users", get(user_list).post(user_create))
        .route(
            "/v3/users/{user_id}",
            get(user_show).patch(user_update).delete(user_delete),
        )
        .route("/v3/users/{user_id}/password", post(password_change))
        .route("/v3/users/{user_id}/projects", get(user_projects))
        .route("/v3/roles", get(role_list))
        .route("/v3/roles/{role_id}", get(role_show))
        .route("/v3/roles/{role_id}/implies", get(role_implies))
        .route("/v3/roles/{role_id}/implies/{implied_id}", get(role_inference))
        .route("/v3/role_inferences", get(role_inferences))
        .route("/v3/role_assignments", get(assignment_list))
}

/// The admin subset's operations (merged by [`crate::keystone::openapi`]).
#[derive(utoipa::OpenApi)]
#[openapi(paths(
    domain_list,
    domain_show,
    project_list,
    project_create,
    project_show,
    project_update,
    project_delete,
    grant_list,
    grant_check,
    grant_head,
    grant_create,
    grant_delete,
    user_list,
    user_create,
    user_show,
    user_update,
    user_delete,
    password_change,
    user_projects,
    role_list,
    role_show,
    role_implies,
    role_inference,
    role_inferences,
    assignment_list,
))]
pub(crate) struct AdminApi;

// ----------------------------------------------------------------- policy

fn require_admin(c: &AuthContext, rule: &'static str) -> Result<()> {
    if c.is_admin() {
        Ok(())
    } else {
        Err(KeystoneError::Forbidden(rule))
    }
}

// ----------------------------------------------------------------- bodies

/// The object under `key` of a JSON request body.
fn body_object(bytes: &[u8], key: &str) -> Result<Map<String, Value>> {
    let Ok(v) = serde_json::from_slice::<Value>(bytes) else {
        return Err(KeystoneError::Validation(
            "Expecting to find valid JSON in request body.",
        ));
    };
    let mut top = match v {
        Value::Object(m) => m,
        v => return Err(KeystoneError::Invalid(format!("{v} is not of type 'object'"))),
    };
    match top.remove(key) {
        Some(Value::Object(m)) => Ok(m),
        Some(other) => Err(invalid(key, &other, "is not of type 'object'")),
        None => Err(KeystoneError::Invalid(format!("'{key}' is a required property"))),
    }
}

fn invalid(field: &str, value: &Value, why: &str) -> KeystoneError {
    let shown = match value {
        Value::String(s) => s.clone(),
        v => v.to_string(),
    };
    KeystoneError::Invalid(format!(
        "Invalid input for field/attribute {field}. Value: {shown}. {value} {why}"
    ))
}

/// Takes `key` out of `m` as a string (`null` allowed when `nullable`).
fn take_string(m: &mut Map<String, Value>, key: &str, nullable: bool) -> Result<Option<Option<String>>> {
    match m.remove(key) {
        None => Ok(None),
        Some(Value::Null) if nullable => Ok(Some(None)),
        Some(Value::String(s)) => Ok(Some(Some(s))),
        Some(v) => Err(invalid(
            key,
            &v,
            if nullable {
                "is not of type 'string', 'null'"
            } else {
                "is not of type 'string'"
            },
        )),
    }
}

/// A name: a string of 1 to `max` characters, not only white space.
fn take_name(m: &mut Map<String, Value>, max: usize) -> Result<Option<String>> {
    let Some(Some(n)) = take_string(m, "name", false)? else {
        return Ok(None);
    };
    let v = Value::String(n.clone());
    if n.is_empty() {
        return Err(invalid("name", &v, "is too short"));
    }
    if n.chars().count() > max {
        return Err(invalid("name", &v, "is too long"));
    }
    if n.trim().is_empty() {
        return Err(invalid("name", &v, "does not match '[\\\\S]+'"));
    }
    Ok(Some(n.trim().to_string()))
}

/// Keystone's boolean: `true`/`false`, or the strings `True`/`true`/`TRUE`/...
fn take_bool(m: &mut Map<String, Value>, key: &str) -> Result<Option<bool>> {
    match m.remove(key) {
        None => Ok(None),
        Some(Value::Bool(b)) => Ok(Some(b)),
        Some(Value::String(s)) if matches!(s.as_str(), "True" | "TRUE" | "true") => Ok(Some(true)),
        Some(Value::String(s)) if matches!(s.as_str(), "False" | "FALSE" | "false") => Ok(Some(false)),
        Some(v) => Err(invalid(
            key,
            &v,
            "is not one of [True, 'True', 'TRUE', 'true', False, 'False', 'FALSE', 'false']",
        )),
    }
}

/// `domain_id`: only `default` exists.
fn take_domain(m: &mut Map<String, Value>) -> Result<()> {
    match take_string(m, "domain_id", true)? {
        Some(Some(d)) if d != DEFAULT_DOMAIN_ID => Err(KeystoneError::not_found("domain", d)),
        _ => Ok(()),
    }
}

/// `options`: no resource option is supported; only `{}` is accepted.
fn take_options(m: &mut Map<String, Value>) -> Result<()> {
    match m.remove("options") {
        None | Some(Value::Null) => Ok(()),
        Some(Value::Object(o)) if o.is_empty() => Ok(()),
        Some(v) => Err(invalid(
            "options",
            &v,
            "is not supported: this server has no resource options",
        )),
    }
}

/// The `id` of an update body, if any, must be the path's.
fn take_matching_id(m: &mut Map<String, Value>, id: &str) -> Result<()> {
    match m.remove("id") {
        None => Ok(()),
        Some(Value::String(s)) if s == id => Ok(()),
        Some(_) => Err(KeystoneError::Validation("Cannot change ID")),
    }
}

/// Project attributes Keystone has that this server answers by itself.
fn take_project_fixed(m: &mut Map<String, Value>) -> Result<()> {
    take_domain(m)?;
    take_options(m)?;
    m.remove("links");
    match m.remove("is_domain") {
        None | Some(Value::Bool(false)) | Some(Value::Null) => {}
        Some(v) => {
            return Err(invalid(
                "is_domain",
                &v,
                "is not supported: this server has one domain",
            ));
        }
    }
    match m.remove("parent_id") {
        None | Some(Value::Null) => {}
        Some(Value::String(s)) if s == DEFAULT_DOMAIN_ID => {}
        Some(v) => {
            return Err(invalid(
                "parent_id",
                &v,
                "is not supported: projects are not nested here",
            ));
        }
    }
    if let Some(t) = m.get("tags") {
        let ok = t.as_array().is_some_and(|a| {
            a.len() <= 80
                && a.iter()
                    .all(|x| x.as_str().is_some_and(|s| !s.contains([',', '/'])))
        });
        if !ok {
            return Err(invalid("tags", t, "is not a valid list of tags"));
        }
    }
    Ok(())
}

fn project_new(bytes: &[u8]) -> Result<NewProject> {
    let mut m = body_object(bytes, "project")?;
    let Some(name) = take_name(&mut m, 64)? else {
        return Err(KeystoneError::Invalid("'name' is a required property".into()));
    };
    let description = take_string(&mut m, "description", true)?
        .flatten()
        .unwrap_or_default();
    let enabled = take_bool(&mut m, "enabled")?.unwrap_or(true);
    m.remove("id");
    take_project_fixed(&mut m)?;
    Ok(NewProject {
        name,
        description,
        enabled,
        extra: m,
    })
}

fn project_patch(bytes: &[u8], id: &str) -> Result<ProjectPatch> {
    let mut m = body_object(bytes, "project")?;
    if m.is_empty() {
        return Err(KeystoneError::Invalid(
            "{} does not have enough properties".into(),
        ));
    }
    take_matching_id(&mut m, id)?;
    let name = take_name(&mut m, 64)?;
    let description = take_string(&mut m, "description", true)?.map(Option::unwrap_or_default);
    let enabled = take_bool(&mut m, "enabled")?;
    take_project_fixed(&mut m)?;
    Ok(ProjectPatch {
        name,
        description,
        enabled,
        extra: m,
    })
}

/// User attributes this server answers by itself.
fn take_user_fixed(m: &mut Map<String, Value>) -> Result<()> {
    take_domain(m)?;
    take_options(m)?;
    m.remove("links");
    m.remove("password_expires_at");
    match m.remove("federated") {
        None | Some(Value::Null) => Ok(()),
        Some(Value::Array(a)) if a.is_empty() => Ok(()),
        Some(v) => Err(invalid(
            "federated",
            &v,
            "is not supported: this server has no identity providers",
        )),
    }
}

fn user_new(bytes: &[u8]) -> Result<UserInput> {
    let mut m = body_object(bytes, "user")?;
    let Some(name) = take_name(&mut m, 255)? else {
        return Err(KeystoneError::Invalid("'name' is a required property".into()));
    };
    let password = take_string(&mut m, "password", true)?.flatten();
    let enabled = take_bool(&mut m, "enabled")?.unwrap_or(true);
    let default_project_id = take_string(&mut m, "default_project_id", true)?.flatten();
    m.remove("id");
    take_user_fixed(&mut m)?;
    Ok(UserInput {
        name,
        password,
        enabled,
        default_project_id,
        extra: m,
    })
}

fn user_change(bytes: &[u8], id: &str) -> Result<UserChange> {
    let mut m = body_object(bytes, "user")?;
    take_matching_id(&mut m, id)?;
    let name = take_name(&mut m, 255)?;
    let password = take_string(&mut m, "password", true)?.flatten();
    let enabled = take_bool(&mut m, "enabled")?;
    let default_project_id = take_string(&mut m, "default_project_id", true)?;
    take_user_fixed(&mut m)?;
    Ok(UserChange {
        name,
        password,
        enabled,
        default_project_id,
        extra: m,
    })
}

/// Keystone's `query_filter_is_true`: present and empty, or not a false word.
fn query_true(q: &HashMap<String, String>, key: &str) -> bool {
    q.get(key).is_some_and(|v| {
        !matches!(
            v.to_ascii_lowercase().as_str(),
            "0" | "false" | "f" | "no" | "n" | "off"
        )
    })
}

/// oslo's `bool_from_string`, for the `enabled` list filter.
fn query_bool(q: &HashMap<String, String>, key: &str) -> Option<bool> {
    q.get(key).map(|v| {
        matches!(
            v.to_ascii_lowercase().as_str(),
            "1" | "t" | "true" | "on" | "y" | "yes"
        )
    })
}

/// The `name` and `enabled` filters, and whether the domain filter (if
/// any) excludes everything (only `default` exists).
fn list_filter(q: &HashMap<String, String>) -> (ListFilter, bool) {
    let filter = ListFilter {
        name: q.get("name").cloned(),
        enabled: query_bool(q, "enabled"),
    };
    let other_domain = q.get("domain_id").is_some_and(|d| d != DEFAULT_DOMAIN_ID);
    (filter, other_domain)
}

// -------------------------------------------------------------- rendering

fn base(id: &Identity) -> String {
    format!("{}/v3", id.config().public_url.trim_end_matches('/'))
}

fn collection_links(id: &Identity, path: &str) -> CollectionLinks {
    CollectionLinks {
        self_: format!("{}/{path}", base(id)),
        next: None,
        previous: None,
    }
}

fn project_body(id: &Identity, p: Project) -> ProjectBody {
    let mut extra = p.extra;
    let tags = match extra.remove("tags") {
        Some(Value::Array(a)) => a,
        _ => Vec::new(),
    };
    ProjectBody {
        links: SelfLink {
            self_: format!("{}/projects/{}", base(id), p.id),
        },
        id: p.id,
        name: p.name,
        description: p.description,
        domain_id: DEFAULT_DOMAIN_ID,
        enabled: p.enabled,
        is_domain: false,
        parent_id: DEFAULT_DOMAIN_ID,
        tags,
        options: Map::new(),
        extra,
    }
}

fn user_body(id: &Identity, u: User) -> UserBody {
    UserBody {
        links: SelfLink {
            self_: format!("{}/users/{}", base(id), u.id),
        },
        id: u.id,
        name: u.name,
        domain_id: DEFAULT_DOMAIN_ID,
        enabled: u.enabled,
        default_project_id: u.default_project_id,
        password_expires_at: None,
        options: Map::new(),
        extra: u.extra,
    }
}

fn role_body(id: &Identity, r: &roles::RoleDef) -> RoleBody {
    RoleBody {
        id: r.name.to_string(),
        name: r.name.to_string(),
        description: r.description.to_string(),
        domain_id: None,
        options: Map::new(),
        links: SelfLink {
            self_: format!("{}/roles/{}", base(id), r.name),
        },
    }
}

fn domain_body(id: &Identity) -> DomainBody {
    DomainBody {
        id: DEFAULT_DOMAIN_ID,
        name: DEFAULT_DOMAIN_NAME,
        description: "The one domain: every user and project of this server",
        enabled: true,
        tags: Vec::new(),
        options: Map::new(),
        links: SelfLink {
            self_: format!("{}/domains/{DEFAULT_DOMAIN_ID}", base(id)),
        },
    }
}

fn assignment_body(id: &Identity, a: admin::Assignment, names: bool) -> AssignmentBody {
    let Grant {
        user_id,
        user_name,
        project_id,
        project_name,
        role,
    } = a.grant;
    let granted = a.prior_role.map_or(role.as_str(), |p| p).to_string();
    let named = |i: String, n: String, domain: bool| AssignmentRef {
        id: i,
        name: names.then_some(n),
        domain: (names && domain).then_some(Domain::DEFAULT),
    };
    AssignmentBody {
        links: AssignmentLinks {
            assignment: format!(
                "{}/projects/{project_id}/users/{user_id}/roles/{granted}",
                base(id)
            ),
            prior_role: a
                .prior_role
                .map(|p| format!("{}/roles/{p}/implies/{role}", base(id))),
        },
        role: named(role.clone(), role, false),
        user: named(user_id, user_name, true),
        scope: AssignmentScope {
            project: named(project_id, project_name, true),
        },
    }
}

fn no_content() -> Response {
    StatusCode::NO_CONTENT.into_response()
}

// ---------------------------------------------------------------- domains

#[utoipa::path(
    get,
    path = "/v3/domains",
    tag = "keystone",
    operation_id = "keystone_domain_list",
    summary = "List domains (the one, `Default`)",
    params(
        ("name" = Option<String>, Query, description = "Only the domain of this name"),
        ("enabled" = Option<bool>, Query, description = "Only enabled (or disabled) domains"),
    ),
    security(("keystone_token" = [])),
    responses(
        (status = 200, description = "The domains", body = DomainsResponse),
        (status = 401, description = "Missing or invalid `X-Auth-Token`", body = ErrorBody),
        (status = 403, description = "The caller is not admin (Keystone's default policy)", body = ErrorBody),
    ),
)]
async fn domain_list(
    State(id): State<Identity>,
    Caller(c): Caller,
    Query(q): Query<HashMap<String, String>>,
) -> Result<Json<DomainsResponse>> {
    require_admin(&c, "identity:list_domains")?;
    let matches =
        q.get("name").is_none_or(|n| n == DEFAULT_DOMAIN_NAME) && query_bool(&q, "enabled").is_none_or(|e| e);
    Ok(Json(DomainsResponse {
        domains: if matches {
            vec![domain_body(&id)]
        } else {
            Vec::new()
        },
        links: collection_links(&id, "domains"),
    }))
}

/// Anyone with a token may read the domain of its project (Keystone's
/// `token.project.domain.id:%(target.domain.id)s`): here, `default`.
#[utoipa::path(
    get,
    path = "/v3/domains/{domain_id}",
    tag = "keystone",
    operation_id = "keystone_domain_show",
    summary = "Show a domain (anyone with a token: `default` is every project's)",
    params(("domain_id" = String, Path, description = "The domain's id (`default`)")),
    security(("keystone_token" = [])),
    responses(
        (status = 200, description = "The domain", body = DomainResponse),
        (status = 401, description = "Missing or invalid `X-Auth-Token`", body = ErrorBody),
        (status = 404, description = "No such domain", body = ErrorBody),
    ),
)]
async fn domain_show(
    State(id): State<Identity>,
    Caller(_): Caller,
    Path(domain_id): Path<String>,
) -> Result<Json<DomainResponse>> {
    if domain_id != DEFAULT_DOMAIN_ID {
        return Err(KeystoneError::not_found("domain", domain_id));
    }
    Ok(Json(DomainResponse {
        domain: domain_body(&id),
    }))
}

// --------------------------------------------------------------- projects

#[utoipa::path(
    get,
    path = "/v3/projects",
    tag = "keystone",
    operation_id = "keystone_project_list",
    summary = "List projects",
    params(
        ("name" = Option<String>, Query, description = "Only the project of this name"),
        ("enabled" = Option<bool>, Query, description = "Only enabled (or disabled) projects"),
        ("domain_id" = Option<String>, Query, description = "Only projects of this domain (`default`: all; any other: none)"),
        ("is_domain" = Option<bool>, Query, description = "True: none (no project is a domain)"),
        ("parent_id" = Option<String>, Query, description = "Only children of this parent (`default`: all; any other: none)"),
    ),
    security(("keystone_token" = [])),
    responses(
        (status = 200, description = "The projects, by name", body = ProjectsResponse),
        (status = 401, description = "Missing or invalid `X-Auth-Token`", body = ErrorBody),
        (status = 403, description = "The caller is not admin (Keystone's default policy)", body = ErrorBody),
    ),
)]
async fn project_list(
    State(id): State<Identity>,
    Caller(c): Caller,
    Query(q): Query<HashMap<String, String>>,
) -> Result<Json<ProjectsResponse>> {
    require_admin(&c, "identity:list_projects")?;
    let (filter, other_domain) = list_filter(&q);
    let none = other_domain
        || query_true(&q, "is_domain")
        || q.get("parent_id").is_some_and(|p| p != DEFAULT_DOMAIN_ID);
    let projects = if none {
        Vec::new()
    } else {
        admin::project_list(&id.store, &filter).await?
    };
    Ok(Json(ProjectsResponse {
        projects: projects.into_iter().map(|p| project_body(&id, p)).collect(),
        links: collection_links(&id, "projects"),
    }))
}

#[utoipa::path(
    post,
    path = "/v3/projects",
    tag = "keystone",
    operation_id = "keystone_project_create",
    summary = "Create a project",
    request_body(content = ProjectCreateRequest, content_type = "application/json"),
    security(("keystone_token" = [])),
    responses(
        (status = 201, description = "Created", body = ProjectResponse),
        (status = 400, description = "Malformed body or invalid attributes", body = ErrorBody),
        (status = 401, description = "Missing or invalid `X-Auth-Token`", body = ErrorBody),
        (status = 403, description = "The caller is not admin (Keystone's default policy)", body = ErrorBody),
        (status = 404, description = "No such domain", body = ErrorBody),
        (status = 409, description = "The name is taken", body = ErrorBody),
    ),
)]
async fn project_create(
    State(id): State<Identity>,
    Caller(c): Caller,
    body: axum::body::Bytes,
) -> Result<Response> {
    require_admin(&c, "identity:create_project")?;
    let new = project_new(&body)?;
    let p = admin::project_create(&id.store, &new).await?;
    Ok((
        StatusCode::CREATED,
        Json(ProjectResponse {
            project: project_body(&id, p),
        }),
    )
        .into_response())
}

/// Admin, or the project of the caller's own token.
#[utoipa::path(
    get,
    path = "/v3/projects/{project_id}",
    tag = "keystone",
    operation_id = "keystone_project_show",
    summary = "Show a project (admin, or the project of the caller's token)",
    params(("project_id" = String, Path, description = "The project's id")),
    security(("keystone_token" = [])),
    responses(
        (status = 200, description = "The project", body = ProjectResponse),
        (status = 401, description = "Missing or invalid `X-Auth-Token`", body = ErrorBody),
        (status = 403, description = "Another project, and the caller is not admin", body = ErrorBody),
        (status = 404, description = "No such project", body = ErrorBody),
    ),
)]
async fn project_show(
    State(id): State<Identity>,
    Caller(c): Caller,
    Path(project_id): Path<String>,
) -> Result<Json<ProjectResponse>> {
    if c.project_id != project_id {
        require_admin(&c, "identity:get_project")?;
    }
    let p = admin::project_get(&id.store, &project_id).await?;
    Ok(Json(ProjectResponse {
        project: project_body(&id, p),
    }))
}

#[utoipa::path(
    patch,
    path = "/v3/projects/{project_id}",
    tag = "keystone",
    operation_id = "keystone_project_update",
    summary = "Update a project (disabling revokes its tokens)",
    params(("project_id" = String, Path, description = "The project's id")),
    request_body(content = ProjectUpdateRequest, content_type = "application/json"),
    security(("keystone_token" = [])),
    responses(
        (status = 200, description = "Updated", body = ProjectResponse),
        (status = 400, description = "Malformed body, invalid attributes, or a changed id", body = ErrorBody),
        (status = 401, description = "Missing or invalid `X-Auth-Token`", body = ErrorBody),
        (status = 403, description = "The caller is not admin, or the project is the bootstrap admin project and would be disabled", body = ErrorBody),
        (status = 404, description = "No such project or domain", body = ErrorBody),
        (status = 409, description = "The name is taken", body = ErrorBody),
    ),
)]
async fn project_update(
    State(id): State<Identity>,
    Caller(c): Caller,
    Path(project_id): Path<String>,
    body: axum::body::Bytes,
) -> Result<Json<ProjectResponse>> {
    require_admin(&c, "identity:update_project")?;
    let patch = project_patch(&body, &project_id)?;
    let p = admin::project_update(&id.store, &project_id, &patch).await?;
    if !p.enabled {
        id.forget_project(&project_id);
    }
    Ok(Json(ProjectResponse {
        project: project_body(&id, p),
    }))
}

#[utoipa::path(
    delete,
    path = "/v3/projects/{project_id}",
    tag = "keystone",
    operation_id = "keystone_project_delete",
    summary = "Delete a project that owns no objects",
    params(("project_id" = String, Path, description = "The project's id")),
    security(("keystone_token" = [])),
    responses(
        (status = 204, description = "Deleted"),
        (status = 401, description = "Missing or invalid `X-Auth-Token`", body = ErrorBody),
        (status = 403, description = "The caller is not admin, or it is the bootstrap admin project", body = ErrorBody),
        (status = 404, description = "No such project", body = ErrorBody),
        (status = 409, description = "It still owns objects of the network APIs", body = ErrorBody),
    ),
)]
async fn project_delete(
    State(id): State<Identity>,
    Caller(c): Caller,
    Path(project_id): Path<String>,
) -> Result<Response> {
    require_admin(&c, "identity:delete_project")?;
    admin::project_delete(&id.store, &project_id).await?;
    id.forget_project(&project_id);
    Ok(no_content())
}

// ----------------------------------------------------------------- grants

#[utoipa::path(
    get,
    path = "/v3/projects/{project_id}/users/{user_id}/roles",
    tag = "keystone",
    operation_id = "keystone_grant_list",
    summary = "List the roles granted directly to a user on a project",
    params(
        ("project_id" = String, Path, description = "The project's id"),
        ("user_id" = String, Path, description = "The user's id"),
    ),
    security(("keystone_token" = [])),
    responses(
        (status = 200, description = "The roles", body = RolesResponse),
        (status = 401, description = "Missing or invalid `X-Auth-Token`", body = ErrorBody),
        (status = 403, description = "The caller is not admin (Keystone's default policy)", body = ErrorBody),
        (status = 404, description = "No such project or user", body = ErrorBody),
    ),
)]
async fn grant_list(
    State(id): State<Identity>,
    Caller(c): Caller,
    Path((project_id, user_id)): Path<(String, String)>,
) -> Result<Json<RolesResponse>> {
    require_admin(&c, "identity:list_grants")?;
    let roles = admin::grants_on(&id.store, &project_id, &user_id).await?;
    Ok(Json(RolesResponse {
        roles: roles.into_iter().map(|r| role_body(&id, r)).collect(),
        links: collection_links(&id, &format!("projects/{project_id}/users/{user_id}/roles")),
    }))
}

/// `GET` and `HEAD`: 204 if the grant exists (directly), as Keystone.
#[utoipa::path(
    get,
    path = "/v3/projects/{project_id}/users/{user_id}/roles/{role_id}",
    tag = "keystone",
    operation_id = "keystone_grant_show",
    summary = "Check a grant (204 if the role is granted directly)",
    params(
        ("project_id" = String, Path, description = "The project's id"),
        ("user_id" = String, Path, description = "The user's id"),
        ("role_id" = String, Path, description = "The role's id (its name: `admin`, `member`, `reader`, `service`)"),
    ),
    security(("keystone_token" = [])),
    responses(
        (status = 204, description = "Granted"),
        (status = 401, description = "Missing or invalid `X-Auth-Token`", body = ErrorBody),
        (status = 403, description = "The caller is not admin (Keystone's default policy)", body = ErrorBody),
        (status = 404, description = "No such project, user, role or grant", body = ErrorBody),
    ),
)]
async fn grant_check(
    State(id): State<Identity>,
    Caller(c): Caller,
    Path((project_id, user_id, role_id)): Path<(String, String, String)>,
) -> Result<Response> {
    require_admin(&c, "identity:check_grant")?;
    admin::check_grant(&id.store, &project_id, &user_id, &role_id).await?;
    Ok(no_content())
}

/// `HEAD`: [`grant_check`] without a body (its own operation in the document).
#[utoipa::path(
    head,
    path = "/v3/projects/{project_id}/users/{user_id}/roles/{role_id}",
    tag = "keystone",
    operation_id = "keystone_grant_check",
    summary = "Check a grant (204 if the role is granted directly; no body)",
    params(
        ("project_id" = String, Path, description = "The project's id"),
        ("user_id" = String, Path, description = "The user's id"),
        ("role_id" = String, Path, description = "The role's id (its name: `admin`, `member`, `reader`, `service`)"),
    ),
    security(("keystone_token" = [])),
    responses(
        (status = 204, description = "Granted"),
        (status = 401, description = "Missing or invalid `X-Auth-Token`"),
        (status = 403, description = "The caller is not admin (Keystone's default policy)"),
        (status = 404, description = "No such project, user, role or grant"),
    ),
)]
async fn grant_head(
    state: State<Identity>,
    caller: Caller,
    path: Path<(String, String, String)>,
) -> Result<Response> {
    grant_check(state, caller, path).await
}

#[utoipa::path(
    put,
    path = "/v3/projects/{project_id}/users/{user_id}/roles/{role_id}",
    tag = "keystone",
    operation_id = "keystone_grant_create",
    summary = "Grant a role to a user on a project (again: no change)",
    params(
        ("project_id" = String, Path, description = "The project's id"),
        ("user_id" = String, Path, description = "The user's id"),
        ("role_id" = String, Path, description = "The role's id (its name: `admin`, `member`, `reader`, `service`)"),
    ),
    security(("keystone_token" = [])),
    responses(
        (status = 204, description = "Granted"),
        (status = 401, description = "Missing or invalid `X-Auth-Token`", body = ErrorBody),
        (status = 403, description = "The caller is not admin (Keystone's default policy)", body = ErrorBody),
        (status = 404, description = "No such project, user or role", body = ErrorBody),
    ),
)]
async fn grant_create(
    State(id): State<Identity>,
    Caller(c): Caller,
    Path((project_id, user_id, role_id)): Path<(String, String, String)>,
) -> Result<Response> {
    require_admin(&c, "identity:create_grant")?;
    admin::grant(&id.store, &project_id, &user_id, &role_id).await?;
    // The user's cached tokens show the new role at their next validation.
    id.forget_user(&user_id);
    Ok(no_content())
}

#[utoipa::path(
    delete,
    path = "/v3/projects/{project_id}/users/{user_id}/roles/{role_id}",
    tag = "keystone",
    operation_id = "keystone_grant_delete",
    summary = "Revoke a grant (revokes the user's tokens on that project)",
    params(
        ("project_id" = String, Path, description = "The project's id"),
        ("user_id" = String, Path, description = "The user's id"),
        ("role_id" = String, Path, description = "The role's id (its name: `admin`, `member`, `reader`, `service`)"),
    ),
    security(("keystone_token" = [])),
    responses(
        (status = 204, description = "Revoked"),
        (status = 401, description = "Missing or invalid `X-Auth-Token`", body = ErrorBody),
        (status = 403, description = "The caller is not admin, or it is the bootstrap admin's `admin` grant, or the caller's own `admin` on its token's project", body = ErrorBody),
        (status = 404, description = "No such project, user, role or grant", body = ErrorBody),
    ),
)]
async fn grant_delete(
    State(id): State<Identity>,
    Caller(c): Caller,
    Path((project_id, user_id, role_id)): Path<(String, String, String)>,
) -> Result<Response> {
    require_admin(&c, "identity:revoke_grant")?;
    admin::revoke(&id.store, Some(&c), &project_id, &user_id, &role_id).await?;
    id.forget_user(&user_id);
    Ok(no_content())
}

// ------------------------------------------------------------------ users

#[utoipa::path(
    get,
    path = "/v3/users",
    tag = "keystone",
    operation_id = "keystone_user_list",
    summary = "List users",
    params(
        ("name" = Option<String>, Query, description = "Only the user of this name"),
        ("enabled" = Option<bool>, Query, description = "Only enabled (or disabled) users"),
        ("domain_id" = Option<String>, Query, description = "Only users of this domain (`default`: all; any other: none)"),
    ),
    security(("keystone_token" = [])),
    responses(
        (status = 200, description = "The users, by name", body = UsersResponse),
        (status = 401, description = "Missing or invalid `X-Auth-Token`", body = ErrorBody),
        (status = 403, description = "The caller is not admin (Keystone's default policy)", body = ErrorBody),
    ),
)]
async fn user_list(
    State(id): State<Identity>,
    Caller(c): Caller,
    Query(q): Query<HashMap<String, String>>,
) -> Result<Json<UsersResponse>> {
    require_admin(&c, "identity:list_users")?;
    let (filter, other_domain) = list_filter(&q);
    let users = if other_domain {
        Vec::new()
    } else {
        admin::user_list(&id.store, &filter).await?
    };
    Ok(Json(UsersResponse {
        users: users.into_iter().map(|u| user_body(&id, u)).collect(),
        links: collection_links(&id, "users"),
    }))
}

#[utoipa::path(
    post,
    path = "/v3/users",
    tag = "keystone",
    operation_id = "keystone_user_create",
    summary = "Create a user",
    request_body(content = UserCreateRequest, content_type = "application/json"),
    security(("keystone_token" = [])),
    responses(
        (status = 201, description = "Created", body = UserResponse),
        (status = 400, description = "Malformed body or invalid attributes", body = ErrorBody),
        (status = 401, description = "Missing or invalid `X-Auth-Token`", body = ErrorBody),
        (status = 403, description = "The caller is not admin (Keystone's default policy)", body = ErrorBody),
        (status = 404, description = "No such domain", body = ErrorBody),
        (status = 409, description = "The name is taken", body = ErrorBody),
    ),
)]
async fn user_create(
    State(id): State<Identity>,
    Caller(c): Caller,
    body: axum::body::Bytes,
) -> Result<Response> {
    require_admin(&c, "identity:create_user")?;
    let input = user_new(&body)?;
    let u = admin::user_create(&id.store, input).await?;
    Ok((
        StatusCode::CREATED,
        Json(UserResponse {
            user: user_body(&id, u),
        }),
    )
        .into_response())
}

/// Admin, or the user itself.
#[utoipa::path(
    get,
    path = "/v3/users/{user_id}",
    tag = "keystone",
    operation_id = "keystone_user_show",
    summary = "Show a user (admin, or the user itself)",
    params(("user_id" = String, Path, description = "The user's id")),
    security(("keystone_token" = [])),
    responses(
        (status = 200, description = "The user", body = UserResponse),
        (status = 401, description = "Missing or invalid `X-Auth-Token`", body = ErrorBody),
        (status = 403, description = "Another user, and the caller is not admin", body = ErrorBody),
        (status = 404, description = "No such user", body = ErrorBody),
    ),
)]
async fn user_show(
    State(id): State<Identity>,
    Caller(c): Caller,
    Path(user_id): Path<String>,
) -> Result<Json<UserResponse>> {
    if c.user_id != user_id {
        require_admin(&c, "identity:get_user")?;
    }
    let u = admin::user_get(&id.store, &user_id).await?;
    Ok(Json(UserResponse {
        user: user_body(&id, u),
    }))
}

#[utoipa::path(
    patch,
    path = "/v3/users/{user_id}",
    tag = "keystone",
    operation_id = "keystone_user_update",
    summary = "Update a user (a new password or disabling revokes its tokens)",
    params(("user_id" = String, Path, description = "The user's id")),
    request_body(content = UserUpdateRequest, content_type = "application/json"),
    security(("keystone_token" = [])),
    responses(
        (status = 200, description = "Updated", body = UserResponse),
        (status = 400, description = "Malformed body, invalid attributes, or a changed id", body = ErrorBody),
        (status = 401, description = "Missing or invalid `X-Auth-Token`", body = ErrorBody),
        (status = 403, description = "The caller is not admin, or the user is the bootstrap admin and would be disabled", body = ErrorBody),
        (status = 404, description = "No such user or domain", body = ErrorBody),
        (status = 409, description = "The name is taken", body = ErrorBody),
    ),
)]
async fn user_update(
    State(id): State<Identity>,
    Caller(c): Caller,
    Path(user_id): Path<String>,
    body: axum::body::Bytes,
) -> Result<Json<UserResponse>> {
    require_admin(&c, "identity:update_user")?;
    let change = user_change(&body, &user_id)?;
    let u = admin::user_update(&id.store, &user_id, change).await?;
    id.forget_user(&user_id);
    Ok(Json(UserResponse {
        user: user_body(&id, u),
    }))
}

#[utoipa::path(
    delete,
    path = "/v3/users/{user_id}",
    tag = "keystone",
    operation_id = "keystone_user_delete",
    summary = "Delete a user with its grants and tokens",
    params(("user_id" = String, Path, description = "The user's id")),
    security(("keystone_token" = [])),
    responses(
        (status = 204, description = "Deleted"),
        (status = 401, description = "Missing or invalid `X-Auth-Token`", body = ErrorBody),
        (status = 403, description = "The caller is not admin, or it is the bootstrap admin", body = ErrorBody),
        (status = 404, description = "No such user", body = ErrorBody),
    ),
)]
async fn user_delete(
    State(id): State<Identity>,
    Caller(c): Caller,
    Path(user_id): Path<String>,
) -> Result<Response> {
    require_admin(&c, "identity:delete_user")?;
    admin::user_delete(&id.store, &user_id).await?;
    id.forget_user(&user_id);
    Ok(no_content())
}

/// `{"user": {"password": ..., "original_password": ...}}`: no token needed;
/// a wrong original password is 401 in Keystone's words (and counts as a
/// failed login); success revokes every token of the user.
#[utoipa::path(
    post,
    path = "/v3/users/{user_id}/password",
    tag = "keystone",
    operation_id = "keystone_user_password_change",
    summary = "Change one's own password (no token: the original password is the credential)",
    params(("user_id" = String, Path, description = "The user's id")),
    request_body(content = PasswordChangeRequest, content_type = "application/json"),
    responses(
        (status = 204, description = "Changed; every token of the user is revoked"),
        (status = 400, description = "Malformed body", body = ErrorBody),
        (status = 401, description = "Wrong original password, an unknown or disabled user, or a locked account", body = ErrorBody),
        (status = 429, description = "Too many failed password checks from this address (`Retry-After`)", body = ErrorBody),
        (status = 503, description = "Every password-hashing thread is busy (`Retry-After`)", body = ErrorBody),
    ),
)]
async fn password_change(
    State(id): State<Identity>,
    peer: Peer,
    Path(user_id): Path<String>,
    body: axum::body::Bytes,
) -> Result<Response> {
    let mut m = body_object(&body, "user")?;
    let (Some(Some(original)), Some(Some(new))) = (
        take_string(&mut m, "original_password", false)?,
        take_string(&mut m, "password", false)?,
    ) else {
        return Err(KeystoneError::Invalid(
            "'original_password' and 'password' are required properties".into(),
        ));
    };
    if let Some(k) = m.keys().next() {
        return Err(KeystoneError::Invalid(format!(
            "Additional properties are not allowed ('{k}' was unexpected)"
        )));
    }
    id.change_password(&user_id, &original, &new, peer).await?;
    Ok(no_content())
}

/// Admin, or the user itself (the CLI's `project list` falls back to this
/// for a non-admin).
#[utoipa::path(
    get,
    path = "/v3/users/{user_id}/projects",
    tag = "keystone",
    operation_id = "keystone_user_projects",
    summary = "List the projects a user has a role on (admin, or the user itself)",
    params(("user_id" = String, Path, description = "The user's id")),
    security(("keystone_token" = [])),
    responses(
        (status = 200, description = "The projects", body = ProjectsResponse),
        (status = 401, description = "Missing or invalid `X-Auth-Token`", body = ErrorBody),
        (status = 403, description = "Another user, and the caller is not admin", body = ErrorBody),
        (status = 404, description = "No such user", body = ErrorBody),
    ),
)]
async fn user_projects(
    State(id): State<Identity>,
    Caller(c): Caller,
    Path(user_id): Path<String>,
) -> Result<Json<ProjectsResponse>> {
    if c.user_id != user_id {
        require_admin(&c, "identity:list_user_projects")?;
    }
    admin::user_get(&id.store, &user_id).await?;
    let projects = id.store.projects_of_user(&user_id).await?;
    Ok(Json(ProjectsResponse {
        projects: projects.into_iter().map(|p| project_body(&id, p)).collect(),
        links: collection_links(&id, &format!("users/{user_id}/projects")),
    }))
}

// ------------------------------------------------------------------ roles

#[utoipa::path(
    get,
    path = "/v3/roles",
    tag = "keystone",
    operation_id = "keystone_role_list",
    summary = "List roles",
    params(
        ("name" = Option<String>, Query, description = "Only the role of this name"),
        ("domain_id" = Option<String>, Query, description = "Only roles of this domain (any: none, roles are global)"),
    ),
    security(("keystone_token" = [])),
    responses(
        (status = 200, description = "The roles", body = RolesResponse),
        (status = 401, description = "Missing or invalid `X-Auth-Token`", body = ErrorBody),
        (status = 403, description = "The caller is not admin (Keystone's default policy)", body = ErrorBody),
    ),
)]
async fn role_list(
    State(id): State<Identity>,
    Caller(c): Caller,
    Query(q): Query<HashMap<String, String>>,
) -> Result<Json<RolesResponse>> {
    require_admin(&c, "identity:list_roles")?;
    let domain_scoped = q.get("domain_id").is_some_and(|d| !d.is_empty());
    let roles = roles::ROLES
        .iter()
        .filter(|r| !domain_scoped && q.get("name").is_none_or(|n| n == r.name))
        .map(|r| role_body(&id, r))
        .collect();
    Ok(Json(RolesResponse {
        roles,
        links: collection_links(&id, "roles"),
    }))
}

#[utoipa::path(
    get,
    path = "/v3/roles/{role_id}",
    tag = "keystone",
    operation_id = "keystone_role_show",
    summary = "Show a role",
    params(
        ("role_id" = String, Path, description = "The role's id (its name: `admin`, `member`, `reader`, `service`)"),
    ),
    security(("keystone_token" = [])),
    responses(
        (status = 200, description = "The role", body = RoleResponse),
        (status = 401, description = "Missing or invalid `X-Auth-Token`", body = ErrorBody),
        (status = 403, description = "The caller is not admin (Keystone's default policy)", body = ErrorBody),
        (status = 404, description = "No such role", body = ErrorBody),
    ),
)]
async fn role_show(
    State(id): State<Identity>,
    Caller(c): Caller,
    Path(role_id): Path<String>,
) -> Result<Json<RoleResponse>> {
    require_admin(&c, "identity:get_role")?;
    let r = roles::find(&role_id).ok_or_else(|| KeystoneError::not_found("role", role_id))?;
    Ok(Json(RoleResponse {
        role: role_body(&id, r),
    }))
}

fn role_ref(id: &Identity, r: &roles::RoleDef) -> RoleRefBody {
    RoleRefBody {
        id: r.name.to_string(),
        name: r.name.to_string(),
        description: r.description.to_string(),
        links: SelfLink {
            self_: format!("{}/roles/{}", base(id), r.name),
        },
    }
}

fn inferences_of(id: &Identity, r: &roles::RoleDef) -> RoleInferences {
    RoleInferences {
        prior_role: role_ref(id, r),
        implies: r
            .implies
            .iter()
            .filter_map(|i| roles::find(i))
            .map(|i| role_ref(id, i))
            .collect(),
    }
}

/// Every implication rule (`openstack implied role list`).
#[utoipa::path(
    get,
    path = "/v3/role_inferences",
    tag = "keystone",
    operation_id = "keystone_role_inference_list",
    summary = "List every implication rule",
    security(("keystone_token" = [])),
    responses(
        (status = 200, description = "The rules, by prior role", body = RoleInferencesResponse),
        (status = 401, description = "Missing or invalid `X-Auth-Token`", body = ErrorBody),
        (status = 403, description = "The caller is not admin (Keystone's default policy)", body = ErrorBody),
    ),
)]
async fn role_inferences(
    State(id): State<Identity>,
    Caller(c): Caller,
) -> Result<Json<RoleInferencesResponse>> {
    require_admin(&c, "identity:list_role_inference_rules")?;
    Ok(Json(RoleInferencesResponse {
        role_inferences: roles::ROLES
            .iter()
            .filter(|r| !r.implies.is_empty())
            .map(|r| inferences_of(&id, r))
            .collect(),
        links: collection_links(&id, "role_inferences"),
    }))
}

/// What one role implies directly.
#[utoipa::path(
    get,
    path = "/v3/roles/{role_id}/implies",
    tag = "keystone",
    operation_id = "keystone_role_implies",
    summary = "List the roles a role implies directly",
    params(("role_id" = String, Path, description = "The prior role's id")),
    security(("keystone_token" = [])),
    responses(
        (status = 200, description = "The role and what it implies", body = RoleImpliesResponse),
        (status = 401, description = "Missing or invalid `X-Auth-Token`", body = ErrorBody),
        (status = 403, description = "The caller is not admin (Keystone's default policy)", body = ErrorBody),
        (status = 404, description = "No such role", body = ErrorBody),
    ),
)]
async fn role_implies(
    State(id): State<Identity>,
    Caller(c): Caller,
    Path(role_id): Path<String>,
) -> Result<Json<RoleImpliesResponse>> {
    require_admin(&c, "identity:list_implied_roles")?;
    let r = roles::find(&role_id).ok_or_else(|| KeystoneError::not_found("role", role_id))?;
    Ok(Json(RoleImpliesResponse {
        role_inference: inferences_of(&id, r),
        links: SelfLink {
            self_: format!("{}/roles/{}/implies", base(&id), r.name),
        },
    }))
}

/// One implication rule (what an effective assignment's `prior_role` link names).
#[utoipa::path(
    get,
    path = "/v3/roles/{role_id}/implies/{implied_id}",
    tag = "keystone",
    operation_id = "keystone_role_inference_show",
    summary = "Show one implication rule",
    params(
        ("role_id" = String, Path, description = "The prior role's id"),
        ("implied_id" = String, Path, description = "The implied role's id"),
    ),
    security(("keystone_token" = [])),
    responses(
        (status = 200, description = "The rule", body = RoleInferenceResponse),
        (status = 401, description = "Missing or invalid `X-Auth-Token`", body = ErrorBody),
        (status = 403, description = "The caller is not admin (Keystone's default policy)", body = ErrorBody),
        (status = 404, description = "No such role, or the prior role does not imply the other", body = ErrorBody),
    ),
)]
async fn role_inference(
    State(id): State<Identity>,
    Caller(c): Caller,
    Path((role_id, implied_id)): Path<(String, String)>,
) -> Result<Json<RoleInferenceResponse>> {
    require_admin(&c, "identity:get_implied_role")?;
    let prior = roles::find(&role_id).ok_or_else(|| KeystoneError::not_found("role", role_id.clone()))?;
    let implied =
        roles::find(&implied_id).ok_or_else(|| KeystoneError::not_found("role", implied_id.clone()))?;
    if !prior.implies.contains(&implied.name) {
        return Err(KeystoneError::ImpliedRoleNotFound {
            prior: role_id,
            implied: implied_id,
        });
    }
    Ok(Json(RoleInferenceResponse {
        role_inference: RoleInference {
            prior_role: role_ref(&id, prior),
            implies: role_ref(&id, implied),
        },
        links: SelfLink {
            self_: format!("{}/roles/{}/implies/{}", base(&id), prior.name, implied.name),
        },
    }))
}

/// Filters `user.id`, `scope.project.id`, `role.id`; `effective`,
/// `include_names`. Groups, domains, the system scope and inheritance have no
/// assignments here: filtering by them lists none.
#[utoipa::path(
    get,
    path = "/v3/role_assignments",
    tag = "keystone",
    operation_id = "keystone_role_assignment_list",
    summary = "List role assignments",
    params(
        ("user.id" = Option<String>, Query, description = "Only this user's"),
        ("scope.project.id" = Option<String>, Query, description = "Only on this project"),
        ("role.id" = Option<String>, Query, description = "Only of this role"),
        ("effective" = Option<bool>, Query, description = "Also the roles the grants imply (present and not a false word: true)"),
        ("include_names" = Option<bool>, Query, description = "Also names (and domains) of the user, project and role"),
        ("group.id" = Option<String>, Query, description = "Any value: none (no group has assignments)"),
        ("scope.domain.id" = Option<String>, Query, description = "Any value: none (no domain has assignments)"),
        ("scope.system" = Option<String>, Query, description = "Any value: none (no system assignments)"),
        ("scope.OS-INHERIT:inherited_to" = Option<String>, Query, description = "Any value: none (no inherited assignments)"),
    ),
    security(("keystone_token" = [])),
    responses(
        (status = 200, description = "The assignments", body = AssignmentsResponse),
        (status = 401, description = "Missing or invalid `X-Auth-Token`", body = ErrorBody),
        (status = 403, description = "The caller is not admin (Keystone's default policy)", body = ErrorBody),
    ),
)]
async fn assignment_list(
    State(id): State<Identity>,
    Caller(c): Caller,
    Query(q): Query<HashMap<String, String>>,
) -> Result<Json<AssignmentsResponse>> {
    require_admin(&c, "identity:list_role_assignments")?;
    let none = [
        "group.id",
        "scope.domain.id",
        "scope.system",
        "scope.OS-INHERIT:inherited_to",
    ]
    .iter()
    .any(|k| q.contains_key(*k));
    let query = AssignmentQuery {
        user_id: q.get("user.id").cloned(),
        project_id: q.get("scope.project.id").cloned(),
        role_id: q.get("role.id").cloned(),
        effective: query_true(&q, "effective"),
    };
    let found = if none {
        Vec::new()
    } else {
        admin::assignments(&id.store, &query).await?
    };
    let names = query_true(&q, "include_names");
    Ok(Json(AssignmentsResponse {
        role_assignments: found
            .into_iter()
            .map(|a| assignment_body(&id, a, names))
            .collect(),
        links: collection_links(&id, "role_assignments"),
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bodies_are_checked_field_by_field() {
        let e = project_new(b"{not json").unwrap_err();
        assert!(matches!(e, KeystoneError::Validation(_)));
        let e = project_new(br#"{"project": {"name": 5}}"#).unwrap_err();
        assert_eq!(
            e.to_string(),
            "Invalid input for field/attribute name. Value: 5. 5 is not of type 'string'"
        );
        let e = project_new(br#"{"project": {}}"#).unwrap_err();
        assert_eq!(e.to_string(), "'name' is a required property");
        let e = project_new(br#"{"project": {"name": "p", "domain_id": "x"}}"#).unwrap_err();
        assert_eq!(e.to_string(), "Could not find domain: x.");
        let p = project_new(br#"{"project": {"name": " p ", "enabled": "false", "k": 1}}"#).unwrap();
        assert_eq!((p.name.as_str(), p.enabled, p.extra.len()), ("p", false, 1));
        let u = user_new(br#"{"user": {"name": "u", "email": "u@x", "password": "pw"}}"#).unwrap();
        assert_eq!(u.extra["email"], "u@x");
        assert_eq!(u.password.as_deref(), Some("pw"));
        assert!(user_change(br#"{"user": {"enabled": 3}}"#, "i").is_err());
    }
}
