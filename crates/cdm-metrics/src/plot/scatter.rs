//! Generated samples next to the data, two panels on shared axes.

use std::path::Path;

use plotters::prelude::*;

use super::{padded_range, render, tick};
use crate::mmd::rows;
use crate::{Error, Result};

/// Draws 2-D `data` (left, grey) and `samples` (right, blue), row-major (x, y) pairs, on
/// shared axes (1100×560 PNG).
pub fn scatter_vs_data(path: impl AsRef<Path>, samples: &[f64], data: &[f64], title: &str) -> Result<()> {
    let path = path.as_ref();
    for (what, points) in [("samples", samples), ("data", data)] {
        if rows(what, points, 2)? == 0 {
            return Err(Error::invalid("points", what, "need at least one point"));
        }
    }
    let all = || samples.chunks_exact(2).chain(data.chunks_exact(2));
    let x_range = padded_range(all().map(|p| p[0]));
    let y_range = padded_range(all().map(|p| p[1]));
    render(path, || {
        let root = BitMapBackend::new(path, (1100, 560)).into_drawing_area();
        root.fill(&WHITE)?;
        let root = root.titled(title, ("sans-serif", 24))?;
        let panels = root.split_evenly((1, 2));
        let sets = [("data", data, RGBColor(90, 90, 90)), ("samples", samples, RGBColor(31, 90, 200))];
        for (area, (name, points, color)) in panels.iter().zip(sets) {
            let mut chart = ChartBuilder::on(area)
                .caption(format!("{name} (n = {})", points.len() / 2), ("sans-serif", 18))
                .margin(10)
                .x_label_area_size(35)
                .y_label_area_size(45)
                .build_cartesian_2d(x_range.0..x_range.1, y_range.0..y_range.1)?;
            chart
                .configure_mesh()
                .x_label_formatter(&tick)
                .y_label_formatter(&tick)
                .label_style(("sans-serif", 13))
                .light_line_style(WHITE.mix(0.0))
                .draw()?;
            let finite = points.chunks_exact(2).filter(|p| p[0].is_finite() && p[1].is_finite());
            chart.draw_series(finite.map(|p| Circle::new((p[0], p[1]), 2, color.mix(0.6).filled())))?;
        }
        root.present()?;
        Ok(())
    })
}
