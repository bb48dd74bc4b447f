//! One colour per category and outcome, everywhere: the charts, their
//! legends and the "as table" swatches all ask here.

/// An sRGB colour.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Colour(pub u8, pub u8, pub u8);

impl Colour {
    /// `#rrggbb`, for SVG attributes and inline styles.
    pub fn hex(self) -> String {
        format!("#{:02x}{:02x}{:02x}", self.0, self.1, self.2)
    }
}

/// Okabe and Ito's palette, which readers with the common colour-vision
/// deficiencies still tell apart.
const CATEGORY_COLOURS: [(&str, Colour); 6] = [
    ("authentication", Colour(0, 114, 178)),
    ("data_access", Colour(86, 180, 233)),
    ("data_modification", Colour(0, 158, 115)),
    ("permission_change", Colour(230, 159, 0)),
    ("admin", Colour(204, 121, 167)),
    ("system", Colour(120, 120, 120)),
];

/// Outcomes keep the colours the Search page gives them.
const OUTCOME_COLOURS: [(&str, Colour); 3] = [
    ("success", Colour(31, 122, 68)),
    ("failure", Colour(213, 94, 0)),
    ("denied", Colour(138, 28, 43)),
];

/// For bars that stand for no category (top-N lists).
pub const NEUTRAL: Colour = Colour(47, 91, 211);
/// For anything outside the contract's values, which it does not allow
/// today.
const OTHER: Colour = Colour(160, 160, 160);

/// Lines of a chart that are no category or outcome (pipeline trends), in
/// order: Okabe and Ito's blue, vermillion and bluish green.
const LINE_COLOURS: [Colour; 3] = [Colour(0, 114, 178), Colour(213, 94, 0), Colour(0, 158, 115)];

/// The colour of a chart's `i`-th line.
pub fn line_colour(i: usize) -> Colour {
    LINE_COLOURS[i % LINE_COLOURS.len()]
}

/// The colour of a category or outcome.
pub fn colour_of(key: &str) -> Colour {
    CATEGORY_COLOURS
        .iter()
        .chain(OUTCOME_COLOURS.iter())
        .find(|(k, _)| *k == key)
        .map_or(OTHER, |(_, c)| *c)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_contract_value_has_its_own_colour() {
        let keys = crate::query::CATEGORIES
            .iter()
            .chain(crate::query::OUTCOMES.iter());
        let colours: Vec<Colour> = keys.map(|k| colour_of(k)).collect();
        assert!(!colours.contains(&OTHER));
        let mut unique = colours.clone();
        unique.sort_by_key(|c| (c.0, c.1, c.2));
        unique.dedup();
        assert_eq!(unique.len(), colours.len());
        assert_eq!(colour_of("admin").hex(), "#cc79a7");
    }
}
