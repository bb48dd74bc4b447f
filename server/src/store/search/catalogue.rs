//! The search queries as catalogue templates (`attest sql`), with a
//! representative compiled query in place of the analyst's.

use app::query::compile_str;
use app::search_state::{Sort, SortColumn, SortDir};

use super::sql::{self, Arrival, Shape};
use crate::store::queries::QueryTemplate;

/// Shown in `attest sql` and run on a current ClickHouse by
/// `server/tests/modern_clickhouse.py`, which knows these names.
pub(crate) const REPRESENTATIVE_QUERY: &str =
    "(outcome:failure OR outcome:denied) -actor.type:service action:user.* metadata.k:v mall";
/// Names of the values of the catalogue's search templates, in placeholder
/// order: [`REPRESENTATIVE_QUERY`]'s values where it is used (its
/// conditions stand first, in PREWHERE), then the window, then tenant and
/// cursor where the shape has them.
const PAGE_FILTER_PARAMS: [&str; 16] = [
    "q_outcome_1",
    "q_outcome_2",
    "q_actor_type",
    "q_action_regex",
    "q_metadata_key",
    "q_metadata_value",
    "q_text",
    "q_text",
    "q_text",
    "q_text",
    "q_text",
    "from_s",
    "to_s",
    "from_ms",
    "to_ms",
    "snapshot_ms",
];
static PAGE_PARAMS: [&str; 17] = joined(PAGE_FILTER_PARAMS, ["limit"]);
/// A page whose hits carry metadata columns: the keys first (they stand in
/// the SELECT), then a page's values.
static PAGE_METADATA_PARAMS: [&str; 18] = joined(["metadata_keys"], PAGE_PARAMS);

/// `first`, then `rest`: a query's values when some placeholders come
/// before another query's. `M` is `N + K`; anything else fails to compile.
const fn joined<const N: usize, const K: usize, const M: usize>(
    first: [&'static str; N],
    rest: [&'static str; K],
) -> [&'static str; M] {
    assert!(M == N + K, "the two lists, whole");
    let mut all = [""; M];
    let mut i = 0;
    while i < M {
        all[i] = if i < N { first[i] } else { rest[i - N] };
        i += 1;
    }
    all
}

/// A search's window: its bounds in seconds (partition pruning) and in
/// ms, then the snapshot. Every search template's values start from it.
const WINDOW_PARAMS: [&str; 5] = ["from_s", "to_s", "from_ms", "to_ms", "snapshot_ms"];
/// The window of one tenant.
const TENANT_WINDOW_PARAMS: [&str; 6] = joined(WINDOW_PARAMS, ["tenant"]);
/// A time series' bucket: offset and width, as the bucket expression
/// uses them.
const BUCKET_PARAMS: [&str; 4] = [
    "bucket_offset_ms",
    "bucket_ms",
    "bucket_ms",
    "bucket_offset_ms",
];
/// [`app::dashboard_model::FAILED_OUTCOMES`]'s values (the same names as
/// [`REPRESENTATIVE_QUERY`]'s outcomes).
const FAILED_PARAMS: [&str; 2] = ["q_outcome_1", "q_outcome_2"];

static TENANT_CURSOR_PARAMS: [&str; 14] = joined(
    TENANT_WINDOW_PARAMS,
    [
        "cursor_ms",
        "cursor_ms",
        "cursor_id",
        "cursor_id",
        "cursor_tenant",
        "cursor_tenant",
        "cursor_hash",
        "limit",
    ],
);
/// A page of one tenant by actor after a cursor: the cursor's actor, then
/// the tie-break's values as in [`TENANT_CURSOR_PARAMS`].
static TENANT_SORTED_CURSOR_PARAMS: [&str; 16] = joined(
    TENANT_WINDOW_PARAMS,
    [
        "cursor_actor",
        "cursor_actor",
        "cursor_ms",
        "cursor_ms",
        "cursor_id",
        "cursor_id",
        "cursor_tenant",
        "cursor_tenant",
        "cursor_hash",
        "limit",
    ],
);
static WITHIN_PARAMS: [&str; 8] = joined(TENANT_WINDOW_PARAMS, ["other_tenant", "limit"]);
static COUNT_PARAMS: [&str; 5] = WINDOW_PARAMS;
/// Networks of both families, to run the address checks on a current
/// ClickHouse, whose conversion functions throw on text that is no address.
pub(crate) const NETWORK_QUERY: &str = "ip:203.0.113.0/25 OR ip:2001:db8::/32";
static NETWORK_PARAMS: [&str; 15] = [
    "q_ipv4_regex",
    "q_ipv4_regex",
    "q_ipv4_fallback",
    "q_ipv4_first",
    "q_ipv4_last",
    "q_ipv6_regex",
    "q_ipv6_regex",
    "q_ipv6_fallback",
    "q_ipv6_first",
    "q_ipv6_last",
    "from_s",
    "to_s",
    "from_ms",
    "to_ms",
    "snapshot_ms",
];
static NEWER_PARAMS: [&str; 6] = ["from_s", "to_s", "from_ms", "to_ms", "since_ms", "tenant"];
/// The newer window, then the tail's position (offsets, then their keys),
/// the writers' committed offsets (the same) and the poll's limit.
static TAIL_PARAMS: [&str; 11] = [
    "from_s",
    "to_s",
    "from_ms",
    "to_ms",
    "since_ms",
    "tenant",
    "tail_offsets",
    "tail_keys",
    "committed_offsets",
    "committed_keys",
    "limit",
];
static FACET_PARAMS: [&str; 7] = joined(TENANT_WINDOW_PARAMS, ["facet_values"]);
/// One metadata key's values: a tenant's window, the key twice (inner and
/// outer), the limit.
static METADATA_VALUES_PARAMS: [&str; 9] = joined(
    TENANT_WINDOW_PARAMS,
    ["q_metadata_key", "q_metadata_key", "facet_values"],
);
/// The events that carry one metadata key ("Count by" a key): a tenant's
/// window, then the key.
static METADATA_KEY_EVENTS_PARAMS: [&str; 7] = joined(TENANT_WINDOW_PARAMS, ["q_metadata_key"]);
/// The live tail with metadata columns: the keys, then the tail's values.
static TAIL_METADATA_PARAMS: [&str; 12] = [
    "metadata_keys",
    "from_s",
    "to_s",
    "from_ms",
    "to_ms",
    "since_ms",
    "tenant",
    "tail_offsets",
    "tail_keys",
    "committed_offsets",
    "committed_keys",
    "limit",
];

/// The dashboard's series: the bucket's values, then a search's window.
static SERIES_PARAMS: [&str; 9] = joined(BUCKET_PARAMS, WINDOW_PARAMS);
static SERIES_TENANT_PARAMS: [&str; 10] = joined(BUCKET_PARAMS, TENANT_WINDOW_PARAMS);

/// Panels 1, 2 and 8 in one query: the slot's width, then a window.
static TIMELINE_PARAMS: [&str; 7] = joined(["slot_ms", "slot_ms"], WINDOW_PARAMS);
static TIMELINE_TENANT_PARAMS: [&str; 8] = joined(["slot_ms", "slot_ms"], TENANT_WINDOW_PARAMS);

/// A window without tenant, then a limit: the dashboard's top values.
static TOP_PARAMS: [&str; 6] = joined(WINDOW_PARAMS, ["limit"]);
/// Top actors: the failure condition's values (the same names as the
/// representative query's outcomes), then a page's window without a limit.
static TOP_ACTORS_PARAMS: [&str; 18] = joined(FAILED_PARAMS, PAGE_FILTER_PARAMS);
static TOP_ACTORS_TENANT_PARAMS: [&str; 8] = joined(FAILED_PARAMS, TENANT_WINDOW_PARAMS);
/// New actors: a tenant's window, then what "before" means (the window's
/// start and the snapshot, the tenant again).
static NEW_ACTORS_TENANT_PARAMS: [&str; 10] = joined(
    TENANT_WINDOW_PARAMS,
    ["from_s", "from_ms", "snapshot_ms", "tenant"],
);
static NEW_ACTORS_PARAMS: [&str; 8] = joined(WINDOW_PARAMS, ["from_s", "from_ms", "snapshot_ms"]);

/// The dashboard's panels 4–9 (server/src/store/search/dashboard.rs).
fn panel_templates() -> Vec<QueryTemplate> {
    use app::dashboard_model::Panel;
    let window = |tenants| {
        sql::where_sql(
            Shape {
                tenants,
                cursor: None,
                arrival: Arrival::UpToSnapshot,
            },
            "1",
        )
    };
    let mut out: Vec<QueryTemplate> = [Panel::FailureSources, Panel::Privileged, Panel::Tenants]
        .into_iter()
        .map(|panel| QueryTemplate {
            name: format!("dashboard_top_{}", panel.param().replace('-', "_")),
            sql: super::dashboard::top_values_sql(panel.fields(), &window(0)),
            params: &COUNT_PARAMS,
        })
        .collect();
    out.extend([
        QueryTemplate {
            name: "dashboard_new_actors_for_tenant".into(),
            sql: super::dashboard::new_actors_sql(&window(1), 1),
            params: &NEW_ACTORS_TENANT_PARAMS,
        },
        QueryTemplate {
            name: "dashboard_new_actors".into(),
            sql: super::dashboard::new_actors_sql(&window(0), 0),
            params: &NEW_ACTORS_PARAMS,
        },
        QueryTemplate {
            name: "dashboard_heatmap_quarters".into(),
            sql: super::dashboard::quarters_sql(&window(0)),
            params: &COUNT_PARAMS,
        },
        QueryTemplate {
            name: "dashboard_timeline".into(),
            sql: super::dashboard::timeline_sql(&window(0)),
            params: &TIMELINE_PARAMS,
        },
        QueryTemplate {
            name: "dashboard_timeline_for_tenant".into(),
            sql: super::dashboard::timeline_sql(&window(1)),
            params: &TIMELINE_TENANT_PARAMS,
        },
    ]);
    out
}

/// Every search query, as templates for the catalogue.
pub(crate) fn templates() -> Vec<QueryTemplate> {
    let representative = compile_str(REPRESENTATIVE_QUERY, 0)
        .map(|c| c.sql)
        .unwrap_or_default();
    let failed = compile_str(app::dashboard_model::FAILED_OUTCOMES, 0)
        .map(|c| c.sql)
        .unwrap_or_default();
    let shape = |tenant: bool, cursor: bool, arrival| Shape {
        tenants: usize::from(tenant),
        cursor: cursor.then(Sort::default),
        arrival,
    };
    let up_to = Arrival::UpToSnapshot;
    let sorted = |column, dir| Sort { column, dir };
    let by_actor = sorted(SortColumn::Actor, SortDir::Asc);
    let mut all = vec![
        QueryTemplate {
            name: "search_page".into(),
            sql: sql::page_sql(
                &sql::where_sql(shape(false, false, up_to), &representative),
                false,
                Sort::default(),
            ),
            params: &PAGE_PARAMS,
        },
        QueryTemplate {
            name: "search_page_with_metadata".into(),
            sql: sql::page_sql(
                &sql::where_sql(shape(false, false, up_to), &representative),
                true,
                Sort::default(),
            ),
            params: &PAGE_METADATA_PARAMS,
        },
        QueryTemplate {
            name: "search_page_for_tenant_after_cursor".into(),
            sql: sql::page_sql(
                &sql::where_sql(shape(true, true, up_to), "1"),
                false,
                Sort::default(),
            ),
            params: &TENANT_CURSOR_PARAMS,
        },
        QueryTemplate {
            name: "search_page_within_tenants".into(),
            sql: sql::page_sql(
                &sql::where_sql(
                    Shape {
                        tenants: 2,
                        cursor: None,
                        arrival: up_to,
                    },
                    "1",
                ),
                false,
                Sort::default(),
            ),
            params: &WITHIN_PARAMS,
        },
        QueryTemplate {
            name: "search_count".into(),
            sql: sql::count_sql(&sql::where_sql(shape(false, false, up_to), "1")),
            params: &COUNT_PARAMS,
        },
        QueryTemplate {
            name: "search_count_in_networks".into(),
            sql: sql::count_sql(&sql::where_sql(
                shape(false, false, up_to),
                &compile_str(NETWORK_QUERY, 0)
                    .map(|c| c.sql)
                    .unwrap_or_default(),
            )),
            params: &NETWORK_PARAMS,
        },
        QueryTemplate {
            name: "search_newer_for_tenant".into(),
            sql: sql::count_sql(&sql::where_sql(
                shape(true, false, Arrival::AfterSnapshot),
                "1",
            )),
            params: &NEWER_PARAMS,
        },
        QueryTemplate {
            name: "search_tail_for_tenant".into(),
            sql: sql::tail_sql(
                &sql::where_sql(shape(true, false, Arrival::AfterSnapshot), "1"),
                false,
            ),
            params: &TAIL_PARAMS,
        },
        QueryTemplate {
            name: "search_tail_with_metadata_for_tenant".into(),
            sql: sql::tail_sql(
                &sql::where_sql(shape(true, false, Arrival::AfterSnapshot), "1"),
                true,
            ),
            params: &TAIL_METADATA_PARAMS,
        },
        QueryTemplate {
            name: "search_facets_for_tenant".into(),
            sql: sql::facets_sql(&sql::where_sql(shape(true, false, up_to), "1")),
            params: &FACET_PARAMS,
        },
        QueryTemplate {
            name: "search_metadata_keys_for_tenant".into(),
            sql: super::metadata::keys_sql(&sql::where_sql(shape(true, false, up_to), "1")),
            // The facets' values: the window, the tenant, then the limit.
            params: &FACET_PARAMS,
        },
        QueryTemplate {
            // The query bar's recent keys of every tenant.
            name: "search_metadata_keys".into(),
            sql: super::metadata::keys_sql(&sql::where_sql(shape(false, false, up_to), "1")),
            params: &TOP_PARAMS,
        },
        QueryTemplate {
            name: "search_metadata_values_for_tenant".into(),
            sql: super::metadata::values_sql(&sql::where_sql(shape(true, false, up_to), "1")),
            params: &METADATA_VALUES_PARAMS,
        },
        QueryTemplate {
            // "Count by" a key: its values are the query above (with the
            // count's limit); this counts the events that have the key.
            name: "search_metadata_key_events_for_tenant".into(),
            sql: super::metadata::key_events_sql(&sql::where_sql(shape(true, false, up_to), "1")),
            params: &METADATA_KEY_EVENTS_PARAMS,
        },
        QueryTemplate {
            name: "dashboard_series_by_category".into(),
            sql: super::dashboard::series_sql(
                app::dashboard_model::SeriesBy::Category,
                &sql::where_sql(shape(false, false, up_to), "1"),
            ),
            params: &SERIES_PARAMS,
        },
        QueryTemplate {
            name: "dashboard_series_by_outcome_for_tenant".into(),
            sql: super::dashboard::series_sql(
                app::dashboard_model::SeriesBy::Outcome,
                &sql::where_sql(shape(true, false, up_to), "1"),
            ),
            params: &SERIES_TENANT_PARAMS,
        },
        QueryTemplate {
            name: "dashboard_top_actors".into(),
            sql: super::dashboard::top_actors_sql(
                &failed,
                &sql::where_sql(shape(false, false, up_to), &representative),
            ),
            params: &TOP_ACTORS_PARAMS,
        },
        QueryTemplate {
            name: "dashboard_top_actors_for_tenant".into(),
            sql: super::dashboard::top_actors_sql(
                &failed,
                &sql::where_sql(shape(true, false, up_to), "1"),
            ),
            params: &TOP_ACTORS_TENANT_PARAMS,
        },
        QueryTemplate {
            name: "event_detail".into(),
            sql: sql::detail_sql(),
            params: &["tenant", "event_id", "limit"],
        },
        QueryTemplate {
            name: "search_export".into(),
            sql: sql::export_sql(
                &sql::where_sql(shape(false, false, up_to), &representative),
                Sort::default(),
            ),
            // The page's values without its limit.
            params: &PAGE_FILTER_PARAMS,
        },
        QueryTemplate {
            name: "search_export_csv".into(),
            sql: sql::csv_export_sql(
                &sql::where_sql(shape(false, false, up_to), &representative),
                Sort::default(),
            ),
            params: &PAGE_FILTER_PARAMS,
        },
        // Sorted pages and exports (`sort=`): another ORDER BY, and after a
        // cursor the sorted value before the tie-break's. A few orders
        // stand for all: they differ only in the column named.
        QueryTemplate {
            name: "search_page_oldest_first".into(),
            sql: sql::page_sql(
                &sql::where_sql(shape(false, false, up_to), &representative),
                false,
                sorted(SortColumn::Time, SortDir::Asc),
            ),
            params: &PAGE_PARAMS,
        },
        QueryTemplate {
            name: "search_page_by_resource_desc".into(),
            sql: sql::page_sql(
                &sql::where_sql(shape(false, false, up_to), &representative),
                false,
                sorted(SortColumn::Resource, SortDir::Desc),
            ),
            params: &PAGE_PARAMS,
        },
        QueryTemplate {
            name: "search_page_by_actor_for_tenant_after_cursor".into(),
            sql: sql::page_sql(
                &sql::where_sql(
                    Shape {
                        tenants: 1,
                        cursor: Some(by_actor),
                        arrival: up_to,
                    },
                    "1",
                ),
                false,
                by_actor,
            ),
            params: &TENANT_SORTED_CURSOR_PARAMS,
        },
        QueryTemplate {
            name: "search_export_by_outcome".into(),
            sql: sql::export_sql(
                &sql::where_sql(shape(false, false, up_to), &representative),
                sorted(SortColumn::Outcome, SortDir::Asc),
            ),
            params: &PAGE_FILTER_PARAMS,
        },
    ];
    all.extend(panel_templates());
    all.extend(app::search_model::FacetField::ALL.into_iter().map(|field| {
        QueryTemplate {
            name: format!("search_count_by_{}_for_tenant", field.column()),
            sql: sql::count_by_sql(field, &sql::where_sql(shape(true, false, up_to), "1")),
            // The facets' values: the window, the tenant, then the limit.
            params: &FACET_PARAMS,
        }
    }));
    all
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_metadata_page_sends_its_keys_then_a_pages_values() {
        assert_eq!(PAGE_METADATA_PARAMS[0], "metadata_keys");
        assert_eq!(PAGE_METADATA_PARAMS[1..], PAGE_PARAMS);
    }

    #[test]
    fn representative_query_names_each_value() {
        let compiled = compile_str(REPRESENTATIVE_QUERY, 0).unwrap();
        // The window's five values and the limit surround the query's.
        assert_eq!(compiled.params.len(), PAGE_PARAMS.len() - 6);
        let networks = compile_str(NETWORK_QUERY, 0).unwrap();
        assert_eq!(networks.params.len(), NETWORK_PARAMS.len() - 5);
        for template in templates() {
            assert_eq!(
                template.sql.matches('?').count(),
                template.params.len(),
                "{}",
                template.name
            );
        }
    }
}
