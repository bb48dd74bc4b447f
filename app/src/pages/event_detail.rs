//! One event in full (`/events/:tenant/:id`), with the pivots an
//! investigation takes next: everything by this actor, the history of this
//! resource, the same request, and the events around it.

use leptos::prelude::*;
use leptos_router::hooks::{use_params_map, use_query_map};

use crate::query::{and_term, Precision, Timestamp};
use crate::search_model::{EventDetail, SearchError, AROUND_MS};
use crate::search_state::SearchParams;
use crate::timefmt::utc_millis;

/// Everything stored about one event of one tenant; `at` is its
/// `occurred_at` when known, which saves reading every month.
#[server(endpoint = "search/event")]
pub async fn get_event(
    tenant: String,
    id: String,
    at: Option<i64>,
) -> Result<Option<EventDetail>, SearchError> {
    use crate::store::SharedStore;
    let store = use_context::<SharedStore>().ok_or(SearchError::Unavailable)?;
    let result = store.0.event_detail(&tenant, &id, at).await;
    if result.is_err() {
        super::search::set_api_status(http::StatusCode::SERVICE_UNAVAILABLE);
    }
    Ok(result?)
}

#[component]
pub fn EventDetailPage() -> impl IntoView {
    let path = use_params_map();
    let query = use_query_map();
    let key = Memo::new(move |_| {
        let path = path.read();
        let at = query.read().get("at").and_then(|v| v.parse::<i64>().ok());
        (
            path.get("tenant").unwrap_or_default(),
            path.get("id").unwrap_or_default(),
            at,
        )
    });
    // The search the event was found by: its links search the same window.
    let context = Memo::new(move |_| {
        let map = query.read();
        SearchParams::from_lookup(|k| map.get(k))
    });
    let event = Resource::new(
        move || key.get(),
        |(tenant, id, at)| get_event(tenant, id, at),
    );
    view! {
        <section class="event-detail">
            <p><a href=move || context.get().href() data-testid="back-to-search">"← Back to the search"</a></p>
            <Transition fallback=move || view! { <p class="muted">"Loading the event…"</p> }>
                {move || event.get().map(|answer| match answer {
                    Ok(Some(event)) => view! { <Detail event context=context.get()/> }.into_any(),
                    Ok(None) => {
                        let (tenant, id, _) = key.get();
                        view! {
                            <p class="empty" data-testid="event-missing">
                                {format!("No event {id} in tenant {tenant}.")}
                            </p>
                        }.into_any()
                    }
                    Err(error) => view! { <super::search_results::SearchErrorView error/> }.into_any(),
                })}
            </Transition>
        </section>
    }
}

#[component]
fn Detail(event: EventDetail, context: SearchParams) -> impl IntoView {
    let tenant_scope = SearchParams {
        tenant: Some(event.tenant_id.clone()),
        cursor: None,
        ..context.clone()
    };
    let by_actor = tenant_scope
        .with_q(and_term("", "actor", &event.actor_id, false))
        .href();
    let resource = (!event.resource_type.is_empty() || !event.resource_id.is_empty()).then(|| {
        let q = and_term("", "resource.type", &event.resource_type, false);
        tenant_scope
            .with_q(and_term(&q, "resource", &event.resource_id, false))
            .href()
    });
    let request = (!event.request_id.is_empty()).then(|| {
        tenant_scope
            .with_q(and_term("", "request_id", &event.request_id, false))
            .href()
    });
    let from_ip = (!event.actor_ip.is_empty()).then(|| {
        tenant_scope
            .with_q(and_term("", "actor.ip", &event.actor_ip, false))
            .href()
    });
    let stamp = |ms: i64| {
        Timestamp {
            ms,
            precision: Precision::Millis,
        }
        .to_string()
    };
    let around = SearchParams {
        q: String::new(),
        tenant: Some(event.tenant_id.clone()),
        from: Some(stamp(event.occurred_at.saturating_sub(AROUND_MS))),
        to: Some(stamp(event.occurred_at.saturating_add(AROUND_MS))),
        ..SearchParams::default()
    }
    .href();
    let delay_ms = event.received_at - event.occurred_at;
    let outcome_class = format!("outcome outcome-{}", event.outcome);
    let row = |label: &'static str, value: String| {
        let shown = if value.is_empty() {
            "—".to_string()
        } else {
            value
        };
        view! { <dt>{label}</dt><dd>{shown}</dd> }
    };
    let metadata = if event.metadata.is_empty() {
        view! { <p class="muted">"No metadata."</p> }.into_any()
    } else {
        view! {
            <table class="events-table metadata" data-testid="event-metadata">
                <thead><tr><th scope="col">"Key"</th><th scope="col">"Value"</th></tr></thead>
                <tbody>
                    {event.metadata.iter().map(|(k, v)| view! { <tr><td class="mono">{k.clone()}</td><td class="pre">{v.clone()}</td></tr> }).collect_view()}
                </tbody>
            </table>
        }.into_any()
    };
    view! {
        <h1 class="detail-title" data-testid="event-title">
            <span class="mono">{event.action.clone()}</span>" "
            <span class=outcome_class>{event.outcome.clone()}</span>
            <span class="muted">{format!(" · {} UTC", utc_millis(event.occurred_at))}</span>
        </h1>
        <nav class="pivots" aria-label="Related searches">
            <a href=by_actor data-testid="pivot-actor">"Everything by this actor"</a>
            {resource.map(|href| view! { <a href=href data-testid="pivot-resource">"History of this resource"</a> })}
            {request.map(|href| view! { <a href=href data-testid="pivot-request">"This request across services"</a> })}
            {from_ip.map(|href| view! { <a href=href data-testid="pivot-ip">"Everything from this IP"</a> })}
            <a href=around data-testid="pivot-around">"Events around this one (±5 min)"</a>
        </nav>
        <div class="detail-grid">
            <section class="panel-lite">
                <h2>"Who, what, where"</h2>
                <dl class="fields" data-testid="event-fields">
                    {row("Event id", event.event_id.clone())}
                    {row("Tenant", event.tenant_id.clone())}
                    {row("Occurred (UTC)", utc_millis(event.occurred_at))}
                    {row("Received (UTC)", format!("{} ({delay_ms} ms later)", utc_millis(event.received_at)))}
                    {row("Category", event.category.clone())}
                    {row("Action", event.action.clone())}
                    {row("Outcome", event.outcome.clone())}
                    {row("Actor", event.actor_id.clone())}
                    {row("Actor type", event.actor_type.clone())}
                    {row("Actor IP", event.actor_ip.clone())}
                    {row("User agent", event.actor_user_agent.clone())}
                    {row("Resource type", event.resource_type.clone())}
                    {row("Resource id", event.resource_id.clone())}
                    {row("Source service", event.source_service.clone())}
                    {row("Request id", event.request_id.clone())}
                </dl>
            </section>
            <section class="panel-lite">
                <h2>"Metadata"</h2>
                {metadata}
                <h2>"Provenance"</h2>
                <dl class="fields" data-testid="event-provenance">
                    {row("Schema id", event.schema_id.to_string())}
                    {row("Kafka partition", event.kafka_partition.to_string())}
                    {row("Kafka offset", event.kafka_offset.to_string())}
                </dl>
            </section>
        </div>
    }
}
