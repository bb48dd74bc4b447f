//! Which months of which tenants the retention job removes: pure decisions,
//! so every rule (policy per tenant, legal holds, never the current month) is
//! tested without a database.

use std::fmt;

use time::{Date, Month as CalendarMonth, OffsetDateTime};

use crate::config::RetentionConfig;

/// A calendar month in UTC, as ClickHouse names a `toYYYYMM` partition.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Month {
    year: i32,
    month: u8,
}

impl Month {
    pub fn new(year: i32, month: u8) -> Option<Month> {
        ((1970..=9999).contains(&year) && (1..=12).contains(&month))
            .then_some(Month { year, month })
    }

    /// A partition id (`202401`) or what an operator types (`2024-01`).
    pub fn parse(text: &str) -> Option<Month> {
        let digits: String = text.chars().filter(|c| *c != '-').collect();
        if digits.len() != 6 || !digits.chars().all(|c| c.is_ascii_digit()) {
            return None;
        }
        let year = digits[..4].parse().ok()?;
        let month = digits[4..].parse().ok()?;
        Month::new(year, month)
    }

    pub fn of_epoch_ms(ms: i64) -> Option<Month> {
        let at = OffsetDateTime::from_unix_timestamp(ms.div_euclid(1000)).ok()?;
        Month::new(at.year(), at.month() as u8)
    }

    /// The partition value: `202401`.
    pub fn id(self) -> u32 {
        self.year as u32 * 100 + u32::from(self.month)
    }

    /// Months since year 0, for arithmetic across year boundaries.
    fn index(self) -> i64 {
        i64::from(self.year) * 12 + i64::from(self.month) - 1
    }

    pub fn next(self) -> Month {
        if self.month == 12 {
            Month {
                year: self.year + 1,
                month: 1,
            }
        } else {
            Month {
                year: self.year,
                month: self.month + 1,
            }
        }
    }

    /// Epoch seconds of the first instant of the month.
    pub fn start_s(self) -> i64 {
        let month = CalendarMonth::try_from(self.month).unwrap_or(CalendarMonth::January);
        Date::from_calendar_date(self.year, month, 1)
            .map(|d| d.midnight().assume_utc().unix_timestamp())
            .unwrap_or(0)
    }
}

impl fmt::Display for Month {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:04}-{:02}", self.year, self.month)
    }
}

/// Data of one tenant that must be kept while a legal hold is active,
/// whatever the retention policy says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Hold {
    pub hold_id: String,
    pub tenant_id: String,
    pub from: Month,
    pub to: Month,
    pub reason: String,
}

impl Hold {
    fn covers(&self, tenant: &str, month: Month) -> bool {
        self.tenant_id == tenant && self.from <= month && month <= self.to
    }
}

/// The distinct events each tenant has in one month.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MonthContents {
    pub month: Month,
    pub tenants: Vec<(String, u64)>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Removal {
    /// Every tenant in the month is past its policy and none is held: the
    /// whole month goes (unsealed, by dropping its partition, which is
    /// cheap; see `Retention::remove`).
    DropMonth {
        month: Month,
        tenants: Vec<(String, u64)>,
    },
    /// Only this tenant's rows go; others in the month are kept, so the
    /// rows are deleted by a mutation that rewrites the month's parts.
    DeleteTenantMonth {
        month: Month,
        tenant: String,
        events: u64,
    },
}

impl Removal {
    pub fn month(&self) -> Month {
        match self {
            Removal::DropMonth { month, .. } | Removal::DeleteTenantMonth { month, .. } => *month,
        }
    }

    /// The tenants whose rows go, each with its distinct events.
    pub fn tenants(&self) -> Vec<(&str, u64)> {
        match self {
            Removal::DropMonth { tenants, .. } => {
                tenants.iter().map(|(t, n)| (t.as_str(), *n)).collect()
            }
            Removal::DeleteTenantMonth { tenant, events, .. } => vec![(tenant.as_str(), *events)],
        }
    }
}

/// A tenant's month that the policy would remove but a hold keeps.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Held {
    pub month: Month,
    pub tenant: String,
    pub hold_id: String,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Plan {
    pub removals: Vec<Removal>,
    pub held: Vec<Held>,
}

/// A month is past a tenant's policy of N months once it lies more than N
/// whole months before the current one: with N = 12 in November 2026,
/// October 2025 is removed and November 2025 is kept. 0 keeps everything.
fn expired(policy: &RetentionConfig, tenant: &str, month: Month, now: Month) -> bool {
    let keep = policy.months_for(tenant);
    keep > 0 && month.index() < now.index() - i64::from(keep)
}

pub fn plan(
    contents: &[MonthContents],
    policy: &RetentionConfig,
    holds: &[Hold],
    now: Month,
) -> Plan {
    let mut out = Plan::default();
    for month in contents {
        let mut remove = Vec::new();
        let mut keep_any = false;
        for (tenant, events) in &month.tenants {
            if !expired(policy, tenant, month.month, now) {
                keep_any = true;
                continue;
            }
            if let Some(hold) = holds.iter().find(|h| h.covers(tenant, month.month)) {
                keep_any = true;
                out.held.push(Held {
                    month: month.month,
                    tenant: tenant.clone(),
                    hold_id: hold.hold_id.clone(),
                });
                continue;
            }
            remove.push((tenant.clone(), *events));
        }
        if remove.is_empty() {
            continue;
        }
        if keep_any {
            out.removals
                .extend(
                    remove
                        .into_iter()
                        .map(|(tenant, events)| Removal::DeleteTenantMonth {
                            month: month.month,
                            tenant,
                            events,
                        }),
                );
        } else {
            out.removals.push(Removal::DropMonth {
                month: month.month,
                tenants: remove,
            });
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn m(text: &str) -> Month {
        Month::parse(text).expect("month")
    }

    fn policy(default_months: u32, tenants: &[(&str, u32)]) -> RetentionConfig {
        RetentionConfig {
            default_months,
            tenants: tenants.iter().map(|(t, n)| (t.to_string(), *n)).collect(),
            ..RetentionConfig::default()
        }
    }

    fn month(text: &str, tenants: &[(&str, u64)]) -> MonthContents {
        MonthContents {
            month: m(text),
            tenants: tenants.iter().map(|(t, n)| (t.to_string(), *n)).collect(),
        }
    }

    fn hold(tenant: &str, from: &str, to: &str) -> Hold {
        Hold {
            hold_id: format!("hold-{tenant}"),
            tenant_id: tenant.into(),
            from: m(from),
            to: m(to),
            reason: "litigation".into(),
        }
    }

    #[test]
    fn months_parse_format_and_count_across_years() {
        assert_eq!(m("202401"), m("2024-01"));
        assert_eq!(m("2024-01").id(), 202401);
        assert_eq!(m("2024-12").next(), m("2025-01"));
        assert_eq!(m("2025-01").to_string(), "2025-01");
        assert_eq!(m("2026-11").start_s(), 1_793_491_200);
        assert_eq!(m("1970-01").start_s(), 0);
        assert_eq!(Month::of_epoch_ms(1_795_435_200_000), Some(m("2026-11")));
        for bad in [
            "2024-13", "2024-00", "24-01", "2024-1", "abcdef", "1969-12", "",
        ] {
            assert_eq!(Month::parse(bad), None, "{bad}");
        }
    }

    #[test]
    fn keeps_exactly_the_policy_months_before_the_current_one() {
        let p = policy(12, &[]);
        let now = m("2026-11");
        assert!(expired(&p, "a", m("2025-10"), now));
        assert!(!expired(&p, "a", m("2025-11"), now));
        assert!(!expired(&p, "a", now, now));
        assert!(!expired(&policy(0, &[]), "a", m("1999-01"), now));
    }

    #[test]
    fn a_month_where_everyone_expired_is_dropped_whole() {
        let contents = [month("2024-01", &[("a", 5), ("b", 7)])];
        let out = plan(&contents, &policy(12, &[]), &[], m("2026-11"));
        assert_eq!(
            out.removals,
            [Removal::DropMonth {
                month: m("2024-01"),
                tenants: vec![("a".into(), 5), ("b".into(), 7)],
            }]
        );
        assert!(out.held.is_empty());
    }

    #[test]
    fn a_tenant_with_a_longer_policy_turns_a_drop_into_a_delete() {
        let contents = [month("2024-01", &[("a", 5), ("b", 7)])];
        let out = plan(&contents, &policy(12, &[("b", 60)]), &[], m("2026-11"));
        assert_eq!(
            out.removals,
            [Removal::DeleteTenantMonth {
                month: m("2024-01"),
                tenant: "a".into(),
                events: 5,
            }]
        );
    }

    #[test]
    fn a_legal_hold_keeps_its_tenant_and_months_only() {
        let contents = [
            month("2024-01", &[("a", 1)]),
            month("2024-02", &[("a", 2), ("b", 3)]),
            month("2024-03", &[("a", 4)]),
        ];
        let holds = [hold("a", "2024-02", "2024-02")];
        let out = plan(&contents, &policy(12, &[]), &holds, m("2026-11"));
        assert_eq!(
            out.removals,
            [
                Removal::DropMonth {
                    month: m("2024-01"),
                    tenants: vec![("a".into(), 1)],
                },
                Removal::DeleteTenantMonth {
                    month: m("2024-02"),
                    tenant: "b".into(),
                    events: 3,
                },
                Removal::DropMonth {
                    month: m("2024-03"),
                    tenants: vec![("a".into(), 4)],
                },
            ]
        );
        assert_eq!(
            out.held,
            [Held {
                month: m("2024-02"),
                tenant: "a".into(),
                hold_id: "hold-a".into(),
            }]
        );
    }

    #[test]
    fn nothing_recent_and_nothing_without_a_policy_is_touched() {
        let contents = [
            month("2026-11", &[("a", 1)]),
            month("2020-01", &[("keep", 9)]),
        ];
        let out = plan(&contents, &policy(0, &[("a", 12)]), &[], m("2026-11"));
        assert_eq!(out, Plan::default());
    }
}
