//! The dead-letter inbox (`/dead-letters`, admins only): every record the
//! writer could not store and no admin has acted on yet, with its reason,
//! where it came from, a masked preview and whether it decodes now.
//! Admins redrive one, the selected, or all that now decode, or discard
//! the selected with a written reason. Anyone but an admin gets a 403 page
//! and no letters: the server refuses the data below the page.

use std::collections::BTreeSet;

use leptos::prelude::*;
use leptos_router::hooks::use_query_map;

use crate::dead_letters_model::{
    join_ids, ActionReport, InboxCounts, InboxPage, LetterId, LetterView, Preview,
    MAX_DISCARD_REASON,
};
use crate::search_model::SearchError;
use crate::timefmt::utc_millis;

/// Runs `f` on this request's inbox, refusing anyone but an admin before
/// it reads an argument, and sets the HTTP status of an error.
#[cfg(feature = "ssr")]
async fn with_inbox<T, F, Fut>(f: F) -> Result<T, SearchError>
where
    F: FnOnce(std::sync::Arc<dyn crate::dead_letters_model::DeadLetterSource>) -> Fut,
    Fut: std::future::Future<Output = Result<T, SearchError>>,
{
    use crate::dead_letters_model::SharedDeadLetters;
    let result = match use_context::<SharedDeadLetters>() {
        Some(source) => match source.0.admitted() {
            Ok(()) => f(source.0).await,
            Err(refused) => Err(refused),
        },
        // Only the console's own router provides it; without it, nothing.
        None => Err(SearchError::Forbidden("this page is for admins".into())),
    };
    if let Err(error) = &result {
        crate::pages::search::set_api_status(error.status());
    }
    result
}

/// A value for a link's query string: letters, digits and `-_.` as they
/// are, everything else percent-encoded.
fn query_value(value: &str) -> String {
    value
        .bytes()
        .map(|b| match b {
            b'a'..=b'z' | b'A'..=b'Z' | b'0'..=b'9' | b'-' | b'_' | b'.' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// One page of waiting dead letters with the counts; 403 for anyone but
/// an admin.
#[server(endpoint = "dead_letters/page")]
pub async fn read_dead_letters(
    page: Option<u32>,
    reason: Option<String>,
) -> Result<InboxPage, SearchError> {
    use crate::dead_letters_model::{InboxQuery, DEFAULT_PER_PAGE};
    with_inbox(|inbox| async move {
        inbox
            .page(InboxQuery {
                page: page.unwrap_or(1),
                per_page: DEFAULT_PER_PAGE,
                reason: reason.filter(|r| !r.is_empty()),
            })
            .await
    })
    .await
}

/// Redrives the letters named in `ids` (`partition/offset`, comma
/// separated), or with `all` set every waiting letter that decodes now
/// (of `reason` only, if given).
#[server(endpoint = "dead_letters/redrive")]
pub async fn redrive_dead_letters(
    ids: Option<String>,
    all: Option<String>,
    reason: Option<String>,
) -> Result<ActionReport, SearchError> {
    use crate::dead_letters_model::{parse_ids, Selection};
    with_inbox(|inbox| async move {
        let which = if all.is_some_and(|a| a == "true") {
            Selection::AllReady {
                reason: reason.filter(|r| !r.is_empty()),
            }
        } else {
            Selection::Letters(
                parse_ids(ids.as_deref().unwrap_or("")).map_err(SearchError::BadRequest)?,
            )
        };
        inbox.redrive(which).await
    })
    .await
}

/// Discards the letters named in `ids` with the written `reason`.
#[server(endpoint = "dead_letters/discard")]
pub async fn discard_dead_letters(
    ids: String,
    reason: String,
) -> Result<ActionReport, SearchError> {
    use crate::dead_letters_model::parse_ids;
    with_inbox(|inbox| async move {
        let ids = parse_ids(&ids).map_err(SearchError::BadRequest)?;
        inbox.discard(ids, reason).await
    })
    .await
}

#[component]
pub fn DeadLettersPage() -> impl IntoView {
    // The status goes out before anything streams: decided here, by the
    // same gate that refuses the data.
    #[cfg(feature = "ssr")]
    {
        let allowed = use_context::<crate::dead_letters_model::SharedDeadLetters>()
            .is_some_and(|s| s.0.admitted().is_ok());
        if !allowed {
            if let Some(response) = use_context::<leptos_axum::ResponseOptions>() {
                response.set_status(http::StatusCode::FORBIDDEN);
            }
        }
    }
    let query = use_query_map();
    let asked = Memo::new(move |_| {
        let q = query.read();
        (
            q.get("page").and_then(|p| p.parse::<u32>().ok()),
            q.get("reason").filter(|r| !r.is_empty()),
        )
    });
    let redrive = ServerAction::<RedriveDeadLetters>::new();
    let discard = ServerAction::<DiscardDeadLetters>::new();
    let inbox = Resource::new(
        move || {
            (
                asked.get(),
                redrive.version().get(),
                discard.version().get(),
            )
        },
        |((page, reason), _, _)| read_dead_letters(page, reason),
    );
    let selected = RwSignal::new(BTreeSet::<LetterId>::new());
    // After an action or on another page the list changes: a selection of
    // letters no longer shown would act on letters the admin cannot see.
    Effect::new(move |_| {
        asked.track();
        redrive.version().track();
        discard.version().track();
        selected.set(BTreeSet::new());
    });

    view! {
        <section class="dead-letters">
            <Transition fallback=|| view! { <p class="muted">"Reading the dead-letter topic…"</p> }>
                {move || {
                    inbox
                        .get()
                        .map(|answer| match answer {
                            Ok(page) => view! { <Inbox page selected redrive discard/> }.into_any(),
                            Err(SearchError::Forbidden(message)) => {
                                view! { <Forbidden message/> }.into_any()
                            }
                            Err(error) => {
                                view! {
                                    <section class="panel error" role="alert">
                                        <h1>"Dead letters"</h1>
                                        <p>{error.to_string()}</p>
                                    </section>
                                }
                                    .into_any()
                            }
                        })
                }}
            </Transition>
        </section>
    }
}

#[component]
fn Forbidden(message: String) -> impl IntoView {
    view! {
        <section class="panel forbidden" data-testid="forbidden">
            <h1>"403: for admins only"</h1>
            <p>{message}</p>
            <p><a href="/search">"Search events"</a></p>
        </section>
    }
}

#[component]
fn Inbox(
    page: InboxPage,
    selected: RwSignal<BTreeSet<LetterId>>,
    redrive: ServerAction<RedriveDeadLetters>,
    discard: ServerAction<DiscardDeadLetters>,
) -> impl IntoView {
    let InboxPage {
        topic,
        read_at_ms,
        counts,
        letters,
        page,
        pages,
        per_page: _,
        reason,
    } = page;
    let ready = counts.ready;
    let filter = reason.clone().unwrap_or_default();
    let chosen = move || join_ids(&selected.get().into_iter().collect::<Vec<_>>());
    let none_selected = move || selected.with(BTreeSet::is_empty);
    let outcome = move |value: Option<Result<ActionReport, SearchError>>| {
        value.map(|answer| match answer {
            Ok(report) => view! {
                <p class="action-result" role="status" data-testid="action-result">{report.summary()}</p>
            }
            .into_any(),
            Err(error) => view! {
                <p class="query-error" role="alert" data-testid="action-error">{error.to_string()}</p>
            }
            .into_any(),
        })
    };
    view! {
        <div class="toolbar">
            <h1>"Dead letters"</h1>
            <p class="muted" data-testid="inbox-read-at">
                "Topic "<code>{topic}</code>" as of "{utc_millis(read_at_ms)}" · "
                <a href="/pipeline">"Pipeline"</a>
            </p>
        </div>
        <Counts counts reason=reason.clone()/>
        <div class="dlq-actions panel">
            <ActionForm action=redrive attr:class="inline">
                <input type="hidden" name="ids" prop:value=chosen/>
                <button type="submit" data-testid="redrive-selected" disabled=none_selected>
                    "Redrive selected"
                </button>
            </ActionForm>
            <ActionForm action=redrive attr:class="inline">
                <input type="hidden" name="all" value="true"/>
                <input type="hidden" name="reason" value=filter.clone()/>
                <button type="submit" data-testid="redrive-ready" disabled={ready == 0}>
                    {format!("Redrive all that now decode ({ready})")}
                </button>
            </ActionForm>
            <ActionForm action=discard attr:class="discard-form">
                <input type="hidden" name="ids" prop:value=chosen/>
                <label for="discard-reason">"Reason for discarding the selected"</label>
                <textarea
                    id="discard-reason"
                    name="reason"
                    required
                    maxlength=MAX_DISCARD_REASON.to_string()
                    rows="2"
                    placeholder="Why these letters are not to be stored (ticket, cause)"
                ></textarea>
                <button type="submit" class="danger" data-testid="discard-selected" disabled=none_selected>
                    "Discard selected"
                </button>
            </ActionForm>
            {move || outcome(redrive.value().get())}
            {move || outcome(discard.value().get())}
        </div>
        {if letters.is_empty() {
            view! { <p class="muted" data-testid="inbox-empty">"No dead letter is waiting."</p> }.into_any()
        } else {
            view! {
                <table class="compact dead-letter-list">
                    <thead>
                        <tr>
                            <th><span class="visually-hidden">"Select"</span></th>
                            <th>"Letter"</th>
                            <th>"Reason"</th>
                            <th>"From"</th>
                            <th>"Dead-lettered"</th>
                            <th>"Event (metadata values masked)"</th>
                            <th>"Now"</th>
                            <th></th>
                        </tr>
                    </thead>
                    <tbody>
                        {letters
                            .into_iter()
                            .map(|letter| view! { <LetterRow letter selected redrive/> })
                            .collect_view()}
                    </tbody>
                </table>
            }
                .into_any()
        }}
        <Pager page pages reason/>
    }
}

#[component]
fn Counts(counts: InboxCounts, reason: Option<String>) -> impl IntoView {
    let InboxCounts {
        waiting,
        ready,
        by_reason,
        redriven,
        discarded,
        matching,
    } = counts;
    let link = |r: Option<&str>| match r {
        Some(r) => format!("/dead-letters?reason={}", query_value(r)),
        None => "/dead-letters".to_owned(),
    };
    view! {
        <dl class="figures dlq-counts" data-testid="inbox-counts" data-waiting=waiting.to_string() data-ready=ready.to_string()>
            <dt>"Waiting"</dt>
            <dd data-testid="waiting">{waiting}</dd>
            <dt>"Decode now"</dt>
            <dd data-testid="ready">{ready}</dd>
            <dt>"Redriven"</dt>
            <dd>{redriven}</dd>
            <dt>"Discarded"</dt>
            <dd>{discarded}</dd>
        </dl>
        <p class="dlq-reasons">
            "By reason: "
            <a href=link(None) class:current=reason.is_none()>{format!("all ({waiting})")}</a>
            {by_reason
                .into_iter()
                .map(|(r, n)| {
                    let current = reason.as_deref() == Some(r.as_str());
                    view! {
                        " · "
                        <a href=link(Some(&r)) class:current=current>{format!("{r} ({n})")}</a>
                    }
                })
                .collect_view()}
            {reason.as_ref().map(|_| format!(" · {matching} shown by this filter"))}
        </p>
    }
}

#[component]
fn LetterRow(
    letter: LetterView,
    selected: RwSignal<BTreeSet<LetterId>>,
    redrive: ServerAction<RedriveDeadLetters>,
) -> impl IntoView {
    let LetterView {
        id,
        reason,
        detail,
        source_topic,
        source_partition,
        source_offset,
        dead_lettered_at_ms,
        size_bytes: _,
        ready,
        recheck,
        preview,
        raw,
    } = letter;
    let key = id.to_string();
    let (row_key, form_key) = (key.clone(), key.clone());
    let row_reason = reason.clone();
    let box_id = format!("select-{}-{}", id.partition, id.offset);
    let label = format!("Select dead letter {id}");
    view! {
        <tr data-testid="dead-letter" data-letter=row_key data-reason=row_reason data-ready=ready.to_string()>
            <td>
                <input
                    type="checkbox"
                    id=box_id
                    aria-label=label
                    prop:checked=move || selected.with(|s| s.contains(&id))
                    on:change=move |ev| {
                        let on = event_target_checked(&ev);
                        selected.update(|s| {
                            if on {
                                s.insert(id);
                            } else {
                                s.remove(&id);
                            }
                        });
                    }
                />
            </td>
            <td><code>{key}</code></td>
            <td>
                <strong>{reason}</strong>
                <div class="muted detail">{detail}</div>
            </td>
            <td><code>{format!("{source_topic}/{source_partition}/{source_offset}")}</code></td>
            <td>{utc_millis(dead_lettered_at_ms)}</td>
            <td>
                {match preview {
                    Some(p) => view! { <PreviewCell preview=p/> }.into_any(),
                    None => view! { <span class="muted" data-testid="raw">{raw}</span> }.into_any(),
                }}
            </td>
            <td class=if ready { "state ok" } else { "state bad" } data-testid="recheck">{recheck}</td>
            <td>
                <ActionForm action=redrive attr:class="inline">
                    <input type="hidden" name="ids" value=form_key/>
                    <button type="submit" disabled={!ready} data-testid="redrive-one">"Redrive"</button>
                </ActionForm>
            </td>
        </tr>
    }
}

#[component]
fn PreviewCell(preview: Preview) -> impl IntoView {
    let Preview {
        event_id,
        tenant_id,
        occurred_at_ms,
        category,
        action,
        outcome,
        actor,
        resource,
        source_service,
        metadata,
    } = preview;
    view! {
        <dl class="preview" data-testid="preview">
            <dt>"event_id"</dt><dd><code>{event_id}</code></dd>
            <dt>"tenant"</dt><dd>{tenant_id}</dd>
            <dt>"occurred"</dt><dd>{utc_millis(occurred_at_ms)}</dd>
            <dt>"what"</dt><dd>{format!("{category} · {action} · {outcome}")}</dd>
            <dt>"actor"</dt><dd>{actor}</dd>
            <dt>"resource"</dt><dd>{resource}</dd>
            <dt>"service"</dt><dd>{source_service}</dd>
            {metadata
                .into_iter()
                .map(|(k, v)| view! {
                    <dt>{format!("metadata.{k}")}</dt>
                    <dd class="masked" data-testid="masked">{v}</dd>
                })
                .collect_view()}
        </dl>
    }
}

#[component]
fn Pager(page: u32, pages: u32, reason: Option<String>) -> impl IntoView {
    let href = move |p: u32| {
        let mut link = format!("/dead-letters?page={p}");
        if let Some(r) = &reason {
            link.push_str(&format!("&reason={}", query_value(r)));
        }
        link
    };
    (pages > 1).then(|| {
        view! {
            <nav class="pager" aria-label="Pages" data-testid="pager">
                {(page > 1).then(|| view! { <a href=href(page - 1)>"← Previous"</a> })}
                <span>{format!(" page {page} of {pages} ")}</span>
                {(page < pages).then(|| view! { <a href=href(page + 1)>"Next →"</a> })}
            </nav>
        }
    })
}

#[cfg(test)]
mod tests {
    use super::query_value;

    #[test]
    fn reason_links_are_encoded() {
        assert_eq!(query_value("unknown_schema_id"), "unknown_schema_id");
        assert_eq!(query_value("a b&c=d"), "a%20b%26c%3Dd");
    }
}
