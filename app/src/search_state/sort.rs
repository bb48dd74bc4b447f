//! The order of search results: a column and a direction, `?sort=` and
//! `?dir=` in the URL. Absent means newest first, the order every link
//! made before sorting existed still means.

use serde::{Deserialize, Serialize};

use super::Column;

/// The columns results can be ordered by: the stored columns an event's
/// content fixes. `received` is not among them: two stored copies of one
/// event (a retried send) share the identity but not the arrival time, so
/// ordering by it could place the copies on two pages and show the event
/// twice. Metadata columns are not among them either (a key may be absent
/// or repeated; ordering by it would need a value per event chosen first).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum SortColumn {
    Time,
    Tenant,
    Category,
    Action,
    Outcome,
    Actor,
    ActorType,
    Ip,
    UserAgent,
    Resource,
    Source,
    RequestId,
    EventId,
}

impl SortColumn {
    pub const ALL: [SortColumn; 13] = [
        SortColumn::Time,
        SortColumn::Tenant,
        SortColumn::Category,
        SortColumn::Action,
        SortColumn::Outcome,
        SortColumn::Actor,
        SortColumn::ActorType,
        SortColumn::Ip,
        SortColumn::UserAgent,
        SortColumn::Resource,
        SortColumn::Source,
        SortColumn::RequestId,
        SortColumn::EventId,
    ];

    /// The results table's column it orders by.
    pub fn column(self) -> Column {
        match self {
            SortColumn::Time => Column::Time,
            SortColumn::Tenant => Column::Tenant,
            SortColumn::Category => Column::Category,
            SortColumn::Action => Column::Action,
            SortColumn::Outcome => Column::Outcome,
            SortColumn::Actor => Column::Actor,
            SortColumn::ActorType => Column::ActorType,
            SortColumn::Ip => Column::Ip,
            SortColumn::UserAgent => Column::UserAgent,
            SortColumn::Resource => Column::Resource,
            SortColumn::Source => Column::Source,
            SortColumn::RequestId => Column::RequestId,
            SortColumn::EventId => Column::EventId,
        }
    }

    /// The sort of a shown column, if it can be sorted by.
    pub fn of(column: &Column) -> Option<SortColumn> {
        SortColumn::ALL.into_iter().find(|s| &s.column() == column)
    }

    /// Its name in `?sort=`: the column's name in `?cols=`.
    pub fn key(self) -> &'static str {
        match self.column().key() {
            std::borrow::Cow::Borrowed(key) => key,
            // Only metadata columns have owned keys, and none sorts.
            std::borrow::Cow::Owned(_) => "time",
        }
    }

    /// The first click's direction: the newest first for time, A to Z
    /// for text.
    pub fn first_dir(self) -> SortDir {
        match self {
            SortColumn::Time => SortDir::Desc,
            _ => SortDir::Asc,
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum SortDir {
    Asc,
    Desc,
}

impl SortDir {
    pub fn param(self) -> &'static str {
        match self {
            SortDir::Asc => "asc",
            SortDir::Desc => "desc",
        }
    }

    /// The `aria-sort` value of a header sorted this way.
    pub fn aria(self) -> &'static str {
        match self {
            SortDir::Asc => "ascending",
            SortDir::Desc => "descending",
        }
    }

    fn flipped(self) -> SortDir {
        match self {
            SortDir::Asc => SortDir::Desc,
            SortDir::Desc => SortDir::Asc,
        }
    }
}

/// How results are ordered. Ties are always broken the same way, by the
/// newest first and then the event's identity (`store::search::sql`), so
/// every row has one place and a page cursor can name it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Sort {
    pub column: SortColumn,
    pub dir: SortDir,
}

impl Default for Sort {
    /// Newest first.
    fn default() -> Sort {
        Sort {
            column: SortColumn::Time,
            dir: SortDir::Desc,
        }
    }
}

impl Sort {
    /// Reads `?sort=` and `?dir=` (trimmed, empty as absent). No `sort`
    /// means by time; no `dir` means the column's first direction. An
    /// unknown value is an error naming the parameter, never a default:
    /// a link that says one order must not silently show another.
    pub fn parse(sort: Option<&str>, dir: Option<&str>) -> Result<Sort, String> {
        let column = match sort {
            None => SortColumn::Time,
            Some(key) => match Column::from_key(key) {
                Some(column) => SortColumn::of(&column).ok_or_else(|| {
                    format!(
                        "sort: results cannot be ordered by {key} (only by {})",
                        sortable_list()
                    )
                })?,
                None => {
                    return Err(format!(
                        "sort: unknown column \"{key}\" (one of {})",
                        sortable_list()
                    ))
                }
            },
        };
        let dir = match dir {
            None => column.first_dir(),
            Some("asc") => SortDir::Asc,
            Some("desc") => SortDir::Desc,
            Some(other) => return Err(format!("dir: \"{other}\" is neither asc nor desc")),
        };
        Ok(Sort { column, dir })
    }

    /// `sort` and `dir` for the URL; none for the default.
    pub fn pairs(self) -> Vec<(&'static str, String)> {
        if self == Sort::default() {
            Vec::new()
        } else {
            vec![
                ("sort", self.column.key().to_string()),
                ("dir", self.dir.param().to_string()),
            ]
        }
    }

    /// The order after a click on `column`'s header: the other direction
    /// when it is already the order, else the column's first direction.
    pub fn clicked(self, column: SortColumn) -> Sort {
        let dir = if self.column == column {
            self.dir.flipped()
        } else {
            column.first_dir()
        };
        Sort { column, dir }
    }

    /// The direction `column`'s header shows, if results are ordered by it.
    pub fn dir_of(self, column: &Column) -> Option<SortDir> {
        (self.column.column() == *column).then_some(self.dir)
    }

    /// The prefix of a page cursor of this order (`cursor.rs`): `actor-a`.
    pub(super) fn tag(self) -> String {
        let dir = match self.dir {
            SortDir::Asc => 'a',
            SortDir::Desc => 'd',
        };
        format!("{}-{dir}", self.column.key())
    }

    pub(super) fn from_tag(tag: &str) -> Option<Sort> {
        let (key, dir) = tag.rsplit_once('-')?;
        let column = SortColumn::ALL.into_iter().find(|c| c.key() == key)?;
        let dir = match dir {
            "a" => SortDir::Asc,
            "d" => SortDir::Desc,
            _ => return None,
        };
        Some(Sort { column, dir })
    }
}

fn sortable_list() -> String {
    let keys: Vec<&str> = SortColumn::ALL.iter().map(|c| c.key()).collect();
    keys.join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn absent_is_newest_first_and_prints_nothing() {
        assert_eq!(Sort::parse(None, None), Ok(Sort::default()));
        assert_eq!(Sort::default().pairs(), []);
        assert_eq!(Sort::parse(Some("time"), Some("desc")), Ok(Sort::default()));
        assert_eq!(Sort::parse(Some("time"), None), Ok(Sort::default()));
    }

    #[test]
    fn each_column_reads_and_prints_back() {
        for column in SortColumn::ALL {
            for dir in [SortDir::Asc, SortDir::Desc] {
                let sort = Sort { column, dir };
                let pairs = sort.pairs();
                let get = |k: &str| {
                    pairs
                        .iter()
                        .find(|(key, _)| *key == k)
                        .map(|(_, v)| v.as_str())
                };
                assert_eq!(Sort::parse(get("sort"), get("dir")), Ok(sort));
                assert_eq!(Sort::from_tag(&sort.tag()), Some(sort));
            }
        }
        assert_eq!(
            Sort::parse(Some("actor"), None),
            Ok(Sort {
                column: SortColumn::Actor,
                dir: SortDir::Asc
            })
        );
    }

    #[test]
    fn unknown_values_are_errors_naming_the_parameter() {
        let bogus = Sort::parse(Some("bogus"), None).unwrap_err();
        assert!(
            bogus.starts_with("sort: unknown column \"bogus\""),
            "{bogus}"
        );
        assert!(bogus.contains("actor"), "{bogus}");
        for unsortable in ["received", "metadata.ticket"] {
            let e = Sort::parse(Some(unsortable), None).unwrap_err();
            assert!(e.starts_with("sort: results cannot be ordered by"), "{e}");
        }
        let dir = Sort::parse(Some("actor"), Some("up")).unwrap_err();
        assert_eq!(dir, "dir: \"up\" is neither asc nor desc");
        for tag in ["", "actor", "actor-x", "received-a", "bogus-d", "-a"] {
            assert_eq!(Sort::from_tag(tag), None, "{tag}");
        }
    }

    #[test]
    fn clicks_start_by_the_column_then_flip() {
        let by_actor = Sort::default().clicked(SortColumn::Actor);
        assert_eq!(by_actor.dir, SortDir::Asc);
        assert_eq!(by_actor.clicked(SortColumn::Actor).dir, SortDir::Desc);
        let time = by_actor.clicked(SortColumn::Time);
        assert_eq!(time, Sort::default());
        let oldest = time.clicked(SortColumn::Time);
        assert_eq!(oldest.dir, SortDir::Asc);
        assert_eq!(oldest.clicked(SortColumn::Time), Sort::default());
        assert_eq!(by_actor.dir_of(&Column::Actor), Some(SortDir::Asc));
        assert_eq!(by_actor.dir_of(&Column::Time), None);
        assert_eq!(SortColumn::of(&Column::Received), None);
        assert_eq!(SortColumn::of(&Column::Metadata("k".into())), None);
    }
}
