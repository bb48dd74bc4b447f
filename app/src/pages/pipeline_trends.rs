//! The pipeline page's trends: the figures sampled every
//! `trends.sample_every` (by one elected server process), charted over
//! 1 h, 24 h or 7 d with the shared chart code (`crate::charts::lines`).
//! Admins only, like the rest of the page: the server function refuses
//! anyone else with 403.

use leptos::prelude::*;

use crate::charts::{line_colour, lines, Describe, Line, LineChart};
use crate::pages::dashboard_panels::chart_view;
use crate::search_model::SearchError;
use crate::timefmt::utc_millis;
use crate::trends_model::{Reduce, TrendChart, TrendWindow, Trends, TREND_CHARTS};

/// The sampled figures over `window` (`1h`, `24h` or `7d`); 403 for anyone
/// but an admin.
#[server(endpoint = "pipeline/trends")]
pub async fn read_trends(window: String) -> Result<Trends, SearchError> {
    let result = match (
        use_context::<crate::store::SharedPipeline>(),
        TrendWindow::parse(&window),
    ) {
        (None, _) => Err(SearchError::Forbidden("this page is for admins".into())),
        (Some(source), Some(window)) => source.0.trends(window).await.map_err(SearchError::from),
        // Checked after the gate would be nicer, but an unknown window
        // reveals nothing: the gate still runs for every known one.
        (Some(source), None) if !source.0.allowed() => {
            Err(SearchError::Forbidden("this page is for admins".into()))
        }
        (Some(_), None) => Err(SearchError::BadRequest(format!(
            "`window`: {window:?} is not one of 1h, 24h, 7d"
        ))),
    };
    if let Err(error) = &result {
        crate::pages::search::set_api_status(error.status());
    }
    result
}

#[component]
pub fn TrendsPanel() -> impl IntoView {
    let window = RwSignal::new(TrendWindow::Hour);
    let trends = Resource::new(move || window.get(), |w| read_trends(w.code().to_owned()));
    view! {
        <section class="panel trends" data-testid="trends">
            <div class="toolbar">
                <h2>"Trends"</h2>
                <div class="segmented" role="group" aria-label="Time span">
                    {TrendWindow::ALL
                        .into_iter()
                        .map(|w| {
                            view! {
                                <button
                                    type="button"
                                    data-testid=format!("trend-window-{}", w.code())
                                    aria-pressed=move || (window.get() == w).to_string()
                                    on:click=move |_| window.set(w)
                                >
                                    {w.code()}
                                </button>
                            }
                        })
                        .collect_view()}
                </div>
            </div>
            <Transition fallback=|| view! { <p class="muted">"Reading the trends…"</p> }>
                {move || {
                    trends
                        .get()
                        .map(|answer| match answer {
                            Ok(trends) => view! { <TrendCharts trends/> }.into_any(),
                            Err(error) => {
                                view! { <p class="error" role="alert">{error.to_string()}</p> }
                                    .into_any()
                            }
                        })
                }}
            </Transition>
        </section>
    }
}

#[component]
fn TrendCharts(trends: Trends) -> impl IntoView {
    let about = format!(
        "From {} to {} UTC, sampled every {} s, one point per {} s{}.",
        utc_millis(trends.from_ms),
        utc_millis(trends.to_ms),
        trends.sample_every_ms / 1000,
        trends.bucket_ms / 1000,
        if trends.series.is_empty() {
            "; no samples yet in this span"
        } else {
            ""
        }
    );
    let window = trends.window.code();
    view! {
        <p class="muted" data-testid="trends-about" data-window=window>{about}</p>
        <div class="trend-grid">
            {TREND_CHARTS
                .iter()
                .map(|chart| {
                    let drawn = lines(&line_chart(chart, &trends));
                    view! {
                        <figure data-testid="trend-chart" data-chart=chart.id data-window=window>
                            {chart_view(drawn)}
                        </figure>
                    }
                })
                .collect_view()}
        </div>
    }
}

/// One chart of `TREND_CHARTS` over the window's buckets.
pub fn line_chart(chart: &TrendChart, trends: &Trends) -> LineChart {
    let lines_of = chart
        .lines
        .iter()
        .enumerate()
        .map(|(i, (series, label))| Line {
            label: (*label).to_owned(),
            colour: line_colour(i),
            points: trends
                .series(series)
                .map(|s| {
                    s.points
                        .iter()
                        .map(|p| {
                            let value = match chart.reduce {
                                Reduce::Max => p.max,
                                Reduce::Mean => p.mean,
                            };
                            (p.at_ms, value)
                        })
                        .collect()
                })
                .unwrap_or_default(),
        })
        .collect::<Vec<_>>();
    let points: usize = lines_of.iter().map(|l| l.points.len()).sum();
    LineChart {
        describe: Describe {
            id: format!("{}-{}", chart.id, trends.window.code()),
            title: format!("{} over {}", chart.title, trends.window.code()),
            desc: format!(
                "{} in {}, {} points, one per {} s bucket ({} of each bucket).",
                chart.title,
                chart.unit,
                points,
                trends.bucket_ms / 1000,
                match chart.reduce {
                    Reduce::Max => "the highest",
                    Reduce::Mean => "the mean",
                }
            ),
        },
        x_desc: "time (UTC)".into(),
        unit: chart.unit.into(),
        from_ms: trends.from_ms,
        to_ms: trends.to_ms,
        // A missed sample or two is still one line; longer is a gap.
        gap_ms: trends.bucket_ms.saturating_mul(3),
        x_label: if trends.window == TrendWindow::Week {
            day_label
        } else {
            time_label
        },
        lines: lines_of,
    }
}

/// "13:05" from `YYYY-MM-DD HH:MM:SS.mmm`.
fn time_label(ms: i64) -> String {
    utc_millis(ms).get(11..16).unwrap_or_default().to_owned()
}

/// "03-01 13h".
fn day_label(ms: i64) -> String {
    let text = utc_millis(ms);
    format!(
        "{} {}h",
        text.get(5..10).unwrap_or_default(),
        text.get(11..13).unwrap_or_default()
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::trends_model::{TrendPoint, TrendSeries, LAG_S};

    #[test]
    fn charts_take_the_reduction_they_ask_for() {
        let trends = Trends {
            window: TrendWindow::Hour,
            from_ms: 0,
            to_ms: 3_600_000,
            bucket_ms: 10_000,
            sample_every_ms: 10_000,
            series: vec![TrendSeries {
                series: LAG_S.into(),
                points: vec![TrendPoint {
                    at_ms: 10_000,
                    mean: 1.0,
                    max: 7.0,
                }],
            }],
        };
        let chart = line_chart(&TREND_CHARTS[0], &trends);
        assert_eq!(chart.lines[0].points, vec![(10_000, 7.0)]);
        assert!(chart.describe.title.ends_with("over 1h"));
        let rates = line_chart(&TREND_CHARTS[1], &trends);
        assert!(rates.lines.iter().all(|l| l.points.is_empty()));
        assert_eq!(time_label(3_600_000), "01:00");
        assert_eq!(day_label(86_400_000 + 7_200_000), "01-02 02h");
    }
}
