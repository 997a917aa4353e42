//! `mdc bench compare`: one self-contained HTML page (inline SVG, no
//! scripts, no external assets) with the comparison table, latency
//! histograms, latency CDFs and a throughput-versus-latency plot.

use std::fmt::Write;

use crate::result::{BenchResult, METHOD_NOTE};

const COLORS: &[&str] = &[
    "#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#17becf", "#8c564b", "#e377c2",
];

fn esc(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

fn color(i: usize) -> &'static str {
    COLORS[i % COLORS.len()]
}

/// Log10 axis mapping for latencies in ms.
struct LogAxis {
    lo: f64,
    hi: f64,
    x0: f64,
    width: f64,
}

impl LogAxis {
    fn new(values: impl Iterator<Item = f64>, x0: f64, width: f64) -> LogAxis {
        let (mut lo, mut hi) = (f64::INFINITY, f64::NEG_INFINITY);
        for v in values.filter(|v| *v > 0.0 && v.is_finite()) {
            lo = lo.min(v);
            hi = hi.max(v);
        }
        if !lo.is_finite() {
            (lo, hi) = (0.001, 1.0);
        }
        let lo = 10f64.powf(lo.log10().floor());
        let hi = 10f64.powf(hi.log10().ceil().max(lo.log10() + 1.0));
        LogAxis { lo, hi, x0, width }
    }

    fn x(&self, v: f64) -> f64 {
        let v = v.max(self.lo);
        self.x0 + (v.log10() - self.lo.log10()) / (self.hi.log10() - self.lo.log10()) * self.width
    }

    fn ticks(&self, svg: &mut String, y: f64) {
        let mut d = self.lo;
        while d <= self.hi * 1.0001 {
            let x = self.x(d);
            let _ = write!(
                svg,
                r##"<line x1="{x:.1}" y1="{y}" x2="{x:.1}" y2="{}" stroke="#ccc"/><text x="{x:.1}" y="{}" font-size="10" text-anchor="middle">{}</text>"##,
                y + 4.0,
                y + 15.0,
                fmt_ms(d)
            );
            d *= 10.0;
        }
    }
}

fn fmt_ms(v: f64) -> String {
    if v >= 1.0 {
        format!("{v:.0} ms")
    } else {
        format!("{v} ms")
    }
}

fn label(r: &BenchResult) -> String {
    format!("{} {} {}", r.id, r.scenario, r.backend)
}

fn legend(svg: &mut String, runs: &[BenchResult], x: f64, y: f64) {
    for (i, r) in runs.iter().enumerate() {
        let yy = y + i as f64 * 14.0;
        let _ = write!(
            svg,
            r#"<rect x="{x}" y="{}" width="10" height="10" fill="{}"/><text x="{}" y="{}" font-size="11">{}</text>"#,
            yy - 9.0,
            color(i),
            x + 14.0,
            yy,
            esc(&label(r))
        );
    }
}

fn histograms(runs: &[BenchResult]) -> String {
    let (w, h) = (760.0, 90.0 * runs.len().max(1) as f64 + 40.0);
    let axis = LogAxis::new(
        runs.iter().flat_map(|r| {
            r.distribution
                .bins
                .iter()
                .map(|b| b.0)
                .chain([r.latency_ms.max])
        }),
        160.0,
        560.0,
    );
    let mut svg = format!(r#"<svg xmlns="http://www.w3.org/2000/svg" width="{w}" height="{h}">"#);
    for (i, r) in runs.iter().enumerate() {
        let top = 10.0 + i as f64 * 90.0;
        let max = r
            .distribution
            .bins
            .iter()
            .map(|b| b.1)
            .max()
            .unwrap_or(1)
            .max(1) as f64;
        let _ = write!(
            svg,
            r#"<text x="4" y="{}" font-size="11">{}</text>"#,
            top + 40.0,
            esc(&label(r))
        );
        let bins = &r.distribution.bins;
        for (k, (edge, count)) in bins.iter().enumerate() {
            let next = bins.get(k + 1).map_or(r.latency_ms.max, |b| b.0);
            let (x1, x2) = (axis.x(*edge), axis.x(next.max(*edge)));
            let bh = *count as f64 / max * 75.0;
            let _ = write!(
                svg,
                r#"<rect x="{x1:.1}" y="{:.1}" width="{:.1}" height="{bh:.1}" fill="{}" opacity="0.8"/>"#,
                top + 78.0 - bh,
                (x2 - x1).max(1.0),
                color(i)
            );
        }
    }
    axis.ticks(&mut svg, h - 30.0);
    svg.push_str("</svg>");
    svg
}

fn cdfs(runs: &[BenchResult]) -> String {
    let (w, h) = (760.0, 300.0);
    let axis = LogAxis::new(
        runs.iter()
            .flat_map(|r| r.distribution.cdf.iter().map(|p| p.0)),
        60.0,
        520.0,
    );
    let y = |q: f64| 20.0 + (1.0 - q) * 240.0;
    let mut svg = format!(r#"<svg xmlns="http://www.w3.org/2000/svg" width="{w}" height="{h}">"#);
    for q in [0.0, 0.5, 0.9, 0.99, 1.0] {
        let _ = write!(
            svg,
            r##"<line x1="60" y1="{0:.1}" x2="580" y2="{0:.1}" stroke="#eee"/><text x="55" y="{1:.1}" font-size="10" text-anchor="end">{q}</text>"##,
            y(q),
            y(q) + 3.0
        );
    }
    for (i, r) in runs.iter().enumerate() {
        let pts: Vec<String> = r
            .distribution
            .cdf
            .iter()
            .map(|(ms, q)| format!("{:.1},{:.1}", axis.x(*ms), y(*q)))
            .collect();
        let _ = write!(
            svg,
            r#"<polyline fill="none" stroke="{}" stroke-width="2" points="{}"/>"#,
            color(i),
            pts.join(" ")
        );
    }
    axis.ticks(&mut svg, 262.0);
    legend(&mut svg, runs, 595.0, 30.0);
    svg.push_str("</svg>");
    svg
}

fn throughput_vs_latency(runs: &[BenchResult]) -> String {
    let (w, h) = (760.0, 300.0);
    let axis = LogAxis::new(runs.iter().map(|r| r.latency_ms.p99), 60.0, 520.0);
    let tmax = runs
        .iter()
        .map(|r| r.samples_per_second)
        .fold(0.0f64, f64::max)
        .max(1.0)
        * 1.1;
    let y = |t: f64| 20.0 + (1.0 - t / tmax) * 240.0;
    let mut svg = format!(r#"<svg xmlns="http://www.w3.org/2000/svg" width="{w}" height="{h}">"#);
    for k in 0..=4 {
        let t = tmax * f64::from(k) / 4.0;
        let _ = write!(
            svg,
            r##"<line x1="60" y1="{0:.1}" x2="580" y2="{0:.1}" stroke="#eee"/><text x="55" y="{1:.1}" font-size="10" text-anchor="end">{t:.0}</text>"##,
            y(t),
            y(t) + 3.0
        );
    }
    for (i, r) in runs.iter().enumerate() {
        let _ = write!(
            svg,
            r#"<circle cx="{:.1}" cy="{:.1}" r="6" fill="{}"><title>{}</title></circle>"#,
            axis.x(r.latency_ms.p99),
            y(r.samples_per_second),
            color(i),
            esc(&format!(
                "{}: {:.1} samples/s, p99 {:.3} ms",
                label(r),
                r.samples_per_second,
                r.latency_ms.p99
            ))
        );
    }
    axis.ticks(&mut svg, 262.0);
    let _ = write!(
        svg,
        r#"<text x="320" y="295" font-size="11" text-anchor="middle">p99 latency (log)</text><text x="12" y="150" font-size="11" transform="rotate(-90 12 150)" text-anchor="middle">samples/s</text>"#
    );
    legend(&mut svg, runs, 595.0, 30.0);
    svg.push_str("</svg>");
    svg
}

/// The whole page.
pub fn render(runs: &[BenchResult]) -> String {
    let mut h = String::from(
        r#"<!doctype html><html><head><meta charset="utf-8"><title>mdc bench compare</title><style>body{font-family:sans-serif;margin:24px;color:#222}table{border-collapse:collapse;font-size:13px}td,th{border:1px solid #ccc;padding:4px 8px;text-align:right}th{background:#f4f4f4}td.l{text-align:left}.bad{color:#b00}</style></head><body>"#,
    );
    let _ = write!(
        h,
        "<h1>Accelerator testbed: run comparison</h1><p>{}</p>",
        esc(METHOD_NOTE)
    );
    h.push_str("<table><tr><th>run</th><th>scenario</th><th>valid</th><th>model</th><th>backend</th><th>batch</th><th>threads</th><th>samples/s</th><th>p50 ms</th><th>p90 ms</th><th>p99 ms</th><th>p99.9 ms</th><th>max ms</th><th>inferences/J</th><th>accelerator</th><th>ONNX Runtime</th></tr>");
    for r in runs {
        let _ = write!(
            h,
            r#"<tr><td class="l">{}</td><td class="l">{}</td><td class="l{}">{}</td><td class="l">{}</td><td class="l">{}</td><td>{}</td><td>{}</td><td>{:.1}</td><td>{:.3}</td><td>{:.3}</td><td>{:.3}</td><td>{:.3}</td><td>{:.3}</td><td>{}</td><td class="l">{}</td><td class="l">{}</td></tr>"#,
            esc(&r.id),
            esc(&r.scenario),
            if r.valid { "" } else { " bad" },
            if r.valid {
                "VALID".to_owned()
            } else {
                format!(
                    "INVALID: {}",
                    esc(r.invalid_reason.as_deref().unwrap_or(""))
                )
            },
            esc(&r.model),
            esc(&r.backend),
            r.batch,
            r.threads,
            r.samples_per_second,
            r.latency_ms.p50,
            r.latency_ms.p90,
            r.latency_ms.p99,
            r.latency_ms.p999,
            r.latency_ms.max,
            r.energy
                .inferences_per_joule
                .map_or_else(|| "absent".to_owned(), |v| format!("{v:.1}")),
            esc(&r.system.accelerator),
            esc(&r.system.onnxruntime),
        );
    }
    h.push_str("</table>");
    let _ = write!(
        h,
        "<h2>Latency histograms</h2>{}<h2>Latency CDFs</h2>{}<h2>Throughput vs p99 latency</h2>{}",
        histograms(runs),
        cdfs(runs),
        throughput_vs_latency(runs)
    );
    h.push_str("</body></html>\n");
    h
}
