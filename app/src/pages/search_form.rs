//! The Search page's form: the query bar, checked as it is typed, the
//! examples, the tenant and the time window.

use leptos::prelude::*;
use leptos_router::hooks::use_navigate;

use crate::autocomplete::{
    accept, candidates, rank, word_at, Candidate, Known, Word, WordKind, SHOWN,
};
use crate::model::TimeRange;
use crate::query::{parse, ParseError, EXAMPLES, FIELDS};
use crate::search_state::SearchParams;

/// Values the query bar suggests: the Search page provides its facets
/// (the top values of the current search, and its most common metadata
/// keys) and the metadata facets opened on it, with their values; pages
/// without them get field names, the recent metadata keys and the fixed
/// value lists only.
#[derive(Clone, Copy)]
pub struct SuggestionValues {
    pub facets: Signal<Option<crate::search_model::Facets>>,
    /// Filled as the facet panel opens metadata keys; emptied for each new
    /// search.
    pub metadata: RwSignal<Vec<crate::search_model::MetadataValues>>,
}

/// The metadata keys seen recently in the tenants the viewer may see (or
/// in `tenant`, one of them), for the query bar's suggestions.
#[server(endpoint = "search/metadata_keys")]
pub async fn recent_metadata_keys(
    tenant: Option<String>,
) -> Result<Vec<crate::search_model::MetadataKey>, crate::search_model::SearchError> {
    crate::pages::search::with_store(|store, now_ms| async move {
        let tenant = tenant.as_deref().map(str::trim).filter(|t| !t.is_empty());
        Ok(store.0.recent_metadata_keys(tenant, now_ms).await?)
    })
    .await
}

/// The recent metadata keys of the tenant a page shows (or all the
/// viewer's), asked for when first wanted, not on page load (on a cold
/// cache the answer is a week-long scan, and it would take one of the
/// viewer's turns at ClickHouse from the query they run next), and again
/// when the tenant changes. The query bar and the Count-by picker each
/// keep one.
#[derive(Clone, Copy)]
pub(crate) struct RecentKeys {
    params: Memo<SearchParams>,
    answer: RwSignal<Option<(Option<String>, Vec<crate::search_model::MetadataKey>)>>,
    asked: StoredValue<Option<Option<String>>>,
}

impl RecentKeys {
    pub(crate) fn new(params: Memo<SearchParams>) -> RecentKeys {
        RecentKeys {
            params,
            answer: RwSignal::new(None),
            asked: StoredValue::new(None),
        }
    }

    /// Asks for the shown tenant's keys unless already asked.
    pub(crate) fn want(self) {
        let tenant = self.params.with_untracked(|p| p.tenant.clone());
        if self.asked.get_value().as_ref() == Some(&tenant) {
            return;
        }
        self.asked.set_value(Some(tenant.clone()));
        let RecentKeys { params, answer, .. } = self;
        leptos::task::spawn_local(async move {
            // Only for the tenant still shown (a later one's answer may
            // have come first), and not after the page has gone.
            if let Ok(keys) = recent_metadata_keys(tenant.clone()).await {
                if params.try_with_untracked(|p| p.tenant == tenant) == Some(true) {
                    answer.try_set(Some((tenant, keys)));
                }
            }
        });
    }

    /// The shown tenant's keys (empty until they come), tracked.
    pub(crate) fn keys(self) -> Vec<crate::search_model::MetadataKey> {
        let tenant = self.params.with(|p| p.tenant.clone());
        self.answer.with(|answer| Self::of(answer, &tenant))
    }

    /// The same, untracked (for event handlers).
    pub(crate) fn keys_untracked(self) -> Vec<crate::search_model::MetadataKey> {
        let tenant = self.params.with_untracked(|p| p.tenant.clone());
        self.answer
            .with_untracked(|answer| Self::of(answer, &tenant))
    }

    fn of(
        answer: &Option<(Option<String>, Vec<crate::search_model::MetadataKey>)>,
        tenant: &Option<String>,
    ) -> Vec<crate::search_model::MetadataKey> {
        match answer {
            Some((asked, keys)) if asked == tenant => keys.clone(),
            _ => Vec::new(),
        }
    }
}

/// The byte offset of a caret given in UTF-16 units, as the DOM counts.
fn byte_offset(text: &str, utf16: usize) -> usize {
    let mut units = 0;
    for (i, c) in text.char_indices() {
        if units >= utf16 {
            return i;
        }
        units += c.len_utf16();
    }
    text.len()
}

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
    // What a submit asks for; within "events around this one" another
    // query leaves the pivot for the window before it.
    let typed = Memo::new(move |_| params.get().submitted(&draft.get(), &from.get(), &to.get()));
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
            go(params.get_untracked().with_tenant(Some(value)))
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

    // Autocomplete: the word at the caret, its ranked candidates, and the
    // one the arrows point at (ARIA combobox with a listbox).
    let values = use_context::<SuggestionValues>();
    // The recent metadata keys, asked for once the query bar is used.
    let recent = RecentKeys::new(params);
    let want_recent = move || recent.want();
    let input = NodeRef::<leptos::html::Input>::new();
    let word = RwSignal::new(None::<Word>);
    let suggestions = RwSignal::new(Vec::<Candidate>::new());
    let active = RwSignal::new(None::<usize>);
    let expanded = move || !suggestions.read().is_empty();
    let suggest = move |text: &str, caret: usize| {
        let found = word_at(text, caret);
        let list = found.as_ref().map_or_else(Vec::new, |w| {
            let typed = match &w.kind {
                WordKind::Field { typed } | WordKind::Value { typed, .. } => typed.clone(),
            };
            let facets = values.and_then(|v| v.facets.get_untracked());
            let opened = values
                .map(|v| v.metadata.get_untracked())
                .unwrap_or_default();
            let recent_keys = recent.keys_untracked();
            let known = Known {
                facets: facets.as_ref(),
                recent_keys: &recent_keys,
                metadata: &opened,
            };
            rank(&typed, &candidates(w, known), SHOWN)
        });
        word.set(found);
        suggestions.set(list);
        active.set(None);
    };
    let caret = move |text: &str| {
        input
            .get_untracked()
            .and_then(|el| el.selection_start().ok().flatten())
            .map_or(text.len(), |units| byte_offset(text, units as usize))
    };
    let close = move || {
        suggestions.set(Vec::new());
        active.set(None);
    };
    let choose = move |index: usize| {
        let (Some(w), Some(choice)) = (
            word.get_untracked(),
            suggestions.with_untracked(|s| s.get(index).cloned()),
        ) else {
            return;
        };
        let (text, at) = accept(&draft.get_untracked(), &w, &choice.text);
        draft.set(text.clone());
        if let Some(el) = input.get_untracked() {
            el.set_value(&text);
            let units = text[..at].encode_utf16().count() as u32;
            let _ = el.set_selection_range(units, units);
        }
        // A field is followed by its values at once.
        suggest(&text, at);
    };
    let on_key = move |ev: leptos::ev::KeyboardEvent| {
        let count = suggestions.with_untracked(Vec::len);
        if count == 0 {
            return;
        }
        let current = active.get_untracked();
        match ev.key().as_str() {
            "ArrowDown" => {
                ev.prevent_default();
                active.set(Some(current.map_or(0, |i| (i + 1) % count)));
            }
            "ArrowUp" => {
                ev.prevent_default();
                active.set(Some(current.map_or(count - 1, |i| (i + count - 1) % count)));
            }
            "Enter" if current.is_some() => {
                ev.prevent_default();
                choose(current.unwrap_or(0));
            }
            "Tab" if !ev.shift_key() => {
                ev.prevent_default();
                choose(current.unwrap_or(0));
            }
            "Escape" => {
                ev.prevent_default();
                close();
            }
            _ => {}
        }
    };

    view! {
        <form class="query-form" method="get" action=page role="search" on:submit=on_submit>
            <div class="query-line">
                <label for="q" class="visually-hidden">"Query"</label>
                <div class="query-combo">
                <input
                    id="q"
                    name="q"
                    type="search"
                    class="query-input"
                    autocomplete="off"
                    spellcheck="false"
                    placeholder="outcome:failure category:authentication actor.ip:10.0.*"
                    role="combobox"
                    aria-autocomplete="list"
                    aria-controls="q-suggestions"
                    aria-expanded=move || expanded().to_string()
                    aria-activedescendant=move || active.get().map(|i| format!("q-option-{i}"))
                    aria-describedby="q-status"
                    aria-invalid=move || draft_error.get().is_some().to_string()
                    node_ref=input
                    prop:value=move || draft.get()
                    on:focus=move |_| want_recent()
                    on:input=move |ev| {
                        want_recent();
                        let text = event_target_value(&ev);
                        draft.set(text.clone());
                        suggest(&text, caret(&text));
                    }
                    on:keydown=on_key
                    on:blur=move |_| close()
                />
                <ul id="q-suggestions" class="suggestions" role="listbox" aria-label="Suggestions"
                    hidden=move || !expanded() data-testid="q-suggestions">
                    {move || suggestions.get().into_iter().enumerate().map(|(i, c)| {
                        let selected = move || active.get() == Some(i);
                        view! {
                            <li id=format!("q-option-{i}") role="option" class:active=selected
                                aria-selected=move || selected().to_string()
                                // Before the input's blur, which would close the list.
                                on:mousedown=move |ev| { ev.prevent_default(); choose(i); }>
                                <span>{c.text.clone()}</span>
                                {(c.count > 0).then(|| view! { <span class="muted count">{c.count}</span> })}
                            </li>
                        }
                    }).collect_view()}
                </ul>
                </div>
                <button type="submit" class="primary">{submit_label.unwrap_or("Search")}</button>
            </div>
            <div id="q-status" class="query-status" aria-live="polite">
                {move || draft_error.get().map(|error| view! { <QueryErrorMarker text=draft.get() error/> })}
            </div>
            <details class="examples">
                <summary>"Examples and fields"</summary>
                <ul class="example-list">
                    {EXAMPLES.iter().map(|(example, about)| {
                        // An example is another query: it leaves a pivot.
                        let href = move || href_of(&params.get().leave_pivot().with_q(*example));
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
