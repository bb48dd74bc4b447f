//! Saved searches on the Search page: keep the current search under a
//! name, open it again with one click, delete it. The forms are plain
//! POSTs to the server functions, so they work before the page hydrates.

// The save form posts one flat field per URL parameter (it works before
// the WASM loads); the server function, and the client stub the macro
// makes of it, have one argument each.
#![allow(clippy::too_many_arguments)]

use leptos::prelude::*;

use crate::search_model::{SavedSearch, SearchError};
use crate::search_state::SearchParams;

/// The viewer's own saved searches.
#[server(endpoint = "search/saved")]
pub async fn list_saved_searches() -> Result<Vec<SavedSearch>, SearchError> {
    super::search::with_store(|store, _| async move { Ok(store.0.saved_searches().await?) }).await
}

/// Saves the search the other fields describe (the Search page's own URL
/// parameters) under `name`.
#[server(endpoint = "search/saved/save")]
pub async fn save_search(
    name: String,
    q: Option<String>,
    tenant: Option<String>,
    range: Option<String>,
    from: Option<String>,
    to: Option<String>,
    cols: Option<String>,
    sort: Option<String>,
    dir: Option<String>,
) -> Result<SavedSearch, SearchError> {
    use crate::search_model::saved_search_name;
    use crate::store::SharedStore;
    let params = SearchParams::from_pairs(&[
        ("q", q),
        ("tenant", tenant),
        ("range", range),
        ("from", from),
        ("to", to),
        ("cols", cols),
        ("sort", sort),
        ("dir", dir),
    ]);
    let result: Result<SavedSearch, SearchError> = async {
        let name = saved_search_name(&name)?;
        // A search that cannot run is not worth keeping.
        crate::query::parse(&params.q).map_err(SearchError::BadQuery)?;
        params.window().map_err(SearchError::BadRequest)?;
        params.sort().map_err(SearchError::BadRequest)?;
        let store = use_context::<SharedStore>().ok_or(SearchError::Unavailable)?;
        let now_ms = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_millis() as i64)
            .unwrap_or_default();
        Ok(store.0.save_search(&name, &params, now_ms).await?)
    }
    .await;
    if let Err(error) = &result {
        super::search::set_api_status(error.status());
    }
    result
}

/// Deletes one of the viewer's saved searches; any other id is a 403.
#[server(endpoint = "search/saved/delete")]
pub async fn delete_saved_search(id: String) -> Result<(), SearchError> {
    super::search::with_store(|store, _| async move { Ok(store.0.delete_saved_search(&id).await?) })
        .await
}

#[component]
pub fn SavedSearches(params: Memo<SearchParams>) -> impl IntoView {
    let save = ServerAction::<SaveSearch>::new();
    let delete = ServerAction::<DeleteSavedSearch>::new();
    let saved = Resource::new(
        move || (save.version().get(), delete.version().get()),
        |_| list_saved_searches(),
    );
    // The fields of the search being saved: the page's, as in its URL.
    let field = move |key: &'static str| {
        move || {
            params
                .get()
                .pairs()
                .into_iter()
                .find(|(k, _)| *k == key)
                .map(|(_, v)| v)
                .unwrap_or_default()
        }
    };
    let save_error = move || match save.value().get() {
        Some(Err(error)) => {
            Some(view! { <p class="query-error" role="alert">{error.to_string()}</p> })
        }
        _ => None,
    };
    view! {
        <section class="saved" aria-labelledby="saved-title" data-testid="saved-searches">
            <h2 id="saved-title">"Saved searches"</h2>
            <Transition fallback=move || view! { <p class="muted">"Loading…"</p> }>
                {move || saved.get().map(|answer| match answer {
                    Ok(list) if list.is_empty() => view! { <p class="muted">"None yet."</p> }.into_any(),
                    Ok(list) => view! {
                        <ul class="saved-list">
                            {list.into_iter().map(|s| view! { <SavedItem saved=s delete/> }).collect_view()}
                        </ul>
                    }.into_any(),
                    Err(error) => view! { <p class="muted">{error.to_string()}</p> }.into_any(),
                })}
            </Transition>
            // An auditor changes nothing, so is not offered the form (the
            // server refuses the save anyway).
            <Suspense fallback=|| ()>
                {move || {
                    crate::session::viewer()
                        .is_none_or(|v| v.may_write())
                        .then(|| {
                            view! {
                                <ActionForm action=save attr:class="save-form">
                                    <input type="hidden" name="q" value=field("q")/>
                                    <input type="hidden" name="tenant" value=field("tenant")/>
                                    <input type="hidden" name="range" value=move || params.get().range.param()/>
                                    <input type="hidden" name="from" value=field("from")/>
                                    <input type="hidden" name="to" value=field("to")/>
                                    <input type="hidden" name="cols" value=field("cols")/>
                                    <input type="hidden" name="sort" value=field("sort")/>
                                    <input type="hidden" name="dir" value=field("dir")/>
                                    <label for="saved-name" class="visually-hidden">"Name of this search"</label>
                                    <input id="saved-name" name="name" type="text" required maxlength="100" placeholder="Name this search"/>
                                    <button type="submit">"Save"</button>
                                </ActionForm>
                            }
                        })
                }}
            </Suspense>
            {save_error}
        </section>
    }
}

#[component]
fn SavedItem(saved: SavedSearch, delete: ServerAction<DeleteSavedSearch>) -> impl IntoView {
    let label = format!("Delete the saved search {}", saved.name);
    let id = saved.id.clone();
    view! {
        <li data-saved-id=saved.id.clone()>
            <a href=saved.params.href() title=saved.params.q.clone()>{saved.name.clone()}</a>
            <ActionForm action=delete attr:class="inline">
                <input type="hidden" name="id" value=id/>
                <button type="submit" class="link-button" aria-label=label.clone() title=label>"×"</button>
            </ActionForm>
        </li>
    }
}
