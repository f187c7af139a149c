//! `report.svg`: one panel per probe, success rate and p99 latency over time, with the fault
//! windows shaded and the injection and lift marked.

use plotters::prelude::*;

use super::measure;
use super::report::{ProbeReport, Report};

const PANEL_HEIGHT: u32 = 260;
const WIDTH: u32 = 1000;
const FAULT_SHADE: RGBColor = RGBColor(230, 80, 60);
const SUCCESS: RGBColor = RGBColor(30, 100, 200);
const LATENCY: RGBColor = RGBColor(40, 150, 70);
const DEGRADED: RGBColor = RGBColor(230, 150, 20);

/// The chart as SVG text. Drawing into a string cannot fail for lack of a file; a drawing
/// error leaves a chart with what was drawn, and is logged.
pub fn render(report: &Report) -> String {
    let mut svg = String::new();
    let panels = report.probes.len().max(1) as u32;
    {
        let root =
            SVGBackend::with_string(&mut svg, (WIDTH, PANEL_HEIGHT * panels)).into_drawing_area();
        if let Err(e) = draw(&root, report) {
            tracing::warn!(error = %e, "the drill chart is incomplete");
        }
        let _ = root.present();
    }
    svg
}

type Area<'a> = DrawingArea<SVGBackend<'a>, plotters::coord::Shift>;

fn draw(root: &Area<'_>, report: &Report) -> Result<(), Box<dyn std::error::Error>> {
    root.fill(&WHITE)?;
    let areas = root.split_evenly((report.probes.len().max(1), 1));
    for (area, probe) in areas.iter().zip(&report.probes) {
        panel(area, report, probe)?;
    }
    Ok(())
}

/// One point of a probe's lines: its samples in a stretch of time, summed up.
struct Bucket {
    /// The stretch's middle, in seconds since the drill started.
    mid_s: f64,
    success_pct: f64,
    p99_ms: f64,
    degraded_pct: f64,
}

/// The probe's samples in buckets of two sample intervals at least, and no more than about
/// 200 across the chart; empty stretches have no point.
fn buckets(report: &Report, probe: &ProbeReport) -> Vec<Bucket> {
    let bucket_ms = (probe.probe.interval.as_secs_f64() * 2000.0).max(report.phases.end_ms / 200.0);
    (0..)
        .map(|i| i as f64 * bucket_ms)
        .take_while(|from| *from < report.phases.end_ms)
        .filter_map(|from| {
            let samples = measure::between(&probe.samples, from, from + bucket_ms);
            (!samples.is_empty()).then(|| Bucket {
                mid_s: (from + bucket_ms / 2.0) / 1000.0,
                success_pct: measure::success(samples) * 100.0,
                p99_ms: measure::p99_ms(samples),
                degraded_pct: samples.iter().filter(|s| s.degraded).count() as f64 * 100.0
                    / samples.len() as f64,
            })
        })
        .collect()
}

fn panel(
    area: &Area<'_>,
    report: &Report,
    probe: &ProbeReport,
) -> Result<(), Box<dyn std::error::Error>> {
    let end_s = (report.phases.end_ms / 1000.0).max(1.0);
    let buckets = buckets(report, probe);
    let max_latency = buckets
        .iter()
        .map(|b| b.p99_ms)
        .fold(1.0_f64, f64::max)
        .mul_add(1.15, 0.0);
    let verdict = probe.verdict.map_or("not judged", |v| v.label());
    let mut chart = ChartBuilder::on(area)
        .caption(
            format!("{} — {verdict}", probe.name),
            ("sans-serif", 18).into_font(),
        )
        .margin(8)
        .x_label_area_size(32)
        .y_label_area_size(48)
        .right_y_label_area_size(56)
        .build_cartesian_2d(0.0..end_s, 0.0..105.0)?
        .set_secondary_coord(0.0..end_s, 0.0..max_latency);
    chart
        .configure_mesh()
        .x_desc("seconds since the drill started")
        .y_desc("success %")
        .light_line_style(WHITE)
        .draw()?;
    chart
        .configure_secondary_axes()
        .y_desc("p99 latency, ms")
        .draw()?;
    chart.draw_series(report.fault_windows.iter().map(|w| {
        Rectangle::new(
            [(w.from_ms / 1000.0, 0.0), (w.to_ms / 1000.0, 105.0)],
            FAULT_SHADE.mix(0.15).filled(),
        )
    }))?;
    for (at, label) in [
        (report.phases.injected_ms, "injected"),
        (report.phases.lifted_ms, "lifted"),
    ] {
        let x = at / 1000.0;
        chart.draw_series(std::iter::once(PathElement::new(
            vec![(x, 0.0), (x, 105.0)],
            BLACK.mix(0.5).stroke_width(1),
        )))?;
        chart.draw_series(std::iter::once(Text::new(
            label,
            (x, 103.0),
            ("sans-serif", 12).into_font(),
        )))?;
    }
    chart
        .draw_series(LineSeries::new(
            buckets.iter().map(|b| (b.mid_s, b.success_pct)),
            SUCCESS.stroke_width(2),
        ))?
        .label("success %")
        .legend(|(x, y)| PathElement::new(vec![(x, y), (x + 16, y)], SUCCESS.stroke_width(2)));
    if probe.probe.degraded.is_some() {
        chart
            .draw_series(LineSeries::new(
                buckets.iter().map(|b| (b.mid_s, b.degraded_pct)),
                DEGRADED.stroke_width(2),
            ))?
            .label("planned degraded mode %")
            .legend(|(x, y)| PathElement::new(vec![(x, y), (x + 16, y)], DEGRADED.stroke_width(2)));
    }
    chart
        .draw_secondary_series(LineSeries::new(
            buckets.iter().map(|b| (b.mid_s, b.p99_ms)),
            LATENCY.stroke_width(1),
        ))?
        .label("p99 latency")
        .legend(|(x, y)| PathElement::new(vec![(x, y), (x + 16, y)], LATENCY.stroke_width(1)));
    chart
        .configure_series_labels()
        .background_style(WHITE.mix(0.8))
        .border_style(BLACK.mix(0.3))
        .position(SeriesLabelPosition::LowerLeft)
        .draw()?;
    Ok(())
}
