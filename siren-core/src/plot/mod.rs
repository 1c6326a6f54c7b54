//! Charts for run artifacts: training curves ([`panels_svg`]: one panel per metric, steps on
//! the x axis) and grouped bar charts ([`bars_svg`]: metrics per method in reports).
//!
//! Each is written twice by [`write_panels`] / [`write_bars`]: as SVG, by hand here (no font or
//! drawing library needed, so always written), and as PNG through plotters ([`png`]), when a
//! TrueType font is found ([`png::font`]).

pub mod png;

use crate::error::Result;
use std::fmt::Write as _;
use std::path::Path;

/// Writes `<stem>.svg` and `<stem>.png` (the PNG only when a font is found; a PNG that cannot
/// be drawn is logged and skipped, never failing the run that asked for it).
pub fn write_panels(stem: &Path, title: &str, series: &[Series], columns: usize) -> Result<()> {
    write_both(stem, &panels_svg(title, series, columns), |path| {
        png::panels(path, title, series, columns)
    })
}

/// Writes `<stem>.svg` and `<stem>.png` of a grouped bar chart, as [`write_panels`].
pub fn write_bars(
    stem: &Path,
    title: &str,
    categories: &[String],
    series: &[(String, Vec<f64>)],
) -> Result<()> {
    write_both(stem, &bars_svg(title, categories, series), |path| {
        png::bars(path, title, categories, series)
    })
}

fn write_both(
    stem: &Path,
    svg: &str,
    png: impl FnOnce(&Path) -> std::result::Result<(), String>,
) -> Result<()> {
    crate::files::write_atomic(&stem.with_extension("svg"), svg.as_bytes())?;
    if png::font().is_some() {
        let path = stem.with_extension("png");
        if let Err(e) = png(&path) {
            tracing::warn!("{}: PNG chart not written: {e}", path.display());
        }
    }
    Ok(())
}

/// One curve: a name and `(x, y)` points (non-finite points are skipped).
#[derive(Debug, Clone)]
pub struct Series {
    /// Panel title.
    pub name: String,
    /// Points in x order.
    pub points: Vec<(f64, f64)>,
}

impl Series {
    /// The points with both coordinates finite.
    pub fn finite_points(&self) -> Vec<(f64, f64)> {
        self.points
            .iter()
            .copied()
            .filter(|(x, y)| x.is_finite() && y.is_finite())
            .collect()
    }
}

fn fmt_num(v: f64) -> String {
    if v == 0.0 {
        "0".into()
    } else if v.fract() == 0.0 && v.abs() < 1e6 {
        format!("{v:.0}")
    } else if v.abs() >= 1000.0 || v.abs() < 0.01 {
        format!("{v:.2e}")
    } else {
        format!("{v:.3}")
    }
}

/// The y axis of a bar chart whose tallest bar is `max`: a round step (1, 2 or 5 × 10^k)
/// giving at most `n` intervals, the top (a whole number of steps at or above `max`), and the
/// decimals every tick label uses so that all of them share one format ("0.0, 0.5, 1.0, 1.5",
/// never "0, 0.500, 1, 1.500").
pub fn bar_axis(max: f64, n: usize) -> (f64, f64, usize) {
    let max = if max.is_finite() && max > 0.0 {
        max
    } else {
        1.0
    };
    let raw = max / n.max(1) as f64;
    let mag = 10f64.powf(raw.log10().floor());
    let step = [1.0, 2.0, 5.0, 10.0]
        .iter()
        .map(|m| m * mag)
        .find(|&s| s >= raw * (1.0 - 1e-9))
        .unwrap_or(10.0 * mag);
    let top = (max / step * (1.0 - 1e-9)).ceil().max(1.0) * step;
    let decimals = (-step.log10().floor()).max(0.0) as usize;
    (top, step, decimals)
}

/// An SVG with one small line chart per series, in a grid of `columns`.
pub fn panels_svg(title: &str, series: &[Series], columns: usize) -> String {
    let (pw, ph) = (320.0, 200.0);
    let (ml, mr, mt, mb) = (58.0, 12.0, 26.0, 28.0);
    let columns = columns.max(1);
    let rows = series.len().div_ceil(columns).max(1);
    let (w, h) = (pw * columns as f64, ph * rows as f64 + 30.0);
    let mut s = String::new();
    let _ = write!(
        s,
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{w}" height="{h}" viewBox="0 0 {w} {h}" font-family="sans-serif" font-size="11">
<rect width="100%" height="100%" fill="white"/>
<text x="{}" y="20" font-size="14" text-anchor="middle">{}</text>
"#,
        w / 2.0,
        xml_escape(title)
    );
    for (k, se) in series.iter().enumerate() {
        let ox = pw * (k % columns) as f64;
        let oy = 30.0 + ph * (k / columns) as f64;
        let pts = se.finite_points();
        let (x0, x1, y0, y1) = bounds(&pts);
        let (iw, ih) = (pw - ml - mr, ph - mt - mb);
        let _ = write!(
            s,
            r##"<g transform="translate({ox},{oy})">
<text x="{}" y="14" text-anchor="middle" font-size="12">{}</text>
<rect x="{ml}" y="{mt}" width="{iw}" height="{ih}" fill="none" stroke="#999"/>
<text x="{}" y="{}" text-anchor="end">{}</text>
<text x="{}" y="{}" text-anchor="end">{}</text>
<text x="{ml}" y="{}" text-anchor="start">{}</text>
<text x="{}" y="{}" text-anchor="end">{}</text>
"##,
            pw / 2.0,
            xml_escape(&se.name),
            ml - 4.0,
            mt + 10.0,
            fmt_num(y1),
            ml - 4.0,
            mt + ih,
            fmt_num(y0),
            mt + ih + 14.0,
            fmt_num(x0),
            ml + iw,
            mt + ih + 14.0,
            fmt_num(x1),
        );
        if !pts.is_empty() {
            let px = |x: f64| ml + (x - x0) / (x1 - x0) * iw;
            let py = |y: f64| mt + ih - (y - y0) / (y1 - y0) * ih;
            let path: Vec<String> = pts
                .iter()
                .map(|&(x, y)| format!("{:.1},{:.1}", px(x), py(y)))
                .collect();
            let _ = writeln!(
                s,
                r##"<polyline fill="none" stroke="#1f77b4" stroke-width="1.5" points="{}"/>"##,
                path.join(" ")
            );
            if pts.len() == 1 {
                let _ = writeln!(
                    s,
                    r##"<circle cx="{:.1}" cy="{:.1}" r="2.5" fill="#1f77b4"/>"##,
                    px(pts[0].0),
                    py(pts[0].1)
                );
            }
        }
        s.push_str("</g>\n");
    }
    s.push_str("</svg>\n");
    s
}

/// Bar colours, shared by the SVG and PNG charts (tab10, then two light ones).
const PALETTE: [(u8, u8, u8); 12] = [
    (0x1f, 0x77, 0xb4),
    (0xff, 0x7f, 0x0e),
    (0x2c, 0xa0, 0x2c),
    (0xd6, 0x27, 0x28),
    (0x94, 0x67, 0xbd),
    (0x8c, 0x56, 0x4b),
    (0xe3, 0x77, 0xc2),
    (0x7f, 0x7f, 0x7f),
    (0xbc, 0xbd, 0x22),
    (0x17, 0xbe, 0xcf),
    (0xae, 0xc7, 0xe8),
    (0xff, 0xbb, 0x78),
];

fn color_hex(j: usize) -> String {
    let (r, g, b) = PALETTE[j % PALETTE.len()];
    format!("#{r:02x}{g:02x}{b:02x}")
}

/// The largest finite value of a bar chart (at least 1e-9): the top of its y axis before
/// headroom.
fn bars_top(series: &[(String, Vec<f64>)]) -> f64 {
    series
        .iter()
        .flat_map(|(_, v)| v.iter().copied())
        .filter(|v| v.is_finite())
        .fold(0.0f64, f64::max)
        .max(1e-9)
}

/// Width of the legend column right of a bar chart (none for a single series).
fn legend_width(series: &[(String, Vec<f64>)]) -> f64 {
    if series.len() < 2 {
        return 0.0;
    }
    let chars = series
        .iter()
        .map(|(n, _)| n.chars().count())
        .max()
        .unwrap_or(0);
    (chars as f64 * 6.5 + 30.0).min(320.0)
}

/// A grouped bar chart: one group per category, one bar per series (`(name, value per
/// category)`; non-finite values are left out), y from 0, a legend, values over the bars.
pub fn bars_svg(title: &str, categories: &[String], series: &[(String, Vec<f64>)]) -> String {
    let legend = legend_width(series);
    let (ml, mr, mt, mb) = (58.0, 16.0 + legend, 36.0, 120.0);
    let group = 22.0 * series.len().max(1) as f64 + 18.0;
    let iw = (group * categories.len().max(1) as f64).max(240.0);
    let ih = 240.0;
    let (w, h) = (ml + iw + mr, mt + ih + mb);
    let (top, step, decimals) = bar_axis(bars_top(series) * 1.05, 4);
    let ticks = (top / step).round() as usize;
    let mut s = String::new();
    let _ = write!(
        s,
        r##"<svg xmlns="http://www.w3.org/2000/svg" width="{w}" height="{h}" viewBox="0 0 {w} {h}" font-family="sans-serif" font-size="11">
<rect width="100%" height="100%" fill="white"/>
<text x="{}" y="18" font-size="14" text-anchor="middle">{}</text>
<line x1="{ml}" y1="{mt}" x2="{ml}" y2="{}" stroke="#999"/>
<line x1="{ml}" y1="{}" x2="{}" y2="{}" stroke="#999"/>
"##,
        w / 2.0,
        xml_escape(title),
        mt + ih,
        mt + ih,
        ml + iw,
        mt + ih
    );
    for k in 0..=ticks {
        let v = step * k as f64;
        let y = mt + ih - ih * v / top;
        let _ = writeln!(
            s,
            r##"<text x="{}" y="{:.1}" text-anchor="end">{v:.decimals$}</text><line x1="{ml}" y1="{y:.1}" x2="{}" y2="{y:.1}" stroke="#eee"/>"##,
            ml - 4.0,
            y + 4.0,
            ml + iw
        );
    }
    if legend > 0.0 {
        for (j, (name, _)) in series.iter().enumerate() {
            let (x, y) = (ml + iw + 16.0, mt + 16.0 * j as f64);
            let _ = writeln!(
                s,
                r##"<rect x="{x}" y="{y}" width="10" height="10" fill="{}"/><text x="{}" y="{}">{}</text>"##,
                color_hex(j),
                x + 14.0,
                y + 9.0,
                xml_escape(name)
            );
        }
    }
    let gw = iw / categories.len().max(1) as f64;
    for (i, c) in categories.iter().enumerate() {
        let gx = ml + gw * i as f64;
        let bw = (gw - 18.0) / series.len().max(1) as f64;
        for (j, (_, vals)) in series.iter().enumerate() {
            let Some(&v) = vals.get(i).filter(|v| v.is_finite()) else {
                continue;
            };
            let bh = ih * (v / top).max(0.0);
            let x = gx + 9.0 + bw * j as f64;
            let _ = writeln!(
                s,
                r##"<rect x="{x:.1}" y="{:.1}" width="{:.1}" height="{bh:.1}" fill="{}"/><text x="{:.1}" y="{:.1}" text-anchor="middle" font-size="9">{}</text>"##,
                mt + ih - bh,
                bw - 2.0,
                color_hex(j),
                x + bw / 2.0,
                mt + ih - bh - 3.0,
                fmt_num(v)
            );
        }
        let lx = gx + gw / 2.0;
        let ly = mt + ih + 12.0;
        let _ = writeln!(
            s,
            r##"<text x="{lx:.1}" y="{ly:.1}" text-anchor="end" transform="rotate(-35 {lx:.1} {ly:.1})">{}</text>"##,
            xml_escape(c)
        );
    }
    s.push_str("</svg>\n");
    s
}

fn bounds(pts: &[(f64, f64)]) -> (f64, f64, f64, f64) {
    if pts.is_empty() {
        return (0.0, 1.0, 0.0, 1.0);
    }
    let (mut x0, mut x1, mut y0, mut y1) = (f64::MAX, f64::MIN, f64::MAX, f64::MIN);
    for &(x, y) in pts {
        x0 = x0.min(x);
        x1 = x1.max(x);
        y0 = y0.min(y);
        y1 = y1.max(y);
    }
    if x1 <= x0 {
        x1 = x0 + 1.0;
    }
    if y1 <= y0 {
        let pad = if y0 == 0.0 { 0.05 } else { y0.abs() * 0.05 };
        y0 -= pad;
        y1 += pad;
    }
    (x0, x1, y0, y1)
}

fn xml_escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

/// Three curves for chart tests: one with a NaN point, one of a single point, one empty.
#[cfg(test)]
fn sample_series() -> Vec<Series> {
    vec![
        Series {
            name: "loss".into(),
            points: vec![(1.0, 2.0), (2.0, f64::NAN), (3.0, 1.0)],
        },
        Series {
            name: "reward".into(),
            points: vec![(1.0, 0.5)],
        },
        Series {
            name: "empty".into(),
            points: vec![],
        },
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bars_have_one_rect_per_finite_value() {
        let s = bars_svg(
            "m <x>",
            &["a".into(), "b".into()],
            &[
                ("MAE".into(), vec![0.5, 1.0]),
                ("RMSE".into(), vec![f64::NAN, 2.0]),
            ],
        );
        // 2 legend squares + 3 bars (the NaN is left out) + the background.
        assert_eq!(s.matches("<rect").count(), 6, "{s}");
        assert!(s.contains("m &lt;x&gt;"));
    }

    #[test]
    fn a_flat_curve_is_padded_relative_to_its_value() {
        // A constant lr of 1e-3 must not be drawn on a -0.05..0.05 axis (it would read as 0).
        let (_, _, y0, y1) = bounds(&[(1.0, 1e-3), (2.0, 1e-3)]);
        assert!(
            y0 > 0.0 && y0 < 1e-3 && y1 > 1e-3 && y1 < 1.1e-3,
            "{y0} {y1}"
        );
        let (_, _, y0, y1) = bounds(&[(1.0, 0.0)]);
        assert!(y0 < 0.0 && y1 > 0.0);
        assert_eq!(fmt_num(8.0), "8");
        assert_eq!(fmt_num(0.5), "0.500");
        assert_eq!(fmt_num(1e-3), "1.00e-3");
    }

    #[test]
    fn bar_axis_ticks_share_one_format() {
        // MAE/RMSE bars up to ~1.5: steps of 0.5, one decimal on every tick.
        let close = |(t, s, d): (f64, f64, usize), (t2, s2, d2): (f64, f64, usize)| {
            (t - t2).abs() < 1e-9 && (s - s2).abs() < 1e-9 && d == d2
        };
        for (max, want) in [
            (1.45, (1.5, 0.5, 1)),
            (0.93, (1.0, 0.5, 1)),
            (0.08, (0.08, 0.02, 2)),
            (37.0, (40.0, 10.0, 0)),
            (0.0, (1.0, 0.5, 1)),
        ] {
            let got = bar_axis(max, 4);
            assert!(close(got, want), "{max}: {got:?} vs {want:?}");
        }
        let s = bars_svg(
            "t",
            &["a".into(), "b".into()],
            &[("MAE".into(), vec![0.7, 1.3])],
        );
        for t in ["0.0", "0.5", "1.0", "1.5"] {
            assert!(s.contains(&format!(">{t}</text><line")), "{t}: {s}");
        }
        assert!(
            !s.contains(">1</text><line") && !s.contains(">0.500</text>"),
            "{s}"
        );
    }

    #[test]
    fn svg_has_one_polyline_per_series_and_skips_nan() {
        let s = panels_svg("t <1>", &sample_series(), 2);
        // One per series with points; the empty series gets its panel but no line.
        assert_eq!(s.matches("<polyline").count(), 2);
        assert!(s.contains("t &lt;1&gt;"));
        assert!(!s.contains("NaN"));
        assert!(s.starts_with("<svg") && s.trim_end().ends_with("</svg>"));
    }
}
