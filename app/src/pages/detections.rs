//! The detections page (`/detections`): the rules of the viewer's tenants,
//! made, edited, paused and deleted here; every firing with a link to its
//! events in Search; every webhook delivery attempt. The dashboard's
//! Detections panel lists the firings of its window. The server scopes
//! every server function to the viewer's tenants and records every change
//! in the rule's tenant's audit trail.

// The rule form posts one flat field per rule field (it works before the
// WASM loads); the server function that takes them has one argument each.
#![allow(clippy::too_many_arguments)]

use leptos::prelude::*;
use leptos_router::hooks::use_query_map;

use crate::alerts_model::DeliveryAttempt;
use crate::detections_model::{DetectionRule, DetectionsView, Firing, GroupBy};
use crate::search_model::SearchError;
use crate::search_state::SearchParams;
use crate::timefmt::utc_millis;

#[cfg(feature = "ssr")]
fn with_detections<T>(
    answer: impl FnOnce(crate::detections_model::SharedDetections) -> T,
) -> Result<T, SearchError> {
    use_context::<crate::detections_model::SharedDetections>()
        .map(answer)
        .ok_or_else(|| {
            let error = SearchError::BadRequest(
                "detections are off on this server (detections.enabled needs alerts.enabled)"
                    .into(),
            );
            crate::pages::search::set_api_status(error.status());
            error
        })
}

#[cfg(feature = "ssr")]
fn answered<T>(result: Result<T, crate::store::StoreError>) -> Result<T, SearchError> {
    let result = result.map_err(SearchError::from);
    if let Err(error) = &result {
        crate::pages::search::set_api_status(error.status());
    }
    result
}

/// Rules, firings and deliveries of `tenant` (or of every tenant the viewer
/// may see).
#[server(endpoint = "detections/view")]
pub async fn read_detections(tenant: Option<String>) -> Result<DetectionsView, SearchError> {
    let source = with_detections(|d| d)?;
    let tenant = tenant.filter(|t| !t.trim().is_empty());
    answered(source.0.view(tenant.as_deref()).await)
}

/// Creates (no `rule_id`) or replaces a rule. An unchecked box is absent:
/// the rule is paused.
#[server(endpoint = "detections/save")]
pub async fn save_detection_rule(
    rule_id: Option<String>,
    tenant: String,
    name: String,
    query: Option<String>,
    group_by: String,
    threshold: u64,
    window_minutes: u64,
    enabled: Option<String>,
) -> Result<String, SearchError> {
    use crate::detections_model::RuleInput;
    let input = RuleInput {
        rule_id: rule_id.unwrap_or_default(),
        tenant,
        name,
        query: query.unwrap_or_default(),
        group_by,
        threshold,
        window_minutes,
        enabled: enabled.is_some(),
    };
    if let Err(bad) = input.validate() {
        let error = SearchError::BadRequest(format!("not saved: {bad}"));
        crate::pages::search::set_api_status(error.status());
        return Err(error);
    }
    let source = with_detections(|d| d)?;
    answered(source.0.save(input).await)
}

/// Pauses (`enabled` = "false") or resumes ("true") a rule.
#[server(endpoint = "detections/enable")]
pub async fn set_detection_rule_enabled(
    rule_id: String,
    enabled: String,
) -> Result<(), SearchError> {
    let on = match enabled.as_str() {
        "true" => true,
        "false" => false,
        other => {
            let error =
                SearchError::BadRequest(format!("enabled: {other:?} is neither true nor false"));
            crate::pages::search::set_api_status(error.status());
            return Err(error);
        }
    };
    let source = with_detections(|d| d)?;
    answered(source.0.set_enabled(&rule_id, on).await)
}

#[server(endpoint = "detections/delete")]
pub async fn delete_detection_rule(rule_id: String) -> Result<(), SearchError> {
    let source = with_detections(|d| d)?;
    answered(source.0.delete(&rule_id).await)
}

/// Firings whose window meets the dashboard's, of its tenants.
#[server(endpoint = "dashboard/detections")]
pub async fn dashboard_detections(
    tenant: Option<String>,
    range: Option<String>,
    from: Option<String>,
    to: Option<String>,
) -> Result<Vec<Firing>, SearchError> {
    let params = crate::pages::search::search_params(None, tenant, range, from, to, None);
    let window = params.window().map_err(|message| {
        let error = SearchError::BadRequest(message);
        crate::pages::search::set_api_status(error.status());
        error
    })?;
    let now_ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
        .unwrap_or_default();
    let (from_ms, to_ms) = window.bounds(now_ms);
    let source = with_detections(|d| d)?;
    answered(
        source
            .0
            .firings(params.tenant.as_deref(), from_ms, to_ms)
            .await,
    )
}

fn when(ms: u64) -> String {
    utc_millis(i64::try_from(ms).unwrap_or(i64::MAX))
}

#[component]
pub fn DetectionsPage() -> impl IntoView {
    let query = use_query_map();
    let tenant = Memo::new(move |_| query.read().get("tenant").filter(|t| !t.is_empty()));
    let save = ServerAction::<SaveDetectionRule>::new();
    let enable = ServerAction::<SetDetectionRuleEnabled>::new();
    let delete = ServerAction::<DeleteDetectionRule>::new();
    let view = Resource::new(
        move || {
            (
                tenant.get(),
                save.version().get(),
                enable.version().get(),
                delete.version().get(),
            )
        },
        |(tenant, ..)| read_detections(tenant),
    );
    let result = move || {
        let failed = [
            save.value().get().and_then(|r| r.err()),
            enable.value().get().and_then(|r| r.err()),
            delete.value().get().and_then(|r| r.err()),
        ];
        failed.into_iter().flatten().next().map(|error| {
            view! { <p class="query-error" role="alert" data-testid="rule-error">{error.to_string()}</p> }
        })
    };
    view! {
        <section class="detections" aria-labelledby="detections-title">
            <h1 id="detections-title">"Detections"</h1>
            {result}
            <Transition fallback=|| view! { <p class="muted">"Reading the detections…"</p> }>
                {move || {
                    view.get()
                        .map(|answer| match answer {
                            Ok(v) => view! { <Detections view=v save enable delete/> }.into_any(),
                            Err(error) => {
                                view! {
                                    <section class="panel error" role="alert">
                                        <p>{error.to_string()}</p>
                                    </section>
                                }
                                    .into_any()
                            }
                        })
                }}
            </Transition>
        </section>
    }
}

#[component]
fn Detections(
    view: DetectionsView,
    save: ServerAction<SaveDetectionRule>,
    enable: ServerAction<SetDetectionRuleEnabled>,
    delete: ServerAction<DeleteDetectionRule>,
) -> impl IntoView {
    let DetectionsView {
        rules,
        firings,
        deliveries,
        webhooks,
        tenants,
    } = view;
    let hooks = if webhooks.is_empty() {
        "No webhooks are configured ([[detections.webhooks]]): firings are listed here only."
            .to_owned()
    } else {
        format!("Firings are delivered to: {}.", webhooks.join(", "))
    };
    let rules_view = if rules.is_empty() {
        view! { <p class="muted" data-testid="no-rules">"No rules yet."</p> }.into_any()
    } else {
        view! {
            <table class="alerts-table" data-testid="rules">
                <thead><tr>
                    <th scope="col">"Rule"</th><th scope="col">"Tenant"</th><th scope="col">"Query"</th>
                    <th scope="col">"Fires at"</th><th scope="col">"State"</th><th scope="col">"Changed"</th>
                    <th scope="col">"Actions"</th>
                </tr></thead>
                <tbody>
                    {rules.into_iter().map(|rule| {
                        let tenants = tenants.clone();
                        view! { <RuleRow rule tenants save enable delete/> }
                    }).collect_view()}
                </tbody>
            </table>
        }.into_any()
    };
    view! {
        <p class="muted">{hooks}</p>
        <section class="panel" aria-labelledby="rules-title">
            <h2 id="rules-title">"Rules"</h2>
            <p class="muted">
                "A rule fires when at least N events matching its Search query, with one value of its group-by field, \
                 occur within W minutes (whole minutes, UTC). It fires once per value and window; a burst \
                 longer than W fires again only after W minutes."
            </p>
            {rules_view}
        </section>
        <section class="panel" aria-labelledby="new-rule-title">
            <h2 id="new-rule-title">"New rule"</h2>
            <RuleForm rule=None tenants=tenants.clone() save/>
        </section>
        <section class="panel" aria-labelledby="firings-title">
            <h2 id="firings-title">"Firings"</h2>
            <FiringsTable firings/>
        </section>
        <section class="panel" aria-labelledby="deliveries-title">
            <h2 id="deliveries-title">"Webhook deliveries"</h2>
            <Deliveries attempts=deliveries/>
        </section>
    }
}

#[component]
fn RuleRow(
    rule: DetectionRule,
    tenants: Vec<String>,
    save: ServerAction<SaveDetectionRule>,
    enable: ServerAction<SetDetectionRuleEnabled>,
    delete: ServerAction<DeleteDetectionRule>,
) -> impl IntoView {
    let on = rule.is_enabled();
    let (toggle_to, toggle_label) = if on {
        ("false", "Pause")
    } else {
        ("true", "Resume")
    };
    let (toggle_id, delete_id) = (rule.rule_id.clone(), rule.rule_id.clone());
    let (name, shown_name) = (rule.name.clone(), rule.name.clone());
    let (tenant, query) = (rule.tenant.clone(), rule.query.clone());
    let condition = rule.condition();
    let changed = format!("{} by {}", when(rule.changed_ms), rule.changed_by);
    let row_class = if on { "" } else { "paused" };
    let state = if on { "on" } else { "paused" };
    view! {
        <tr data-testid="rule" data-rule-name=name class=row_class>
            <th scope="row">{shown_name}</th>
            <td>{tenant}</td>
            <td><code>{query}</code></td>
            <td>{condition}</td>
            <td>{state}</td>
            <td>{changed}</td>
            <td class="rule-actions">
                <ActionForm action=enable>
                    <input type="hidden" name="rule_id" value=toggle_id/>
                    <input type="hidden" name="enabled" value=toggle_to/>
                    <button type="submit" data-testid="toggle-rule">{toggle_label}</button>
                </ActionForm>
                <ActionForm action=delete>
                    <input type="hidden" name="rule_id" value=delete_id/>
                    <button type="submit" class="danger" data-testid="delete-rule">"Delete"</button>
                </ActionForm>
                <details>
                    <summary>"Edit"</summary>
                    <RuleForm rule=Some(rule) tenants save/>
                </details>
            </td>
        </tr>
    }
}

/// The form for a new rule (`rule` None) or one to edit.
#[component]
fn RuleForm(
    rule: Option<DetectionRule>,
    tenants: Vec<String>,
    save: ServerAction<SaveDetectionRule>,
) -> impl IntoView {
    let editing = rule.is_some();
    let testid = if editing {
        "edit-rule-form"
    } else {
        "new-rule-form"
    };
    let submit = if editing { "Save rule" } else { "Create rule" };
    let prefix = rule
        .as_ref()
        .map_or_else(|| "new".to_owned(), |r| r.rule_id.clone());
    let field = move |name: &str| format!("{prefix}-{name}");
    let r = rule.unwrap_or(DetectionRule {
        rule_id: String::new(),
        tenant: tenants.first().cloned().unwrap_or_default(),
        name: String::new(),
        query: String::new(),
        group_by: GroupBy::Actor.param().to_owned(),
        threshold: 10,
        window_minutes: 5,
        enabled: 1,
        changed_by: String::new(),
        changed_ms: 0,
    });
    let tenant_input = if editing {
        // A rule stays with its tenant.
        view! {
            <input type="hidden" name="tenant" value=r.tenant.clone()/>
            <span>"Tenant "<strong>{r.tenant.clone()}</strong></span>
        }
        .into_any()
    } else if tenants.is_empty() {
        view! {
            <label for=field("tenant")>"Tenant "
                <input type="text" id=field("tenant") name="tenant" required value=r.tenant.clone() data-testid="rule-tenant"/>
            </label>
        }
        .into_any()
    } else {
        view! {
            <label for=field("tenant")>"Tenant "
                <select id=field("tenant") name="tenant" data-testid="rule-tenant">
                    {tenants.iter().map(|t| view! { <option value=t.clone()>{t.clone()}</option> }).collect_view()}
                </select>
            </label>
        }
        .into_any()
    };
    view! {
        <ActionForm action=save attr:class="rule-form" attr:data-testid=testid>
            <input type="hidden" name="rule_id" value=r.rule_id.clone()/>
            {tenant_input}
            <label for=field("name")>"Name "
                <input type="text" id=field("name") name="name" required maxlength="100" value=r.name.clone() data-testid="rule-name"/>
            </label>
            <label for=field("query") class="wide">"Search query "
                <input type="text" id=field("query") name="query" value=r.query.clone()
                    placeholder="category:authentication outcome:failure" data-testid="rule-query"/>
            </label>
            <label for=field("group_by")>"Per "
                <select id=field("group_by") name="group_by" data-testid="rule-group-by">
                    {GroupBy::ALL.into_iter().map(|g| {
                        let selected = g.param() == r.group_by;
                        view! { <option value=g.param() selected=selected>{g.label()}</option> }
                    }).collect_view()}
                </select>
            </label>
            <label for=field("threshold")>"at least "
                <input type="number" id=field("threshold") name="threshold" min="1" required
                    value=r.threshold.to_string() data-testid="rule-threshold"/>
                " events"
            </label>
            <label for=field("window")>"within "
                <input type="number" id=field("window") name="window_minutes" min="1" max="1440" required
                    value=r.window_minutes.to_string() data-testid="rule-window"/>
                " minutes"
            </label>
            <label for=field("enabled")>
                <input type="checkbox" id=field("enabled") name="enabled" checked=r.is_enabled()/>
                " on"
            </label>
            <button type="submit" data-testid="save-rule">{submit}</button>
        </ActionForm>
    }
}

#[component]
pub(crate) fn FiringsTable(firings: Vec<Firing>) -> impl IntoView {
    if firings.is_empty() {
        return view! { <p class="muted" data-testid="no-firings">"No detection has fired."</p> }
            .into_any();
    }
    view! {
        <table class="alerts-table" data-testid="firings">
            <thead><tr>
                <th scope="col">"Fired (UTC)"</th><th scope="col">"Rule"</th><th scope="col">"Tenant"</th>
                <th scope="col">"Value"</th><th scope="col">"Events"</th><th scope="col">"Window (UTC)"</th>
                <th scope="col">"Evidence"</th>
            </tr></thead>
            <tbody>
                {firings.into_iter().map(|f| {
                    let href = f.search_href();
                    let per = GroupBy::from_param(&f.group_by).map_or("value", GroupBy::label);
                    let window = format!("{} – {}", utc_millis(f.window_from_ms), utc_millis(f.window_to_ms));
                    view! {
                        <tr data-testid="firing" data-firing-id=f.firing_id.clone()>
                            <td>{when(f.fired_ms)}</td>
                            <th scope="row">{f.rule_name.clone()}</th>
                            <td>{f.tenant.clone()}</td>
                            <td><span class="muted">{per}" "</span><span data-testid="firing-value">{f.group_value.clone()}</span></td>
                            <td data-testid="firing-events">{f.events.to_string()}" (≥ "{f.threshold.to_string()}")"</td>
                            <td>{window}</td>
                            <td><a href=href data-testid="firing-search">"events in Search"</a></td>
                        </tr>
                    }
                }).collect_view()}
            </tbody>
        </table>
    }
    .into_any()
}

#[component]
fn Deliveries(attempts: Vec<DeliveryAttempt>) -> impl IntoView {
    if attempts.is_empty() {
        return view! { <p class="muted">"No delivery attempts yet."</p> }.into_any();
    }
    view! {
        <table class="alerts-table" data-testid="deliveries">
            <thead>
                <tr><th>"Time (UTC)"</th><th>"Message"</th><th>"Webhook"</th><th>"Attempt"</th><th>"Status"</th><th>"Took"</th><th>"Error"</th></tr>
            </thead>
            <tbody>
                {attempts.into_iter().map(|a| {
                    let class = if a.delivered() { "delivered" } else { "failed" };
                    let status = if a.status == 0 { "—".to_owned() } else { a.status.to_string() };
                    view! {
                        <tr class=class data-testid="delivery">
                            <td>{when(a.at_ms)}</td><td>{a.subject}</td><td>{a.webhook}</td>
                            <td>{a.attempt}</td><td>{status}</td><td>{format!("{} ms", a.duration_ms)}</td>
                            <td>{a.error}</td>
                        </tr>
                    }
                }).collect_view()}
            </tbody>
        </table>
    }
    .into_any()
}

/// The dashboard's Detections panel: firings whose window meets the
/// dashboard's, of its tenants, each linking to its events.
#[component]
pub fn DetectionsPanel(params: Memo<SearchParams>) -> impl IntoView {
    let firings = Resource::new(
        move || params.get(),
        |p| {
            dashboard_detections(
                p.tenant.clone(),
                Some(p.range.param().to_string()),
                p.from.clone(),
                p.to.clone(),
            )
        },
    );
    let body = move || {
        firings.get().map(|answer| match answer {
            Ok(list) => {
                let total = list.len();
                view! {
                    <p class="panel-total"><strong data-testid="panel-total">{total.to_string()}</strong>" firings"</p>
                    <FiringsTable firings=list/>
                }
                .into_any()
            }
            Err(error) => view! { <p class="error" role="alert" data-testid="panel-error">{error.to_string()}</p> }.into_any(),
        })
    };
    view! {
        <article class="panel dash-panel" aria-labelledby="detections-title" data-testid="panel-detections">
            <h2 id="detections-title">"Detections"</h2>
            <p class="muted about">
                "Firings of the detection rules of these tenants whose window meets this range; each links to the events it counted. "
                <a href="/detections">"Manage rules"</a>
            </p>
            <Transition fallback=|| view! { <p class="muted" role="status">"Reading…"</p> }>{body}</Transition>
        </article>
    }
}
