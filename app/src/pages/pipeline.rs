//! The pipeline page (`/pipeline`, admins only): is every accepted event on
//! its way to ClickHouse, how far behind is the writer, which node is sick.
//! Rendered on the server from one snapshot, then kept current by the live
//! stream `/api/pipeline/events` (server-sent events, a snapshot every few
//! seconds) without a reload. Anyone but an admin gets a 403 page and no
//! figures: the server refuses the data below the page.

use leptos::prelude::*;

use crate::pages::pipeline_procs::ProcessesPanel;
use crate::pages::pipeline_trends::TrendsPanel;
use crate::pipeline_model::{
    human_bytes, human_duration_ms, ClickHouseHealth, DeadLettersHealth, IngestHealth, KafkaHealth,
    PipelineSnapshot, SpoolHealth, TopicHealth, WriterHealth,
};
use crate::search_model::SearchError;
use crate::timefmt::utc_millis;

/// The live stream the page follows.
pub const EVENTS_PATH: &str = "/api/pipeline/events";

/// The pipeline's figures now; 403 for anyone but an admin.
#[server(endpoint = "pipeline/snapshot")]
pub async fn read_pipeline() -> Result<PipelineSnapshot, SearchError> {
    let result = match use_context::<crate::store::SharedPipeline>() {
        Some(source) => source.0.snapshot().await.map_err(SearchError::from),
        // Only the console's own router provides it; without it, nothing.
        None => Err(SearchError::Forbidden("this page is for admins".into())),
    };
    if let Err(error) = &result {
        crate::pages::search::set_api_status(error.status());
    }
    result
}

#[component]
pub fn PipelinePage() -> impl IntoView {
    // The status goes out before anything streams, so it is decided here,
    // from the same gate that refuses the data.
    #[cfg(feature = "ssr")]
    {
        let allowed = use_context::<crate::store::SharedPipeline>().is_some_and(|p| p.0.allowed());
        if !allowed {
            if let Some(response) = use_context::<leptos_axum::ResponseOptions>() {
                response.set_status(http::StatusCode::FORBIDDEN);
            }
        }
    }
    let first = Resource::new(|| (), |_| read_pipeline());
    let live = RwSignal::new(None::<PipelineSnapshot>);
    let connected = RwSignal::new(false);
    follow_live(first, live, connected);

    view! {
        <section class="pipeline">
            <Suspense fallback=|| view! { <p class="muted">"Reading the pipeline…"</p> }>
                {move || {
                    first
                        .get()
                        .map(|answer| match (answer, live.get()) {
                            (Ok(_), Some(newer)) | (Ok(newer), None) => {
                                view! { <Dashboard snapshot=newer connected/> }.into_any()
                            }
                            (Err(SearchError::Forbidden(message)), _) => {
                                view! { <Forbidden message/> }.into_any()
                            }
                            (Err(error), _) => {
                                view! {
                                    <section class="panel error" role="alert">
                                        <h1>"Pipeline"</h1>
                                        <p>{error.to_string()}</p>
                                    </section>
                                }
                                    .into_any()
                            }
                        })
                }}
            </Suspense>
            // Apart from the live figures: they re-render every few
            // seconds, the charts only when their window changes.
            <Suspense fallback=|| ()>
                {move || {
                    first
                        .get()
                        .map(|answer| answer.is_ok().then(|| view! { <TrendsPanel/> }))
                }}
            </Suspense>
        </section>
    }
}

/// Opens the live stream once the first snapshot showed the viewer is an
/// admin, and closes it when the page goes away (the browser would
/// otherwise reconnect to it forever).
#[cfg(feature = "hydrate")]
fn follow_live(
    first: Resource<Result<PipelineSnapshot, SearchError>>,
    live: RwSignal<Option<PipelineSnapshot>>,
    connected: RwSignal<bool>,
) {
    use wasm_bindgen::{closure::Closure, JsCast};

    let source = StoredValue::new_local(None::<web_sys::EventSource>);
    Effect::new(move |_| {
        let admin = matches!(first.get(), Some(Ok(_)));
        if !admin || source.with_value(Option::is_some) {
            return;
        }
        let Ok(stream) = web_sys::EventSource::new(EVENTS_PATH) else {
            return;
        };
        let on_snapshot = Closure::<dyn FnMut(web_sys::MessageEvent)>::new(
            move |event: web_sys::MessageEvent| {
                let parsed = event
                    .data()
                    .as_string()
                    .and_then(|text| serde_json::from_str::<PipelineSnapshot>(&text).ok());
                if let Some(snapshot) = parsed {
                    live.set(Some(snapshot));
                    connected.set(true);
                }
            },
        );
        let on_error = Closure::<dyn FnMut(web_sys::Event)>::new(move |_: web_sys::Event| {
            // EventSource reconnects by itself; until then the figures are
            // marked as not live.
            connected.set(false);
        });
        let _ = stream
            .add_event_listener_with_callback("snapshot", on_snapshot.as_ref().unchecked_ref());
        stream.set_onerror(Some(on_error.as_ref().unchecked_ref()));
        // They live as long as the stream; both are dropped with the page.
        on_snapshot.forget();
        on_error.forget();
        source.set_value(Some(stream));
    });
    on_cleanup(move || {
        source.try_with_value(|s| {
            if let Some(stream) = s {
                stream.close();
            }
        });
    });
}

#[cfg(not(feature = "hydrate"))]
fn follow_live(
    _first: Resource<Result<PipelineSnapshot, SearchError>>,
    _live: RwSignal<Option<PipelineSnapshot>>,
    _connected: RwSignal<bool>,
) {
}

#[component]
fn Forbidden(message: String) -> impl IntoView {
    view! {
        <section class="panel forbidden" data-testid="forbidden">
            <h1>"403: for admins only"</h1>
            <p>{message}</p>
            <p><a href="/search">"Search events"</a></p>
        </section>
    }
}

#[component]
fn Dashboard(snapshot: PipelineSnapshot, connected: RwSignal<bool>) -> impl IntoView {
    let PipelineSnapshot {
        taken_at_ms,
        collect_ms,
        kafka,
        writer,
        spool,
        ingest,
        clickhouse,
        nodes,
        processes,
        dead_letters,
    } = snapshot;
    view! {
        <div class="toolbar">
            <h1>"Pipeline"</h1>
            <p class="muted" data-testid="pipeline-updated" data-taken-at=taken_at_ms.to_string()>
                "As of "{utc_millis(taken_at_ms)}" ("{collect_ms}" ms to read) · "
                {move || if connected.get() { "live" } else { "not live; showing the last figures" }}
                " · "<a href="/dead-letters" data-testid="dead-letters-link">"Dead-letter inbox"</a>
            </p>
        </div>
        <div class="pipeline-grid">
            <WriterPanel writer spool/>
            <DeadLettersPanel dead_letters/>
            <IngestPanel ingest/>
            <ClickHousePanel clickhouse/>
        </div>
        <ProcessesPanel processes taken_at_ms/>
        <NodesPanel nodes/>
        <KafkaPanel kafka taken_at_ms/>
    }
}

fn state_class(ok: bool) -> &'static str {
    if ok {
        "state ok"
    } else {
        "state bad"
    }
}

#[component]
fn WriterPanel(writer: WriterHealth, spool: SpoolHealth) -> impl IntoView {
    let last = writer
        .last_insert_ms
        .map_or_else(|| "none yet".to_owned(), utc_millis);
    view! {
        <section class="panel" data-testid="writer">
            <h2>"Writer"</h2>
            {if writer.in_this_process {
                view! {
                    <p class=state_class(writer.ok) data-testid="writer-state">{writer.state}</p>
                    <dl class="figures">
                        <dt>"Last insert"</dt>
                        <dd>{last}</dd>
                        <dt>"Rows written"</dt>
                        <dd>{writer.rows_written}</dd>
                    </dl>
                }
                    .into_any()
            } else {
                view! {
                    <p class="muted">{writer.state}</p>
                }
                    .into_any()
            }}
            <h2>"Spool"</h2>
            <dl class="figures">
                <dt>"Events waiting for the broker"</dt>
                <dd data-testid="spool-events">{spool.pending_events}</dd>
                <dt>"Bytes"</dt>
                <dd>{human_bytes(u64::try_from(spool.pending_bytes).unwrap_or(0))}</dd>
                <dt>"Oldest waiting"</dt>
                <dd data-testid="spool-oldest">
                    {spool.oldest_age_ms.map_or_else(|| "nothing waits".to_owned(), human_duration_ms)}
                </dd>
            </dl>
        </section>
    }
}

/// How many dead letters wait for an admin, beside the writer that set
/// them aside: a warning while any wait, with the way to the inbox.
#[component]
fn DeadLettersPanel(dead_letters: DeadLettersHealth) -> impl IntoView {
    let summary = dead_letters.summary();
    let waiting = dead_letters.waiting;
    let class = match waiting {
        Some(0) => "state ok",
        Some(_) => "state warn",
        None => "state bad",
    };
    let oldest = dead_letters.oldest_age_ms.map(|ms| {
        view! {
            <dt>"Oldest waiting"</dt>
            <dd data-testid="dead-letters-oldest">{human_duration_ms(ms)}</dd>
        }
    });
    view! {
        <section
            class="panel"
            data-testid="dead-letters"
            data-waiting=waiting.map_or_else(String::new, |n| n.to_string())
        >
            <h2>"Dead letters"</h2>
            <p class=class data-testid="dead-letters-waiting">{summary}</p>
            <Problems problems=dead_letters.problems/>
            <dl class="figures">
                <dt>"Topic"</dt>
                <dd><code>{dead_letters.topic}</code></dd>
                {oldest}
            </dl>
            <p><a href="/dead-letters" data-testid="dead-letters-inbox">"Open the dead-letter inbox"</a></p>
        </section>
    }
}

/// A latency quantile, or why there is none.
fn latency(ms: Option<f64>) -> String {
    ms.map_or_else(|| "no requests".to_owned(), |ms| format!("≤ {ms:.0} ms"))
}

#[component]
fn IngestPanel(ingest: IngestHealth) -> impl IntoView {
    let IngestHealth {
        window_ms,
        accepted_per_min,
        rejected_per_min,
        busy,
        unavailable,
        p50_ms,
        p99_ms,
    } = ingest;
    view! {
        <section class="panel" data-testid="ingest">
            <h2>"Ingest " <span class="muted">"this process, last "{human_duration_ms(window_ms)}</span></h2>
            <dl class="figures">
                <dt>"Accepted per minute"</dt>
                <dd data-testid="ingest-accepted">{format!("{accepted_per_min:.0}")}</dd>
                <dt>"Rejected per minute"</dt>
                <dd data-testid="ingest-rejected">{format!("{rejected_per_min:.0}")}</dd>
                <dt>"Refused 429 (busy)"</dt>
                <dd data-testid="ingest-429">{busy}</dd>
                <dt>"Answered 503 (nothing stored)"</dt>
                <dd data-testid="ingest-503">{unavailable}</dd>
                <dt>"Latency p50"</dt>
                <dd data-testid="ingest-p50">{latency(p50_ms)}</dd>
                <dt>"Latency p99"</dt>
                <dd data-testid="ingest-p99">{latency(p99_ms)}</dd>
            </dl>
        </section>
    }
}

/// Every configured ClickHouse node side by side, and which one the
/// console reads from.
#[component]
fn NodesPanel(nodes: Vec<ClickHouseHealth>) -> impl IntoView {
    view! {
        <section class="panel" data-testid="nodes">
            <h2>"ClickHouse nodes"</h2>
            <table class="compact">
                <thead>
                    <tr>
                        <th>"Node"</th>
                        <th>"State"</th>
                        <th>"Reads"</th>
                        <th>"Version"</th>
                        <th>"Uptime"</th>
                        <th>"Read probe"</th>
                        <th>"Most parts in a partition"</th>
                        <th>"Merges"</th>
                        <th>"Free disk"</th>
                        <th>"Replication"</th>
                    </tr>
                </thead>
                <tbody>
                    {nodes.into_iter().map(|n| view! { <NodeRow n/> }).collect_view()}
                </tbody>
            </table>
        </section>
    }
}

#[component]
fn NodeRow(n: ClickHouseHealth) -> impl IntoView {
    let parts = n
        .partitions
        .iter()
        .map(|p| p.active_parts)
        .max()
        .unwrap_or(0);
    let near = n.partitions.iter().any(|p| p.near_limit);
    let limit = n
        .parts_to_throw_insert
        .map_or_else(|| "?".to_owned(), |l| l.to_string());
    let reads = if n.serves_reads {
        "serves reads"
    } else if n.in_rotation {
        "standby"
    } else {
        "out of rotation"
    };
    let disk = match &n.disks {
        None => "not reported".to_owned(),
        Some(disks) => disks
            .iter()
            .map(|d| human_bytes(d.free_bytes))
            .collect::<Vec<_>>()
            .join(", "),
    };
    let replication = match (n.replication_queue, n.replication_delay_s) {
        (Some(queue), Some(delay)) => format!("{queue} queued, {delay} s behind"),
        _ => "no replicated tables".to_owned(),
    };
    let why = n.problems.join("; ");
    let node = n.node.clone();
    view! {
        <tr
            data-testid="node"
            data-node=node
            data-up=n.up.to_string()
            data-serves-reads=n.serves_reads.to_string()
            class:bad=!n.up
            class:warn=near
        >
            <td><code>{n.node}</code></td>
            <td class=state_class(n.up) title=why>{if n.up { "up" } else { "down" }}</td>
            <td>{reads}</td>
            <td>{n.version}</td>
            <td>{human_duration_ms(i64::try_from(n.uptime_s.saturating_mul(1000)).unwrap_or(i64::MAX))}</td>
            <td>{n.read_latency_ms.map_or_else(|| "no answer".to_owned(), |ms| format!("{ms} ms"))}</td>
            <td>{format!("{parts} of {limit}")}</td>
            <td>{n.merges_running.map_or_else(|| "?".to_owned(), |m| m.to_string())}</td>
            <td>{disk}</td>
            <td>{replication}</td>
        </tr>
    }
}

#[component]
fn ClickHousePanel(clickhouse: ClickHouseHealth) -> impl IntoView {
    let ClickHouseHealth {
        node,
        up,
        problems,
        version,
        uptime_s,
        read_latency_ms,
        parts_to_throw_insert,
        partitions,
        merges_running,
        disks,
        ..
    } = clickhouse;
    let limit = parts_to_throw_insert.map_or_else(|| "unknown".to_owned(), |l| l.to_string());
    view! {
        <section class="panel" data-testid="clickhouse">
            <h2>"ClickHouse " <span class="muted">{node}</span></h2>
            <p class=state_class(up) data-testid="clickhouse-state">
                {if up { "up" } else { "down" }}
            </p>
            <Problems problems/>
            <dl class="figures">
                <dt>"Version"</dt>
                <dd>{version}</dd>
                <dt>"Uptime"</dt>
                <dd>{human_duration_ms(i64::try_from(uptime_s.saturating_mul(1000)).unwrap_or(i64::MAX))}</dd>
                <dt>"Read latency"</dt>
                <dd>{read_latency_ms.map_or_else(|| "no answer".to_owned(), |ms| format!("{ms} ms"))}</dd>
                <dt>"Merges running"</dt>
                <dd>{merges_running.map_or_else(|| "unknown".to_owned(), |m| m.to_string())}</dd>
                <dt>"Free disk"</dt>
                <dd>
                    {match disks {
                        None => "not reported by this ClickHouse version".to_owned(),
                        Some(disks) => disks
                            .iter()
                            .map(|d| format!("{}: {} of {}", d.name, human_bytes(d.free_bytes), human_bytes(d.total_bytes)))
                            .collect::<Vec<_>>()
                            .join("; "),
                    }}
                </dd>
            </dl>
            <table class="compact">
                <caption>"Active parts per month of the events table (insert limit "{limit}")"</caption>
                <thead><tr><th>"Partition"</th><th>"Active parts"</th></tr></thead>
                <tbody>
                    {partitions
                        .into_iter()
                        .map(|p| {
                            view! {
                                <tr class:warn=p.near_limit data-testid="parts">
                                    <td>{p.partition}</td>
                                    <td>{p.active_parts}</td>
                                </tr>
                            }
                        })
                        .collect_view()}
                </tbody>
            </table>
        </section>
    }
}

#[component]
fn Problems(problems: Vec<String>) -> impl IntoView {
    (!problems.is_empty()).then(|| {
        view! {
            <ul class="problems" role="alert">
                {problems.into_iter().map(|p| view! { <li>{p}</li> }).collect_view()}
            </ul>
        }
    })
}

#[component]
fn KafkaPanel(kafka: KafkaHealth, taken_at_ms: i64) -> impl IntoView {
    let _ = taken_at_ms;
    let KafkaHealth {
        reachable,
        problems,
        brokers,
        consumer_group,
        topics,
        total,
        ..
    } = kafka;
    view! {
        <section class="panel" data-testid="kafka">
            <h2>"Kafka"</h2>
            <p class=state_class(reachable) data-testid="kafka-state">
                {if reachable { "cluster answers" } else { "cluster does not answer" }}
            </p>
            <Problems problems/>
            <table class="compact">
                <caption>"Brokers"</caption>
                <thead><tr><th>"Id"</th><th>"Address"</th><th>"State"</th></tr></thead>
                <tbody>
                    {brokers
                        .into_iter()
                        .map(|b| {
                            view! {
                                <tr data-testid="broker" class:bad=!b.up>
                                    <td>{if b.id < 0 { "?".to_owned() } else { b.id.to_string() }}</td>
                                    <td>{b.address}</td>
                                    <td>{if b.up { "up".to_owned() } else { format!("down: {}", b.detail) }}</td>
                                </tr>
                            }
                        })
                        .collect_view()}
                </tbody>
            </table>
            <p data-testid="lag-total" data-lag=total.lag_messages.to_string()>
                "Writer group "<code>{consumer_group}</code>": "
                <strong>{total.lag_messages}</strong>" messages behind over "{total.partitions}
                " partitions; the oldest waiting event is "
                <strong>{human_duration_ms(total.max_lag_ms)}</strong>" old. "
                {total.under_replicated}" under-replicated, "{total.below_min_insync}
                " below min.insync.replicas."
            </p>
            {topics.into_iter().map(|topic| view! { <TopicTable topic/> }).collect_view()}
        </section>
    }
}

#[component]
fn TopicTable(topic: TopicHealth) -> impl IntoView {
    let TopicHealth {
        topic,
        min_insync_replicas,
        partitions,
        total,
    } = topic;
    let name = topic.clone();
    let label = topic.clone();
    view! {
        <table class="compact partitions" data-testid="topic" data-topic=label>
            <caption>
                <code>{topic}</code>" · min.insync.replicas "{min_insync_replicas}" · "
                {total.lag_messages}" behind · oldest "{human_duration_ms(total.max_lag_ms)}
            </caption>
            <thead>
                <tr>
                    <th>"Partition"</th>
                    <th>"Leader"</th>
                    <th>"Replicas"</th>
                    <th>"In sync"</th>
                    <th>"End offset"</th>
                    <th>"Committed"</th>
                    <th>"Lag (messages)"</th>
                    <th>"Lag (time)"</th>
                </tr>
            </thead>
            <tbody>
                {partitions
                    .into_iter()
                    .map(|p| {
                        let join = |ids: &[i32]| {
                            ids.iter().map(i32::to_string).collect::<Vec<_>>().join(", ")
                        };
                        let flags = [
                            p.under_replicated.then_some("under-replicated"),
                            p.below_min_insync.then_some("below min.insync.replicas"),
                        ]
                        .into_iter()
                        .flatten()
                        .collect::<Vec<_>>()
                        .join(", ");
                        let flagged = p.under_replicated || p.below_min_insync;
                        let lagging = p.lag_messages > 0;
                        view! {
                            <tr
                                data-testid="partition"
                                data-topic=name.clone()
                                data-partition=p.partition.to_string()
                                data-lag=p.lag_messages.to_string()
                                data-lag-ms=p.lag_ms.map_or_else(String::new, |ms| ms.to_string())
                                class:bad=flagged
                                class:warn=lagging
                            >
                                <td>{p.partition}</td>
                                <td>{if p.leader < 0 { "none".to_owned() } else { p.leader.to_string() }}</td>
                                <td>{join(&p.replicas)}</td>
                                <td title=flags>{join(&p.in_sync)}</td>
                                <td>{p.end_offset}</td>
                                <td>{p.committed.map_or_else(|| "none".to_owned(), |c| c.to_string())}</td>
                                <td>{p.lag_messages}</td>
                                <td>{p.lag_ms.map_or_else(|| "unread".to_owned(), human_duration_ms)}</td>
                            </tr>
                        }
                    })
                    .collect_view()}
            </tbody>
        </table>
    }
}
