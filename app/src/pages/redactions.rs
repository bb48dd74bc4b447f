//! The redactions page (`/redactions`, admins only): the pending redaction
//! requests of the tenants the admin sees, with what each erases and why;
//! an admin other than the requester approves one here, which executes it
//! (README "Redaction"). Requests are made with `attest redaction request`
//! or `POST /api/v1/redactions`. Anyone but an admin gets a 403 page.

use leptos::prelude::*;

use crate::redactions_model::{ApprovalReport, PendingRedaction};
use crate::search_model::SearchError;
use crate::timefmt::utc_millis;

/// Runs `f` on this request's source, refusing anyone but an admin, and
/// sets the HTTP status of an error.
#[cfg(feature = "ssr")]
async fn with_source<T, F, Fut>(f: F) -> Result<T, SearchError>
where
    F: FnOnce(std::sync::Arc<dyn crate::redactions_model::RedactionSource>) -> Fut,
    Fut: std::future::Future<Output = Result<T, SearchError>>,
{
    use crate::redactions_model::SharedRedactions;
    let result = match use_context::<SharedRedactions>() {
        Some(source) => match source.0.admitted() {
            Ok(()) => f(source.0).await,
            Err(refused) => Err(refused),
        },
        None => Err(SearchError::Forbidden("this page is for admins".into())),
    };
    if let Err(error) = &result {
        crate::pages::search::set_api_status(error.status());
    }
    result
}

/// The pending requests; 403 for anyone but an admin.
#[server(endpoint = "redactions/pending")]
pub async fn read_pending_redactions() -> Result<Vec<PendingRedaction>, SearchError> {
    with_source(|source| async move { source.pending().await }).await
}

/// Approves a request and executes it; refused for its requester.
#[server(endpoint = "redactions/approve")]
pub async fn approve_redaction(request_id: String) -> Result<ApprovalReport, SearchError> {
    with_source(|source| async move { source.approve(request_id).await }).await
}

#[component]
pub fn RedactionsPage() -> impl IntoView {
    #[cfg(feature = "ssr")]
    {
        let allowed = use_context::<crate::redactions_model::SharedRedactions>()
            .is_some_and(|s| s.0.admitted().is_ok());
        if !allowed {
            if let Some(response) = use_context::<leptos_axum::ResponseOptions>() {
                response.set_status(http::StatusCode::FORBIDDEN);
            }
        }
    }
    let approve = ServerAction::<ApproveRedaction>::new();
    let pending = Resource::new(
        move || approve.version().get(),
        |_| read_pending_redactions(),
    );
    let outcome = move || {
        approve.value().get().map(|answer| match answer {
            Ok(r) => view! {
                <p class="state ok" data-testid="redaction-done">{format!(
                    "Request {} executed: {} rows redacted{}.",
                    r.request_id,
                    r.redacted,
                    if r.missing > 0 { format!(", {} events no longer stored as requested", r.missing) } else { String::new() }
                )}</p>
            }
            .into_any(),
            Err(error) => view! {
                <p class="state bad" role="alert" data-testid="redaction-error">{error.to_string()}</p>
            }
            .into_any(),
        })
    };
    view! {
        <section class="redactions">
            <h1>"Redaction requests"</h1>
            <p class="muted">
                "Each request erases fields of a tenant's stored events. An admin other than the requester approves it; approving executes it. "
                "Requests are made with " <code>"attest redaction request"</code> " or " <code>"POST /api/v1/redactions"</code> "."
            </p>
            {outcome}
            <Transition fallback=|| view! { <p class="muted">"Reading the requests…"</p> }>
                {move || {
                    pending.get().map(|answer| match answer {
                        Ok(list) if list.is_empty() => view! {
                            <p class="muted" data-testid="redactions-none">"No request waits for approval."</p>
                        }.into_any(),
                        Ok(list) => view! { <Pending list approve/> }.into_any(),
                        Err(SearchError::Forbidden(message)) => view! {
                            <section class="panel forbidden" data-testid="forbidden">
                                <h1>"403: for admins only"</h1>
                                <p>{message}</p>
                                <p><a href="/search">"Search events"</a></p>
                            </section>
                        }.into_any(),
                        Err(error) => view! {
                            <section class="panel error" role="alert"><p>{error.to_string()}</p></section>
                        }.into_any(),
                    })
                }}
            </Transition>
        </section>
    }
}

#[component]
fn Pending(list: Vec<PendingRedaction>, approve: ServerAction<ApproveRedaction>) -> impl IntoView {
    let rows = list
        .into_iter()
        .map(|r| {
            let what = if r.subject_actor_id.is_empty() {
                format!("{} events", r.events)
            } else {
                format!("{} events of actor {}", r.events, r.subject_actor_id)
            };
            let id = r.request_id.clone();
            let button = if r.yours {
                view! { <span class="muted">"Your request: another admin approves it"</span> }
                    .into_any()
            } else {
                view! {
                    <ActionForm action=approve attr:class="inline">
                        <input type="hidden" name="request_id" value=id/>
                        <button type="submit">"Approve and execute"</button>
                    </ActionForm>
                }
                .into_any()
            };
            view! {
                <tr data-testid="redaction-request" data-request=r.request_id.clone()>
                    <td class="mono">{r.request_id.clone()}</td>
                    <td>{r.tenant_id}</td>
                    <td>{what}</td>
                    <td class="mono">{r.fields.join(", ")}</td>
                    <td>{r.reason}</td>
                    <td>{format!("{} ({} UTC)", r.requested_by, utc_millis(r.requested_at))}</td>
                    <td>{button}</td>
                </tr>
            }
        })
        .collect_view();
    view! {
        <table class="results">
            <thead>
                <tr>
                    <th>"Request"</th><th>"Tenant"</th><th>"Covers"</th><th>"Fields"</th>
                    <th>"Reason"</th><th>"Requested by"</th><th></th>
                </tr>
            </thead>
            <tbody>{rows}</tbody>
        </table>
    }
}
