//! Who is using the console: the signed-in viewer as the pages see it.
//! The server decides what a viewer may see (every store call is scoped on
//! the server); the pages use this only to show who is signed in and to
//! offer the tenants they may choose.

use leptos::prelude::*;
use serde::{Deserialize, Serialize};

/// The viewer of the current request, as the server put it in context.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ViewerInfo {
    /// Whom the access key was granted to.
    pub name: String,
    /// Tenants they may see, sorted; empty when `all_tenants`.
    pub tenants: Vec<String>,
    pub all_tenants: bool,
    /// False when the console runs without sign-in (`console.require_login`
    /// off), where there is nothing to sign out of.
    pub signed_in: bool,
}

impl ViewerInfo {
    /// The tenant a search without one runs over: a viewer of exactly one
    /// tenant sees that one; everyone else must pick (or sees all).
    pub fn default_tenant(&self) -> Option<String> {
        match (self.all_tenants, self.tenants.as_slice()) {
            (false, [only]) => Some(only.clone()),
            _ => None,
        }
    }
}

/// The signed-in viewer; `None` on pages served before sign-in.
#[server(endpoint = "session/viewer")]
pub async fn current_viewer() -> Result<Option<ViewerInfo>, ServerFnError> {
    Ok(use_context::<ViewerInfo>())
}

/// Name and sign-out for the top bar; nothing before sign-in.
#[component]
pub fn ViewerMenu() -> impl IntoView {
    let viewer = Resource::new(|| (), |_| current_viewer());
    view! {
        <Suspense fallback=|| ()>
            {move || {
                viewer
                    .get()
                    .and_then(Result::ok)
                    .flatten()
                    .filter(|v| v.signed_in)
                    .map(|v| {
                        let scope = if v.all_tenants {
                            "all tenants".to_owned()
                        } else {
                            v.tenants.join(", ")
                        };
                        view! {
                            <div class="viewer" data-testid="viewer">
                                <span class="viewer-name" title=format!("May see: {scope}")>
                                    {v.name.clone()}
                                </span>
                                <form method="post" action="/logout">
                                    <button type="submit" class="link-button">"Sign out"</button>
                                </form>
                            </div>
                        }
                    })
            }}
        </Suspense>
    }
}
