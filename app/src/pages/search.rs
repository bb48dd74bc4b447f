//! The Search page: who did what to which resource, when, from where.
//! A query bar that checks the query as it is typed, a time window, a
//! tenant, results (newest first, or by any column) with facets beside
//! them, and exports. Its whole state is in the URL (`docs/SEARCH.md`).

// The page's server function takes the URL's parameters one argument each
// (flat, as the browser's form encoding carries them), and the client stub
// the macro makes of it has them too, where an `allow` on the function
// does not reach.
#![allow(clippy::too_many_arguments)]

use leptos::prelude::*;
use leptos_router::hooks::use_query_map;

use crate::pages::events::list_tenants;
use crate::pages::saved_searches::SavedSearches;
use crate::pages::search_facets::FacetsPanel;
use crate::pages::search_form::QueryForm;
use crate::pages::search_histogram::{count_values, search_histogram, CountByPanel, Histogram};
use crate::pages::search_results::{PivotNotice, ResultsTable, ScrolledAnchor, SearchErrorView};
use crate::pages::search_tail::{LiveTail, TailSwitch};
use crate::pages::search_zone::{provide_zone, ZoneSwitch};
use crate::search_model::{Facets, SearchError, SearchPage};
use crate::search_state::SearchParams;

/// How often the page asks whether newer events arrived, in seconds.
const NEWER_POLL_SECONDS: u64 = 10;

/// The parameters as a server function receives them: the URL's, flat, so
/// the browser's form encoding carries them as they are.
#[cfg(feature = "ssr")]
pub(crate) fn search_params(
    q: Option<String>,
    tenant: Option<String>,
    range: Option<String>,
    from: Option<String>,
    to: Option<String>,
    cursor: Option<String>,
) -> SearchParams {
    SearchParams::from_pairs(&[
        ("q", q),
        ("tenant", tenant),
        ("range", range),
        ("from", from),
        ("to", to),
        ("cursor", cursor),
    ])
}

/// Runs `answer` against the store in context; a failure sets the status
/// (400 for the analyst's mistakes, 422 for limits, 503 when the store is
/// down).
#[cfg(feature = "ssr")]
pub(crate) async fn with_store<T, F>(
    answer: impl FnOnce(crate::store::SharedStore, i64) -> F,
) -> Result<T, SearchError>
where
    F: std::future::Future<Output = Result<T, SearchError>>,
{
    let result = match use_context::<crate::store::SharedStore>() {
        Some(store) => {
            let now_ms = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_millis() as i64)
                .unwrap_or_default();
            answer(store, now_ms).await
        }
        None => Err(SearchError::Unavailable),
    };
    if let Err(error) = &result {
        set_api_status(error.status());
    }
    result
}

/// Sets the status of a server function's own HTTP answer. When the page is
/// rendered on the server, the same function runs inside the page's
/// request, whose status must stay 200: the page explains the error.
#[cfg(feature = "ssr")]
pub(crate) fn set_api_status(status: http::StatusCode) {
    let called_over_http = use_context::<http::request::Parts>()
        .is_some_and(|parts| parts.uri.path().starts_with("/api/"));
    if let (true, Some(response)) = (
        called_over_http,
        use_context::<leptos_axum::ResponseOptions>(),
    ) {
        response.set_status(status);
    }
}

/// One page of results, newest first unless `sort`/`dir` (as in the URL)
/// name another order. `cols`, as in the URL, names the metadata columns
/// whose values the hits carry (the fixed ones are always there).
#[server(endpoint = "search/page")]
pub async fn find_events(
    q: Option<String>,
    tenant: Option<String>,
    range: Option<String>,
    from: Option<String>,
    to: Option<String>,
    cursor: Option<String>,
    cols: Option<String>,
    sort: Option<String>,
    dir: Option<String>,
) -> Result<SearchPage, SearchError> {
    use crate::search_model::{SearchQuery, SEARCH_PAGE_ROWS};
    let text = |v: Option<String>| v.map(|v| v.trim().to_string()).filter(|v| !v.is_empty());
    let params = SearchParams {
        columns: crate::search_state::parse_columns(cols.as_deref()),
        sort: text(sort),
        dir: text(dir),
        ..search_params(q, tenant, range, from, to, cursor)
    };
    with_store(|store, now_ms| async move {
        let query = SearchQuery::from_params(&params, SEARCH_PAGE_ROWS)?;
        Ok(store.0.search(&query, now_ms).await?)
    })
    .await
}

/// Top values per field over every matching event; `snapshot`, when a
/// later page pinned one, counts as of that moment.
#[server(endpoint = "search/facets")]
pub async fn count_facets(
    q: Option<String>,
    tenant: Option<String>,
    range: Option<String>,
    from: Option<String>,
    to: Option<String>,
    snapshot: Option<i64>,
) -> Result<Facets, SearchError> {
    use crate::search_model::{checked_snapshot, SearchQuery, SEARCH_PAGE_ROWS};
    let params = search_params(q, tenant, range, from, to, None);
    with_store(|store, now_ms| async move {
        let query = SearchQuery::from_params(&params, SEARCH_PAGE_ROWS)?;
        let snapshot = checked_snapshot(snapshot.unwrap_or(now_ms))?;
        Ok(store.0.facets(&query, snapshot).await?)
    })
    .await
}

/// Matching events that arrived after `snapshot`.
#[server(endpoint = "search/newer")]
pub async fn count_newer(
    q: Option<String>,
    tenant: Option<String>,
    range: Option<String>,
    from: Option<String>,
    to: Option<String>,
    snapshot: i64,
) -> Result<u64, SearchError> {
    use crate::search_model::{checked_snapshot, SearchQuery, SEARCH_PAGE_ROWS};
    let params = search_params(q, tenant, range, from, to, None);
    with_store(|store, now_ms| async move {
        let query = SearchQuery::from_params(&params, SEARCH_PAGE_ROWS)?;
        let snapshot = checked_snapshot(snapshot)?;
        Ok(store.0.newer_events(&query, snapshot, now_ms).await?)
    })
    .await
}

fn range_param(params: &SearchParams) -> Option<String> {
    Some(params.range.param().to_string())
}

#[component]
pub fn SearchPage() -> impl IntoView {
    let query = use_query_map();
    let params = Memo::new(move |_| {
        let map = query.read();
        SearchParams::from_lookup(|key| map.get(key))
    });
    // The zone times are shown in, from the URL, for the results and the
    // histogram.
    provide_zone(params);
    // The fixed columns change what is shown, not what is asked; metadata
    // columns are values the page must fetch. The counted field changes
    // only the count-by table.
    let asked = Memo::new(move |_| {
        let p = params.get();
        SearchParams {
            columns: p
                .columns
                .iter()
                .filter(|c| c.metadata_key().is_some())
                .cloned()
                .collect(),
            count_by: None,
            tail: false,
            ..p
        }
    });
    let facet_key = Memo::new(move |_| {
        let p = asked.get();
        let snapshot = p
            .cursor
            .as_deref()
            .and_then(crate::search_state::Cursor::decode)
            .map(|c| c.snapshot_ms);
        // The order changes the pages only: the facets, histogram and
        // counts are of the same events whatever it is.
        let p = SearchParams {
            cursor: None,
            columns: Vec::new(),
            sort: None,
            dir: None,
            ..p
        };
        (p, snapshot)
    });
    // Each answer carries the search it answers, so the page can tell a
    // result of the current search from one of an earlier search and never
    // shows the latter as current (it stays only dimmed, while busy).
    let page = Resource::new(
        move || asked.get(),
        |p| async move {
            let cols: Vec<_> = p.columns.iter().map(|c| c.key()).collect();
            let answer = find_events(
                Some(p.q.clone()),
                p.tenant.clone(),
                range_param(&p),
                p.from.clone(),
                p.to.clone(),
                p.cursor.clone(),
                Some(cols.join(",")).filter(|c| !c.is_empty()),
                p.sort.clone(),
                p.dir.clone(),
            )
            .await;
            (p, answer)
        },
    );
    let histogram = Resource::new(
        move || facet_key.get(),
        |(p, snapshot)| {
            search_histogram(
                Some(p.q.clone()),
                p.tenant.clone(),
                range_param(&p),
                p.from.clone(),
                p.to.clone(),
                snapshot,
            )
        },
    );
    let count_key = Memo::new(move |_| (facet_key.get(), params.get().count_by));
    let counted = Resource::new(
        move || count_key.get(),
        |((p, snapshot), field)| async move {
            match field {
                Some(field) => count_values(
                    Some(p.q.clone()),
                    p.tenant.clone(),
                    range_param(&p),
                    p.from.clone(),
                    p.to.clone(),
                    field.query_field().to_string(),
                    snapshot,
                )
                .await
                .map(Some),
                None => Ok(None),
            }
        },
    );
    // Busy: a search is on its way, or the answer shown is an earlier
    // search's (the new one has not come yet).
    let (pending, set_pending) = signal(false);
    let stale = Memo::new(move |_| {
        page.get()
            .is_some_and(|(answered, _)| answered != asked.get())
    });
    let busy = move || pending.get() || stale.get();
    // Keyboard: `/` focuses the query, `j`/`k` move through the results'
    // event links (Enter then opens one). Only in the browser, and never
    // while typing in a field.
    #[cfg(feature = "hydrate")]
    {
        let handle = window_event_listener(leptos::ev::keydown, keyboard_shortcut);
        on_cleanup(move || handle.remove());
    }
    let facets = Resource::new(
        move || facet_key.get(),
        |(p, snapshot)| {
            count_facets(
                Some(p.q.clone()),
                p.tenant.clone(),
                range_param(&p),
                p.from.clone(),
                p.to.clone(),
                snapshot,
            )
        },
    );
    // "Events around this one" scrolls to its event once per visit.
    provide_context(ScrolledAnchor(StoredValue::new(None)));
    let tenants = Resource::new(|| (), |_| list_tenants());
    // The query bar suggests the current search's facet values, its
    // metadata keys, and the values of the metadata facets opened (until
    // the search changes).
    let opened = RwSignal::new(Vec::new());
    Effect::new(move |_| {
        facet_key.track();
        opened.set(Vec::new());
    });
    provide_context(crate::pages::search_form::SuggestionValues {
        facets: Signal::derive(move || facets.get().and_then(Result::ok)),
        metadata: opened,
    });

    // Newer events: asked for every few seconds while the page is open,
    // unless the live tail shows them as they come.
    let polled = RwSignal::new(None::<(i64, u64)>);
    Effect::new(move |_| {
        let Some((_, Ok(current))) = page.get() else {
            return;
        };
        if params.get().tail {
            return;
        }
        let p = asked.get_untracked();
        let snapshot = current.snapshot_ms;
        let handle = set_interval_with_handle(
            move || {
                let p = p.clone();
                leptos::task::spawn_local(async move {
                    let answer = count_newer(
                        Some(p.q.clone()),
                        p.tenant.clone(),
                        range_param(&p),
                        p.from.clone(),
                        p.to.clone(),
                        snapshot,
                    )
                    .await;
                    if let Ok(count) = answer {
                        polled.set(Some((snapshot, count)));
                    }
                });
            },
            std::time::Duration::from_secs(NEWER_POLL_SECONDS),
        );
        on_cleanup(move || {
            if let Ok(handle) = handle {
                handle.clear();
            }
        });
    });
    let show_newer = Callback::new(move |()| {
        polled.set(None);
        page.refetch();
        facets.refetch();
        histogram.refetch();
        counted.refetch();
    });

    // Built apart and type-erased: nested in the page's view, the whole
    // page's view type grows past the compiler's recursion limit.
    let results = view! {
        <div class="results" id="results" tabindex="-1" class:busy=busy aria-busy=move || busy().to_string() data-testid="results">
            {move || busy().then(|| view! {
                <div class="busy-indicator" role="status" data-testid="search-busy">
                    <progress aria-label="Searching"></progress>" Searching…"
                </div>
            })}
            <PivotNotice params=params/>
            <Histogram resource=histogram params=params/>
            <CountByPanel resource=counted params=params/>
            <Transition fallback=move || view! { <p class="muted">"Searching…"</p> } set_pending=set_pending>
                {move || page.get().map(|(_, answer)| match answer {
                    Ok(page) => {
                        let snapshot = page.snapshot_ms;
                        let own = page.newer;
                        let newer = Signal::derive(move || {
                            let polled = polled
                                .get()
                                .filter(|(s, _)| *s == snapshot)
                                .map_or(0, |(_, n)| n);
                            polled.max(own)
                        });
                        let shown = params.get();
                        // The tail continues the newest events only
                        // (`TailSwitch` says so under another order).
                        let tail = (shown.tail && shown.newest_first()).then(|| {
                            view! { <LiveTail params=shown.clone() since_ms=snapshot/> }
                        });
                        view! { {tail} <ResultsTable page params=shown newer show_newer/> }.into_any()
                    }
                    Err(error) => view! { <SearchErrorView error/> }.into_any(),
                })}
            </Transition>
        </div>
    }
    .into_any();

    view! {
        <section class="search" aria-labelledby="search-title">
            <a class="skip-link" href="#results">"Skip to results"</a>
            <div class="toolbar">
                <h1 id="search-title">"Search"</h1>
                <ZoneSwitch params=params page="/search"/>
                <TailSwitch params=params/>
                <ExportLinks params=params/>
            </div>
            <QueryForm params=params tenants=tenants/>
            <div class="search-body">
                <aside class="facets" aria-label="Saved searches and facets">
                    <SavedSearches params=params/>
                    <Transition fallback=move || view! { <p class="muted">"Counting…"</p> }>
                        {move || facets.get().map(|answer| match answer {
                            Ok(facets) => view! { <FacetsPanel facets params=params.get()/> }.into_any(),
                            // The results say what is wrong; once is enough.
                            Err(_) => view! { <p class="muted">"No facets."</p> }.into_any(),
                        })}
                    </Transition>
                </aside>
                {results}
            </div>
        </section>
    }
}

/// The Search page's keys; see [`SearchPage`].
#[cfg(feature = "hydrate")]
fn keyboard_shortcut(ev: leptos::web_sys::KeyboardEvent) {
    use wasm_bindgen::JsCast;
    if ev.ctrl_key() || ev.meta_key() || ev.alt_key() {
        return;
    }
    let doc = document();
    let active = doc.active_element();
    let typing = active.as_ref().is_some_and(|el| {
        matches!(el.tag_name().as_str(), "INPUT" | "TEXTAREA" | "SELECT")
            || el.has_attribute("contenteditable")
    });
    if typing {
        return;
    }
    let focus = |selector: &str| {
        doc.query_selector(selector)
            .ok()
            .flatten()
            .and_then(|el| el.dyn_into::<leptos::web_sys::HtmlElement>().ok())
            .map(|el| el.focus().is_ok())
            .unwrap_or(false)
    };
    let key = ev.key();
    let moved = match key.as_str() {
        "/" => focus("#q"),
        "j" | "k" => {
            // Position of the focused result row among its siblings.
            let row = active.and_then(|el| el.closest("tbody tr[data-event-id]").ok().flatten());
            let index = row.map(|row| {
                let mut n = 0u32;
                let mut at = row.previous_element_sibling();
                while let Some(el) = at {
                    n = n.saturating_add(1);
                    at = el.previous_element_sibling();
                }
                n
            });
            let next = match (key.as_str(), index) {
                (_, None) => 0,
                ("j", Some(i)) => i.saturating_add(1),
                (_, Some(i)) => i.saturating_sub(1),
            };
            focus(&format!(
                "tbody tr[data-event-id]:nth-child({}) a[href^=\"/events/\"]",
                next.saturating_add(1)
            ))
        }
        _ => false,
    };
    if moved {
        ev.prevent_default();
    }
}

/// CSV and NDJSON of the search as it stands (its snapshot included), with
/// a progress line while the browser downloads. Without JavaScript the
/// links still download; only the progress line needs the page.
#[component]
fn ExportLinks(params: Memo<SearchParams>) -> impl IntoView {
    // A token names the next download; it exists only in the browser (an
    // effect), so the server-rendered links carry none.
    let token = RwSignal::new(None::<String>);
    #[cfg(feature = "hydrate")]
    Effect::new(move |_| token.set(crate::export_progress::new_token()));
    let status = RwSignal::new(None::<crate::export_progress::ExportStatus>);
    let href = move |format: &'static str, proofs: bool| {
        let p = params.get();
        let mut pairs = vec![("format", format.to_string())];
        if proofs {
            pairs.push(("proofs", "true".to_string()));
        }
        pairs.extend(p.pairs().into_iter().filter(|(k, _)| *k != "cols"));
        if let Some(token) = token.get() {
            pairs.push(("progress", token));
        }
        format!(
            "/api/v1/export{}",
            crate::search_state::query_string(&pairs)
        )
    };
    let follow = move |_| {
        #[cfg(feature = "hydrate")]
        if let Some(current) = token.get_untracked() {
            follow_export(current, status);
            // The next click is another download with its own count. The
            // link changes only after this click's download has started
            // from it: the browser reads `href` after the handlers ran.
            set_timeout(
                move || token.set(crate::export_progress::new_token()),
                std::time::Duration::ZERO,
            );
        }
    };
    view! {
        <div class="export" role="group" aria-label="Export">
            <a class="button" download="" href=move || href("csv", false) on:click=follow data-testid="export-csv">"Export CSV"</a>
            <a class="button" download="" href=move || href("ndjson", false) on:click=follow data-testid="export-ndjson">"Export NDJSON"</a>
            <a class="button" download="" href=move || href("csv", true) on:click=follow data-testid="export-csv-proofs"
                title="A ZIP of the CSV export with each row's inclusion proof, the signed digests and keys, and a signed manifest: `attest verify` checks it offline">
                "CSV with proofs"
            </a>
            <a class="button" download="" href=move || href("ndjson", true) on:click=follow data-testid="export-proofs"
                title="A ZIP of the NDJSON export with each row's inclusion proof, the signed digests and keys, and a signed manifest: `attest verify` checks it offline">
                "NDJSON with proofs"
            </a>
            {move || status.get().map(|s| {
                let failed = s.state == crate::export_progress::ExportState::Failed;
                view! {
                    <div class="export-progress" class:error=failed role="status" aria-live="polite" data-testid="export-progress">
                        <progress max=s.total.max(1).to_string() value=s.sent.min(s.total).to_string()></progress>
                        " "{s.describe()}
                    </div>
                }
            })}
        </div>
    }
}

/// Asks for the download's progress twice a second until it ends; gives up
/// if the server never heard of it (the browser may not have started it).
#[cfg(feature = "hydrate")]
fn follow_export(token: String, status: RwSignal<Option<crate::export_progress::ExportStatus>>) {
    use crate::export_progress::{export_progress, ExportState};
    let handle = StoredValue::new(None::<leptos::prelude::IntervalHandle>);
    let unseen = StoredValue::new(0u32);
    let stop = move || {
        if let Some(h) = handle.get_value() {
            h.clear();
        }
    };
    let started = set_interval_with_handle(
        move || {
            let token = token.clone();
            leptos::task::spawn_local(async move {
                match export_progress(token).await {
                    Ok(Some(s)) => {
                        let ended = s.state != ExportState::Running;
                        status.set(Some(s));
                        if ended {
                            stop();
                        }
                    }
                    Ok(None) => {
                        unseen.update_value(|n| *n += 1);
                        if unseen.get_value() > 40 {
                            stop();
                        }
                    }
                    Err(_) => stop(),
                }
            });
        },
        std::time::Duration::from_millis(500),
    );
    if let Ok(h) = started {
        handle.set_value(Some(h));
    }
}

/// What a failed search says, for every page that searches.
pub fn error_text(error: &SearchError) -> String {
    match error {
        SearchError::BadQuery(e) => format!("Query error {e}"),
        other => other.to_string(),
    }
}
