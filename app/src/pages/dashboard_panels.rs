//! The Dashboard's panels: each draws its own chart from its own answer,
//! with its total, what it counts, the numbers as a table, and its own
//! loading and error state.

use leptos::prelude::*;

use crate::charts::{
    colour_of, horizontal_bars, stacked_bars, Column, Describe, Row, Segment, TimeChart, TopChart,
};
use crate::dashboard_model::{
    actor_href, bucket_span_text, series_href, ActorCount, TimeSeries, TopActors,
};
use crate::pages::dashboard_more::{csv, Downloads};
use crate::pages::search::error_text;
use crate::pages::search_zone::shown_zone;
use crate::query::{Precision, Timestamp};
use crate::search_model::SearchError;
use crate::search_state::SearchParams;
use crate::timefmt::Zone;

type Answer<T> = Resource<Result<T, SearchError>>;

/// `2026-03-01 13:00` (UTC).
pub(crate) fn minute_text(ms: i64) -> String {
    Timestamp {
        ms,
        precision: Precision::Minute,
    }
    .to_string()
    .replacen('T', " ", 1)
}

/// What a bucket's tooltip and table row call it, in the shown zone.
fn bucket_text(series: &TimeSeries, b: usize, zone: &Zone) -> String {
    let (from, to) = series.bucket_window(b);
    format!(
        "{} ({})",
        bucket_span_text(zone, from, to),
        series.bucket.label()
    )
}

fn time_chart(
    id: &str,
    title: &str,
    series: &TimeSeries,
    params: &SearchParams,
    zone: &Zone,
) -> TimeChart {
    let columns = series
        .starts
        .iter()
        .enumerate()
        .map(|(b, start)| Column {
            label: series.bucket.axis_label_in(*start, zone),
            bucket: bucket_text(series, b, zone),
            segments: series
                .keys
                .iter()
                .zip(&series.counts)
                .map(|(key, counts)| Segment {
                    key: key.clone(),
                    value: counts.get(b).copied().unwrap_or(0),
                    href: series_href(params, series, key, b),
                })
                .collect(),
        })
        .collect();
    TimeChart {
        describe: Describe {
            id: format!("chart-{id}"),
            title: title.to_string(),
            desc: format!(
                "{} distinct events from {} to {} UTC, one bar per {}, stacked by {}.",
                series.total(),
                minute_text(series.from_ms),
                minute_text(series.to_ms),
                series.bucket.label(),
                series.by.column()
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

/// The chart, or why it could not be drawn.
pub(crate) fn chart_view(drawn: Result<String, crate::charts::ChartError>) -> AnyView {
    match drawn {
        Ok(svg) => view! { <div class="chart-box" inner_html=svg></div> }.into_any(),
        Err(error) => view! { <p class="error" role="alert">{error.to_string()}</p> }.into_any(),
    }
}

pub(crate) fn panel_error(error: SearchError) -> AnyView {
    view! { <p class="error" role="alert" data-testid="panel-error">{error_text(&error)}</p> }
        .into_any()
}

/// A time chart panel: events by category or by outcome.
#[component]
pub fn SeriesPanel(
    id: &'static str,
    title: &'static str,
    about: &'static str,
    resource: Signal<Option<Result<TimeSeries, SearchError>>>,
    params: Memo<SearchParams>,
) -> impl IntoView {
    let zone = shown_zone();
    let body = move || {
        resource.get().map(|answer| match answer {
            Ok(series) => {
                let p = params.get();
                let z = zone.get();
                let chart = time_chart(id, title, &series, &p, &z);
                let total = series.total();
                let ratio = (series.by == crate::dashboard_model::SeriesBy::Outcome).then(|| {
                    match series.failure_ratio() {
                        Some(r) => format!(" · {:.1}% failed or denied", r * 100.0),
                        None => " · no events, no failure ratio".to_string(),
                    }
                });
                let drawn = stacked_bars(&chart);
                let file = series_csv(&series);
                view! {
                    <p class="panel-total"><strong data-testid="panel-total">{total.to_string()}</strong>" events"{ratio}</p>
                    {chart_view(drawn.clone())}
                    <SeriesTable series p zone=z/>
                    <Downloads name=id.to_string() svg=drawn.ok() csv=file/>
                }
                .into_any()
            }
            Err(error) => panel_error(error),
        })
    };
    view! {
        <article class="panel dash-panel" aria-labelledby=format!("{id}-title") data-testid=format!("panel-{id}")>
            <h2 id=format!("{id}-title")>{title}</h2>
            <p class="muted about">{about}</p>
            <Transition fallback=move || view! { <p class="muted" role="status">"Counting…"</p> }>
                {body}
            </Transition>
        </article>
    }
}

/// Every bucket (empty ones too) and key, as CSV.
fn series_csv(series: &TimeSeries) -> String {
    let mut header = vec!["bucket_start_utc", "bucket_end_utc"];
    header.extend(series.keys.iter().map(String::as_str));
    let rows: Vec<Vec<String>> = (0..series.starts.len())
        .map(|b| {
            let (from, to) = series.bucket_window(b);
            let mut row = vec![minute_text(from), minute_text(to)];
            row.extend(
                series
                    .counts
                    .iter()
                    .map(|c| c.get(b).copied().unwrap_or(0).to_string()),
            );
            row
        })
        .collect();
    csv(&header, &rows)
}

/// The numbers behind a time chart, non-empty buckets only; each cell
/// links to Search like its bar.
#[component]
fn SeriesTable(series: TimeSeries, p: SearchParams, zone: Zone) -> impl IntoView {
    let rows: Vec<(usize, u64)> = (0..series.starts.len())
        .map(|b| {
            (
                b,
                series
                    .counts
                    .iter()
                    .map(|c| c.get(b).copied().unwrap_or(0))
                    .sum(),
            )
        })
        .filter(|(_, total)| *total > 0)
        .collect();
    let keys = series.keys.clone();
    view! {
        <details class="as-table">
            <summary>"As table"</summary>
            <table class="events-table">
                <thead><tr>
                    <th scope="col">{format!("Bucket ({})", zone.name)}</th>
                    {keys.iter().map(|k| view! {
                        <th scope="col"><span class="swatch" style=format!("background:{}", colour_of(k).hex())></span>{k.clone()}</th>
                    }).collect_view()}
                    <th scope="col">"Total"</th>
                </tr></thead>
                <tbody>
                    {rows.into_iter().map(|(b, total)| view! {
                        <tr>
                            <th scope="row">{bucket_text(&series, b, &zone)}</th>
                            {series.keys.iter().zip(&series.counts).map(|(key, counts)| {
                                let n = counts.get(b).copied().unwrap_or(0);
                                let href = series_href(&p, &series, key, b);
                                view! { <td class="num">{(n > 0).then(|| view! { <a href=href>{n.to_string()}</a> })}</td> }
                            }).collect_view()}
                            <td class="num">{total.to_string()}</td>
                        </tr>
                    }).collect_view()}
                </tbody>
            </table>
        </details>
    }
}

/// Top actors by events and by failures.
#[component]
pub fn ActorsPanel(resource: Answer<TopActors>, params: Memo<SearchParams>) -> impl IntoView {
    let body = move || {
        resource.get().map(|answer| match answer {
            Ok(top) => {
                let p = params.get();
                view! {
                    <p class="panel-total">
                        <strong>{top.total.to_string()}</strong>" events, "
                        <strong>{top.failures.to_string()}</strong>" failed or denied"
                    </p>
                    <TopList id="top-events" title="Top actors by events" unit="events" rows=top.by_events.clone() top=top.clone() p=p.clone() failures=false/>
                    <TopList id="top-failures" title="Top actors by failures" unit="failed or denied events" rows=top.by_failures.clone() top=top.clone() p failures=true/>
                }
                .into_any()
            }
            Err(error) => panel_error(error),
        })
    };
    view! {
        <article class="panel dash-panel" aria-labelledby="actors-title" data-testid="panel-actors">
            <h2 id="actors-title">"Top actors"</h2>
            <p class="muted about">"The actors with the most distinct events, and with the most failed or denied ones, over the whole window."</p>
            <Transition fallback=move || view! { <p class="muted" role="status">"Counting…"</p> }>
                {body}
            </Transition>
        </article>
    }
}

#[component]
fn TopList(
    id: &'static str,
    title: &'static str,
    unit: &'static str,
    rows: Vec<ActorCount>,
    top: TopActors,
    p: SearchParams,
    failures: bool,
) -> impl IntoView {
    let chart_rows: Vec<Row> = rows
        .iter()
        .map(|r| Row {
            label: r.actor_id.clone(),
            value: r.events,
            href: actor_href(&p, &top, &r.actor_id, failures),
        })
        .collect();
    let chart = TopChart {
        describe: Describe {
            id: format!("chart-{id}"),
            title: title.to_string(),
            desc: format!(
                "The {} actors with the most {unit} from {} to {} UTC.",
                rows.len(),
                minute_text(top.from_ms),
                minute_text(top.to_ms)
            ),
        },
        unit: unit.to_string(),
        rows: chart_rows.clone(),
    };
    let drawn = horizontal_bars(&chart);
    let data: Vec<Vec<String>> = chart_rows
        .iter()
        .map(|r| vec![r.label.clone(), r.value.to_string()])
        .collect();
    let file = csv(&["actor", unit], &data);
    let empty = rows.is_empty();
    view! {
        <section class="top-list" data-testid=id aria-label=title>
            <h3>{title}</h3>
            {if rows.is_empty() {
                view! { <p class="muted">"No events in this window."</p> }.into_any()
            } else {
                chart_view(drawn.clone())
            }}
            <details class="as-table">
                <summary>"As table"</summary>
                <table class="events-table">
                    <thead><tr><th scope="col">"Actor"</th><th scope="col">{unit}</th></tr></thead>
                    <tbody>
                        {chart_rows.into_iter().map(|r| view! {
                            <tr><th scope="row">{r.label}</th><td class="num"><a href=r.href>{r.value.to_string()}</a></td></tr>
                        }).collect_view()}
                    </tbody>
                </table>
            </details>
            <Downloads name=id.to_string() svg=drawn.ok().filter(|_| !empty) csv=file/>
        </section>
    }
}
