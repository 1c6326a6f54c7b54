//! Small SVG charts for run artifacts (training curves), written without a drawing library:
//! one panel per metric, steps on the x axis, min/max labels on the y axis.

use std::fmt::Write as _;

/// One curve: a name and `(x, y)` points (non-finite points are skipped).
#[derive(Debug, Clone)]
pub struct Series {
    /// Panel title.
    pub name: String,
    /// Points in x order.
    pub points: Vec<(f64, f64)>,
}

fn fmt_num(v: f64) -> String {
    if v == 0.0 {
        "0".into()
    } else if v.abs() >= 1000.0 || v.abs() < 0.01 {
        format!("{v:.2e}")
    } else {
        format!("{v:.3}")
    }
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
        let pts: Vec<(f64, f64)> = se
            .points
            .iter()
            .copied()
            .filter(|(x, y)| x.is_finite() && y.is_finite())
            .collect();
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
        let pad = y0.abs().max(1.0) * 0.05;
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn svg_has_one_polyline_per_series_and_skips_nan() {
        let s = panels_svg(
            "t <1>",
            &[
                Series {
                    name: "loss".into(),
                    points: vec![(1.0, 2.0), (2.0, f64::NAN), (3.0, 1.0)],
                },
                Series {
                    name: "reward".into(),
                    points: vec![(1.0, 0.5)],
                },
            ],
            2,
        );
        assert_eq!(s.matches("<polyline").count(), 2);
        assert!(s.contains("t &lt;1&gt;"));
        assert!(!s.contains("NaN"));
        assert!(s.starts_with("<svg") && s.trim_end().ends_with("</svg>"));
    }
}
