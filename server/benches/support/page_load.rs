//! A console page loading in Chromium, for the Search and Dashboard
//! benches: runs `end2end/interactive.js` (what it measures is described
//! there and in [`WHAT_IS_MEASURED`]) and turns its figures into the
//! Markdown of a bench section. A measurement, not a test: nothing here
//! asserts a time.

use std::collections::BTreeMap;

use anyhow::Context;
use serde::Deserialize;

use crate::support::percentile;

/// What one page load's figures mean, for the sections that print them.
pub const WHAT_IS_MEASURED: &str = "`end2end/interactive.js` opens the page in a fresh \
    browser context (empty cache), signed in (the sign-in is not timed), and reads, from the \
    start of the navigation: **first paint** (the browser's paint timing); **hydrated**, when `<body>` gets `data-hydrated=\"true\"` (the app's first \
    effect, once the WASM has taken over the page; what the browser tests wait for); and \
    **interactive**: as soon as the page is hydrated the script types one key (`a`) into the \
    query box, and this is when the app answers it by opening the box's suggestion list \
    (`#q[aria-expanded=\"true\"]`, which only the WASM does). The page records these moments \
    itself (a `MutationObserver` installed before its scripts), so the driver's polling adds \
    nothing but the round trip between seeing the marker and typing. The throttled rows go \
    through Chromium's own network emulation (CDP `Network.emulateNetworkConditions`: 10 \
    Mbit/s down, 10 Mbit/s up, 40 ms added to every round trip). Also: when the page's main \
    content is in it (see the column's name), and its **last byte**: the server streams the \
    page, its shell first and each part once its data is ready, and the browser runs the \
    WASM only once the whole page is parsed, so hydration waits for the slowest part.";

#[derive(Debug, Deserialize)]
pub struct Throttle {
    pub down_mbit: f64,
    pub up_mbit: f64,
    pub latency_ms: f64,
}

/// One request the page made before the keystroke, in the last run.
#[derive(Debug, Deserialize)]
pub struct Resource {
    pub kind: String,
    pub encoding: Option<String>,
    /// Over the wire: compressed body and headers.
    pub bytes: Option<u64>,
    /// The body once decompressed.
    pub decoded: Option<u64>,
}

/// What `interactive.js` printed for one page and one network.
#[derive(Debug, Deserialize)]
pub struct PageLoad {
    pub browser: String,
    pub path: String,
    pub throttle: Option<Throttle>,
    pub first_paint_ms: Vec<Option<f64>>,
    pub response_end_ms: Vec<Option<f64>>,
    pub content_ms: Vec<Option<f64>>,
    pub hydrated_ms: Vec<Option<f64>>,
    pub interactive_ms: Vec<Option<f64>>,
    /// Per run, bytes over the wire per kind of request.
    pub bytes: Vec<BTreeMap<String, u64>>,
    pub resources: Vec<Resource>,
}

impl PageLoad {
    /// The runs' values of one timing that were measured, ascending.
    fn sorted(values: &[Option<f64>]) -> Vec<f64> {
        let mut v: Vec<f64> = values.iter().flatten().copied().collect();
        v.sort_by(|a, b| a.total_cmp(b));
        v
    }

    pub fn runs(&self) -> usize {
        self.bytes.len()
    }

    pub fn network(&self) -> String {
        match &self.throttle {
            None => "loopback".to_owned(),
            Some(t) => format!(
                "{} Mbit/s down, {} up, {} ms",
                t.down_mbit, t.up_mbit, t.latency_ms
            ),
        }
    }
}

/// On 2 shared cores a compile next to the browser doubles every figure
/// (the server renders the page on the same cores), so the loads wait, up
/// to `BENCH_QUIET_MINUTES` (default 10), for the 1-minute load average to
/// drop below 1. Returns the load they start under.
pub fn wait_for_quiet() -> String {
    let patience = std::time::Duration::from_secs(
        60 * crate::support::env_usize("BENCH_QUIET_MINUTES", 10) as u64,
    );
    let started = std::time::Instant::now();
    loop {
        let load = crate::support::load_average();
        let quiet = load.parse::<f64>().is_ok_and(|l| l < 1.0);
        if quiet || started.elapsed() >= patience {
            return load;
        }
        std::thread::sleep(std::time::Duration::from_secs(10));
    }
}

/// Loads `path` of the console at `console_url` `runs` times, each in a
/// fresh context, over loopback and over issue 17's slow network; one row
/// each, with `target_ms` on the throttled one. `ATTEST_E2E_ACCESS_KEY`,
/// when set, is the key the script signs in with.
pub fn rows(
    console_url: &str,
    path: &str,
    content: &str,
    runs: usize,
    target_ms: Option<f64>,
) -> Vec<Row> {
    [false, true]
        .into_iter()
        .map(|throttled| {
            let load = measure(console_url, path, content, runs, throttled);
            if let Err(e) = &load {
                println!("{path} in the browser: {e:#}");
            }
            Row {
                path: path.to_owned(),
                throttled,
                load: load.map_err(|e| format!("{e:#}")),
                target_ms: target_ms.filter(|_| throttled),
            }
        })
        .collect()
}

/// One page load, `runs` times (see [`rows`]); `content` is the selector
/// of the element whose arrival the "content" column times.
pub fn measure(
    console_url: &str,
    path: &str,
    content: &str,
    runs: usize,
    throttled: bool,
) -> anyhow::Result<PageLoad> {
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/../end2end/interactive.js");
    let mut command = std::process::Command::new("node");
    command.args([script, console_url, path, &runs.max(1).to_string()]);
    command.arg(format!("--content={content}"));
    if throttled {
        command.arg("--throttle");
    }
    let output = command
        .output()
        .context("running node end2end/interactive.js")?;
    anyhow::ensure!(
        output.status.success(),
        "interactive.js {path}: {}",
        String::from_utf8_lossy(&output.stderr).trim()
    );
    serde_json::from_slice(&output.stdout).context("reading what interactive.js printed")
}

/// "p50 X ms (max Y)" of a timing, or "–" when no run measured it.
pub fn p50_max(values: &[Option<f64>]) -> String {
    let v = PageLoad::sorted(values);
    match v.last() {
        None => "–".to_owned(),
        Some(max) => format!("{:.0} ms ({:.0})", percentile(&v, 0.5), max),
    }
}

fn kib(bytes: u64) -> String {
    format!("{:.1} KiB", bytes as f64 / 1024.0)
}

/// A page, loaded over one network, and what came of it.
pub struct Row {
    pub path: String,
    pub throttled: bool,
    pub load: Result<PageLoad, String>,
    /// The target for "interactive" on this row, if it has one.
    pub target_ms: Option<f64>,
}

/// One table row per page and network: p50 (max) of each timing, and
/// the verdict against the row's target. `content` names what the content
/// column timed.
pub fn timings_table(rows: &[Row], content: &str) -> String {
    let mut out = format!(
        "| page | network | runs | first paint | {content} | last byte | hydrated | \
         interactive | over the wire | target | verdict |\n\
         | --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- |\n",
    );
    for row in rows {
        match &row.load {
            Err(e) => out.push_str(&format!(
                "| `{}` | {} | | | | | | | | | measurement failed: {} |\n",
                row.path,
                if row.throttled {
                    "throttled"
                } else {
                    "loopback"
                },
                e.replace('|', "/").replace('\n', " ")
            )),
            Ok(load) => {
                let interactive = PageLoad::sorted(&load.interactive_ms);
                let verdict = match row.target_ms {
                    None => "–".to_owned(),
                    Some(_) if interactive.is_empty() => "never interactive".to_owned(),
                    Some(target) if percentile(&interactive, 0.5) < target => "met".to_owned(),
                    Some(_) => "**missed**".to_owned(),
                };
                let mut total: Vec<f64> = load
                    .bytes
                    .iter()
                    .map(|kinds| kinds.values().sum::<u64>() as f64)
                    .collect();
                total.sort_by(|a, b| a.total_cmp(b));
                out.push_str(&format!(
                    "| `{}` | {} | {} | {} | {} | {} | {} | **{}** | {} | {} | {verdict} |\n",
                    load.path,
                    load.network(),
                    load.runs(),
                    p50_max(&load.first_paint_ms),
                    p50_max(&load.content_ms),
                    p50_max(&load.response_end_ms),
                    p50_max(&load.hydrated_ms),
                    p50_max(&load.interactive_ms),
                    kib(percentile(&total, 0.5) as u64),
                    row.target_ms
                        .map_or("–".to_owned(), |t| format!("< {t:.0} ms")),
                ));
            }
        }
    }
    out
}

/// Where one page load's bytes went (its last run): per kind of request,
/// how many, over the wire, uncompressed, and how they were encoded.
pub fn bytes_table(load: &PageLoad) -> String {
    #[derive(Default)]
    struct Kind {
        requests: usize,
        wire: u64,
        decoded: u64,
        encodings: BTreeMap<String, usize>,
    }
    let mut kinds: BTreeMap<&str, Kind> = BTreeMap::new();
    for r in &load.resources {
        let k = kinds.entry(r.kind.as_str()).or_default();
        k.requests += 1;
        k.wire += r.bytes.unwrap_or(0);
        k.decoded += r.decoded.unwrap_or(0);
        *k.encodings
            .entry(r.encoding.clone().unwrap_or_else(|| "none".to_owned()))
            .or_default() += 1;
    }
    let mut out = String::from(
        "| kind | requests | over the wire | uncompressed | content-encoding |\n\
         | --- | ---: | ---: | ---: | --- |\n",
    );
    let (mut wire, mut decoded) = (0, 0);
    for (name, k) in &kinds {
        wire += k.wire;
        decoded += k.decoded;
        let encodings: Vec<String> = k
            .encodings
            .iter()
            .map(|(e, n)| {
                if *n == k.requests {
                    e.clone()
                } else {
                    format!("{e} ×{n}")
                }
            })
            .collect();
        out.push_str(&format!(
            "| {name} | {} | {} | {} | {} |\n",
            k.requests,
            kib(k.wire),
            kib(k.decoded),
            encodings.join(", ")
        ));
    }
    out.push_str(&format!(
        "| **all** | {} | **{}** | {} | |\n",
        load.resources.len(),
        kib(wire),
        kib(decoded)
    ));
    out
}

/// The browser that measured, from the first row that answered.
pub fn browser(rows: &[Row]) -> String {
    rows.iter()
        .find_map(|r| r.load.as_ref().ok().map(|l| l.browser.clone()))
        .unwrap_or_else(|| "Chromium".to_owned())
}

/// How to run it: a release console on the search bench's data set that
/// changes nothing there (its writer, alerts, detections and trends off,
/// its own topics), and an access key for it.
pub const HOW_TO_RUN: &str =
    "The console: `ATTEST_PROFILE=release scripts/console.sh build`, then \
    `ATTEST_INSTANCE=bench ATTEST_CONSOLE_PORT=3047 ATTEST_PROFILE=release \
    ATTEST_CLICKHOUSE__DATABASE=attest_bench_search ATTEST_WRITER__ENABLED=false \
    ATTEST_ALERTS__ENABLED=false ATTEST_DETECTIONS__ENABLED=false ATTEST_TRENDS__ENABLED=false \
    ATTEST_KAFKA__TOPIC_PREFIX=bench-console scripts/console.sh start` (no writer: the data set \
    stays as generated; the console's own audit events go to topics nobody writes to \
    ClickHouse), and a key from `attest access grant --name bench --all-tenants` run with the \
    same `ATTEST_CLICKHOUSE__DATABASE` and `ATTEST_KAFKA__TOPIC_PREFIX`.";

/// A whole bench section: when and where, what was measured, the timings
/// of every row, and where the bytes of each throttled row went.
pub fn section(
    title: &str,
    about: &str,
    content: &str,
    load_before: &str,
    rows: &[Row],
    command: &str,
) -> String {
    let mut bytes = String::new();
    for row in rows {
        if let Ok(load) = &row.load {
            if load.throttle.is_some() {
                bytes.push_str(&format!(
                    "Where the bytes of `{}` go ({}, last run; every request made before the \
                     keystroke):\n\n{}\n",
                    load.path,
                    load.network(),
                    bytes_table(load)
                ));
            }
        }
    }
    let now = time::OffsetDateTime::now_utc();
    format!(
        "{title}\n\nMeasured on {date} {hour:02}:{minute:02} UTC on {machine}, {browser}; \
         1-minute load average {load_before} at the start and {load} at the end (the loads \
         first wait, up to `BENCH_QUIET_MINUTES`, default 10, for it to drop below 1: the \
         server renders the page on the same 2 cores). {about}\n\n{WHAT_IS_MEASURED} Each cell is the p50 of the runs, the \
         slowest in brackets.\n\n{table}\n{bytes}{HOW_TO_RUN}\n\nCommand: `{command}`.\n",
        date = now.date(),
        hour = now.hour(),
        minute = now.minute(),
        machine = crate::support::machine(),
        browser = browser(rows),
        load = crate::support::load_average(),
        table = timings_table(rows, content),
    )
}
