//! The Events page: the newest audit events, filtered by tenant and time
//! range, a page at a time. The filters and the page live in the URL so a
//! view can be shared and reloaded.
//!
//! It pages exactly as Search does (one policy, `Store::search`): newest
//! first, a cursor naming the last event shown, and the snapshot the first
//! page took, so events that arrive meanwhile neither push rows onto the
//! next page twice nor slip between pages.

use leptos::prelude::*;
use leptos_router::{
    components::Form,
    hooks::{use_navigate, use_query_map},
};

use crate::model::TimeRange;
use crate::search_model::{SearchError, SearchHit, SearchPage};
use crate::search_state::SearchParams;
use crate::timefmt::utc_millis;

/// Events per page.
pub const EVENTS_PAGE_ROWS: u32 = 100;

/// One page of the newest events for one tenant (or all the viewer may
/// see) within a relative time range; `cursor` is the page before's
/// `next_cursor`. A tenant outside the viewer's grant is a 403, like on
/// Search.
#[server(endpoint = "events/list")]
pub async fn list_events(
    tenant: Option<String>,
    range: String,
    cursor: Option<String>,
) -> Result<SearchPage, SearchError> {
    use crate::search_model::SearchQuery;

    let params = crate::pages::search::search_params(None, tenant, Some(range), None, None, cursor);
    crate::pages::search::with_store(|store, now_ms| async move {
        let query = SearchQuery::from_params(&params, EVENTS_PAGE_ROWS)?;
        Ok(store.0.search(&query, now_ms).await?)
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

    let cursor = Memo::new(move |_| query.read().get("cursor").filter(|c| !c.is_empty()));
    let events = Resource::new(
        move || (tenant.get(), range.get(), cursor.get()),
        |(tenant, range, cursor)| list_events(tenant, range.param().to_string(), cursor),
    );
    let tenants = Resource::new(|| (), |_| list_tenants());
    let all_label = move || crate::session::no_tenant_label(crate::session::viewer().as_ref());

    // Changing a selector applies it at once; the Apply button remains for
    // browsers without JavaScript, where the form submits as a plain GET.
    let navigate = use_navigate();
    let set_param = move |key: &'static str, value: String| {
        let mut params = query.get_untracked();
        // Another tenant or range starts again from the newest events.
        params.remove("cursor");
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
                    {move || events.get().map(|page| page.map(|page| view! { <EventTable page tenant=tenant.get() range=range.get() paged=cursor.get().is_some()/> }))}
                </ErrorBoundary>
            </Transition>
        </section>
    }
}

#[component]
fn EventTable(
    page: SearchPage,
    tenant: Option<String>,
    range: TimeRange,
    /// This page follows another (the URL has a cursor).
    paged: bool,
) -> impl IntoView {
    let scope = match &tenant {
        Some(t) => format!("tenant {t}"),
        None => "all tenants".to_string(),
    };
    let shown = page.hits.len();
    let summary = format!(
        "{shown} event{} for {scope}, {} ({} – {} UTC), newest first{}",
        if shown == 1 { "" } else { "s" },
        range.label().to_lowercase(),
        utc_millis(page.from_ms),
        utc_millis(page.to_ms),
        if paged {
            ", older than the page before"
        } else {
            ""
        },
    );
    // The same tenant and window on Search, for the detail pages' "back".
    let search = SearchParams {
        tenant: tenant.clone(),
        range,
        ..SearchParams::default()
    };
    // The Events page's own URLs: `/` with the filters and a cursor.
    let href = |cursor: Option<&str>| {
        let mut pairs: Vec<(&str, &str)> = Vec::new();
        if let Some(t) = tenant.as_deref() {
            pairs.push(("tenant", t));
        }
        pairs.push(("range", range.param()));
        if let Some(c) = cursor {
            pairs.push(("cursor", c));
        }
        let query: Vec<String> = pairs
            .into_iter()
            .map(|(k, v)| format!("{k}={}", crate::search_state::encode_component(v)))
            .collect();
        format!("/?{}", query.join("&"))
    };
    let older = page.next_cursor.as_deref().map(|c| {
        view! { <a href=href(Some(c)) data-testid="events-older" rel="next">"Older events →"</a> }
    });
    let newest = paged.then(|| {
        view! { <a href=href(None) data-testid="events-newest">"← Newest events"</a> }
    });
    let pager = (older.is_some() || newest.is_some()).then(
        || view! { <nav class="pager" aria-label="Pages of events">{newest}" "{older}</nav> },
    );
    if page.hits.is_empty() {
        return view! {
            <p class="empty" data-testid="events-empty">
                {format!("No events for {scope} in the {}.", range.label().to_lowercase())}
            </p>
            {pager}
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
                {page.hits.into_iter().map(|e| view! { <EventRow event=e search=search.clone()/> }).collect_view()}
            </tbody>
        </table>
        </div>
        {pager}
    }
    .into_any()
}

#[component]
fn EventRow(event: SearchHit, search: SearchParams) -> impl IntoView {
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
