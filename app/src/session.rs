//! Who is using the console: the signed-in viewer as the pages see it.
//! The server decides what a viewer may see (every store call is scoped on
//! the server); the pages use this only to show who is signed in and to
//! offer the tenants they may choose.

use leptos::prelude::*;
use serde::{Deserialize, Serialize};

/// What a console grant may do beyond reading its tenants' events.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// Reads the events of the tenants they were granted; what every grant
    /// made before roles existed is.
    #[default]
    Analyst,
    /// Also sees how the pipeline itself is doing (`/pipeline`); every such
    /// action is recorded in Attest's own trail.
    Admin,
    /// Reads the console's own trail (tenant `attest`: who searched, opened
    /// and exported what) beside the tenants granted, and changes nothing.
    Auditor,
}

impl Role {
    pub const ALL: [Role; 3] = [Role::Analyst, Role::Admin, Role::Auditor];

    pub fn as_str(self) -> &'static str {
        match self {
            Role::Analyst => "analyst",
            Role::Admin => "admin",
            Role::Auditor => "auditor",
        }
    }

    /// Whether the role may change anything (saved searches, detection
    /// rules); the server decides again on every write.
    pub fn may_write(self) -> bool {
        self != Role::Auditor
    }
}

impl std::fmt::Display for Role {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A role name that is not one of [`Role::ALL`].
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("unknown role {0:?}: choose admin, analyst or auditor")]
pub struct UnknownRole(pub String);

impl std::str::FromStr for Role {
    type Err = UnknownRole;

    /// Exact lower-case names only: a role decides what someone may see,
    /// so "Admin " or "administrator" is refused rather than guessed at.
    fn from_str(s: &str) -> Result<Role, UnknownRole> {
        Role::ALL
            .into_iter()
            .find(|r| r.as_str() == s)
            .ok_or_else(|| UnknownRole(s.to_owned()))
    }
}

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
    /// Shown in the menu and used to offer the admin pages; the server
    /// decides again on every admin request.
    #[serde(default)]
    pub role: Role,
}

impl ViewerInfo {
    pub fn is_admin(&self) -> bool {
        self.role == Role::Admin
    }

    pub fn may_write(&self) -> bool {
        self.role.may_write()
    }
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
                                {(v.role != Role::Analyst)
                                    .then(|| {
                                        view! {
                                            <span class="viewer-role" data-testid="viewer-role">
                                                {v.role.as_str()}
                                            </span>
                                        }
                                    })}
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
            role: Role::Analyst,
        }
    }

    #[test]
    fn roles_parse_exactly_and_default_to_analyst() {
        assert_eq!("admin".parse::<Role>(), Ok(Role::Admin));
        assert_eq!("analyst".parse::<Role>(), Ok(Role::Analyst));
        assert_eq!("auditor".parse::<Role>(), Ok(Role::Auditor));
        for bad in ["", "Admin", "admin ", "administrator", "root", "Auditor"] {
            let error = bad.parse::<Role>().unwrap_err().to_string();
            assert!(
                error.contains("admin, analyst or auditor"),
                "{bad:?}: {error}"
            );
        }
        assert!(Role::Analyst.may_write() && Role::Admin.may_write());
        assert!(!Role::Auditor.may_write());
        assert_eq!(Role::default(), Role::Analyst);
        // A viewer serialized before roles existed reads as an analyst.
        let old = r#"{"name":"v","tenants":[],"all_tenants":true,"signed_in":true}"#;
        let info: ViewerInfo = serde_json::from_str(old).unwrap();
        assert_eq!(info.role, Role::Analyst);
        assert!(!info.is_admin());
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
