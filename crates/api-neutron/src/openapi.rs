//! The OpenAPI description of the Neutron routes, built from the code that
//! serves them: every resource's response schema is its [`View::Wire`] type's,
//! its request bodies and list parameters come from its attribute table
//! (`attrs`: what POST and PUT take, defaults, value checks, which attributes
//! filter and sort), and its paths are the collections the router mounts.
//!
//! The handlers are generic over [`View`], so their operations are built here
//! with utoipa's builders rather than per-function path attributes.
//!
//! List and show take `fields=`, which leaves attributes out: their items are
//! `<Resource>Fields`, the resource's schema without `required`. Create and
//! update answer whole objects.

use model::openapi::{
    add_schema, document, id_param, json_body, json_response, query, query_builder, schema_ref,
};
use serde_json::Value;
use utoipa::ToSchema;
use utoipa::openapi::path::{
    HttpMethod, OperationBuilder, Parameter, ParameterBuilder, ParameterIn, ParameterStyle,
};
use utoipa::openapi::schema::{
    AdditionalProperties, ArrayBuilder, ObjectBuilder, Schema, SchemaFormat, SchemaType, Type,
};
use utoipa::openapi::security::SecurityRequirement;
use utoipa::openapi::{Components, OpenApi, RefOr, Required, ResponseBuilder};

use crate::attrs::{Attr, Check, Conv, DPD_ACTIONS, Default as AttrDefault, LIFETIME_UNITS, NAME_LEN};
use crate::views::{
    self, Connections, EndpointGroups, IkePolicies, IpsecPolicies, Networks, Routers, Subnets, View,
    VpnServices,
};
use crate::wire;

const TAG: &str = "neutron";

/// The OpenAPI description of [`crate::router`].
pub fn openapi() -> OpenApi {
    let mut doc = Doc::default();
    doc.resource::<IkePolicies>();
    doc.resource::<IpsecPolicies>();
    doc.resource::<VpnServices>();
    doc.resource::<EndpointGroups>();
    doc.resource::<Connections>();
    doc.resource::<Networks>();
    doc.resource::<Subnets>();
    doc.resource::<Routers>();
    doc.router_interfaces();
    doc.read_only::<wire::Port>("port", "ports", &views::PORT_ATTRS);
    doc.discovery();
    doc.watch();
    doc.schema::<wire::ErrorBody>();
    document(doc.paths, doc.components)
}

#[derive(Default)]
struct Doc {
    paths: utoipa::openapi::Paths,
    components: Components,
}

/// One collection: where it is and what it is called.
struct Collection<'a> {
    path: String,
    singular: &'static str,
    plural: &'static str,
    attrs: &'a [Attr],
    aliases: &'a [(&'a str, &'a str)],
    /// The component name of the whole object.
    schema: String,
}

/// `{key: <schema>}`, `key` required.
fn wrapped(key: &str, inner: RefOr<Schema>) -> Schema {
    ObjectBuilder::new()
        .schema_type(Type::Object)
        .property(key, inner)
        .required(key)
        .into()
}

fn array(items: impl Into<RefOr<Schema>>) -> Schema {
    ArrayBuilder::new().items(items.into()).into()
}

fn strings(values: &[&str]) -> ObjectBuilder {
    ObjectBuilder::new()
        .schema_type(Type::String)
        .enum_values(Some(values.iter().copied()))
}

fn integer(min: i64, max: Option<i64>) -> ObjectBuilder {
    ObjectBuilder::new()
        .schema_type(Type::Integer)
        .minimum(Some(min))
        .maximum(max)
}

fn nullable(o: ObjectBuilder, t: Type) -> ObjectBuilder {
    o.schema_type(SchemaType::Array(vec![t, Type::Null]))
}

/// What a POST or PUT attribute takes, from its check (and converter).
fn attr_schema(a: &Attr) -> Schema {
    let u32_max = Some(i64::from(u32::MAX));
    let o = match a.check {
        Check::None => ObjectBuilder::new(),
        Check::Str(max) => ObjectBuilder::new()
            .schema_type(Type::String)
            .max_length(Some(max)),
        Check::Values(values) => strings(values),
        Check::Uuid => ObjectBuilder::new()
            .schema_type(Type::String)
            .format(Some(SchemaFormat::Custom("uuid".into()))),
        Check::UuidOrNone => nullable(
            ObjectBuilder::new().format(Some(SchemaFormat::Custom("uuid".into()))),
            Type::String,
        ),
        Check::NonNegative => integer(0, u32_max),
        Check::Boolean => ObjectBuilder::new().schema_type(Type::Boolean),
        Check::Lifetime => ObjectBuilder::new()
            .schema_type(Type::Object)
            .property("units", strings(LIFETIME_UNITS))
            .property("value", integer(60, u32_max))
            .additional_properties(Some(AdditionalProperties::<Schema>::FreeForm(false))),
        Check::Dpd => ObjectBuilder::new()
            .schema_type(Type::Object)
            .property("action", strings(DPD_ACTIONS))
            .property("interval", integer(0, u32_max))
            .property("timeout", integer(0, u32_max))
            .additional_properties(Some(AdditionalProperties::<Schema>::FreeForm(false))),
        Check::Cidr => ObjectBuilder::new()
            .schema_type(Type::String)
            .description(Some("A CIDR")),
        Check::IpVersion => ObjectBuilder::new()
            .schema_type(Type::Integer)
            .enum_values(Some([4, 6])),
        Check::IpOrNone => nullable(
            ObjectBuilder::new().description(Some("An IP address")),
            Type::String,
        ),
        Check::GatewayInfo => {
            let fixed_ip = ObjectBuilder::new()
                .schema_type(Type::Object)
                .property(
                    "subnet_id",
                    ObjectBuilder::new()
                        .schema_type(Type::String)
                        .format(Some(SchemaFormat::Custom("uuid".into()))),
                )
                .property("ip_address", ObjectBuilder::new().schema_type(Type::String))
                .additional_properties(Some(AdditionalProperties::<Schema>::FreeForm(false)));
            nullable(
                ObjectBuilder::new()
                    .property(
                        "network_id",
                        ObjectBuilder::new()
                            .schema_type(Type::String)
                            .format(Some(SchemaFormat::Custom("uuid".into()))),
                    )
                    .property("enable_snat", ObjectBuilder::new().schema_type(Type::Boolean))
                    .property("external_fixed_ips", array(fixed_ip))
                    .additional_properties(Some(AdditionalProperties::<Schema>::FreeForm(false))),
                Type::Object,
            )
        }
        Check::SubnetList(max) => {
            return ArrayBuilder::new()
                .max_items(Some(max))
                .items(
                    ObjectBuilder::new()
                        .schema_type(Type::String)
                        .description(Some("A CIDR")),
                )
                .into();
        }
        Check::StrList => {
            return ArrayBuilder::new()
                .items(
                    ObjectBuilder::new()
                        .schema_type(Type::String)
                        .max_length(Some(NAME_LEN)),
                )
                .into();
        }
    };
    // `convert_none_to_empty_dict`: null means the defaults.
    let o = if a.conv == Conv::NoneToEmptyDict {
        nullable(o, Type::Object)
    } else {
        o
    };
    let default = match a.default {
        AttrDefault::Required | AttrDefault::Null => None,
        AttrDefault::Str(s) => Some(Value::from(s)),
        AttrDefault::Bool(b) => Some(Value::from(b)),
        AttrDefault::Int(i) => Some(Value::from(i)),
        AttrDefault::EmptyDict => Some(Value::Object(serde_json::Map::new())),
        AttrDefault::EmptyList => Some(Value::Array(Vec::new())),
    };
    o.default(default).into()
}

/// The body of a POST (`create`) or PUT: `{singular: {attributes}}`. Unknown
/// attributes are refused, so the inner object allows no others.
fn body_schema(c: &Collection<'_>, create: bool) -> Schema {
    let mut inner = ObjectBuilder::new()
        .schema_type(Type::Object)
        .additional_properties(Some(AdditionalProperties::<Schema>::FreeForm(false)));
    for a in c.attrs {
        if (create && a.post) || (!create && a.put) {
            inner = inner.property(a.name, attr_schema(a));
            if create && a.default == AttrDefault::Required {
                inner = inner.required(a.name);
            }
        }
    }
    wrapped(c.singular, Schema::from(inner).into())
}

/// A query parameter that may repeat (`?x=a&x=b`).
fn repeated(name: &str, item: impl Into<RefOr<Schema>>, description: &str) -> Parameter {
    query_builder(name, array(item), description)
        .style(Some(ParameterStyle::Form))
        .explode(Some(true))
        .build()
}

fn fields_param() -> Parameter {
    repeated(
        "fields",
        ObjectBuilder::new().schema_type(Type::String),
        "Only these attributes (repeatable; `tenant_id` and `project_id` travel together)",
    )
}

/// A filter on one attribute: its converter decides the value's type.
fn filter_param(name: &str, a: &Attr) -> Parameter {
    let t = match a.conv {
        Conv::Bool => Type::Boolean,
        Conv::Int => Type::Integer,
        _ => Type::String,
    };
    repeated(
        name,
        ObjectBuilder::new().schema_type(t),
        &format!("Only objects whose `{}` is one of these", a.name),
    )
}

/// Adds the error answers `codes` to an operation: the `NeutronError`
/// envelope, except 401, which keystonemiddleware answers in Keystone's.
fn errors(mut op: OperationBuilder, codes: &[(u16, &str)]) -> OperationBuilder {
    for (code, description) in codes {
        let schema = if *code == 401 {
            schema_ref("keystone.Error")
        } else {
            schema_ref(&<wire::ErrorBody as ToSchema>::name())
        };
        op = op.response(code.to_string(), json_response(description, schema));
    }
    op
}

/// The schema of one event of the watch stream: `event`, `id` and `data`,
/// whose JSON is a `WatchState` (`event: state`) or a `WatchRemoved`
/// (`event: removed`).
fn watch_event() -> ObjectBuilder {
    let string = || ObjectBuilder::new().schema_type(Type::String);
    let data = string()
        .description(Some(
            "JSON: a `neutron.WatchState` for `state`, a `neutron.WatchRemoved` for `removed`",
        ))
        .content_media_type("application/json")
        .content_schema(Some(
            utoipa::openapi::schema::AnyOfBuilder::new()
                .item(schema_ref(&<crate::watch::WatchState as ToSchema>::name()))
                .item(schema_ref(&<crate::watch::WatchRemoved as ToSchema>::name())),
        ));
    ObjectBuilder::new()
        .schema_type(Type::Object)
        .description(Some("One server-sent event"))
        .property("event", string().enum_values(Some(["state", "removed"])))
        .property(
            "id",
            string().description(Some("The event's position in this stream")),
        )
        .property("data", data)
        .required("event")
        .required("data")
}

const UNAUTHORIZED: (u16, &str) = (401, "Missing or invalid `X-Auth-Token`");

fn operation(id: String, summary: String) -> OperationBuilder {
    OperationBuilder::new()
        .tag(TAG)
        .operation_id(Some(id))
        .summary(Some(summary))
        .security(SecurityRequirement::new(
            identity::keystone::TOKEN_SCHEME,
            Vec::<String>::new(),
        ))
}

impl Doc {
    /// Adds `T`'s schema and every schema it refers to.
    fn schema<T: ToSchema>(&mut self) {
        add_schema::<T>(&mut self.components);
    }

    /// `<name>Fields`: `name` without `required` (what `fields=` may answer).
    fn fields_variant(&mut self, name: &str) -> String {
        let partial = format!("{name}Fields");
        if let Some(RefOr::T(Schema::Object(o))) = self.components.schemas.get(name) {
            let mut o = o.clone();
            o.required.clear();
            o.description = Some(format!(
                "`{name}` as list and show answer it: all of its attributes, or only those `fields` names"
            ));
            self.components
                .schemas
                .insert(partial.clone(), RefOr::T(Schema::Object(o)));
        }
        partial
    }

    fn add(&mut self, path: &str, method: HttpMethod, op: OperationBuilder) {
        self.paths.add_path_operation(path, vec![method], op.build());
    }

    fn resource<V: View>(&mut self) {
        self.schema::<V::Wire>();
        let collection = crate::COLLECTIONS
            .iter()
            .find(|(name, _)| *name == V::SINGULAR)
            .map(|(_, coll)| format!("/v2.0/{coll}"))
            .expect("every resource is in COLLECTIONS");
        let c = Collection {
            path: collection,
            singular: V::SINGULAR,
            plural: V::PLURAL,
            attrs: V::attrs(),
            aliases: V::ALIASES,
            schema: <V::Wire as ToSchema>::name().into_owned(),
        };
        self.list(&c);
        self.show(&c);
        let (s, p) = (c.singular, &c.path);
        let member = format!("{p}/{{id}}");
        let whole = || wrapped(s, schema_ref(&c.schema));

        let create = operation(format!("neutron_{s}_create"), format!("Create a {s}"))
            .request_body(Some(json_body(body_schema(&c, true))))
            .response("201", json_response("Created", whole()));
        let create = errors(
            create,
            &[
                (
                    400,
                    "Invalid attributes, or a rule across attributes or objects failed",
                ),
                UNAUTHORIZED,
                (403, "The caller's role may not create it"),
                (
                    404,
                    "An object it refers to does not exist (or is another project's)",
                ),
                (409, "A conflicting change, or an object it refers to is in use"),
            ],
        );
        self.add(p, HttpMethod::Post, create);

        let update = operation(format!("neutron_{s}_update"), format!("Update a {s}"))
            .parameter(id_param(&format!("The {s}'s id")))
            .request_body(Some(json_body(body_schema(&c, false))))
            .response("200", json_response("Updated", whole()));
        let update = errors(
            update,
            &[
                (
                    400,
                    "Invalid attributes, a read-only one, or a rule failed (e.g. a PENDING_* status)",
                ),
                UNAUTHORIZED,
                (403, "Not allowed by policy (e.g. a system-owned default)"),
                (404, "No such object (or another project's)"),
                (409, "A conflicting change, or it is in use"),
            ],
        );
        self.add(&member, HttpMethod::Put, update);

        let delete = operation(format!("neutron_{s}_delete"), format!("Delete a {s}"))
            .parameter(id_param(&format!("The {s}'s id")))
            .response("204", ResponseBuilder::new().description("Deleted").build());
        let delete = errors(
            delete,
            &[
                (
                    400,
                    "In use (endpoint groups: Neutron answers this one as a bad request)",
                ),
                UNAUTHORIZED,
                (403, "Not allowed by policy (e.g. a system-owned default)"),
                (404, "No such object (or another project's)"),
                (409, "In use by another object"),
            ],
        );
        self.add(&member, HttpMethod::Delete, delete);
    }

    /// `PUT /v2.0/routers/{id}/add_router_interface` and `remove_router_interface`.
    fn router_interfaces(&mut self) {
        self.schema::<wire::RouterInterface>();
        let answer = schema_ref(&<wire::RouterInterface as ToSchema>::name());
        let body: Schema = ObjectBuilder::new()
            .schema_type(Type::Object)
            .property(
                "subnet_id",
                ObjectBuilder::new()
                    .schema_type(Type::String)
                    .format(Some(SchemaFormat::Custom("uuid".into()))),
            )
            .required("subnet_id")
            .into();
        for (action, summary, extra) in [
            (
                "add_router_interface",
                "Attach a subnet to a router",
                (
                    400,
                    "A malformed body; or the subnet is on a router already, overlaps one of the router's, or has no gateway address",
                ),
            ),
            (
                "remove_router_interface",
                "Detach a subnet from a router",
                (409, "A VPN service or endpoint group uses the subnet"),
            ),
        ] {
            let op = operation(format!("neutron_router_{action}"), summary.into())
                .parameter(id_param("The router's id"))
                .request_body(Some(json_body(body.clone())))
                .response("200", json_response("The interface", answer.clone()));
            let missing = (404, "No such router, subnet or interface (or another project's)");
            let codes = if extra.0 == 400 {
                vec![extra, UNAUTHORIZED, missing]
            } else {
                vec![(400, "A malformed body"), UNAUTHORIZED, missing, extra]
            };
            let op = errors(op, &codes);
            self.add(&format!("/v2.0/routers/{{id}}/{action}"), HttpMethod::Put, op);
        }
    }

    /// Ports: list and show only (derived from routers and subnets).
    fn read_only<T: ToSchema>(&mut self, singular: &'static str, plural: &'static str, attrs: &[Attr]) {
        self.schema::<T>();
        let c = Collection {
            path: format!("/v2.0/{plural}"),
            singular,
            plural,
            attrs,
            aliases: &[],
            schema: <T as ToSchema>::name().into_owned(),
        };
        self.list(&c);
        self.show(&c);
    }

    fn list(&mut self, c: &Collection<'_>) {
        let item = self.fields_variant(&c.schema);
        let link = <wire::Link as ToSchema>::name();
        let links = format!("{}_links", c.plural);
        let page: Schema = ObjectBuilder::new()
            .schema_type(Type::Object)
            .property(c.plural, array(schema_ref(&item)))
            .required(c.plural)
            .property(
                &links,
                ArrayBuilder::new()
                    .items(schema_ref(&link))
                    .description(Some("`next` and `previous` pages, when `limit` cut the list")),
            )
            .into();
        let sortable: Vec<&str> = c.attrs.iter().filter(|a| a.sort).map(|a| a.name).collect();
        let mut op = operation(
            format!("neutron_{}_list", c.singular),
            format!("List {}", c.plural),
        )
        .parameter(fields_param());
        if !sortable.is_empty() {
            op = op
                .parameter(repeated(
                    "sort_key",
                    strings(&sortable),
                    "Sort by these attributes (one `sort_dir` each)",
                ))
                .parameter(repeated(
                    "sort_dir",
                    strings(&["asc", "desc"]),
                    "One per `sort_key`",
                ));
        }
        op = op
            .parameter(query(
                "limit",
                integer(0, None),
                "Page size (0: no limit; at most 10000 per page)",
            ))
            .parameter(query(
                "marker",
                ObjectBuilder::new().schema_type(Type::String),
                "The id of the last object of the previous page",
            ))
            .parameter(query(
                "page_reverse",
                ObjectBuilder::new().schema_type(Type::Boolean),
                "Page backwards from `marker`",
            ));
        for a in c.attrs.iter().filter(|a| a.filter) {
            op = op.parameter(filter_param(a.name, a));
        }
        for (alias, target) in c.aliases {
            if let Some(a) = c.attrs.iter().find(|a| a.name == *target) {
                op = op.parameter(filter_param(alias, a));
            }
        }
        let op = op.response("200", json_response("The visible objects", page));
        let op = errors(
            op,
            &[
                (400, "An unknown filter or sort key, or a bad value"),
                UNAUTHORIZED,
            ],
        );
        self.add(&c.path, HttpMethod::Get, op);
    }

    fn show(&mut self, c: &Collection<'_>) {
        let item = format!("{}Fields", c.schema);
        let s = c.singular;
        let op = operation(format!("neutron_{s}_show"), format!("Show a {s}"))
            .parameter(id_param(&format!("The {s}'s id")))
            .parameter(fields_param())
            .response("200", json_response("The object", wrapped(s, schema_ref(&item))));
        let op = errors(
            op,
            &[UNAUTHORIZED, (404, "No such object (or another project's)")],
        );
        self.add(&format!("{}/{{id}}", c.path), HttpMethod::Get, op);
    }

    /// The version, root and extension documents clients probe.
    /// `GET /v2.0/vpn/watch` (ours): an SSE stream whose events' data are
    /// `WatchState` and `WatchRemoved` objects (see [`crate::watch`]).
    fn watch(&mut self) {
        self.schema::<crate::watch::WatchState>();
        self.schema::<crate::watch::WatchRemoved>();
        let stream = ResponseBuilder::new()
            .description(
                "A `text/event-stream`: `state` events (data: a `neutron.WatchState`), one per visible \
                 connection first, then one per change; `removed` events (data: a `neutron.WatchRemoved`); \
                 keep-alive comments every 15 s. Ends after `timeout` seconds, if given.",
            )
            .content(
                "text/event-stream",
                utoipa::openapi::ContentBuilder::new()
                    .schema(Some(watch_event()))
                    .build(),
            )
            .build();
        let op = operation(
            "neutron_vpn_watch".into(),
            "Watch the realization state and status of the visible IPsec site connections (ours, SSE)".into(),
        )
        .parameter(query(
            "timeout",
            ObjectBuilder::new()
                .schema_type(Type::Integer)
                .minimum(Some(0))
                .maximum(Some(86_400)),
            "End the stream after this many seconds (default: never)",
        ))
        .response("200", stream);
        self.add(
            crate::watch::PATH,
            HttpMethod::Get,
            errors(
                op,
                &[
                    (400, "`timeout` is not whole seconds from 0 to 86400"),
                    UNAUTHORIZED,
                    (
                        403,
                        "The caller's roles see no connections (neither admin nor member)",
                    ),
                ],
            ),
        );
    }

    fn discovery(&mut self) {
        self.schema::<wire::Versions>();
        self.schema::<wire::Resources>();
        self.schema::<wire::Extensions>();
        self.schema::<wire::ExtensionDocument>();
        let versions = OperationBuilder::new()
            .tag(TAG)
            .operation_id(Some("neutron_versions"))
            .summary(Some("The API versions (unauthenticated)"))
            .response(
                "200",
                json_response("The versions", schema_ref(&<wire::Versions as ToSchema>::name())),
            );
        self.add("/", HttpMethod::Get, versions);
        for (path, id) in [("/v2.0", "neutron_v2_root"), ("/v2.0/", "neutron_v2_root_slash")] {
            let op = operation(id.into(), "The collections of v2.0".into()).response(
                "200",
                json_response(
                    "The collections",
                    schema_ref(&<wire::Resources as ToSchema>::name()),
                ),
            );
            self.add(path, HttpMethod::Get, errors(op, &[UNAUTHORIZED]));
        }
        let op = operation("neutron_extensions_list".into(), "List extensions".into()).response(
            "200",
            json_response(
                "The extensions",
                schema_ref(&<wire::Extensions as ToSchema>::name()),
            ),
        );
        self.add("/v2.0/extensions", HttpMethod::Get, errors(op, &[UNAUTHORIZED]));
        let op = operation("neutron_extension_show".into(), "Show an extension".into())
            .parameter(
                ParameterBuilder::new()
                    .name("alias")
                    .parameter_in(ParameterIn::Path)
                    .required(Required::True)
                    .schema(Some(ObjectBuilder::new().schema_type(Type::String)))
                    .build(),
            )
            .response(
                "200",
                json_response(
                    "The extension",
                    schema_ref(&<wire::ExtensionDocument as ToSchema>::name()),
                ),
            );
        self.add(
            "/v2.0/extensions/{alias}",
            HttpMethod::Get,
            errors(op, &[UNAUTHORIZED, (404, "No such extension")]),
        );
    }
}
