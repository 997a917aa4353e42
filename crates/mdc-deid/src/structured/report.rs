//! The de-identification report: what each column or path got, counts,
//! rejected records, suppression, risk before and after. Written as JSON and
//! as a self-contained HTML page. It never holds a value from the data: rows
//! are named by table and record number, fields by name.

use std::fmt::Write as _;

use serde::Serialize;

use super::engine::ColumnStats;
use super::risk::{Generalization, RiskSummary};

/// One rejected record.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Reject {
    /// Table name or input file.
    pub source: String,
    /// 1-based record number (CSV line, NDJSON line, row of a Parquet file, or bundle entry).
    pub record: u64,
    pub field: Option<String>,
    pub reason: String,
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct ColumnReport {
    pub name: String,
    pub action: String,
    /// The policy key that matched, if any.
    pub rule: Option<String>,
    #[serde(flatten)]
    pub stats: ColumnStats,
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct TableReport {
    pub name: String,
    pub input: String,
    pub rows_in: u64,
    pub rows_out: u64,
    pub rejected: u64,
    pub suppressed: u64,
    pub columns: Vec<ColumnReport>,
    /// Columns present in the input that no rule names: dropped.
    pub unknown_columns: Vec<String>,
    /// Columns of the specification absent from the input (normal).
    pub absent_columns: Vec<String>,
    pub output: Option<String>,
}

/// What happened to one FHIR element path.
#[derive(Debug, Clone, Default, Serialize)]
pub struct PathReport {
    pub path: String,
    pub action: String,
    pub count: u64,
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct FhirReport {
    pub resources_in: u64,
    pub resources_out: u64,
    pub by_type: Vec<(String, u64)>,
    pub paths: Vec<PathReport>,
    /// Element paths that no rule names: dropped.
    pub unknown_paths: Vec<String>,
    pub references_rewritten: u64,
}

#[derive(Debug, Clone, Serialize)]
pub struct RiskComparison {
    pub table: String,
    pub before: RiskSummary,
    pub after: RiskSummary,
}

/// The report of one run.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Report {
    pub kind: String,
    pub created_at: String,
    pub mdc_version: String,
    pub policy_name: String,
    pub policy_sha256: String,
    pub key_id: String,
    pub pseudonym_mode: String,
    pub text_engine: String,
    pub input: String,
    pub input_sha256: String,
    pub output: String,
    pub tables: Vec<TableReport>,
    pub fhir: Option<FhirReport>,
    pub rejected_count: u64,
    /// The first rejects (all of them up to `REJECT_LIST_LIMIT`).
    pub rejected: Vec<Reject>,
    pub suppressed_count: u64,
    /// Suppressed records by table and record number (up to the same limit).
    pub suppressed: Vec<Reject>,
    pub risk: Vec<RiskComparison>,
    pub generalization: Option<Generalization>,
    pub notes: Vec<String>,
}

pub const REJECT_LIST_LIMIT: usize = 10_000;

impl Report {
    pub fn reject(&mut self, r: Reject) {
        self.rejected_count += 1;
        if self.rejected.len() < REJECT_LIST_LIMIT {
            self.rejected.push(r);
        }
    }

    pub fn suppress(&mut self, r: Reject) {
        self.suppressed_count += 1;
        if self.suppressed.len() < REJECT_LIST_LIMIT {
            self.suppressed.push(r);
        }
    }

    /// A readable, self-contained HTML page (inline CSS, no scripts, no links out).
    pub fn to_html(&self) -> String {
        let mut h = String::with_capacity(16 * 1024);
        let _ = write!(
            h,
            "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>mdc de-identification report</title><style>\
body{{font-family:system-ui,sans-serif;margin:2em;color:#222;max-width:70em}}table{{border-collapse:collapse;margin:.5em 0 1.5em}}\
td,th{{border:1px solid #ccc;padding:.25em .6em;text-align:left;font-size:.9em}}th{{background:#f3f3f3}}.num{{text-align:right}}\
.bad{{color:#a00}}.ok{{color:#070}}h2{{border-bottom:1px solid #ddd}}code{{background:#f6f6f6;padding:0 .2em}}</style></head><body>"
        );
        let _ = write!(h, "<h1>De-identification report ({})</h1>", esc(&self.kind));
        h.push_str("<table>");
        for (k, v) in [
            ("created", self.created_at.as_str()),
            ("mdc version", &self.mdc_version),
            ("policy", &self.policy_name),
            ("policy sha256", &self.policy_sha256),
            ("key id", &self.key_id),
            ("pseudonym mode", &self.pseudonym_mode),
            ("text engine", &self.text_engine),
            ("input", &self.input),
            ("input sha256", &self.input_sha256),
            ("output", &self.output),
        ] {
            let _ = write!(
                h,
                "<tr><th>{}</th><td><code>{}</code></td></tr>",
                esc(k),
                esc(v)
            );
        }
        let _ = write!(
            h,
            "<tr><th>rejected records</th><td class=\"{}\">{}</td></tr><tr><th>suppressed records</th><td>{}</td></tr></table>",
            if self.rejected_count > 0 { "bad" } else { "ok" },
            self.rejected_count,
            self.suppressed_count
        );
        if !self.risk.is_empty() {
            h.push_str("<h2>Re-identification risk</h2>");
            for r in &self.risk {
                let _ = write!(h, "<p>table <code>{}</code>, quasi-identifiers before: <code>{}</code>; after: <code>{}</code></p>", esc(&r.table), esc(&r.before.qi.join(", ")), esc(&r.after.qi.join(", ")));
                h.push_str("<table><tr><th>measure</th><th>before</th><th>after</th></tr>");
                let rows: [(&str, String, String); 9] = [
                    (
                        "records",
                        r.before.records.to_string(),
                        r.after.records.to_string(),
                    ),
                    (
                        "equivalence classes",
                        r.before.classes.to_string(),
                        r.after.classes.to_string(),
                    ),
                    (
                        "k (smallest class)",
                        r.before.k.to_string(),
                        r.after.k.to_string(),
                    ),
                    (
                        "records at risk (class < threshold)",
                        format!(
                            "{} (threshold {})",
                            r.before.records_at_risk, r.before.threshold
                        ),
                        format!(
                            "{} (threshold {})",
                            r.after.records_at_risk, r.after.threshold
                        ),
                    ),
                    (
                        "prosecutor risk, highest",
                        format!("{:.4}", r.before.prosecutor_max),
                        format!("{:.4}", r.after.prosecutor_max),
                    ),
                    (
                        "prosecutor risk, average",
                        format!("{:.4}", r.before.prosecutor_avg),
                        format!("{:.4}", r.after.prosecutor_avg),
                    ),
                    (
                        "journalist risk, highest",
                        format!("{:.4}", r.before.journalist_max),
                        format!("{:.4}", r.after.journalist_max),
                    ),
                    (
                        "marketer risk",
                        format!("{:.4}", r.before.marketer),
                        format!("{:.4}", r.after.marketer),
                    ),
                    (
                        "l-diversity",
                        r.before
                            .l_diversity
                            .as_ref()
                            .map_or("-".into(), |l| l.l.to_string()),
                        r.after
                            .l_diversity
                            .as_ref()
                            .map_or("-".into(), |l| l.l.to_string()),
                    ),
                ];
                for (k, b, a) in rows {
                    let _ = write!(
                        h,
                        "<tr><td>{}</td><td class=\"num\">{}</td><td class=\"num\">{}</td></tr>",
                        esc(k),
                        esc(&b),
                        esc(&a)
                    );
                }
                h.push_str("</table>");
            }
        }
        if let Some(g) = &self.generalization {
            let _ = write!(
                h,
                "<h2>Automatic generalisation to k = {}</h2><p>{} records suppressed ({:.2}%), precision loss {:.3}, {} lattice nodes searched.</p><table><tr><th>quasi-identifier</th><th>hierarchy</th><th>level</th></tr>",
                g.target_k,
                g.suppressed_records,
                g.suppression_share * 100.0,
                g.precision_loss,
                g.nodes_searched
            );
            for (q, l, kind) in &g.levels {
                let _ = write!(
                    h,
                    "<tr><td>{}</td><td>{}</td><td class=\"num\">{}</td></tr>",
                    esc(q),
                    esc(&format!("{kind:?}")),
                    l
                );
            }
            h.push_str("</table>");
        }
        for t in &self.tables {
            let _ = write!(
                h,
                "<h2>Table {}</h2><p>{} rows in, {} out, {} rejected, {} suppressed. Input <code>{}</code>{}</p>",
                esc(&t.name),
                t.rows_in,
                t.rows_out,
                t.rejected,
                t.suppressed,
                esc(&t.input),
                t.output.as_deref().map(|o| format!(", output <code>{}</code>", esc(o))).unwrap_or_default()
            );
            h.push_str("<table><tr><th>column</th><th>action</th><th>rule</th><th>changed</th><th>nulled</th><th>unparseable</th><th>no patient</th></tr>");
            for c in &t.columns {
                let _ = write!(
                    h,
                    "<tr><td>{}</td><td>{}</td><td><code>{}</code></td><td class=\"num\">{}</td><td class=\"num\">{}</td><td class=\"num\">{}</td><td class=\"num\">{}</td></tr>",
                    esc(&c.name),
                    esc(&c.action),
                    esc(c.rule.as_deref().unwrap_or("(none)")),
                    c.stats.changed,
                    c.stats.nulled,
                    c.stats.unparseable,
                    c.stats.no_patient
                );
            }
            h.push_str("</table>");
            if !t.unknown_columns.is_empty() {
                let _ = write!(
                    h,
                    "<p class=\"bad\">Dropped, not in the policy: {}</p>",
                    esc(&t.unknown_columns.join(", "))
                );
            }
            if !t.absent_columns.is_empty() {
                let _ = write!(
                    h,
                    "<p>Absent from the input (optional): {}</p>",
                    esc(&t.absent_columns.join(", "))
                );
            }
        }
        if let Some(f) = &self.fhir {
            let _ = write!(h, "<h2>FHIR</h2><p>{} resources in, {} out, {} references rewritten.</p><table><tr><th>resource type</th><th>count</th></tr>", f.resources_in, f.resources_out, f.references_rewritten);
            for (t, c) in &f.by_type {
                let _ = write!(h, "<tr><td>{}</td><td class=\"num\">{c}</td></tr>", esc(t));
            }
            h.push_str("</table><table><tr><th>path</th><th>action</th><th>count</th></tr>");
            for p in &f.paths {
                let _ = write!(
                    h,
                    "<tr><td><code>{}</code></td><td>{}</td><td class=\"num\">{}</td></tr>",
                    esc(&p.path),
                    esc(&p.action),
                    p.count
                );
            }
            h.push_str("</table>");
            if !f.unknown_paths.is_empty() {
                let _ = write!(
                    h,
                    "<p class=\"bad\">Dropped, not in the policy: {}</p>",
                    esc(&f.unknown_paths.join(", "))
                );
            }
        }
        for (title, list, count) in [
            ("Rejected records", &self.rejected, self.rejected_count),
            (
                "Suppressed records",
                &self.suppressed,
                self.suppressed_count,
            ),
        ] {
            if list.is_empty() {
                continue;
            }
            let _ = write!(h, "<h2>{title} ({count})</h2><table><tr><th>source</th><th>record</th><th>field</th><th>reason</th></tr>");
            for r in list.iter().take(1000) {
                let _ = write!(
                    h,
                    "<tr><td>{}</td><td class=\"num\">{}</td><td>{}</td><td>{}</td></tr>",
                    esc(&r.source),
                    r.record,
                    esc(r.field.as_deref().unwrap_or("")),
                    esc(&r.reason)
                );
            }
            h.push_str("</table>");
            if list.len() > 1000 {
                let _ = write!(h, "<p>… {} more in the JSON report.</p>", list.len() - 1000);
            }
        }
        if !self.notes.is_empty() {
            h.push_str("<h2>Notes</h2><ul>");
            for n in &self.notes {
                let _ = write!(h, "<li>{}</li>", esc(n));
            }
            h.push_str("</ul>");
        }
        h.push_str("</body></html>\n");
        h
    }
}

/// HTML-escapes text.
pub fn esc(s: &str) -> String {
    let mut o = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => o.push_str("&amp;"),
            '<' => o.push_str("&lt;"),
            '>' => o.push_str("&gt;"),
            '"' => o.push_str("&quot;"),
            '\'' => o.push_str("&#39;"),
            c => o.push(c),
        }
    }
    o
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn html_is_self_contained_and_escaped() {
        let mut r = Report {
            kind: "table".into(),
            ..Report::default()
        };
        r.tables.push(TableReport {
            name: "<script>".into(),
            ..TableReport::default()
        });
        r.reject(Reject {
            source: "t.csv".into(),
            record: 3,
            field: Some("age".into()),
            reason: "not an integer".into(),
        });
        let h = r.to_html();
        assert!(h.contains("&lt;script&gt;") && !h.contains("<script>"));
        assert!(!h.contains("http://") && !h.contains("https://"));
        assert_eq!(r.rejected_count, 1);
    }
}
