//! Sign-in: an analyst pastes the console access key they were given
//! (`attest access grant`). The form is a plain POST to `/login`, handled
//! by the server outside Leptos, so it works before the page is hydrated
//! and the key never passes through a server function's JSON.

use leptos::prelude::*;
use leptos_router::hooks::use_query_map;

#[component]
pub fn LoginPage() -> impl IntoView {
    let query = use_query_map();
    let next = move || {
        query
            .read()
            .get("next")
            .filter(|n| n.starts_with('/') && !n.starts_with("//"))
            .unwrap_or_else(|| "/dashboard".to_owned())
    };
    let message = move || match query.read().get("error").as_deref() {
        Some("invalid") => Some("That access key is not valid, or it was revoked."),
        Some("expired") => Some("Your session ended; sign in again."),
        Some("unavailable") => {
            Some("Sign-in cannot be checked or recorded right now; try again shortly.")
        }
        _ => None,
    };
    let signed_out = move || query.read().get("signed_out").is_some();
    view! {
        <section class="panel login">
            <h1>"Sign in"</h1>
            <p class="muted">
                "Paste the console access key you were given. It starts with "
                <code>"atc_"</code>" and decides which tenants you see."
            </p>
            {move || {
                message()
                    .map(|m| view! { <div class="error" role="alert" data-testid="login-error">{m}</div> })
            }}
            {move || {
                signed_out()
                    .then(|| view! { <p class="notice" data-testid="signed-out">"You are signed out."</p> })
            }}
            <form method="post" action="/login" class="login-form">
                <input type="hidden" name="next" value=next/>
                <label for="login-key">"Access key"</label>
                <input
                    id="login-key"
                    name="key"
                    type="password"
                    autocomplete="off"
                    spellcheck="false"
                    required=true
                />
                <button type="submit">"Sign in"</button>
            </form>
        </section>
    }
}
