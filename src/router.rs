//! Every route, in one place. The OpenAPI document is generated from this same list.

use std::sync::Arc;

use axum::extract::DefaultBodyLimit;
use axum::http::Request;
use axum::routing::get;
use axum::{middleware, Extension, Router};
use tower_http::request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer};
use tower_http::trace::TraceLayer;
use utoipa::openapi::security::{ApiKey, ApiKeyValue, HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::api::extract::BodyLimit;
use crate::api::gateway::{
    agents as gateway_agents, chat, embeddings, models, providers, servers, utilities,
};
use crate::api::knowledge::{batches, collections, files, vector_stores};
use crate::api::mission_control::{
    agents, board, documents, notifications, setup, squads, tasks, watch_items,
};
use crate::api::ops;
use crate::api::squados::{agents as org_agents, bases, conversations, tokens};
use crate::error;
use crate::live::{sse, tickets, ws};
use crate::state::AppState;

#[derive(OpenApi)]
#[openapi(
    info(title = "Squadron", description = "Coordination server for squads of AI agents: Mission Control (/api), SquadOS (/api/v1) and the OpenAI-compatible gateway (/v1)."),
    modifiers(&Credentials),
    security(("bearer" = []), ("api_key" = [])),
)]
struct ApiDoc;

struct Credentials;

impl Modify for Credentials {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).build()),
        );
        components.add_security_scheme(
            "api_key",
            SecurityScheme::ApiKey(ApiKey::Header(ApiKeyValue::new("x-api-key"))),
        );
    }
}

/// Adds to every operation the statuses that the layers around its handler can answer, so a
/// client generated from the document knows them: behind authentication, a malformed
/// request (two credentials, a path or query parameter that does not parse) is a 400, a
/// credential of the wrong kind a 403, the rate limits' 429 and an unreachable database's 503 can come from any route, and a body
/// over the family's limit is a 413.
fn document_common_responses(openapi: &mut utoipa::openapi::OpenApi) {
    use utoipa::openapi::{RefOr, Response};
    let common = [
        ("400", "The request is malformed: a parameter or the body does not parse, or it carries two different credentials"),
        ("403", "This credential may not use this route: an agent's route called with an organization token, an organization's with a squad key, an admin's with a member's"),
        ("429", "Too many requests (a rate limit, or too many failed authentications from this address); see `Retry-After`"),
        ("503", "The database or the actor system is unavailable; try again"),
    ];
    for item in openapi.paths.paths.values_mut() {
        let operations = [
            &mut item.get,
            &mut item.put,
            &mut item.post,
            &mut item.delete,
            &mut item.patch,
        ];
        for op in operations.into_iter().flatten() {
            let responses = &mut op.responses.responses;
            if !responses.contains_key("401") {
                continue; // a public route: no layers but the handler
            }
            for (status, description) in common {
                responses
                    .entry(status.into())
                    .or_insert_with(|| RefOr::T(Response::new(description)));
            }
            if op.request_body.is_some() {
                responses.entry("413".into()).or_insert_with(|| {
                    RefOr::T(Response::new("The body is over this family's size limit"))
                });
            }
        }
    }
}

/// The routes of a family behind authentication, rate limits and the family's body limit.
fn guarded(
    state: &AppState,
    body_limit: usize,
    routes: OpenApiRouter<AppState>,
) -> OpenApiRouter<AppState> {
    routes
        .layer(middleware::from_fn_with_state(
            state.clone(),
            crate::auth::require_auth,
        ))
        .layer(DefaultBodyLimit::max(body_limit))
        .layer(Extension(BodyLimit(body_limit)))
}

pub fn build(state: AppState) -> Router {
    let config = &state.config;
    let public = OpenApiRouter::new()
        .routes(routes!(ops::healthz))
        .routes(routes!(ops::readyz))
        .routes(routes!(ops::metrics))
        .routes(routes!(ws::upgrade))
        .routes(routes!(setup::redeem));
    let mission_control = OpenApiRouter::new()
        .routes(routes!(squads::create, squads::index))
        .routes(routes!(squads::show))
        .routes(routes!(squads::agents, squads::add_agent))
        .routes(routes!(squads::update_agent, squads::delete_agent))
        .routes(routes!(agents::heartbeat))
        .routes(routes!(agents::me))
        .routes(routes!(tasks::index, tasks::create))
        .routes(routes!(tasks::queue))
        .routes(routes!(tasks::show, tasks::update, tasks::delete))
        .routes(routes!(tasks::claim))
        .routes(routes!(tasks::comments, tasks::comment))
        .routes(routes!(tasks::assignees, tasks::assign, tasks::unassign))
        .routes(routes!(notifications::index))
        .routes(routes!(notifications::deliver))
        .routes(routes!(notifications::health))
        .routes(routes!(notifications::stream))
        .routes(routes!(board::agents))
        .routes(routes!(board::tasks))
        .routes(routes!(board::activities))
        .routes(routes!(documents::index, documents::create))
        .routes(routes!(
            documents::show,
            documents::update,
            documents::delete
        ))
        .routes(routes!(watch_items::index, watch_items::create))
        .routes(routes!(
            watch_items::show,
            watch_items::update,
            watch_items::delete
        ))
        .routes(routes!(tickets::create))
        .routes(routes!(sse::squad_events));
    let squados = OpenApiRouter::new()
        .routes(routes!(tokens::create, tokens::index))
        .routes(routes!(tokens::revoke))
        .routes(routes!(tokens::delete))
        .routes(routes!(org_agents::index))
        .routes(routes!(org_agents::show))
        .routes(routes!(conversations::chat))
        .routes(routes!(conversations::index))
        .routes(routes!(conversations::show, conversations::update))
        .routes(routes!(conversations::messages))
        .routes(routes!(bases::index, bases::create))
        .routes(routes!(bases::show, bases::update, bases::delete))
        .routes(routes!(bases::items, bases::add_item))
        .routes(routes!(bases::item, bases::update_item, bases::delete_item))
        .routes(routes!(bases::query));

    let gateway = OpenApiRouter::new()
        .routes(routes!(models::index))
        .routes(routes!(models::show))
        .routes(routes!(models::map))
        .routes(routes!(chat::completions))
        .routes(routes!(embeddings::create))
        .routes(routes!(providers::index))
        .routes(routes!(providers::add))
        .routes(routes!(providers::delete))
        .routes(routes!(providers::upstream_models))
        .routes(routes!(providers::add_model))
        .routes(routes!(providers::delete_model))
        .routes(routes!(gateway_agents::index))
        .routes(routes!(gateway_agents::add))
        .routes(routes!(gateway_agents::delete))
        .routes(routes!(utilities::config))
        .routes(routes!(utilities::generate_prompt))
        .routes(routes!(utilities::agent_workflow))
        .routes(routes!(utilities::scrape_url))
        .routes(routes!(servers::index))
        .routes(routes!(servers::add))
        .routes(routes!(servers::delete))
        .routes(routes!(servers::tools));

    let knowledge = OpenApiRouter::new()
        .routes(routes!(vector_stores::index, vector_stores::create))
        .routes(routes!(
            vector_stores::show,
            vector_stores::update,
            vector_stores::delete
        ))
        .routes(routes!(vector_stores::files, vector_stores::add))
        .routes(routes!(vector_stores::file, vector_stores::remove))
        .routes(routes!(vector_stores::search))
        .routes(routes!(vector_stores::cancel_ingests))
        .routes(routes!(vector_stores::file_details))
        .routes(routes!(vector_stores::user_collections))
        .routes(routes!(files::index))
        .routes(routes!(files::show, files::delete))
        .routes(routes!(files::content))
        .routes(routes!(batches::create))
        .routes(routes!(batches::show))
        .routes(routes!(batches::cancel_batch))
        .routes(routes!(batches::files))
        .routes(routes!(collections::index))
        .routes(routes!(collections::search))
        .routes(routes!(collections::diagnostics))
        .routes(routes!(collections::recover));
    // Uploads: the file limit plus room for the form around it.
    let uploads = OpenApiRouter::new().routes(routes!(files::upload));
    let upload_limit = usize::try_from(config.max_file_bytes)
        .unwrap_or(usize::MAX)
        .saturating_add(64 * 1024);

    let (router, mut openapi) = OpenApiRouter::with_openapi(ApiDoc::openapi())
        .merge(public)
        .merge(guarded(&state, config.body_limit_api, mission_control))
        .merge(guarded(&state, config.body_limit_gateway, squados))
        .merge(guarded(&state, config.body_limit_gateway, gateway))
        .merge(guarded(&state, config.body_limit_gateway, knowledge))
        .merge(guarded(&state, upload_limit, uploads))
        .split_for_parts();
    document_common_responses(&mut openapi);
    let openapi = Arc::new(openapi);
    let schema = move || {
        let openapi = openapi.clone();
        async move { axum::Json(openapi) }
    };

    let router = router
        .route("/", get(ops::dashboard))
        .route("/dashboard/{*path}", get(ops::dashboard_file))
        .route("/api/schema", get(schema.clone()))
        .route("/api/v1/openapi.json", get(schema));
    #[cfg(feature = "test-hooks")]
    let router = router.merge(test_hooks(&state));

    router
        .fallback(error::no_route)
        .method_not_allowed_fallback(error::wrong_method)
        .layer(middleware::from_fn(error::openai_shape))
        .layer(middleware::from_fn(crate::metrics::track_http))
        .layer(PropagateRequestIdLayer::x_request_id())
        .layer(TraceLayer::new_for_http().make_span_with(|request: &Request<_>| {
            let id = request
                .headers()
                .get("x-request-id")
                .and_then(|v| v.to_str().ok())
                .unwrap_or("-");
            tracing::info_span!("http", method = %request.method(), path = %request.uri().path(), request_id = %id)
        }))
        .layer(SetRequestIdLayer::x_request_id(MakeRequestUuid))
        .with_state(state)
}

#[cfg(feature = "test-hooks")]
fn test_hooks(state: &AppState) -> Router<AppState> {
    use crate::api::test_hooks;
    use axum::routing::post;
    let routes = OpenApiRouter::new()
        .route(
            "/api/_test/squads/{id}/panic",
            post(test_hooks::panic_squad),
        )
        .route(
            "/api/_test/squads/{id}/agents/{agent_id}/panic",
            post(test_hooks::panic_agent),
        )
        .route("/api/_test/squads/{id}/flood", post(test_hooks::flood))
        .route(
            "/api/_test/squads/{id}/fail-commits",
            post(test_hooks::fail_commits),
        )
        .route(
            "/api/_test/squads/{id}/running",
            axum::routing::get(test_hooks::running),
        );
    guarded(state, 1024, routes).split_for_parts().0
}
