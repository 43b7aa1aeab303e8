//! The error heat map of [`ErrorMap`] (the paper's Figure 1) with sampler trajectories.

use std::path::Path;

use plotters::prelude::*;

use super::{render, tick};
use crate::ood_map::ErrorMap;
use crate::{Error, Result};

/// Low error is white, high error dark red.
fn colour_map() -> DerivedColorMap<RGBColor> {
    DerivedColorMap::new(&[
        WHITE,
        RGBColor(255, 237, 160),
        RGBColor(254, 178, 76),
        RGBColor(240, 59, 32),
        RGBColor(128, 0, 38),
    ])
}

/// Draws `map` over (timestep, value) with a colour bar, and each trajectory's `(timestep,
/// value)` points as a blue line starting at a dot (1100×620 PNG). Cells whose error is not
/// finite are grey; the colour scale runs from 0 to the largest finite error.
pub fn heatmap_with_trajectories(
    path: impl AsRef<Path>,
    map: &ErrorMap,
    trajectories: &[Vec<(f64, f64)>],
    title: &str,
) -> Result<()> {
    let path = path.as_ref();
    let (nt, nv) = (map.timesteps.len(), map.values.len());
    if nt == 0 || nv == 0 || map.error.len() != nt || map.error.iter().any(|r| r.len() != nv) {
        let got =
            format!("{} rows of lengths {:?}", map.error.len(), map.error.iter().map(Vec::len).collect::<Vec<_>>());
        return Err(Error::shape("heatmap error map", format!("{nt} rows of {nv} values, both non-zero"), got));
    }
    let t_edges = edges(&map.timesteps.iter().map(|&t| t as f64).collect::<Vec<_>>());
    let v_edges = edges(&map.values);
    let span = |e: &[f64]| {
        (e.iter().copied().fold(f64::INFINITY, f64::min), e.iter().copied().fold(f64::NEG_INFINITY, f64::max))
    };
    let ((t_lo, t_hi), (v_lo, v_hi)) = (span(&t_edges), span(&v_edges));
    if !(t_lo < t_hi && v_lo < v_hi) {
        return Err(Error::invalid(
            "map.values",
            format!("{v_lo}..{v_hi}"),
            "the grid must span a finite, non-empty area",
        ));
    }
    let max = match map.max_error() {
        m if m > 0.0 => m,
        _ => 1.0,
    };
    let cmap = colour_map();
    render(path, || {
        let root = BitMapBackend::new(path, (1100, 620)).into_drawing_area();
        root.fill(&WHITE)?;
        let root = root.titled(title, ("sans-serif", 22))?;
        let (main, bar) = root.split_horizontally(980);
        let mut chart = ChartBuilder::on(&main)
            .margin(10)
            .x_label_area_size(45)
            .y_label_area_size(60)
            .build_cartesian_2d(t_lo..t_hi, v_lo..v_hi)?;
        let cells =
            map.error.iter().enumerate().flat_map(|(i, row)| row.iter().enumerate().map(move |(j, &e)| (i, j, e)));
        let (te, ve, cm) = (&t_edges, &v_edges, &cmap);
        chart.draw_series(cells.map(|(i, j, e)| {
            let colour =
                if e.is_finite() { cm.get_color_normalized(e.min(max), 0.0, max) } else { RGBColor(160, 160, 160) };
            Rectangle::new([(te[i], ve[j]), (te[i + 1], ve[j + 1])], colour.filled())
        }))?;
        chart
            .configure_mesh()
            .x_desc("timestep t")
            .y_desc("value")
            .x_label_formatter(&tick)
            .y_label_formatter(&tick)
            .label_style(("sans-serif", 14))
            .axis_desc_style(("sans-serif", 16))
            .disable_mesh()
            .draw()?;
        let blue = RGBColor(31, 90, 220);
        for tr in trajectories {
            let finite: Vec<(f64, f64)> = tr.iter().copied().filter(|(t, v)| t.is_finite() && v.is_finite()).collect();
            chart.draw_series(LineSeries::new(finite.iter().copied(), blue.stroke_width(2)))?;
            chart.draw_series(finite.first().map(|&p| Circle::new(p, 4, blue.filled())))?;
        }
        let mut scale = ChartBuilder::on(&bar)
            .margin_top(10)
            .margin_bottom(55)
            .margin_right(10)
            .y_label_area_size(55)
            .caption("score error", ("sans-serif", 14))
            .build_cartesian_2d(0.0..1.0, 0.0..max)?;
        let steps = 100;
        scale.draw_series((0..steps).map(|k| {
            let (lo, hi) = (max * k as f64 / steps as f64, max * (k + 1) as f64 / steps as f64);
            Rectangle::new([(0.0, lo), (1.0, hi)], cm.get_color_normalized(0.5 * (lo + hi), 0.0, max).filled())
        }))?;
        scale
            .configure_mesh()
            .disable_mesh()
            .disable_x_axis()
            .y_label_formatter(&tick)
            .label_style(("sans-serif", 13))
            .draw()?;
        root.present()?;
        Ok(())
    })
}

/// Cell boundaries around `centres`: midpoints between neighbours, half a step past the ends.
fn edges(centres: &[f64]) -> Vec<f64> {
    let n = centres.len();
    if n == 1 {
        return vec![centres[0] - 0.5, centres[0] + 0.5];
    }
    let mut e = Vec::with_capacity(n + 1);
    e.push(centres[0] - 0.5 * (centres[1] - centres[0]));
    e.extend(centres.windows(2).map(|w| 0.5 * (w[0] + w[1])));
    e.push(centres[n - 1] + 0.5 * (centres[n - 1] - centres[n - 2]));
    e
}
