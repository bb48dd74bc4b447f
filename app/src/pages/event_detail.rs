//! One event in full (`/events/:tenant/:id`), with the pivots an
//! investigation takes next: everything by this actor, the history of this
//! resource, the same request, and the events around it. Several different
//! events may have been sent with one id; the page then says so and links
//! each (`?h=`, a prefix of its content hash, names one).

use leptos::prelude::*;
use leptos_router::hooks::{use_params_map, use_query_map};

use crate::query::{and_term, Precision, Timestamp};
use crate::search_model::{EventDetail, SearchError, AROUND_MS, MAX_SAME_ID};
use crate::search_state::SearchParams;
use crate::timefmt::utc_millis;

/// Everything stored about one event of one tenant and the others sent with
/// its id; `at` (its `occurred_at`) and `h` (a prefix of its content hash)
/// say which one to show.
#[server(endpoint = "search/event")]
pub async fn get_event(
    tenant: String,
    id: String,
    at: Option<i64>,
    h: Option<String>,
) -> Result<Option<EventDetail>, SearchError> {
    use crate::search_model::is_hash_prefix;
    use crate::store::SharedStore;
    let result = match (use_context::<SharedStore>(), h.as_deref()) {
        (_, Some(h)) if !is_hash_prefix(h) => Err(SearchError::BadRequest(
            "h must be lower-case hexadecimal digits of a content hash".to_string(),
        )),
        (None, _) => Err(SearchError::Unavailable),
        (Some(store), h) => store
            .0
            .event_detail(&tenant, &id, at, h)
            .await
            .map_err(SearchError::from),
    };
    if let Err(error) = &result {
        super::search::set_api_status(error.status());
    }
    result
}

#[component]
pub fn EventDetailPage() -> impl IntoView {
    let path = use_params_map();
    let query = use_query_map();
    let key = Memo::new(move |_| {
        let path = path.read();
        let query = query.read();
        let at = query.get("at").and_then(|v| v.parse::<i64>().ok());
        (
            path.get("tenant").unwrap_or_default(),
            path.get("id").unwrap_or_default(),
            at,
            query.get("h").filter(|h| !h.is_empty()),
        )
    });
    // The search the event was found by: its links search the same window.
    let context = Memo::new(move |_| {
        let map = query.read();
        SearchParams::from_lookup(|k| map.get(k))
    });
    let event = Resource::new(
        move || key.get(),
        |(tenant, id, at, h)| get_event(tenant, id, at, h),
    );
    view! {
        <section class="event-detail">
            <p><a href=move || context.get().href() data-testid="back-to-search">"← Back to the search"</a></p>
            <Transition fallback=move || view! { <p class="muted">"Loading the event…"</p> }>
                {move || event.get().map(|answer| match answer {
                    Ok(Some(event)) => view! { <Detail event context=context.get()/> }.into_any(),
                    Ok(None) => {
                        let (tenant, id, _, _) = key.get();
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
    let same_id = (event.same_id.len() > 1)
        .then(|| view! { <SameIdWarning event=event.clone() context=context.clone()/> });
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
        {same_id}
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
                    {row("Content hash", event.content_hash.clone())}
                </dl>
            </section>
        </div>
    }
}

/// The warning's headline; the list stops at [`MAX_SAME_ID`].
fn same_id_count(listed: usize) -> String {
    if listed >= MAX_SAME_ID {
        format!("{listed} or more different events were sent with this id.")
    } else {
        format!("{listed} different events were sent with this id.")
    }
}

/// Several different events were sent with this id: Attest keeps them all
/// (docs/DESIGN.md, "Event identity"), and the analyst must know which one
/// the page shows and that the others exist.
#[component]
fn SameIdWarning(event: EventDetail, context: SearchParams) -> impl IntoView {
    let items = event
        .same_id
        .iter()
        .map(|other| {
            let href = super::search_results::event_href(
                &event.tenant_id,
                &event.event_id,
                other.occurred_at,
                &other.content_hash,
                &context,
            );
            let shown = other.content_hash == event.content_hash;
            let text = format!(
                "{} by {} from {}, occurred {} UTC, received {} UTC",
                other.action,
                other.actor_id,
                other.source_service,
                utc_millis(other.occurred_at),
                utc_millis(other.received_at)
            );
            view! {
                <li data-testid="same-id-event" data-content-hash=other.content_hash.clone()>
                    <a href=href>{text}</a>
                    {shown.then(|| view! { <strong>" (shown here)"</strong> })}
                </li>
            }
        })
        .collect_view();
    view! {
        <div class="notice" role="alert" data-testid="same-id-warning">
            <p>
                <strong>{same_id_count(event.same_id.len())}</strong>
                " Attest keeps every one of them: a later event never replaces an earlier one. \
                 Check which service sent each; this page shows the one marked below."
            </p>
            <ul>{items}</ul>
        </div>
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_warning_says_when_the_list_is_cut() {
        assert_eq!(
            same_id_count(2),
            "2 different events were sent with this id."
        );
        assert_eq!(
            same_id_count(MAX_SAME_ID),
            "100 or more different events were sent with this id."
        );
    }
}
