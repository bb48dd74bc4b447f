//! The Search page's form: the query bar, checked as it is typed, the
//! examples, the tenant and the time window.

use leptos::prelude::*;
use leptos_router::hooks::use_navigate;

use crate::model::TimeRange;
use crate::query::{parse, ParseError, EXAMPLES, FIELDS};
use crate::search_state::SearchParams;

/// The query bar, the time window and the tenant. Without JavaScript it is
/// a plain GET form; with it, the URL is kept clean and selectors apply at
/// once. `page` is where it leads (Search by default; the Dashboard keeps
/// the same URL state under its own path).
#[component]
pub fn QueryForm(
    params: Memo<SearchParams>,
    tenants: Resource<Result<Vec<String>, crate::search_model::SearchError>>,
    #[prop(optional)] page: Option<&'static str>,
    #[prop(optional)] submit_label: Option<&'static str>,
) -> impl IntoView {
    let page = page.unwrap_or("/search");
    let href_of = move |p: &SearchParams| format!("{page}{}", p.query_string());
    let draft = RwSignal::new(params.get_untracked().q);
    let from = RwSignal::new(params.get_untracked().from.unwrap_or_default());
    let to = RwSignal::new(params.get_untracked().to.unwrap_or_default());
    // Back, forward and links change the URL: the inputs follow.
    Effect::new(move |_| {
        let p = params.get();
        draft.set(p.q);
        from.set(p.from.unwrap_or_default());
        to.set(p.to.unwrap_or_default());
    });
    let all_label = move || crate::session::no_tenant_label(crate::session::viewer().as_ref());
    let draft_error = Memo::new(move |_| parse(&draft.get()).err());
    let typed = Memo::new(move |_| {
        let text = |s: String| Some(s.trim().to_string()).filter(|s| !s.is_empty());
        SearchParams {
            q: draft.get().trim().to_string(),
            from: text(from.get()),
            to: text(to.get()),
            cursor: None,
            ..params.get()
        }
    });
    let window_error = Memo::new(move |_| typed.get().window().err());

    let navigate = use_navigate();
    let go = move |p: SearchParams| navigate(&href_of(&p), Default::default());
    let on_submit = {
        let go = go.clone();
        move |ev: leptos::ev::SubmitEvent| {
            ev.prevent_default();
            if draft_error.get_untracked().is_none() && window_error.get_untracked().is_none() {
                go(typed.get_untracked());
            }
        }
    };
    let on_tenant = {
        let go = go.clone();
        move |ev| {
            let value = event_target_value(&ev);
            go(SearchParams {
                tenant: Some(value).filter(|t| !t.is_empty()),
                cursor: None,
                ..params.get_untracked()
            })
        }
    };
    let on_range = move |ev| {
        let value = event_target_value(&ev);
        if !value.is_empty() {
            go(params
                .get_untracked()
                .with_range(TimeRange::from_param(&value)));
        }
    };
    let custom = move || params.get().from.is_some();

    view! {
        <form class="query-form" method="get" action=page role="search" on:submit=on_submit>
            <div class="query-line">
                <label for="q" class="visually-hidden">"Query"</label>
                <input
                    id="q"
                    name="q"
                    type="search"
                    class="query-input"
                    autocomplete="off"
                    spellcheck="false"
                    placeholder="outcome:failure category:authentication actor.ip:10.0.*"
                    aria-describedby="q-status"
                    aria-invalid=move || draft_error.get().is_some().to_string()
                    prop:value=move || draft.get()
                    on:input=move |ev| draft.set(event_target_value(&ev))
                />
                <button type="submit" class="primary">{submit_label.unwrap_or("Search")}</button>
            </div>
            <div id="q-status" class="query-status" aria-live="polite">
                {move || draft_error.get().map(|error| view! { <QueryErrorMarker text=draft.get() error/> })}
            </div>
            <details class="examples">
                <summary>"Examples and fields"</summary>
                <ul class="example-list">
                    {EXAMPLES.iter().map(|(example, about)| {
                        let href = move || href_of(&params.get().with_q(*example));
                        view! { <li><a href=href><code>{*example}</code></a>" "<span class="muted">{*about}</span></li> }
                    }).collect_view()}
                </ul>
                <dl class="field-list">
                    {FIELDS.iter().map(|(name, about)| view! { <dt><code>{*name}</code></dt><dd>{*about}</dd> }).collect_view()}
                </dl>
            </details>
            <div class="filters">
                <label>
                    "Tenant"
                    <Transition fallback=move || view! { <select name="tenant" id="search-tenant" disabled=true><option>"Loading…"</option></select> }>
                        <select name="tenant" id="search-tenant" on:change=on_tenant.clone()>
                            <option value="" selected=move || params.get().tenant.is_none()>{move || all_label()}</option>
                            {move || {
                                let current = params.get().tenant;
                                let mut names = tenants.get().and_then(Result::ok).unwrap_or_default();
                                if let Some(t) = &current {
                                    if !names.contains(t) {
                                        names.push(t.clone());
                                    }
                                }
                                names.into_iter().map(|name| {
                                    let selected = current.as_deref() == Some(name.as_str());
                                    view! { <option value=name.clone() selected=selected>{name.clone()}</option> }
                                }).collect_view()
                            }}
                        </select>
                    </Transition>
                </label>
                <label>
                    "Time range"
                    <select name="range" id="search-range" on:change=on_range>
                        <option value="" selected=custom disabled=true>"Custom (from/to)"</option>
                        {TimeRange::ALL.into_iter().map(|r| view! {
                            <option value=r.param() selected=move || !custom() && params.get().range == r>{r.label()}</option>
                        }).collect_view()}
                    </select>
                </label>
                <label>
                    "From (UTC)"
                    <input name="from" id="search-from" type="text" inputmode="numeric" placeholder="2026-03-01T12:30 or now-7d/d"
                        prop:value=move || from.get() on:input=move |ev| from.set(event_target_value(&ev))/>
                </label>
                <label>
                    "To (UTC)"
                    <input name="to" id="search-to" type="text" inputmode="numeric" placeholder="empty: now; or now-1h"
                        prop:value=move || to.get() on:input=move |ev| to.set(event_target_value(&ev))/>
                </label>
                <input type="hidden" name="cols" prop:value=move || {
                    params.get().pairs().into_iter().find(|(k, _)| *k == "cols").map(|(_, v)| v).unwrap_or_default()
                }/>
                // The zone is kept when the form is sent before hydration.
                <input type="hidden" name="tz" prop:value=move || params.get().tz.unwrap_or_default()/>
                <button type="submit">"Apply"</button>
            </div>
            {move || window_error.get().map(|e| view! { <p class="query-error" role="alert">{e}</p> })}
        </form>
    }
}

/// The error, and the query with the offending character marked.
#[component]
fn QueryErrorMarker(text: String, error: ParseError) -> impl IntoView {
    let chars: Vec<char> = text.chars().collect();
    let at = error.position.min(chars.len());
    let before: String = chars[..at].iter().collect();
    let marked: String = chars.get(at).map_or(" ".to_string(), char::to_string);
    let after: String = chars
        .get(at + 1..)
        .map(|c| c.iter().collect())
        .unwrap_or_default();
    view! {
        <div class="query-error" data-testid="query-error" data-position=error.position>
            <p>{format!("Query error {error}")}</p>
            <pre class="query-marker" aria-hidden="true">{before}<mark>{marked}</mark>{after}</pre>
        </div>
    }
}
