//! Small SVG charts drawn on the server: a linear scale with "nice" ticks, stacked bars,
//! grouped bars and lines, each with an accessible title and description, a legend, a
//! tooltip per bucket, and a "no data" state. Pure: numbers in, SVG text out, every piece
//! of text escaped.

use std::fmt::Write as _;

/// Maps a domain interval onto a range of pixels (the range may run backwards, as the y
/// axis does).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Scale {
    d0: f64,
    d1: f64,
    r0: f64,
    r1: f64,
}

impl Scale {
    pub fn new(domain: (f64, f64), range: (f64, f64)) -> Self {
        Self {
            d0: domain.0,
            d1: domain.1,
            r0: range.0,
            r1: range.1,
        }
    }

    pub fn map(&self, v: f64) -> f64 {
        if self.d1 == self.d0 {
            return self.r0;
        }
        self.r0 + (v - self.d0) / (self.d1 - self.d0) * (self.r1 - self.r0)
    }
}

/// Ticks from 0 to the first multiple of a step of 1, 2, 2.5 or 5 × 10^k at or above `max`,
/// in about `target` steps. Nothing to show (no data, zero, NaN) gives `[0, 1]`.
pub fn nice_ticks(max: f64, target: usize) -> Vec<f64> {
    if !max.is_finite() || max <= 0.0 {
        return vec![0.0, 1.0];
    }
    let raw = max / target.max(1) as f64;
    let magnitude = 10f64.powf(raw.log10().floor());
    let step = [1.0, 2.0, 2.5, 5.0, 10.0]
        .into_iter()
        .map(|m| m * magnitude)
        .find(|s| *s >= raw * (1.0 - 1e-9))
        .unwrap_or(10.0 * magnitude);
    let n = ((max / step) * (1.0 - 1e-9)).ceil().max(1.0) as usize;
    (0..=n)
        .map(|i| round_to_step(i as f64 * step, step))
        .collect()
}

/// [`nice_ticks`] in about 4 steps, for counts and rates.
pub fn count_ticks(max: f64) -> Vec<f64> {
    nice_ticks(max, 4)
}

/// Ticks for milliseconds on steps people count in (ms, s, min, h, d), in 3 to 6 steps.
pub fn duration_ticks(max_ms: f64) -> Vec<f64> {
    const STEPS: [f64; 27] = [
        1.0, 2.0, 5.0, 10.0, 20.0, 50.0, 100.0, 200.0, 250.0, 500.0, // ms
        1e3, 2e3, 5e3, 1e4, 15e3, 3e4, // s
        6e4, 12e4, 3e5, 6e5, 9e5, 18e5, // min
        36e5, 72e5, 216e5, 432e5, // h
        864e5,
    ];
    if !max_ms.is_finite() || max_ms <= 0.0 {
        return vec![0.0, 1_000.0];
    }
    let step = STEPS
        .into_iter()
        .find(|s| max_ms / s <= 5.0)
        .unwrap_or_else(|| (max_ms / 5.0 / 864e5).ceil() * 864e5);
    let n = ((max_ms / step) * (1.0 - 1e-9)).ceil().max(1.0) as usize;
    (0..=n).map(|i| i as f64 * step).collect()
}

/// Removes the float noise of `i × step` (0.30000000000000004 → 0.3).
fn round_to_step(v: f64, step: f64) -> f64 {
    let decimals = (-step.log10().floor()).max(0.0) as i32 + 1;
    let f = 10f64.powi(decimals);
    (v * f).round() / f
}

/// A count or rate: `0`, `2.5`, `12`, `1.2k`, `3.4M`.
pub fn fmt_count(v: f64) -> String {
    let trim = |s: String| {
        if s.contains('.') {
            s.trim_end_matches('0').trim_end_matches('.').to_owned()
        } else {
            s
        }
    };
    let v = v + 0.0; // -0 reads as 0
    let a = v.abs();
    if a >= 1_000_000.0 {
        format!("{}M", trim(format!("{:.1}", v / 1_000_000.0)))
    } else if a >= 1_000.0 {
        format!("{}k", trim(format!("{:.1}", v / 1_000.0)))
    } else if a >= 10.0 || v.fract() == 0.0 {
        format!("{v:.0}")
    } else {
        trim(format!("{v:.2}"))
    }
}

/// Text for SVG/HTML content and attribute values.
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// One bar per bucket, the series stacked on each other.
    StackedBars,
    /// One bar per series side by side in each bucket.
    GroupedBars,
    /// One line per series; a missing value breaks the line.
    Lines,
}

#[derive(Debug, Clone)]
pub struct Series {
    pub name: String,
    /// A fill/stroke colour with at least 3:1 contrast on white.
    pub colour: &'static str,
    /// One value per bucket; None = no data (a gap in a line, nothing in a bar).
    pub values: Vec<Option<f64>>,
}

#[derive(Debug, Clone)]
pub struct Chart {
    /// Unique on the page: the prefix of the title and description ids.
    pub id: String,
    pub title: String,
    /// What a screen reader says about the chart (totals, the period).
    pub description: String,
    pub kind: Kind,
    /// One label per bucket, used in the tooltips ("12:00–12:15 UTC").
    pub buckets: Vec<String>,
    /// Bucket index → label under the x axis.
    pub x_ticks: Vec<(usize, String)>,
    pub series: Vec<Series>,
    /// How values are written on the y axis and in the tooltips.
    pub format: fn(f64) -> String,
    /// The y axis ticks for a maximum: [`nice_ticks`] or [`duration_ticks`].
    pub ticks: fn(f64) -> Vec<f64>,
    /// The width of the drawing (its height is [`HEIGHT`]); it scales to its box.
    pub width: f64,
    /// Shown instead of the plot when every value is missing or zero.
    pub empty_message: String,
}

pub const HEIGHT: f64 = 210.0;
const LEFT: f64 = 62.0;
const RIGHT: f64 = 14.0;
const TOP: f64 = 12.0;
const BOTTOM: f64 = 28.0;
const FONT: f64 = 13.0;

impl Chart {
    fn is_empty(&self) -> bool {
        self.series
            .iter()
            .flat_map(|s| s.values.iter())
            .all(|v| v.is_none_or(|v| v == 0.0 || !v.is_finite()))
    }

    fn n(&self) -> usize {
        self.buckets.len().max(
            self.series
                .iter()
                .map(|s| s.values.len())
                .max()
                .unwrap_or(0),
        )
    }

    fn value(&self, series: usize, bucket: usize) -> Option<f64> {
        self.series
            .get(series)
            .and_then(|s| s.values.get(bucket).copied().flatten())
            .filter(|v| v.is_finite())
    }

    /// The largest value the y axis must reach.
    fn max(&self) -> f64 {
        let n = self.n();
        match self.kind {
            Kind::StackedBars => (0..n)
                .map(|b| {
                    (0..self.series.len())
                        .filter_map(|s| self.value(s, b))
                        .map(|v| v.max(0.0))
                        .sum::<f64>()
                })
                .fold(0.0, f64::max),
            Kind::GroupedBars | Kind::Lines => (0..n)
                .flat_map(|b| (0..self.series.len()).filter_map(move |s| self.value(s, b)))
                .fold(0.0, f64::max),
        }
    }

    pub fn render(&self) -> String {
        let id = escape(&self.id);
        let mut svg = String::new();
        let _ = write!(
            svg,
            r#"<svg class="chart" xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {} {HEIGHT}" role="img" aria-labelledby="{id}-title {id}-desc" font-family="system-ui, sans-serif"><title id="{id}-title">{}</title><desc id="{id}-desc">{}</desc>"#,
            self.width,
            escape(&self.title),
            escape(&self.description),
        );
        let plot_w = self.width - LEFT - RIGHT;
        let plot_h = HEIGHT - TOP - BOTTOM;
        let n = self.n().max(1);
        let ticks = (self.ticks)(self.max());
        let top = ticks.last().copied().unwrap_or(1.0);
        let y = Scale::new((0.0, top), (TOP + plot_h, TOP));
        let x = Scale::new((0.0, n as f64), (LEFT, LEFT + plot_w));
        let band = plot_w / n as f64;
        // Grid lines and y labels.
        for t in &ticks {
            let py = y.map(*t);
            let _ = write!(
                svg,
                r##"<line x1="{LEFT}" x2="{:.1}" y1="{py:.1}" y2="{py:.1}" stroke="#d0d7de" stroke-width="1"/><text x="{:.1}" y="{:.1}" text-anchor="end" font-size="{FONT}" fill="#57606a">{}</text>"##,
                LEFT + plot_w,
                LEFT - 7.0,
                py + 4.5,
                escape(&(self.format)(*t)),
            );
        }
        // X ticks.
        for (i, label) in &self.x_ticks {
            let px = x.map(*i as f64 + 0.5);
            let _ = write!(
                svg,
                r##"<line x1="{px:.1}" x2="{px:.1}" y1="{:.1}" y2="{:.1}" stroke="#8c959f"/><text x="{px:.1}" y="{:.1}" text-anchor="middle" font-size="{FONT}" fill="#57606a">{}</text>"##,
                TOP + plot_h,
                TOP + plot_h + 4.0,
                TOP + plot_h + 19.0,
                escape(label),
            );
        }
        let _ = write!(
            svg,
            r##"<line x1="{LEFT}" x2="{:.1}" y1="{:.1}" y2="{:.1}" stroke="#8c959f"/>"##,
            LEFT + plot_w,
            TOP + plot_h,
            TOP + plot_h,
        );
        if self.is_empty() {
            let _ = write!(
                svg,
                r##"<text x="{:.1}" y="{:.1}" text-anchor="middle" font-size="15" fill="#57606a">{}</text></svg>"##,
                LEFT + plot_w / 2.0,
                TOP + plot_h / 2.0,
                escape(&self.empty_message),
            );
            return svg;
        }
        match self.kind {
            Kind::StackedBars => self.stacked(&mut svg, &x, &y, band),
            Kind::GroupedBars => self.grouped(&mut svg, &x, &y, band),
            Kind::Lines => self.lines(&mut svg, &x, &y),
        }
        // One transparent column per bucket carries the tooltip of every series.
        for b in 0..n {
            let tip = self.tooltip(b);
            let _ = write!(
                svg,
                r#"<rect x="{:.1}" y="{TOP}" width="{band:.2}" height="{plot_h:.1}" fill="transparent"><title>{}</title></rect>"#,
                x.map(b as f64),
                escape(&tip),
            );
        }
        svg.push_str("</svg>");
        svg
    }

    /// The legend as HTML (outside the drawing, so it stays in view when a narrow screen
    /// scrolls the chart): a swatch and the name of each series.
    pub fn legend_html(&self) -> String {
        let mut html = String::from(r#"<ul class="legend">"#);
        for s in &self.series {
            let _ = write!(
                html,
                r#"<li><svg width="12" height="12" aria-hidden="true"><rect width="12" height="12" rx="2" fill="{}"/></svg>{}</li>"#,
                s.colour,
                escape(&s.name),
            );
        }
        html.push_str("</ul>");
        html
    }

    fn tooltip(&self, b: usize) -> String {
        let mut tip = self.buckets.get(b).cloned().unwrap_or_default();
        for (i, s) in self.series.iter().enumerate() {
            let v = self
                .value(i, b)
                .map(self.format)
                .unwrap_or_else(|| "–".into());
            let _ = write!(tip, "\n{}: {v}", s.name);
        }
        tip
    }

    fn stacked(&self, svg: &mut String, x: &Scale, y: &Scale, band: f64) {
        let gap = (band * 0.15).min(2.0);
        for b in 0..self.n() {
            let mut base = 0.0;
            for (i, s) in self.series.iter().enumerate() {
                let Some(v) = self.value(i, b).filter(|v| *v > 0.0) else {
                    continue;
                };
                let (y0, y1) = (y.map(base), y.map(base + v));
                let _ = write!(
                    svg,
                    r#"<rect x="{:.2}" y="{y1:.2}" width="{:.2}" height="{:.2}" fill="{}"/>"#,
                    x.map(b as f64) + gap / 2.0,
                    (band - gap).max(0.5),
                    (y0 - y1).max(0.5),
                    s.colour,
                );
                base += v;
            }
        }
    }

    fn grouped(&self, svg: &mut String, x: &Scale, y: &Scale, band: f64) {
        let k = self.series.len().max(1) as f64;
        let gap = (band * 0.2).min(4.0);
        let w = ((band - gap) / k).max(0.5);
        for b in 0..self.n() {
            for (i, s) in self.series.iter().enumerate() {
                let Some(v) = self.value(i, b).filter(|v| *v > 0.0) else {
                    continue;
                };
                let (y0, y1) = (y.map(0.0), y.map(v));
                let _ = write!(
                    svg,
                    r#"<rect x="{:.2}" y="{y1:.2}" width="{w:.2}" height="{:.2}" fill="{}"/>"#,
                    x.map(b as f64) + gap / 2.0 + i as f64 * w,
                    (y0 - y1).max(0.5),
                    s.colour,
                );
            }
        }
    }

    fn lines(&self, svg: &mut String, x: &Scale, y: &Scale) {
        for (i, s) in self.series.iter().enumerate() {
            let mut d = String::new();
            let mut pen_down = false;
            let mut dots = String::new();
            for b in 0..self.n() {
                match self.value(i, b) {
                    Some(v) => {
                        let (px, py) = (x.map(b as f64 + 0.5), y.map(v.max(0.0)));
                        let _ = write!(d, "{}{px:.1},{py:.1}", if pen_down { 'L' } else { 'M' });
                        let _ = write!(
                            dots,
                            r#"<circle cx="{px:.1}" cy="{py:.1}" r="2.5" fill="{}"/>"#,
                            s.colour
                        );
                        pen_down = true;
                    }
                    None => pen_down = false,
                }
            }
            if !d.is_empty() {
                let _ = write!(
                    svg,
                    r#"<path d="{d}" fill="none" stroke="{}" stroke-width="2" stroke-linejoin="round"/>{dots}"#,
                    s.colour
                );
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::time;

    fn chart(kind: Kind, series: Vec<Series>, n: usize) -> Chart {
        Chart {
            id: "c".into(),
            title: "Events <per> minute".into(),
            description: "desc & more".into(),
            kind,
            buckets: (0..n).map(|i| format!("bucket {i}")).collect(),
            x_ticks: vec![(0, "00:00".into()), (n.saturating_sub(1), "23:00".into())],
            series,
            format: fmt_count,
            ticks: count_ticks,
            width: 720.0,
            empty_message: "No events in the last 24 h".into(),
        }
    }

    fn series(name: &str, values: &[Option<f64>]) -> Series {
        Series {
            name: name.into(),
            colour: "#1a7f37",
            values: values.to_vec(),
        }
    }

    #[test]
    fn scales_map_linearly_and_backwards() {
        let y = Scale::new((0.0, 10.0), (200.0, 0.0));
        assert_eq!(y.map(0.0), 200.0);
        assert_eq!(y.map(10.0), 0.0);
        assert_eq!(y.map(2.5), 150.0);
        let flat = Scale::new((3.0, 3.0), (5.0, 9.0));
        assert_eq!(
            flat.map(3.0),
            5.0,
            "an empty domain maps to the range start"
        );
    }

    #[test]
    fn nice_ticks_cover_the_maximum_with_round_steps() {
        assert_eq!(nice_ticks(0.0, 4), vec![0.0, 1.0]);
        assert_eq!(nice_ticks(f64::NAN, 4), vec![0.0, 1.0]);
        assert_eq!(nice_ticks(-3.0, 4), vec![0.0, 1.0]);
        assert_eq!(nice_ticks(7.0, 4), vec![0.0, 2.0, 4.0, 6.0, 8.0]);
        assert_eq!(nice_ticks(10.0, 4), vec![0.0, 2.5, 5.0, 7.5, 10.0]);
        assert_eq!(nice_ticks(1.0, 4), vec![0.0, 0.25, 0.5, 0.75, 1.0]);
        assert_eq!(nice_ticks(0.3, 4), vec![0.0, 0.1, 0.2, 0.3]);
        assert_eq!(nice_ticks(950.0, 4), vec![0.0, 250.0, 500.0, 750.0, 1000.0]);
        let big = nice_ticks(123_456.0, 5);
        assert!(*big.last().expect("ticks") >= 123_456.0);
        assert!(big.len() <= 7, "{big:?}");
        for max in [0.07, 1.3, 42.0, 999.0, 1e6 + 1.0] {
            let t = nice_ticks(max, 4);
            assert!(*t.last().expect("ticks") >= max, "{max}: {t:?}");
            assert!(t.len() >= 2 && t.len() <= 7, "{max}: {t:?}");
        }
    }

    #[test]
    fn duration_ticks_fall_on_round_durations() {
        assert_eq!(duration_ticks(0.0), vec![0.0, 1_000.0]);
        assert_eq!(
            duration_ticks(420.0),
            vec![0.0, 100.0, 200.0, 300.0, 400.0, 500.0]
        );
        assert_eq!(duration_ticks(41_300.0), vec![0.0, 1e4, 2e4, 3e4, 4e4, 5e4]);
        let minutes = duration_ticks(16.7 * 60_000.0);
        assert_eq!(minutes, vec![0.0, 3e5, 6e5, 9e5, 12e5]);
        assert!(
            minutes
                .iter()
                .all(|t| time::duration_ms(*t).ends_with("min") || *t == 0.0)
        );
        let days = duration_ticks(40.0 * 86_400_000.0);
        assert!(
            *days.last().expect("ticks") >= 40.0 * 86_400_000.0,
            "{days:?}"
        );
        assert!(days.len() <= 7, "{days:?}");
    }

    #[test]
    fn numbers_read_well() {
        assert_eq!(fmt_count(0.0), "0");
        assert_eq!(fmt_count(-0.0), "0");
        assert_eq!(fmt_count(2.5), "2.5");
        assert_eq!(fmt_count(0.25), "0.25");
        assert_eq!(fmt_count(12.0), "12");
        assert_eq!(fmt_count(1_200.0), "1.2k");
        assert_eq!(fmt_count(2_000.0), "2k");
        assert_eq!(fmt_count(3_400_000.0), "3.4M");
    }

    #[test]
    fn empty_data_draws_axes_and_says_so() {
        for kind in [Kind::StackedBars, Kind::GroupedBars, Kind::Lines] {
            let svg = chart(kind, vec![series("done", &[None, Some(0.0), None])], 3).render();
            assert!(svg.starts_with("<svg") && svg.ends_with("</svg>"), "{svg}");
            assert!(svg.contains("No events in the last 24 h"), "{svg}");
            assert!(svg.contains(">00:00</text>"), "x axis labels: {svg}");
            assert!(!svg.contains("<path"), "no line without data");
            assert!(!svg.contains("<title>bucket"), "no tooltips without data");
        }
        let none = chart(Kind::Lines, vec![], 0).render();
        assert!(none.contains("No events"), "{none}");
    }

    #[test]
    fn text_is_escaped_and_the_chart_is_labelled() {
        let mut c = chart(Kind::StackedBars, vec![series("a<b>", &[Some(1.0)])], 1);
        c.buckets = vec!["<script>".into()];
        let svg = c.render();
        assert!(!svg.contains("<script>") && !svg.contains("a<b>"), "{svg}");
        assert!(svg.contains("&lt;script&gt;") && svg.contains("a&lt;b&gt;"));
        assert!(svg.contains(r#"role="img""#));
        assert!(svg.contains(r#"<title id="c-title">Events &lt;per&gt; minute</title>"#));
        assert!(svg.contains(r#"<desc id="c-desc">desc &amp; more</desc>"#));
    }

    #[test]
    fn stacked_bars_stack_and_the_axis_reaches_the_tallest_stack() {
        let c = chart(
            Kind::StackedBars,
            vec![
                series("done", &[Some(3.0), Some(1.0)]),
                Series {
                    colour: "#cf222e",
                    ..series("dead", &[Some(4.0), None])
                },
            ],
            2,
        );
        let svg = c.render();
        // The tallest stack is 7: the axis ends at 8 (ticks 0 2 4 6 8).
        assert!(svg.contains(">8</text>"), "{svg}");
        assert!(!svg.contains(">10</text>"), "{svg}");
        // Three bars (the missing value draws nothing) and two tooltip columns.
        let bars = |colour: &str| svg.matches(&format!(r#"fill="{colour}"/>"#)).count();
        assert_eq!((bars("#1a7f37"), bars("#cf222e")), (2, 1), "{svg}");
        assert_eq!(svg.matches("<title>bucket").count(), 2);
        assert!(svg.contains("bucket 1\ndone: 1\ndead: –"), "{svg}");
    }

    #[test]
    fn the_legend_names_each_series_with_its_colour() {
        let mut c = chart(Kind::Lines, vec![series("p<50>", &[Some(1.0)])], 1);
        c.series[0].colour = "#0969da";
        let html = c.legend_html();
        assert!(html.contains(r##"fill="#0969da""##), "{html}");
        assert!(html.contains("p&lt;50&gt;</li>"), "{html}");
        assert!(
            !c.render().contains("p&lt;50&gt;</text>"),
            "not inside the drawing"
        );
    }

    #[test]
    fn lines_break_at_missing_values() {
        let c = chart(
            Kind::Lines,
            vec![series(
                "p50",
                &[Some(1.0), Some(2.0), None, Some(4.0), Some(3.0)],
            )],
            5,
        );
        let svg = c.render();
        let d = svg
            .split(r#"<path d=""#)
            .nth(1)
            .and_then(|s| s.split('"').next())
            .expect("a path");
        assert_eq!(d.matches('M').count(), 2, "two segments: {d}");
        assert_eq!(d.matches('L').count(), 2, "{d}");
        assert_eq!(svg.matches("<circle").count(), 4);
    }

    #[test]
    fn grouped_bars_sit_side_by_side() {
        let mut failed = series("failed", &[Some(2.0)]);
        failed.colour = "#cf222e";
        let c = chart(
            Kind::GroupedBars,
            vec![failed, series("recovered", &[Some(1.0)])],
            1,
        );
        let svg = c.render();
        let xs: Vec<f64> = svg
            .split("<rect x=\"")
            .skip(1)
            .filter(|s| !s.contains("transparent"))
            .filter_map(|s| s.split('"').next()?.parse().ok())
            .collect();
        assert_eq!(xs.len(), 2, "{svg}");
        assert!(xs[0] < xs[1]);
    }
}
