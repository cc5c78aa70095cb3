//! Builder helpers the API crates share for their OpenAPI documents.
//!
//! The Neutron and NSX handlers are generic over the resource they serve, so
//! their operations are built with utoipa's builders rather than per-handler
//! path attributes; these are the pieces both documents are built from (JSON
//! bodies and answers, query and `{id}` path parameters, component schemas),
//! kept here so the two documents spell them alike. Nothing here knows either
//! API.

use utoipa::openapi::path::{Parameter, ParameterBuilder, ParameterIn};
use utoipa::openapi::request_body::{RequestBody, RequestBodyBuilder};
use utoipa::openapi::schema::{ObjectBuilder, Schema, Type};
use utoipa::openapi::{
    Components, Content, ContentBuilder, OpenApi, OpenApiBuilder, Paths, Ref, RefOr, Required, Response,
    ResponseBuilder,
};
use utoipa::{PartialSchema, ToSchema};

/// The media type of every JSON body and answer.
pub const JSON: &str = "application/json";

/// A reference to the component schema `name`.
pub fn schema_ref(name: &str) -> RefOr<Schema> {
    RefOr::Ref(Ref::from_schema_name(name))
}

/// Content of `schema`.
pub fn content(schema: impl Into<RefOr<Schema>>) -> Content {
    ContentBuilder::new().schema(Some(schema)).build()
}

/// An answer with a JSON body of `schema`.
pub fn json_response(description: &str, schema: impl Into<RefOr<Schema>>) -> Response {
    ResponseBuilder::new()
        .description(description)
        .content(JSON, content(schema))
        .build()
}

/// A required JSON request body of `schema`.
pub fn json_body(schema: impl Into<RefOr<Schema>>) -> RequestBody {
    RequestBodyBuilder::new()
        .required(Some(Required::True))
        .content(JSON, content(schema))
        .build()
}

/// An optional query parameter, still open for more settings (style, explode).
pub fn query_builder(name: &str, schema: impl Into<RefOr<Schema>>, description: &str) -> ParameterBuilder {
    ParameterBuilder::new()
        .name(name)
        .parameter_in(ParameterIn::Query)
        .required(Required::False)
        .description(Some(description))
        .schema(Some(schema))
}

/// An optional query parameter.
pub fn query(name: &str, schema: impl Into<RefOr<Schema>>, description: &str) -> Parameter {
    query_builder(name, schema, description).build()
}

/// The `{id}` path parameter of a member path (a string).
pub fn id_param(description: &str) -> Parameter {
    ParameterBuilder::new()
        .name("id")
        .parameter_in(ParameterIn::Path)
        .required(Required::True)
        .description(Some(description))
        .schema(Some(ObjectBuilder::new().schema_type(Type::String)))
        .build()
}

/// Adds `T`'s schema to `components`, with every schema it refers to.
pub fn add_schema<T: ToSchema>(components: &mut Components) {
    let mut all = vec![(
        <T as ToSchema>::name().into_owned(),
        <T as PartialSchema>::schema(),
    )];
    T::schemas(&mut all);
    components.schemas.extend(all);
}

/// The document of `paths` and `components` (the composed document adds the
/// info and tags).
pub fn document(paths: Paths, components: Components) -> OpenApi {
    let mut api = OpenApiBuilder::new().components(Some(components)).build();
    api.paths = paths;
    api
}
