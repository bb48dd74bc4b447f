//! Above the results: a histogram of every matching event over the window,
//! stacked by outcome, and "count by a field" (the top values of one field).
//! Both count exactly like the facets (distinct event identities, up to the
//! same snapshot), so the histogram's bars add up to the matching events
//! and a value's count is what Search finds with it added to the query.
//!
//! Zooming is by click: each bar links to the same search over that bar's
//! time range. Dragging across the chart is not offered; the bars are
//! links in server-drawn SVG, which work without JavaScript and by
//! keyboard, and a click names the range as exactly as a drag would.

use leptos::prelude::*;
use leptos_router::hooks::use_navigate;

use crate::charts::{stacked_bars, Column, Describe, Segment, TimeChart};
use crate::dashboard_model::{bucket_span_text, TimeSeries};
use crate::pages::dashboard_panels::{chart_view, minute_text};
use crate::pages::search_zone::shown_zone;
use crate::query::{and_term, Precision, Timestamp};
use crate::search_model::{CountBy, FacetField, SearchError};
use crate::search_state::SearchParams;
use crate::timefmt::Zone;

type Answer<T> = Resource<Result<T, SearchError>>;

/// Distinct matching events per time bucket, stacked by outcome, over the
/// same window, tenant and snapshot as the facets.
#[server(endpoint = "search/histogram")]
pub async fn search_histogram(
    q: Option<String>,
    tenant: Option<String>,
    range: Option<String>,
    from: Option<String>,
    to: Option<String>,
    snapshot: Option<i64>,
) -> Result<TimeSeries, SearchError> {
    use crate::dashboard_model::SeriesBy;
    use crate::search_model::{checked_snapshot, SearchQuery, SEARCH_PAGE_ROWS};
    let params = crate::pages::search::search_params(q, tenant, range, from, to, None);
    crate::pages::search::with_store(|store, now_ms| async move {
        let query = SearchQuery::from_params(&params, SEARCH_PAGE_ROWS)?;
        let snapshot = checked_snapshot(snapshot.unwrap_or(now_ms))?;
        Ok(store
            .0
            .time_series(&query, SeriesBy::Outcome, snapshot)
            .await?)
    })
    .await
}

/// The top values of `field` (its query-language name, e.g. `actor`).
#[server(endpoint = "search/count_by")]
pub async fn count_values(
    q: Option<String>,
    tenant: Option<String>,
    range: Option<String>,
    from: Option<String>,
    to: Option<String>,
    field: String,
    snapshot: Option<i64>,
) -> Result<CountBy, SearchError> {
    use crate::search_model::{checked_snapshot, SearchQuery, SEARCH_PAGE_ROWS};
    let params = crate::pages::search::search_params(q, tenant, range, from, to, None);
    crate::pages::search::with_store(|store, now_ms| async move {
        let field = FacetField::from_query_field(&field).ok_or_else(|| {
            let known: Vec<&str> = FacetField::ALL.iter().map(|f| f.query_field()).collect();
            SearchError::BadRequest(format!(
                "field: {field:?} cannot be counted; use one of {}",
                known.join(", ")
            ))
        })?;
        let query = SearchQuery::from_params(&params, SEARCH_PAGE_ROWS)?;
        let snapshot = checked_snapshot(snapshot.unwrap_or(now_ms))?;
        Ok(store.0.count_by(&query, field, snapshot).await?)
    })
    .await
}

/// The same search over `from_ms..=to_ms`, to the millisecond.
pub fn zoom_href(params: &SearchParams, from_ms: i64, to_ms: i64) -> String {
    let at = |ms| {
        Timestamp {
            ms,
            precision: Precision::Millis,
        }
        .to_string()
    };
    SearchParams {
        from: Some(at(from_ms)),
        to: Some(at(to_ms)),
        cursor: None,
        ..params.clone()
    }
    .href()
}

fn histogram_chart(series: &TimeSeries, params: &SearchParams, zone: &Zone) -> TimeChart {
    let columns = series
        .starts
        .iter()
        .enumerate()
        .map(|(b, start)| {
            let (from, to) = series.bucket_window(b);
            let zoom = zoom_href(params, from, to);
            Column {
                label: series.bucket.axis_label_in(*start, zone),
                bucket: format!(
                    "{} ({}); click to zoom in",
                    bucket_span_text(zone, from, to),
                    series.bucket.label()
                ),
                segments: series
                    .keys
                    .iter()
                    .zip(&series.counts)
                    .map(|(key, counts)| Segment {
                        key: key.clone(),
                        value: counts.get(b).copied().unwrap_or(0),
                        href: zoom.clone(),
                    })
                    .collect(),
            }
        })
        .collect();
    TimeChart {
        describe: Describe {
            id: "search-histogram".into(),
            title: "Matching events over time".into(),
            desc: format!(
                "{} matching events from {} to {} UTC, one bar per {}, stacked by outcome. \
                 Each bar links to the search over its time range.",
                series.total(),
                minute_text(series.from_ms),
                minute_text(series.to_ms),
                series.bucket.label()
            ),
        },
        x_desc: format!(
            "time ({}), one bar per {}",
            series.bucket.axis_zone(zone),
            series.bucket.label()
        ),
        unit: "events".into(),
        keys: series.keys.clone(),
        columns,
    }
}

/// The histogram, its total and the outcome totals.
#[component]
pub fn Histogram(resource: Answer<TimeSeries>, params: Memo<SearchParams>) -> impl IntoView {
    let zone = shown_zone();
    let body = move || {
        resource.get().map(|answer| match answer {
            Ok(series) => {
                let p = params.get();
                let z = zone.get();
                let total = series.total();
                let by_outcome = series
                    .keys
                    .iter()
                    .map(|key| {
                        let n = series.total_of(key);
                        view! { <span class="histogram-key" data-outcome=key.clone()>{format!("{key} {n}")}</span> }
                    })
                    .collect_view();
                let drawn = stacked_bars(&histogram_chart(&series, &p, &z));
                view! {
                    <p class="histogram-total">
                        <strong data-testid="histogram-total">{total.to_string()}</strong>
                        {if total == 1 { " matching event · " } else { " matching events · " }}
                        {by_outcome}
                        <span class="muted">" · click a bar to zoom in"</span>
                    </p>
                    {chart_view(drawn)}
                }
                .into_any()
            }
            // The results say what is wrong; once is enough.
            Err(_) => view! { <p class="muted">"No histogram."</p> }.into_any(),
        })
    };
    view! {
        <section class="histogram" aria-label="Matching events over time" data-testid="histogram">
            <Transition fallback=move || view! { <p class="muted" role="status">"Counting…"</p> }>
                {body}
            </Transition>
        </section>
    }
}

/// The "Count by" picker and, when a field is picked, its top values.
#[component]
pub fn CountByPanel(
    resource: Answer<Option<CountBy>>,
    params: Memo<SearchParams>,
) -> impl IntoView {
    let navigate = use_navigate();
    let on_change = move |ev| {
        let value = event_target_value(&ev);
        let p = SearchParams {
            count_by: FacetField::from_query_field(&value),
            ..params.get_untracked()
        };
        navigate(&p.href(), Default::default());
    };
    let body = move || {
        resource.get().map(|answer| match answer {
            Ok(Some(counts)) => {
                let p = params.get();
                view! { <CountTable counts params=p/> }.into_any()
            }
            Ok(None) => ().into_any(),
            Err(_) => view! { <p class="muted">"Nothing to count."</p> }.into_any(),
        })
    };
    view! {
        <section class="count-by" aria-label="Count by a field">
            <label>
                "Count by "
                <select id="count-by" data-testid="count-by-field" on:change=on_change>
                    <option value="" selected=move || params.get().count_by.is_none()>"(none)"</option>
                    {FacetField::ALL.into_iter().map(|f| view! {
                        <option value=f.query_field() selected=move || params.get().count_by == Some(f)>{f.label()}</option>
                    }).collect_view()}
                </select>
            </label>
            <Transition fallback=move || view! { <p class="muted" role="status">"Counting…"</p> }>
                {body}
            </Transition>
        </section>
    }
}

#[component]
fn CountTable(counts: CountBy, params: SearchParams) -> impl IntoView {
    let field = counts.field;
    let total = counts.total;
    let top = counts.values.first().map_or(1, |v| v.events.max(1));
    let rows = counts
        .values
        .into_iter()
        .map(|value| {
            let href = params
                .with_q(and_term(&params.q, field.query_field(), &value.value, false))
                .href();
            let shown = if value.value.is_empty() {
                "(empty)".to_string()
            } else {
                value.value.clone()
            };
            // Share of the largest value, for the bar; integer percent.
            let width = value.events.saturating_mul(100) / top;
            view! {
                <tr data-value=value.value.clone()>
                    <td><a href=href>{shown}</a></td>
                    <td class="num" data-testid="count-by-events">{value.events.to_string()}</td>
                    <td class="share" aria-hidden="true"><span class="share-bar" style=format!("width:{width}%")></span></td>
                </tr>
            }
        })
        .collect_view();
    view! {
        <table class="count-table" data-testid="count-by" data-field=field.query_field()>
            <caption>{format!("Top {} by events, of {total} matching events", field.label())}</caption>
            <thead><tr><th scope="col">{field.label()}</th><th scope="col" class="num">"Events"</th><th scope="col"><span class="visually-hidden">"Share"</span></th></tr></thead>
            <tbody>{rows}</tbody>
        </table>
    }
}
