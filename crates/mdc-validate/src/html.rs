//! `report.html`: one self-contained file (inline CSS and SVG, no script, no
//! external fetch) that a reviewer can open offline or print to PDF.
//!
//! The sections follow TRIPOD+AI's reporting items for a validation study;
//! what mdc knows is filled in, and what only the submitter can say is flagged
//! in a yellow "submitter to add" box, never invented.

use std::fmt::Write as _;

use crate::metrics::Interval;
use crate::report::{Report, MIN_SUBGROUP_EVENTS};

fn esc(s: &str) -> String {
    let mut o = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => o.push_str("&amp;"),
            '<' => o.push_str("&lt;"),
            '>' => o.push_str("&gt;"),
            '"' => o.push_str("&quot;"),
            '\'' => o.push_str("&#39;"),
            _ => o.push(c),
        }
    }
    o
}

fn f3(v: Option<f64>) -> String {
    v.map_or_else(|| "—".into(), |v| format!("{v:.3}"))
}

fn ci(i: &Interval) -> String {
    match (i.estimate, i.ci_low, i.ci_high) {
        (Some(e), Some(l), Some(h)) => format!("{e:.3} ({l:.3}–{h:.3})"),
        (Some(e), _, _) => format!("{e:.3}"),
        _ => "—".into(),
    }
}

fn todo(what: &str) -> String {
    format!(
        "<div class=\"todo\"><b>Submitter to add:</b> {}</div>",
        esc(what)
    )
}

fn card_or_todo(r: &Report, key: &str, what: &str) -> String {
    match r.provenance.card.get(key) {
        Some(v) if !v.trim().is_empty() => format!("<p>{}</p>", esc(v)),
        _ => todo(what),
    }
}

/// Plot frame: maps [0,1]² to a square of `size` px with a margin.
struct Frame {
    x0: f64,
    y0: f64,
    w: f64,
    h: f64,
}

impl Frame {
    fn x(&self, v: f64) -> f64 {
        self.x0 + v * self.w
    }
    fn y(&self, v: f64) -> f64 {
        self.y0 + (1.0 - v) * self.h
    }
    fn axes(&self, svg: &mut String, xlabel: &str, ylabel: &str) {
        let _ = write!(
            svg,
            "<rect x=\"{:.1}\" y=\"{:.1}\" width=\"{:.1}\" height=\"{:.1}\" fill=\"#fff\" stroke=\"#444\"/>",
            self.x0, self.y0, self.w, self.h
        );
        for k in 0..=5 {
            let v = f64::from(k) / 5.0;
            let _ = write!(
                svg,
                "<line x1=\"{x:.1}\" y1=\"{y0:.1}\" x2=\"{x:.1}\" y2=\"{y1:.1}\" stroke=\"#eee\"/>\
                 <line x1=\"{x0:.1}\" y1=\"{y:.1}\" x2=\"{x1:.1}\" y2=\"{y:.1}\" stroke=\"#eee\"/>\
                 <text x=\"{x:.1}\" y=\"{ty:.1}\" text-anchor=\"middle\" class=\"tick\">{v:.1}</text>\
                 <text x=\"{tx:.1}\" y=\"{yy:.1}\" text-anchor=\"end\" class=\"tick\">{v:.1}</text>",
                x = self.x(v),
                y0 = self.y0,
                y1 = self.y0 + self.h,
                x0 = self.x0,
                x1 = self.x0 + self.w,
                y = self.y(v),
                ty = self.y0 + self.h + 14.0,
                tx = self.x0 - 5.0,
                yy = self.y(v) + 4.0,
            );
        }
        let _ = write!(
            svg,
            "<text x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"middle\" class=\"lab\">{}</text>\
             <text transform=\"translate({:.1},{:.1}) rotate(-90)\" text-anchor=\"middle\" class=\"lab\">{}</text>",
            self.x0 + self.w / 2.0,
            self.y0 + self.h + 32.0,
            esc(xlabel),
            self.x0 - 34.0,
            self.y0 + self.h / 2.0,
            esc(ylabel)
        );
    }
}

fn roc_svg(r: &Report) -> String {
    let m = &r.metrics;
    let f = Frame {
        x0: 50.0,
        y0: 10.0,
        w: 300.0,
        h: 300.0,
    };
    let mut s = String::from(
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"370\" height=\"360\" role=\"img\" aria-label=\"ROC curve\">",
    );
    f.axes(&mut s, "1 − specificity (FPR)", "sensitivity (TPR)");
    let mut band: Vec<String> = m
        .roc_band
        .points
        .iter()
        .map(|p| format!("{:.1},{:.1}", f.x(p[0]), f.y(p[2])))
        .collect();
    band.extend(
        m.roc_band
            .points
            .iter()
            .rev()
            .map(|p| format!("{:.1},{:.1}", f.x(p[0]), f.y(p[1]))),
    );
    let _ = write!(
        s,
        "<polygon points=\"{}\" fill=\"#9ecae1\" fill-opacity=\"0.5\" stroke=\"none\"/>",
        band.join(" ")
    );
    let _ = write!(
        s,
        "<line x1=\"{:.1}\" y1=\"{:.1}\" x2=\"{:.1}\" y2=\"{:.1}\" stroke=\"#999\" stroke-dasharray=\"4 3\"/>",
        f.x(0.0),
        f.y(0.0),
        f.x(1.0),
        f.y(1.0)
    );
    let pts: Vec<String> = m
        .roc_curve
        .iter()
        .map(|p| format!("{:.1},{:.1}", f.x(p[0]), f.y(p[1])))
        .collect();
    let _ = write!(
        s,
        "<polyline points=\"{}\" fill=\"none\" stroke=\"#08519c\" stroke-width=\"2\"/>",
        pts.join(" ")
    );
    let _ = write!(
        s,
        "<text x=\"{:.1}\" y=\"{:.1}\" class=\"lab\" text-anchor=\"end\">AUROC {}</text></svg>",
        f.x(0.97),
        f.y(0.05),
        esc(&ci(&m.auroc.interval()))
    );
    s
}

fn calibration_svg(r: &Report) -> String {
    let m = &r.metrics;
    let f = Frame {
        x0: 50.0,
        y0: 10.0,
        w: 300.0,
        h: 300.0,
    };
    let mut s = String::from(
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"370\" height=\"450\" role=\"img\" aria-label=\"Calibration curve\">",
    );
    f.axes(&mut s, "mean predicted probability", "observed event rate");
    let _ = write!(
        s,
        "<line x1=\"{:.1}\" y1=\"{:.1}\" x2=\"{:.1}\" y2=\"{:.1}\" stroke=\"#999\" stroke-dasharray=\"4 3\"/>",
        f.x(0.0),
        f.y(0.0),
        f.x(1.0),
        f.y(1.0)
    );
    let mut pts = Vec::new();
    for b in &m.calibration_bins {
        let (Some(mp), Some(obs)) = (b.mean_predicted, b.observed.estimate) else {
            continue;
        };
        if let (Some(l), Some(h)) = (b.observed.ci_low, b.observed.ci_high) {
            let _ = write!(
                s,
                "<line x1=\"{x:.1}\" y1=\"{:.1}\" x2=\"{x:.1}\" y2=\"{:.1}\" stroke=\"#d94801\"/>",
                f.y(l),
                f.y(h),
                x = f.x(mp)
            );
        }
        let _ = write!(
            s,
            "<circle cx=\"{:.1}\" cy=\"{:.1}\" r=\"3.5\" fill=\"#d94801\"/>",
            f.x(mp),
            f.y(obs)
        );
        pts.push(format!("{:.1},{:.1}", f.x(mp), f.y(obs)));
    }
    let _ = write!(
        s,
        "<polyline points=\"{}\" fill=\"none\" stroke=\"#d94801\" stroke-width=\"1.5\"/>",
        pts.join(" ")
    );
    // Histogram of predictions per bin, below the plot.
    let max = m
        .calibration_bins
        .iter()
        .map(|b| b.n)
        .max()
        .unwrap_or(1)
        .max(1) as f64;
    let (hy, hh) = (360.0, 70.0);
    let _ = write!(
        s,
        "<text x=\"{:.1}\" y=\"{:.1}\" class=\"tick\">predictions per bin (max {max})</text>",
        f.x0,
        hy - 4.0
    );
    for b in &m.calibration_bins {
        let bh = b.n as f64 / max * hh;
        let _ = write!(
            s,
            "<rect x=\"{:.1}\" y=\"{:.1}\" width=\"{:.1}\" height=\"{bh:.1}\" fill=\"#bdbdbd\" stroke=\"#fff\"><title>{:.1}–{:.1}: {} patients, {} events</title></rect>",
            f.x(b.lower),
            hy + hh - bh,
            f.w / 10.0,
            b.lower,
            b.upper,
            b.n,
            b.positives
        );
    }
    let _ = write!(
        s,
        "<line x1=\"{:.1}\" y1=\"{:.1}\" x2=\"{:.1}\" y2=\"{:.1}\" stroke=\"#444\"/></svg>",
        f.x0,
        hy + hh,
        f.x0 + f.w,
        hy + hh
    );
    s
}

/// (label, AUROC (estimate, low, high) if any, note).
type ForestRow = (String, Option<(f64, f64, f64)>, String);

fn forest_svg(r: &Report) -> String {
    let m = &r.metrics;
    let mut rows: Vec<ForestRow> = vec![(
        "Overall".into(),
        match (m.auroc.estimate, m.auroc.ci_low, m.auroc.ci_high) {
            (Some(e), Some(l), Some(h)) => Some((e, l, h)),
            _ => None,
        },
        format!("n={} events={}", m.n, m.positives),
    )];
    for g in &m.subgroups {
        let est = g
            .auroc
            .and_then(|a| match (a.estimate, a.ci_low, a.ci_high) {
                (Some(e), Some(l), Some(h)) => Some((e, l, h)),
                _ => None,
            });
        let note = if g.suppressed {
            format!("suppressed (<{MIN_SUBGROUP_EVENTS} events)")
        } else {
            format!(
                "n={} events={}{}",
                g.n.unwrap_or(0),
                g.positives.unwrap_or(0),
                if g.small { " (small)" } else { "" }
            )
        };
        rows.push((g.name.clone(), est, note));
    }
    let lo = rows
        .iter()
        .filter_map(|r| r.1.map(|v| v.1))
        .fold(0.5f64, f64::min)
        .clamp(0.0, 0.5);
    let (lx, pw, rh) = (170.0, 300.0, 22.0);
    let height = 40.0 + rh * rows.len() as f64;
    let x = |v: f64| lx + (v - lo) / (1.0 - lo) * pw;
    let mut s = format!(
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"680\" height=\"{height:.0}\" role=\"img\" aria-label=\"Subgroup forest plot\">"
    );
    for k in 0..=5 {
        let v = lo + (1.0 - lo) * f64::from(k) / 5.0;
        let _ = write!(
            s,
            "<line x1=\"{xv:.1}\" y1=\"10\" x2=\"{xv:.1}\" y2=\"{:.1}\" stroke=\"#eee\"/><text x=\"{xv:.1}\" y=\"{:.1}\" text-anchor=\"middle\" class=\"tick\">{v:.2}</text>",
            height - 25.0,
            height - 10.0,
            xv = x(v)
        );
    }
    if let Some(e) = m.auroc.estimate {
        let _ = write!(
            s,
            "<line x1=\"{xe:.1}\" y1=\"10\" x2=\"{xe:.1}\" y2=\"{:.1}\" stroke=\"#08519c\" stroke-dasharray=\"3 3\"/>",
            height - 25.0,
            xe = x(e)
        );
    }
    for (i, (name, est, note)) in rows.iter().enumerate() {
        let y = 24.0 + rh * i as f64;
        let _ = write!(
            s,
            "<text x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"end\" class=\"lab\">{}</text>",
            lx - 8.0,
            y + 4.0,
            esc(name)
        );
        if let Some((e, l, h)) = est {
            let _ = write!(
                s,
                "<line x1=\"{:.1}\" y1=\"{y:.1}\" x2=\"{:.1}\" y2=\"{y:.1}\" stroke=\"#333\" stroke-width=\"1.5\"/><rect x=\"{:.1}\" y=\"{:.1}\" width=\"8\" height=\"8\" fill=\"{}\"/>",
                x(*l),
                x(*h),
                x(*e) - 4.0,
                y - 4.0,
                if i == 0 { "#08519c" } else { "#333" }
            );
        }
        let _ = write!(
            s,
            "<text x=\"{:.1}\" y=\"{:.1}\" class=\"tick\">{}</text>",
            lx + pw + 10.0,
            y + 4.0,
            esc(note)
        );
    }
    s.push_str("</svg>");
    s
}

const CSS: &str = "body{font-family:system-ui,-apple-system,'Noto Sans KR','Noto Sans CJK KR',sans-serif;max-width:1100px;margin:24px auto;padding:0 16px;color:#222}\
h1{font-size:1.5em;margin-bottom:4px}h2{font-size:1.15em;border-bottom:1px solid #ccc;padding-bottom:3px;margin-top:28px}\
table{border-collapse:collapse;font-size:.9em;margin:8px 0}td,th{border:1px solid #ddd;padding:3px 8px;text-align:right}th{background:#f3f3f3}\
td:first-child,th:first-child{text-align:left}.todo{background:#fff7d6;border:1px solid #e0c341;padding:6px 10px;margin:6px 0;font-size:.92em}\
.head{display:flex;gap:14px;flex-wrap:wrap;margin:12px 0}.kpi{border:1px solid #ccc;border-radius:6px;padding:8px 14px;min-width:150px}\
.kpi b{display:block;font-size:1.35em}.plots{display:flex;gap:24px;flex-wrap:wrap}.tick{font-size:10px;fill:#555}.lab{font-size:12px;fill:#222}\
code{font-size:.85em;word-break:break-all}.warn{color:#8a3b00}";

/// Renders the report as one self-contained HTML document.
pub fn render(r: &Report) -> String {
    let m = &r.metrics;
    let p = &r.provenance;
    let title = p
        .card
        .get("name")
        .map_or_else(|| p.model.file.clone(), Clone::clone);
    let mut h = String::with_capacity(64 * 1024);
    let _ = write!(
        h,
        "<!DOCTYPE html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>Validation report: {t}</title><style>{CSS}</style></head><body>\
         <h1>External validation report: {t}</h1><div>mdc {} · {} mode{} · {} · report format {}</div>",
        esc(&p.mdc_version),
        esc(&p.mode),
        p.project
            .as_ref()
            .map(|x| format!(" · project {}", esc(x)))
            .unwrap_or_default(),
        esc(&p.created_at),
        r.report_format,
        t = esc(&title),
    );
    let _ = write!(
        h,
        "<div class=\"head\"><div class=\"kpi\">AUROC<b>{}</b>{}</div><div class=\"kpi\">Sensitivity @ {:.2}<b>{}</b>{}</div>\
         <div class=\"kpi\">Specificity @ {:.2}<b>{}</b>{}</div><div class=\"kpi\">Calibration slope<b>{}</b>intercept {}</div>\
         <div class=\"kpi\">Brier<b>{:.4}</b>ECE {:.4}</div><div class=\"kpi\">Patients<b>{}</b>{} events ({:.1}%)</div></div>",
        f3(m.auroc.estimate),
        range(&m.auroc.interval()),
        m.threshold,
        f3(m.sensitivity.estimate),
        range(&m.sensitivity),
        m.threshold,
        f3(m.specificity.estimate),
        range(&m.specificity),
        f3(m.calibration_slope),
        f3(m.calibration_intercept),
        m.brier,
        m.ece,
        m.n,
        m.positives,
        100.0 * m.prevalence
    );
    for w in &m.warnings {
        let _ = write!(h, "<p class=\"warn\">⚠ {}</p>", esc(w));
    }

    h.push_str("<h2>1. Data source and dates</h2>");
    let _ = write!(
        h,
        "<table><tr><th>source</th><td>{}</td></tr><tr><th>data SHA-256</th><td><code>{}</code></td></tr></table>",
        esc(&p.data.source),
        esc(&p.data.sha256)
    );
    h.push_str(&card_or_todo(
        r,
        "data_dates",
        "the period in which the validation data were collected and the care setting (TRIPOD+AI 5a/5b).",
    ));

    h.push_str("<h2>2. Participants</h2>");
    let _ = write!(
        h,
        "<table><tr><th>rows read</th><td>{}</td></tr><tr><th>excluded by consent (opt-out)</th><td>{}</td></tr>\
         <tr><th>excluded for missing values</th><td>{}</td></tr><tr><th>analysed</th><td>{}</td></tr>\
         <tr><th>events (label = 1)</th><td>{} ({:.1}%)</td></tr></table>",
        p.data.rows_read,
        p.data
            .excluded_by_consent
            .map_or_else(|| "not applicable (local file)".into(), |v| v.to_string()),
        p.data.rows_dropped_missing,
        m.n,
        m.positives,
        100.0 * m.prevalence
    );
    h.push_str(&card_or_todo(
        r,
        "participants",
        "eligibility criteria and how participants were selected (TRIPOD+AI 8a).",
    ));

    h.push_str("<h2>3. Outcome</h2>");
    let _ = write!(
        h,
        "<p>Label column <code>{}</code> (1 = event). Predicted positive iff p ≥ {}.</p>",
        esc(&p.data.label),
        m.threshold
    );
    h.push_str(&card_or_todo(
        r,
        "outcome",
        "the outcome definition, how and when it was ascertained, and blinding to the predictors (TRIPOD+AI 6a).",
    ));

    h.push_str("<h2>4. Predictors and model</h2>");
    let _ = write!(
        h,
        "<table><tr><th>features (in order)</th><td>{}</td></tr><tr><th>model file</th><td>{}</td></tr>\
         <tr><th>model SHA-256</th><td><code>{}</code></td></tr><tr><th>producer</th><td>{}</td></tr>\
         <tr><th>model inputs</th><td>{}</td></tr><tr><th>probability output</th><td>{}{}</td></tr>\
         <tr><th>model file kept after the run</th><td>{}</td></tr>\
         <tr><th>ONNX Runtime</th><td>{}</td></tr></table>",
        esc(&p.data.features.join(", ")),
        esc(&p.model.file),
        esc(&p.model.sha256),
        esc(p.model.producer.as_deref().unwrap_or("—")),
        esc(&p.model.inputs.join(", ")),
        esc(&p.model.output),
        p.model
            .positive_index
            .map(|i| format!(" [column {i}]"))
            .unwrap_or_default(),
        if p.model.retained { "yes" } else { "no (deleted)" },
        esc(p.onnxruntime_version.as_deref().unwrap_or("—")),
    );
    h.push_str(&card_or_todo(
        r,
        "intended_use",
        "the intended use, target population and the model's development data (TRIPOD+AI 3, 12).",
    ));

    h.push_str("<h2>5. Missing data</h2>");
    if p.data.missing.values().all(|&v| v == 0) {
        h.push_str("<p>No missing values in the features or the label.</p>");
    } else {
        h.push_str("<table><tr><th>column</th><th>missing values</th></tr>");
        for (c, v) in &p.data.missing {
            let _ = write!(h, "<tr><td>{}</td><td>{v}</td></tr>", esc(c));
        }
        let _ = write!(
            h,
            "</table><p>Rows with any missing feature or label were excluded (complete-case analysis, --drop-missing): {} row(s). No imputation was done.</p>",
            p.data.rows_dropped_missing
        );
    }

    h.push_str("<h2>6. Performance</h2>");
    h.push_str("<table><tr><th>metric</th><th>estimate (95% CI)</th><th>method</th>");
    if m.bootstrap.is_some() {
        h.push_str("<th>bootstrap 95% CI</th>");
    }
    h.push_str("</tr>");
    let boot = |k: &str| {
        m.bootstrap.as_ref().map(|b| {
            b.intervals.get(k).map_or_else(
                || "<td>—</td>".to_owned(),
                |i| format!("<td>{}–{}</td>", f3(i.ci_low), f3(i.ci_high)),
            )
        })
    };
    let rows: Vec<(&str, &str, String, &str)> = vec![
        ("AUROC", "auroc", ci(&m.auroc.interval()), "DeLong, Wald CI"),
        (
            "AUPRC (average precision)",
            "auprc",
            f3(m.auprc),
            "step-wise",
        ),
        ("Sensitivity", "sensitivity", ci(&m.sensitivity), "Wilson"),
        ("Specificity", "specificity", ci(&m.specificity), "Wilson"),
        ("PPV", "ppv", ci(&m.ppv), "Wilson"),
        ("NPV", "npv", ci(&m.npv), "Wilson"),
        (
            "Brier score",
            "brier",
            format!("{:.4}", m.brier),
            "mean (p − y)²",
        ),
        (
            "Calibration slope",
            "calibration_slope",
            f3(m.calibration_slope),
            "logistic on logit(p)",
        ),
        (
            "Calibration intercept",
            "calibration_intercept",
            f3(m.calibration_intercept),
            "logit(p) as offset",
        ),
        ("ECE", "ece", format!("{:.4}", m.ece), "10 equal-width bins"),
    ];
    for (label, key, est, method) in rows {
        let _ = write!(
            h,
            "<tr><td>{label}</td><td>{}</td><td>{method}</td>{}</tr>",
            esc(&est),
            boot(key).unwrap_or_default()
        );
    }
    let _ = write!(
        h,
        "</table><p>Confusion at p ≥ {}: TP {} · FP {} · TN {} · FN {}.</p>",
        m.threshold, m.tp, m.fp, m.tn, m.fn_
    );
    if let Some(b) = &m.bootstrap {
        let _ = write!(
            h,
            "<p>Bootstrap: {} replicates, seed {} ({}).</p>",
            b.replicates,
            b.seed,
            esc(&b.method)
        );
    }
    let _ = write!(
        h,
        "<div class=\"plots\"><figure>{}<figcaption>ROC curve; band: {}.</figcaption></figure>\
         <figure>{}<figcaption>Calibration: observed rate per bin of predicted probability (Wilson 95% CI), histogram below.</figcaption></figure></div>",
        roc_svg(r),
        esc(&m.roc_band.method),
        calibration_svg(r)
    );
    h.push_str("<h3>Threshold table</h3><table><tr><th>threshold</th><th>flagged</th><th>sensitivity</th><th>specificity</th><th>PPV</th><th>NPV</th><th>TP</th><th>FP</th><th>TN</th><th>FN</th></tr>");
    for t in &m.threshold_table {
        let _ = write!(
            h,
            "<tr><td>{}{}</td><td>{:.1}%</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            t.threshold,
            if (t.threshold - m.threshold).abs() < 1e-12 { " (chosen)" } else { "" },
            100.0 * t.flagged,
            f3(t.sensitivity),
            f3(t.specificity),
            f3(t.ppv),
            f3(t.npv),
            t.tp,
            t.fp,
            t.tn,
            t.fn_
        );
    }
    h.push_str("</table><h3>Decision curve (net benefit)</h3><table><tr><th>threshold</th><th>model</th><th>treat all</th><th>treat none</th></tr>");
    for nb in &m.net_benefit {
        let _ = write!(
            h,
            "<tr><td>{:.2}</td><td>{:.4}</td><td>{:.4}</td><td>0</td></tr>",
            nb.threshold, nb.model, nb.treat_all
        );
    }
    h.push_str("</table>");

    h.push_str("<h2>7. Subgroups</h2>");
    if m.subgroups.is_empty() {
        h.push_str("<p>No subgroups were requested.</p>");
    } else {
        let _ = write!(h, "<figure>{}<figcaption>AUROC with DeLong 95% CI per subgroup; dashed line: overall.</figcaption></figure>", forest_svg(r));
        h.push_str("<table><tr><th>subgroup</th><th>n</th><th>events</th><th>AUROC (95% CI)</th><th>sensitivity</th><th>specificity</th></tr>");
        for g in &m.subgroups {
            if g.suppressed {
                let _ = write!(
                    h,
                    "<tr><td>{}</td><td colspan=\"5\">suppressed: fewer than {MIN_SUBGROUP_EVENTS} events</td></tr>",
                    esc(&g.name)
                );
            } else {
                let _ = write!(
                    h,
                    "<tr><td>{}{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
                    esc(&g.name),
                    if g.small { " ⚠" } else { "" },
                    g.n.unwrap_or(0),
                    g.positives.unwrap_or(0),
                    esc(&g.auroc.map_or_else(|| "—".into(), |a| ci(&a.interval()))),
                    esc(&ci(&g.sensitivity)),
                    esc(&ci(&g.specificity))
                );
            }
        }
        h.push_str("</table>");
    }

    h.push_str("<h2>8. Limitations</h2><ul>");
    h.push_str("<li>Discrimination and calibration are estimated on this cohort only; they may not transfer to other sites, periods or case mixes.</li>");
    if m.positives < 100 {
        h.push_str("<li>Fewer than 100 events: intervals are wide and calibration estimates imprecise.</li>");
    }
    if p.data.rows_dropped_missing > 0 {
        h.push_str("<li>Complete-case analysis: rows with missing values were excluded, which can bias the estimates if missingness is informative.</li>");
    }
    h.push_str("</ul>");
    h.push_str(&card_or_todo(
        r,
        "limitations",
        "limitations known to the developer (e.g. differences between development and validation populations) (TRIPOD+AI 27).",
    ));

    let _ = write!(
        h,
        "<h2>Provenance</h2><table><tr><th>mdc version</th><td>{}</td></tr><tr><th>ONNX Runtime</th><td>{}</td></tr>\
         <tr><th>bootstrap seed</th><td>{}</td></tr><tr><th>model SHA-256</th><td><code>{}</code></td></tr>\
         <tr><th>data SHA-256</th><td><code>{}</code></td></tr><tr><th>created</th><td>{}</td></tr></table>\
         <p>All numbers are also in <code>report.json</code>; rerunning with the same model, data and seed reproduces them bit for bit.</p></body></html>",
        esc(&p.mdc_version),
        esc(p.onnxruntime_version.as_deref().unwrap_or("—")),
        p.seed,
        esc(&p.model.sha256),
        esc(&p.data.sha256),
        esc(&p.created_at)
    );
    h
}

fn range(i: &Interval) -> String {
    match (i.ci_low, i.ci_high) {
        (Some(l), Some(h)) => format!("95% CI {l:.3}–{h:.3}"),
        _ => String::new(),
    }
}
