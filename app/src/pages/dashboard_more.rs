//! Panels 4–9 of the Dashboard, the downloads every panel offers (its chart
//! as SVG, its numbers as CSV), and the theme and time-zone switches.
//! Like panels 1–3, each panel has its own resource, loading and error
//! state, total, one line saying what it counts, and "as table".

use leptos::prelude::*;

use crate::charts::{heatmap, horizontal_bars, Cell, Describe, HeatChart, Row, TopChart};
use crate::dashboard_model::{
    cell_href, change_href, new_actor_href, panel_href, value_href, Breakdown, Changes, HeatMap,
    NewActors, PanelData, TopField, TopValues, WEEKDAYS,
};
use crate::pages::dashboard_panels::{chart_view, minute_text, panel_error};
use crate::pages::search_zone::{shown_zone, ZoneSwitch};
use crate::search_model::SearchError;
use crate::search_state::{encode_component, SearchParams};
use crate::timefmt::Zone;

type Answer = Resource<Result<PanelData, SearchError>>;

/// A CSV file: every cell quoted, and text a spreadsheet would run as a
/// formula (`=`, `+`, `-`, `@`, tab, carriage return first) prefixed with
/// `'`, as the Search export does: actor ids and actions are the sending
/// services' text.
pub(crate) fn csv(header: &[&str], rows: &[Vec<String>]) -> String {
    let cell = |text: &str| {
        // As the Search export does (docs/SEARCH.md): a cell that already
        // starts with `'` gets one more, so removing one leading `'` always
        // gives the value back.
        let risky = text.starts_with(['=', '+', '-', '@', '\t', '\r', '\'']);
        let text = if risky {
            format!("'{text}")
        } else {
            text.to_string()
        };
        format!("\"{}\"", text.replace('"', "\"\""))
    };
    let mut out = String::new();
    let line = |cells: Vec<String>| cells.join(",") + "\r\n";
    out.push_str(&line(header.iter().map(|h| cell(h)).collect()));
    for row in rows {
        out.push_str(&line(row.iter().map(|c| cell(c)).collect()));
    }
    out
}

/// Links that save the chart and the numbers. Data URLs: they work in the
/// server-rendered page before (or without) WebAssembly.
#[component]
pub(crate) fn Downloads(name: String, svg: Option<String>, csv: String) -> impl IntoView {
    let svg_href = svg.map(|svg| {
        format!(
            "data:image/svg+xml;charset=utf-8,{}",
            encode_component(&svg)
        )
    });
    let csv_href = format!("data:text/csv;charset=utf-8,{}", encode_component(&csv));
    view! {
        <p class="downloads">
            {svg_href.map(|href| view! {
                <a href=href download=format!("{name}.svg") data-testid="download-svg">"Download SVG"</a>" · "
            })}
            <a href=csv_href download=format!("{name}.csv") data-testid="download-csv">"Download CSV"</a>
        </p>
    }
}

fn loading() -> impl IntoView {
    view! { <p class="muted" role="status">"Counting…"</p> }
}

fn wrong_answer() -> AnyView {
    view! { <p class="error" role="alert">"The server answered another panel's data."</p> }
        .into_any()
}

/// Panels 4, 6 and 9: the panel's total and one top-N chart per field.
#[component]
pub fn BreakdownPanel(
    id: &'static str,
    title: &'static str,
    about: &'static str,
    resource: Answer,
    params: Memo<SearchParams>,
) -> impl IntoView {
    let body = move || {
        resource.get().map(|answer| match answer {
            Ok(PanelData::Breakdown(b)) => {
                let p = params.get();
                let all = panel_href(&p, b.panel, b.from_ms, b.to_ms);
                view! {
                    <p class="panel-total">
                        <a href=all><strong data-testid="panel-total">{b.total.to_string()}</strong></a>" events"
                    </p>
                    {b.lists.iter().map(|list| view! { <ValueList id list=list.clone() b=b.clone() p=p.clone()/> }).collect_view()}
                }
                .into_any()
            }
            Ok(_) => wrong_answer(),
            Err(error) => panel_error(error),
        })
    };
    view! {
        <article class="panel dash-panel" aria-labelledby=format!("{id}-title") data-testid=format!("panel-{id}")>
            <h2 id=format!("{id}-title")>{title}</h2>
            <p class="muted about">{about}</p>
            <Transition fallback=loading>{body}</Transition>
        </article>
    }
}

#[component]
fn ValueList(id: &'static str, list: TopValues, b: Breakdown, p: SearchParams) -> impl IntoView {
    let field = list.field;
    let rows: Vec<Row> = list
        .rows
        .iter()
        .map(|r| Row {
            label: r.value.clone(),
            value: r.events,
            href: value_href(&p, &b, field, &r.value),
        })
        .collect();
    let name = format!("{id}-by-{}", field.column());
    let title = match field {
        TopField::Ip => "By IP address".to_string(),
        other => format!("By {}", other.label().to_lowercase()),
    };
    let chart = TopChart {
        describe: Describe {
            id: format!("chart-{name}"),
            title: title.clone(),
            desc: format!(
                "The {} values of {} with the most events from {} to {} UTC.",
                rows.len(),
                field.label(),
                minute_text(b.from_ms),
                minute_text(b.to_ms)
            ),
        },
        unit: "events".into(),
        rows: rows.clone(),
    };
    let drawn = horizontal_bars(&chart);
    let empty = rows.is_empty();
    let data: Vec<Vec<String>> = rows
        .iter()
        .map(|r| vec![r.label.clone(), r.value.to_string()])
        .collect();
    let file = csv(&[field.column(), "events"], &data);
    let (test_id, label) = (name.clone(), title.clone());
    view! {
        <section class="top-list" data-testid=test_id aria-label=label>
            <h3>{title}</h3>
            {if empty {
                view! { <p class="muted">"No events in this window."</p> }.into_any()
            } else {
                chart_view(drawn.clone())
            }}
            <details class="as-table">
                <summary>"As table"</summary>
                <table class="events-table">
                    <thead><tr><th scope="col">{field.label()}</th><th scope="col">"Events"</th></tr></thead>
                    <tbody>
                        {rows.into_iter().map(|r| view! {
                            <tr><th scope="row">{r.label}</th><td class="num"><a href=r.href>{r.value.to_string()}</a></td></tr>
                        }).collect_view()}
                    </tbody>
                </table>
            </details>
            <Downloads name svg=drawn.ok().filter(|_| !empty) csv=file/>
        </section>
    }
}

/// Panel 5: permission, role and policy changes, newest first.
#[component]
pub fn ChangesPanel(resource: Answer, params: Memo<SearchParams>) -> impl IntoView {
    let zone = shown_zone();
    let body = move || {
        resource.get().map(|answer| match answer {
            Ok(PanelData::Changes(c)) => changes_view(&c, &params.get(), &zone.get()),
            Ok(_) => wrong_answer(),
            Err(error) => panel_error(error),
        })
    };
    view! {
        <article class="panel dash-panel" aria-labelledby="changes-title" data-testid="panel-changes">
            <h2 id="changes-title">"Permission, role and policy changes"</h2>
            <p class="muted about">"Events in the permission_change category (grants, revocations, role and policy edits), newest first."</p>
            <Transition fallback=loading>{body}</Transition>
        </article>
    }
}

fn changes_view(c: &Changes, p: &SearchParams, zone: &Zone) -> AnyView {
    let all = panel_href(
        p,
        crate::dashboard_model::Panel::Changes,
        c.from_ms,
        c.to_ms,
    );
    let data: Vec<Vec<String>> = c
        .newest
        .iter()
        .map(|h| {
            vec![
                minute_text(h.occurred_at),
                h.tenant_id.clone(),
                h.actor_id.clone(),
                h.action.clone(),
                format!("{}:{}", h.resource_type, h.resource_id),
                h.outcome.clone(),
                h.event_id.clone(),
            ]
        })
        .collect();
    let file = csv(
        &[
            "occurred_at_utc",
            "tenant",
            "actor",
            "action",
            "resource",
            "outcome",
            "event_id",
        ],
        &data,
    );
    let shown = c.newest.len();
    view! {
        <p class="panel-total">
            <a href=all><strong data-testid="panel-total">{c.total.to_string()}</strong></a>" changes"
            {(c.total > shown as u64).then(|| format!(", the newest {shown} listed"))}
        </p>
        {if c.newest.is_empty() {
            view! { <p class="muted">"No changes in this window."</p> }.into_any()
        } else {
            view! {
                <table class="events-table">
                    <thead><tr>
                        <th scope="col">{format!("When ({})", zone.name)}</th><th scope="col">"Tenant"</th><th scope="col">"Actor"</th>
                        <th scope="col">"Action"</th><th scope="col">"Resource"</th><th scope="col">"Outcome"</th>
                    </tr></thead>
                    <tbody>
                        {c.newest.iter().map(|h| {
                            let href = change_href(p, h);
                            view! {
                                <tr>
                                    <th scope="row"><a href=href>{zone.minute(h.occurred_at)}</a></th>
                                    <td>{h.tenant_id.clone()}</td>
                                    <td>{h.actor_id.clone()}</td>
                                    <td>{h.action.clone()}</td>
                                    <td>{format!("{}:{}", h.resource_type, h.resource_id)}</td>
                                    <td>{h.outcome.clone()}</td>
                                </tr>
                            }
                        }).collect_view()}
                    </tbody>
                </table>
            }.into_any()
        }}
        <Downloads name="changes".to_string() svg=None csv=file/>
    }
    .into_any()
}

/// Panel 7: actors seen for the first time in the window.
#[component]
pub fn NewActorsPanel(resource: Answer, params: Memo<SearchParams>) -> impl IntoView {
    let zone = shown_zone();
    let body = move || {
        resource.get().map(|answer| match answer {
            Ok(PanelData::NewActors(n)) => new_actors_view(&n, &params.get(), &zone.get()),
            Ok(_) => wrong_answer(),
            Err(error) => panel_error(error),
        })
    };
    view! {
        <article class="panel dash-panel" aria-labelledby="new-actors-title" data-testid="panel-new-actors">
            <h2 id="new-actors-title">"Actors seen for the first time"</h2>
            <p class="muted about">"Actors with matching events in this window and no event at all in their tenant before it, newest first."</p>
            <Transition fallback=loading>{body}</Transition>
        </article>
    }
}

fn new_actors_view(n: &NewActors, p: &SearchParams, zone: &Zone) -> AnyView {
    let data: Vec<Vec<String>> = n
        .rows
        .iter()
        .map(|r| {
            vec![
                r.tenant_id.clone(),
                r.actor_id.clone(),
                minute_text(r.first_ms),
                r.events.to_string(),
            ]
        })
        .collect();
    let file = csv(&["tenant", "actor", "first_event_utc", "events"], &data);
    let shown = n.rows.len();
    view! {
        <p class="panel-total">
            <strong data-testid="panel-total">{n.total.to_string()}</strong>" new actors"
            {(n.total > shown as u64).then(|| format!(", the newest {shown} listed"))}
        </p>
        {if n.rows.is_empty() {
            view! { <p class="muted">"No new actors in this window."</p> }.into_any()
        } else {
            view! {
                <table class="events-table">
                    <thead><tr>
                        <th scope="col">"Actor"</th><th scope="col">"Tenant"</th>
                        <th scope="col">{format!("First event ({})", zone.name)}</th><th scope="col">"Events"</th>
                    </tr></thead>
                    <tbody>
                        {n.rows.iter().map(|r| view! {
                            <tr>
                                <th scope="row">{r.actor_id.clone()}</th>
                                <td>{r.tenant_id.clone()}</td>
                                <td>{zone.minute(r.first_ms)}</td>
                                <td class="num"><a href=new_actor_href(p, n, r)>{r.events.to_string()}</a></td>
                            </tr>
                        }).collect_view()}
                    </tbody>
                </table>
            }.into_any()
        }}
        <Downloads name="new-actors".to_string() svg=None csv=file/>
    }
    .into_any()
}

/// The heatmap as a chart: one cell per weekday and hour, linked when
/// Search can name its stretches.
pub fn heat_chart(map: &HeatMap, p: &SearchParams) -> HeatChart {
    let zone = &map.zone;
    let cells = (0..7)
        .map(|d| {
            (0..24)
                .map(|h| Cell {
                    value: map.count(d, h),
                    href: cell_href(p, map, d, h),
                    name: format!(
                        "{} {h:02}:00–{:02}:00 {zone}",
                        WEEKDAYS.get(d).copied().unwrap_or_default(),
                        (h + 1) % 24
                    ),
                })
                .collect()
        })
        .collect();
    HeatChart {
        describe: Describe {
            id: "chart-heatmap".into(),
            title: format!("Events by weekday and hour ({zone})"),
            desc: format!(
                "{} distinct events from {} to {} UTC by local weekday (rows, Monday first) and hour (columns) in {zone}; darker is more.",
                map.total(),
                minute_text(map.from_ms),
                minute_text(map.to_ms)
            ),
        },
        x_desc: format!("hour of day ({zone})"),
        unit: "events".into(),
        row_labels: WEEKDAYS.iter().map(|d| d.to_string()).collect(),
        column_labels: (0..24).map(|h| format!("{h:02}")).collect(),
        cells,
    }
}

/// Panel 8: weekday × hour in the chosen zone.
#[component]
pub fn HeatmapPanel(
    resource: Signal<Option<Result<PanelData, SearchError>>>,
    params: Memo<SearchParams>,
) -> impl IntoView {
    let body = move || {
        resource.get().map(|answer| match answer {
            Ok(PanelData::HeatMap(map)) => {
                let p = params.get();
                let chart = heat_chart(&map, &p);
                let drawn = heatmap(&chart);
                let data: Vec<Vec<String>> = (0..7)
                    .flat_map(|d| {
                        let map = &map;
                        (0..24).map(move |h| {
                            vec![
                                WEEKDAYS.get(d).copied().unwrap_or_default().to_string(),
                                format!("{h:02}"),
                                map.count(d, h).to_string(),
                            ]
                        })
                    })
                    .collect();
                let file = csv(&["weekday", "hour", "events"], &data);
                let linked = map.intervals.iter().flatten().any(|c| !c.is_empty());
                view! {
                    <p class="panel-total"><strong data-testid="panel-total">{map.total().to_string()}</strong>" events, hours in "{map.zone.clone()}</p>
                    {(!linked && map.total() > 0).then(|| view! {
                        <p class="muted">"Cells open Search for windows up to 90 days; this one has too many separate hours to name in one query."</p>
                    })}
                    {chart_view(drawn.clone())}
                    <details class="as-table">
                        <summary>"As table"</summary>
                        <table class="events-table heat-table">
                            <thead><tr><th scope="col">"Day"</th>{(0..24).map(|h| view! { <th scope="col">{format!("{h:02}")}</th> }).collect_view()}</tr></thead>
                            <tbody>
                                {(0..7).map(|d| view! {
                                    <tr>
                                        <th scope="row">{WEEKDAYS.get(d).copied().unwrap_or_default()}</th>
                                        {(0..24).map(|h| {
                                            let n = map.count(d, h);
                                            let href = cell_href(&p, &map, d, h);
                                            view! { <td class="num" data-testid=format!("heat-{d}-{h}")>{match (n, href) {
                                                (0, _) => String::new().into_any(),
                                                (n, Some(href)) => view! { <a href=href>{n.to_string()}</a> }.into_any(),
                                                (n, None) => n.to_string().into_any(),
                                            }}</td> }
                                        }).collect_view()}
                                    </tr>
                                }).collect_view()}
                            </tbody>
                        </table>
                    </details>
                    <Downloads name="heatmap".to_string() svg=drawn.ok() csv=file/>
                }
                .into_any()
            }
            Ok(_) => wrong_answer(),
            Err(error) => panel_error(error),
        })
    };
    view! {
        <article class="panel dash-panel" aria-labelledby="heatmap-title" data-testid="panel-heatmap">
            <h2 id="heatmap-title">"Weekday × hour"</h2>
            <p class="muted about">"Distinct events by local weekday and hour of day, to spot off-hours activity. A daylight-saving change makes one hour count twice as long, another not occur."</p>
            <Transition fallback=loading>{body}</Transition>
        </article>
    }
}

/// The browser's preferences, kept in its local storage: the theme
/// (automatic, light, dark). Read after hydration; the server renders the
/// system theme. The time zone is not here but in the URL (`tz`), which a
/// shared link carries.
#[cfg(feature = "hydrate")]
mod prefs {
    use wasm_bindgen::{JsCast, JsValue};

    fn storage() -> Option<JsValue> {
        js_sys::Reflect::get(&js_sys::global(), &"localStorage".into())
            .ok()
            .filter(|s| !s.is_undefined() && !s.is_null())
    }

    pub fn get(key: &str) -> Option<String> {
        let storage = storage()?;
        let get: js_sys::Function = js_sys::Reflect::get(&storage, &"getItem".into())
            .ok()?
            .dyn_into()
            .ok()?;
        get.call1(&storage, &key.into()).ok()?.as_string()
    }

    pub fn set(key: &str, value: &str) {
        let Some(storage) = storage() else { return };
        if let Ok(set) = js_sys::Reflect::get(&storage, &"setItem".into())
            .and_then(|f| f.dyn_into::<js_sys::Function>())
        {
            let _ = set.call2(&storage, &key.into(), &value.into());
        }
    }

    /// `<html data-theme=…>`; the stylesheet reads it.
    pub fn apply_theme(theme: &str) {
        let root = js_sys::Reflect::get(&js_sys::global(), &"document".into())
            .and_then(|d| js_sys::Reflect::get(&d, &"documentElement".into()))
            .and_then(|e| js_sys::Reflect::get(&e, &"dataset".into()));
        if let Ok(dataset) = root {
            let _ = js_sys::Reflect::set(&dataset, &"theme".into(), &theme.into());
        }
    }
}

/// The tenants a dashboard link names: one, several (`a,b`: tenant ids
/// cannot hold a comma) or none for all the viewer's.
pub fn chosen_tenants(params: &SearchParams) -> Vec<String> {
    params
        .tenant
        .as_deref()
        .map(|t| {
            t.split(',')
                .map(str::trim)
                .filter(|t| !t.is_empty())
                .map(str::to_owned)
                .collect()
        })
        .unwrap_or_default()
}

/// The dashboard with `name` added to or taken from its tenants.
fn toggled(params: &SearchParams, name: &str) -> String {
    let mut chosen = chosen_tenants(params);
    match chosen.iter().position(|t| t == name) {
        Some(at) => {
            chosen.remove(at);
        }
        None => chosen.push(name.to_string()),
    }
    chosen.sort();
    let p = SearchParams {
        tenant: Some(chosen.join(",")).filter(|t| !t.is_empty()),
        cursor: None,
        ..params.clone()
    };
    format!("/dashboard{}", p.query_string())
}

/// How many tenants the picker lists in the open. Past it the chosen ones
/// stay in view and the rest wait behind a disclosure: a viewer of
/// hundreds of tenants would otherwise scroll past a wall of names to
/// reach the first chart.
const PICKS_IN_VIEW: usize = 12;

/// Several tenants at once, as links (they work before hydration): each
/// adds its tenant to the choice or takes it away. The server checks every
/// one against the viewer's access.
#[component]
pub fn TenantPicker(
    params: Memo<SearchParams>,
    tenants: Resource<Result<Vec<String>, SearchError>>,
) -> impl IntoView {
    let all = move || {
        let p = SearchParams {
            tenant: None,
            cursor: None,
            ..params.get()
        };
        format!("/dashboard{}", p.query_string())
    };
    view! {
        <nav class="tenant-pick" aria-label="Tenants shown" data-testid="tenant-pick">
            <span class="muted">"Tenants: "</span>
            <a href=all aria-pressed=move || params.get().tenant.is_none().to_string()>"all yours"</a>
            <Transition fallback=|| ()>
                {move || {
                    let p = params.get();
                    let chosen = chosen_tenants(&p);
                    tenants.get().and_then(Result::ok).map(|names| {
                        let pick = |name: &String| {
                            let on = chosen.contains(name);
                            view! {
                                <a href=toggled(&p, name) aria-pressed=on.to_string()
                                    data-testid=format!("pick-{name}")>{name.clone()}</a>
                            }
                        };
                        if names.len() <= PICKS_IN_VIEW {
                            return names.iter().map(pick).collect_view().into_any();
                        }
                        let (on, off): (Vec<&String>, Vec<&String>) =
                            names.iter().partition(|name| chosen.contains(name));
                        let label = if on.is_empty() {
                            format!("choose among {}", off.len())
                        } else {
                            format!("{} more", off.len())
                        };
                        view! {
                            {on.into_iter().map(pick).collect_view()}
                            <details class="tenant-more" data-testid="tenant-more">
                                <summary>{label}</summary>
                                <div class="tenant-more-list">
                                    {off.into_iter().map(pick).collect_view()}
                                </div>
                            </details>
                        }
                        .into_any()
                    })
                }}
            </Transition>
        </nav>
    }
}

const THEMES: [&str; 3] = ["auto", "light", "dark"];

/// The theme switch (automatic follows `prefers-color-scheme`) and the
/// UTC / browser zone switch (a link: the zone is in the URL).
#[component]
pub fn ThemeAndZone(params: Memo<SearchParams>) -> impl IntoView {
    let theme = RwSignal::new("auto".to_string());
    #[cfg(feature = "hydrate")]
    Effect::new(move |_| {
        if let Some(saved) = prefs::get("attest-theme").filter(|t| THEMES.contains(&t.as_str())) {
            prefs::apply_theme(&saved);
            theme.set(saved);
        }
    });
    let next_theme = move |_| {
        let now = theme.get_untracked();
        let at = THEMES.iter().position(|t| *t == now).unwrap_or(0);
        let next = THEMES[(at + 1) % THEMES.len()].to_string();
        #[cfg(feature = "hydrate")]
        {
            prefs::set("attest-theme", &next);
            prefs::apply_theme(&next);
        }
        theme.set(next);
    };
    view! {
        <div class="view-switches">
            <button type="button" data-testid="theme-toggle" on:click=next_theme
                title="Theme: automatic follows the system setting">
                {move || format!("Theme: {}", theme.get())}
            </button>
            <ZoneSwitch params page="/dashboard"/>
        </div>
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tenants_are_added_and_taken_away() {
        // As the page reads its URL: Search's default columns.
        let p = SearchParams {
            tenant: Some("globex".into()),
            ..SearchParams::from_lookup(|_| None)
        };
        assert_eq!(toggled(&p, "acme"), "/dashboard?tenant=acme%2Cglobex");
        let both = SearchParams {
            tenant: Some("acme,globex".into()),
            ..SearchParams::from_lookup(|_| None)
        };
        assert_eq!(chosen_tenants(&both), ["acme", "globex"]);
        assert_eq!(toggled(&both, "acme"), "/dashboard?tenant=globex");
        assert_eq!(toggled(&p, "globex"), "/dashboard");
    }

    #[test]
    fn csv_quotes_and_defuses_formulas() {
        let file = csv(
            &["actor", "events"],
            &[
                vec!["=cmd|' /C calc'!A0".into(), "3".into()],
                vec!["o\"brien".into(), "1".into()],
                vec!["'quoted".into(), "2".into()],
            ],
        );
        assert_eq!(
            file,
            "\"actor\",\"events\"\r\n\"'=cmd|' /C calc'!A0\",\"3\"\r\n\"o\"\"brien\",\"1\"\r\n\"''quoted\",\"2\"\r\n"
        );
    }
}
