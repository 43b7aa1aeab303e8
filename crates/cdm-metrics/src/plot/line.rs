//! Line charts: loss curves, MMD per Picard round, MSE against log-SNR; with shaded bands
//! (mean ± SD over seeds) in [`band_chart`].

use std::path::Path;

use plotters::coord::ranged1d::ValueFormatter;
use plotters::coord::types::RangedCoordf64;
use plotters::prelude::*;

use super::{DrawResult, decade_range, padded_range, render, tick};
use crate::Result;

/// Series with at most this many points also get a marker per point.
const MARKER_LIMIT: usize = 60;

/// Draws named `(x, y)` series on one chart (800×520 PNG), with a legend.
///
/// Non-finite points are skipped, and with `log_y` so are points with y ≤ 0; a log axis spans
/// whole decades.
pub fn line_chart<S: AsRef<str>>(
    path: impl AsRef<Path>,
    series: &[(S, Vec<(f64, f64)>)],
    x_label: &str,
    y_label: &str,
    title: &str,
    log_y: bool,
) -> Result<()> {
    let series: Vec<Series> = series
        .iter()
        .map(|(name, points)| Series {
            name: name.as_ref(),
            points: points.iter().map(|&(x, y)| BandPoint { x, y, low: y, high: y }).collect(),
            shaded: false,
        })
        .collect();
    chart(path.as_ref(), series, x_label, y_label, title, log_y)
}

/// One point of a [`band_chart`] series: the line at `(x, y)`, the band from `low` to `high`.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct BandPoint {
    /// Abscissa.
    pub x: f64,
    /// The line's value (e.g. the mean over seeds).
    pub y: f64,
    /// The band's lower edge (e.g. mean − SD).
    pub low: f64,
    /// The band's upper edge.
    pub high: f64,
}

/// Like [`line_chart`], with a translucent band around each named series (on a log axis, a
/// lower edge at or below 0 is drawn at y/100).
pub fn band_chart<S: AsRef<str>>(
    path: impl AsRef<Path>,
    series: &[(S, Vec<BandPoint>)],
    x_label: &str,
    y_label: &str,
    title: &str,
    log_y: bool,
) -> Result<()> {
    let series: Vec<Series> = series
        .iter()
        .map(|(name, points)| Series { name: name.as_ref(), points: points.clone(), shaded: true })
        .collect();
    chart(path.as_ref(), series, x_label, y_label, title, log_y)
}

/// A named series, its band drawn when `shaded`.
struct Series<'a> {
    name: &'a str,
    points: Vec<BandPoint>,
    shaded: bool,
}

fn chart(path: &Path, mut series: Vec<Series>, x_label: &str, y_label: &str, title: &str, log_y: bool) -> Result<()> {
    let ok = |p: &BandPoint| [p.x, p.y, p.low, p.high].iter().all(|v| v.is_finite()) && (!log_y || p.y > 0.0);
    for s in &mut series {
        s.points.retain(ok);
        if log_y {
            // a band edge at or below 0 cannot be drawn on a log axis: it is drawn at y/100
            s.points.iter_mut().for_each(|p| p.low = p.low.max(p.y / 100.0));
        }
    }
    let x_range = padded_range(series.iter().flat_map(|s| s.points.iter().map(|p| p.x)));
    let ys = series.iter().flat_map(|s| s.points.iter().flat_map(|p| [p.low, p.high, p.y]));
    render(path, || {
        let root = BitMapBackend::new(path, (800, 520)).into_drawing_area();
        root.fill(&WHITE)?;
        let mut builder = ChartBuilder::on(&root);
        builder.caption(title, ("sans-serif", 22)).margin(12).x_label_area_size(45).y_label_area_size(75);
        let x = x_range.0..x_range.1;
        if log_y {
            let (lo, hi) = decade_range(ys);
            // up to two decades get ticks at 1…9 × 10^k, wider ranges at the decades only
            let labels = if hi / lo <= 100.0 + 1e-6 { 30 } else { 10 };
            draw(builder.build_cartesian_2d(x, (lo..hi).log_scale())?, &series, x_label, y_label, labels)?;
        } else {
            let (lo, hi) = padded_range(ys);
            draw(builder.build_cartesian_2d(x, lo..hi)?, &series, x_label, y_label, 10)?;
        }
        root.present()?;
        Ok(())
    })
}

fn draw<'a, Y>(
    mut chart: ChartContext<'a, BitMapBackend<'a>, Cartesian2d<RangedCoordf64, Y>>,
    series: &[Series],
    x_label: &str,
    y_label: &str,
    y_labels: usize,
) -> DrawResult
where
    Y: Ranged<ValueType = f64> + ValueFormatter<f64>,
{
    chart
        .configure_mesh()
        .x_desc(x_label)
        .y_desc(y_label)
        .x_label_formatter(&tick)
        .y_label_formatter(&tick)
        .y_labels(y_labels)
        .label_style(("sans-serif", 14))
        .axis_desc_style(("sans-serif", 16))
        .light_line_style(WHITE.mix(0.0))
        .draw()?;
    for (i, s) in series.iter().enumerate() {
        let color = Palette99::pick(i).to_rgba();
        if s.shaded && !s.points.is_empty() {
            let upper = s.points.iter().map(|p| (p.x, p.high));
            let lower = s.points.iter().rev().map(|p| (p.x, p.low));
            chart.draw_series(std::iter::once(Polygon::new(upper.chain(lower).collect::<Vec<_>>(), color.mix(0.2))))?;
        }
        let line = s.points.iter().map(|p| (p.x, p.y));
        chart
            .draw_series(LineSeries::new(line.clone(), color.stroke_width(2)))?
            .label(s.name)
            .legend(move |(x, y)| PathElement::new([(x, y), (x + 20, y)], color.stroke_width(2)));
        if s.points.len() <= MARKER_LIMIT {
            chart.draw_series(line.map(|p| Circle::new(p, 3, color.filled())))?;
        }
    }
    if !series.is_empty() {
        chart
            .configure_series_labels()
            .background_style(WHITE.mix(0.85))
            .border_style(BLACK)
            .label_font(("sans-serif", 15))
            .position(SeriesLabelPosition::UpperRight)
            .draw()?;
    }
    Ok(())
}
