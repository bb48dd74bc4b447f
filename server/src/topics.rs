//! How Attest lays its data out in Kafka: one topic per event category, so
//! consumers and retention can differ by category, plus one for dead letters.

use crate::event::Category;

pub fn for_category(prefix: &str, category: Category) -> String {
    format!("{prefix}.{}", category.as_str())
}

pub fn event_topics(prefix: &str) -> Vec<String> {
    Category::ALL
        .into_iter()
        .map(|c| for_category(prefix, c))
        .collect()
}

pub fn dead_letters(prefix: &str) -> String {
    format!("{prefix}.dead_letters")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names() {
        assert_eq!(
            for_category("attest.events", Category::DataAccess),
            "attest.events.data_access"
        );
        assert_eq!(event_topics("p").len(), 6);
        assert_eq!(dead_letters("p"), "p.dead_letters");
    }
}
