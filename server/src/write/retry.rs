//! One place decides what a failed INSERT means. Most failures are about
//! ClickHouse (down, overloaded, restarting) and pass if we wait, so they are
//! retried with backoff and nothing is skipped. A few are about the rows
//! themselves and would fail forever: the batch is split to find the rows at
//! fault, which go to the dead-letter topic while the rest are written.

use crate::store::StoreError;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Wait and send the same rows again.
    Retry,
    /// Some rows can never be stored: split the batch to find them.
    Split,
}

/// ClickHouse error codes that depend on the data sent, not on the server's
/// state. Schema errors (unknown column, unknown table) are deliberately not
/// here: they mean a deployment problem, and dead-lettering every event until
/// someone notices would turn an outage into a replay job.
const ROW_CODES: &[u32] = &[
    6,   // CANNOT_PARSE_TEXT
    27,  // CANNOT_PARSE_INPUT_ASSERTION_FAILED
    53,  // TYPE_MISMATCH
    69,  // ARGUMENT_OUT_OF_BOUND
    70,  // CANNOT_CONVERT_TYPE
    72,  // CANNOT_PARSE_NUMBER
    117, // INCORRECT_DATA
    190, // SIZES_OF_ARRAYS_DOESNT_MATCH
    395, // FUNCTION_THROW_IF_VALUE_IS_NON_ZERO: a table rule (throwIf) refused a row
    469, // VIOLATED_CONSTRAINT: a CHECK constraint refused a row
];

pub fn classify(error: &StoreError) -> Verdict {
    let StoreError::ClickHouse(clickhouse::error::Error::BadResponse(text)) = error else {
        return Verdict::Retry;
    };
    match crate::store::exception_code(text) {
        Some(c) if ROW_CODES.contains(&c) => Verdict::Split,
        // TOO_MANY_PARTS is usually merges falling behind (wait), but a batch
        // spanning more months than `max_partitions_per_insert_block` fails
        // the same way whatever we wait: smaller inserts succeed.
        Some(252) if text.contains("partitions for single INSERT block") => Verdict::Split,
        _ => Verdict::Retry,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bad(text: &str) -> StoreError {
        StoreError::ClickHouse(clickhouse::error::Error::BadResponse(text.into()))
    }

    #[test]
    fn row_errors_split_in_both_message_forms() {
        for text in [
            "Code: 395, e.displayText() = DB::Exception: Value passed to 'throwIf' function is non zero",
            "Code: 117. DB::Exception: Incorrect data. (INCORRECT_DATA) (version 26.5.1.1)",
            "Code: 53. DB::Exception: Type mismatch",
            "Code: 252. DB::Exception: Too many partitions for single INSERT block (more than 100).",
        ] {
            assert_eq!(classify(&bad(text)), Verdict::Split, "{text}");
        }
    }

    #[test]
    fn server_and_schema_errors_retry() {
        for text in [
            "Code: 252. DB::Exception: Too many parts (300). Merges are processing significantly slower than inserts",
            "Code: 60. DB::Exception: Table attest.audit_events doesn't exist",
            "Code: 16. DB::Exception: No such column poison in table",
            "Code: 241. DB::Exception: Memory limit (total) exceeded",
            "Code: 1170, not a real code",
            "no code at all",
        ] {
            assert_eq!(classify(&bad(text)), Verdict::Retry, "{text}");
        }
        assert_eq!(
            classify(&StoreError::Version("x".into())),
            Verdict::Retry,
            "anything that is not an exception from ClickHouse retries"
        );
    }
}
