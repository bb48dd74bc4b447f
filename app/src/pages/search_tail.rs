//! The live tail above the results (`tail=1`): new events matching the
//! search, newest on top, from the server's stream (`crate::tail`). A
//! pause button holds them (counted, shown on resume); at most
//! [`SHOWN_PER_SECOND`] rows a second are added, the rest counted with a
//! link to them in Search; the stream's state is always said.

use leptos::prelude::*;

use crate::pages::search_results::{column_label, ResultRow};
use crate::pages::search_zone::shown_zone;
use crate::search_state::SearchParams;
use crate::tail::{TailFeed, KEPT_ROWS, SHOWN_PER_SECOND};

/// How the stream stands, as the status line says it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
// Only the browser's stream moves it past `Connecting`.
#[cfg_attr(not(feature = "hydrate"), allow(dead_code))]
enum Link {
    Connecting,
    Live,
    /// Dropped; the browser reconnects from the last position.
    Reconnecting,
}

/// The toolbar's switch: a link, so it works before the page is
/// interactive and the state stays in the URL.
#[component]
pub fn TailSwitch(params: Memo<SearchParams>) -> impl IntoView {
    let on = move || params.get().tail;
    let href = move || {
        let p = params.get();
        SearchParams {
            tail: !p.tail,
            cursor: None,
            ..p
        }
        .href()
    };
    // The tail adds the newest events on top, which only continues
    // results in the default order: under another one it is off and says
    // why (a header click returns to newest first).
    let sorted = move || !params.get().newest_first();
    move || {
        if sorted() {
            view! {
                <a class="button tail-switch" role="button" aria-disabled="true"
                    title="Live tail needs the newest events first: sort by Time (newest first) to use it"
                    data-testid="tail-switch">
                    "Live tail: newest first only"
                </a>
            }
            .into_any()
        } else {
            view! {
                <a class="button tail-switch" class:active=on href=href role="button"
                    aria-pressed=move || on().to_string() data-testid="tail-switch">
                    {move || if on() { "Live tail: on" } else { "Live tail: off" }}
                </a>
            }
            .into_any()
        }
    }
}

/// The stream's address for `params`, starting after `since_ms`.
fn stream_url(params: &SearchParams, since_ms: i64) -> String {
    let mut pairs: Vec<(&str, String)> = params
        .pairs()
        .into_iter()
        .filter(|(k, _)| matches!(*k, "q" | "tenant" | "range" | "from" | "to"))
        .collect();
    // The rows carry the values of the page's metadata columns.
    let metadata: Vec<_> = params
        .columns
        .iter()
        .filter(|c| c.metadata_key().is_some())
        .map(|c| c.key())
        .collect();
    if !metadata.is_empty() {
        pairs.push(("cols", metadata.join(",")));
    }
    pairs.push(("since", since_ms.to_string()));
    format!(
        "{}{}",
        crate::tail::TAIL_PATH,
        crate::search_state::query_string(&pairs)
    )
}

/// The rows the rate limit kept off the page: every event of the search
/// received since the tail started, in Search.
fn over_limit_href(params: &SearchParams, since_ms: i64) -> String {
    SearchParams {
        from: Some(since_ms.to_string()),
        to: None,
        cursor: None,
        tail: false,
        ..params.clone()
    }
    .href()
}

#[component]
pub fn LiveTail(params: SearchParams, since_ms: i64) -> impl IntoView {
    let feed = RwSignal::new(TailFeed::default());
    let link = RwSignal::new(Link::Connecting);
    let problem = RwSignal::new(None::<String>);
    follow(stream_url(&params, since_ms), feed, link, problem);

    let zone = shown_zone();
    let status = move || {
        let f = feed.read();
        match (link.get(), f.paused) {
            (Link::Connecting, _) => "Connecting to the live tail…".to_string(),
            (Link::Reconnecting, _) => {
                "Connection lost — reconnecting; the tail resumes where it stopped".to_string()
            }
            (Link::Live, true) => format!("Paused — {} new", f.held_count),
            (Link::Live, false) => format!("Live — {} shown, newest on top", f.rows.len()),
        }
    };
    let toggle = move |_| {
        feed.update(|f| {
            if f.paused {
                f.resume();
            } else {
                f.pause();
            }
        })
    };
    let over_href = over_limit_href(&params, since_ms);
    let over = move || {
        let n = feed.read().over_limit;
        let href = over_href.clone();
        (n > 0).then(|| {
            view! {
                <p class="notice" data-testid="tail-over-limit">
                    {format!("{n} more matched while over {SHOWN_PER_SECOND} rows a second — ")}
                    <a href=href>"see them in Search"</a>
                </p>
            }
        })
    };
    let columns = params.columns.clone();
    let context = SearchParams {
        tail: false,
        ..params.clone()
    };
    let rows = move || {
        feed.read()
            .rows
            .iter()
            .map(|hit| {
                view! { <ResultRow hit=hit.clone() columns=columns.clone() context=context.clone() zone/> }
            })
            .collect_view()
    };
    let head = params
        .columns
        .iter()
        .map(|c| {
            let c = c.clone();
            let label = move || column_label(&c, &zone.get().name);
            view! { <th scope="col">{label}</th> }
        })
        .collect_view();
    view! {
        <section class="live-tail" aria-label="Live tail" data-testid="live-tail">
            <div class="tail-head">
                <p class="tail-status" class:reconnecting=move || link.get() == Link::Reconnecting
                    role="status" aria-live="polite" data-testid="tail-status">{status}</p>
                <button type="button" on:click=toggle data-testid="tail-pause"
                    aria-pressed=move || feed.read().paused.to_string()>
                    {move || {
                        let f = feed.read();
                        if f.paused { format!("{} new — resume", f.held_count) } else { "Pause".to_string() }
                    }}
                </button>
            </div>
            {move || problem.get().map(|p| view! { <p class="error" role="alert">{p}</p> })}
            {over}
            <div class="table-scroll">
                <table class="events-table" data-testid="tail-results">
                    <caption class="muted">{format!("The newest {KEPT_ROWS} are kept.")}</caption>
                    <thead><tr>{head}</tr></thead>
                    <tbody>{rows}</tbody>
                </table>
            </div>
        </section>
    }
}

/// Opens the stream and feeds its messages in; closes it with the view.
#[cfg(feature = "hydrate")]
fn follow(
    url: String,
    feed: RwSignal<TailFeed>,
    link: RwSignal<Link>,
    problem: RwSignal<Option<String>>,
) {
    use wasm_bindgen::prelude::Closure;
    use wasm_bindgen::JsCast;

    let source = StoredValue::new_local(None::<web_sys::EventSource>);
    Effect::new(move |_| {
        if source.with_value(Option::is_some) {
            return;
        }
        let Ok(stream) = web_sys::EventSource::new(&url) else {
            problem.set(Some("This browser cannot open the live tail.".into()));
            return;
        };
        let on_hits = Closure::<dyn FnMut(web_sys::MessageEvent)>::new(
            move |event: web_sys::MessageEvent| {
                let parsed = event
                    .data()
                    .as_string()
                    .and_then(|text| serde_json::from_str::<crate::tail::TailMessage>(&text).ok());
                if let Some(message) = parsed {
                    link.set(Link::Live);
                    problem.set(None);
                    let now = js_sys::Date::now() as i64;
                    feed.update(|f| f.receive(message.hits, now));
                }
            },
        );
        let on_problem = Closure::<dyn FnMut(web_sys::MessageEvent)>::new(
            move |event: web_sys::MessageEvent| {
                problem.set(event.data().as_string());
            },
        );
        let on_open = Closure::<dyn FnMut(web_sys::Event)>::new(move |_: web_sys::Event| {
            link.set(Link::Live);
        });
        let on_error = {
            let stream = stream.clone();
            Closure::<dyn FnMut(web_sys::Event)>::new(move |_: web_sys::Event| {
                // EventSource reconnects by itself with the last id it
                // saw; only a refused reconnect (a 4xx or 5xx) closes it.
                if stream.ready_state() == web_sys::EventSource::CLOSED {
                    problem.set(Some(
                        "The live tail stopped (the server refused it); reload the page to try again."
                            .into(),
                    ));
                }
                link.set(Link::Reconnecting);
            })
        };
        let _ = stream.add_event_listener_with_callback("hits", on_hits.as_ref().unchecked_ref());
        let _ =
            stream.add_event_listener_with_callback("problem", on_problem.as_ref().unchecked_ref());
        stream.set_onopen(Some(on_open.as_ref().unchecked_ref()));
        stream.set_onerror(Some(on_error.as_ref().unchecked_ref()));
        // They live as long as the stream, which closes with the view.
        on_hits.forget();
        on_problem.forget();
        on_open.forget();
        on_error.forget();
        source.set_value(Some(stream));
    });
    on_cleanup(move || {
        source.try_with_value(|s| {
            if let Some(stream) = s {
                stream.close();
            }
        });
    });
}

#[cfg(not(feature = "hydrate"))]
fn follow(
    _url: String,
    _feed: RwSignal<TailFeed>,
    _link: RwSignal<Link>,
    _problem: RwSignal<Option<String>>,
) {
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_stream_asks_what_the_search_asks() {
        let params = SearchParams {
            q: "outcome:failure".into(),
            tenant: Some("acme".into()),
            cursor: Some("c".into()),
            tail: true,
            ..SearchParams::default()
        };
        assert_eq!(
            stream_url(&params, 5),
            "/api/search/tail?q=outcome%3Afailure&tenant=acme&since=5"
        );
        let with_ticket = SearchParams {
            columns: vec![
                crate::search_state::Column::Time,
                crate::search_state::Column::Metadata("ticket".into()),
            ],
            ..params.clone()
        };
        assert_eq!(
            stream_url(&with_ticket, 5),
            "/api/search/tail?q=outcome%3Afailure&tenant=acme&cols=metadata.ticket&since=5"
        );
        let over = over_limit_href(&params, 5);
        assert!(
            over.contains("from=5") && !over.contains("tail=1"),
            "{over}"
        );
    }
}
