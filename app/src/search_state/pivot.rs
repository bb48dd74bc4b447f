//! "Events around this one": a search whose window is a few minutes either
//! side of one event (the anchor), entered from the event's page. The URL
//! names the anchor, so its row can be marked, and the window the analyst
//! was on before, so leaving the pivot gives that window back instead of
//! quietly searching ten minutes from then on.

use serde::{Deserialize, Serialize};

use crate::model::TimeRange;

/// The event a pivot is around and the window to go back to. Only what the
/// URL can carry: the tenant is the search's own (the pivot sets it).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Pivot {
    /// `anchor`: the event's id.
    pub event_id: String,
    /// `anchor_at`: its `occurred_at`, epoch ms; with the id it names the
    /// event, as the detail page's `at` does.
    pub at_ms: i64,
    /// `anchor_h`: a prefix of its content hash, for ids sent more than
    /// once (as the detail page's `h`).
    pub hash_prefix: Option<String>,
    /// `prev_range` or `prev_from`/`prev_to`.
    pub previous: PreviousWindow,
}

/// The window the analyst searched before the pivot, as they had it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum PreviousWindow {
    /// A preset (`prev_range=24h`).
    Range(TimeRange),
    /// Bounds as typed (`prev_from`, and `prev_to` if there was one).
    Bounds { from: String, to: Option<String> },
}

impl PreviousWindow {
    /// What the "Back to …" link calls it: the preset's label, or the
    /// bounds as typed.
    pub fn label(&self) -> String {
        match self {
            PreviousWindow::Range(range) => range.label().to_string(),
            PreviousWindow::Bounds { from, to: Some(to) } => format!("{from} – {to}"),
            PreviousWindow::Bounds { from, to: None } => format!("since {from}"),
        }
    }
}

impl Pivot {
    /// Reads the pivot's parameters through `text` (trimmed, empty as
    /// absent). Without a readable `anchor` and `anchor_at` there is no
    /// pivot, and the rest is ignored.
    pub(super) fn from_lookup(text: impl Fn(&str) -> Option<String>) -> Option<Pivot> {
        let event_id = text("anchor")?;
        let at_ms = text("anchor_at")?.parse::<i64>().ok()?;
        let previous = match text("prev_from") {
            Some(from) => PreviousWindow::Bounds {
                from,
                to: text("prev_to"),
            },
            None => PreviousWindow::Range(TimeRange::from_param(
                &text("prev_range").unwrap_or_default(),
            )),
        };
        Some(Pivot {
            event_id,
            at_ms,
            hash_prefix: text("anchor_h"),
            previous,
        })
    }

    /// The pivot's parameters in a fixed order. `prev_range` is written
    /// even at its default, so the link says where "Back" leads.
    pub(super) fn pairs(&self) -> Vec<(&'static str, String)> {
        let mut pairs = vec![
            ("anchor", self.event_id.clone()),
            ("anchor_at", self.at_ms.to_string()),
        ];
        if let Some(h) = &self.hash_prefix {
            pairs.push(("anchor_h", h.clone()));
        }
        match &self.previous {
            PreviousWindow::Range(range) => pairs.push(("prev_range", range.param().to_string())),
            PreviousWindow::Bounds { from, to } => {
                pairs.push(("prev_from", from.clone()));
                if let Some(to) = to {
                    pairs.push(("prev_to", to.clone()));
                }
            }
        }
        pairs
    }

    /// Whether a result row is the anchor: same tenant, id and time, and
    /// the content hash starts with the prefix if one was given.
    pub fn is_anchor(
        &self,
        search_tenant: Option<&str>,
        tenant: &str,
        event_id: &str,
        occurred_at: i64,
        content_hash: &str,
    ) -> bool {
        search_tenant.is_none_or(|t| t == tenant)
            && self.event_id == event_id
            && self.at_ms == occurred_at
            && self
                .hash_prefix
                .as_deref()
                .is_none_or(|h| content_hash.starts_with(h))
    }
}
