//! PNG versions of the charts in [`super`], drawn with plotters' bitmap backend.
//!
//! Text needs a TrueType/OpenType font. It is looked up once per process: the file named by
//! `SIREN_FONT`, else DejaVu Sans, Liberation Sans or FreeSans in the usual system folders,
//! else the first `*.ttf` under the system font folders. Without one, PNG charts are skipped
//! with a single warning (the SVG charts need no font).

use super::{PALETTE, Series, bar_axis, bars_top, bounds, fmt_num, legend_width};
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

/// The font family name the found font is registered under.
const FAMILY: &str = "siren-sans";

fn color(j: usize) -> RGBColor {
    let (r, g, b) = PALETTE[j % PALETTE.len()];
    RGBColor(r, g, b)
}

const PREFERRED: [&str; 8] = [
    "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf",
    "/usr/share/fonts/TTF/DejaVuSans.ttf",
    "/usr/share/fonts/dejavu/DejaVuSans.ttf",
    "/usr/share/fonts/dejavu-sans-fonts/DejaVuSans.ttf",
    "/usr/share/fonts/truetype/liberation/LiberationSans-Regular.ttf",
    "/usr/share/fonts/truetype/freefont/FreeSans.ttf",
    "/System/Library/Fonts/Supplemental/Arial.ttf",
    "C:\\Windows\\Fonts\\arial.ttf",
];

const FONT_DIRS: [&str; 3] = [
    "/usr/share/fonts",
    "/usr/local/share/fonts",
    "/Library/Fonts",
];

/// The font used for PNG text, registered with plotters on first use; `None` when none was
/// found (the reason is logged once).
pub fn font() -> Option<&'static Path> {
    static FONT: OnceLock<Option<PathBuf>> = OnceLock::new();
    FONT.get_or_init(|| {
        let found = find_font();
        match found {
            Ok(path) => Some(path),
            Err(why) => {
                tracing::warn!("PNG charts are skipped: {why} (the SVG charts are written)");
                None
            }
        }
    })
    .as_deref()
}

fn find_font() -> Result<PathBuf, String> {
    find_font_in(
        std::env::var_os("SIREN_FONT")
            .filter(|p| !p.is_empty())
            .map(PathBuf::from),
    )
}

/// The first usable font: `chosen` only, when given, else the system candidates.
fn find_font_in(chosen: Option<PathBuf>) -> Result<PathBuf, String> {
    let explicit = chosen.is_some();
    let candidates: Vec<PathBuf> = match chosen {
        Some(p) => vec![p],
        None => {
            let mut c: Vec<PathBuf> = PREFERRED.iter().map(PathBuf::from).collect();
            let mut any = Vec::new();
            for d in FONT_DIRS {
                collect_ttf(Path::new(d), 0, &mut any);
            }
            any.sort();
            c.extend(any);
            c
        }
    };
    let mut last = "no TrueType font in the system font folders; set SIREN_FONT to a .ttf file \
                    or install one (Debian: apt-get install fonts-dejavu-core)"
        .to_string();
    for path in candidates {
        if !path.is_file() {
            if explicit {
                last = format!("SIREN_FONT={}: no such file", path.display());
            }
            continue;
        }
        let bytes = match std::fs::read(&path) {
            Ok(b) => b,
            Err(e) => {
                last = format!("{}: {e}", path.display());
                continue;
            }
        };
        // plotters keeps registered fonts for the life of the process.
        let bytes: &'static [u8] = Box::leak(bytes.into_boxed_slice());
        if plotters::style::register_font(FAMILY, FontStyle::Normal, bytes).is_ok() {
            return Ok(path);
        }
        last = format!("{}: not a TrueType/OpenType font", path.display());
    }
    Err(last)
}

fn collect_ttf(dir: &Path, depth: usize, out: &mut Vec<PathBuf>) {
    let Ok(rd) = std::fs::read_dir(dir) else {
        return;
    };
    for e in rd.flatten() {
        let p = e.path();
        if p.is_dir() && depth < 4 {
            collect_ttf(&p, depth + 1, out);
        } else if p.extension().is_some_and(|x| x.eq_ignore_ascii_case("ttf")) {
            out.push(p);
        }
    }
}

fn style(size: f64) -> TextStyle<'static> {
    (FAMILY, size).into_font().color(&BLACK)
}

/// Draws into a `.partial.png` beside `path`, then renames it into place.
fn render(
    path: &Path,
    size: (u32, u32),
    draw: impl FnOnce(&DrawingArea<BitMapBackend<'_>, plotters::coord::Shift>) -> Result<(), String>,
) -> Result<(), String> {
    let tmp = path.with_extension("partial.png");
    {
        let root = BitMapBackend::new(&tmp, size).into_drawing_area();
        root.fill(&WHITE).map_err(|e| e.to_string())?;
        draw(&root)?;
        root.present().map_err(|e| e.to_string())?;
    }
    std::fs::rename(&tmp, path).map_err(|e| format!("{}: {e}", path.display()))
}

/// [`super::panels_svg`] as a PNG at `path`.
pub fn panels(path: &Path, title: &str, series: &[Series], columns: usize) -> Result<(), String> {
    let columns = columns.max(1);
    let rows = series.len().div_ceil(columns).max(1);
    let size = (320 * columns as u32, 200 * rows as u32 + 30);
    render(path, size, |root| {
        let body = root.titled(title, style(16.0)).map_err(|e| e.to_string())?;
        for (area, se) in body.split_evenly((rows, columns)).iter().zip(series) {
            let pts = se.finite_points();
            let (x0, x1, y0, y1) = bounds(&pts);
            let mut chart = ChartBuilder::on(area)
                .caption(&se.name, style(13.0))
                .margin(6)
                .x_label_area_size(20)
                .y_label_area_size(52)
                .build_cartesian_2d(x0..x1, y0..y1)
                .map_err(|e| e.to_string())?;
            chart
                .configure_mesh()
                .x_labels(4)
                .y_labels(4)
                .label_style(style(10.0))
                .x_label_formatter(&|v| fmt_num(*v))
                .y_label_formatter(&|v| fmt_num(*v))
                .light_line_style(WHITE.mix(0.0))
                .draw()
                .map_err(|e| e.to_string())?;
            chart
                .draw_series(LineSeries::new(
                    pts.iter().copied(),
                    color(0).stroke_width(2),
                ))
                .map_err(|e| e.to_string())?;
            if pts.len() == 1 {
                chart
                    .draw_series(std::iter::once(Circle::new(pts[0], 3, color(0).filled())))
                    .map_err(|e| e.to_string())?;
            }
        }
        Ok(())
    })
}

/// [`super::bars_svg`] as a PNG at `path`: grouped bars, y from 0, a legend, values over the
/// bars, category names turned 90° under the axis.
pub fn bars(
    path: &Path,
    title: &str,
    categories: &[String],
    series: &[(String, Vec<f64>)],
) -> Result<(), String> {
    let n = categories.len().max(1);
    let group = 22 * series.len().max(1) as u32 + 18;
    let label_chars = categories
        .iter()
        .map(|c| c.chars().count())
        .max()
        .unwrap_or(0);
    let bottom = (label_chars as u32 * 6 + 14).clamp(40, 260);
    let legend = legend_width(series) as u32;
    let width = (group * n as u32).max(240) + 80 + legend;
    let height = 36 + 260 + bottom;
    let (top, step, decimals) = bar_axis(bars_top(series) * 1.1, 4);
    let ticks = (top / step).round() as usize + 1;
    render(path, (width, height), |root| {
        let body = root.titled(title, style(15.0)).map_err(|e| e.to_string())?;
        let mut chart = ChartBuilder::on(&body)
            .margin(8)
            .margin_right(16 + legend)
            .x_label_area_size(bottom)
            .y_label_area_size(52)
            .build_cartesian_2d(0f64..n as f64, 0f64..top)
            .map_err(|e| e.to_string())?;
        chart
            .configure_mesh()
            .disable_x_mesh()
            .x_labels(0)
            .y_labels(ticks)
            .label_style(style(10.0))
            .y_label_formatter(&|v| format!("{v:.decimals$}"))
            .draw()
            .map_err(|e| e.to_string())?;
        let bw = 0.8 / series.len().max(1) as f64;
        // Values over the bars only where a bar is wide enough to hold one.
        let bar_px = f64::from(chart.plotting_area().dim_in_pixel().0) / n as f64 * bw;
        for (j, (_, vals)) in series.iter().enumerate() {
            let color = color(j);
            let bars: Vec<(f64, f64)> = vals
                .iter()
                .take(n)
                .enumerate()
                .filter(|(_, v)| v.is_finite())
                .map(|(i, &v)| (i as f64 + 0.1 + bw * j as f64, v.max(0.0)))
                .collect();
            chart
                .draw_series(
                    bars.iter().map(|&(x, v)| {
                        Rectangle::new([(x, 0.0), (x + bw * 0.92, v)], color.filled())
                    }),
                )
                .map_err(|e| e.to_string())?;
            if bar_px < 26.0 {
                continue;
            }
            let value_style = style(9.0).pos(Pos::new(HPos::Center, VPos::Bottom));
            chart
                .draw_series(
                    bars.iter().map(|&(x, v)| {
                        Text::new(fmt_num(v), (x + bw * 0.46, v), value_style.clone())
                    }),
                )
                .map_err(|e| e.to_string())?;
        }
        if legend > 0 {
            let x = body.dim_in_pixel().0 as i32 - legend as i32;
            for (j, (name, _)) in series.iter().enumerate() {
                let y = 8 + 16 * j as i32;
                body.draw(&Rectangle::new(
                    [(x, y), (x + 10, y + 10)],
                    color(j).filled(),
                ))
                .map_err(|e| e.to_string())?;
                body.draw(&Text::new(
                    name.clone(),
                    (x + 14, y + 5),
                    style(10.0).pos(Pos::new(HPos::Left, VPos::Center)),
                ))
                .map_err(|e| e.to_string())?;
            }
        }
        let label_style = style(10.0)
            .transform(FontTransform::Rotate90)
            .pos(Pos::new(HPos::Left, VPos::Center));
        for (i, c) in categories.iter().enumerate() {
            let (px, py) = chart.backend_coord(&(i as f64 + 0.5, 0.0));
            let (ox, oy) = body.get_base_pixel();
            body.draw(&Text::new(
                c.clone(),
                (px - ox, py - oy + 6),
                label_style.clone(),
            ))
            .map_err(|e| e.to_string())?;
        }
        Ok(())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn is_png(path: &Path) -> bool {
        std::fs::read(path).is_ok_and(|b| b.len() > 1000 && b.starts_with(b"\x89PNG\r\n\x1a\n"))
    }

    #[test]
    fn a_chosen_font_that_is_missing_or_not_a_font_is_named() {
        let err = find_font_in(Some("/no/such/font.ttf".into())).unwrap_err();
        assert!(
            err.contains("/no/such/font.ttf") && err.contains("no such file"),
            "{err}"
        );
        let tmp = tempfile::tempdir().unwrap();
        let fake = tmp.path().join("fake.ttf");
        std::fs::write(&fake, b"not a font").unwrap();
        let err = find_font_in(Some(fake.clone())).unwrap_err();
        assert!(
            err.contains("fake.ttf") && err.contains("not a TrueType"),
            "{err}"
        );
    }

    /// With `SIREN_REQUIRE_FONT` set (the test script sets it) a missing font fails the test
    /// instead of skipping it.
    #[test]
    fn png_charts_are_drawn_when_a_font_is_found() {
        if font().is_none() {
            assert!(
                std::env::var_os("SIREN_REQUIRE_FONT").is_none(),
                "SIREN_REQUIRE_FONT is set but no font was found"
            );
            return;
        }
        let tmp = tempfile::tempdir().unwrap();
        let b = tmp.path().join("bars.png");
        bars(
            &b,
            "MAE <by> method",
            &[
                "grpo-cot".into(),
                "stage2-ao-expected".into(),
                "global-mean".into(),
            ],
            &[
                ("MAE".into(), vec![0.8, 0.75, f64::NAN]),
                ("RMSE".into(), vec![1.1, 0.99, 1.2]),
            ],
        )
        .unwrap();
        assert!(is_png(&b));
        let p = tmp.path().join("panels.png");
        panels(&p, "training", &super::super::sample_series(), 2).unwrap();
        assert!(is_png(&p));
        // Written through a temporary name, which does not stay behind.
        let names: Vec<_> = std::fs::read_dir(tmp.path())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names.len(), 2, "{names:?}");
    }
}
