//! The facet panel: the most frequent values of each field over every
//! matching event, and the most common metadata keys, each opening to its
//! top values. A value narrows the search to it; its "−" button (or an
//! Alt-click on the value) excludes it instead.

use leptos::prelude::*;
use leptos_router::hooks::use_navigate;

use crate::pages::search_form::SuggestionValues;
use crate::query::{and_term, METADATA_PREFIX};
use crate::search_model::{
    FacetCounts, FacetValue, Facets, MetadataKey, MetadataValues, SearchError,
};
use crate::search_state::SearchParams;

/// The top values of one metadata key over every matching event, counted
/// as of `snapshot` (the facets' moment, so they add up to the key's
/// count).
#[server(endpoint = "search/metadata_values")]
#[allow(clippy::too_many_arguments)]
pub async fn count_metadata_values(
    q: Option<String>,
    tenant: Option<String>,
    range: Option<String>,
    from: Option<String>,
    to: Option<String>,
    snapshot: Option<i64>,
    key: String,
) -> Result<MetadataValues, SearchError> {
    use crate::pages::search::{search_params, with_store};
    use crate::search_model::{checked_snapshot, SearchQuery, SEARCH_PAGE_ROWS};
    let params = search_params(q, tenant, range, from, to, None);
    with_store(|store, now_ms| async move {
        let query = SearchQuery::from_params(&params, SEARCH_PAGE_ROWS)?;
        let snapshot = checked_snapshot(snapshot.unwrap_or(now_ms))?;
        Ok(store.0.metadata_values(&query, &key, snapshot).await?)
    })
    .await
}

#[component]
pub fn FacetsPanel(facets: Facets, params: SearchParams) -> impl IntoView {
    let total = facets.total;
    let groups = facets
        .fields
        .into_iter()
        .filter(|counts| !counts.values.is_empty())
        .map(|counts| view! { <FacetGroup counts params=params.clone()/> })
        .collect_view();
    let metadata = (!facets.metadata.is_empty()).then(|| {
        view! { <MetadataFacets keys=facets.metadata params=params.clone() snapshot_ms=facets.snapshot_ms/> }
    });
    view! {
        <p class="facet-total" data-testid="facet-total">
            <strong>{total.to_string()}</strong>
            {if total == 1 { " matching event" } else { " matching events" }}
        </p>
        {groups}
        {metadata}
    }
}

#[component]
fn FacetGroup(counts: FacetCounts, params: SearchParams) -> impl IntoView {
    let field = counts.field;
    let count_href = SearchParams {
        count_by: Some(field.into()),
        ..params.clone()
    }
    .href();
    let count_label = format!("Count the top 20 values of {}", field.label());
    view! {
        <section class="facet" data-facet=field.column()>
            <h2>
                {field.label()}" "
                <a class="facet-count-by" href=count_href title=count_label.clone() aria-label=count_label>"top 20"</a>
            </h2>
            <FacetValues field=field.query_field().to_string() label=field.label().to_string()
                values=counts.values params/>
        </section>
    }
}

/// A field's values, each a link that adds `field:"value"` to the query
/// (Alt-click or "−": `-field:"value"`). `field` is the query-language
/// name, `label` what the exclude button's name says.
#[component]
fn FacetValues(
    field: String,
    label: String,
    values: Vec<FacetValue>,
    params: SearchParams,
) -> impl IntoView {
    let navigate = use_navigate();
    let items = values
        .into_iter()
        .map(|value| {
            let term = |negate| {
                params
                    .with_q(and_term(&params.q, &field, &value.value, negate))
                    .href()
            };
            let (narrow, exclude) = (term(false), term(true));
            let shown = if value.value.is_empty() {
                "(empty)".to_string()
            } else {
                value.value.clone()
            };
            let navigate = navigate.clone();
            let alt_target = exclude.clone();
            let on_click = move |ev: leptos::ev::MouseEvent| {
                if ev.alt_key() {
                    ev.prevent_default();
                    navigate(&alt_target, Default::default());
                }
            };
            let exclude_label = format!("Exclude {label} {shown}");
            view! {
                <li data-facet-value=value.value.clone()>
                    <a class="facet-value" href=narrow on:click=on_click title="Add to the query (Alt-click excludes)">
                        <span class="facet-name">{shown}</span>
                        <span class="facet-count">{value.events.to_string()}</span>
                    </a>
                    <a class="facet-exclude" href=exclude aria-label=exclude_label.clone() title=exclude_label>"−"</a>
                </li>
            }
        })
        .collect_view();
    view! { <ul>{items}</ul> }
}

/// The most common metadata keys of the search, each with its number of
/// events; opening one counts its values.
#[component]
fn MetadataFacets(keys: Vec<MetadataKey>, params: SearchParams, snapshot_ms: i64) -> impl IntoView {
    let keys = keys
        .into_iter()
        .map(|key| view! { <MetadataFacet key params=params.clone() snapshot_ms/> })
        .collect_view();
    view! {
        <section class="facet metadata-facets" data-testid="metadata-facets">
            <h2>"Metadata"</h2>
            {keys}
        </section>
    }
}

/// One metadata key: its values are asked for the first time it is opened,
/// then kept (and offered by the query bar after `metadata.<key>:`).
#[component]
fn MetadataFacet(key: MetadataKey, params: SearchParams, snapshot_ms: i64) -> impl IntoView {
    let field = format!("{METADATA_PREFIX}{}", key.key);
    let values = RwSignal::new(None::<Result<Vec<FacetValue>, SearchError>>);
    let asked = StoredValue::new(false);
    let opened = use_context::<SuggestionValues>().map(|s| s.metadata);
    let details = NodeRef::<leptos::html::Details>::new();
    let on_toggle = {
        let params = params.clone();
        let key = key.key.clone();
        move |_| {
            let open = details.get_untracked().is_some_and(|d| d.open());
            if !open || asked.get_value() {
                return;
            }
            asked.set_value(true);
            let (p, key) = (params.clone(), key.clone());
            leptos::task::spawn_local(async move {
                let answer = count_metadata_values(
                    Some(p.q.clone()),
                    p.tenant.clone(),
                    Some(p.range.param().to_string()),
                    p.from.clone(),
                    p.to.clone(),
                    Some(snapshot_ms),
                    key,
                )
                .await;
                if let (Ok(found), Some(opened)) = (&answer, opened) {
                    opened.update(|list| {
                        list.retain(|m| m.key != found.key);
                        list.push(found.clone());
                    });
                }
                values.set(Some(answer.map(|found| found.values)));
            });
        }
    };
    let label = field.clone();
    let body = move || {
        match values.get() {
        None => view! { <p class="muted">"Counting…"</p> }.into_any(),
        Some(Ok(found)) => view! {
            <FacetValues field=field.clone() label=label.clone() values=found params=params.clone()/>
        }
        .into_any(),
        Some(Err(error)) => {
            view! { <p class="query-error" role="alert">{super::search::error_text(&error)}</p> }
                .into_any()
        }
    }
    };
    view! {
        <details class="metadata-facet" data-facet=format!("{METADATA_PREFIX}{}", key.key)
            node_ref=details on:toggle=on_toggle>
            <summary>
                <span class="facet-name">{key.key.clone()}</span>
                <span class="facet-count">{key.events.to_string()}</span>
            </summary>
            {body}
        </details>
    }
}
