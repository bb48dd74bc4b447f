//! Above the results: a histogram of every matching event over the window,
//! stacked by outcome, and "count by a field" (the top values of one field
//! or metadata key).
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
use crate::query::{and_term, and_without_key, Precision, Timestamp};
use crate::search_model::{CountBy, CountField, FacetField, MetadataKey, SearchError};
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

/// The top values of `field` (its query-language name, e.g. `actor` or
/// `metadata.ticket`).
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
        let field = CountField::from_query_field(&field).ok_or_else(|| {
            let known: Vec<&str> = FacetField::ALL.iter().map(|f| f.query_field()).collect();
            SearchError::BadRequest(format!(
                "field: {field:?} cannot be counted; use one of {} or metadata.<key> ({})",
                known.join(", "),
                crate::query::METADATA_KEY_RULE
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
                        <span class="muted">" · click a bar or drag across bars to zoom in"</span>
                    </p>
                    <DragZoom params=p.clone()>{chart_view(drawn)}</DragZoom>
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

/// The metadata keys "Count by" offers: the query bar's recent keys of the
/// viewer's tenants, most frequent first, each one the query language can
/// name; and first, when it is not among them, the key the URL counts by,
/// so a shared link still shows what it counts.
pub fn count_by_keys(recent: &[MetadataKey], counted: Option<&CountField>) -> Vec<String> {
    let mut keys: Vec<String> = recent
        .iter()
        .map(|k| &k.key)
        .filter(|k| crate::query::is_metadata_key(k))
        .cloned()
        .collect();
    if let Some(CountField::Metadata(key)) = counted {
        if !keys.contains(key) {
            keys.insert(0, key.clone());
        }
    }
    keys
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
            count_by: CountField::from_query_field(&value),
            ..params.get_untracked()
        };
        navigate(&p.href(), Default::default());
    };
    // The metadata keys to offer: what the query bar suggests, from the same
    // server function (its answer is cached on the server per set of
    // tenants, so this costs no second key query), asked when the picker is
    // about to be used (pointer over it, or focus). The server renders the
    // fixed fields and the URL's key, which is what the browser shows until
    // the answer comes, so hydration sees the same options.
    let recent = crate::pages::search_form::RecentKeys::new(params);
    let want_keys = move || recent.want();
    let metadata_options = move || {
        let counted = params.get().count_by;
        let keys = count_by_keys(&recent.keys(), counted.as_ref());
        (!keys.is_empty()).then(|| {
            let options = keys
                .into_iter()
                .map(|key| {
                    let field = CountField::Metadata(key);
                    let selected = counted.as_ref() == Some(&field);
                    view! { <option value=field.query_field() selected=selected>{field.label()}</option> }
                })
                .collect_view();
            view! { <optgroup label="Metadata">{options}</optgroup> }
        })
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
                <select
                    id="count-by"
                    data-testid="count-by-field"
                    on:change=on_change
                    on:pointerenter=move |_| want_keys()
                    on:focus=move |_| want_keys()
                >
                    <option value="" selected=move || params.get().count_by.is_none()>"(none)"</option>
                    {FacetField::ALL.into_iter().map(|f| view! {
                        <option value=f.query_field() selected=move || params.get().count_by == Some(CountField::Field(f))>{f.label()}</option>
                    }).collect_view()}
                    {metadata_options}
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
    let name = field.query_field();
    let total = counts.total;
    // Events without the key, when there are any, in a row of their own
    // that opens Search for exactly them.
    let missing = match (&field, counts.without_key) {
        (CountField::Metadata(key), Some(events)) if events > 0 => Some((key.clone(), events)),
        _ => None,
    };
    let top = counts
        .values
        .first()
        .map_or(0, |v| v.events)
        .max(missing.as_ref().map_or(0, |(_, n)| *n))
        .max(1);
    let bar = move |events: u64| {
        // Share of the largest row, for the bar; integer percent.
        let width = events.saturating_mul(100) / top;
        view! { <td class="share" aria-hidden="true"><span class="share-bar" style=format!("width:{width}%")></span></td> }
    };
    let missing = missing.map(|(key, events)| {
        let href = params.with_q(and_without_key(&params.q, &key)).href();
        view! {
            <tr class="count-missing" data-missing-key=key.clone()>
                <td><a href=href>{format!("(no {name})")}</a></td>
                <td class="num" data-testid="count-by-events">{events.to_string()}</td>
                {bar(events)}
            </tr>
        }
    });
    let rows = counts
        .values
        .into_iter()
        .map(|value| {
            let href = params
                .with_q(and_term(&params.q, &name, &value.value, false))
                .href();
            let shown = if value.value.is_empty() {
                "(empty)".to_string()
            } else {
                value.value.clone()
            };
            view! {
                <tr data-value=value.value.clone()>
                    <td><a href=href>{shown}</a></td>
                    <td class="num" data-testid="count-by-events">{value.events.to_string()}</td>
                    {bar(value.events)}
                </tr>
            }
        })
        .collect_view();
    let label = field.label();
    view! {
        <table class="count-table" data-testid="count-by" data-field=name.clone()>
            <caption>{format!("Top {label} by events, of {total} matching events")}</caption>
            <thead><tr><th scope="col">{label.clone()}</th><th scope="col" class="num">"Events"</th><th scope="col"><span class="visually-hidden">"Share"</span></th></tr></thead>
            <tbody>{rows}{missing}</tbody>
        </table>
    }
}

/// One bar as drawn: its horizontal extent on screen and the time range
/// its link searches.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct DrawnBar {
    pub left: f64,
    pub right: f64,
    pub from_ms: i64,
    pub to_ms: i64,
}

/// Moves shorter than this (in CSS pixels) are clicks, not drags.
const DRAG_PIXELS: f64 = 6.0;

/// The time range a drag from `x0` to `x1` selects: from the first bar it
/// touches to the last, or `None` for a click or a drag over no bar.
pub fn drag_range(bars: &[DrawnBar], x0: f64, x1: f64) -> Option<(i64, i64)> {
    if (x1 - x0).abs() < DRAG_PIXELS {
        return None;
    }
    let (lo, hi) = (x0.min(x1), x0.max(x1));
    let touched = bars.iter().filter(|b| b.right >= lo && b.left <= hi);
    touched.fold(None, |range, b| match range {
        None => Some((b.from_ms, b.to_ms)),
        Some((from, to)) => Some((from.min(b.from_ms), to.max(b.to_ms))),
    })
}

/// `from`/`to` of a bar's zoom link, back in epoch ms.
// Read in the browser only (and by the tests).
#[cfg_attr(not(feature = "hydrate"), allow(dead_code))]
pub fn link_range(href: &str) -> Option<(i64, i64)> {
    let query = href.split_once('?')?.1;
    let value = |key: &str| {
        query
            .split('&')
            .find_map(|pair| pair.strip_prefix(key)?.strip_prefix('='))
            .map(crate::search_state::decode_component)
            .and_then(|text| Timestamp::parse(&text).ok())
            .map(|t| t.ms)
    };
    Some((value("from")?, value("to")?))
}

/// The bars as drawn on screen, read from the chart's links.
#[cfg(feature = "hydrate")]
fn drawn_bars(root: &leptos::web_sys::Element) -> Vec<DrawnBar> {
    // Every link under the chart, depth first (the SVG's bars).
    let mut links = Vec::new();
    let mut stack: Vec<leptos::web_sys::Element> = root.first_element_child().into_iter().collect();
    while let Some(el) = stack.pop() {
        if let Some(next) = el.next_element_sibling() {
            stack.push(next);
        }
        if el.tag_name().eq_ignore_ascii_case("a") {
            links.push(el.clone());
        }
        if let Some(child) = el.first_element_child() {
            stack.push(child);
        }
    }
    links
        .into_iter()
        .filter_map(|link| {
            let href = link
                .get_attribute("href")
                .or_else(|| link.get_attribute("xlink:href"))?;
            let (from_ms, to_ms) = link_range(&href)?;
            let bar = link
                .query_selector("rect")
                .ok()??
                .get_bounding_client_rect();
            Some(DrawnBar {
                left: bar.left(),
                right: bar.right(),
                from_ms,
                to_ms,
            })
        })
        .collect()
}

#[cfg(feature = "hydrate")]
fn left_edge(el: &leptos::web_sys::Element) -> f64 {
    el.get_bounding_client_rect().left()
}

// Rendered on the server, nothing has been drawn yet.
#[cfg(not(feature = "hydrate"))]
fn drawn_bars(_root: &leptos::web_sys::Element) -> Vec<DrawnBar> {
    Vec::new()
}

#[cfg(not(feature = "hydrate"))]
fn left_edge(_el: &leptos::web_sys::Element) -> f64 {
    0.0
}

/// Drag across the histogram to zoom: pointer events (mouse, pen and
/// touch) over the drawn bars; the new window goes into the URL. A short
/// move stays a click on a bar's link, which keyboard users keep too.
#[component]
fn DragZoom(params: SearchParams, children: Children) -> impl IntoView {
    // (start x, current x) in client pixels, while a drag is on.
    let drag = RwSignal::new(None::<(f64, f64)>);
    let dragged = StoredValue::new(false);
    let area = NodeRef::<leptos::html::Div>::new();
    let navigate = use_navigate();
    let bars = move || {
        area.get_untracked()
            .map_or_else(Vec::new, |root| drawn_bars(&root))
    };
    let left_of_area = move || area.get_untracked().map_or(0.0, |el| left_edge(&el));
    let on_down = move |ev: leptos::ev::PointerEvent| {
        if ev.button() != 0 {
            return;
        }
        dragged.set_value(false);
        drag.set(Some((f64::from(ev.client_x()), f64::from(ev.client_x()))));
    };
    let on_move = move |ev: leptos::ev::PointerEvent| {
        if let Some((start, _)) = drag.get_untracked() {
            let x = f64::from(ev.client_x());
            if (x - start).abs() >= DRAG_PIXELS {
                // Keep the pointer's events here however far it goes.
                if let Some(el) = area.get_untracked() {
                    let _ = el.set_pointer_capture(ev.pointer_id());
                }
                ev.prevent_default();
            }
            drag.set(Some((start, x)));
        }
    };
    let on_up = move |ev: leptos::ev::PointerEvent| {
        let Some((start, _)) = drag.get_untracked() else {
            return;
        };
        drag.set(None);
        if let Some((from, to)) = drag_range(&bars(), start, f64::from(ev.client_x())) {
            dragged.set_value(true);
            navigate(&zoom_href(&params, from, to), Default::default());
        }
    };
    // The click that ends a drag must not also follow the bar's link.
    let on_click = move |ev: leptos::ev::MouseEvent| {
        if dragged.get_value() {
            dragged.set_value(false);
            ev.prevent_default();
        }
    };
    let band = move || {
        drag.get().and_then(|(a, b)| {
            ((a - b).abs() >= DRAG_PIXELS).then(|| {
                let offset = left_of_area();
                format!(
                    "left: {:.0}px; width: {:.0}px",
                    a.min(b) - offset,
                    (a - b).abs()
                )
            })
        })
    };
    view! {
        <div class="drag-zoom" node_ref=area data-testid="histogram-drag"
            on:pointerdown=on_down on:pointermove=on_move on:pointerup=on_up
            on:pointercancel=move |_| drag.set(None) on:click=on_click>
            {children()}
            {move || band().map(|style| view! { <div class="drag-band" style=style aria-hidden="true"></div> })}
        </div>
    }
}

#[cfg(test)]
mod drag_tests {
    use super::*;

    fn bar(left: f64, from_ms: i64) -> DrawnBar {
        DrawnBar {
            left,
            right: left + 10.0,
            from_ms,
            to_ms: from_ms + 999,
        }
    }

    #[test]
    fn a_drag_selects_from_the_first_bar_touched_to_the_last() {
        let bars = [
            bar(0.0, 0),
            bar(20.0, 1_000),
            bar(40.0, 2_000),
            bar(60.0, 3_000),
        ];
        assert_eq!(drag_range(&bars, 25.0, 45.0), Some((1_000, 2_999)));
        // Right to left is the same selection.
        assert_eq!(drag_range(&bars, 65.0, 5.0), Some((0, 3_999)));
        // A click, or a drag between bars, selects nothing.
        assert_eq!(drag_range(&bars, 25.0, 28.0), None);
        assert_eq!(drag_range(&bars, 11.0, 19.0), None);
    }

    #[test]
    fn a_bar_link_gives_back_its_range() {
        let params = SearchParams::default();
        let href = zoom_href(&params, 1_795_435_200_000, 1_795_438_799_999);
        assert_eq!(
            link_range(&href),
            Some((1_795_435_200_000, 1_795_438_799_999))
        );
        assert_eq!(link_range("/search?q=x"), None);
        let text = "a b:é/%+";
        let encoded = crate::search_state::encode_component(text);
        assert_eq!(crate::search_state::decode_component(&encoded), text);
        assert_eq!(crate::search_state::decode_component("%zz+"), "%zz ");
    }
}

#[cfg(test)]
mod count_tests {
    use super::*;

    fn key(name: &str) -> MetadataKey {
        MetadataKey {
            key: name.into(),
            events: 1,
        }
    }

    #[test]
    fn the_picker_offers_recent_keys_and_keeps_the_url_s() {
        let recent = [key("ticket"), key("region"), key("needs review")];
        assert_eq!(count_by_keys(&recent, None), ["ticket", "region"]);
        let actor = CountField::Field(FacetField::Actor);
        assert_eq!(count_by_keys(&recent, Some(&actor)), ["ticket", "region"]);
        // The URL's key stays selectable, once, even when it is not recent.
        let region = CountField::Metadata("region".into());
        assert_eq!(count_by_keys(&recent, Some(&region)), ["ticket", "region"]);
        let old = CountField::Metadata("old_key".into());
        assert_eq!(
            count_by_keys(&recent, Some(&old)),
            ["old_key", "ticket", "region"]
        );
        assert_eq!(count_by_keys(&[], Some(&old)), ["old_key"]);
        assert!(count_by_keys(&[], None).is_empty());
    }
}
