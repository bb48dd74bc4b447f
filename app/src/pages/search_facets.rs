//! The facet panel: the most frequent values of each field over every
//! matching event. A value narrows the search to it; its "−" button (or an
//! Alt-click on the value) excludes it instead.

use leptos::prelude::*;
use leptos_router::hooks::use_navigate;

use crate::query::and_term;
use crate::search_model::{FacetCounts, Facets};
use crate::search_state::SearchParams;

#[component]
pub fn FacetsPanel(facets: Facets, params: SearchParams) -> impl IntoView {
    let total = facets.total;
    let groups = facets
        .fields
        .into_iter()
        .filter(|counts| !counts.values.is_empty())
        .map(|counts| view! { <FacetGroup counts params=params.clone()/> })
        .collect_view();
    view! {
        <p class="facet-total" data-testid="facet-total">
            <strong>{total.to_string()}</strong>
            {if total == 1 { " matching event" } else { " matching events" }}
        </p>
        {groups}
    }
}

#[component]
fn FacetGroup(counts: FacetCounts, params: SearchParams) -> impl IntoView {
    let field = counts.field;
    let navigate = use_navigate();
    let items = counts
        .values
        .into_iter()
        .map(|value| {
            let term = |negate| {
                params
                    .with_q(and_term(&params.q, field.query_field(), &value.value, negate))
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
            let exclude_label = format!("Exclude {} {}", field.label(), shown);
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
    let count_href = SearchParams {
        count_by: Some(field),
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
            <ul>{items}</ul>
        </section>
    }
}
