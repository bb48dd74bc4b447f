//! The Events page: the newest audit events, filtered by tenant and time
//! range. The filters live in the URL so a view can be shared and reloaded.

use leptos::prelude::*;
use leptos_router::{
    components::Form,
    hooks::{use_navigate, use_query_map},
};

use crate::model::{EventPage, EventSummary, TimeRange};
use crate::search_model::SearchError;
use crate::timefmt::utc_millis;

/// Newest events for one tenant (or all) within a relative time range. A
/// tenant outside the viewer's grant is a 403, like on Search.
#[server(endpoint = "events/list")]
pub async fn list_events(tenant: Option<String>, range: String) -> Result<EventPage, SearchError> {
    use crate::model::{EventFilter, MAX_PAGE_ROWS};

    crate::pages::search::with_store(|store, now_ms| async move {
        let filter = EventFilter {
            tenant: tenant.filter(|t| !t.trim().is_empty()),
            range: TimeRange::from_param(&range),
            limit: MAX_PAGE_ROWS,
            within: Vec::new(),
        };
        Ok(store.0.recent_events(&filter, now_ms).await?)
    })
    .await
}

/// Tenants that have sent events, for the tenant selector.
#[server(endpoint = "events/tenants")]
pub async fn list_tenants() -> Result<Vec<String>, SearchError> {
    crate::pages::search::with_store(|store, _| async move { Ok(store.0.tenants().await?) }).await
}

#[component]
pub fn EventsPage() -> impl IntoView {
    let query = use_query_map();
    let tenant = Memo::new(move |_| query.read().get("tenant").filter(|t| !t.is_empty()));
    let range = Memo::new(move |_| {
        TimeRange::from_param(query.read().get_str("range").unwrap_or_default())
    });

    let events = Resource::new(
        move || (tenant.get(), range.get()),
        |(tenant, range)| list_events(tenant, range.param().to_string()),
    );
    let tenants = Resource::new(|| (), |_| list_tenants());
    let all_label = move || crate::session::no_tenant_label(crate::session::viewer().as_ref());

    // Changing a selector applies it at once; the Apply button remains for
    // browsers without JavaScript, where the form submits as a plain GET.
    let navigate = use_navigate();
    let set_param = move |key: &'static str, value: String| {
        let mut params = query.get_untracked();
        if value.is_empty() {
            params.remove(key);
        } else {
            params.replace(key, value);
        }
        navigate(
            &format!("/{}", params.to_query_string()),
            Default::default(),
        );
    };
    let on_tenant = {
        let set_param = set_param.clone();
        move |ev| set_param("tenant", event_target_value(&ev))
    };
    let on_range = move |ev| set_param("range", event_target_value(&ev));

    view! {
        <section class="events">
            <div class="toolbar">
                <h1>"Events"</h1>
                <Form method="GET" action="" attr:class="filters">
                    <label>
                        "Tenant"
                        <Transition fallback=move || view! { <select name="tenant" id="tenant-filter" disabled=true><option>"Loading…"</option></select> }>
                            <select name="tenant" id="tenant-filter" on:change=on_tenant.clone()>
                                <option value="" selected=move || tenant.get().is_none()>{move || all_label()}</option>
                                {move || {
                                    let current = tenant.get();
                                    let mut names = tenants.get().and_then(Result::ok).unwrap_or_default();
                                    // A tenant named in the URL stays selectable even before it has events.
                                    if let Some(t) = &current {
                                        if !names.contains(t) {
                                            names.push(t.clone());
                                        }
                                    }
                                    names
                                        .into_iter()
                                        .map(|name| {
                                            let selected = current.as_deref() == Some(name.as_str());
                                            view! { <option value=name.clone() selected=selected>{name.clone()}</option> }
                                        })
                                        .collect_view()
                                }}
                            </select>
                        </Transition>
                    </label>
                    <label>
                        "Time range"
                        <select name="range" id="range-filter" on:change=on_range>
                            {TimeRange::ALL
                                .into_iter()
                                .map(|r| view! { <option value=r.param() selected=move || range.get() == r>{r.label()}</option> })
                                .collect_view()}
                        </select>
                    </label>
                    <noscript><button type="submit">"Apply"</button></noscript>
                </Form>
            </div>
            <Transition fallback=move || view! { <p class="muted">"Loading events…"</p> }>
                <ErrorBoundary fallback=|errors| view! {
                    <div class="error" role="alert">
                        <strong>"Could not load events. "</strong>
                        {move || errors.get().into_iter().map(|(_, e)| e.to_string()).collect::<Vec<_>>().join("; ")}
                    </div>
                }>
                    {move || events.get().map(|page| page.map(|page| view! { <EventTable page tenant=tenant.get() range=range.get()/> }))}
                </ErrorBoundary>
            </Transition>
        </section>
    }
}

#[component]
fn EventTable(page: EventPage, tenant: Option<String>, range: TimeRange) -> impl IntoView {
    let scope = match &tenant {
        Some(t) => format!("tenant {t}"),
        None => "all tenants".to_string(),
    };
    let summary = format!(
        "{} event{} for {scope}, {} ({} – {} UTC){}",
        page.events.len(),
        if page.events.len() == 1 { "" } else { "s" },
        range.label().to_lowercase(),
        utc_millis(page.from_ms),
        utc_millis(page.to_ms),
        if page.truncated {
            ", newest shown first; narrow the range to see older ones"
        } else {
            ""
        },
    );
    // The same tenant and window on Search, which pages through all of it
    // (and keeps its place in the URL); this page shows the newest only.
    let search = crate::search_state::SearchParams {
        tenant: tenant.clone(),
        range,
        ..crate::search_state::SearchParams::default()
    };
    let more = page.truncated.then(|| {
        view! {
            <p>
                <a href=search.href() data-testid="events-more">"Older events: page through this window on Search →"</a>
            </p>
        }
    });
    if page.events.is_empty() {
        return view! {
            <p class="empty" data-testid="events-empty">
                {format!("No events for {scope} in the {}.", range.label().to_lowercase())}
            </p>
        }
        .into_any();
    }
    view! {
        <p class="muted" data-testid="events-summary">{summary}</p>
        <div class="table-scroll">
        <table class="events-table" data-testid="events-table">
            <thead>
                <tr>
                    <th>"Time (UTC)"</th>
                    <th>"Tenant"</th>
                    <th>"Category"</th>
                    <th>"Action"</th>
                    <th>"Outcome"</th>
                    <th>"Actor"</th>
                    <th>"Resource"</th>
                    <th>"Source"</th>
                </tr>
            </thead>
            <tbody>
                {page.events.into_iter().map(|e| view! { <EventRow event=e search=search.clone()/> }).collect_view()}
            </tbody>
        </table>
        </div>
        {more}
    }
    .into_any()
}

#[component]
fn EventRow(event: EventSummary, search: crate::search_state::SearchParams) -> impl IntoView {
    // Its detail page, whose "back" leads to Search over the same window.
    let href = super::search_results::event_href(
        &event.tenant_id,
        &event.event_id,
        event.occurred_at,
        "",
        &search,
    );
    let outcome_class = format!("outcome outcome-{}", event.outcome);
    let actor = if event.actor_ip.is_empty() {
        format!("{} ({})", event.actor_id, event.actor_type)
    } else {
        format!(
            "{} ({}) from {}",
            event.actor_id, event.actor_type, event.actor_ip
        )
    };
    let resource = if event.resource_type.is_empty() {
        "—".to_string()
    } else {
        format!("{}/{}", event.resource_type, event.resource_id)
    };
    view! {
        <tr data-event-id=event.event_id.clone() title=event.event_id.clone()>
            <td class="mono">{utc_millis(event.occurred_at)}</td>
            <td>{event.tenant_id}</td>
            <td>{event.category}</td>
            <td class="mono"><a href=href data-testid="event-link">{event.action}</a></td>
            <td><span class=outcome_class>{event.outcome}</span></td>
            <td>{actor}</td>
            <td class="mono">{resource}</td>
            <td>{event.source_service}</td>
        </tr>
    }
}
