//! The simulation's figure: for each mesh degree, the share of deliveries (honest message ×
//! receiving node) done by each time after publication, drawn into a buffer and written as a
//! PNG. Text is set in DejaVu Sans (Debian's `fonts-dejavu-core`, installed by the Makefile).

use std::path::Path;
use std::time::Duration;

use plotters::prelude::*;

use super::{Params, Report};

const FONT_FILES: [&str; 2] = [
    "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf",
    "/usr/share/fonts/dejavu/DejaVuSans.ttf",
];
const SIZE: (u32, u32) = (960, 600);

fn register_font() -> Result<(), String> {
    let path = FONT_FILES
        .iter()
        .find(|p| Path::new(p).exists())
        .ok_or("no DejaVu Sans font (apt-get install fonts-dejavu-core, or `make tools`)")?;
    let bytes = std::fs::read(path).map_err(|e| format!("{path}: {e}"))?;
    // The font lives as long as the process: plotters keeps a static reference.
    let bytes: &'static [u8] = Box::leak(bytes.into_boxed_slice());
    plotters::style::register_font("sans-serif", FontStyle::Normal, bytes)
        .map_err(|_| format!("{path} is not a font plotters can read"))
}

/// Draws the delivery-time distribution of each report into `path`.
pub(crate) fn propagation(path: &Path, p: &Params, reports: &[Report]) -> Result<(), String> {
    register_font()?;
    let mut rgb = vec![255u8; (SIZE.0 * SIZE.1 * 3) as usize];
    draw(&mut rgb, p, reports).map_err(|e| format!("drawing: {e}"))?;
    let file = std::fs::File::create(path).map_err(|e| e.to_string())?;
    let mut encoder = png::Encoder::new(std::io::BufWriter::new(file), SIZE.0, SIZE.1);
    encoder.set_color(png::ColorType::Rgb);
    encoder.set_depth(png::BitDepth::Eight);
    let mut writer = encoder.write_header().map_err(|e| e.to_string())?;
    writer.write_image_data(&rgb).map_err(|e| e.to_string())?;
    writer.finish().map_err(|e| e.to_string())
}

/// The share of `sorted` at or below each of `steps` points up to `max_ms`.
fn cdf(sorted: &[Duration], possible: usize, max_ms: f64, steps: usize) -> Vec<(f64, f64)> {
    let mut points = Vec::with_capacity(steps + 1);
    let mut k = 0;
    for s in 0..=steps {
        let t = max_ms * s as f64 / steps as f64;
        while k < sorted.len() && sorted[k].as_secs_f64() * 1e3 <= t {
            k += 1;
        }
        points.push((t, 100.0 * k as f64 / possible.max(1) as f64));
    }
    points
}

fn draw(rgb: &mut [u8], p: &Params, reports: &[Report]) -> Result<(), Box<dyn std::error::Error>> {
    let root = BitMapBackend::with_buffer(rgb, SIZE).into_drawing_area();
    root.fill(&WHITE)?;
    // The x axis reaches the slowest report's p99 time to all nodes, with some room.
    let max_ms = reports
        .iter()
        .filter_map(|r| r.quantile(2, 0.99))
        .map(|d| d.as_secs_f64() * 1e3)
        .fold(50.0, f64::max)
        * 1.25;
    let mut chart = ChartBuilder::on(&root)
        .caption(
            format!(
                "Propagation through {} rln-nodes ({:.0} msg/s, {} publishers)",
                p.nodes,
                p.rate,
                p.publishers()
            ),
            ("sans-serif", 24),
        )
        .margin(20)
        .x_label_area_size(50)
        .y_label_area_size(60)
        .build_cartesian_2d(0.0..max_ms, 0.0..100.0)?;
    chart
        .configure_mesh()
        .x_desc("time since publication (ms)")
        .y_desc("deliveries done (% of message × node)")
        .label_style(("sans-serif", 16))
        .draw()?;
    let colours = [BLUE, RED, GREEN, MAGENTA, CYAN, BLACK];
    for (i, r) in reports.iter().enumerate() {
        let colour = colours[i % colours.len()];
        let mut sorted = r.latencies.clone();
        sorted.sort();
        chart
            .draw_series(LineSeries::new(
                cdf(&sorted, r.possible, max_ms, 400),
                colour.stroke_width(3),
            ))?
            .label(format!(
                "D = {}: p99 to all {}, {:.0} B sent per delivery",
                r.degree,
                super::ms(r.quantile(2, 0.99)),
                r.bytes_per_delivery
            ))
            .legend(move |(x, y)| {
                PathElement::new(vec![(x, y), (x + 20, y)], colour.stroke_width(3))
            });
    }
    chart
        .configure_series_labels()
        .position(SeriesLabelPosition::LowerRight)
        .label_font(("sans-serif", 16))
        .background_style(WHITE.mix(0.9))
        .border_style(BLACK)
        .draw()?;
    root.present()?;
    Ok(())
}
