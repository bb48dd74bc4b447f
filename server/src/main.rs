//! The `attest` binary: the edge where errors become exit codes.

use std::path::PathBuf;

use anyhow::Context;
use attest_server::config::Config;
use clap::{Parser, Subcommand};
use tracing_subscriber::EnvFilter;

#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[derive(Parser)]
#[command(name = "attest", about = "Audit-trail pipeline and console")]
struct Cli {
    /// TOML configuration file; `ATTEST_*` environment variables override it.
    #[arg(long, env = "ATTEST_CONFIG")]
    config: Option<PathBuf>,
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Subcommand)]
enum Command {
    /// Serve the console and the ingest API, and run the writer (default).
    Serve,
    /// Run only the Kafka → ClickHouse writer (serves /healthz and /metrics
    /// on `listen`); several may run as one consumer group.
    Writer,
    /// Print the effective configuration (secrets redacted) and exit.
    Config,
    /// Inspect or replay the dead-letter topic.
    #[command(subcommand)]
    Dlq(DlqCommand),
    /// Create, list or revoke ingest API keys.
    #[command(subcommand)]
    Keys(KeysCommand),
    /// Grant, list or revoke console access (who may sign in, and which
    /// tenants they see).
    #[command(subcommand)]
    Access(AccessCommand),
    /// Remove months past the retention policy (`retention.*`), each removal
    /// recorded as an audit event of its tenant.
    #[command(subcommand)]
    Retention(RetentionCommand),
    /// Place, list or release legal holds, which retention never removes.
    #[command(subcommand)]
    Hold(HoldCommand),
    /// Governed redaction: erase personal data from stored events, each
    /// request approved by a second admin, every step in the tenant's trail
    /// and verifiable as redacted (README "Redaction").
    #[command(subcommand)]
    Redaction(RedactionCommand),
    /// Tamper evidence: signing keys and the re-verification of stored rows
    /// against their signed digests (docs/INTEGRITY.md).
    #[command(subcommand)]
    Integrity(IntegrityCommand),
    /// Verify an export bundle (`/api/v1/export?proofs=true`) offline: the
    /// manifest's signature, every digest, every row's leaf and inclusion
    /// proof, the chain links, each file's SHA-256. Needs no configuration,
    /// network or ClickHouse. Names the first failure and exits 1; exits 2
    /// when everything verifies but some rows were not sealed yet.
    Verify {
        /// The bundle (a `.zip`).
        file: PathBuf,
        /// Trust these keys (a copy of `GET /api/v1/integrity/keys` kept
        /// independently) instead of the bundle's own keys.json.
        #[arg(long)]
        keys: Option<PathBuf>,
        /// Print the report as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Print the API's OpenAPI 3.1 document (what `/api/v1/openapi.json`
    /// serves) and exit; needs no configuration.
    Openapi,
    /// Print every migration and query template Attest sends to ClickHouse,
    /// as JSON, for review or for checking against another server version.
    Sql {
        /// Instead: read `{"sql": …, "values": […]}` lines on stdin and
        /// answer each with the statement as Attest's ClickHouse client
        /// sends it, values bound and escaped (a JSON string per line), so
        /// checks on another server bind hostile values exactly as we do.
        #[arg(long)]
        bind: bool,
    },
}

#[derive(Subcommand)]
enum IntegrityCommand {
    /// Make a new signing key in `integrity.key_dir`: the first one, or a
    /// rotation (the previous key stops signing and stays published).
    /// Prints the new public key, never the private one.
    Keygen,
    /// Print the published public keys with their validity (what
    /// `/api/v1/integrity/keys` serves).
    Keys,
    /// Re-verify the stored rows against their digests: each partition's
    /// chain from the head committed in Kafka, every signature, every
    /// sealed row recomputed. Names each problem; exits non-zero if any.
    Check {
        /// Recompute only rows sealed in the last this many hours (chains
        /// and signatures are always checked whole). 0: everything.
        #[arg(long, default_value_t = 0)]
        since_hours: u64,
        /// Print the report as JSON.
        #[arg(long)]
        json: bool,
    },
}

#[derive(Subcommand)]
enum RedactionCommand {
    /// Request a redaction: a tenant's events (`--event`, repeated) or
    /// every event of one actor (`--actor`), and the fields to erase
    /// (`--field`, repeated: actor.id, actor.type, actor.ip,
    /// actor.user_agent, resource.type, resource.id, request_id,
    /// metadata.<key>). Prints the request id.
    Request {
        #[arg(long)]
        tenant: String,
        #[arg(long = "event", required_unless_present = "actor")]
        events: Vec<String>,
        #[arg(long, conflicts_with = "events")]
        actor: Option<String>,
        #[arg(long = "field", required = true)]
        fields: Vec<String>,
        /// Why: the erasure request or ticket it answers.
        #[arg(long)]
        reason: String,
        /// Who requests it; recorded as the actor of the audit event.
        #[arg(long, env = "USER", default_value = "operator")]
        by: String,
    },
    /// Approve a pending request (someone other than its requester) and
    /// execute it.
    Approve {
        request_id: String,
        #[arg(long, env = "USER", default_value = "operator")]
        by: String,
    },
    /// Execute an approved request again: finishes one that a failure or
    /// crash stopped. A pending request cannot run.
    Execute {
        request_id: String,
        #[arg(long, env = "USER", default_value = "operator")]
        by: String,
    },
    /// Every request with its state (pending, approved, executed).
    List {
        /// Only requests in this state.
        #[arg(long)]
        state: Option<String>,
        /// Print them as JSON.
        #[arg(long)]
        json: bool,
    },
}

#[derive(Subcommand)]
enum DlqCommand {
    /// List dead letters: where each came from, why it was set aside, and
    /// whether it waits or was redriven or discarded.
    List,
    /// Redrive the waiting dead letters that decode and validate now, each
    /// back onto the topic it came from (the console's "redrive all that
    /// now decode"); recorded in Attest's trail.
    Replay {
        /// Only letters with this reason (bad_framing, unknown_schema_id,
        /// undecodable_payload, contract_mismatch, invalid_event,
        /// clickhouse_rejected).
        #[arg(long)]
        reason: Option<String>,
        /// Who redrives them; recorded as the actor of the audit event.
        #[arg(long, env = "USER", default_value = "operator")]
        by: String,
    },
    /// Discard waiting dead letters with a written reason; recorded in
    /// Attest's trail.
    Discard {
        /// The letters, as `dlq list` shows them: partition/offset, comma
        /// separated.
        #[arg(long)]
        ids: String,
        /// Why they are discarded (required).
        #[arg(long)]
        reason: String,
        #[arg(long, env = "USER", default_value = "operator")]
        by: String,
    },
}

#[derive(Subcommand)]
enum KeysCommand {
    /// Create a key for one tenant and one source service. The key is
    /// printed once, on stdout; only its hash is stored.
    Create {
        #[arg(long)]
        tenant: String,
        /// The `source_service` of every event sent with this key.
        #[arg(long)]
        service: String,
        /// Limit the key to these categories (repeat the flag); default all.
        #[arg(long = "category")]
        categories: Vec<String>,
        #[arg(long, default_value = "")]
        description: String,
        /// Who creates it; recorded as the actor of the audit event.
        #[arg(long, env = "USER", default_value = "operator")]
        by: String,
    },
    /// Every key with its tenant, service and state; never a secret.
    List,
    /// Revoke a key by id; servers stop accepting it within
    /// `ingest.key_refresh`.
    Revoke {
        key_id: String,
        #[arg(long, env = "USER", default_value = "operator")]
        by: String,
    },
}

#[derive(Subcommand)]
enum AccessCommand {
    /// Grant console access to a person or team. The access key is printed
    /// once, on stdout; only its hash is stored.
    Grant {
        /// Who it is for; shown in the console and recorded as the actor
        /// of what they do there.
        #[arg(long)]
        name: String,
        /// A tenant they may see (repeat the flag for several).
        #[arg(long = "tenant", required_unless_present = "all_tenants")]
        tenants: Vec<String>,
        /// Every tenant, present and future.
        #[arg(long, conflicts_with = "tenants")]
        all_tenants: bool,
        /// `analyst` reads events; `admin` also sees the pipeline page.
        #[arg(long, default_value = "analyst", value_parser = parse_role)]
        role: app::session::Role,
        /// Who grants it; recorded as the actor of the audit event.
        #[arg(long, env = "USER", default_value = "operator")]
        by: String,
    },
    /// Every grant with its tenants and state; never a secret.
    List,
    /// Revoke a grant by id; its sessions end within
    /// `console.access_refresh`.
    Revoke {
        access_id: String,
        #[arg(long, env = "USER", default_value = "operator")]
        by: String,
    },
}

#[derive(Subcommand)]
enum RetentionCommand {
    /// Show what a run would remove and what legal holds keep; change nothing.
    Plan,
    /// Remove what the plan says, now.
    Run,
}

#[derive(Subcommand)]
enum HoldCommand {
    /// Keep a tenant's months from `--from` to `--to` (YYYY-MM, inclusive).
    Place {
        #[arg(long)]
        tenant: String,
        #[arg(long)]
        from: String,
        #[arg(long)]
        to: String,
        /// Why: a case or ticket reference; recorded with the hold.
        #[arg(long)]
        reason: String,
        /// Who places it; recorded as the actor of the audit event.
        #[arg(long, env = "USER", default_value = "operator")]
        by: String,
    },
    /// Every hold, released ones included.
    List,
    /// Release a hold by id; its history stays.
    Release {
        hold_id: String,
        #[arg(long, env = "USER", default_value = "operator")]
        by: String,
    },
}

#[tokio::main]
async fn main() -> std::process::ExitCode {
    match run().await {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(error) => {
            // One line with the cause chain: an operator needs the reason and
            // the fix, not a backtrace.
            eprintln!("attest: {error:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

async fn run() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_env_filter(
            EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| EnvFilter::new("info,attest_server=info")),
        )
        .init();
    let cli = Cli::parse();
    if matches!(cli.command, Some(Command::Openapi)) {
        println!("{}", attest_server::http::openapi::document());
        return Ok(());
    }
    if let Some(Command::Verify { file, keys, json }) = &cli.command {
        return verify_bundle(file, keys.as_deref(), *json);
    }
    let config = Config::load(cli.config.as_deref()).context("invalid configuration")?;
    match cli.command.unwrap_or(Command::Serve) {
        // Answered above, before the configuration is read.
        Command::Openapi | Command::Verify { .. } => Ok(()),
        Command::Config => {
            println!("{config:#?}");
            Ok(())
        }
        Command::Sql { bind: false } => {
            println!("{}", sql_catalogue()?);
            Ok(())
        }
        Command::Sql { bind: true } => bind_statements(),
        Command::Serve => serve(config).await,
        Command::Dlq(command) => dead_letters(config, command).await,
        Command::Keys(command) => api_keys(config, command).await,
        Command::Access(command) => console_access(config, command).await,
        Command::Retention(command) => retention(config, command).await,
        Command::Hold(command) => holds(config, command).await,
        Command::Integrity(command) => integrity(config, command).await,
        Command::Redaction(command) => redaction(config, command).await,
        Command::Writer => {
            let running = attest_server::start_writer(config).await?;
            println!(
                "attest: writer running, metrics at http://{}/metrics",
                running.addr
            );
            run_until_signal(running).await;
            Ok(())
        }
    }
}

async fn dead_letters(config: Config, command: DlqCommand) -> anyhow::Result<()> {
    use app::dead_letters_model::{parse_ids, Selection};
    use attest_server::dlq;
    let (inbox, gate) = attest_server::open_dead_letters(&config).await?;
    match command {
        DlqCommand::List => {
            let read = inbox.read().await?;
            println!(
                "{:<10} {:<10} {:<20} {:<40} detail",
                "dlq", "state", "reason", "source"
            );
            let (mut waiting, mut redriven, mut discarded) = (0, 0, 0);
            for l in &read.letters {
                let state = match l.handled.as_ref().map(|h| h.action.as_str()) {
                    None if l.recheck.is_ready() => "ready",
                    None => "waiting",
                    Some(action) => action,
                };
                match l.handled.as_ref().map(|h| h.action.as_str()) {
                    None => waiting += 1,
                    Some("redriven") => redriven += 1,
                    Some(_) => discarded += 1,
                }
                let letter = &l.letter;
                println!(
                    "{:<10} {:<10} {:<20} {:<40} {}",
                    format!("{}/{}", letter.partition, letter.offset),
                    state,
                    letter.reason,
                    format!(
                        "{}/{}/{}",
                        letter.source_topic, letter.source_partition, letter.source_offset
                    ),
                    letter.detail
                );
            }
            println!(
                "{} dead letter(s): {waiting} waiting, {redriven} redriven, {discarded} discarded",
                read.letters.len()
            );
        }
        DlqCommand::Replay { reason, by } => {
            let report = inbox
                .redrive(&gate, &dlq::operator(&by), &Selection::AllReady { reason })
                .await?;
            for (id, why) in &report.skipped {
                println!("not redriven: {id}: {why}");
            }
            println!(
                "replayed {}, still undecodable {}",
                report.done.len(),
                report.skipped.len()
            );
        }
        DlqCommand::Discard { ids, reason, by } => {
            let ids = parse_ids(&ids).map_err(|e| anyhow::anyhow!("--{e}"))?;
            let report = inbox
                .discard(&gate, &dlq::operator(&by), &ids, &reason)
                .await?;
            println!("{}", report.summary());
        }
    }
    Ok(())
}

async fn api_keys(config: Config, command: KeysCommand) -> anyhow::Result<()> {
    let admin = attest_server::open_keys(&config).await?;
    match command {
        KeysCommand::Create {
            tenant,
            service,
            categories,
            description,
            by,
        } => {
            let created = admin
                .create(&tenant, &service, &categories, &description, &by)
                .await?;
            eprintln!(
                "attest: key {} for tenant {tenant}, service {service}; it is shown only now:",
                created.row.key_id
            );
            println!("{}", created.key);
        }
        KeysCommand::List => {
            println!(
                "{:<18} {:<20} {:<20} {:<9} {:<30} description",
                "key", "tenant", "service", "state", "categories"
            );
            for k in admin.list().await? {
                let state = if k.revoked_at == 0 {
                    "valid"
                } else {
                    "revoked"
                };
                let categories = if k.categories.is_empty() {
                    "all".to_owned()
                } else {
                    k.categories.join(",")
                };
                println!(
                    "{:<18} {:<20} {:<20} {:<9} {:<30} {}",
                    k.key_id, k.tenant_id, k.source_service, state, categories, k.description
                );
            }
        }
        KeysCommand::Revoke { key_id, by } => {
            let key = admin.revoke(&key_id, &by).await?;
            println!("revoked {}", key.key_id);
        }
    }
    Ok(())
}

/// `--role`: refused by clap, which names the flag, before anything runs.
fn parse_role(value: &str) -> Result<app::session::Role, app::session::UnknownRole> {
    value.parse()
}

async fn console_access(config: Config, command: AccessCommand) -> anyhow::Result<()> {
    let admin = attest_server::open_access(&config).await?;
    match command {
        AccessCommand::Grant {
            name,
            tenants,
            all_tenants,
            role,
            by,
        } => {
            let granted = admin.grant(&name, &tenants, all_tenants, role, &by).await?;
            let scope = if all_tenants {
                "all tenants".to_owned()
            } else {
                granted.row.tenants.join(", ")
            };
            eprintln!(
                "attest: console access {} for {name} ({scope}, {role}); the key is shown only now:",
                granted.row.access_id
            );
            println!("{}", granted.key);
        }
        AccessCommand::List => {
            println!(
                "{:<18} {:<30} {:<9} {:<8} tenants",
                "access", "name", "state", "role"
            );
            for a in admin.list().await? {
                let state = if a.revoked_at == 0 {
                    "valid"
                } else {
                    "revoked"
                };
                let tenants = if a.all_tenants != 0 {
                    "*".to_owned()
                } else {
                    a.tenants.join(",")
                };
                let role = attest_server::access::stored_role(&a.access_id, &a.role);
                println!(
                    "{:<18} {:<30} {:<9} {:<8} {}",
                    a.access_id, a.name, state, role, tenants
                );
            }
        }
        AccessCommand::Revoke { access_id, by } => {
            let access = admin.revoke(&access_id, &by).await?;
            println!("revoked {}", access.access_id);
        }
    }
    Ok(())
}

async fn retention(config: Config, command: RetentionCommand) -> anyhow::Result<()> {
    use attest_server::retention::Removal;
    let retention = attest_server::open_retention(&config).await?;
    let plan = retention.plan(attest_server::ingest::now_ms()).await?;
    for r in &plan.removals {
        match r {
            Removal::DropMonth { month, tenants } => {
                let names: Vec<String> =
                    tenants.iter().map(|(t, n)| format!("{t} ({n})")).collect();
                println!("remove  {month}  whole month: {}", names.join(", "));
            }
            Removal::DeleteTenantMonth {
                month,
                tenant,
                events,
            } => println!("remove  {month}  tenant {tenant} ({events} events)"),
        }
    }
    for h in &plan.held {
        println!(
            "keep    {}  tenant {} under legal hold {}",
            h.month, h.tenant, h.hold_id
        );
    }
    if plan.removals.is_empty() {
        println!("nothing is past its retention policy");
        return Ok(());
    }
    if let RetentionCommand::Run = command {
        retention.execute(&plan).await?;
        println!("removed {} month(s) or tenant-months", plan.removals.len());
    }
    Ok(())
}

async fn redaction(config: Config, command: RedactionCommand) -> anyhow::Result<()> {
    use attest_server::redaction::{Execution, NewRequest, State, Who};
    let redactions = attest_server::open_redactions(&config).await?;
    let report = |done: &Execution| {
        println!(
            "request {} {:?}: {} rows redacted, {} already redacted, {} events missing{}",
            done.request.request_id,
            done.request.state,
            done.redacted,
            done.unchanged,
            done.missing.len(),
            if done.missing.is_empty() {
                String::new()
            } else {
                format!(" ({})", done.missing.join(", "))
            }
        );
    };
    match command {
        RedactionCommand::Request {
            tenant,
            events,
            actor,
            fields,
            reason,
            by,
        } => {
            let made = redactions
                .request(
                    &Who::operator(&by),
                    NewRequest {
                        tenant_id: tenant,
                        event_ids: events,
                        actor_id: actor,
                        fields,
                        reason,
                    },
                )
                .await?;
            println!("{}", made.request_id);
            eprintln!(
                "attest: redaction of {} event(s) requested; an admin other than {by} approves it with `attest redaction approve {}`",
                made.event_ids.len(),
                made.request_id
            );
        }
        RedactionCommand::Approve { request_id, by } => {
            report(&redactions.approve(&request_id, &Who::operator(&by)).await?);
        }
        RedactionCommand::Execute { request_id, by } => {
            report(&redactions.execute(&request_id, &Who::operator(&by)).await?);
        }
        RedactionCommand::List { state, json } => {
            let wanted = match state.as_deref() {
                None => None,
                Some(s) => Some(State::parse(s).with_context(|| {
                    format!("--state {s:?}: must be pending, approved or executed")
                })?),
            };
            let requests: Vec<_> = redactions
                .list()
                .await?
                .into_iter()
                .filter(|r| wanted.is_none_or(|w| r.state == w))
                .collect();
            if json {
                println!(
                    "{}",
                    serde_json::to_string_pretty(&requests).context("cannot print the requests")?
                );
                return Ok(());
            }
            println!(
                "{:<38} {:<9} {:<16} {:<7} {:<16} {:<16} fields",
                "request", "state", "tenant", "events", "requested_by", "approved_by"
            );
            for r in requests {
                println!(
                    "{:<38} {:<9} {:<16} {:<7} {:<16} {:<16} {}",
                    r.request_id,
                    format!("{:?}", r.state).to_lowercase(),
                    r.tenant_id,
                    r.event_ids.len(),
                    r.requested_by,
                    r.approved_by,
                    r.fields.join(",")
                );
            }
        }
    }
    Ok(())
}

async fn integrity(config: Config, command: IntegrityCommand) -> anyhow::Result<()> {
    use attest_server::integrity::{keys, KeyRing};
    let dir = &config.integrity.key_dir;
    match command {
        IntegrityCommand::Keygen => {
            let key = keys::generate(dir, attest_server::ingest::now_ms())?;
            println!(
                "{}",
                serde_json::to_string_pretty(&key).context("cannot print the key")?
            );
            eprintln!(
                "attest: new signing key {} in {}; running writers switch to it at their next batch",
                key.key_id,
                dir.display()
            );
        }
        IntegrityCommand::Keys => {
            let ring = KeyRing::load(dir)?;
            println!(
                "{}",
                serde_json::to_string_pretty(&ring).context("cannot print the keys")?
            );
        }
        IntegrityCommand::Check { since_hours, json } => {
            let since_ms = match since_hours {
                0 => i64::MIN,
                h => attest_server::ingest::now_ms()
                    .saturating_sub(i64::try_from(h.saturating_mul(3_600_000)).unwrap_or(i64::MAX)),
            };
            let report = attest_server::check_integrity(&config, since_ms).await?;
            if json {
                println!(
                    "{}",
                    serde_json::to_string_pretty(&report).context("cannot print the report")?
                );
            } else {
                for (topic, partition, problem) in &report.problems {
                    println!("{topic}[{partition}]: {problem}");
                }
                for r in &report.redacted {
                    println!(
                        "redacted: event {} of tenant {} (offset {}, digest {}): request {}, fields {}",
                        r.event_id,
                        r.tenant_id,
                        r.offset,
                        r.digest,
                        r.request_id,
                        r.fields.join(", ")
                    );
                }
                for f in &report.folded {
                    println!(
                        "re-sent: event {} of tenant {} (offset {}, digest {}) is stored once, at partition {} offset {}",
                        f.event_id, f.tenant_id, f.offset, f.digest, f.kept_partition, f.kept_offset
                    );
                }
                println!(
                    "checked {} digests ({} of {} chains walked back to a checkpoint only) and {} sealed events ({} redacted, {} re-sent copies stored once, {} removed by retention): {} problems, {} superseded digests",
                    report.digests,
                    report.chains.iter().filter(|c| c.from_checkpoint.is_some()).count(),
                    report.chains.len(),
                    report.events,
                    report.redacted.len(),
                    report.folded.len(),
                    report.expired,
                    report.problems.len(),
                    report.superseded
                );
            }
            if !report.problems.is_empty() {
                anyhow::bail!("{} integrity problems", report.problems.len());
            }
        }
    }
    Ok(())
}

/// `attest verify`: offline, so before any configuration is read.
fn verify_bundle(
    file: &std::path::Path,
    keys: Option<&std::path::Path>,
    json: bool,
) -> anyhow::Result<()> {
    use attest_server::integrity::export_verify::verify;
    let started = std::time::Instant::now();
    let archive = std::fs::read(file).with_context(|| format!("cannot read {}", file.display()))?;
    let trusted = match keys {
        Some(path) => {
            let bytes =
                std::fs::read(path).with_context(|| format!("cannot read {}", path.display()))?;
            Some(attest_server::integrity::KeyRing::parse(path, &bytes)?)
        }
        None => None,
    };
    let report = verify(&archive, trusted.as_ref());
    let seconds = started.elapsed().as_secs_f64();
    if json {
        let mut value = serde_json::to_value(&report).context("cannot print the report")?;
        value["ok"] = report.problems.is_empty().into();
        value["seconds"] = seconds.into();
        value["first"] = report
            .problems
            .first()
            .map(|p| serde_json::json!([p.kind().0, p.kind().1, p.to_string()]))
            .unwrap_or_default();
        println!(
            "{}",
            serde_json::to_string_pretty(&value).context("cannot print the report")?
        );
    } else if let Some(first) = report.problems.first() {
        println!("FAILED: {first}");
        for more in report.problems.iter().skip(1).take(9) {
            println!("  also: {more}");
        }
    } else {
        let rate = if seconds > 0.0 {
            report.rows as f64 / seconds
        } else {
            0.0
        };
        println!(
            "verified: {} rows ({} proven, {} of them redacted, {} not sealed yet), {} digests, keys from {}, {:.0} rows/s",
            report.rows, report.proven_rows, report.redacted.len(), report.unsealed_rows, report.digests, report.keys, rate
        );
        for r in &report.redacted {
            println!(
                "redacted: event {} of tenant {} (row {}): request {}, fields {}",
                r.event_id,
                r.tenant_id,
                r.row,
                r.request_id,
                r.fields.join(", ")
            );
        }
        if report.keys == "bundle" {
            println!("note: keys came from the bundle itself; pass --keys with a copy of GET /api/v1/integrity/keys kept independently to rule out a forged bundle");
        }
    }
    if !report.problems.is_empty() {
        anyhow::bail!("{} verification problems", report.problems.len());
    }
    if report.unsealed_rows > 0 {
        eprintln!(
            "attest: {} rows are not sealed yet (written in the last seconds): export again later to prove them",
            report.unsealed_rows
        );
        std::process::exit(2);
    }
    Ok(())
}

async fn holds(config: Config, command: HoldCommand) -> anyhow::Result<()> {
    let retention = attest_server::open_retention(&config).await?;
    match command {
        HoldCommand::Place {
            tenant,
            from,
            to,
            reason,
            by,
        } => {
            let hold = retention
                .place_hold(&tenant, &from, &to, &reason, &by)
                .await?;
            println!("{}", hold.hold_id);
        }
        HoldCommand::List => {
            println!(
                "{:<38} {:<20} {:<15} {:<10} reason",
                "hold", "tenant", "months", "state"
            );
            for h in retention.all_holds().await? {
                let state = if h.released_at == 0 {
                    "active"
                } else {
                    "released"
                };
                println!(
                    "{:<38} {:<20} {:<15} {:<10} {}",
                    h.hold_id,
                    h.tenant_id,
                    format!("{}-{}", h.from_month, h.to_month),
                    state,
                    h.reason
                );
            }
        }
        HoldCommand::Release { hold_id, by } => {
            let hold = retention.release_hold(&hold_id, &by).await?;
            println!("released {}", hold.hold_id);
        }
    }
    Ok(())
}

fn bind_statements() -> anyhow::Result<()> {
    use std::io::{BufRead, Write};
    #[derive(serde::Deserialize)]
    struct Request {
        sql: String,
        values: Vec<serde_json::Value>,
    }
    let mut out = std::io::stdout().lock();
    for line in std::io::stdin().lock().lines() {
        let request: Request = serde_json::from_str(&line?).context("a {sql, values} line")?;
        let bound = attest_server::store::bound_sql(&request.sql, &request.values);
        writeln!(out, "{}", serde_json::to_string(&bound)?)?;
        // The caller waits for each answer before it sends the next line.
        out.flush()?;
    }
    Ok(())
}

fn sql_catalogue() -> anyhow::Result<String> {
    use attest_server::store::migrations::MIGRATIONS;
    let migrations: Vec<_> = MIGRATIONS
        .iter()
        .map(|m| {
            serde_json::json!({
                "version": m.version,
                "name": m.name,
                "requires": m.requires().map(|(a, b)| format!("{a}.{b}")),
                "done_when_column": m.done_when_column().map(|(t, c)| format!("{t}.{c}")),
                "statements": m.statements(),
            })
        })
        .collect();
    let doc = serde_json::json!({
        "migrations": migrations,
        "queries": attest_server::store::catalogue(),
    });
    Ok(serde_json::to_string_pretty(&doc)?)
}

async fn serve(config: Config) -> anyhow::Result<()> {
    let leptos = leptos::config::get_configuration(None)
        .context("leptos site configuration (LEPTOS_* variables; run through scripts/up.sh)")?
        .leptos_options;
    let running = attest_server::start(config, leptos).await?;
    println!("attest: console at http://{}/", running.addr);
    run_until_signal(running).await;
    Ok(())
}

async fn run_until_signal(running: attest_server::Running) {
    let stop = running.stop_token();
    tokio::select! {
        _ = shutdown_signal() => tracing::info!("shutdown requested"),
        _ = stop.cancelled() => {}
    }
    running.shutdown().await;
}

async fn shutdown_signal() {
    let ctrl_c = async {
        if let Err(error) = tokio::signal::ctrl_c().await {
            tracing::warn!(%error, "cannot listen for Ctrl-C");
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(error) => {
                tracing::warn!(%error, "cannot listen for SIGTERM");
                std::future::pending::<()>().await;
            }
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {}
        _ = terminate => {}
    }
}
