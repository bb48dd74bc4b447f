//! The results half of the Search page: the table, its columns and their
//! order, the pages and the "newer events" notice.

use leptos::prelude::*;
use leptos_router::hooks::use_navigate;

use crate::pages::search_form::SuggestionValues;
use crate::pages::search_zone::shown_zone;
use crate::search_model::{SearchError, SearchHit, SearchPage, AROUND_MS, HASH_PREFIX_CHARS};
use crate::search_state::{
    metadata_keys, toggle_column, Column, SearchParams, Sort, SortColumn, SortDir,
    MAX_METADATA_COLUMNS,
};
use crate::timefmt::{utc_millis, Zone};

/// The detail page of one event, keeping the search it was found by so its
/// links search the same window. `h`, a prefix of the content hash, names
/// this event among others sent with the same id.
pub fn event_href(
    tenant: &str,
    event_id: &str,
    occurred_at: i64,
    content_hash: &str,
    context: &SearchParams,
) -> String {
    let prefix = content_hash
        .get(..HASH_PREFIX_CHARS)
        .unwrap_or(content_hash);
    let mut pairs = vec![("at", occurred_at.to_string()), ("h", prefix.to_string())];
    let context = SearchParams {
        cursor: None,
        columns: Column::DEFAULT.to_vec(),
        ..context.clone()
    };
    pairs.extend(context.pairs());
    format!(
        "/events/{}/{}{}",
        crate::search_state::encode_path_segment(tenant),
        crate::search_state::encode_path_segment(event_id),
        crate::search_state::query_string(&pairs)
    )
}

#[component]
pub fn SearchErrorView(error: SearchError) -> impl IntoView {
    let (title, detail) = match &error {
        SearchError::BadQuery(_) => ("The query has an error.", super::search::error_text(&error)),
        SearchError::Limit(_) => ("The search was stopped.", error.to_string()),
        SearchError::BadRequest(_) => ("The search cannot run.", error.to_string()),
        SearchError::Forbidden(_) => ("Not yours to see.", error.to_string()),
        SearchError::Unavailable | SearchError::Transport(_) => {
            ("Could not search.", error.to_string())
        }
    };
    view! {
        <div class="error" role="alert" data-testid="search-error">
            <strong>{title}</strong>" "{detail}
        </div>
    }
}

#[component]
pub fn ResultsTable(
    page: SearchPage,
    params: SearchParams,
    newer: Signal<u64>,
    show_newer: Callback<()>,
) -> impl IntoView {
    let columns = params.columns.clone();
    let first_page = params.first_page();
    let on_first_page = params.cursor.is_none();
    let zone = shown_zone();
    // The page was asked for under this order, so it reads.
    let sort = params.sort().unwrap_or_default();
    let order = order_text(sort);
    let (hits, from_ms, to_ms) = (page.hits.len(), page.from_ms, page.to_ms);
    let summary = move || {
        let z = zone.get();
        format!(
            "{hits} event{}{}, {order}, {} – {} {}",
            if hits == 1 { "" } else { "s" },
            if on_first_page { "" } else { " on this page" },
            z.local_millis(from_ms),
            z.local_millis(to_ms),
            z.name,
        )
    };
    let next = page.next_cursor.clone().map(|cursor| {
        SearchParams {
            cursor: Some(cursor),
            ..params.clone()
        }
        .href()
    });
    let newer_href = first_page.href();
    let notice = move || {
        let count = newer.get();
        (count > 0).then(|| {
            let href = newer_href.clone();
            view! {
                <p class="notice" role="status" data-testid="newer-notice">
                    {format!("{count} newer event{} — ", if count == 1 { "" } else { "s" })}
                    <a href=href on:click=move |ev| {
                        // On the newest page the URL stays; ask again instead.
                        if on_first_page {
                            ev.prevent_default();
                            show_newer.run(());
                        }
                    }>"show"</a>
                </p>
            }
        })
    };
    let rows = page
        .hits
        .iter()
        .map(|hit| view! { <ResultRow hit=hit.clone() columns=columns.clone() context=params.clone() zone/> })
        .collect_view();
    let empty = page.hits.is_empty();
    view! {
        {notice}
        <div class="results-head">
            <p class="muted" data-testid="search-summary">{summary}</p>
            <ColumnChooser params=params.clone()/>
        </div>
        {if empty {
            view! { <p class="empty" data-testid="search-empty">"No events match in this window. Widen the time range or remove terms."</p> }.into_any()
        } else {
            view! {
                <div class="table-scroll">
                    <table class="events-table" data-testid="search-results">
                        <thead>
                            <tr>{columns.iter().map(|c| {
                                view! { <ColumnHeader column=c.clone() params=params.clone() zone/> }
                            }).collect_view()}</tr>
                        </thead>
                        <tbody>{rows}</tbody>
                    </table>
                </div>
            }.into_any()
        }}
        <nav class="pager" aria-label="Result pages">
            {(!on_first_page).then(|| view! { <a href=first_page.href() data-testid="newest-page">{first_text(sort)}</a> })}
            {next.map(|href| view! { <a href=href rel="next" data-testid="next-page">{next_text(sort)}</a> })}
        </nav>
    }
}

/// How the summary line names the order of the results.
fn order_text(sort: Sort) -> String {
    match (sort.column, sort.dir) {
        (SortColumn::Time, SortDir::Desc) => "newest first".to_string(),
        (SortColumn::Time, SortDir::Asc) => "oldest first".to_string(),
        (column, dir) => format!(
            "by {} {}, then newest first",
            column.column().label(),
            match dir {
                SortDir::Asc => "A to Z",
                SortDir::Desc => "Z to A",
            }
        ),
    }
}

/// The pager's links under `sort`: newest first pages go to older events.
fn first_text(sort: Sort) -> &'static str {
    if sort == Sort::default() {
        "« Newest"
    } else {
        "« First page"
    }
}

fn next_text(sort: Sort) -> &'static str {
    match (sort.column, sort.dir) {
        (SortColumn::Time, SortDir::Desc) => "Older events »",
        (SortColumn::Time, SortDir::Asc) => "Newer events »",
        _ => "Next page »",
    }
}

/// A column's header. A column results can be ordered by is a button that
/// orders them by it on the server (first click: newest first for time,
/// A to Z for text; the next one flips), with an arrow and `aria-sort`
/// while they are; the others (received, metadata keys: see
/// `search_state::SortColumn`) are their name alone.
#[component]
fn ColumnHeader(column: Column, params: SearchParams, zone: Signal<Zone>) -> impl IntoView {
    let label = {
        let column = column.clone();
        move || column_label(&column, &zone.get().name)
    };
    let Some(by) = SortColumn::of(&column) else {
        return view! { <th scope="col">{label}</th> }.into_any();
    };
    let current = params.sort().unwrap_or_default();
    let dir = current.dir_of(&column);
    let next = current.clicked(by);
    let target = params.with_sort(next).href();
    let navigate = use_navigate();
    let arrow = match dir {
        Some(SortDir::Asc) => "▲",
        Some(SortDir::Desc) => "▼",
        None => "",
    };
    let title = format!(
        "Sort by {} {}",
        column.label(),
        match (by, next.dir) {
            (SortColumn::Time, SortDir::Desc) => "newest first",
            (SortColumn::Time, SortDir::Asc) => "oldest first",
            (_, SortDir::Asc) => "A to Z",
            (_, SortDir::Desc) => "Z to A",
        }
    );
    view! {
        <th scope="col" aria-sort=dir.map(SortDir::aria) class:sorted=dir.is_some()>
            <button type="button" class="sort-button" title=title
                data-testid=format!("sort-{}", by.key())
                on:click=move |_| navigate(&target, Default::default())>
                {label}<span class="sort-arrow" aria-hidden="true">{arrow}</span>
            </button>
        </th>
    }
    .into_any()
}

#[component]
pub(crate) fn ResultRow(
    hit: SearchHit,
    columns: Vec<Column>,
    context: SearchParams,
    zone: Signal<Zone>,
) -> impl IntoView {
    let detail = event_href(
        &hit.tenant_id,
        &hit.event_id,
        hit.occurred_at,
        &hit.content_hash,
        &context,
    );
    // On "events around this one", the event the analyst came from.
    let anchored = context.pivot.as_ref().is_some_and(|pivot| {
        pivot.is_anchor(
            context.tenant.as_deref(),
            &hit.tenant_id,
            &hit.event_id,
            hit.occurred_at,
            &hit.content_hash,
        )
    });
    let row = NodeRef::<leptos::html::Tr>::new();
    #[cfg(feature = "hydrate")]
    if anchored {
        scroll_to_anchor_once(row, (hit.event_id.clone(), hit.occurred_at));
    }
    let cells = columns
        .into_iter()
        .map(|column| cell(&hit, column, &detail, zone))
        .collect_view();
    view! {
        <tr node_ref=row class:anchor=anchored aria-current=anchored.then_some("true")
            data-event-id=hit.event_id.clone() data-tenant=hit.tenant_id.clone()
            data-content-hash=hit.content_hash.clone()>{cells}</tr>
    }
}

/// The anchor the Search page has scrolled to, so it scrolls there once and
/// not again each time the results are asked for anew (newer events,
/// paging back).
#[derive(Clone, Copy)]
// Read only in the browser, which is the only place that scrolls.
#[cfg_attr(not(feature = "hydrate"), allow(dead_code))]
pub struct ScrolledAnchor(pub StoredValue<Option<(String, i64)>>);

/// Brings the anchor's row into view when it is first shown on a page
/// that provides [`ScrolledAnchor`].
#[cfg(feature = "hydrate")]
fn scroll_to_anchor_once(row: NodeRef<leptos::html::Tr>, key: (String, i64)) {
    let Some(ScrolledAnchor(done)) = use_context::<ScrolledAnchor>() else {
        return;
    };
    Effect::new(move |_| {
        let Some(el) = row.get() else {
            return;
        };
        if done.with_value(|d| d.as_ref() != Some(&key)) {
            done.set_value(Some(key.clone()));
            // The row's `scroll-margin` (style/main.css) keeps it off the
            // window's edge.
            el.scroll_into_view();
        }
    });
}

/// Above the results of "events around this one": which event they are
/// around, and the way back to the window the analyst had before.
#[component]
pub fn PivotNotice(params: Memo<SearchParams>) -> impl IntoView {
    let key = Memo::new(move |_| {
        let p = params.get();
        p.pivot.map(|pivot| (p.tenant, pivot))
    });
    // The anchor's action and actor, from the event itself: the row may
    // be on a later page than the one shown.
    let anchor = Resource::new(
        move || key.get(),
        |key| async move {
            let (Some(tenant), pivot) = key? else {
                return None;
            };
            super::event_detail::get_event(
                tenant,
                pivot.event_id,
                Some(pivot.at_ms),
                pivot.hash_prefix,
            )
            .await
            .ok()
            .flatten()
        },
    );
    let zone = shown_zone();
    move || {
        key.get().map(|(_, pivot)| {
            let back = params.get().leave_pivot().href();
            let label = pivot.previous.label();
            let at_ms = pivot.at_ms;
            let time = move || {
                let z = zone.get();
                if z.is_utc() {
                    format!("{} UTC", utc_millis(at_ms))
                } else {
                    z.stamp(at_ms)
                }
            };
            let id = pivot.event_id.clone();
            let fallback = {
                let id = id.clone();
                move || format!("event {id}")
            };
            let what = move || {
                anchor.get().map(|found| match found {
                    Some(e) => format!("{} by {}", e.action, e.actor_id),
                    None => format!("event {id}"),
                })
            };
            view! {
                <p class="notice pivot-notice" role="status" data-testid="pivot-notice">
                    {format!("Events within ±{} min of ", AROUND_MS / 60_000)}
                    <strong><Transition fallback=fallback>{what}</Transition></strong>
                    " at "{time}" — "
                    <a href=back data-testid="pivot-back">{format!("Back to {label}")}</a>
                </p>
            }
        })
    }
}

/// A column's heading: "Time (UTC)" names the shown zone instead; a
/// metadata key is shown as it is, whatever it spells.
pub(crate) fn column_label(column: &Column, zone: &str) -> String {
    match column {
        Column::Metadata(_) => column.label().into_owned(),
        fixed => fixed.label().replace("UTC", zone),
    }
}

/// A time as the page shows it: in UTC as before, or in the chosen zone
/// with its abbreviation (an autumn hour comes twice).
fn time_text(zone: Signal<Zone>, ms: i64) -> impl Fn() -> String + Send + Sync + 'static {
    move || {
        let z = zone.get();
        if z.is_utc() {
            utc_millis(ms)
        } else {
            z.stamp(ms)
        }
    }
}

fn cell(hit: &SearchHit, column: Column, detail: &str, zone: Signal<Zone>) -> AnyView {
    let text = |value: &str| {
        if value.is_empty() {
            "—".to_string()
        } else {
            value.to_string()
        }
    };
    match column {
        Column::Time => view! {
            <td class="mono"><a href=detail.to_string() title="Open this event">{time_text(zone, hit.occurred_at)}</a></td>
        }
        .into_any(),
        Column::EventId => view! {
            <td class="mono"><a href=detail.to_string()>{hit.event_id.clone()}</a></td>
        }
        .into_any(),
        Column::Outcome => {
            let class = format!("outcome outcome-{}", hit.outcome);
            view! { <td><span class=class>{hit.outcome.clone()}</span></td> }.into_any()
        }
        Column::Resource => {
            let resource = if hit.resource_type.is_empty() && hit.resource_id.is_empty() {
                "—".to_string()
            } else {
                format!("{}/{}", hit.resource_type, hit.resource_id)
            };
            view! { <td class="mono">{resource}</td> }.into_any()
        }
        Column::Received => view! { <td class="mono">{time_text(zone, hit.received_at)}</td> }.into_any(),
        Column::Metadata(key) => {
            let value = hit.metadata_value(&key).unwrap_or_default();
            view! { <td class="mono metadata-cell" data-metadata-key=key>{text(value)}</td> }.into_any()
        }
        other => {
            let (value, mono) = match other {
                Column::Tenant => (&hit.tenant_id, false),
                Column::Category => (&hit.category, false),
                Column::Action => (&hit.action, true),
                Column::Actor => (&hit.actor_id, false),
                Column::ActorType => (&hit.actor_type, false),
                Column::Ip => (&hit.actor_ip, true),
                Column::UserAgent => (&hit.actor_user_agent, false),
                Column::Source => (&hit.source_service, false),
                _ => (&hit.request_id, true),
            };
            let class = if mono { "mono" } else { "" };
            view! { <td class=class>{text(value)}</td> }.into_any()
        }
    }
}

/// Which columns the table shows; the choice goes into the URL. Besides
/// the fixed fields, any metadata key: the ones shown, the current
/// search's most common keys (from its facets), or one typed in.
#[component]
fn ColumnChooser(params: SearchParams) -> impl IntoView {
    let navigate = use_navigate();
    let show = {
        let params = params.clone();
        let navigate = navigate.clone();
        move |column: &Column| {
            let target = SearchParams {
                columns: toggle_column(&params.columns, column),
                ..params.clone()
            }
            .href();
            navigate(&target, Default::default());
        }
    };
    // At the most metadata columns, another one cannot be added.
    let full = metadata_keys(&params.columns).len() >= MAX_METADATA_COLUMNS;
    let checkbox = {
        let params = params.clone();
        let show = show.clone();
        move |column: Column| {
            let shown = params.columns.contains(&column);
            let disabled = full && !shown && column.metadata_key().is_some();
            let id = format!("col-{}", column.key());
            let label = column.label().into_owned();
            let show = show.clone();
            view! {
                <li>
                    <input type="checkbox" id=id.clone() checked=shown disabled=disabled
                        on:change=move |_| show(&column)/>
                    <label for=id>{label}</label>
                </li>
            }
        }
    };
    let fixed = Column::ALL.into_iter().map(checkbox.clone()).collect_view();
    // The metadata keys shown, then the current search's most common
    // ones not shown yet (they arrive with the facets).
    let facets = use_context::<SuggestionValues>().map(|s| s.facets);
    let shown_keys = metadata_keys(&params.columns);
    let metadata = {
        let shown_keys = shown_keys.clone();
        move || {
            let mut keys = shown_keys.clone();
            if let Some(found) = facets.and_then(|f| f.get()) {
                for key in found.metadata {
                    if !keys.contains(&key.key) && Column::metadata(&key.key).is_some() {
                        keys.push(key.key);
                    }
                }
            }
            keys.into_iter()
                .filter_map(|key| Column::metadata(&key))
                .map(checkbox.clone())
                .collect_view()
        }
    };
    let typed = RwSignal::new(String::new());
    let problem = RwSignal::new(None::<String>);
    let add = move |ev: leptos::ev::SubmitEvent| {
        ev.prevent_default();
        let key = typed.get_untracked().trim().to_string();
        let key = crate::query::metadata_key_of(&key).map_or(key.clone(), str::to_owned);
        match Column::metadata(&key) {
            Some(_) if full => {
                problem.set(Some(format!(
                    "at most {MAX_METADATA_COLUMNS} metadata columns; hide one first"
                )));
            }
            Some(column) => {
                problem.set(None);
                typed.set(String::new());
                if !shown_keys.contains(&key) {
                    show(&column);
                }
            }
            None => problem.set(Some(crate::query::METADATA_KEY_RULE.to_string())),
        }
    };
    view! {
        <details class="columns" data-testid="column-chooser">
            <summary>"Columns"</summary>
            <div class="columns-menu">
            <ul>{fixed}</ul>
            <p class="columns-metadata-title">"Metadata"</p>
            <ul data-testid="metadata-columns">{metadata}</ul>
            <form class="metadata-column-form" on:submit=add>
                <label for="metadata-column-key" class="visually-hidden">"Metadata key"</label>
                <input id="metadata-column-key" type="text" placeholder="metadata key, e.g. ticket"
                    autocomplete="off" spellcheck="false" data-testid="metadata-column-key"
                    prop:value=move || typed.get() on:input=move |ev| typed.set(event_target_value(&ev))/>
                <button type="submit" data-testid="metadata-column-add">"Add column"</button>
                {move || problem.get().map(|p| view! { <p class="query-error" role="alert">{p}</p> })}
            </form>
            </div>
        </details>
    }
}
