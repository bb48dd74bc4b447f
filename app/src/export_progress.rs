//! How far an export download has got, for the progress line under the
//! export buttons. The page names each download with a random token
//! (`progress=` in the export URL); the export handler counts the rows it
//! has passed on under that token, and the page asks for the count while
//! the browser downloads. The file itself never passes through the page, so
//! a million rows cost the browser nothing but the download.

use leptos::prelude::*;
use serde::{Deserialize, Serialize};

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum ExportState {
    Running,
    Done,
    /// Refused before it started, broken off by ClickHouse, or left by the
    /// browser; `ExportStatus::message` says which.
    Failed,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ExportStatus {
    /// Rows the export holds, counted before it started.
    pub total: u64,
    /// Rows passed on to the browser so far.
    pub sent: u64,
    pub state: ExportState,
    pub message: Option<String>,
}

impl ExportStatus {
    /// The progress line, e.g. "Exporting 1,200 of 80,000 rows…".
    pub fn describe(&self) -> String {
        match self.state {
            ExportState::Running => format!(
                "Exporting {} of {}…",
                thousands(self.sent),
                rows(self.total)
            ),
            ExportState::Done => format!("Export finished: {}.", rows(self.sent)),
            ExportState::Failed => match &self.message {
                Some(why) => format!("Export failed after {}: {why}", rows(self.sent)),
                None => format!("Export failed after {}.", rows(self.sent)),
            },
        }
    }
}

/// `1 row`, `80,000 rows`.
fn rows(n: u64) -> String {
    if n == 1 {
        "1 row".into()
    } else {
        format!("{} rows", thousands(n))
    }
}

/// `1234567` → `1,234,567`.
pub fn thousands(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// A token the page may name a download with: 16 to 64 letters, digits,
/// `-` or `_`. Anything else is ignored rather than stored.
pub fn valid_token(token: &str) -> bool {
    (16..=64).contains(&token.len())
        && token
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

/// Counts the rows of an export as its bytes pass: one per line end, except
/// (in CSV) line ends inside a quoted field, which belong to the value.
#[derive(Debug, Default)]
pub struct RowCounter {
    csv: bool,
    in_quotes: bool,
}

impl RowCounter {
    pub fn new(csv: bool) -> RowCounter {
        RowCounter {
            csv,
            in_quotes: false,
        }
    }

    /// Rows completed in `chunk`. A doubled quote inside a quoted field
    /// toggles twice, so it needs no special case.
    pub fn feed(&mut self, chunk: &[u8]) -> u64 {
        let mut rows = 0;
        for &b in chunk {
            match b {
                b'"' if self.csv => self.in_quotes = !self.in_quotes,
                b'\n' if !self.in_quotes => rows += 1,
                _ => {}
            }
        }
        rows
    }
}

/// A fresh token for one download, made in the browser from 128 bits of
/// the Web Crypto generator (`Math.random` is predictable). Without Web
/// Crypto the download still works, unfollowed.
#[cfg(feature = "hydrate")]
pub fn new_token() -> Option<String> {
    use wasm_bindgen::JsCast;
    let crypto = js_sys::Reflect::get(&js_sys::global(), &"crypto".into()).ok()?;
    let fill: js_sys::Function = js_sys::Reflect::get(&crypto, &"getRandomValues".into())
        .ok()?
        .dyn_into()
        .ok()?;
    let bytes = js_sys::Uint8Array::new_with_length(16);
    fill.call1(&crypto, &bytes).ok()?;
    Some(bytes.to_vec().iter().map(|b| format!("{b:02x}")).collect())
}

/// Who started the exports the current request may ask about: the viewer's
/// access id, provided by the server for each request.
#[cfg(feature = "ssr")]
#[derive(Clone, Debug)]
pub struct ProgressOwner(pub String);

/// Where the board keeps a download: under its viewer, so a token seen by
/// someone else (a shared screen, a log) reads nothing for them.
#[cfg(feature = "ssr")]
pub fn board_key(owner: &str, token: &str) -> String {
    format!("{owner}/{token}")
}

/// The server's record of exports under way and recently finished.
#[cfg(feature = "ssr")]
pub mod board {
    use std::collections::HashMap;
    use std::sync::Mutex;
    use std::time::{Duration, Instant};

    use super::{ExportState, ExportStatus};

    /// Finished exports are kept this long, for the page's last look.
    const KEEP_FINISHED: Duration = Duration::from_secs(600);
    /// Most exports tracked at once; beyond it new ones go untracked (the
    /// download itself is unaffected).
    const MAX_TRACKED: usize = 10_000;

    struct Entry {
        status: ExportStatus,
        touched: Instant,
    }

    #[derive(Default)]
    pub struct ExportBoard {
        entries: Mutex<HashMap<String, Entry>>,
    }

    impl ExportBoard {
        fn with(&self, f: impl FnOnce(&mut HashMap<String, Entry>)) {
            if let Ok(mut entries) = self.entries.lock() {
                f(&mut entries);
            }
        }

        pub fn start(&self, token: &str, total: u64) {
            self.set(token, total, ExportState::Running, None);
        }

        /// An export refused before it started.
        pub fn refuse(&self, token: &str, message: String) {
            self.set(token, 0, ExportState::Failed, Some(message));
        }

        fn set(&self, token: &str, total: u64, state: ExportState, message: Option<String>) {
            self.with(|entries| {
                if entries.len() >= MAX_TRACKED {
                    entries.retain(|_, e| {
                        e.status.state == ExportState::Running
                            && e.touched.elapsed() < KEEP_FINISHED
                    });
                }
                if entries.len() < MAX_TRACKED {
                    entries.insert(
                        token.to_owned(),
                        Entry {
                            status: ExportStatus {
                                total,
                                sent: 0,
                                state,
                                message,
                            },
                            touched: Instant::now(),
                        },
                    );
                }
            });
        }

        pub fn advance(&self, token: &str, rows: u64) {
            self.with(|entries| {
                if let Some(e) = entries.get_mut(token) {
                    e.status.sent += rows;
                    e.touched = Instant::now();
                }
            });
        }

        /// Marks the end; `Err` carries why it broke off. Only a running
        /// export changes, so a late second call cannot undo the first.
        pub fn finish(&self, token: &str, outcome: Result<(), String>) {
            self.with(|entries| {
                if let Some(e) = entries.get_mut(token) {
                    if e.status.state == ExportState::Running {
                        match outcome {
                            Ok(()) => e.status.state = ExportState::Done,
                            Err(why) => {
                                e.status.state = ExportState::Failed;
                                e.status.message = Some(why);
                            }
                        }
                        e.touched = Instant::now();
                    }
                }
            });
        }

        pub fn status(&self, token: &str) -> Option<ExportStatus> {
            let mut found = None;
            self.with(|entries| {
                entries.retain(|_, e| {
                    e.status.state == ExportState::Running || e.touched.elapsed() < KEEP_FINISHED
                });
                found = entries.get(token).map(|e| e.status.clone());
            });
            found
        }
    }
}

/// The progress of the download named `token`; `None` until the server has
/// started it (or after it was forgotten).
#[server(endpoint = "search/export_progress")]
pub async fn export_progress(token: String) -> Result<Option<ExportStatus>, ServerFnError> {
    use std::sync::Arc;
    let board = use_context::<Arc<board::ExportBoard>>();
    let Some(ProgressOwner(owner)) = use_context::<ProgressOwner>() else {
        return Ok(None);
    };
    Ok(board.and_then(|b| b.status(&board_key(&owner, &token))))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rows_are_counted_across_chunks_and_quoted_newlines() {
        let csv = "\"event_id\",\"note\"\n\"a\",\"one\nline \"\"two\"\"\"\n\"b\",\"x\"\n";
        for split in 0..csv.len() {
            let (head, tail) = csv.as_bytes().split_at(split);
            let mut counter = RowCounter::new(true);
            assert_eq!(
                counter.feed(head) + counter.feed(tail),
                3,
                "split at {split}"
            );
        }
        let ndjson = "{\"a\":\"x\\ny\"}\n{\"a\":\"\\\"\"}\n";
        assert_eq!(RowCounter::new(false).feed(ndjson.as_bytes()), 2);
    }

    #[test]
    fn numbers_and_tokens() {
        assert_eq!(thousands(0), "0");
        assert_eq!(thousands(999), "999");
        assert_eq!(thousands(1_000), "1,000");
        assert_eq!(thousands(1_234_567), "1,234,567");
        assert!(valid_token("0123456789abcdef"));
        assert!(valid_token(&"a".repeat(64)));
        for bad in [
            "",
            "short",
            &"a".repeat(65),
            "0123456789abcdef/",
            "0123456789abcde\n",
        ] {
            assert!(!valid_token(bad), "{bad:?}");
        }
    }

    #[cfg(feature = "ssr")]
    #[test]
    fn the_board_follows_an_export_to_its_end() {
        let board = board::ExportBoard::default();
        assert_eq!(board.status("t"), None);
        board.start("t", 10);
        board.advance("t", 4);
        let s = board.status("t").unwrap();
        assert_eq!((s.sent, s.total, s.state), (4, 10, ExportState::Running));
        assert_eq!(s.describe(), "Exporting 4 of 10 rows…");
        board.advance("t", 6);
        board.finish("t", Ok(()));
        board.finish("t", Err("late".into()));
        let s = board.status("t").unwrap();
        assert_eq!(s.state, ExportState::Done);
        assert_eq!(s.describe(), "Export finished: 10 rows.");
        board.refuse("r", "that tenant is not visible to you".into());
        assert!(board
            .status("r")
            .unwrap()
            .describe()
            .contains("not visible"));
    }

    #[cfg(feature = "ssr")]
    #[test]
    fn one_viewers_token_reads_nothing_for_another() {
        let board = board::ExportBoard::default();
        board.start(&board_key("alice", "0123456789abcdef"), 3);
        assert!(board
            .status(&board_key("alice", "0123456789abcdef"))
            .is_some());
        assert_eq!(
            board.status(&board_key("mallory", "0123456789abcdef")),
            None
        );
    }
}
