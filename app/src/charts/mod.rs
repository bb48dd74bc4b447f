//! The dashboard's charts: SVG text drawn with `plotters` (SVG backend, no
//! font files), one function per chart kind. The same functions run on the
//! server for the first paint and in the browser when filters change.
//!
//! plotters draws the frame: axes, tick labels, axis titles and legend.
//! The bars are written here as `<a><rect><title>` so every bar links to
//! the events behind it and shows its exact value and bucket on hover;
//! plotters' own rectangles can carry neither. Their positions come from
//! the chart's own coordinate mapping, so they sit on its axes.

mod palette;

pub use palette::{colour_of, line_colour, Colour, NEUTRAL};

use plotters::prelude::*;

/// Chart size in SVG user units; the page scales it to its column.
const WIDTH: u32 = 720;
const HEIGHT: u32 = 280;
/// Room on the right of time charts for the legend.
const LEGEND_WIDTH: u32 = 170;
const FONT: &str = "sans-serif";

#[derive(Clone, Debug, thiserror::Error)]
#[error("the chart could not be drawn: {0}")]
pub struct ChartError(String);

fn failed(error: impl std::fmt::Display) -> ChartError {
    ChartError(error.to_string())
}

/// What every chart says about itself, for screen readers and the hover
/// title of the whole chart.
#[derive(Clone, Debug)]
pub struct Describe {
    /// A stable id prefix, unique on the page.
    pub id: String,
    pub title: String,
    pub desc: String,
}

/// One segment of a stacked bar.
#[derive(Clone, Debug)]
pub struct Segment {
    pub key: String,
    pub value: u64,
    pub href: String,
}

/// One bar of a time chart: a bucket.
#[derive(Clone, Debug)]
pub struct Column {
    /// Under the axis, short ("13:00").
    pub label: String,
    /// In the tooltip, whole ("2026-03-01 13:00 to 13:59 UTC").
    pub bucket: String,
    pub segments: Vec<Segment>,
}

/// Stacked bars over time, one colour per key.
#[derive(Clone, Debug)]
pub struct TimeChart {
    pub describe: Describe,
    /// What the x axis shows ("time (UTC), one bar per hour").
    pub x_desc: String,
    /// The unit of the values ("events").
    pub unit: String,
    /// Legend order.
    pub keys: Vec<String>,
    pub columns: Vec<Column>,
}

/// One bar of a top-N chart.
#[derive(Clone, Debug)]
pub struct Row {
    pub label: String,
    pub value: u64,
    pub href: String,
}

/// Horizontal bars, largest first.
#[derive(Clone, Debug)]
pub struct TopChart {
    pub describe: Describe,
    pub unit: String,
    pub rows: Vec<Row>,
}

/// Escapes text for SVG content and attribute values.
fn xml(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '&' => out.push_str("&amp;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// One linked bar with its tooltip.
fn bar(x0: i32, y0: i32, x1: i32, y1: i32, fill: Colour, href: &str, tip: &str) -> String {
    let (left, right) = (x0.min(x1), x0.max(x1));
    let (top, bottom) = (y0.min(y1), y0.max(y1));
    format!(
        "<a href=\"{}\" class=\"bar-link\"><rect class=\"bar\" x=\"{left}\" y=\"{top}\" \
         width=\"{}\" height=\"{}\" fill=\"{}\"><title>{}</title></rect></a>\n",
        xml(href),
        (right - left).max(1),
        (bottom - top).max(1),
        fill.hex(),
        xml(tip)
    )
}

/// Adds the accessible name and description, and the bars, to what
/// plotters drew.
fn finish(svg: String, describe: &Describe, bars: &str) -> String {
    let id = xml(&describe.id);
    let head = format!(
        "<title id=\"{id}-title\">{}</title>\n<desc id=\"{id}-desc\">{}</desc>\n",
        xml(&describe.title),
        xml(&describe.desc)
    );
    let svg = svg.replacen(
        "<svg ",
        &format!(
            "<svg role=\"img\" aria-labelledby=\"{id}-title\" aria-describedby=\"{id}-desc\" \
             class=\"chart\" preserveAspectRatio=\"xMinYMin meet\" "
        ),
        1,
    );
    // The opening tag ends at the first '>'; the title must be its first
    // child to name the chart.
    let (open, rest) = match svg.find('>') {
        Some(at) => svg.split_at(at + 1),
        None => (svg.as_str(), ""),
    };
    let body = rest.trim_end();
    let body = body.strip_suffix("</svg>").unwrap_or(body);
    format!("{open}\n{head}{body}<g class=\"bars\">\n{bars}</g>\n</svg>\n")
}

/// Stacked bars over time: one bar per bucket (empty ones stay, at zero),
/// one segment per key in legend order.
pub fn stacked_bars(chart: &TimeChart) -> Result<String, ChartError> {
    let n = i32::try_from(chart.columns.len().max(1)).map_err(failed)?;
    let top = chart
        .columns
        .iter()
        .map(|c| c.segments.iter().map(|s| s.value).sum::<u64>())
        .max()
        .unwrap_or(0);
    // Headroom so the tallest bar does not touch the frame; at least one
    // unit so an empty window still has an axis.
    let y_max = top.saturating_add(top / 10).max(1);
    let mut svg = String::new();
    let mut bars = String::new();
    let mut legend = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, (WIDTH, HEIGHT)).into_drawing_area();
        root.fill(&WHITE).map_err(failed)?;
        let mut plot = ChartBuilder::on(&root)
            .margin(10)
            .margin_right(LEGEND_WIDTH)
            .x_label_area_size(40)
            .y_label_area_size(60)
            // Segmented: each bucket is a slot with its label under its
            // centre, not under its left edge.
            .build_cartesian_2d((0..n).into_segmented(), 0..y_max)
            .map_err(failed)?;
        let labels: Vec<&str> = chart.columns.iter().map(|c| c.label.as_str()).collect();
        let x_label = |v: &SegmentValue<i32>| match v {
            SegmentValue::CenterOf(i) => usize::try_from(*i)
                .ok()
                .and_then(|i| labels.get(i))
                .map_or_else(String::new, |l| l.to_string()),
            _ => String::new(),
        };
        plot.configure_mesh()
            .disable_x_mesh()
            .x_labels(12.min(labels.len().max(1)))
            .x_label_formatter(&x_label)
            .y_labels(6)
            .light_line_style(TRANSPARENT)
            .x_desc(chart.x_desc.as_str())
            .y_desc(chart.unit.as_str())
            .label_style((FONT, 12))
            .axis_desc_style((FONT, 13))
            .draw()
            .map_err(failed)?;
        // The legend sits right of the plot. plotters draws its legend
        // inside the plotting area only (clipped there), where it would
        // cover bars, so it is written here like the bars.
        for (row, key) in chart.keys.iter().enumerate() {
            let y = 16 + 20 * i32::try_from(row).map_err(failed)?;
            let x = (WIDTH - LEGEND_WIDTH + 16) as i32;
            legend.push_str(&format!(
                "<g class=\"legend-item\"><rect x=\"{x}\" y=\"{}\" width=\"12\" height=\"12\" \
                 fill=\"{}\"/><text x=\"{}\" y=\"{}\" font-family=\"{FONT}\" font-size=\"12\">{}</text></g>\n",
                y - 6,
                colour_of(key).hex(),
                x + 18,
                y + 4,
                xml(key)
            ));
        }
        for (i, column) in chart.columns.iter().enumerate() {
            let i = i32::try_from(i).map_err(failed)?;
            let mut base = 0u64;
            for key in &chart.keys {
                let Some(segment) = column.segments.iter().find(|s| &s.key == key) else {
                    continue;
                };
                if segment.value == 0 {
                    continue;
                }
                let upper = base.saturating_add(segment.value);
                let (x0, y0) = plot.backend_coord(&(SegmentValue::Exact(i), base));
                let (x1, y1) = plot.backend_coord(&(SegmentValue::Exact(i + 1), upper));
                let tip = format!(
                    "{}: {} {} {}",
                    column.bucket, segment.value, chart.unit, segment.key
                );
                // One unit of gap between neighbouring bars.
                bars.push_str(&bar(
                    x0 + 1,
                    y0,
                    x1 - 1,
                    y1,
                    colour_of(key),
                    &segment.href,
                    &tip,
                ));
                base = upper;
            }
        }
        root.present().map_err(failed)?;
    }
    bars.push_str(&legend);
    Ok(finish(svg, &chart.describe, &bars))
}

/// Horizontal bars, one per row, the first at the top.
pub fn horizontal_bars(chart: &TopChart) -> Result<String, ChartError> {
    let n = i32::try_from(chart.rows.len().max(1)).map_err(failed)?;
    let top = chart.rows.iter().map(|r| r.value).max().unwrap_or(0);
    let x_max = top.saturating_add(top / 10).max(1);
    let height = (60 + 26 * n.max(3)).clamp(120, 420) as u32;
    let mut svg = String::new();
    let mut bars = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, (WIDTH, height)).into_drawing_area();
        root.fill(&WHITE).map_err(failed)?;
        let mut plot = ChartBuilder::on(&root)
            .margin(10)
            .margin_right(30)
            .x_label_area_size(40)
            .y_label_area_size(180)
            // Segmented like the time axis: each label sits mid-bar.
            .build_cartesian_2d(0..x_max, (0..n).into_segmented())
            .map_err(failed)?;
        // Row 0 is drawn at the top: y counts up from the bottom.
        let labels: Vec<String> = chart.rows.iter().map(|r| shorten(&r.label, 26)).collect();
        let y_label = |v: &SegmentValue<i32>| match v {
            SegmentValue::CenterOf(y) => n
                .checked_sub(*y + 1)
                .and_then(|row| usize::try_from(row).ok())
                .and_then(|row| labels.get(row))
                .cloned()
                .unwrap_or_default(),
            _ => String::new(),
        };
        plot.configure_mesh()
            .disable_y_mesh()
            .y_labels(labels.len().max(1))
            .y_label_formatter(&y_label)
            .x_labels(6)
            .light_line_style(TRANSPARENT)
            .x_desc(chart.unit.as_str())
            .label_style((FONT, 12))
            .axis_desc_style((FONT, 13))
            .draw()
            .map_err(failed)?;
        for (row_index, row) in chart.rows.iter().enumerate() {
            let row_index = i32::try_from(row_index).map_err(failed)?;
            let y = n - row_index - 1;
            let (x0, y0) = plot.backend_coord(&(0, SegmentValue::Exact(y)));
            let (x1, y1) = plot.backend_coord(&(row.value, SegmentValue::Exact(y + 1)));
            let tip = format!("{}: {} {}", row.label, row.value, chart.unit);
            bars.push_str(&bar(x0, y0 - 3, x1, y1 + 3, NEUTRAL, &row.href, &tip));
        }
        root.present().map_err(failed)?;
    }
    Ok(finish(svg, &chart.describe, &bars))
}

/// One cell of a heatmap.
#[derive(Clone, Debug)]
pub struct Cell {
    pub value: u64,
    /// `None`: the cell names no Search (it still shows its value).
    pub href: Option<String>,
    /// Its whole name in the tooltip ("Mon 13:00–14:00 Europe/Berlin").
    pub name: String,
}

/// A grid of counts: rows top to bottom, columns left to right.
#[derive(Clone, Debug)]
pub struct HeatChart {
    pub describe: Describe,
    pub x_desc: String,
    pub unit: String,
    pub row_labels: Vec<String>,
    pub column_labels: Vec<String>,
    /// `cells[row][column]`.
    pub cells: Vec<Vec<Cell>>,
}

/// The fill of a cell: from near-white (none) to the neutral blue (the
/// most), on a square-root scale so a few busy hours do not wash out the
/// rest.
fn heat(value: u64, max: u64) -> Colour {
    if value == 0 || max == 0 {
        return Colour(238, 240, 244);
    }
    let t = ((value as f64) / (max as f64)).sqrt().clamp(0.0, 1.0);
    let mix = |low: u8, high: u8| {
        let v = f64::from(low) + (f64::from(high) - f64::from(low)) * (0.15 + 0.85 * t);
        v.round().clamp(0.0, 255.0) as u8
    };
    let Colour(r, g, b) = NEUTRAL;
    Colour(mix(226, r), mix(234, g), mix(252, b))
}

/// A weekday × hour grid (or any rows × columns), one linked cell each,
/// every cell drawn, zero included.
pub fn heatmap(chart: &HeatChart) -> Result<String, ChartError> {
    let columns = i32::try_from(chart.column_labels.len().max(1)).map_err(failed)?;
    let rows = i32::try_from(chart.row_labels.len().max(1)).map_err(failed)?;
    let max = chart
        .cells
        .iter()
        .flatten()
        .map(|c| c.value)
        .max()
        .unwrap_or(0);
    let mut svg = String::new();
    let mut cells = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, (WIDTH, HEIGHT)).into_drawing_area();
        root.fill(&WHITE).map_err(failed)?;
        let mut plot = ChartBuilder::on(&root)
            .margin(10)
            .margin_right(20)
            .x_label_area_size(40)
            .y_label_area_size(50)
            .build_cartesian_2d((0..columns).into_segmented(), (0..rows).into_segmented())
            .map_err(failed)?;
        let x_label = |v: &SegmentValue<i32>| match v {
            SegmentValue::CenterOf(i) => usize::try_from(*i)
                .ok()
                .and_then(|i| chart.column_labels.get(i))
                .cloned()
                .unwrap_or_default(),
            _ => String::new(),
        };
        // Row 0 at the top: y counts up from the bottom.
        let y_label = |v: &SegmentValue<i32>| match v {
            SegmentValue::CenterOf(y) => rows
                .checked_sub(*y + 1)
                .and_then(|row| usize::try_from(row).ok())
                .and_then(|row| chart.row_labels.get(row))
                .cloned()
                .unwrap_or_default(),
            _ => String::new(),
        };
        plot.configure_mesh()
            .disable_mesh()
            .x_labels(chart.column_labels.len().max(1))
            .x_label_formatter(&x_label)
            .y_labels(chart.row_labels.len().max(1))
            .y_label_formatter(&y_label)
            .x_desc(chart.x_desc.as_str())
            .label_style((FONT, 11))
            .axis_desc_style((FONT, 13))
            .draw()
            .map_err(failed)?;
        for (r, row) in chart.cells.iter().enumerate() {
            let y = rows - i32::try_from(r).map_err(failed)? - 1;
            for (c, cell) in row.iter().enumerate() {
                let x = i32::try_from(c).map_err(failed)?;
                let (x0, y0) =
                    plot.backend_coord(&(SegmentValue::Exact(x), SegmentValue::Exact(y)));
                let (x1, y1) =
                    plot.backend_coord(&(SegmentValue::Exact(x + 1), SegmentValue::Exact(y + 1)));
                let tip = format!("{}: {} {}", cell.name, cell.value, chart.unit);
                let fill = heat(cell.value, max);
                match &cell.href {
                    Some(href) => {
                        cells.push_str(&bar(x0 + 1, y0 - 1, x1 - 1, y1 + 1, fill, href, &tip))
                    }
                    None => cells.push_str(&format!(
                        "<rect class=\"cell\" x=\"{}\" y=\"{}\" width=\"{}\" height=\"{}\" \
                         fill=\"{}\"><title>{}</title></rect>\n",
                        x0.min(x1) + 1,
                        y0.min(y1) + 1,
                        ((x1 - x0).abs() - 2).max(1),
                        ((y1 - y0).abs() - 2).max(1),
                        fill.hex(),
                        xml(&tip)
                    )),
                }
            }
        }
        root.present().map_err(failed)?;
    }
    Ok(finish(svg, &chart.describe, &cells))
}

/// One line of a [`LineChart`].
#[derive(Clone, Debug)]
pub struct Line {
    /// In the legend.
    pub label: String,
    pub colour: Colour,
    /// `(epoch ms, value)`, ascending in time.
    pub points: Vec<(i64, f64)>,
}

/// Lines over time (the pipeline's trends).
#[derive(Clone, Debug)]
pub struct LineChart {
    pub describe: Describe,
    pub x_desc: String,
    pub unit: String,
    pub from_ms: i64,
    pub to_ms: i64,
    /// Neighbouring points further apart than this are not joined: no
    /// samples in between is a gap, not a straight line.
    pub gap_ms: i64,
    /// Tick label for an instant ("13:00", "03-01").
    pub x_label: fn(i64) -> String,
    pub lines: Vec<Line>,
}

/// Lines over a time axis, with a legend on the right; each run of
/// points without a gap is one `<polyline class="trend-line">`.
pub fn lines(chart: &LineChart) -> Result<String, ChartError> {
    let to = chart.to_ms.max(chart.from_ms.saturating_add(1));
    let top = chart
        .lines
        .iter()
        .flat_map(|l| l.points.iter().map(|(_, v)| *v))
        .filter(|v| v.is_finite())
        .fold(0.0_f64, f64::max);
    // Headroom above the highest point; an axis from 0 to 1 when all is 0.
    let y_max = if top > 0.0 { top * 1.1 } else { 1.0 };
    let mut svg = String::new();
    let mut legend = String::new();
    let mut drawn = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, (WIDTH, HEIGHT)).into_drawing_area();
        root.fill(&WHITE).map_err(failed)?;
        let mut plot = ChartBuilder::on(&root)
            .margin(10)
            .margin_right(LEGEND_WIDTH)
            .x_label_area_size(40)
            .y_label_area_size(60)
            .build_cartesian_2d(chart.from_ms..to, 0.0..y_max)
            .map_err(failed)?;
        let x_label = |v: &i64| (chart.x_label)(*v);
        plot.configure_mesh()
            .x_labels(7)
            .x_label_formatter(&x_label)
            .y_labels(6)
            .light_line_style(TRANSPARENT)
            .x_desc(chart.x_desc.as_str())
            .y_desc(chart.unit.as_str())
            .label_style((FONT, 12))
            .axis_desc_style((FONT, 13))
            .draw()
            .map_err(failed)?;
        // Written here like the bars, on the chart's own coordinates: the
        // colour goes in `style`, which the stylesheet's rule for the
        // frame's polylines does not override, and each line has its name.
        for line in &chart.lines {
            for run in runs(&line.points, chart.gap_ms) {
                let points: Vec<String> = run
                    .iter()
                    .map(|(at, v)| {
                        let (x, y) = plot.backend_coord(&(*at, *v));
                        format!("{x},{y}")
                    })
                    .collect();
                drawn.push_str(&format!(
                    "<polyline class=\"trend-line\" fill=\"none\" stroke-width=\"2\" \
                     style=\"stroke:{}\" points=\"{}\"><title>{}</title></polyline>\n",
                    line.colour.hex(),
                    points.join(" "),
                    xml(&line.label)
                ));
            }
        }
        for (row, line) in chart.lines.iter().enumerate() {
            let y = 16 + 20 * i32::try_from(row).map_err(failed)?;
            let x = (WIDTH - LEGEND_WIDTH + 16) as i32;
            let latest = line
                .points
                .last()
                .map_or_else(|| "no samples".to_owned(), |(_, v)| format!("now {v:.1}"));
            legend.push_str(&format!(
                "<g class=\"legend-item\"><rect x=\"{x}\" y=\"{}\" width=\"12\" height=\"3\" \
                 fill=\"{}\"/><text x=\"{}\" y=\"{}\" font-family=\"{FONT}\" font-size=\"12\">{}<title>{}</title></text></g>\n",
                y - 1,
                line.colour.hex(),
                x + 18,
                y + 4,
                xml(&shorten(&line.label, 22)),
                xml(&format!("{}: {latest} {}", line.label, chart.unit))
            ));
        }
        root.present().map_err(failed)?;
    }
    drawn.push_str(&legend);
    Ok(finish(svg, &chart.describe, &drawn))
}

/// The points split where neighbours are more than `gap_ms` apart; points
/// with a value that is not finite are left out. A lone point is a run of
/// one: a polyline of one point, which shows as a dot with round caps.
fn runs(points: &[(i64, f64)], gap_ms: i64) -> Vec<Vec<(i64, f64)>> {
    let mut out: Vec<Vec<(i64, f64)>> = Vec::new();
    let mut last: Option<i64> = None;
    for &(at, value) in points.iter().filter(|(_, v)| v.is_finite()) {
        let joined = last.is_some_and(|before| at.saturating_sub(before) <= gap_ms);
        match out.last_mut() {
            Some(run) if joined => run.push((at, value)),
            _ => out.push(vec![(at, value)]),
        }
        last = Some(at);
    }
    out
}

/// At most `max` characters, with an ellipsis when cut; the tooltip and
/// the table keep the whole text.
fn shorten(text: &str, max: usize) -> String {
    if text.chars().count() <= max {
        return text.to_string();
    }
    let mut out: String = text.chars().take(max.saturating_sub(1)).collect();
    out.push('…');
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn describe() -> Describe {
        Describe {
            id: "c1".into(),
            title: "Events over time".into(),
            desc: "Distinct events per hour, stacked by category".into(),
        }
    }

    fn time_chart() -> TimeChart {
        let keys = vec!["authentication".to_string(), "admin".to_string()];
        let columns = (0..4)
            .map(|i| Column {
                label: format!("{i:02}:00"),
                bucket: format!("2026-03-01 {i:02}:00 UTC hour"),
                segments: vec![
                    Segment {
                        key: "authentication".into(),
                        value: i,
                        href: format!("/search?b={i}&a=1"),
                    },
                    Segment {
                        key: "admin".into(),
                        value: if i == 2 { 7 } else { 0 },
                        href: "/search?x".into(),
                    },
                ],
            })
            .collect();
        TimeChart {
            describe: describe(),
            x_desc: "time (UTC), one bar per hour".into(),
            unit: "events".into(),
            keys,
            columns,
        }
    }

    #[test]
    fn stacked_bars_draw_one_rect_per_nonzero_segment_with_labels_and_tooltips() {
        let svg = stacked_bars(&time_chart()).unwrap();
        // authentication 1, 2, 3 and admin 7: four segments; zeros draw none.
        assert_eq!(svg.matches("<rect class=\"bar\"").count(), 4, "{svg}");
        assert!(svg.contains("<title id=\"c1-title\">Events over time</title>"));
        assert!(svg.contains("<desc id=\"c1-desc\">"));
        assert!(svg.contains("role=\"img\" aria-labelledby=\"c1-title\""));
        for label in [
            "\n00:00\n",
            "\n03:00\n",
            "time (UTC), one bar per hour",
            "events",
        ] {
            assert!(svg.contains(label), "{label}");
        }
        // Legend in legend order, with the palette's colours.
        assert!(svg.contains(">authentication</text>"));
        assert!(svg.contains(&colour_of("admin").hex()));
        assert!(svg.contains("<title>2026-03-01 02:00 UTC hour: 7 events admin</title>"));
        assert!(svg.contains("href=\"/search?b=3&amp;a=1\""));
        assert!(svg.trim_end().ends_with("</svg>"));
        assert_eq!(svg.matches("<svg").count(), 1);
    }

    #[test]
    fn an_empty_window_still_draws_axes() {
        let mut chart = time_chart();
        for c in &mut chart.columns {
            c.segments.clear();
        }
        let svg = stacked_bars(&chart).unwrap();
        assert_eq!(svg.matches("class=\"bar\"").count(), 0);
        assert!(svg.contains("events"));
        chart.columns.clear();
        assert!(stacked_bars(&chart).is_ok());
    }

    #[test]
    fn horizontal_bars_label_each_row_and_escape_text() {
        let chart = TopChart {
            describe: describe(),
            unit: "failed or denied events".into(),
            rows: vec![
                Row {
                    label: "mallory<script>".into(),
                    value: 50,
                    href: "/search?q=a".into(),
                },
                Row {
                    label: "bob".into(),
                    value: 3,
                    href: "/search?q=b".into(),
                },
            ],
        };
        let svg = horizontal_bars(&chart).unwrap();
        assert_eq!(svg.matches("<rect class=\"bar\"").count(), 2);
        assert!(!svg.contains("<script>"), "{svg}");
        assert!(svg.contains("mallory&lt;script&gt;"));
        assert!(svg.contains("<title>mallory&lt;script&gt;: 50 failed or denied events</title>"));
        assert!(svg.contains("\nbob\n"));
        // The larger value draws the longer bar.
        let widths: Vec<i32> = svg
            .match_indices("width=\"")
            .skip(1)
            .filter_map(|(at, _)| {
                let rest = &svg[at + 7..];
                rest[..rest.find('"')?].parse().ok()
            })
            .collect();
        assert!(widths.len() >= 2);
    }

    #[test]
    fn heatmap_draws_every_cell_with_its_label_value_and_link() {
        let days = ["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"];
        let cells = days
            .iter()
            .enumerate()
            .map(|(d, day)| {
                (0..24)
                    .map(|h| Cell {
                        value: if d == 0 && h == 13 { 9 } else { (d as u64) % 2 },
                        href: (h != 3).then(|| format!("/search?d={d}&h={h}")),
                        name: format!("{day} {h:02}:00 UTC"),
                    })
                    .collect()
            })
            .collect();
        let chart = HeatChart {
            describe: describe(),
            x_desc: "hour of day (UTC)".into(),
            unit: "events".into(),
            row_labels: days.iter().map(|d| d.to_string()).collect(),
            column_labels: (0..24).map(|h| format!("{h:02}")).collect(),
            cells,
        };
        let svg = heatmap(&chart).unwrap();
        // 7 × 24 cells, all drawn; the 7 at 03:00 have no link.
        assert_eq!(svg.matches("<rect class=\"bar\"").count(), 7 * 23, "{svg}");
        assert_eq!(svg.matches("<rect class=\"cell\"").count(), 7);
        for label in [
            "\nMon\n",
            "\nSun\n",
            "\n00\n",
            "\n23\n",
            "hour of day (UTC)",
        ] {
            assert!(svg.contains(label), "{label}");
        }
        assert!(svg.contains("<title>Mon 13:00 UTC: 9 events</title>"));
        assert!(svg.contains("href=\"/search?d=0&amp;h=13\""));
        // The busiest cell is the darkest: the neutral colour itself.
        assert!(svg.contains(&NEUTRAL.hex()));
        assert!(svg.contains(&heat(0, 9).hex()));
    }

    fn line_chart() -> LineChart {
        LineChart {
            describe: describe(),
            x_desc: "time (UTC)".into(),
            unit: "seconds".into(),
            from_ms: 0,
            to_ms: 100_000,
            gap_ms: 20_000,
            x_label: |ms| format!("t{}", ms / 1000),
            lines: vec![
                Line {
                    label: "lag <max>".into(),
                    colour: line_colour(0),
                    // A gap between 30 s and 70 s: two polylines.
                    points: vec![
                        (0, 1.0),
                        (10_000, 4.0),
                        (30_000, 2.0),
                        (70_000, 3.0),
                        (80_000, 0.0),
                    ],
                },
                Line {
                    label: "empty".into(),
                    colour: line_colour(1),
                    points: Vec::new(),
                },
            ],
        }
    }

    #[test]
    fn lines_break_at_gaps_and_carry_a_legend() {
        let svg = lines(&line_chart()).unwrap();
        assert_eq!(svg.matches("class=\"trend-line\"").count(), 2, "{svg}");
        assert!(svg.contains(&line_colour(0).hex()));
        assert!(svg.contains("lag &lt;max&gt;"), "escaped label");
        assert!(svg.contains("lag &lt;max&gt;: now 0.0 seconds"));
        assert!(svg.contains("empty: no samples seconds"));
        assert!(svg.contains("role=\"img\" aria-labelledby=\"c1-title\""));
        assert!(svg.contains("\nt0\n") || svg.contains(">t0<"), "{svg}");
        assert!(svg.contains("seconds"));
    }

    #[test]
    fn runs_split_on_gaps_and_skip_non_finite_values() {
        let r = runs(&[(0, 1.0), (5, f64::NAN), (10, 2.0), (40, 3.0)], 10);
        assert_eq!(r, vec![vec![(0, 1.0), (10, 2.0)], vec![(40, 3.0)]]);
        assert!(runs(&[], 10).is_empty());
        // All zero still draws an axis.
        let mut chart = line_chart();
        chart.lines[0].points = vec![(0, 0.0), (10_000, 0.0)];
        assert!(lines(&chart).unwrap().contains("class=\"trend-line\""));
        chart.to_ms = chart.from_ms;
        assert!(lines(&chart).is_ok(), "an empty span still draws");
    }

    #[test]
    fn long_labels_are_shortened_in_the_axis_only() {
        assert_eq!(shorten("abcdef", 4), "abc…");
        assert_eq!(shorten("abc", 4), "abc");
    }
}
