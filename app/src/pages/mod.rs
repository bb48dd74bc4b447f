pub mod alerts;
pub mod dashboard;
mod dashboard_more;
mod dashboard_panels;
pub mod dead_letters;
pub mod detections;
pub mod event_detail;
pub mod events;
pub mod login;
pub mod pipeline;
mod pipeline_procs;
mod pipeline_trends;
pub mod redactions;
pub mod saved_searches;
pub mod search;
mod search_facets;
mod search_form;
mod search_histogram;
mod search_results;
mod search_tail;
pub mod search_zone;

use leptos::prelude::*;

#[component]
pub fn NotFound() -> impl IntoView {
    #[cfg(feature = "ssr")]
    {
        if let Some(resp) = use_context::<leptos_axum::ResponseOptions>() {
            resp.set_status(http::StatusCode::NOT_FOUND);
        }
    }
    view! {
        <section class="panel">
            <h1>"Page not found"</h1>
            <p><a href="/search">"Search events"</a>" · "<a href="/">"Latest events"</a></p>
        </section>
    }
}

/// A top-bar link to an admin page, shown to admins only (the page refuses
/// others anyway; the link just does not tempt them).
#[component]
pub fn AdminNavLink(href: &'static str, label: &'static str) -> impl IntoView {
    view! {
        <Suspense fallback=|| ()>
            {move || {
                crate::session::viewer()
                    .filter(|v| v.is_admin())
                    .map(|_| view! { <leptos_router::components::A href=href>{label}</leptos_router::components::A> })
            }}
        </Suspense>
    }
}
