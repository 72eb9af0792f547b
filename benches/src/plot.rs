//! SVG plots of a comparison (plotters): per series, the median against the message size
//! on log axes, one line per implementation.

use crate::compare::{Point, Series};
use crate::report::is_bandwidth;
use plotters::prelude::*;
use std::collections::BTreeMap;
use std::path::Path;

const COLOURS: [RGBColor; 5] = [
    RGBColor(0xd6, 0x27, 0x28),
    RGBColor(0x1f, 0x77, 0xb4),
    RGBColor(0x2c, 0xa0, 0x2c),
    RGBColor(0x94, 0x67, 0xbd),
    RGBColor(0xff, 0x7f, 0x0e),
];

/// Draw `sizes` of `series` into the SVG file `path`. Size 0 is left out (a log axis has
/// no 0); so are series with nothing above it.
pub fn series(
    series: &Series,
    sizes: &BTreeMap<usize, BTreeMap<String, Point>>,
    path: &Path,
) -> Result<(), String> {
    let mut lines: BTreeMap<String, Vec<(f64, f64)>> = BTreeMap::new();
    for (&size, at) in sizes.iter().filter(|(&s, _)| s > 0) {
        for (imp, p) in at {
            if p.value > 0.0 && p.value.is_finite() {
                lines
                    .entry(imp.clone())
                    .or_default()
                    .push((size as f64, p.value));
            }
        }
    }
    let all: Vec<(f64, f64)> = lines.values().flatten().copied().collect();
    if all.is_empty() {
        return Err(format!(
            "{} at {} ranks: nothing to plot",
            series.test, series.ranks
        ));
    }
    let (x0, x1) = all
        .iter()
        .fold((f64::MAX, f64::MIN), |a, p| (a.0.min(p.0), a.1.max(p.0)));
    let (y0, y1) = all
        .iter()
        .fold((f64::MAX, f64::MIN), |a, p| (a.0.min(p.1), a.1.max(p.1)));
    let (x1, y1) = (
        if x1 > x0 { x1 } else { x0 * 2.0 },
        if y1 > y0 { y1 } else { y0 * 2.0 },
    );
    let e = |e: &dyn std::fmt::Display| format!("plot {}: {e}", path.display());
    let root = SVGBackend::new(path, (900, 540)).into_drawing_area();
    root.fill(&WHITE).map_err(|x| e(&x))?;
    let bw = is_bandwidth(&series.test);
    let caption = format!(
        "{} at {} ranks: {} against message size",
        series.test,
        series.ranks,
        if bw { "bandwidth" } else { "median latency" }
    );
    let mut chart = ChartBuilder::on(&root)
        .caption(caption, ("sans-serif", 22))
        .margin(15)
        .x_label_area_size(45)
        .y_label_area_size(70)
        .build_cartesian_2d((x0..x1).log_scale(), (y0 / 1.3..y1 * 1.3).log_scale())
        .map_err(|x| e(&x))?;
    chart
        .configure_mesh()
        .x_desc("message size (bytes)")
        .y_desc(if bw { "MB/s" } else { "microseconds" })
        .x_label_formatter(&|v| crate::size::label(*v as usize))
        .draw()
        .map_err(|x| e(&x))?;
    for (k, (imp, pts)) in lines.iter().enumerate() {
        let c = COLOURS[k % COLOURS.len()];
        chart
            .draw_series(LineSeries::new(pts.iter().copied(), c.stroke_width(2)))
            .map_err(|x| e(&x))?
            .label(imp.clone())
            .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 24, y)], c.stroke_width(2)));
        chart
            .draw_series(pts.iter().map(|&p| Circle::new(p, 3, c.filled())))
            .map_err(|x| e(&x))?;
    }
    chart
        .configure_series_labels()
        .position(if bw {
            SeriesLabelPosition::LowerRight
        } else {
            SeriesLabelPosition::UpperLeft
        })
        .background_style(WHITE.mix(0.9))
        .border_style(BLACK)
        .draw()
        .map_err(|x| e(&x))?;
    root.present().map_err(|x| e(&x))?;
    Ok(())
}
