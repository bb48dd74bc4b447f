//! The pipeline page's processes: every `attest serve` and `attest writer`
//! as it last reported, its writer's state in words, the partitions the
//! writer group gives it, its spool; a process that stopped reporting is
//! "silent since …" (it may have died), and a member of the writer group
//! that no process claims is listed below them.

use leptos::prelude::*;

use crate::pipeline_model::{
    human_duration_ms, GroupMember, ProcessStatus, ProcessesHealth, WriterState,
};
use crate::timefmt::utc_millis;

#[component]
pub fn ProcessesPanel(processes: ProcessesHealth, taken_at_ms: i64) -> impl IntoView {
    let ProcessesHealth {
        processes,
        unclaimed_members,
        group_read,
        problems,
    } = processes;
    let writers = processes
        .iter()
        .filter(|p| p.writer != WriterState::None && !p.silent)
        .count();
    view! {
        <section class="panel processes" data-testid="processes">
            <h2>
                "Processes "
                <span class="muted">{writers}" writer(s) reporting"</span>
            </h2>
            {(!problems.is_empty()).then(|| {
                view! {
                    <ul class="problems" role="alert">
                        {problems.into_iter().map(|p| view! { <li>{p}</li> }).collect_view()}
                    </ul>
                }
            })}
            <table class="compact">
                <thead>
                    <tr>
                        <th>"Process"</th>
                        <th>"Roles"</th>
                        <th>"Writer"</th>
                        <th>"Partitions"</th>
                        <th>"Spool"</th>
                        <th>"Last report"</th>
                        <th>"Started"</th>
                        <th>"Version"</th>
                    </tr>
                </thead>
                <tbody>
                    {processes
                        .into_iter()
                        .map(|p| view! { <ProcessRow p taken_at_ms group_read/> })
                        .collect_view()}
                </tbody>
            </table>
            {(!unclaimed_members.is_empty()).then(|| view! { <Unclaimed members=unclaimed_members/> })}
        </section>
    }
}

#[component]
fn ProcessRow(p: ProcessStatus, taken_at_ms: i64, group_read: bool) -> impl IntoView {
    let disagrees = p.group_disagrees();
    let writer_bad = !p.writer.ok();
    let state = if p.silent {
        format!(
            "silent since {} (it may have died)",
            utc_millis(p.reported_at_ms)
        )
    } else if p.writer == WriterState::None {
        "no writer".to_owned()
    } else {
        p.writer.words().to_owned()
    };
    let partitions = if p.writer == WriterState::None {
        String::new()
    } else if p.partitions.is_empty() {
        "none".to_owned()
    } else {
        p.partitions.join(", ")
    };
    let group_note = match (&p.group_partitions, disagrees) {
        (Some(given), true) if given.is_empty() => {
            Some("the writer group gives it none now".to_owned())
        }
        (Some(given), true) => Some(format!(
            "the writer group gives it {} now",
            given.join(", ")
        )),
        _ if group_read || p.writer == WriterState::None => None,
        _ => Some("the writer group was not read".to_owned()),
    };
    let spool = match p.spool_oldest_age_ms {
        Some(age) if p.spool_events > 0 => {
            format!(
                "{} events, oldest {}",
                p.spool_events,
                human_duration_ms(age)
            )
        }
        _ => "empty".to_owned(),
    };
    let ago = human_duration_ms(taken_at_ms.saturating_sub(p.reported_at_ms));
    let last_insert = p
        .last_insert_ms
        .map_or_else(|| "no insert yet".to_owned(), utc_millis);
    let detail = (!p.writer.ok() || !p.last_error.is_empty()).then(|| {
        let error = (!p.last_error.is_empty()).then(|| {
            view! { <span class="muted" data-testid="process-error">" last error: "{p.last_error.clone()}</span> }
        });
        view! {
            <div class="detail">
                {(!p.writer.ok()).then(|| p.writer_detail.clone())}
                {error}
            </div>
        }
    });
    view! {
        <tr
            data-testid="process"
            data-process=p.process.clone()
            data-writer-state=p.writer.code()
            data-silent=p.silent.to_string()
            data-partitions=p.partitions.join(",")
            data-spool=p.spool_events.to_string()
            class:bad=p.silent || writer_bad
            class:warn=disagrees
        >
            <td>
                <code>{p.process.clone()}</code>
                {p.this_process.then(|| view! { <span class="muted">" (this process)"</span> })}
            </td>
            <td>{p.roles.join(", ")}</td>
            <td data-testid="process-state" title=format!("last insert: {last_insert}")>
                {state}
                {detail}
            </td>
            <td>
                {partitions}
                {group_note.map(|note| view! { <div class="detail" data-testid="group-note">{note}</div> })}
            </td>
            <td>{spool}</td>
            <td>{if p.this_process { "now".to_owned() } else { format!("{ago} ago") }}</td>
            <td>{utc_millis(p.started_at_ms)}</td>
            <td>{p.version.clone()}</td>
        </tr>
    }
}

/// Members of the writer group that no process reporting recently claims.
#[component]
fn Unclaimed(members: Vec<GroupMember>) -> impl IntoView {
    view! {
        <table class="compact" data-testid="unclaimed">
            <caption>
                "Members of the writer group without a recent report: a writer whose reports do \
                 not arrive, one of an older version, or a consumer that is not Attest's"
            </caption>
            <thead><tr><th>"Client id"</th><th>"Host"</th><th>"Partitions"</th></tr></thead>
            <tbody>
                {members
                    .into_iter()
                    .map(|m| {
                        view! {
                            <tr data-testid="unclaimed-member" class="warn" title=m.member_id>
                                <td><code>{m.client_id}</code></td>
                                <td>{m.host}</td>
                                <td>{m.partitions.join(", ")}</td>
                            </tr>
                        }
                    })
                    .collect_view()}
            </tbody>
        </table>
    }
}
