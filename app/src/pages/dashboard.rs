//! The Dashboard: what happened over a window, who did it, one click from
//! the events behind every bar. It takes Search's URL state (query, tenant,
//! range or from/to, time zone) under `/dashboard`, and its server functions are
//! scoped exactly like Search's: through the store in context, which the
//! server narrows to the signed-in viewer's tenants.

use leptos::prelude::*;
use leptos_router::hooks::use_query_map;

use crate::dashboard_model::{Panel, PanelData, Timeline, TopActors};
use crate::model::TimeRange;
use crate::pages::dashboard_more::{
    chosen_tenants, BreakdownPanel, ChangesPanel, HeatmapPanel, NewActorsPanel, TenantPicker,
    ThemeAndZone,
};
use crate::pages::dashboard_panels::{ActorsPanel, SeriesPanel};
use crate::pages::detections::DetectionsPanel;
use crate::pages::events::list_tenants;
use crate::pages::search_form::QueryForm;
use crate::pages::search_zone::provide_zone;
use crate::search_model::SearchError;
use crate::search_state::SearchParams;

/// The presets offered as one-click links; the select has every range.
const PRESETS: [TimeRange; 5] = [
    TimeRange::LastHour,
    TimeRange::Last24Hours,
    TimeRange::Last7Days,
    TimeRange::Last30Days,
    TimeRange::Last90Days,
];

/// Panels 1, 2 and 8 (events by category and by outcome over time, and
/// weekday × hour in `tz`, "UTC" when absent) from one query: what the
/// page asks, since the three read the same events.
#[server(endpoint = "dashboard/timeline")]
pub async fn dashboard_timeline(
    q: Option<String>,
    tenant: Option<String>,
    range: Option<String>,
    from: Option<String>,
    to: Option<String>,
    tz: Option<String>,
) -> Result<Timeline, SearchError> {
    use crate::search_model::{SearchQuery, SEARCH_PAGE_ROWS};
    let params = crate::pages::search::search_params(q, tenant, range, from, to, None);
    crate::pages::search::with_store(|store, now_ms| async move {
        let query = SearchQuery::from_params(&params, SEARCH_PAGE_ROWS)?;
        let tz = tz.unwrap_or_else(|| "UTC".to_string());
        Ok(store.0.timeline(&query, &tz, now_ms).await?)
    })
    .await
}

/// The actors with the most events and the most failed or denied ones.
#[server(endpoint = "dashboard/actors")]
pub async fn dashboard_actors(
    q: Option<String>,
    tenant: Option<String>,
    range: Option<String>,
    from: Option<String>,
    to: Option<String>,
) -> Result<TopActors, SearchError> {
    use crate::search_model::{SearchQuery, SEARCH_PAGE_ROWS};
    let params = crate::pages::search::search_params(q, tenant, range, from, to, None);
    crate::pages::search::with_store(|store, now_ms| async move {
        let query = SearchQuery::from_params(&params, SEARCH_PAGE_ROWS)?;
        Ok(store.0.top_actors(&query, now_ms).await?)
    })
    .await
}

/// One of panels 4–9. `tz` ("UTC" when absent) places the heatmap.
#[server(endpoint = "dashboard/panel")]
pub async fn dashboard_panel(
    q: Option<String>,
    tenant: Option<String>,
    range: Option<String>,
    from: Option<String>,
    to: Option<String>,
    panel: String,
    tz: Option<String>,
) -> Result<PanelData, SearchError> {
    use crate::search_model::{SearchQuery, SEARCH_PAGE_ROWS};
    let params = crate::pages::search::search_params(q, tenant, range, from, to, None);
    crate::pages::search::with_store(|store, now_ms| async move {
        let which = Panel::from_param(&panel).ok_or_else(|| {
            SearchError::BadRequest(format!("panel: {panel:?} is not a dashboard panel"))
        })?;
        let query = SearchQuery::from_params(&params, SEARCH_PAGE_ROWS)?;
        let tz = tz.unwrap_or_else(|| "UTC".to_string());
        Ok(store.0.dashboard_panel(&query, which, &tz, now_ms).await?)
    })
    .await
}

/// What the panels ask with: the URL's state less what only Search uses.
fn asked(params: &SearchParams) -> SearchParams {
    SearchParams {
        cursor: None,
        columns: Vec::new(),
        ..params.clone()
    }
}

fn range_param(params: &SearchParams) -> Option<String> {
    Some(params.range.param().to_string())
}

#[component]
pub fn DashboardPage() -> impl IntoView {
    let query = use_query_map();
    let params = Memo::new(move |_| {
        let map = query.read();
        SearchParams::from_lookup(|key| map.get(key))
    });
    let key = Memo::new(move |_| asked(&params.get()));
    // The zone the heatmap places hours in and the charts label times in:
    // the URL's (`tz`), so a shared link opens in the zone it was shared in.
    let zone = provide_zone(params).name;
    // Panels 1, 2 and 8 read the same events: one query draws the three
    // (a change of zone asks it again, for the heatmap).
    let timeline = Resource::new(
        move || (key.get(), zone.get()),
        |(p, tz)| {
            dashboard_timeline(
                Some(p.q.clone()),
                p.tenant.clone(),
                range_param(&p),
                p.from.clone(),
                p.to.clone(),
                Some(tz).filter(|t| !t.is_empty()),
            )
        },
    );
    let categories = Signal::derive(move || timeline.get().map(|a| a.map(|t| t.categories)));
    let outcomes = Signal::derive(move || timeline.get().map(|a| a.map(|t| t.outcomes)));
    let heat = Signal::derive(move || {
        timeline
            .get()
            .map(|a| a.map(|t| PanelData::HeatMap(t.heat)))
    });
    // Every other panel has a resource of its own: a slow or failing panel
    // never blanks the others.
    let actors = Resource::new(
        move || key.get(),
        |p| {
            dashboard_actors(
                Some(p.q.clone()),
                p.tenant.clone(),
                range_param(&p),
                p.from.clone(),
                p.to.clone(),
            )
        },
    );
    let panel = move |which: Panel| {
        Resource::new(
            move || key.get(),
            move |p| {
                dashboard_panel(
                    Some(p.q.clone()),
                    p.tenant.clone(),
                    range_param(&p),
                    p.from.clone(),
                    p.to.clone(),
                    which.param().to_string(),
                    None,
                )
            },
        )
    };
    let sources = panel(Panel::FailureSources);
    let changes = panel(Panel::Changes);
    let privileged = panel(Panel::Privileged);
    let new_actors = panel(Panel::NewActors);
    let per_tenant = panel(Panel::Tenants);
    let several = move || chosen_tenants(&params.get()).len() != 1;
    let tenants = Resource::new(|| (), |_| list_tenants());
    let preset_href = move |range: TimeRange| {
        format!(
            "/dashboard{}",
            asked(&params.get()).with_range(range).query_string()
        )
    };

    view! {
        <section class="dashboard" aria-labelledby="dashboard-title">
            <div class="toolbar">
                <h1 id="dashboard-title">"Dashboard"</h1>
                <ThemeAndZone params/>
                <nav class="presets" aria-label="Time range presets">
                    {PRESETS.into_iter().map(|range| {
                        let current = move || {
                            let p = params.get();
                            (p.from.is_none() && p.range == range).then_some("true")
                        };
                        view! {
                            <a href=move || preset_href(range) aria-current=current data-testid=format!("preset-{}", range.param())>
                                {range.param()}
                            </a>
                        }
                    }).collect_view()}
                </nav>
            </div>
            <QueryForm params=params tenants=tenants page="/dashboard" submit_label="Apply"/>
            <TenantPicker params tenants/>
            <div class="panels">
                <SeriesPanel
                    id="events"
                    title="Events over time"
                    about="Distinct events per time bucket, stacked by category. An event delivered more than once counts once."
                    resource=categories
                    params=key
                />
                <SeriesPanel
                    id="outcomes"
                    title="Outcomes over time"
                    about="Distinct events per time bucket by outcome; the failure ratio is failed and denied events over all events."
                    resource=outcomes
                    params=key
                />
                <ActorsPanel resource=actors params=key/>
                <DetectionsPanel params=key/>
                <BreakdownPanel
                    id="failure-sources"
                    title="Top sources of failures"
                    about="Failed and denied events by the IP address they came from and by the calling service (events sent without an IP are not listed by IP)."
                    resource=sources
                    params=key
                />
                <ChangesPanel resource=changes params=key/>
                <BreakdownPanel
                    id="privileged"
                    title="Privileged and admin actions"
                    about="Events in the admin category, and any event its service marked metadata.privileged:true, by action and by actor."
                    resource=privileged
                    params=key
                />
                <NewActorsPanel resource=new_actors params=key/>
                <HeatmapPanel resource=heat params=key/>
                <Show when=several>
                    <BreakdownPanel
                        id="tenants"
                        title="Volume per tenant"
                        about="Distinct events per tenant, over every tenant selected."
                        resource=per_tenant
                        params=key
                    />
                </Show>
            </div>
        </section>
    }
}
