//! The alerts page (`/alerts`, admins only): what is firing, the history of
//! firing and resolved alerts, every webhook delivery attempt, and the
//! rules' thresholds, which admins change here (each change recorded as an
//! admin action in Attest's own trail). Anyone but an admin gets the 403
//! page, and 403 from both server functions: the server refuses below the
//! page, through the same admin gate as the pipeline page.

// The rules form posts one flat field per threshold (it works before the
// WASM loads); the server function that takes them, and the client stub the
// macro makes of it, have one argument each.
#![allow(clippy::too_many_arguments)]

use leptos::prelude::*;

use crate::alerts_model::{AlertsView, DeliveryAttempt};
use crate::search_model::SearchError;
use crate::timefmt::utc_millis;

/// Everything the page shows; 403 for anyone but an admin.
#[server(endpoint = "alerts/view")]
pub async fn read_alerts() -> Result<AlertsView, SearchError> {
    let result = match use_context::<crate::alerts_model::SharedAlerts>() {
        Some(source) => source.0.view().await.map_err(SearchError::from),
        None => Err(SearchError::Forbidden("this page is for admins".into())),
    };
    if let Err(error) = &result {
        crate::pages::search::set_api_status(error.status());
    }
    result
}

/// Saves every rule's threshold at once, as the form sends them (an
/// unchecked box is absent: that rule is off).
#[server(endpoint = "alerts/rules")]
pub async fn save_alert_rules(
    writer_lag_enabled: Option<String>,
    writer_lag_threshold_s: u64,
    writer_lag_window_s: u64,
    kafka_unhealthy_enabled: Option<String>,
    clickhouse_down_enabled: Option<String>,
    parts_near_limit_enabled: Option<String>,
    parts_near_limit_percent: u64,
    dead_letters_growing_enabled: Option<String>,
    dead_letters_growing_window_s: u64,
    spool_not_empty_enabled: Option<String>,
    spool_not_empty_after_s: u64,
    writer_stalled_enabled: Option<String>,
    integrity_problems_enabled: Option<String>,
) -> Result<(), SearchError> {
    use crate::alerts_model::{AfterRule, LagRule, PartsRule, RuleSettings, Toggle, WindowRule};
    let on = |v: &Option<String>| v.is_some();
    let rules = RuleSettings {
        writer_lag: LagRule {
            enabled: on(&writer_lag_enabled),
            threshold_s: writer_lag_threshold_s,
            window_s: writer_lag_window_s,
        },
        kafka_unhealthy: Toggle {
            enabled: on(&kafka_unhealthy_enabled),
        },
        clickhouse_down: Toggle {
            enabled: on(&clickhouse_down_enabled),
        },
        parts_near_limit: PartsRule {
            enabled: on(&parts_near_limit_enabled),
            percent: parts_near_limit_percent,
        },
        dead_letters_growing: WindowRule {
            enabled: on(&dead_letters_growing_enabled),
            window_s: dead_letters_growing_window_s,
        },
        spool_not_empty: AfterRule {
            enabled: on(&spool_not_empty_enabled),
            after_s: spool_not_empty_after_s,
        },
        writer_stalled: Toggle {
            enabled: on(&writer_stalled_enabled),
        },
        integrity_problems: Toggle {
            enabled: on(&integrity_problems_enabled),
        },
    };
    let result = match (
        rules.validate(),
        use_context::<crate::alerts_model::SharedAlerts>(),
    ) {
        (Err(bad), _) => Err(SearchError::BadRequest(bad.to_string())),
        (Ok(()), Some(source)) => source.0.save_rules(rules).await.map_err(SearchError::from),
        (Ok(()), None) => Err(SearchError::Forbidden("this page is for admins".into())),
    };
    if let Err(error) = &result {
        crate::pages::search::set_api_status(error.status());
    }
    result
}

#[component]
pub fn AlertsPage() -> impl IntoView {
    #[cfg(feature = "ssr")]
    {
        let allowed =
            use_context::<crate::alerts_model::SharedAlerts>().is_some_and(|a| a.0.allowed());
        if !allowed {
            if let Some(response) = use_context::<leptos_axum::ResponseOptions>() {
                response.set_status(http::StatusCode::FORBIDDEN);
            }
        }
    }
    let save = ServerAction::<SaveAlertRules>::new();
    let view = Resource::new(move || save.version().get(), |_| read_alerts());
    view! {
        <section class="alerts">
            <Transition fallback=|| view! { <p class="muted">"Reading the alerts…"</p> }>
                {move || {
                    view.get()
                        .map(|answer| match answer {
                            Ok(v) => view! { <Alerts view=v save/> }.into_any(),
                            Err(SearchError::Forbidden(message)) => {
                                view! {
                                    <section class="panel forbidden" data-testid="forbidden">
                                        <h1>"403: for admins only"</h1>
                                        <p>{message}</p>
                                        <p><a href="/search">"Search events"</a></p>
                                    </section>
                                }
                                    .into_any()
                            }
                            Err(error) => {
                                view! {
                                    <section class="panel error" role="alert">
                                        <h1>"Alerts"</h1>
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

fn when(ms: u64) -> String {
    utc_millis(i64::try_from(ms).unwrap_or(i64::MAX))
}

#[component]
fn Alerts(view: AlertsView, save: ServerAction<SaveAlertRules>) -> impl IntoView {
    let AlertsView {
        firing,
        history,
        deliveries,
        rules,
        rules_changed_by,
        rules_changed_ms,
        webhooks,
        elected,
        notice,
    } = view;
    let notice =
        (!notice.is_empty()).then(|| view! { <p class="panel warn" role="status">{notice}</p> });
    let firing_view = if firing.is_empty() {
        view! { <p class="ok" data-testid="nothing-firing">"Nothing is firing."</p> }.into_any()
    } else {
        view! {
            <table class="alerts-table" data-testid="firing">
                <thead><tr><th>"Rule"</th><th>"Since (UTC)"</th><th>"What"</th></tr></thead>
                <tbody>
                    {firing.into_iter().map(|a| view! {
                        <tr class="firing"><td>{a.rule}</td><td>{when(a.since_ms)}</td><td>{a.summary}</td></tr>
                    }).collect_view()}
                </tbody>
            </table>
        }.into_any()
    };
    let history_view = if history.is_empty() {
        view! { <p class="muted">"No alert has fired yet."</p> }.into_any()
    } else {
        view! {
            <table class="alerts-table" data-testid="history">
                <thead><tr><th>"Time (UTC)"</th><th>"Rule"</th><th>"State"</th><th>"What"</th></tr></thead>
                <tbody>
                    {history.into_iter().map(|c| {
                        let class = c.state.clone();
                        view! {
                            <tr class=class><td>{when(c.at_ms)}</td><td>{c.rule}</td><td>{c.state}</td><td>{c.summary}</td></tr>
                        }
                    }).collect_view()}
                </tbody>
            </table>
        }.into_any()
    };
    let hooks = if webhooks.is_empty() {
        "No webhooks are configured ([[alerts.webhooks]]): alerts are recorded here only."
            .to_owned()
    } else {
        format!("Delivered to: {}.", webhooks.join(", "))
    };
    let changed = if rules_changed_by.is_empty() {
        "The configured defaults apply.".to_owned()
    } else {
        format!(
            "Last changed by {rules_changed_by} at {} UTC.",
            when(rules_changed_ms)
        )
    };
    let save_result = move || match save.value().get() {
        Some(Err(error)) => {
            Some(view! { <p class="query-error" role="alert">{error.to_string()}</p> }.into_any())
        }
        Some(Ok(())) => Some(view! { <p class="ok" role="status">"Saved."</p> }.into_any()),
        None => None,
    };
    view! {
        <h1>"Alerts"</h1>
        {notice}
        <p class="muted">
            {if elected { "This server process evaluates the rules. " } else { "Another server process evaluates the rules. " }}
            {hooks}
        </p>
        <section class="panel" aria-labelledby="firing-title">
            <h2 id="firing-title">"Firing now"</h2>
            {firing_view}
        </section>
        <section class="panel" aria-labelledby="rules-title">
            <h2 id="rules-title">"Rules"</h2>
            <p class="muted">{changed}</p>
            <ActionForm action=save attr:class="rules-form" attr:data-testid="rules-form">
                <RuleRow name="writer_lag" label="Writer lag in time, averaged" enabled=rules.writer_lag.enabled>
                    <NumberField name="writer_lag_threshold_s" label="above (s)" value=rules.writer_lag.threshold_s/>
                    <NumberField name="writer_lag_window_s" label="over a window of (s)" value=rules.writer_lag.window_s/>
                </RuleRow>
                <RuleRow name="kafka_unhealthy" label="A broker down or a partition below min.insync.replicas" enabled=rules.kafka_unhealthy.enabled>
                    <span class="muted">"no threshold"</span>
                </RuleRow>
                <RuleRow name="clickhouse_down" label="ClickHouse node down" enabled=rules.clickhouse_down.enabled>
                    <span class="muted">"no threshold"</span>
                </RuleRow>
                <RuleRow name="parts_near_limit" label="Active parts near parts_to_throw_insert" enabled=rules.parts_near_limit.enabled>
                    <NumberField name="parts_near_limit_percent" label="at (% of the limit)" value=rules.parts_near_limit.percent/>
                </RuleRow>
                <RuleRow name="dead_letters_growing" label="Dead letters growing" enabled=rules.dead_letters_growing.enabled>
                    <NumberField name="dead_letters_growing_window_s" label="any new within (s)" value=rules.dead_letters_growing.window_s/>
                </RuleRow>
                <RuleRow name="spool_not_empty" label="Spool not empty" enabled=rules.spool_not_empty.enabled>
                    <NumberField name="spool_not_empty_after_s" label="for longer than (s)" value=rules.spool_not_empty.after_s/>
                </RuleRow>
                <RuleRow name="writer_stalled" label="Writer stalled or not running" enabled=rules.writer_stalled.enabled>
                    <span class="muted">"no threshold"</span>
                </RuleRow>
                <RuleRow name="integrity_problems" label="Stored events or digests changed or missing (integrity check)" enabled=rules.integrity_problems.enabled>
                    <span class="muted">"no threshold"</span>
                </RuleRow>
                <button type="submit">"Save thresholds"</button>
            </ActionForm>
            {save_result}
        </section>
        <section class="panel" aria-labelledby="history-title">
            <h2 id="history-title">"History"</h2>
            {history_view}
        </section>
        <section class="panel" aria-labelledby="deliveries-title">
            <h2 id="deliveries-title">"Webhook deliveries"</h2>
            <Deliveries attempts=deliveries/>
        </section>
    }
}

#[component]
fn RuleRow(
    name: &'static str,
    label: &'static str,
    enabled: bool,
    children: Children,
) -> impl IntoView {
    let id = format!("{name}_enabled");
    let (for_id, field) = (id.clone(), id.clone());
    view! {
        <fieldset class="rule" data-rule=name>
            <legend>{label}</legend>
            <label for=for_id>
                <input type="checkbox" id=id name=field checked=enabled/>
                " on"
            </label>
            {children()}
        </fieldset>
    }
}

#[component]
fn NumberField(name: &'static str, label: &'static str, value: u64) -> impl IntoView {
    view! {
        <label for=name>
            {label}" "
            <input type="number" id=name name=name min="1" required value=value.to_string()/>
        </label>
    }
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
                        <tr class=class>
                            <td>{when(a.at_ms)}</td><td>{a.subject}</td><td>{a.webhook}</td>
                            <td>{a.attempt}</td><td>{status}</td><td>{format!("{} ms", a.duration_ms)}</td>
                            <td>{a.error}</td>
                        </tr>
                    }
                }).collect_view()}
            </tbody>
        </table>
    }.into_any()
}
