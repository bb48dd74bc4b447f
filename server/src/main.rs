//! The `attest` binary: the edge where errors become exit codes.

use std::path::PathBuf;

use anyhow::Context;
use attest_server::config::Config;
use clap::{Parser, Subcommand};
use tracing_subscriber::EnvFilter;

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
    /// Print every migration and query template Attest sends to ClickHouse,
    /// as JSON, for review or for checking against another server version.
    Sql,
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
    let config = Config::load(cli.config.as_deref()).context("invalid configuration")?;
    match cli.command.unwrap_or(Command::Serve) {
        Command::Config => {
            println!("{config:#?}");
            Ok(())
        }
        Command::Sql => {
            println!("{}", sql_catalogue()?);
            Ok(())
        }
        Command::Serve => serve(config).await,
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

fn sql_catalogue() -> anyhow::Result<String> {
    use attest_server::store::migrations::MIGRATIONS;
    let migrations: Vec<_> = MIGRATIONS
        .iter()
        .map(|m| {
            serde_json::json!({
                "version": m.version,
                "name": m.name,
                "requires": m.requires().map(|(a, b)| format!("{a}.{b}")),
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
