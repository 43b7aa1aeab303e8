//! Line charts: loss curves, MMD per Picard round, MSE against log-SNR.

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
    let path = path.as_ref();
    let kept: Vec<(&str, Vec<(f64, f64)>)> = series
        .iter()
        .map(|(name, points)| {
            let ok = |&&(x, y): &&(f64, f64)| x.is_finite() && y.is_finite() && (!log_y || y > 0.0);
            (name.as_ref(), points.iter().filter(ok).copied().collect())
        })
        .collect();
    let x_range = padded_range(kept.iter().flat_map(|(_, p)| p.iter().map(|q| q.0)));
    let ys = kept.iter().flat_map(|(_, p)| p.iter().map(|q| q.1));
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
            draw(builder.build_cartesian_2d(x, (lo..hi).log_scale())?, &kept, x_label, y_label, labels)?;
        } else {
            let (lo, hi) = padded_range(ys);
            draw(builder.build_cartesian_2d(x, lo..hi)?, &kept, x_label, y_label, 10)?;
        }
        root.present()?;
        Ok(())
    })
}

fn draw<'a, Y>(
    mut chart: ChartContext<'a, BitMapBackend<'a>, Cartesian2d<RangedCoordf64, Y>>,
    series: &[(&str, Vec<(f64, f64)>)],
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
    for (i, (name, points)) in series.iter().enumerate() {
        let color = Palette99::pick(i).to_rgba();
        chart
            .draw_series(LineSeries::new(points.iter().copied(), color.stroke_width(2)))?
            .label(*name)
            .legend(move |(x, y)| PathElement::new([(x, y), (x + 20, y)], color.stroke_width(2)));
        if points.len() <= MARKER_LIMIT {
            chart.draw_series(points.iter().map(|&p| Circle::new(p, 3, color.filled())))?;
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
