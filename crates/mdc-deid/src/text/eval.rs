//! Scoring a detector against gold spans, as the issue defines it.
//!
//! Recall per type: a gold span counts as caught only if every non-space
//! character of it is covered by some detected span (of any type: a phone
//! number redacted as an ID is still redacted). Precision per type is by
//! character: of the non-space characters that spans of that type cover, the
//! share that lies inside some gold span.

use std::collections::BTreeMap;

use mdc_types::PhiType;
use serde::Serialize;

use super::corpus::GoldSpan;
use super::Span;

/// Counts for one PHI type.
#[derive(Debug, Clone, Default, Serialize)]
pub struct TypeScore {
    pub gold: u64,
    pub caught: u64,
    pub detected_chars: u64,
    pub correct_chars: u64,
}

impl TypeScore {
    pub fn recall(&self) -> Option<f64> {
        (self.gold > 0).then(|| self.caught as f64 / self.gold as f64)
    }
    pub fn precision(&self) -> Option<f64> {
        (self.detected_chars > 0).then(|| self.correct_chars as f64 / self.detected_chars as f64)
    }
}

/// The whole evaluation.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Score {
    pub notes: u64,
    pub bytes: u64,
    pub per_type: BTreeMap<PhiType, TypeScore>,
    /// All types together.
    pub total: TypeScore,
}

impl Score {
    /// Adds one note: its text (for spaces), gold spans and detected spans,
    /// all in code points.
    pub fn add(&mut self, text: &str, gold: &[GoldSpan], found: &[Span]) {
        let chars: Vec<char> = text.chars().collect();
        let n = chars.len();
        let mut covered = vec![false; n];
        for s in found {
            for c in covered.iter_mut().take(s.end.min(n)).skip(s.start) {
                *c = true;
            }
        }
        let mut in_gold = vec![false; n];
        for g in gold {
            for c in in_gold.iter_mut().take(g.end.min(n)).skip(g.start) {
                *c = true;
            }
        }
        self.notes += 1;
        self.bytes += text.len() as u64;
        for g in gold {
            let caught = (g.start..g.end.min(n))
                .filter(|&i| !chars[i].is_whitespace())
                .all(|i| covered[i]);
            for t in [self.per_type.entry(g.ty).or_default(), &mut self.total] {
                t.gold += 1;
                t.caught += u64::from(caught);
            }
        }
        for s in found {
            let (mut d, mut ok) = (0u64, 0u64);
            for i in s.start..s.end.min(n) {
                if !chars[i].is_whitespace() {
                    d += 1;
                    ok += u64::from(in_gold[i]);
                }
            }
            for t in [self.per_type.entry(s.ty).or_default(), &mut self.total] {
                t.detected_chars += d;
                t.correct_chars += ok;
            }
        }
    }
}

/// The targets: recall ≥ 0.99 on direct identifiers, ≥ 0.98 on the rest.
pub fn recall_target(ty: PhiType) -> f64 {
    match ty {
        PhiType::Name
        | PhiType::Rrn
        | PhiType::Phone
        | PhiType::Email
        | PhiType::Mrn
        | PhiType::Id => 0.99,
        _ => 0.98,
    }
}

/// Character precision target over all types.
pub const PRECISION_TARGET: f64 = 0.95;
