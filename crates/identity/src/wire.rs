//! Keystone's JSON: the typed bodies the `/v3` handlers answer with, and the
//! documented shapes of the request bodies they read.
//!
//! Responses are built here from identity types (`From`), serialized by serde,
//! and described by the same types' `utoipa::ToSchema`, so the OpenAPI document
//! and the wire can't drift apart. The request side stays parsed by hand in
//! [`crate::keystone`] and [`crate::admin_api`], because Keystone's exact
//! refusal messages depend on which part of the body is missing or wrong;
//! [`AuthRequest`], [`ProjectCreateRequest`], [`UserCreateRequest`] and the
//! other `*Request` types only document them.

use serde::Serialize;
use serde_json::{Map, Value};
use utoipa::ToSchema;

use crate::{DEFAULT_DOMAIN_ID, DEFAULT_DOMAIN_NAME};

/// `GET /v3`: the Identity API version keystoneauth1 discovers.
#[derive(Debug, Serialize, ToSchema)]
#[schema(as = keystone::VersionDocument)]
pub struct VersionDocument {
    /// The one version this server speaks.
    pub version: Version,
}

/// An Identity API version and where it is.
#[derive(Debug, Serialize, ToSchema)]
#[schema(as = keystone::Version)]
pub struct Version {
    /// `v3.14`.
    pub id: &'static str,
    /// `stable`.
    pub status: &'static str,
    /// When that version was last changed (Keystone's date for it).
    pub updated: &'static str,
    /// `self`: this version's base URL.
    pub links: Vec<Link>,
    /// The media type of the API's bodies.
    #[serde(rename = "media-types")]
    pub media_types: Vec<MediaType>,
}

/// A link of a version document.
#[derive(Debug, Serialize, ToSchema)]
#[schema(as = keystone::Link)]
pub struct Link {
    /// `self`.
    pub rel: &'static str,
    /// Absolute URL, as the client addressed this server.
    pub href: String,
}

/// A media type the API speaks.
#[derive(Debug, Serialize, ToSchema)]
#[schema(as = keystone::MediaType)]
pub struct MediaType {
    /// `application/json`.
    pub base: &'static str,
    /// Keystone's vendor type for v3.
    #[serde(rename = "type")]
    pub media_type: &'static str,
}

/// A token, as `POST` and `GET /v3/auth/tokens` answer it (the token itself
/// travels in the `X-Subject-Token` header).
#[derive(Debug, Serialize, ToSchema)]
#[schema(as = keystone::TokenResponse)]
pub struct TokenResponse {
    /// What the token grants.
    pub token: Token,
}

/// A token's grant: who, for which project, with which roles, until when.
#[derive(Debug, Serialize, ToSchema)]
#[schema(as = keystone::Token)]
pub struct Token {
    /// `["password"]`.
    pub methods: Vec<&'static str>,
    /// The authenticated user.
    pub user: TokenUser,
    /// Random ids that name the token in logs without revealing it.
    pub audit_ids: Vec<String>,
    /// ISO 8601 with microseconds, UTC (`2024-01-01T00:00:00.000000Z`).
    pub expires_at: String,
    /// When it was issued, same format.
    pub issued_at: String,
    /// The project the token is scoped to.
    pub project: TokenProject,
    /// Always false: tokens are project-scoped.
    pub is_domain: bool,
    /// The user's roles on that project.
    pub roles: Vec<Role>,
    /// Where this cloud's services are.
    pub catalog: Vec<CatalogEntry>,
}

/// A Keystone domain (vpnaas has one, `Default`).
#[derive(Debug, Serialize, ToSchema)]
#[schema(as = keystone::Domain)]
pub struct Domain {
    /// `default`.
    pub id: &'static str,
    /// `Default`.
    pub name: &'static str,
}

impl Domain {
    /// The one domain every user and project belongs to.
    pub const DEFAULT: Domain = Domain {
        id: DEFAULT_DOMAIN_ID,
        name: DEFAULT_DOMAIN_NAME,
    };
}

/// The user a token was issued to.
#[derive(Debug, Serialize, ToSchema)]
#[schema(as = keystone::TokenUser)]
pub struct TokenUser {
    /// User id.
    pub id: String,
    /// User name.
    pub name: String,
    /// Its domain.
    pub domain: Domain,
    /// Always null: vpnaas passwords do not expire.
    #[schema(required = true)]
    pub password_expires_at: Option<String>,
}

/// The project a token is scoped to.
#[derive(Debug, Serialize, ToSchema)]
#[schema(as = keystone::TokenProject)]
pub struct TokenProject {
    /// Project id (the `project_id` of what the token may see).
    pub id: String,
    /// Project name.
    pub name: String,
    /// Its domain.
    pub domain: Domain,
}

/// A role on the token's project (`admin`, `member`, `reader`, `service`).
#[derive(Debug, Serialize, ToSchema)]
#[schema(as = keystone::Role)]
pub struct Role {
    /// Role id (vpnaas names roles by their name).
    pub id: String,
    /// Role name.
    pub name: String,
}

/// One service of the catalog (`network` = this server's Neutron API,
/// `identity` = its `/v3`).
#[derive(Debug, Serialize, ToSchema)]
#[schema(as = keystone::CatalogEntry)]
pub struct CatalogEntry {
    /// `network` or `identity`.
    #[serde(rename = "type")]
    pub service_type: &'static str,
    /// `neutron` or `keystone`.
    pub name: &'static str,
    /// A stable id of the service.
    pub id: &'static str,
    /// Where to reach it, per interface.
    pub endpoints: Vec<Endpoint>,
}

/// One endpoint of a catalog service.
#[derive(Debug, Serialize, ToSchema)]
#[schema(as = keystone::Endpoint)]
pub struct Endpoint {
    /// A stable id of the endpoint.
    pub id: &'static str,
    /// `public`, `internal` or `admin` (all the same URL here).
    pub interface: &'static str,
    /// The region name (`--region`, default `RegionOne`).
    pub region: String,
    /// The region id (same as its name).
    pub region_id: String,
    /// The service's base URL (this server's public URL).
    pub url: String,
}

/// Keystone's error envelope (also what keystonemiddleware answers in front of
/// Neutron when a token is missing or invalid).
#[derive(Debug, Serialize, ToSchema)]
#[schema(as = keystone::Error)]
pub struct ErrorBody {
    /// What went wrong.
    pub error: ErrorDetail,
}

/// The body of Keystone's error envelope.
#[derive(Debug, Serialize, ToSchema)]
#[schema(as = keystone::ErrorDetail)]
pub struct ErrorDetail {
    /// The HTTP status again.
    pub code: u16,
    /// The status's reason phrase.
    pub title: String,
    /// Keystone's message for this refusal.
    pub message: String,
}

// ------------------------------------------------------ request (documented)

/// `POST /v3/auth/tokens`: a password or an existing token, and optionally a
/// project scope (vpnaas issues project-scoped tokens only; without a scope the
/// user's default project is used).
#[derive(Debug, ToSchema)]
#[schema(as = keystone::AuthRequest)]
pub struct AuthRequest {
    /// Who and for what.
    pub auth: Auth,
}

/// The identity to prove and the scope asked for.
#[derive(Debug, ToSchema)]
#[schema(as = keystone::Auth)]
pub struct Auth {
    /// How the caller proves who it is.
    pub identity: AuthIdentity,
    /// The project the token is for (default: the user's default project).
    pub scope: Option<AuthScope>,
}

/// The authentication methods of a request and their credentials.
#[derive(Debug, ToSchema)]
#[schema(as = keystone::AuthIdentity)]
pub struct AuthIdentity {
    /// `password` or `token`.
    pub methods: Vec<String>,
    /// The credentials of the `password` method.
    pub password: Option<PasswordMethod>,
    /// The credentials of the `token` method.
    pub token: Option<TokenMethod>,
}

/// The `password` method's credentials.
#[derive(Debug, ToSchema)]
#[schema(as = keystone::PasswordMethod)]
pub struct PasswordMethod {
    /// The user and its password.
    pub user: PasswordUser,
}

/// A user by id or by name (in the default domain).
#[derive(Debug, ToSchema)]
#[schema(as = keystone::PasswordUser)]
pub struct PasswordUser {
    /// User id (or give `name`).
    pub id: Option<String>,
    /// User name (with `domain`).
    pub name: Option<String>,
    /// The user's password.
    pub password: String,
    /// The user's domain (`Default`).
    pub domain: Option<DomainRef>,
}

/// The `token` method's credentials: a valid token, for a new one.
#[derive(Debug, ToSchema)]
#[schema(as = keystone::TokenMethod)]
pub struct TokenMethod {
    /// The existing token.
    pub id: String,
}

/// The scope a token is asked for.
#[derive(Debug, ToSchema)]
#[schema(as = keystone::AuthScope)]
pub struct AuthScope {
    /// The project.
    pub project: Option<ProjectRef>,
}

/// A project by id, or by name in the default domain.
#[derive(Debug, ToSchema)]
#[schema(as = keystone::ProjectRef)]
pub struct ProjectRef {
    /// Project id (or give `name`).
    pub id: Option<String>,
    /// Project name (with `domain`).
    pub name: Option<String>,
    /// The project's domain (`Default`).
    pub domain: Option<DomainRef>,
}

/// A domain by id or name (only `default` / `Default` exists).
#[derive(Debug, ToSchema)]
#[schema(as = keystone::DomainRef)]
pub struct DomainRef {
    /// Domain id.
    pub id: Option<String>,
    /// Domain name.
    pub name: Option<String>,
}

// ------------------------------------------------ the admin subset (responses)

/// A resource's `links` (`self`: its URL).
#[derive(Debug, Serialize, ToSchema)]
#[schema(as = keystone::SelfLink)]
pub struct SelfLink {
    /// Absolute URL of the resource.
    #[serde(rename = "self")]
    pub self_: String,
}

/// A collection's `links`: vpnaas answers whole lists, so `next` and
/// `previous` are always null.
#[derive(Debug, Serialize, ToSchema)]
#[schema(as = keystone::CollectionLinks)]
pub struct CollectionLinks {
    /// Absolute URL of the collection.
    #[serde(rename = "self")]
    pub self_: String,
    /// Always null.
    #[schema(required = true)]
    pub next: Option<String>,
    /// Always null.
    #[schema(required = true)]
    pub previous: Option<String>,
}

/// A project as Keystone shows it (`GET /v3/projects/{id}`), with any other
/// attribute a client stored with it besides these.
#[derive(Debug, Serialize, ToSchema)]
#[schema(as = keystone::ProjectBody)]
pub struct ProjectBody {
    /// Project id.
    pub id: String,
    /// Unique name.
    pub name: String,
    /// Free-form.
    pub description: String,
    /// `default`.
    pub domain_id: &'static str,
    /// Whether tokens may be scoped to it.
    pub enabled: bool,
    /// Always false: projects here are projects only.
    pub is_domain: bool,
    /// The domain (`default`): projects are not nested.
    pub parent_id: &'static str,
    /// Keystone's project tags.
    #[schema(value_type = Vec<String>)]
    pub tags: Vec<Value>,
    /// Resource options (none are supported: always empty).
    #[schema(value_type = Object)]
    pub options: Map<String, Value>,
    /// `self`.
    pub links: SelfLink,
    /// Other attributes a client stored with it.
    #[serde(flatten)]
    #[schema(ignore)]
    pub extra: Map<String, Value>,
}

/// `{"project": ...}`.
#[derive(Debug, Serialize, ToSchema)]
#[schema(as = keystone::ProjectResponse)]
pub struct ProjectResponse {
    /// The project.
    pub project: ProjectBody,
}

/// `{"projects": [...], "links": ...}`.
#[derive(Debug, Serialize, ToSchema)]
#[schema(as = keystone::ProjectsResponse)]
pub struct ProjectsResponse {
    /// The projects, by name.
    pub projects: Vec<ProjectBody>,
    /// The collection's links.
    pub links: CollectionLinks,
}

/// A user as Keystone shows it (never its password), with any other
/// attribute a client stored with it (`email`, `description`, ...).
#[derive(Debug, Serialize, ToSchema)]
#[schema(as = keystone::UserBody)]
pub struct UserBody {
    /// User id.
    pub id: String,
    /// Unique name.
    pub name: String,
    /// `default`.
    pub domain_id: &'static str,
    /// Whether the user can authenticate.
    pub enabled: bool,
    /// Keystone's `default_project_id`, when set.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub default_project_id: Option<String>,
    /// Always null: passwords here do not expire.
    #[schema(required = true)]
    pub password_expires_at: Option<String>,
    /// Resource options (none are supported: always empty).
    #[schema(value_type = Object)]
    pub options: Map<String, Value>,
    /// `self`.
    pub links: SelfLink,
    /// Other attributes (`email`, `description`, ...).
    #[serde(flatten)]
    #[schema(ignore)]
    pub extra: Map<String, Value>,
}

/// `{"user": ...}`.
#[derive(Debug, Serialize, ToSchema)]
#[schema(as = keystone::UserResponse)]
pub struct UserResponse {
    /// The user.
    pub user: UserBody,
}

/// `{"users": [...], "links": ...}`.
#[derive(Debug, Serialize, ToSchema)]
#[schema(as = keystone::UsersResponse)]
pub struct UsersResponse {
    /// The users, by name.
    pub users: Vec<UserBody>,
    /// The collection's links.
    pub links: CollectionLinks,
}

/// A role (`admin`, `member`, `reader`, `service`; its id is its name).
#[derive(Debug, Serialize, ToSchema)]
#[schema(as = keystone::RoleBody)]
pub struct RoleBody {
    /// Role id (= name).
    pub id: String,
    /// Role name.
    pub name: String,
    /// What the role is for.
    pub description: String,
    /// Always null: roles are global.
    #[schema(required = true)]
    pub domain_id: Option<String>,
    /// Resource options (always empty).
    #[schema(value_type = Object)]
    pub options: Map<String, Value>,
    /// `self`.
    pub links: SelfLink,
}

/// `{"role": ...}`.
#[derive(Debug, Serialize, ToSchema)]
#[schema(as = keystone::RoleResponse)]
pub struct RoleResponse {
    /// The role.
    pub role: RoleBody,
}

/// `{"roles": [...], "links": ...}`.
#[derive(Debug, Serialize, ToSchema)]
#[schema(as = keystone::RolesResponse)]
pub struct RolesResponse {
    /// The roles, by name.
    pub roles: Vec<RoleBody>,
    /// The collection's links.
    pub links: CollectionLinks,
}

/// The one domain, `Default`.
#[derive(Debug, Serialize, ToSchema)]
#[schema(as = keystone::DomainBody)]
pub struct DomainBody {
    /// `default`.
    pub id: &'static str,
    /// `Default`.
    pub name: &'static str,
    /// What it is.
    pub description: &'static str,
    /// Always true.
    pub enabled: bool,
    /// Always empty.
    pub tags: Vec<String>,
    /// Always empty.
    #[schema(value_type = Object)]
    pub options: Map<String, Value>,
    /// `self`.
    pub links: SelfLink,
}

/// `{"domain": ...}`.
#[derive(Debug, Serialize, ToSchema)]
#[schema(as = keystone::DomainResponse)]
pub struct DomainResponse {
    /// The domain.
    pub domain: DomainBody,
}

/// `{"domains": [...], "links": ...}`.
#[derive(Debug, Serialize, ToSchema)]
#[schema(as = keystone::DomainsResponse)]
pub struct DomainsResponse {
    /// The domains (`Default`, unless a filter excludes it).
    pub domains: Vec<DomainBody>,
    /// The collection's links.
    pub links: CollectionLinks,
}

/// The user, project or role of an assignment: its id, and with
/// `include_names` its name (and the domain of a user or project).
#[derive(Debug, Serialize, ToSchema)]
#[schema(as = keystone::AssignmentRef)]
pub struct AssignmentRef {
    /// Id.
    pub id: String,
    /// Name (`include_names`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// Its domain (`include_names`; users and projects).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub domain: Option<Domain>,
}

/// An assignment's scope (always a project here).
#[derive(Debug, Serialize, ToSchema)]
#[schema(as = keystone::AssignmentScope)]
pub struct AssignmentScope {
    /// The project.
    pub project: AssignmentRef,
}

/// An assignment's links.
#[derive(Debug, Serialize, ToSchema)]
#[schema(as = keystone::AssignmentLinks)]
pub struct AssignmentLinks {
    /// The grant's URL (for an implied role, the grant of the role implying it).
    pub assignment: String,
    /// For an implied role: `/v3/roles/{prior}/implies/{implied}`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub prior_role: Option<String>,
}

/// One role assignment.
#[derive(Debug, Serialize, ToSchema)]
#[schema(as = keystone::AssignmentBody)]
pub struct AssignmentBody {
    /// The role.
    pub role: AssignmentRef,
    /// The user.
    pub user: AssignmentRef,
    /// Where.
    pub scope: AssignmentScope,
    /// Its links.
    pub links: AssignmentLinks,
}

/// `{"role_assignments": [...], "links": ...}`.
#[derive(Debug, Serialize, ToSchema)]
#[schema(as = keystone::AssignmentsResponse)]
pub struct AssignmentsResponse {
    /// The assignments.
    pub role_assignments: Vec<AssignmentBody>,
    /// The collection's links.
    pub links: CollectionLinks,
}

/// A role as an implication rule names it.
#[derive(Debug, Serialize, ToSchema)]
#[schema(as = keystone::RoleRefBody)]
pub struct RoleRefBody {
    /// Role id (= name).
    pub id: String,
    /// Role name.
    pub name: String,
    /// What the role is for.
    pub description: String,
    /// `self`.
    pub links: SelfLink,
}

/// One implication rule: a role and one role it implies.
#[derive(Debug, Serialize, ToSchema)]
#[schema(as = keystone::RoleInference)]
pub struct RoleInference {
    /// The implying role.
    pub prior_role: RoleRefBody,
    /// The implied role.
    pub implies: RoleRefBody,
}

/// `GET /v3/roles/{prior}/implies/{implied}`.
#[derive(Debug, Serialize, ToSchema)]
#[schema(as = keystone::RoleInferenceResponse)]
pub struct RoleInferenceResponse {
    /// The rule.
    pub role_inference: RoleInference,
    /// `self`.
    pub links: SelfLink,
}

/// A role with every role it implies directly.
#[derive(Debug, Serialize, ToSchema)]
#[schema(as = keystone::RoleInferences)]
pub struct RoleInferences {
    /// The implying role.
    pub prior_role: RoleRefBody,
    /// The roles it implies directly.
    pub implies: Vec<RoleRefBody>,
}

/// `GET /v3/role_inferences` (every role that implies another).
#[derive(Debug, Serialize, ToSchema)]
#[schema(as = keystone::RoleInferencesResponse)]
pub struct RoleInferencesResponse {
    /// The rules, by prior role.
    pub role_inferences: Vec<RoleInferences>,
    /// The collection's links.
    pub links: CollectionLinks,
}

/// `GET /v3/roles/{prior}/implies`.
#[derive(Debug, Serialize, ToSchema)]
#[schema(as = keystone::RoleImpliesResponse)]
pub struct RoleImpliesResponse {
    /// The role and what it implies directly.
    pub role_inference: RoleInferences,
    /// `self`.
    pub links: SelfLink,
}

// ------------------------------------------------- the admin subset (requests)
//
// Documented only, like [`AuthRequest`]: the handlers read each body field by
// field ([`crate::admin_api`]) for Keystone's exact refusals. Attributes not
// listed (a user's `email`, anything else) are kept as "extra" and shown back.

/// `POST /v3/projects`.
#[derive(Debug, ToSchema)]
#[schema(as = keystone::ProjectCreateRequest)]
pub struct ProjectCreateRequest {
    /// The new project.
    pub project: ProjectCreate,
}

/// A new project's attributes.
#[derive(Debug, ToSchema)]
#[schema(as = keystone::ProjectCreate)]
pub struct ProjectCreate {
    /// Unique name (1 to 64 characters, not only white space; trimmed).
    #[schema(min_length = 1, max_length = 64, pattern = r"[\S]+")]
    pub name: String,
    /// Free-form (default empty).
    pub description: Option<String>,
    /// Whether tokens may be scoped to it (default true; also `"true"`/`"false"`).
    pub enabled: Option<bool>,
    /// `default` (the only domain; any other is 404).
    #[schema(pattern = "^default$")]
    pub domain_id: Option<String>,
    /// Only false: this server has one domain.
    pub is_domain: Option<bool>,
    /// `default` or null: projects are not nested.
    #[schema(pattern = "^default$")]
    pub parent_id: Option<String>,
    /// Keystone's project tags (at most 80, without `,` or `/`).
    #[schema(max_items = 80)]
    pub tags: Option<Vec<String>>,
    /// Resource options: only `{}` (none are supported).
    pub options: Option<NoOptions>,
}

/// `PATCH /v3/projects/{project_id}`.
#[derive(Debug, ToSchema)]
#[schema(as = keystone::ProjectUpdateRequest)]
pub struct ProjectUpdateRequest {
    /// The attributes to change (at least one).
    pub project: ProjectUpdate,
}

/// A project's attributes to change (`null` `description`: empty).
#[derive(Debug, ToSchema)]
#[schema(as = keystone::ProjectUpdate, min_properties = 1)]
pub struct ProjectUpdate {
    /// Its id again (it can't change).
    pub id: Option<String>,
    /// A new unique name (1 to 64 characters, not only white space).
    #[schema(min_length = 1, max_length = 64, pattern = r"[\S]+")]
    pub name: Option<String>,
    /// A new description.
    pub description: Option<String>,
    /// Enable or disable (disabling revokes the tokens scoped to it; the
    /// bootstrap admin project can't be disabled).
    pub enabled: Option<bool>,
    /// `default`.
    #[schema(pattern = "^default$")]
    pub domain_id: Option<String>,
    /// Only false.
    pub is_domain: Option<bool>,
    /// `default` or null.
    #[schema(pattern = "^default$")]
    pub parent_id: Option<String>,
    /// New tags (at most 80, without `,` or `/`).
    #[schema(max_items = 80)]
    pub tags: Option<Vec<String>>,
    /// Only `{}`.
    pub options: Option<NoOptions>,
}

/// `POST /v3/users`.
#[derive(Debug, ToSchema)]
#[schema(as = keystone::UserCreateRequest)]
pub struct UserCreateRequest {
    /// The new user.
    pub user: UserCreate,
}

/// A new user's attributes.
#[derive(Debug, ToSchema)]
#[schema(as = keystone::UserCreate)]
pub struct UserCreate {
    /// Unique name (1 to 255 characters, not only white space; trimmed).
    #[schema(min_length = 1, max_length = 255, pattern = r"[\S]+")]
    pub name: String,
    /// Its password (none: it can't authenticate with one).
    pub password: Option<String>,
    /// Whether it can authenticate (default true).
    pub enabled: Option<bool>,
    /// Keystone's `default_project_id` (grants nothing by itself).
    pub default_project_id: Option<String>,
    /// `default` (the only domain; any other is 404).
    #[schema(pattern = "^default$")]
    pub domain_id: Option<String>,
    /// Kept as an extra attribute.
    pub email: Option<String>,
    /// Kept as an extra attribute.
    pub description: Option<String>,
    /// Resource options: only `{}`.
    pub options: Option<NoOptions>,
}

/// `PATCH /v3/users/{user_id}`.
#[derive(Debug, ToSchema)]
#[schema(as = keystone::UserUpdateRequest)]
pub struct UserUpdateRequest {
    /// The attributes to change.
    pub user: UserUpdate,
}

/// A user's attributes to change (an extra attribute set to `null` is removed).
#[derive(Debug, ToSchema)]
#[schema(as = keystone::UserUpdate)]
pub struct UserUpdate {
    /// Its id again (it can't change).
    pub id: Option<String>,
    /// A new unique name.
    #[schema(min_length = 1, max_length = 255, pattern = r"[\S]+")]
    pub name: Option<String>,
    /// A new password (revokes the user's tokens).
    pub password: Option<String>,
    /// Enable or disable (disabling revokes its tokens; the bootstrap admin
    /// can't be disabled).
    pub enabled: Option<bool>,
    /// A new default project (`null` clears it).
    pub default_project_id: Option<String>,
    /// `default`.
    #[schema(pattern = "^default$")]
    pub domain_id: Option<String>,
    /// An extra attribute.
    pub email: Option<String>,
    /// An extra attribute.
    pub description: Option<String>,
    /// Only `{}`.
    pub options: Option<NoOptions>,
}

/// `POST /v3/users/{user_id}/password`.
#[derive(Debug, ToSchema)]
#[schema(as = keystone::PasswordChangeRequest)]
pub struct PasswordChangeRequest {
    /// The old and the new password.
    pub user: PasswordChange,
}

/// A password change: the original password is the credential.
#[derive(Debug, ToSchema)]
#[schema(as = keystone::PasswordChange)]
pub struct PasswordChange {
    /// The current password.
    pub original_password: String,
    /// The new password.
    pub password: String,
}

/// Resource options of a request: none are supported, so only `{}` (or null).
#[derive(Debug, ToSchema)]
#[schema(as = keystone::NoOptions, max_properties = 0)]
pub struct NoOptions {}
