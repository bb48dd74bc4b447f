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

/// What the tenant selector's empty choice means for this viewer: the
/// server narrows it to the viewer's own tenants.
pub fn no_tenant_label(viewer: Option<&ViewerInfo>) -> &'static str {
    match viewer {
        Some(v) if !v.all_tenants && v.tenants.len() == 1 => "Your tenant",
        Some(v) if !v.all_tenants => "All your tenants",
        _ => "All tenants",
    }
}

/// The signed-in viewer; `None` on pages served before sign-in.
#[server(endpoint = "session/viewer")]
pub async fn current_viewer() -> Result<Option<ViewerInfo>, ServerFnError> {
    Ok(use_context::<ViewerInfo>())
}

/// The viewer, asked for once per page load and shared through context by
/// the top bar and the tenant selectors.
#[derive(Clone, Copy)]
pub struct SharedViewer(Resource<Result<Option<ViewerInfo>, ServerFnError>>);

/// Asks for the viewer once, for every component below.
pub fn provide_viewer() {
    provide_context(SharedViewer(Resource::new(|| (), |_| current_viewer())));
}

/// The viewer as far as known yet; reading it inside a view or a
/// `Suspense` tracks it.
pub fn viewer() -> Option<ViewerInfo> {
    use_context::<SharedViewer>()
        .and_then(|shared| shared.0.get())
        .and_then(Result::ok)
        .flatten()
}

/// Name and sign-out for the top bar; nothing before sign-in.
#[component]
pub fn ViewerMenu() -> impl IntoView {
    view! {
        <Suspense fallback=|| ()>
            {move || {
                viewer()
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

#[cfg(test)]
mod tests {
    use super::*;

    fn viewer(tenants: &[&str], all_tenants: bool) -> ViewerInfo {
        ViewerInfo {
            name: "v".into(),
            tenants: tenants.iter().map(|t| t.to_string()).collect(),
            all_tenants,
            signed_in: true,
        }
    }

    #[test]
    fn the_empty_tenant_choice_says_what_it_means() {
        assert_eq!(no_tenant_label(None), "All tenants");
        assert_eq!(no_tenant_label(Some(&viewer(&[], true))), "All tenants");
        assert_eq!(no_tenant_label(Some(&viewer(&["a"], false))), "Your tenant");
        assert_eq!(
            no_tenant_label(Some(&viewer(&["a", "b"], false))),
            "All your tenants"
        );
    }
}
