//! The free-text detector on arbitrary bytes: never a panic, spans sorted,
//! disjoint, on character boundaries, and a tag pass leaves nothing to find.
#![no_main]

use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use mdc_deid::text::{transform, DetectOptions, Detector, Known, Lang, Mode, TransformContext};

fn detector() -> &'static Detector {
    static D: OnceLock<Detector> = OnceLock::new();
    D.get_or_init(|| Detector::new().expect("patterns compile"))
}

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let mut known = Known::new();
    // Use the first word as a "known" identifier to exercise that path too.
    if let Some(w) = text.split_whitespace().next() {
        known.add(None, w);
    }
    for lang in [Lang::Auto, Lang::Ko, Lang::En] {
        let spans = detector().detect(text, &DetectOptions { lang, known: Some(&known) });
        let n = text.chars().count();
        let mut last = 0;
        for s in &spans {
            assert!(s.start >= last && s.start < s.end && s.end <= n);
            assert!(text.is_char_boundary(s.bytes.start) && text.is_char_boundary(s.bytes.end));
            last = s.end;
        }
        let tagged = transform(text, &spans, Mode::Tag, &TransformContext::default())
            .expect("tag mode needs no key");
        let _ = detector().detect(&tagged, &DetectOptions { lang, known: None });
    }
});
