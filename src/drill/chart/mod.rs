//! `report.svg`: one panel per probe. Above each plot, a lane per fault shows when it was
//! switched on; the plot draws success, the planned degraded mode and p99 latency as steps at
//! the sample times, shades the windows of the faults the probe is `affected_by`, and marks
//! the injection and the lift above the 100% line. A `Durability` probe's lost writes are
//! crosses on its time axis, where they were acknowledged.

mod steps;

use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};

use super::report::{ProbeReport, Report};

const WIDTH: u32 = 1000;
const HEADER: u32 = 34;
const LANE: u32 = 16;
const PLOT: u32 = 240;
const MARGIN: u32 = 8;
/// The narrowest the left axis gets; it widens to fit the faults' names beside their lanes.
const LEFT: u32 = 64;
const RIGHT: u32 = 64;
/// Room above 100% for the phase labels, so no line runs through them.
const Y_TOP: f64 = 116.0;
const SUCCESS: RGBColor = RGBColor(30, 100, 200);
const LATENCY: RGBColor = RGBColor(40, 150, 70);
const DEGRADED: RGBColor = RGBColor(230, 150, 20);
const LOST: RGBColor = RGBColor(200, 0, 0);
const FAULT_COLOURS: [RGBColor; 6] = [
    RGBColor(214, 39, 40),
    RGBColor(148, 103, 189),
    RGBColor(140, 86, 75),
    RGBColor(227, 119, 194),
    RGBColor(127, 127, 127),
    RGBColor(188, 189, 34),
];

type Area<'a> = DrawingArea<SVGBackend<'a>, plotters::coord::Shift>;
type Drawn = Result<(), Box<dyn std::error::Error>>;

/// The chart as SVG text. Drawing into a string cannot fail for lack of a file; a drawing
/// error leaves a chart with what was drawn, and is logged.
pub fn render(report: &Report) -> String {
    let mut svg = String::new();
    let lanes = steps::faults(report).len() as u32;
    let panel_height = HEADER + lanes * LANE + PLOT;
    let panels = report.probes.len().max(1) as u32;
    {
        let root =
            SVGBackend::with_string(&mut svg, (WIDTH, panel_height * panels)).into_drawing_area();
        if let Err(e) = draw(&root, report) {
            tracing::warn!(error = %e, "the drill chart is incomplete");
        }
        let _ = root.present();
    }
    svg
}

fn draw(root: &Area<'_>, report: &Report) -> Drawn {
    root.fill(&WHITE)?;
    let areas = root.split_evenly((report.probes.len().max(1), 1));
    for (area, probe) in areas.iter().zip(&report.probes) {
        panel(area, report, probe)?;
    }
    Ok(())
}

fn colour_of(report: &Report, fault: &str) -> RGBColor {
    let at = steps::faults(report)
        .iter()
        .position(|f| *f == fault)
        .unwrap_or(0);
    FAULT_COLOURS[at % FAULT_COLOURS.len()]
}

fn panel(area: &Area<'_>, report: &Report, probe: &ProbeReport) -> Drawn {
    let names = steps::faults(report);
    let lanes_height = names.len() as u32 * LANE;
    let (header, rest) = area.split_vertically(HEADER);
    let (lanes, plot) = rest.split_vertically(lanes_height);
    let end_s = (report.phases.end_ms / 1000.0).max(1.0);
    let stretches = steps::stretches(report, probe);
    let max_latency = stretches.iter().map(|s| s.p99_ms).fold(1.0_f64, f64::max);
    let label_font = TextStyle::from(("sans-serif", 12).into_font());
    let mut left = LEFT;
    for name in &names {
        left = left.max(area.estimate_text_size(&lane_label(name), &label_font)?.0 + 20);
    }

    let mut chart = ChartBuilder::on(&plot)
        .margin_left(MARGIN)
        .margin_right(MARGIN)
        .margin_bottom(MARGIN)
        .x_label_area_size(32)
        .y_label_area_size(left)
        .right_y_label_area_size(RIGHT)
        .build_cartesian_2d(0.0..end_s, 0.0..Y_TOP)?
        .set_secondary_coord(0.0..end_s, 0.0..max_latency * Y_TOP / 100.0);
    chart
        .configure_mesh()
        .x_desc("seconds since the drill started")
        .y_desc("success %")
        .y_label_formatter(&|v| {
            if *v <= 100.0 {
                format!("{v:.0}")
            } else {
                String::new()
            }
        })
        .light_line_style(WHITE)
        .draw()?;
    chart
        .configure_secondary_axes()
        .y_desc("p99 latency, ms")
        .y_label_formatter(&|v| format!("{v:.0}"))
        .draw()?;
    chart.draw_series(steps::shaded(report, probe).into_iter().map(|w| {
        Rectangle::new(
            [(w.from_ms / 1000.0, 0.0), (w.to_ms / 1000.0, 100.0)],
            colour_of(report, &w.fault).mix(0.12).filled(),
        )
    }))?;
    phase_marks(&mut chart, report, end_s)?;
    let success = steps::step_points(&stretches, |s| s.success_pct);
    chart.draw_series(LineSeries::new(success, SUCCESS.stroke_width(2)))?;
    if probe.probe.degraded.is_some() {
        let degraded = steps::step_points(&stretches, |s| s.degraded_pct);
        chart.draw_series(LineSeries::new(degraded, DEGRADED.stroke_width(2)))?;
    }
    let latency = steps::step_points(&stretches, |s| s.p99_ms);
    chart.draw_secondary_series(LineSeries::new(latency, LATENCY.stroke_width(1)))?;
    if let Some(found) = &probe.durability {
        chart.draw_series(
            found
                .lost
                .iter()
                .map(|ack| Cross::new((ack.t_ms / 1000.0, 4.0), 4, LOST.stroke_width(2))),
        )?;
    }

    let (x_pixels, _) = chart.plotting_area().get_pixel_range();
    let to_px = |t_s: f64| {
        let span = f64::from(x_pixels.end - x_pixels.start);
        x_pixels.start + (t_s / end_s * span).round() as i32
    };
    fault_lanes(&lanes, report, &names, &to_px)?;
    heading(&header, probe, !steps::shaded(report, probe).is_empty())
}

/// The injection and lift: a line through the plot, and its name above the 100% line.
fn phase_marks<DB: DrawingBackend>(
    chart: &mut ChartContext<
        '_,
        DB,
        Cartesian2d<plotters::coord::types::RangedCoordf64, plotters::coord::types::RangedCoordf64>,
    >,
    report: &Report,
    end_s: f64,
) -> Result<(), DrawingAreaErrorKind<DB::ErrorType>> {
    let injected = report.phases.injected_ms / 1000.0;
    let lifted = report.phases.lifted_ms / 1000.0;
    let close = (lifted - injected).abs() < end_s * 0.08;
    let marks: Vec<(f64, &str)> = if close {
        vec![(injected, "injected, lifted")]
    } else {
        vec![(injected, "injected"), (lifted, "lifted")]
    };
    // Clear of the line it names.
    let gap = end_s * 0.004;
    for x in [injected, lifted] {
        chart.draw_series(std::iter::once(PathElement::new(
            vec![(x, 0.0), (x, Y_TOP)],
            BLACK.mix(0.5).stroke_width(1),
        )))?;
    }
    for (x, label) in marks {
        chart.draw_series(std::iter::once(Text::new(
            label,
            (x + gap, Y_TOP - 2.0),
            ("sans-serif", 12).into_font(),
        )))?;
    }
    Ok(())
}

/// One lane per fault, its name on the left, its windows as bars on the plot's time axis.
fn fault_lanes(
    area: &Area<'_>,
    report: &Report,
    names: &[&str],
    to_px: &dyn Fn(f64) -> i32,
) -> Drawn {
    let base_x = area.get_base_pixel().0;
    let name_font =
        TextStyle::from(("sans-serif", 12).into_font()).pos(Pos::new(HPos::Right, VPos::Center));
    for (i, name) in names.iter().enumerate() {
        let top = i as i32 * LANE as i32;
        let mid = top + LANE as i32 / 2;
        let colour = colour_of(report, name);
        let left = to_px(0.0) - base_x;
        area.draw(&Text::new(
            lane_label(name),
            (left - 6, mid),
            name_font.color(&colour.mix(1.0)),
        ))?;
        area.draw(&PathElement::new(
            vec![
                (left, mid),
                (to_px(report.phases.end_ms / 1000.0) - base_x, mid),
            ],
            BLACK.mix(0.15).stroke_width(1),
        ))?;
        for window in report.fault_windows.iter().filter(|w| w.fault == *name) {
            area.draw(&Rectangle::new(
                [
                    (to_px(window.from_ms / 1000.0) - base_x, top + 3),
                    (to_px(window.to_ms / 1000.0) - base_x, top + LANE as i32 - 3),
                ],
                colour.mix(0.8).filled(),
            ))?;
        }
    }
    Ok(())
}

fn lane_label(fault: &str) -> String {
    format!("fault {fault}")
}

/// The probe's name and verdict on the left; the legend on the right, clear of the data.
fn heading(area: &Area<'_>, probe: &ProbeReport, shaded: bool) -> Drawn {
    let verdict = probe.verdict.map_or("not judged", |v| v.label());
    area.draw(&Text::new(
        format!("{} — {verdict}", probe.name),
        (MARGIN as i32, 8),
        ("sans-serif", 18).into_font(),
    ))?;
    let mut entries: Vec<(RGBColor, u32, &str)> = vec![(SUCCESS, 2, "success %")];
    if probe.probe.degraded.is_some() {
        entries.push((DEGRADED, 2, "planned degraded mode %"));
    }
    entries.push((LATENCY, 1, "p99 latency (right axis)"));
    let font = TextStyle::from(("sans-serif", 12).into_font());
    let mut x = (WIDTH - MARGIN) as i32;
    let y = 14;
    if probe
        .durability
        .as_ref()
        .is_some_and(|d| !d.lost.is_empty())
    {
        let text = "lost write";
        x -= area.estimate_text_size(text, &font)?.0 as i32;
        area.draw(&Text::new(text, (x, y - 6), font.clone()))?;
        x -= 12;
        area.draw(&Cross::new((x, y), 4, LOST.stroke_width(2)))?;
        x -= 16;
    }
    if shaded {
        let text = "shaded: faults it is affected by";
        x -= area.estimate_text_size(text, &font)?.0 as i32;
        area.draw(&Text::new(text, (x, y - 6), font.clone()))?;
        x -= 16;
    }
    for (colour, width, text) in entries.into_iter().rev() {
        x -= area.estimate_text_size(text, &font)?.0 as i32;
        area.draw(&Text::new(text, (x, y - 6), font.clone()))?;
        x -= 22;
        area.draw(&PathElement::new(
            vec![(x, y), (x + 16, y)],
            colour.stroke_width(width),
        ))?;
        x -= 14;
    }
    Ok(())
}
