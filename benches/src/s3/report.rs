//! Reporting for `s3` and `compare`: JSON fragments (latencies in milliseconds from the merged HDR
//! histograms), the human table on stderr, and hand-written SVG plots (throughput over time per
//! round, latency CDF per target). Plots are plain SVG 1.1 with no scripts or external fonts.

use crate::load::{LoadResult, median};
use anyhow::Context;
use hdrhistogram::Histogram;
use serde_json::{Value, json};
use std::fmt::Write as _;
use std::path::Path;

pub fn latency_json(histogram: &Histogram<u64>) -> Value {
    let ms = |micros: u64| micros as f64 / 1e3;
    json!({
        "p50": ms(histogram.value_at_quantile(0.50)),
        "p90": ms(histogram.value_at_quantile(0.90)),
        "p99": ms(histogram.value_at_quantile(0.99)),
        "p999": ms(histogram.value_at_quantile(0.999)),
        "max": ms(histogram.max()),
        "mean": histogram.mean() / 1e3,
    })
}

pub fn ops_per_second(result: &LoadResult) -> f64 {
    result.operations() as f64 / result.seconds
}

pub fn megabytes_per_second(result: &LoadResult) -> f64 {
    result.bytes() as f64 / result.seconds / 1e6
}

/// min, median and max of `values`.
pub fn spread(values: &[f64]) -> Value {
    let mut sorted = values.to_vec();
    let middle = median(&mut sorted);
    json!({
        "min": sorted.first().copied().unwrap_or(f64::NAN),
        "median": middle,
        "max": sorted.last().copied().unwrap_or(f64::NAN),
    })
}

pub fn round_json(result: &LoadResult) -> anyhow::Result<Value> {
    let by_operation: serde_json::Map<String, Value> = result
        .kinds
        .iter()
        .filter(|kind| kind.operations > 0)
        .map(|kind| {
            (
                kind.name.to_owned(),
                json!({
                    "operations": kind.operations,
                    "bytes": kind.bytes,
                    "items": kind.items,
                    "ops_per_second": kind.operations as f64 / result.seconds,
                    "latency_ms": latency_json(&kind.histogram),
                }),
            )
        })
        .collect();
    Ok(json!({
        "seconds": result.seconds,
        "operations": result.operations(),
        "bytes": result.bytes(),
        "ops_per_second": ops_per_second(result),
        "megabytes_per_second": megabytes_per_second(result),
        "latency_ms": latency_json(&result.merged_histogram()?),
        "by_operation": by_operation,
        // [operations, bytes] completed in each second of the round.
        "timeline": result.timeline.iter().map(|second| json!([second.operations, second.bytes])).collect::<Vec<_>>(),
        "cpu": result.cpu.as_ref().map(|cpu| cpu.to_json(result.operations(), result.bytes())),
    }))
}

/// Medians over rounds and latencies over all rounds' operations merged.
pub fn summary_json(rounds: &[LoadResult]) -> anyhow::Result<Value> {
    let ops: Vec<f64> = rounds.iter().map(ops_per_second).collect();
    let megabytes: Vec<f64> = rounds.iter().map(megabytes_per_second).collect();
    let mut merged = crate::load::latency_histogram()?;
    for round in rounds {
        merged.add(&round.merged_histogram()?)?;
    }
    // Medians over the rounds that measured them (see crate::cpu).
    let cpu_field = |field: &str| -> Vec<f64> {
        rounds
            .iter()
            .filter_map(|round| {
                let cpu = round.cpu.as_ref()?;
                cpu.to_json(round.operations(), round.bytes())[field].as_f64()
            })
            .collect()
    };
    let cpu = [
        "server_cpu_ms_per_megabyte",
        "server_cpu_ms_per_1000_operations",
        "client_cpu_seconds",
        "machine_busy_fraction",
    ]
    .into_iter()
    .filter_map(|field| {
        let values = cpu_field(field);
        (!values.is_empty()).then(|| (field.to_owned(), spread(&values)))
    })
    .collect::<serde_json::Map<String, Value>>();
    Ok(json!({
        "rounds": rounds.len(),
        "operations": rounds.iter().map(LoadResult::operations).sum::<u64>(),
        "ops_per_second": spread(&ops),
        "megabytes_per_second": spread(&megabytes),
        "latency_ms": latency_json(&merged),
        "cpu": cpu,
    }))
}

/// The human table of one workload: one line per target.
pub fn table(name: &str, targets: &[(&str, &Vec<LoadResult>)]) -> anyhow::Result<String> {
    let mut text = format!(
        "\n{name}\n{:<28} {:>6} {:>24} {:>10} {:>9} {:>9} {:>9}\n",
        "target", "rounds", "ops/s med (min-max)", "MB/s med", "p50 ms", "p99 ms", "p99.9 ms"
    );
    for (label, rounds) in targets {
        let mut ops: Vec<f64> = rounds.iter().map(ops_per_second).collect();
        let mut megabytes: Vec<f64> = rounds.iter().map(megabytes_per_second).collect();
        let mut merged = crate::load::latency_histogram()?;
        for round in rounds.iter() {
            merged.add(&round.merged_histogram()?)?;
        }
        let ops_median = median(&mut ops);
        writeln!(
            text,
            "{:<28} {:>6} {:>24} {:>10.1} {:>9.2} {:>9.2} {:>9.2}",
            label,
            rounds.len(),
            format!(
                "{:.0} ({:.0}-{:.0})",
                ops_median,
                ops.first().unwrap_or(&0.0),
                ops.last().unwrap_or(&0.0)
            ),
            median(&mut megabytes),
            merged.value_at_quantile(0.5) as f64 / 1e3,
            merged.value_at_quantile(0.99) as f64 / 1e3,
            merged.value_at_quantile(0.999) as f64 / 1e3,
        )?;
    }
    Ok(text)
}

pub fn host_json() -> Value {
    let cores = std::thread::available_parallelism().map_or(0, |cores| cores.get());
    json!({
        "cores": cores,
        "note": "client and servers share the same machine and cores",
    })
}

/// Prints `document` on stdout, or writes it to `path`.
pub fn emit(document: &Value, path: Option<&Path>) -> anyhow::Result<()> {
    let text = serde_json::to_string_pretty(document)?;
    match path {
        Some(path) => {
            std::fs::write(path, text + "\n").with_context(|| format!("write {}", path.display()))
        }
        None => {
            println!("{text}");
            Ok(())
        }
    }
}

const COLOURS: [&str; 6] = [
    "#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b",
];

struct Series {
    label: String,
    colour: &'static str,
    points: Vec<(f64, f64)>,
    dashed: bool,
}

/// Writes `<name>-throughput.svg` and `<name>-latency-cdf.svg` into `directory`.
pub fn write_svgs(
    directory: &Path,
    name: &str,
    targets: &[(&str, &Vec<LoadResult>)],
) -> anyhow::Result<()> {
    std::fs::create_dir_all(directory)?;
    // Megabytes per second when the workload moves payload, operations per second otherwise.
    let by_bytes = targets
        .iter()
        .any(|(_, rounds)| rounds.iter().any(|round| round.bytes() > 0));
    let mut throughput = Vec::new();
    let mut cdf = Vec::new();
    for (target_index, (label, rounds)) in targets.iter().enumerate() {
        let colour = COLOURS[target_index % COLOURS.len()];
        for (round_index, round) in rounds.iter().enumerate() {
            let points = round
                .timeline
                .iter()
                .enumerate()
                .map(|(second, counts)| {
                    // The last second is partial: scale it by the part of it the round lasted.
                    let width = (round.seconds - second as f64).clamp(1e-3, 1.0);
                    let value = if by_bytes {
                        counts.bytes as f64 / 1e6
                    } else {
                        counts.operations as f64
                    };
                    (second as f64 + width / 2.0, value / width)
                })
                .collect();
            throughput.push(Series {
                label: format!("{label} round {}", round_index + 1),
                colour,
                points,
                dashed: round_index % 2 == 1,
            });
        }
        let mut merged = crate::load::latency_histogram()?;
        for round in rounds.iter() {
            merged.add(&round.merged_histogram()?)?;
        }
        if !merged.is_empty() {
            let mut quantiles: Vec<f64> = (0..100).map(|step| step as f64 / 100.0).collect();
            quantiles.extend([0.995, 0.999, 0.9999, 1.0]);
            cdf.push(Series {
                label: (*label).to_owned(),
                colour,
                points: quantiles
                    .into_iter()
                    .map(|quantile| {
                        let ms = merged.value_at_quantile(quantile).max(1) as f64 / 1e3;
                        (ms, quantile)
                    })
                    .collect(),
                dashed: false,
            });
        }
    }
    let unit = if by_bytes { "MB/s" } else { "ops/s" };
    std::fs::write(
        directory.join(format!("{name}-throughput.svg")),
        chart(
            &format!("{name}: throughput over time"),
            "seconds into round",
            unit,
            &throughput,
            false,
        ),
    )?;
    std::fs::write(
        directory.join(format!("{name}-latency-cdf.svg")),
        chart(
            &format!("{name}: latency CDF (all rounds)"),
            "latency ms (log scale)",
            "fraction of operations",
            &cdf,
            true,
        ),
    )?;
    Ok(())
}

fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

/// A line chart: axes with five ticks each, one polyline per series, a legend on the right.
fn chart(title: &str, x_label: &str, y_label: &str, series: &[Series], log_x: bool) -> String {
    const WIDTH: f64 = 900.0;
    const HEIGHT: f64 = 480.0;
    const LEFT: f64 = 70.0;
    const RIGHT: f64 = 220.0;
    const TOP: f64 = 40.0;
    const BOTTOM: f64 = 50.0;
    let transform_x = |x: f64| if log_x { x.max(1e-3).log10() } else { x };
    let points = series.iter().flat_map(|series| series.points.iter());
    let (mut x_min, mut x_max, mut y_max) = (f64::INFINITY, f64::NEG_INFINITY, 0.0f64);
    for &(x, y) in points {
        x_min = x_min.min(transform_x(x));
        x_max = x_max.max(transform_x(x));
        y_max = y_max.max(y);
    }
    if !x_min.is_finite() {
        (x_min, x_max) = (0.0, 1.0);
    }
    if !log_x {
        x_min = 0.0;
    }
    if x_max <= x_min {
        x_max = x_min + 1.0;
    }
    if y_max <= 0.0 {
        y_max = 1.0;
    }
    y_max *= 1.05;
    let plot_width = WIDTH - LEFT - RIGHT;
    let plot_height = HEIGHT - TOP - BOTTOM;
    let sx = |x: f64| LEFT + (transform_x(x) - x_min) / (x_max - x_min) * plot_width;
    let sy = |y: f64| TOP + plot_height - y / y_max * plot_height;
    let mut svg = String::new();
    let _ = write!(
        svg,
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{HEIGHT}" font-family="sans-serif" font-size="12">
<rect width="100%" height="100%" fill="white"/>
<text x="{}" y="22" text-anchor="middle" font-size="15">{}</text>
<line x1="{LEFT}" y1="{}" x2="{}" y2="{}" stroke="black"/>
<line x1="{LEFT}" y1="{TOP}" x2="{LEFT}" y2="{}" stroke="black"/>
"#,
        LEFT + plot_width / 2.0,
        escape(title),
        TOP + plot_height,
        LEFT + plot_width,
        TOP + plot_height,
        TOP + plot_height,
    );
    for tick in 0..=4 {
        let fraction = tick as f64 / 4.0;
        let x_value = x_min + fraction * (x_max - x_min);
        let x_text = if log_x {
            format!("{:.3}", 10f64.powf(x_value))
        } else {
            format!("{x_value:.1}")
        };
        let x = LEFT + fraction * plot_width;
        let y_value = fraction * y_max;
        let y = sy(y_value);
        let _ = writeln!(
            svg,
            r##"<line x1="{x}" y1="{}" x2="{x}" y2="{}" stroke="black"/><text x="{x}" y="{}" text-anchor="middle">{x_text}</text>
<line x1="{LEFT}" y1="{y}" x2="{}" y2="{y}" stroke="#dddddd"/><text x="{}" y="{}" text-anchor="end">{}</text>"##,
            TOP + plot_height,
            TOP + plot_height + 5.0,
            TOP + plot_height + 18.0,
            LEFT + plot_width,
            LEFT - 6.0,
            y + 4.0,
            format_value(y_value),
        );
    }
    let _ = writeln!(
        svg,
        r#"<text x="{}" y="{}" text-anchor="middle">{}</text>
<text transform="translate(18 {}) rotate(-90)" text-anchor="middle">{}</text>"#,
        LEFT + plot_width / 2.0,
        HEIGHT - 12.0,
        escape(x_label),
        TOP + plot_height / 2.0,
        escape(y_label),
    );
    for (index, series) in series.iter().enumerate() {
        let path: Vec<String> = series
            .points
            .iter()
            .map(|&(x, y)| format!("{:.1},{:.1}", sx(x), sy(y)))
            .collect();
        let dash = if series.dashed {
            r#" stroke-dasharray="6 4""#
        } else {
            ""
        };
        let legend_y = TOP + 16.0 * index as f64;
        let legend_x = LEFT + plot_width + 12.0;
        let _ = writeln!(
            svg,
            r#"<polyline fill="none" stroke="{}" stroke-width="1.5"{dash} points="{}"/>
<line x1="{legend_x}" y1="{legend_y}" x2="{}" y2="{legend_y}" stroke="{}" stroke-width="2"{dash}/><text x="{}" y="{}">{}</text>"#,
            series.colour,
            path.join(" "),
            legend_x + 20.0,
            series.colour,
            legend_x + 26.0,
            legend_y + 4.0,
            escape(&series.label),
        );
    }
    svg.push_str("</svg>\n");
    svg
}

fn format_value(value: f64) -> String {
    if value >= 100.0 {
        format!("{value:.0}")
    } else {
        format!("{value:.2}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::load::{KindResult, Second};

    fn result(operations: u64, micros: u64) -> LoadResult {
        let mut histogram = crate::load::latency_histogram().unwrap();
        for _ in 0..operations {
            histogram.record(micros).unwrap();
        }
        LoadResult {
            seconds: 2.0,
            kinds: vec![KindResult {
                name: "put",
                operations,
                bytes: operations * 4096,
                items: operations,
                histogram,
            }],
            timeline: vec![
                Second {
                    operations: operations / 2,
                    bytes: operations / 2 * 4096,
                },
                Second {
                    operations: operations - operations / 2,
                    bytes: (operations - operations / 2) * 4096,
                },
            ],
            cpu: None,
        }
    }

    #[test]
    fn rounds_summaries_and_plots() {
        let rounds = vec![result(100, 2000), result(300, 1000), result(200, 1500)];
        let summary = summary_json(&rounds).unwrap();
        assert_eq!(summary["operations"], 600);
        assert_eq!(summary["ops_per_second"]["min"], 50.0);
        assert_eq!(summary["ops_per_second"]["median"], 100.0);
        assert_eq!(summary["ops_per_second"]["max"], 150.0);
        let round = round_json(&rounds[0]).unwrap();
        assert_eq!(round["by_operation"]["put"]["operations"], 100);
        assert_eq!(round["latency_ms"]["p50"], 2.0);
        assert_eq!(round["timeline"][1][0], 50);
        let table = table("put-4KiB-c8", &[("a", &rounds)]).unwrap();
        assert!(table.contains("100 (50-150)"), "{table}");
        let directory = tempfile::tempdir().unwrap();
        write_svgs(directory.path(), "put", &[("a", &rounds), ("b", &rounds)]).unwrap();
        for file in ["put-throughput.svg", "put-latency-cdf.svg"] {
            let svg = std::fs::read_to_string(directory.path().join(file)).unwrap();
            assert!(svg.starts_with("<svg") && svg.trim_end().ends_with("</svg>"));
            assert!(svg.contains("<polyline"));
            assert!(!svg.contains("NaN") && !svg.contains("inf"), "{svg}");
        }
    }
}
