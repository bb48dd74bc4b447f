//! The search benchmark's data set: six months of audit events for 50
//! tenants, generated from a fixed seed so that every run (and every
//! machine) gets the same events for the same size and end time.
//!
//! What makes it realistic enough to measure search on:
//! - tenant sizes follow a Zipf law, so a few tenants hold most events and
//!   the long tail holds a few tens of thousands each;
//! - volume follows office hours in each tenant's own time zone, drops at
//!   weekends, and grows over the six months, while service accounts work
//!   around the clock;
//! - people and service accounts do different things, a few of each do most
//!   of it, and popular records and documents are read far more often than
//!   the rest;
//! - outcomes are mostly success, with the failures and denials each action
//!   plausibly has, plus brute-force bursts: hundreds of failed sign-ins
//!   from one address (or a small botnet) within minutes;
//! - ids, addresses, user agents, services, request ids and metadata look
//!   like what real services send, so free text and wildcards scan
//!   realistic strings rather than a handful of repeated values.
//!
//! Events are produced hour by hour, so an insert block spans one or two
//! month partitions rather than all seven.

use std::collections::BTreeMap;

use attest_server::event::{Actor, AuditEvent, Category, Outcome, Resource};
use attest_server::store::{EventRow, Provenance};
use rand::distributions::{Distribution, WeightedIndex};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

/// Bump whenever the generated events change, so that a stored data set
/// from an older generator is regenerated rather than measured.
pub const VERSION: u32 = 1;
const SEED: u64 = 0x00a7_7e57_5ea2_c400;
pub const SPAN_DAYS: i64 = 182;
pub const HOUR_MS: i64 = 3_600_000;
const SCHEMA_ID: u32 = 1;
const PARTITIONS: usize = 3;
/// Exponent of the tenant-size Zipf law: the largest tenant holds about a
/// quarter of all events, the smallest about 0.3 %.
const TENANT_SKEW: f64 = 1.1;
/// Share of the events that service accounts send, averaged over a week.
const SERVICE_SHARE: f64 = 0.25;

/// Largest first: rank 1 is the biggest tenant.
const TENANT_NAMES: [&str; 50] = [
    "northwind",
    "globex",
    "initech",
    "umbrella-health",
    "hooli",
    "stark-industries",
    "wayne-enterprises",
    "tyrell",
    "cyberdyne",
    "soylent",
    "aperture-labs",
    "black-mesa",
    "massive-dynamic",
    "oscorp",
    "vandelay",
    "dunder-mifflin",
    "pied-piper",
    "gringotts",
    "monarch-solutions",
    "nakatomi",
    "prestige-worldwide",
    "sirius-cybernetics",
    "yoyodyne",
    "buy-n-large",
    "gekko-partners",
    "duff-beverages",
    "krusty-foods",
    "wonka-industries",
    "ollivanders",
    "bluth-company",
    "sterling-cooper",
    "los-pollos",
    "los-angeles-ledger",
    "planet-express",
    "spacely-sprockets",
    "cogswell-cogs",
    "rekall",
    "weyland-yutani",
    "virtucon",
    "strickland-propane",
    "paper-street-soap",
    "wernham-hogg",
    "kwik-e-mart",
    "big-kahuna-burger",
    "bushwood-club",
    "frobozz-magic",
    "mom-corp",
    "zorg-industries",
    "ghostbusters-llc",
    "hamlin-hamlin-mcgill",
];

/// Tenant ids, largest first.
pub fn tenant_names() -> Vec<String> {
    TENANT_NAMES.iter().map(|n| n.to_string()).collect()
}

const FIRST_NAMES: [&str; 40] = [
    "alice", "bob", "carol", "dave", "erin", "frank", "grace", "heidi", "ivan", "judy", "karl",
    "laura", "mallory", "nina", "oscar", "peggy", "quentin", "rupert", "sybil", "trent", "ursula",
    "victor", "wendy", "xavier", "yusuf", "zoe", "amir", "bianca", "chen", "dmitri", "elena",
    "fatima", "goran", "hana", "igor", "jamal", "keiko", "lars", "mei", "noah",
];
const LAST_NAMES: [&str; 40] = [
    "smith",
    "garcia",
    "mueller",
    "rossi",
    "kowalski",
    "nguyen",
    "tanaka",
    "schmidt",
    "dubois",
    "jensen",
    "novak",
    "silva",
    "oconnor",
    "ivanova",
    "kim",
    "haddad",
    "patel",
    "johansson",
    "fischer",
    "moreau",
    "costa",
    "andersen",
    "weber",
    "romano",
    "lopez",
    "wagner",
    "yamamoto",
    "becker",
    "horvat",
    "li",
    "nakamura",
    "bauer",
    "ferrari",
    "larsen",
    "meyer",
    "santos",
    "kaya",
    "okafor",
    "petrov",
    "zhang",
];
const SERVICE_ACCOUNTS: [&str; 14] = [
    "svc-etl",
    "svc-backup",
    "svc-billing-sync",
    "svc-crm-import",
    "svc-reporting",
    "svc-scim",
    "svc-ci-deploy",
    "svc-monitoring",
    "svc-search-indexer",
    "svc-mailer",
    "svc-data-warehouse",
    "svc-webhooks",
    "svc-archiver",
    "svc-fraud-scoring",
];
const BROWSERS: [&str; 8] = [
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/130.0.0.0 Safari/537.36",
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/18.1 Safari/605.1.15",
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:132.0) Gecko/20100101 Firefox/132.0",
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/130.0.0.0 Safari/537.36",
    "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/129.0.0.0 Safari/537.36",
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/130.0.0.0 Safari/537.36 Edg/130.0.0.0",
    "Mozilla/5.0 (iPhone; CPU iPhone OS 18_1 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/18.1 Mobile/15E148 Safari/604.1",
    "Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/130.0.0.0 Mobile Safari/537.36",
];
const SDK_AGENTS: [&str; 6] = [
    "attest-sdk-go/1.6.2",
    "attest-sdk-python/2.3.0",
    "Go-http-client/2.0",
    "okhttp/4.12.0",
    "aws-sdk-java/2.25.11",
    "python-requests/2.32.3",
];
const ATTACK_AGENTS: [&str; 4] = [
    "python-requests/2.31.0",
    "curl/8.5.0",
    "Mozilla/5.0 (Windows NT 6.1; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/74.0.3729.169 Safari/537.36",
    "Hydra",
];
/// Usernames brute-force attempts guess that nobody has.
const GUESSES: [&str; 8] = [
    "admin",
    "root",
    "test",
    "administrator",
    "support",
    "info",
    "guest",
    "oracle",
];
const REGIONS: [&str; 5] = [
    "eu-west-1",
    "eu-central-1",
    "us-east-1",
    "us-west-2",
    "ap-southeast-2",
];
/// First octets of residential and mobile networks, for home addresses.
const ISP_OCTETS: [u8; 16] = [
    24, 31, 46, 62, 73, 77, 81, 86, 89, 92, 94, 98, 109, 176, 188, 217,
];
const TIME_ZONES: [i64; 9] = [-8, -5, -5, 0, 1, 1, 2, 5, 9];
const RECORD_TYPES: [(&str, &str); 5] = [
    ("customer", "cus"),
    ("invoice", "inv"),
    ("contract", "ctr"),
    ("ticket", "tkt"),
    ("opportunity", "opp"),
];
const DOCUMENT_WORDS: [&str; 12] = [
    "invoice",
    "contract",
    "q3-report",
    "board-minutes",
    "roadmap",
    "payroll",
    "offer-letter",
    "nda",
    "audit-findings",
    "pricing",
    "security-review",
    "onboarding",
];
const DOCUMENT_EXTENSIONS: [&str; 3] = ["pdf", "docx", "xlsx"];
const APPLICATIONS: [&str; 5] = ["console", "crm", "docs", "reporting", "billing"];
const ROLES: [&str; 7] = [
    "admin",
    "editor",
    "viewer",
    "billing-admin",
    "support",
    "auditor",
    "owner",
];
const GROUPS: [&str; 8] = [
    "engineering",
    "sales",
    "finance",
    "support",
    "contractors",
    "security",
    "hr",
    "marketing",
];
const SETTINGS: [&str; 5] = [
    "password_policy",
    "session_timeout",
    "ip_allowlist",
    "mfa_enforcement",
    "data_residency",
];
const JOBS: [&str; 6] = [
    "nightly-export",
    "crm-sync",
    "invoice-run",
    "index-rebuild",
    "backup-daily",
    "usage-rollup",
];
const POLICIES: [&str; 4] = ["dlp-default", "retention-7y", "access-finance", "access-hr"];
const REPORTS: [&str; 6] = [
    "revenue-monthly",
    "churn-cohorts",
    "pipeline-weekly",
    "ar-aging",
    "headcount",
    "usage-by-region",
];
const SEARCH_TERMS: [&str; 8] = [
    "overdue invoices",
    "renewal q4",
    "open tickets priority:high",
    "customers in germany",
    "contracts expiring",
    "refund requests",
    "vip accounts",
    "churn risk",
];

/// Office hours: relative activity of people per local hour of a weekday.
const OFFICE_HOURS: [f64; 24] = [
    0.08, 0.05, 0.04, 0.04, 0.05, 0.1, 0.25, 0.6, 1.1, 1.5, 1.6, 1.5, 1.1, 1.4, 1.6, 1.5, 1.3, 0.9,
    0.55, 0.4, 0.3, 0.25, 0.18, 0.12,
];
const WEEKEND: f64 = 0.15;

#[derive(Clone, Copy)]
enum Res {
    None,
    App,
    Record,
    Document,
    OtherUser,
    OwnUser,
    Role,
    Group,
    Setting,
    Job,
    Policy,
    Report,
    ApiKey,
}

/// One kind of event: who does it how often, what it touches, how it fails.
struct Act {
    category: Category,
    action: &'static str,
    /// Relative frequency among people's events and among services' events.
    human: u32,
    service: u32,
    res: Res,
    failure: f64,
    denied: f64,
    sources: &'static [&'static str],
}

const fn act(
    category: Category,
    action: &'static str,
    (human, service): (u32, u32),
    res: Res,
    (failure, denied): (f64, f64),
    sources: &'static [&'static str],
) -> Act {
    Act {
        category,
        action,
        human,
        service,
        res,
        failure,
        denied,
        sources,
    }
}

use Category::{
    Admin, Authentication as Auth, DataAccess, DataModification as Modify,
    PermissionChange as Perm, System,
};

const ACTS: [Act; 30] = [
    act(
        Auth,
        "user.login",
        (1400, 0),
        Res::App,
        (0.05, 0.004),
        &["sso"],
    ),
    act(
        Auth,
        "user.logout",
        (600, 0),
        Res::App,
        (0.0, 0.0),
        &["sso"],
    ),
    act(
        Auth,
        "user.mfa_challenge",
        (250, 0),
        Res::None,
        (0.04, 0.0),
        &["sso"],
    ),
    act(
        Auth,
        "user.password_reset",
        (40, 0),
        Res::OwnUser,
        (0.1, 0.0),
        &["sso"],
    ),
    act(
        Auth,
        "session.refresh",
        (400, 0),
        Res::App,
        (0.003, 0.0),
        &["sso"],
    ),
    act(
        Auth,
        "token.issue",
        (0, 600),
        Res::App,
        (0.01, 0.005),
        &["sso"],
    ),
    act(
        DataAccess,
        "record.read",
        (3000, 2500),
        Res::Record,
        (0.002, 0.01),
        &["crm", "api-gateway"],
    ),
    act(
        DataAccess,
        "record.search",
        (800, 200),
        Res::None,
        (0.004, 0.0),
        &["crm"],
    ),
    act(
        DataAccess,
        "document.view",
        (1200, 100),
        Res::Document,
        (0.003, 0.01),
        &["docs"],
    ),
    act(
        DataAccess,
        "document.download",
        (350, 50),
        Res::Document,
        (0.005, 0.02),
        &["docs"],
    ),
    act(
        DataAccess,
        "report.export",
        (120, 80),
        Res::Report,
        (0.01, 0.03),
        &["reporting"],
    ),
    act(
        Modify,
        "record.update",
        (1100, 1500),
        Res::Record,
        (0.01, 0.008),
        &["crm", "api-gateway"],
    ),
    act(
        Modify,
        "record.create",
        (600, 900),
        Res::Record,
        (0.008, 0.004),
        &["crm", "api-gateway"],
    ),
    act(
        Modify,
        "record.delete",
        (100, 60),
        Res::Record,
        (0.01, 0.05),
        &["crm"],
    ),
    act(
        Modify,
        "document.upload",
        (250, 50),
        Res::Document,
        (0.02, 0.005),
        &["docs"],
    ),
    act(
        Modify,
        "document.delete",
        (50, 0),
        Res::Document,
        (0.01, 0.04),
        &["docs"],
    ),
    act(
        Perm,
        "role.grant",
        (40, 10),
        Res::Role,
        (0.0, 0.06),
        &["admin-console", "scim"],
    ),
    act(
        Perm,
        "role.revoke",
        (30, 10),
        Res::Role,
        (0.0, 0.04),
        &["admin-console", "scim"],
    ),
    act(
        Perm,
        "group.member_add",
        (50, 60),
        Res::Group,
        (0.005, 0.03),
        &["admin-console", "scim"],
    ),
    act(
        Perm,
        "group.member_remove",
        (30, 40),
        Res::Group,
        (0.005, 0.02),
        &["admin-console", "scim"],
    ),
    act(
        Perm,
        "policy.update",
        (10, 0),
        Res::Policy,
        (0.0, 0.1),
        &["admin-console"],
    ),
    act(
        Admin,
        "user.create",
        (40, 60),
        Res::OtherUser,
        (0.02, 0.01),
        &["admin-console", "scim"],
    ),
    act(
        Admin,
        "user.disable",
        (20, 20),
        Res::OtherUser,
        (0.01, 0.02),
        &["admin-console", "scim"],
    ),
    act(
        Admin,
        "api_key.create",
        (10, 0),
        Res::ApiKey,
        (0.0, 0.05),
        &["admin-console"],
    ),
    act(
        Admin,
        "api_key.revoke",
        (8, 0),
        Res::ApiKey,
        (0.0, 0.02),
        &["admin-console"],
    ),
    act(
        Admin,
        "settings.update",
        (20, 0),
        Res::Setting,
        (0.01, 0.08),
        &["admin-console"],
    ),
    act(
        System,
        "job.run",
        (0, 900),
        Res::Job,
        (0.03, 0.0),
        &["scheduler"],
    ),
    act(
        System,
        "backup.complete",
        (0, 80),
        Res::Job,
        (0.01, 0.0),
        &["backup"],
    ),
    act(
        System,
        "config.reload",
        (0, 40),
        Res::None,
        (0.005, 0.0),
        &["scheduler"],
    ),
    act(
        System,
        "certificate.rotate",
        (0, 10),
        Res::Setting,
        (0.02, 0.0),
        &["scheduler"],
    ),
];

struct Person {
    id: String,
    ips: Vec<String>,
    agent: &'static str,
}

struct ServiceAccount {
    id: String,
    ip: String,
    agent: &'static str,
    version: String,
}

struct Tenant {
    name: String,
    share: f64,
    tz: i64,
    /// Relative growth from the first to the last day of the span.
    growth: f64,
    /// Whether the tenant's services send their own event ids rather than
    /// leaving them to Attest (which assigns UUIDv7s).
    own_ids: bool,
    regions: [&'static str; 2],
    people: Vec<Person>,
    pick_person: WeightedIndex<f64>,
    services: Vec<ServiceAccount>,
    pick_service: WeightedIndex<f64>,
    office_ips: Vec<String>,
    records: u32,
    documents: u32,
    partition: usize,
    last_request: String,
}

/// A brute-force attempt: many failed sign-ins within minutes.
struct Burst {
    tenant: usize,
    start_ms: i64,
    duration_ms: i64,
    events: u64,
    ips: Vec<String>,
    agent: &'static str,
}

/// Everything fixed before the first event: tenants, people, bursts.
pub struct Plan {
    pub events: u64,
    pub start_ms: i64,
    pub end_ms: i64,
    tenants: Vec<Tenant>,
    bursts: Vec<Burst>,
    pick_human_act: WeightedIndex<u32>,
    pick_service_act: WeightedIndex<u32>,
    rng: StdRng,
}

/// How the data set was put together, for the report.
pub struct Shape {
    pub bursts: usize,
    pub burst_events: u64,
    pub people: usize,
    pub service_accounts: usize,
}

fn zipf_weights(n: usize, s: f64) -> Vec<f64> {
    (1..=n).map(|k| (k as f64).powf(-s)).collect()
}

/// An index in `0..n` where small indexes are far more likely: about half
/// the draws fall in the first tenth.
fn skewed(rng: &mut StdRng, n: u32) -> u32 {
    let u: f64 = rng.gen();
    ((n as f64 * u * u * u) as u32).min(n.saturating_sub(1))
}

fn home_ip(rng: &mut StdRng) -> String {
    if rng.gen_bool(0.06) {
        format!(
            "2a02:{:x}:{:x}:{:x}::{:x}",
            rng.gen_range(0x1000..0xffffu32),
            rng.gen_range(1..0xffffu32),
            rng.gen_range(1..0xffffu32),
            rng.gen_range(1..0xffffu32)
        )
    } else {
        format!(
            "{}.{}.{}.{}",
            ISP_OCTETS[rng.gen_range(0..ISP_OCTETS.len())],
            rng.gen_range(0..=255u8),
            rng.gen_range(0..=255u8),
            rng.gen_range(1..=254u8)
        )
    }
}

fn public_ip(rng: &mut StdRng) -> String {
    format!(
        "{}.{}.{}.{}",
        rng.gen_range(1..=223u8),
        rng.gen_range(0..=255u8),
        rng.gen_range(0..=255u8),
        rng.gen_range(1..=254u8)
    )
}

/// People's activity in a tenant's local hour, 1.0 on average over a week.
fn office_activity(local_ms: i64) -> f64 {
    let hour = local_ms.div_euclid(HOUR_MS);
    let hour_of_day = hour.rem_euclid(24) as usize;
    // 1970-01-01 was a Thursday; 0 is Monday.
    let weekday = (hour.div_euclid(24) + 3).rem_euclid(7);
    let weekday_mean: f64 = OFFICE_HOURS.iter().sum::<f64>() / 24.0;
    let week_mean = weekday_mean * (5.0 + 2.0 * WEEKEND) / 7.0;
    let day = if weekday >= 5 { WEEKEND } else { 1.0 };
    OFFICE_HOURS[hour_of_day] * day / week_mean
}

impl Plan {
    pub fn new(events: u64, end_ms: i64) -> Plan {
        let mut rng = StdRng::seed_from_u64(SEED);
        let start_ms = end_ms - SPAN_DAYS * 24 * HOUR_MS;
        let weights = zipf_weights(TENANT_NAMES.len(), TENANT_SKEW);
        let total: f64 = weights.iter().sum();
        let tenants: Vec<Tenant> = TENANT_NAMES
            .iter()
            .zip(&weights)
            .enumerate()
            .map(|(index, (name, weight))| {
                let share = weight / total;
                let expected = share * events as f64;
                let people_count = ((expected / 1_500.0) as usize).clamp(12, 4_000);
                let people: Vec<Person> = (0..people_count)
                    .map(|i| {
                        let first = FIRST_NAMES[i % FIRST_NAMES.len()];
                        let last = LAST_NAMES[(i / FIRST_NAMES.len() + i) % LAST_NAMES.len()];
                        let round = i / (FIRST_NAMES.len() * LAST_NAMES.len());
                        let suffix = if round == 0 {
                            String::new()
                        } else {
                            round.to_string()
                        };
                        let ips = (0..rng.gen_range(1..=3))
                            .map(|_| home_ip(&mut rng))
                            .collect();
                        Person {
                            id: format!("{first}.{last}{suffix}@{name}.example"),
                            ips,
                            agent: BROWSERS[rng.gen_range(0..BROWSERS.len())],
                        }
                    })
                    .collect();
                let service_count =
                    (4 + (expected / 150_000.0) as usize).min(SERVICE_ACCOUNTS.len());
                let services: Vec<ServiceAccount> = (0..service_count)
                    .map(|i| ServiceAccount {
                        id: SERVICE_ACCOUNTS[(i + index) % SERVICE_ACCOUNTS.len()].to_string(),
                        ip: format!("10.{}.{}.{}", index, 200 + i, rng.gen_range(2..=250u8)),
                        agent: SDK_AGENTS[rng.gen_range(0..SDK_AGENTS.len())],
                        version: format!(
                            "{}.{}.{}",
                            rng.gen_range(1..4),
                            rng.gen_range(0..20),
                            rng.gen_range(0..10)
                        ),
                    })
                    .collect();
                let office_ips = (0..rng.gen_range(2..=4))
                    .map(|_| public_ip(&mut rng))
                    .collect();
                let region = rng.gen_range(0..REGIONS.len());
                Tenant {
                    name: name.to_string(),
                    share,
                    tz: TIME_ZONES[rng.gen_range(0..TIME_ZONES.len())],
                    growth: rng.gen_range(0.0..0.8),
                    own_ids: rng.gen_bool(0.2),
                    regions: [REGIONS[region], REGIONS[(region + 1) % REGIONS.len()]],
                    pick_person: WeightedIndex::new(zipf_weights(people.len(), 0.8))
                        .expect("positive weights"),
                    people,
                    pick_service: WeightedIndex::new(zipf_weights(services.len(), 1.0))
                        .expect("positive weights"),
                    services,
                    office_ips,
                    records: ((expected / 20.0) as u32).max(500),
                    documents: ((expected / 200.0) as u32).max(100),
                    partition: index % PARTITIONS,
                    last_request: String::new(),
                }
            })
            .collect();

        // About 2 % of all events, in bursts of 100–2,000 at full size:
        // larger tenants are attacked more often, but not in proportion.
        let scale = (events as f64 / 10_000_000.0).min(1.0);
        let burst_count = ((events / 50_000) as usize).max(4);
        let attacked =
            WeightedIndex::new(tenants.iter().map(|t| t.share.sqrt())).expect("positive weights");
        let mut bursts: Vec<Burst> = (0..burst_count)
            .map(|_| {
                let tenant = attacked.sample(&mut rng);
                let size = rng.gen_range(100.0..2_000.0) * scale;
                let botnet = rng.gen_bool(0.4);
                let ips = (0..if botnet { rng.gen_range(5..40) } else { 1 })
                    .map(|_| public_ip(&mut rng))
                    .collect();
                Burst {
                    tenant,
                    start_ms: rng.gen_range(start_ms..end_ms - HOUR_MS),
                    duration_ms: rng.gen_range(5..45) * 60_000,
                    events: (size as u64).max(10),
                    ips,
                    agent: ATTACK_AGENTS[rng.gen_range(0..ATTACK_AGENTS.len())],
                }
            })
            .collect();
        bursts.sort_by_key(|b| b.start_ms);
        let burst_events: u64 = bursts.iter().map(|b| b.events).sum();
        if burst_events > events / 10 {
            // Tiny data sets: no bursts rather than mostly bursts.
            bursts.clear();
        }
        Plan {
            events,
            start_ms,
            end_ms,
            tenants,
            bursts,
            pick_human_act: WeightedIndex::new(ACTS.iter().map(|a| a.human))
                .expect("positive weights"),
            pick_service_act: WeightedIndex::new(ACTS.iter().map(|a| a.service))
                .expect("positive weights"),
            rng,
        }
    }

    pub fn shape(&self) -> Shape {
        Shape {
            bursts: self.bursts.len(),
            burst_events: self.bursts.iter().map(|b| b.events).sum(),
            people: self.tenants.iter().map(|t| t.people.len()).sum(),
            service_accounts: self.tenants.iter().map(|t| t.services.len()).sum(),
        }
    }

    fn hours(&self) -> i64 {
        (self.end_ms - self.start_ms) / HOUR_MS
    }

    /// Expected events of a tenant in an hour, relative; and the share of
    /// them that people (not services) send.
    fn cell(&self, tenant: &Tenant, hour: i64) -> (f64, f64) {
        let start = self.start_ms + hour * HOUR_MS;
        let progress = hour as f64 / self.hours() as f64;
        let people = (1.0 - SERVICE_SHARE) * office_activity(start + tenant.tz * HOUR_MS);
        let weight =
            tenant.share * (1.0 + tenant.growth * (progress - 0.5)) * (people + SERVICE_SHARE);
        (weight, people / (people + SERVICE_SHARE))
    }

    /// Generates every event, hour by hour, handing batches of about
    /// `batch` rows to `sink`; stops early when `sink` returns false.
    /// Exactly `self.events` events in all.
    pub fn generate(mut self, batch: usize, mut sink: impl FnMut(Vec<EventRow>) -> bool) {
        let burst_events: u64 = self.bursts.iter().map(|b| b.events).sum();
        let regular = self.events - burst_events;
        let hours = self.hours();
        let total: f64 = (0..hours)
            .flat_map(|h| self.tenants.iter().map(move |t| (t, h)))
            .map(|(t, h)| self.cell(t, h).0)
            .sum();
        let mut offsets = [[0i64; PARTITIONS]; 6];
        let mut rows = Vec::with_capacity(batch + 10_000);
        // Cumulative rounding: the cells' counts add up to `regular` exactly.
        let mut cumulative = 0.0;
        let mut emitted = 0u64;
        let mut next_burst = 0;
        let bursts = std::mem::take(&mut self.bursts);
        for hour in 0..hours {
            let hour_start = self.start_ms + hour * HOUR_MS;
            for t in 0..self.tenants.len() {
                let (weight, people) = self.cell(&self.tenants[t], hour);
                cumulative += weight;
                let target = ((cumulative / total) * regular as f64).round() as u64;
                let count = target.min(regular).saturating_sub(emitted);
                emitted += count;
                for _ in 0..count {
                    let at = hour_start + self.rng.gen_range(0..HOUR_MS);
                    let human = self.rng.gen_bool(people);
                    let event = self.event(t, at, human);
                    rows.push(row(event, &mut offsets, self.tenants[t].partition));
                }
            }
            while next_burst < bursts.len() && bursts[next_burst].start_ms < hour_start + HOUR_MS {
                let burst = &bursts[next_burst];
                for i in 0..burst.events {
                    let at = burst.start_ms
                        + (burst.duration_ms * i as i64) / burst.events as i64
                        + self.rng.gen_range(0..2_000);
                    let event = self.attempt(burst, at.min(self.end_ms - 1));
                    rows.push(row(
                        event,
                        &mut offsets,
                        self.tenants[burst.tenant].partition,
                    ));
                }
                next_burst += 1;
            }
            if rows.len() >= batch
                && !sink(std::mem::replace(
                    &mut rows,
                    Vec::with_capacity(batch + 10_000),
                ))
            {
                return;
            }
        }
        if !rows.is_empty() {
            sink(rows);
        }
    }

    fn event_id(&mut self, tenant: usize, at: i64) -> String {
        if self.tenants[tenant].own_ids {
            format!(
                "evt_{:x}{:010x}",
                at,
                self.rng.gen::<u64>() & 0xff_ffff_ffff
            )
        } else {
            let bytes: [u8; 10] = self.rng.gen();
            uuid::Builder::from_unix_timestamp_millis(at as u64, &bytes)
                .into_uuid()
                .to_string()
        }
    }

    /// Requests fan out across services: some events share the previous
    /// event's request id, most get a new one, a few have none.
    fn request_id(&mut self, tenant: usize) -> Option<String> {
        if self.rng.gen_bool(0.15) {
            return None;
        }
        let t = &mut self.tenants[tenant];
        if t.last_request.is_empty() || !self.rng.gen_bool(0.12) {
            t.last_request = format!("req-{:016x}", self.rng.gen::<u64>());
        }
        Some(t.last_request.clone())
    }

    /// Ingest latency: usually under a second or two, now and then minutes
    /// (a client retrying, or a spool draining after a broker outage).
    fn received(&mut self, at: i64) -> i64 {
        let delay = if self.rng.gen_bool(0.003) {
            self.rng.gen_range(60_000..1_800_000)
        } else {
            let u: f64 = self.rng.gen();
            30 + (u * u * 2_000.0) as i64
        };
        (at + delay).min(self.end_ms)
    }

    fn event(&mut self, t: usize, at: i64, human: bool) -> AuditEvent {
        let pick = if human {
            self.pick_human_act.sample(&mut self.rng)
        } else {
            self.pick_service_act.sample(&mut self.rng)
        };
        let a = &ACTS[pick];
        let outcome = {
            let u: f64 = self.rng.gen();
            if u < a.failure {
                Outcome::Failure
            } else if u < a.failure + a.denied {
                Outcome::Denied
            } else {
                Outcome::Success
            }
        };
        let rng = &mut self.rng;
        let tenant = &self.tenants[t];
        let (actor, client_version) = if human {
            let p = &tenant.people[tenant.pick_person.sample(rng)];
            // At the office most of the time, otherwise from home.
            let ip = if rng.gen_bool(0.6) {
                tenant.office_ips[rng.gen_range(0..tenant.office_ips.len())].clone()
            } else {
                p.ips[rng.gen_range(0..p.ips.len())].clone()
            };
            (
                Actor {
                    id: p.id.clone(),
                    kind: "user".into(),
                    ip: Some(ip),
                    user_agent: Some(p.agent.to_string()),
                },
                None,
            )
        } else {
            let s = &tenant.services[tenant.pick_service.sample(rng)];
            (
                Actor {
                    id: s.id.clone(),
                    kind: "service".into(),
                    ip: Some(s.ip.clone()),
                    user_agent: Some(s.agent.to_string()),
                },
                Some(s.version.clone()),
            )
        };
        let resource = match a.res {
            Res::None => None,
            Res::App => Some((
                "application",
                APPLICATIONS[rng.gen_range(0..APPLICATIONS.len())].to_string(),
            )),
            Res::Record => {
                let i = skewed(rng, tenant.records);
                let (kind, prefix) = RECORD_TYPES[i as usize % RECORD_TYPES.len()];
                Some((kind, format!("{prefix}_{i:07}")))
            }
            Res::Document => {
                let i = skewed(rng, tenant.documents) as usize;
                let word = DOCUMENT_WORDS[i % DOCUMENT_WORDS.len()];
                let ext =
                    DOCUMENT_EXTENSIONS[(i / DOCUMENT_WORDS.len()) % DOCUMENT_EXTENSIONS.len()];
                Some(("document", format!("{word}-{i}.{ext}")))
            }
            Res::OtherUser => Some((
                "user",
                tenant.people[rng.gen_range(0..tenant.people.len())]
                    .id
                    .clone(),
            )),
            Res::OwnUser => Some(("user", actor.id.clone())),
            Res::Role => Some(("role", ROLES[rng.gen_range(0..ROLES.len())].to_string())),
            Res::Group => Some(("group", GROUPS[rng.gen_range(0..GROUPS.len())].to_string())),
            Res::Setting => Some((
                "setting",
                SETTINGS[rng.gen_range(0..SETTINGS.len())].to_string(),
            )),
            Res::Job => Some(("job", JOBS[rng.gen_range(0..JOBS.len())].to_string())),
            Res::Policy => Some((
                "policy",
                POLICIES[rng.gen_range(0..POLICIES.len())].to_string(),
            )),
            Res::Report => Some((
                "report",
                REPORTS[rng.gen_range(0..REPORTS.len())].to_string(),
            )),
            Res::ApiKey => Some(("api_key", format!("key_{:08x}", rng.gen::<u32>()))),
        };

        let mut metadata = BTreeMap::new();
        let region = tenant.regions[usize::from(rng.gen_bool(0.15))];
        metadata.insert("region".to_string(), region.to_string());
        let source = a.sources[rng.gen_range(0..a.sources.len())];
        if let (Some((kind, id)), true) = (&resource, source != "sso") {
            let method = match a.action.rsplit('.').next().unwrap_or_default() {
                "create" | "upload" | "run" | "member_add" | "grant" => "POST",
                "update" | "disable" => "PUT",
                "delete" | "revoke" | "member_remove" => "DELETE",
                _ => "GET",
            };
            metadata.insert("http_method".to_string(), method.to_string());
            metadata.insert("path".to_string(), format!("/api/v2/{kind}s/{id}"));
        }
        match (a.category, outcome) {
            (Category::Authentication, Outcome::Failure) => {
                let reason = [
                    "invalid_password",
                    "invalid_password",
                    "mfa_failed",
                    "account_locked",
                ][rng.gen_range(0..4)];
                metadata.insert("reason".to_string(), reason.to_string());
            }
            (_, Outcome::Denied) => {
                let reason = ["insufficient_role", "ip_not_allowed", "policy_violation"]
                    [rng.gen_range(0..3)];
                metadata.insert("reason".to_string(), reason.to_string());
                metadata.insert(
                    "required_role".to_string(),
                    ROLES[rng.gen_range(0..ROLES.len())].to_string(),
                );
            }
            (_, Outcome::Failure) => {
                let error = [
                    "timeout",
                    "validation_failed",
                    "conflict",
                    "upstream_unavailable",
                ][rng.gen_range(0..4)];
                metadata.insert("error".to_string(), error.to_string());
            }
            _ => {}
        }
        match a.action {
            "user.login" | "user.mfa_challenge" => {
                let mfa =
                    ["totp", "totp", "webauthn", "webauthn", "sms", "none"][rng.gen_range(0..6)];
                metadata.insert("mfa".to_string(), mfa.to_string());
            }
            "record.search" => {
                let terms = SEARCH_TERMS[rng.gen_range(0..SEARCH_TERMS.len())];
                metadata.insert("query".to_string(), terms.to_string());
            }
            "document.download" | "report.export" => {
                metadata.insert(
                    "bytes".to_string(),
                    rng.gen_range(2_000..40_000_000u64).to_string(),
                );
            }
            "job.run" | "backup.complete" => {
                metadata.insert(
                    "duration_ms".to_string(),
                    rng.gen_range(200..3_600_000u64).to_string(),
                );
            }
            _ => {}
        }
        if matches!(a.category, Category::PermissionChange | Category::Admin) && rng.gen_bool(0.6) {
            let prefix = ["SEC", "CHG", "IT"][rng.gen_range(0..3)];
            metadata.insert(
                "ticket".to_string(),
                format!("{prefix}-{}", rng.gen_range(1_000..10_000)),
            );
        }
        if let Some(version) = client_version {
            metadata.insert("client_version".to_string(), version);
        }
        let tenant_name = tenant.name.clone();
        let resource = resource.map(|(kind, id)| Resource {
            kind: kind.to_string(),
            id,
        });
        AuditEvent {
            event_id: self.event_id(t, at),
            tenant_id: tenant_name,
            occurred_at: at,
            received_at: self.received(at),
            category: a.category,
            action: a.action.to_string(),
            outcome,
            actor,
            resource,
            source_service: source.to_string(),
            request_id: self.request_id(t),
            metadata,
        }
    }

    /// One sign-in attempt of a brute-force burst: mostly real usernames
    /// (credential stuffing) and some guesses; now and then one succeeds.
    fn attempt(&mut self, burst: &Burst, at: i64) -> AuditEvent {
        let rng = &mut self.rng;
        let tenant = &self.tenants[burst.tenant];
        let guessed = rng.gen_bool(0.45);
        let actor_id = if guessed {
            format!(
                "{}@{}.example",
                GUESSES[rng.gen_range(0..GUESSES.len())],
                tenant.name
            )
        } else {
            tenant.people[rng.gen_range(0..tenant.people.len())]
                .id
                .clone()
        };
        let success = !guessed && rng.gen_bool(0.002);
        let mut metadata = BTreeMap::new();
        metadata.insert("region".to_string(), tenant.regions[0].to_string());
        metadata.insert("mfa".to_string(), "none".to_string());
        if !success {
            let reason = if guessed {
                "unknown_user"
            } else {
                "invalid_password"
            };
            metadata.insert("reason".to_string(), reason.to_string());
        }
        let ip = burst.ips[rng.gen_range(0..burst.ips.len())].clone();
        let tenant_name = tenant.name.clone();
        AuditEvent {
            event_id: self.event_id(burst.tenant, at),
            tenant_id: tenant_name,
            occurred_at: at,
            received_at: self.received(at),
            category: Category::Authentication,
            action: "user.login".to_string(),
            outcome: if success {
                Outcome::Success
            } else {
                Outcome::Failure
            },
            actor: Actor {
                id: actor_id,
                kind: "user".to_string(),
                ip: Some(ip),
                user_agent: Some(burst.agent.to_string()),
            },
            resource: Some(Resource {
                kind: "application".to_string(),
                id: "console".to_string(),
            }),
            source_service: "sso".to_string(),
            request_id: self.request_id(burst.tenant),
            metadata,
        }
    }
}

/// The row the writer would have stored for this event, had it come from
/// Kafka: the tenant is the message key, so a tenant's events share a
/// partition of their category's topic.
fn row(event: AuditEvent, offsets: &mut [[i64; PARTITIONS]; 6], partition: usize) -> EventRow {
    let topic = Category::ALL
        .iter()
        .position(|c| *c == event.category)
        .unwrap_or(0);
    let offset = offsets[topic][partition];
    offsets[topic][partition] += 1;
    EventRow::new(
        event,
        Provenance {
            schema_id: SCHEMA_ID,
            partition: partition as i32,
            offset,
        },
    )
}
