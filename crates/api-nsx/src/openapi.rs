//! The OpenAPI description of the NSX routes, built from the code that serves
//! them: each resource's schema is its [`Resource::Wire`] type's (the
//! `ManagedResource` fields merged in, `resource_type` limited to
//! [`Resource::RESOURCE_TYPES`]), its paths are [`crate::PREFIX`] and
//! [`Resource::SEGMENT`], its list filters [`Resource::FILTERS`].
//!
//! Request bodies are the resource's own schema, as in NSX's documentation:
//! a client may send back what GET showed (read-only and unknown fields are
//! ignored). No field is marked required in a create body, because which are
//! depends on the resource and, for sessions, on `resource_type` (a missing
//! one is a 400 that names it); a PUT body (`<Type>Update`) requires
//! `_revision`. Lists take
//! `included_fields`, so their items are `<Type>Fields`, the schema without
//! `required`.

use model::openapi::{
    add_schema, document, id_param, json_body, json_response, query, query_builder, schema_ref,
};
use utoipa::ToSchema;
use utoipa::openapi::path::{HttpMethod, OperationBuilder};
use utoipa::openapi::request_body::RequestBodyBuilder;
use utoipa::openapi::schema::{ArrayBuilder, ObjectBuilder, Schema, Type};
use utoipa::openapi::security::{
    ApiKey, ApiKeyValue, HttpAuthScheme, HttpBuilder, SecurityRequirement, SecurityScheme,
};
use utoipa::openapi::{Components, ContentBuilder, OpenApi, RefOr, Required, ResponseBuilder};

use crate::query::MAX_PAGE;
use crate::resources::{
    DpdProfiles, IkeProfiles, LocalEndpoints, PeerEndpoints, Resource, Services, Sessions, TunnelProfiles,
};
use crate::{PREFIX, response};

const TAG: &str = "nsx";
/// HTTP basic credentials of an admin user (what vmware-nsxlib sends).
pub(crate) const BASIC_SCHEME: &str = "nsx_basic";
/// A `POST /api/session/create` cookie (writes also need its `X-XSRF-TOKEN`).
pub(crate) const SESSION_SCHEME: &str = "nsx_session";

/// Fields the server sets; a body that carries them (a GET echoed back) is fine.
const READ_ONLY: &[&str] = &[
    "_create_time",
    "_create_user",
    "_last_modified_time",
    "_last_modified_user",
    "_system_owned",
    "_protection",
];

/// The OpenAPI description of [`crate::router`] and [`crate::state::router`].
pub fn openapi() -> OpenApi {
    let mut doc = Doc::default();
    doc.resource::<IkeProfiles>();
    doc.resource::<TunnelProfiles>();
    doc.resource::<DpdProfiles>();
    doc.resource::<Services>();
    doc.resource::<LocalEndpoints>();
    doc.resource::<PeerEndpoints>();
    doc.resource::<Sessions>();
    doc.state_and_status();
    doc.runtime();
    doc.session_and_node();
    doc.schema::<response::ErrorBody>();
    // Every resource has the common fields (and the profiles their algorithm
    // lists) merged in.
    for merged in [
        <response::Managed as ToSchema>::name(),
        <response::Algorithms as ToSchema>::name(),
    ] {
        doc.components.schemas.remove(&merged.into_owned());
    }
    doc.components.add_security_scheme(
        BASIC_SCHEME,
        SecurityScheme::Http(
            HttpBuilder::new()
                .scheme(HttpAuthScheme::Basic)
                .description(Some("An admin user's name and password"))
                .build(),
        ),
    );
    doc.components.add_security_scheme(
        SESSION_SCHEME,
        SecurityScheme::ApiKey(ApiKey::Cookie(ApiKeyValue::with_description(
            "JSESSIONID",
            "From `POST /api/session/create`; writes also send its `X-XSRF-TOKEN` header",
        ))),
    );
    document(doc.paths, doc.components)
}

#[derive(Default)]
struct Doc {
    paths: utoipa::openapi::Paths,
    components: Components,
}

fn string() -> ObjectBuilder {
    ObjectBuilder::new().schema_type(Type::String)
}

/// Adds the error answers `codes` (all in NSX's `ApiError` envelope).
fn errors(mut op: OperationBuilder, codes: &[(u16, &str)]) -> OperationBuilder {
    let envelope = <response::ErrorBody as ToSchema>::name();
    for (code, description) in codes {
        op = op.response(
            code.to_string(),
            json_response(description, schema_ref(&envelope)),
        );
    }
    op
}

/// What refusing the caller answers (every authenticated operation).
const AUTH_ERRORS: [(u16, &str); 3] = [
    (
        403,
        "Missing or wrong credentials, a session cookie on a write without its X-XSRF-TOKEN, or not an admin",
    ),
    (
        429,
        "Too many failed password checks from this address (`Retry-After`)",
    ),
    (503, "Every password-hashing thread is busy (`Retry-After`)"),
];

fn with_auth_errors(op: OperationBuilder, codes: &[(u16, &str)]) -> OperationBuilder {
    let mut all = codes.to_vec();
    all.extend(AUTH_ERRORS);
    all.sort_by_key(|(c, _)| *c);
    errors(op, &all)
}

fn operation(id: String, summary: String) -> OperationBuilder {
    OperationBuilder::new()
        .tag(TAG)
        .operation_id(Some(id))
        .summary(Some(summary))
        .securities(Some([
            SecurityRequirement::new(BASIC_SCHEME, Vec::<String>::new()),
            SecurityRequirement::new(SESSION_SCHEME, Vec::<String>::new()),
        ]))
}

impl Doc {
    /// Adds `T`'s schema and every schema it refers to.
    fn schema<T: ToSchema>(&mut self) {
        add_schema::<T>(&mut self.components);
    }

    fn object(&self, name: &str) -> Option<utoipa::openapi::schema::Object> {
        match self.components.schemas.get(name)? {
            RefOr::T(Schema::Object(o)) => Some(o.clone()),
            _ => None,
        }
    }

    /// Replaces `name`'s `allOf` (the flattened `ManagedResource` and the
    /// resource's own fields) with one object, so each resource reads whole.
    fn merge_all_of(&mut self, name: &str) {
        let Some(RefOr::T(Schema::AllOf(all))) = self.components.schemas.get(name).cloned() else {
            return;
        };
        let mut merged = ObjectBuilder::new().schema_type(Type::Object).build();
        for item in &all.items {
            let part = match item {
                RefOr::T(Schema::Object(o)) => Some(o.clone()),
                RefOr::Ref(r) => r.ref_location.rsplit('/').next().and_then(|n| self.object(n)),
                _ => None,
            };
            if let Some(p) = part {
                merged.properties.extend(p.properties);
                merged.required.extend(p.required);
            }
        }
        merged.description = all.description;
        self.components
            .schemas
            .insert(name.to_string(), RefOr::T(Schema::Object(merged)));
    }

    /// Limits `resource_type` to `types` and marks the server-set fields read-only.
    fn refine(&mut self, name: &str, types: &[&str]) {
        let Some(RefOr::T(Schema::Object(o))) = self.components.schemas.get_mut(name) else {
            return;
        };
        o.properties.insert(
            "resource_type".into(),
            string()
                .enum_values(Some(types.iter().copied()))
                .description(Some("This object's type"))
                .into(),
        );
        for f in READ_ONLY {
            if let Some(RefOr::T(Schema::Object(p))) = o.properties.get_mut(*f) {
                p.read_only = Some(true);
            }
        }
    }

    /// `<name>Fields`: `name` without `required`.
    fn fields_variant(&mut self, name: &str) -> String {
        let partial = format!("{name}Fields");
        if let Some(mut o) = self.object(name) {
            o.required.clear();
            o.description = Some(format!(
                "`{name}` without required fields: what a list with `included_fields` answers, and what a \
                 create body may carry"
            ));
            self.components
                .schemas
                .insert(partial.clone(), RefOr::T(Schema::Object(o)));
        }
        partial
    }

    /// `<name>Update`: a PUT body, `<name>Fields` with `_revision` required.
    fn update_variant(&mut self, name: &str) -> String {
        let update = format!("{name}Update");
        if let Some(mut o) = self.object(name) {
            o.required = vec!["_revision".into()];
            o.description = Some(format!(
                "A PUT body: `{name}`'s fields to change, with the current `_revision` (a GET body \
                 sent back is one)"
            ));
            self.components
                .schemas
                .insert(update.clone(), RefOr::T(Schema::Object(o)));
        }
        update
    }

    fn add(&mut self, path: &str, method: HttpMethod, op: OperationBuilder) {
        self.paths.add_path_operation(path, vec![method], op.build());
    }

    fn resource<R: Resource>(&mut self) {
        self.schema::<R::Wire>();
        let name = <R::Wire as ToSchema>::name().into_owned();
        self.merge_all_of(&name);
        self.refine(&name, R::RESOURCE_TYPES);
        let fields = self.fields_variant(&name);
        let update_body = self.update_variant(&name);
        let seg = R::SEGMENT;
        let key = seg.replace('-', "_");
        let path = format!("{PREFIX}/{seg}");
        let member = format!("{path}/{{id}}");
        let t = R::RESOURCE_TYPE;

        // list
        let list_result = format!("{name}ListResult");
        self.components.schemas.insert(
            list_result.clone(),
            ObjectBuilder::new()
                .schema_type(Type::Object)
                .description(Some("NSX's ListResult: one page, and how many match in all"))
                .property("results", ArrayBuilder::new().items(schema_ref(&fields)))
                .required("results")
                .property(
                    "result_count",
                    ObjectBuilder::new()
                        .schema_type(Type::Integer)
                        .minimum(Some(0))
                        .description(Some("Every match, not only this page")),
                )
                .required("result_count")
                .property(
                    "cursor",
                    string().description(Some("Where the next page starts; absent on the last page")),
                )
                .property("sort_by", string())
                .property("sort_ascending", ObjectBuilder::new().schema_type(Type::Boolean))
                .required("sort_ascending")
                .into(),
        );
        let mut op = operation(format!("nsx_{key}_list"), format!("List {t} objects"))
            .parameter(query("cursor", string(), "From the previous page's `cursor`"))
            .parameter(query(
                "page_size",
                ObjectBuilder::new()
                    .schema_type(Type::Integer)
                    .minimum(Some(0))
                    .maximum(Some(MAX_PAGE as i64)),
                "Objects per page (0: the default, 1000)",
            ))
            .parameter(query(
                "included_fields",
                string(),
                "Only these fields (comma-separated)",
            ))
            .parameter(query("sort_by", string(), "A field to sort by"))
            .parameter(query(
                "sort_ascending",
                ObjectBuilder::new().schema_type(Type::Boolean),
                "Sort order (default true)",
            ));
        for f in R::FILTERS {
            op = op.parameter(query(f, string(), &format!("Only objects with this `{f}`")));
        }
        let op = op.response("200", json_response("One page", schema_ref(&list_result)));
        self.add(
            &path,
            HttpMethod::Get,
            with_auth_errors(op, &[(400, "A bad query parameter")]),
        );

        // create
        let op = operation(format!("nsx_{key}_create"), format!("Create a {t}"))
            .request_body(Some(json_body(schema_ref(&fields))))
            .response("201", json_response("Created", schema_ref(&name)));
        self.add(
            &path,
            HttpMethod::Post,
            with_auth_errors(
                op,
                &[
                    (
                        400,
                        "A field is missing, of the wrong type or out of range, or a rule failed",
                    ),
                    (404, "An object the body refers to does not exist"),
                ],
            ),
        );

        // show
        let op = operation(format!("nsx_{key}_show"), format!("Show a {t}"))
            .parameter(id_param("The object's id"))
            .parameter(query(
                "action",
                string().enum_values(Some(["show-sensitive-data"])),
                "`show-sensitive-data`: include secrets (a peer endpoint's `psk`)",
            ))
            .response("200", json_response("The object", schema_ref(&name)));
        self.add(
            &member,
            HttpMethod::Get,
            with_auth_errors(op, &[(400, "An unsupported `action`"), (404, "No such object")]),
        );

        // update
        let op = operation(format!("nsx_{key}_update"), format!("Update a {t}"))
            .parameter(id_param("The object's id"))
            .request_body(Some(json_body(schema_ref(&update_body))))
            .response("200", json_response("Updated", schema_ref(&name)));
        self.add(
            &member,
            HttpMethod::Put,
            with_auth_errors(
                op,
                &[
                    (400, "A bad field, a rule failed, or a system-owned default"),
                    (404, "No such object, or one the body refers to"),
                    (412, "`_revision` missing or not the current one"),
                ],
            ),
        );

        // delete
        let op = operation(format!("nsx_{key}_delete"), format!("Delete a {t}"))
            .parameter(id_param("The object's id"))
            .response("200", ResponseBuilder::new().description("Deleted").build());
        self.add(
            &member,
            HttpMethod::Delete,
            with_auth_errors(
                op,
                &[
                    (400, "In use by another object, or a system-owned default"),
                    (404, "No such object"),
                ],
            ),
        );
    }

    fn state_and_status(&mut self) {
        self.schema::<response::SessionState>();
        self.schema::<response::SessionStatus>();
        let op = operation(
            "nsx_session_state".into(),
            "A session's realization state on its transport nodes".into(),
        )
        .parameter(id_param("The session's (or Neutron connection's) id"))
        .parameter(query(
            "request_id",
            string(),
            "The `x-nsx-requestid` of a write: the state of that change",
        ))
        .parameter(query(
            "barrier_id",
            ObjectBuilder::new().schema_type(Type::Integer).minimum(Some(0)),
            "Deprecated: a generation number instead of `request_id`",
        ))
        .response(
            "200",
            json_response(
                "Per node and overall",
                schema_ref(&<response::SessionState as ToSchema>::name()),
            ),
        );
        self.add(
            &format!("{PREFIX}/sessions/{{id}}/state"),
            HttpMethod::Get,
            with_auth_errors(
                op,
                &[
                    (400, "A bad query value, or the session's service is disabled"),
                    (404, "No such session or request id"),
                ],
            ),
        );
        let op = operation("nsx_session_status".into(), "A session's runtime status".into())
            .parameter(id_param("The session's (or Neutron connection's) id"))
            .parameter(query(
                "source",
                string().enum_values(Some(["realtime", "cached"])),
                "Both answer the nodes' last reports",
            ))
            .response(
                "200",
                json_response(
                    "Tunnels and traffic",
                    schema_ref(&<response::SessionStatus as ToSchema>::name()),
                ),
            );
        self.add(
            &format!("{PREFIX}/sessions/{{id}}/status"),
            HttpMethod::Get,
            with_auth_errors(op, &[(400, "A bad `source`"), (404, "No such session")]),
        );
    }

    /// Statistics, their reset and the sessions summary (`crate::state`).
    fn runtime(&mut self) {
        self.schema::<response::SessionStatistics>();
        self.schema::<response::SessionSummary>();
        let source = || {
            query(
                "source",
                string().enum_values(Some(["realtime", "cached"])),
                "Both answer the nodes' last reports",
            )
        };
        let op = operation(
            "nsx_session_statistics".into(),
            "A session's traffic statistics, per policy, selector pair and node".into(),
        )
        .parameter(id_param("The session's (or Neutron connection's) id"))
        .parameter(source())
        .response(
            "200",
            json_response(
                "Counters since the last reset (charon's restart at 0 when a CHILD SA is rekeyed)",
                schema_ref(&<response::SessionStatistics as ToSchema>::name()),
            ),
        );
        let path = format!("{PREFIX}/sessions/{{id}}/statistics");
        self.add(
            &path,
            HttpMethod::Get,
            with_auth_errors(
                op,
                &[
                    (400, "A bad `source`, or the session's service is disabled"),
                    (404, "No such session"),
                ],
            ),
        );
        let op = operation(
            "nsx_session_statistics_reset".into(),
            "Reset a session's statistics: the next read counts from zero".into(),
        )
        .parameter(id_param("The session's (or Neutron connection's) id"))
        .parameter(
            query_builder(
                "action",
                string().enum_values(Some(["reset"])),
                "The only action: `reset`",
            )
            .required(Required::True)
            .build(),
        )
        .response(
            "200",
            ResponseBuilder::new().description("Reset (no body)").build(),
        );
        self.add(
            &path,
            HttpMethod::Post,
            with_auth_errors(
                op,
                &[
                    (
                        400,
                        "A missing or unknown `action`, or the session's service is disabled",
                    ),
                    (404, "No such session"),
                ],
            ),
        );
        let op = operation(
            "nsx_sessions_summary".into(),
            "How many sessions are up, down and degraded, and their traffic".into(),
        )
        .parameter(query(
            "site_id",
            string(),
            "A peer endpoint's id: only the sessions made from it",
        ))
        .parameter(query(
            "source",
            string().enum_values(Some(["cached"])),
            "As NSX: the summary supports only `cached`",
        ))
        .response(
            "200",
            json_response(
                "Totals over every session",
                schema_ref(&<response::SessionSummary as ToSchema>::name()),
            ),
        );
        self.add(
            &format!("{PREFIX}/sessions/summary"),
            HttpMethod::Get,
            with_auth_errors(op, &[(400, "A `source` other than `cached`")]),
        );
    }

    /// Login sessions, the health probe and the version.
    fn session_and_node(&mut self) {
        self.schema::<response::Health>();
        self.schema::<response::NodeProperties>();
        let form = ObjectBuilder::new()
            .schema_type(Type::Object)
            .property("j_username", string())
            .property("j_password", string())
            .required("j_username")
            .required("j_password");
        let op = OperationBuilder::new()
            .tag(TAG)
            .operation_id(Some("nsx_session_create"))
            .summary(Some("Log in: a JSESSIONID cookie and its X-XSRF-TOKEN"))
            .request_body(Some(
                RequestBodyBuilder::new()
                    .required(Some(Required::True))
                    .content(
                        "application/x-www-form-urlencoded",
                        ContentBuilder::new().schema(Some(form)).build(),
                    )
                    .build(),
            ))
            .response(
                "200",
                ResponseBuilder::new()
                    .description("Logged in")
                    .header(
                        "Set-Cookie",
                        utoipa::openapi::header::Header::new(
                            string().description(Some("`JSESSIONID=...; Path=/; HttpOnly`")),
                        ),
                    )
                    .header("X-XSRF-TOKEN", utoipa::openapi::header::Header::new(string()))
                    .build(),
            );
        let op = errors(op, &AUTH_ERRORS);
        self.add("/api/session/create", HttpMethod::Post, op);
        let op = OperationBuilder::new()
            .tag(TAG)
            .operation_id(Some("nsx_session_destroy"))
            .summary(Some("Log out the JSESSIONID cookie's session, if any"))
            .response("200", ResponseBuilder::new().description("Logged out").build());
        self.add("/api/session/destroy", HttpMethod::Post, op);
        let health = <response::Health as ToSchema>::name();
        let op = OperationBuilder::new()
            .tag(TAG)
            .operation_id(Some("nsx_health"))
            .summary(Some("vmware-nsxlib's cluster probe (unauthenticated)"))
            .response(
                "200",
                json_response("The store answers reads", schema_ref(&health)),
            )
            .response(
                "503",
                json_response("The store did not answer a read in time", schema_ref(&health)),
            );
        self.add("/api/v1/reverse-proxy/node/health", HttpMethod::Get, op);
        let op = operation(
            "nsx_node".into(),
            "The NSX Manager version this server implements".into(),
        )
        .response(
            "200",
            json_response(
                "The version",
                schema_ref(&<response::NodeProperties as ToSchema>::name()),
            ),
        );
        self.add("/api/v1/node", HttpMethod::Get, with_auth_errors(op, &[]));
    }
}
