//! The `text` action through the free-text PHI engine (`crate::text`): each
//! value is scanned, and spans replaced by pseudonyms (DESIGN §4), so a record
//! number in a note becomes the patient's pseudonym and its dates move by the
//! patient's own offset, exactly like the structured columns beside it.

use mdc_types::{PhiType, SourceId};

use super::engine::TextScrubber;
use crate::pseudonym::Pseudonymizer;
use crate::text::{transform, DetectOptions, Detector, Known, Mode, TransformContext};

/// The free-text engine as a `TextScrubber`.
pub struct TextEngine<'a> {
    detector: Detector,
    p: &'a dyn Pseudonymizer,
}

impl std::fmt::Debug for TextEngine<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("TextEngine")
    }
}

impl<'a> TextEngine<'a> {
    pub fn new(p: &'a dyn Pseudonymizer) -> Option<TextEngine<'a>> {
        Detector::new()
            .ok()
            .map(|detector| TextEngine { detector, p })
    }
}

impl TextScrubber for TextEngine<'_> {
    fn scrub(&self, text: &str, patient: Option<&SourceId>) -> Option<String> {
        let mut known = Known::new();
        if let Some(id) = patient {
            known.add(Some(PhiType::Mrn), id.expose());
        }
        let opts = DetectOptions {
            known: (!known.is_empty()).then_some(&known),
            ..DetectOptions::default()
        };
        let spans = self.detector.detect(text, &opts);
        let ctx = TransformContext {
            pseudonymizer: Some(self.p),
            patient,
            note_key: None,
        };
        transform(text, &spans, Mode::Pseudonym, &ctx).ok()
    }

    fn name(&self) -> &'static str {
        "mdc text engine (issue 3), pseudonym mode"
    }
}
