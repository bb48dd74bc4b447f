//! One event in full (`/events/:tenant/:id`), with the pivots an
//! investigation takes next: everything by this actor, the history of this
//! resource, the same request, and the events around it. Several different
//! events may have been sent with one id; the page then says so and links
//! each (`?h=`, a prefix of its content hash, names one).

use leptos::prelude::*;
use leptos_router::hooks::{use_params_map, use_query_map};

use crate::query::{and_term, Precision, Timestamp};
use crate::search_model::{EventDetail, SearchError, AROUND_MS, HASH_PREFIX_CHARS, MAX_SAME_ID};
use crate::search_state::SearchParams;
use crate::timefmt::utc_millis;

/// Everything stored about one event of one tenant and the others sent with
/// its id; `at` (its `occurred_at`) and `h` (a prefix of its content hash)
/// say which one to show.
#[server(endpoint = "search/event")]
pub async fn get_event(
    tenant: String,
    id: String,
    at: Option<i64>,
    h: Option<String>,
) -> Result<Option<EventDetail>, SearchError> {
    use crate::search_model::is_hash_prefix;
    use crate::store::SharedStore;
    let result = match (use_context::<SharedStore>(), h.as_deref()) {
        (_, Some(h)) if !is_hash_prefix(h) => Err(SearchError::BadRequest(
            "h must be lower-case hexadecimal digits of a content hash".to_string(),
        )),
        (None, _) => Err(SearchError::Unavailable),
        (Some(store), h) => store
            .0
            .event_detail(&tenant, &id, at, h)
            .await
            .map_err(SearchError::from),
    };
    if let Err(error) = &result {
        super::search::set_api_status(error.status());
    }
    result
}

/// The event's seal, checked now against its digest and the published keys
/// (docs/INTEGRITY.md, section 13). Asked for apart from the event, so the
/// fields show while the leaves are read and hashed.
#[server(endpoint = "search/event/seal")]
pub async fn get_event_seal(
    tenant: String,
    id: String,
    at: Option<i64>,
    h: Option<String>,
) -> Result<Option<crate::integrity_model::EventSeal>, SearchError> {
    use crate::integrity_model::SharedSeals;
    use crate::search_model::is_hash_prefix;
    let result = match (use_context::<SharedSeals>(), h.as_deref()) {
        (_, Some(h)) if !is_hash_prefix(h) => Err(SearchError::BadRequest(
            "h must be lower-case hexadecimal digits of a content hash".to_string(),
        )),
        (None, _) => Err(SearchError::Unavailable),
        (Some(seals), h) => seals
            .0
            .event_seal(&tenant, &id, at, h)
            .await
            .map_err(SearchError::from),
    };
    if let Err(error) = &result {
        super::search::set_api_status(error.status());
    }
    result
}

#[component]
pub fn EventDetailPage() -> impl IntoView {
    let path = use_params_map();
    let query = use_query_map();
    let key = Memo::new(move |_| {
        let path = path.read();
        let query = query.read();
        let at = query.get("at").and_then(|v| v.parse::<i64>().ok());
        (
            path.get("tenant").unwrap_or_default(),
            path.get("id").unwrap_or_default(),
            at,
            query.get("h").filter(|h| !h.is_empty()),
        )
    });
    // The search the event was found by: its links search the same window.
    let context = Memo::new(move |_| {
        let map = query.read();
        SearchParams::from_lookup(|k| map.get(k))
    });
    let event = Resource::new(
        move || key.get(),
        |(tenant, id, at, h)| get_event(tenant, id, at, h),
    );
    let seal = Resource::new(
        move || key.get(),
        |(tenant, id, at, h)| get_event_seal(tenant, id, at, h),
    );
    view! {
        <section class="event-detail">
            <p><a href=move || context.get().href() data-testid="back-to-search">"← Back to the search"</a></p>
            <Transition fallback=move || view! { <p class="muted">"Loading the event…"</p> }>
                {move || event.get().map(|answer| match answer {
                    Ok(Some(event)) => view! { <Detail event context=context.get() seal/> }.into_any(),
                    Ok(None) => {
                        let (tenant, id, _, _) = key.get();
                        view! {
                            <p class="empty" data-testid="event-missing">
                                {format!("No event {id} in tenant {tenant}.")}
                            </p>
                        }.into_any()
                    }
                    Err(error) => view! { <super::search_results::SearchErrorView error/> }.into_any(),
                })}
            </Transition>
        </section>
    }
}

#[component]
fn Detail(
    event: EventDetail,
    context: SearchParams,
    seal: Resource<Result<Option<crate::integrity_model::EventSeal>, SearchError>>,
) -> impl IntoView {
    let tenant_scope = SearchParams {
        tenant: Some(event.tenant_id.clone()),
        cursor: None,
        ..context.clone()
    };
    let by_actor = tenant_scope
        .with_q(and_term("", "actor", &event.actor_id, false))
        .href();
    let resource = (!event.resource_type.is_empty() || !event.resource_id.is_empty()).then(|| {
        let q = and_term("", "resource.type", &event.resource_type, false);
        tenant_scope
            .with_q(and_term(&q, "resource", &event.resource_id, false))
            .href()
    });
    let request = (!event.request_id.is_empty()).then(|| {
        tenant_scope
            .with_q(and_term("", "request_id", &event.request_id, false))
            .href()
    });
    let from_ip = (!event.actor_ip.is_empty()).then(|| {
        tenant_scope
            .with_q(and_term("", "actor.ip", &event.actor_ip, false))
            .href()
    });
    // The anchor and the window the analyst was on go along, so Search
    // marks the event and "Back" gives that window back.
    let around = context
        .around(
            &event.tenant_id,
            &event.event_id,
            event.occurred_at,
            event.content_hash.get(..HASH_PREFIX_CHARS),
            AROUND_MS,
        )
        .href();
    let delay = received_delay(event.occurred_at, event.received_at);
    let proof_href = proof_download_href(&event);
    let raw = raw_json(&event);
    let received_at = event.received_at;
    let same_id = (event.same_id.len() > 1)
        .then(|| view! { <SameIdWarning event=event.clone() context=context.clone()/> });
    let outcome_class = format!("outcome outcome-{}", event.outcome);
    let row = |label: &'static str, value: String| {
        let shown = if value.is_empty() {
            "—".to_string()
        } else {
            value
        };
        view! { <dt>{label}</dt><dd>{shown}</dd> }
    };
    let metadata = if event.metadata.is_empty() {
        view! { <p class="muted">"No metadata."</p> }.into_any()
    } else {
        view! {
            <table class="events-table metadata" data-testid="event-metadata">
                <thead><tr><th scope="col">"Key"</th><th scope="col">"Value"</th></tr></thead>
                <tbody>
                    {event.metadata.iter().map(|(k, v)| view! { <tr><td class="mono">{k.clone()}</td><td class="pre">{v.clone()}</td></tr> }).collect_view()}
                </tbody>
            </table>
        }.into_any()
    };
    view! {
        <h1 class="detail-title" data-testid="event-title">
            <span class="mono">{event.action.clone()}</span>" "
            <span class=outcome_class>{event.outcome.clone()}</span>
            <span class="muted">{format!(" · {} UTC", utc_millis(event.occurred_at))}</span>
        </h1>
        {same_id}
        <nav class="pivots" aria-label="Related searches">
            <a href=by_actor data-testid="pivot-actor">"Everything by this actor"</a>
            {resource.map(|href| view! { <a href=href data-testid="pivot-resource">"History of this resource"</a> })}
            {request.map(|href| view! { <a href=href data-testid="pivot-request">"This request across services"</a> })}
            {from_ip.map(|href| view! { <a href=href data-testid="pivot-ip">"Everything from this IP"</a> })}
            <a href=around data-testid="pivot-around">"Events around this one (±5 min)"</a>
        </nav>
        <div class="detail-grid">
            <section class="panel-lite">
                <h2>"Who, what, where"</h2>
                <dl class="fields" data-testid="event-fields">
                    {row("Event id", event.event_id.clone())}
                    {row("Tenant", event.tenant_id.clone())}
                    {row("Occurred (UTC)", utc_millis(event.occurred_at))}
                    {row("Received (UTC)", format!("{} ({delay})", utc_millis(event.received_at)))}
                    {row("Category", event.category.clone())}
                    {row("Action", event.action.clone())}
                    {row("Outcome", event.outcome.clone())}
                    {row("Actor", event.actor_id.clone())}
                    {row("Actor type", event.actor_type.clone())}
                    {row("Actor IP", event.actor_ip.clone())}
                    {row("User agent", event.actor_user_agent.clone())}
                    {row("Resource type", event.resource_type.clone())}
                    {row("Resource id", event.resource_id.clone())}
                    {row("Source service", event.source_service.clone())}
                    {row("Request id", event.request_id.clone())}
                </dl>
            </section>
            <section class="panel-lite">
                <h2>"Metadata"</h2>
                {metadata}
                <h2>"Provenance"</h2>
                <dl class="fields" data-testid="event-provenance">
                    {row("Schema id", event.schema_id.to_string())}
                    {row("Kafka partition", event.kafka_partition.to_string())}
                    {row("Kafka offset", event.kafka_offset.to_string())}
                    {row("Content hash", event.content_hash.clone())}
                </dl>
                <h2 id="integrity">"Integrity"</h2>
                <Suspense fallback=move || view! { <p class="muted" data-testid="seal-checking">"Checking the seal…"</p> }>
                    {move || seal.get().map(|answer| match answer {
                        Ok(Some(found)) => view! { <SealView found received_at proof_href=proof_href.clone()/> }.into_any(),
                        Ok(None) => view! { <p class="muted">"The event is gone."</p> }.into_any(),
                        Err(error) => view! {
                            <p class="state bad" role="alert" data-testid="seal-error">
                                {format!("The seal could not be checked: {error}")}
                            </p>
                        }.into_any(),
                    })}
                </Suspense>
            </section>
        </div>
        <RawEvent raw/>
    }
}

/// The verdict on the event's seal, what was checked, and where the proof
/// can be taken away to check offline.
#[component]
fn SealView(
    found: crate::integrity_model::EventSeal,
    received_at: i64,
    proof_href: String,
) -> impl IntoView {
    use crate::integrity_model::SealVerdict;
    let verdict = found.verdict;
    let class = match &verdict {
        SealVerdict::Verified { .. } | SealVerdict::Redacted { .. } => "state ok",
        v if v.failed() => "state bad",
        _ => "state",
    };
    let explanation = verdict.explanation(found.checked_at.saturating_sub(received_at));
    let place = verdict.place().cloned().map(|p| {
        view! {
            <dl class="fields" data-testid="seal-place">
                <dt>"Digest"</dt><dd class="mono" title=p.digest_hash.clone()>{crate::integrity_model::short(&p.digest_hash).to_owned()}"…"</dd>
                <dt>"Chain"</dt><dd class="mono">{format!("{} partition {}", p.topic, p.partition)}</dd>
                <dt>"Offsets sealed"</dt><dd>{format!("{}–{} ({} events)", p.first_offset, p.last_offset, p.row_count)}</dd>
                <dt>"Sealed (UTC)"</dt><dd>{utc_millis(p.sealed_at)}</dd>
                <dt>"Signing key"</dt><dd class="mono">{p.key_id}</dd>
            </dl>
        }
    });
    let redaction = verdict.redaction().cloned().map(|r| {
        view! {
            <dl class="fields" data-testid="seal-redaction">
                <dt>"Redacted fields"</dt><dd class="mono">{r.fields.join(", ")}</dd>
                <dt>"Request"</dt><dd class="mono">{r.request_id}</dd>
                <dt>"Requested by"</dt><dd>{r.requested_by}</dd>
                <dt>"Approved by"</dt><dd>{r.approved_by}</dd>
                <dt>"Executed (UTC)"</dt><dd>{utc_millis(r.executed_at)}</dd>
                <dt>"Reason"</dt><dd>{r.reason}</dd>
            </dl>
        }
    });
    let state = match &verdict {
        SealVerdict::Verified { .. } => "verified",
        SealVerdict::Redacted { .. } => "redacted",
        SealVerdict::Unsealed { .. } => "unsealed",
        _ => "failed",
    };
    view! {
        <div data-testid="seal" data-state=state>
            <p class=class role=verdict.failed().then_some("alert")>{verdict.headline()}</p>
            <p data-testid="seal-explanation">{explanation}</p>
            {redaction}
            {place}
            <p class="muted">
                {format!("Checked {} UTC. ", utc_millis(found.checked_at))}
                "The digest's place in its chain is checked by the scheduled integrity check. "
                <a href=proof_href download="" data-testid="seal-proof">"Download the event with its proof"</a>
                " (a bundle `attest verify` checks offline)."
            </p>
        </div>
    }
}

/// The event as JSON, to copy into a ticket or compare with what the
/// sender logged.
#[component]
fn RawEvent(raw: String) -> impl IntoView {
    let copied = RwSignal::new(None::<bool>);
    let text = StoredValue::new(raw.clone());
    let copy = move |_| {
        #[cfg(feature = "hydrate")]
        {
            let promise =
                web_sys::window().map(|w| w.navigator().clipboard().write_text(&text.get_value()));
            match promise {
                Some(p) => leptos::task::spawn_local(async move {
                    let done = wasm_bindgen_futures::JsFuture::from(p).await.is_ok();
                    copied.set(Some(done));
                }),
                None => copied.set(Some(false)),
            }
        }
        #[cfg(not(feature = "hydrate"))]
        let _ = (text, copied);
    };
    view! {
        <section class="panel-lite raw-event">
            <h2>"Raw event (JSON)"</h2>
            <p>
                <button type="button" on:click=copy data-testid="copy-raw">"Copy JSON"</button>
                <span role="status" aria-live="polite" data-testid="copy-status">
                    {move || match copied.get() {
                        Some(true) => " Copied.",
                        Some(false) => " The browser refused the clipboard: select the text below and copy it.",
                        None => "",
                    }}
                </span>
            </p>
            <pre class="raw-json" tabindex="0" data-testid="raw-json">{raw}</pre>
        </section>
    }
}

/// The event in the shape the ingest API takes (what the sender said),
/// with what Attest recorded about it under `"attest"`. Empty optional
/// fields are left out, as a sender leaves them out.
pub fn raw_json(event: &EventDetail) -> String {
    use serde_json::{json, Map, Value};
    let mut actor = Map::new();
    actor.insert("id".into(), json!(event.actor_id));
    for (key, value) in [
        ("type", &event.actor_type),
        ("ip", &event.actor_ip),
        ("user_agent", &event.actor_user_agent),
    ] {
        if !value.is_empty() {
            actor.insert(key.into(), json!(value));
        }
    }
    let mut out = Map::new();
    out.insert("event_id".into(), json!(event.event_id));
    out.insert("tenant_id".into(), json!(event.tenant_id));
    out.insert(
        "occurred_at".into(),
        json!(rfc3339_millis(event.occurred_at)),
    );
    out.insert("category".into(), json!(event.category));
    out.insert("action".into(), json!(event.action));
    out.insert("outcome".into(), json!(event.outcome));
    out.insert("actor".into(), Value::Object(actor));
    if !event.resource_type.is_empty() || !event.resource_id.is_empty() {
        out.insert(
            "resource".into(),
            json!({"type": event.resource_type, "id": event.resource_id}),
        );
    }
    out.insert("source_service".into(), json!(event.source_service));
    if !event.request_id.is_empty() {
        out.insert("request_id".into(), json!(event.request_id));
    }
    let metadata: Map<String, Value> = event
        .metadata
        .iter()
        .map(|(k, v)| (k.clone(), json!(v)))
        .collect();
    out.insert("metadata".into(), Value::Object(metadata));
    out.insert(
        "attest".into(),
        json!({
            "received_at": rfc3339_millis(event.received_at),
            "schema_id": event.schema_id,
            "kafka_partition": event.kafka_partition,
            "kafka_offset": event.kafka_offset,
            "content_hash": event.content_hash,
        }),
    );
    serde_json::to_string_pretty(&Value::Object(out)).unwrap_or_default()
}

/// `2026-11-23T10:00:00.000Z`.
fn rfc3339_millis(ms: i64) -> String {
    let text = utc_millis(ms);
    format!("{}Z", text.replacen(' ', "T", 1))
}

/// How long after it happened Attest received the event, in words; a
/// sender whose clock runs ahead makes it negative, which the page says.
pub fn received_delay(occurred_at: i64, received_at: i64) -> String {
    use crate::pipeline_model::human_duration_ms;
    let delay = received_at.saturating_sub(occurred_at);
    if delay >= 0 {
        format!("{} later", human_duration_ms(delay))
    } else {
        format!(
            "{} before it occurred: the sender's clock is ahead",
            human_duration_ms(delay.saturating_neg())
        )
    }
}

/// The export of this one event with its proof: a bundle that
/// `attest verify` checks offline. Its window is the event's second, so
/// another event sent with the same id at another time is not in it.
fn proof_download_href(event: &EventDetail) -> String {
    let stamp = |ms: i64| {
        Timestamp {
            ms,
            precision: Precision::Millis,
        }
        .to_string()
    };
    let params = SearchParams {
        q: and_term("", "event_id", &event.event_id, false),
        tenant: Some(event.tenant_id.clone()),
        from: Some(stamp(event.occurred_at)),
        to: Some(stamp(event.occurred_at.saturating_add(1))),
        ..SearchParams::default()
    };
    let mut pairs = vec![
        ("format", "ndjson".to_string()),
        ("proofs", "true".to_string()),
    ];
    pairs.extend(params.pairs().into_iter().filter(|(k, _)| *k != "cols"));
    format!(
        "/api/v1/export{}",
        crate::search_state::query_string(&pairs)
    )
}

/// The warning's headline; the list stops at [`MAX_SAME_ID`].
fn same_id_count(listed: usize) -> String {
    if listed >= MAX_SAME_ID {
        format!("{listed} or more different events were sent with this id.")
    } else {
        format!("{listed} different events were sent with this id.")
    }
}

/// Several different events were sent with this id: Attest keeps them all
/// (docs/DESIGN.md, "Event identity"), and the analyst must know which one
/// the page shows and that the others exist.
#[component]
fn SameIdWarning(event: EventDetail, context: SearchParams) -> impl IntoView {
    let items = event
        .same_id
        .iter()
        .map(|other| {
            let href = super::search_results::event_href(
                &event.tenant_id,
                &event.event_id,
                other.occurred_at,
                &other.content_hash,
                &context,
            );
            let shown = other.content_hash == event.content_hash;
            let text = format!(
                "{} by {} from {}, occurred {} UTC, received {} UTC",
                other.action,
                other.actor_id,
                other.source_service,
                utc_millis(other.occurred_at),
                utc_millis(other.received_at)
            );
            view! {
                <li data-testid="same-id-event" data-content-hash=other.content_hash.clone()>
                    <a href=href>{text}</a>
                    {shown.then(|| view! { <strong>" (shown here)"</strong> })}
                </li>
            }
        })
        .collect_view();
    view! {
        <div class="notice" role="alert" data-testid="same-id-warning">
            <p>
                <strong>{same_id_count(event.same_id.len())}</strong>
                " Attest keeps every one of them: a later event never replaces an earlier one. \
                 Check which service sent each; this page shows the one marked below."
            </p>
            <ul>{items}</ul>
        </div>
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event() -> EventDetail {
        EventDetail {
            event_id: "e-1".into(),
            tenant_id: "acme".into(),
            occurred_at: 1_795_428_000_000,
            received_at: 1_795_428_000_250,
            category: "authentication".into(),
            action: "user.login".into(),
            outcome: "success".into(),
            actor_id: "alice".into(),
            actor_type: "user".into(),
            actor_ip: "203.0.113.7".into(),
            actor_user_agent: String::new(),
            resource_type: String::new(),
            resource_id: String::new(),
            source_service: "sso".into(),
            request_id: String::new(),
            metadata: vec![("mfa".into(), "totp".into()), ("a\"b".into(), "<x>".into())],
            schema_id: 1,
            kafka_partition: 2,
            kafka_offset: 77,
            content_hash: "ab".repeat(32),
            same_id: Vec::new(),
        }
    }

    #[test]
    fn the_delay_reads_in_words_either_way() {
        assert_eq!(received_delay(0, 250), "250 ms later");
        let five_days_14h = (5 * 86_400 + 14 * 3_600) * 1_000;
        assert_eq!(received_delay(0, five_days_14h), "5 d 14 h later");
        assert_eq!(
            received_delay(3_000, 0),
            "3 s before it occurred: the sender's clock is ahead"
        );
        assert_eq!(
            received_delay(i64::MIN, i64::MAX),
            "106751991167 d 07 h later"
        );
    }

    #[test]
    fn the_raw_event_is_the_ingest_shape_with_what_attest_recorded() {
        let text = raw_json(&event());
        let v: serde_json::Value = serde_json::from_str(&text).expect(&text);
        assert_eq!(v["occurred_at"], "2026-11-23T10:00:00.000Z");
        assert_eq!(
            v["actor"],
            serde_json::json!({"id": "alice", "type": "user", "ip": "203.0.113.7"})
        );
        assert!(
            v.get("resource").is_none() && v.get("request_id").is_none(),
            "{text}"
        );
        assert_eq!(v["metadata"]["a\"b"], "<x>");
        assert_eq!(v["attest"]["kafka_offset"], 77);
        assert_eq!(v["attest"]["received_at"], "2026-11-23T10:00:00.250Z");
    }

    #[test]
    fn the_proof_link_exports_this_event_alone_with_proofs() {
        let href = proof_download_href(&event());
        assert!(
            href.starts_with("/api/v1/export?format=ndjson&proofs=true&"),
            "{href}"
        );
        let params = SearchParams::from_lookup(|k| {
            href.split(['?', '&'])
                .filter_map(|pair| pair.split_once('='))
                .find(|(key, _)| *key == k)
                .map(|(_, v)| crate::search_state::decode_component(v))
        });
        assert_eq!(params.tenant.as_deref(), Some("acme"));
        assert_eq!(params.q, "event_id:\"e-1\"");
        assert_eq!(params.from.as_deref(), Some("2026-11-23T10:00:00.000"));
        assert_eq!(params.to.as_deref(), Some("2026-11-23T10:00:00.001"));
    }

    #[test]
    fn the_warning_says_when_the_list_is_cut() {
        assert_eq!(
            same_id_count(2),
            "2 different events were sent with this id."
        );
        assert_eq!(
            same_id_count(MAX_SAME_ID),
            "100 or more different events were sent with this id."
        );
    }
}
