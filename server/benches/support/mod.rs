//! What the benchmark binaries share: settings from the environment,
//! percentiles, and rewriting their own section of docs/BENCHMARKS.md.

#![allow(dead_code)]

/// The configuration a bench starts from: the environment's, on a free
/// port, with the repository's contract, and topics, consumer group,
/// database and spool of its own, named as scripts/sweep.py knows them:
/// `attest-bench{kind}.<id>` and `attest_bench{kind}_<id>` (`kind` is "",
/// "-ingest" or "-sustained").
pub fn bench_config(kind: &str, id: &str) -> anyhow::Result<attest_server::config::Config> {
    let mut config = attest_server::config::Config::load(None)?;
    config.listen = "127.0.0.1:0".parse()?;
    config.schemas_dir = concat!(env!("CARGO_MANIFEST_DIR"), "/../schemas").into();
    config.kafka.topic_prefix = format!("attest-bench{kind}.{id}");
    config.kafka.consumer_group = format!("attest-bench{kind}-{id}");
    config.clickhouse.database = format!("attest_bench{}_{id}", kind.replace('-', "_"));
    config.ingest.spool_dir = std::env::temp_dir().join(format!("attest-bench-spool-{id}"));
    Ok(config)
}

/// What a bench's server is started with besides its configuration.
pub fn leptos_options() -> leptos::config::LeptosOptions {
    leptos::config::LeptosOptions::builder()
        .output_name("attest")
        .build()
}

pub fn env_usize(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// Deletes every topic whose name starts with `prefix` (the bench's own and
/// its bare paths'): leftover partitions slow the broker's recovery after a
/// kill -9. Best effort; `scripts/sweep.py` deletes what stays.
pub async fn delete_topics(brokers: &str, prefix: &str) {
    use rdkafka::admin::{AdminClient, AdminOptions};
    use rdkafka::client::DefaultClientContext;
    use rdkafka::config::ClientConfig;

    let Ok(admin) = ClientConfig::new()
        .set("bootstrap.servers", brokers)
        .create::<AdminClient<DefaultClientContext>>()
    else {
        return;
    };
    let Ok(metadata) = admin
        .inner()
        .fetch_metadata(None, std::time::Duration::from_secs(10))
    else {
        return;
    };
    let names: Vec<&str> = metadata
        .topics()
        .iter()
        .map(|t| t.name())
        .filter(|name| name.starts_with(prefix))
        .collect();
    if names.is_empty() {
        return;
    }
    let options = AdminOptions::new().operation_timeout(Some(std::time::Duration::from_secs(30)));
    let _ = admin.delete_topics(&names, &options).await;
}

pub fn unique() -> String {
    uuid::Uuid::now_v7().simple().to_string()
}

/// `p` in 0..=1 of an ascending slice; NaN when empty.
pub fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    sorted[((sorted.len() as f64 - 1.0) * p).round() as usize]
}

/// The machine, for a report: cores, CPU model and memory.
pub fn machine() -> String {
    let cores = std::thread::available_parallelism().map_or(0, |n| n.get());
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("model name"))
                .and_then(|l| l.split(':').nth(1))
                .map(|m| m.trim().to_owned())
        })
        .unwrap_or_else(|| "unknown CPU".into());
    let memory = std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("MemTotal:"))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|kib| kib.parse::<u64>().ok())
        })
        .map_or_else(String::new, |kib| {
            format!(", {:.0} GiB RAM", kib as f64 / 1024.0 / 1024.0)
        });
    format!("{cores} cores ({cpu}){memory}")
}

/// Replaces the `name` section of docs/BENCHMARKS.md (between its markers),
/// leaving other benches' sections alone.
pub fn write_section(name: &str, section: &str) -> anyhow::Result<()> {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../docs/BENCHMARKS.md");
    let begin = format!("<!-- bench:{name}:begin -->");
    let end = format!("<!-- bench:{name}:end -->");
    let current = std::fs::read_to_string(path).unwrap_or_else(|_| "# Benchmarks\n".into());
    let block = format!("{begin}\n{section}{end}");
    let updated = match (current.find(&begin), current.find(&end)) {
        (Some(a), Some(b)) if a < b => {
            format!("{}{block}{}", &current[..a], &current[b + end.len()..])
        }
        _ => format!("{}\n\n{block}\n", current.trim_end()),
    };
    std::fs::write(path, updated)?;
    Ok(())
}

/// CPU time used so far by this process, the Kafka broker(s) and the
/// ClickHouse server, in seconds: on 2 shared cores, where a path's time
/// goes says more than its rate alone.
#[derive(Debug, Clone, Copy, Default)]
pub struct Cpu {
    pub bench: f64,
    pub broker: f64,
    pub clickhouse: f64,
}

impl Cpu {
    pub fn now() -> Cpu {
        let ticks = clock_ticks();
        let mut cpu = Cpu {
            bench: process_ticks("self").unwrap_or(0) as f64 / ticks,
            ..Cpu::default()
        };
        let Ok(entries) = std::fs::read_dir("/proc") else {
            return cpu;
        };
        for entry in entries.flatten() {
            let name = entry.file_name();
            let Some(pid) = name
                .to_str()
                .filter(|n| n.bytes().all(|b| b.is_ascii_digit()))
            else {
                continue;
            };
            let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
            let cmdline = String::from_utf8_lossy(&cmdline);
            let used = process_ticks(pid).unwrap_or(0) as f64 / ticks;
            if cmdline.contains("kafka.Kafka") {
                cpu.broker += used;
            } else if cmdline.starts_with("clickhouse") || cmdline.contains("clickhouse-server") {
                cpu.clickhouse += used;
            }
        }
        cpu
    }

    /// CPU seconds from `earlier` to `self`.
    pub fn since(&self, earlier: &Cpu) -> Cpu {
        Cpu {
            bench: self.bench - earlier.bench,
            broker: self.broker - earlier.broker,
            clickhouse: self.clickhouse - earlier.clickhouse,
        }
    }

    /// "bench 1.2 + broker 3.4 + ClickHouse 0.5 = 5.1 CPU-s per million
    /// events".
    pub fn per_million(&self, events: usize) -> String {
        let scale = 1e6 / events.max(1) as f64;
        let (b, k, c) = (
            self.bench * scale,
            self.broker * scale,
            self.clickhouse * scale,
        );
        format!("{b:.1} + {k:.1} + {c:.1} = {:.1}", b + k + c)
    }
}

/// utime + stime of /proc/<pid>/stat, in clock ticks.
fn process_ticks(pid: &str) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name may hold spaces; the fields after it do not.
    let rest = &stat[stat.rfind(')')? + 2..];
    let fields: Vec<&str> = rest.split(' ').collect();
    // Fields 14 and 15 of stat(5), counted from the state field (3).
    let utime: u64 = fields.get(11)?.parse().ok()?;
    let stime: u64 = fields.get(12)?.parse().ok()?;
    Some(utime + stime)
}

fn clock_ticks() -> f64 {
    std::process::Command::new("getconf")
        .arg("CLK_TCK")
        .output()
        .ok()
        .and_then(|o| String::from_utf8(o.stdout).ok())
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(100.0)
}

/// The 1-minute load average, to say how busy the machine was.
pub fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .ok()
        .and_then(|l| l.split_whitespace().next().map(str::to_owned))
        .unwrap_or_else(|| "unknown".into())
}
