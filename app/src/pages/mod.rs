pub mod events;

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
            <p><a href="/">"Back to events"</a></p>
        </section>
    }
}
