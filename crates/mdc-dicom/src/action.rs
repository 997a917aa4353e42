//! The PS3.15 Annex E action of every attribute, under the options chosen.
//!
//! Table E.1-1 is data (`action_table.rs`, generated from the standard's table
//! by `gen/gen_action_table.py`); this module only resolves one row plus the
//! enabled options into the one action the engine performs. Typing the table
//! by hand would silently drift from the standard; generating it keeps every
//! one of its 621 rows.

use std::collections::HashMap;
use std::sync::OnceLock;

use serde::Serialize;

use crate::action_table::TABLE;

/// The Basic Profile column of Table E.1-1, including its compound actions.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Basic {
    X,
    Z,
    D,
    U,
    // The Basic Profile column has no K or C in the 2025a edition; kept so a
    // later edition's table still compiles.
    #[allow(dead_code)]
    K,
    #[allow(dead_code)]
    C,
    /// X unless Z is needed for conformance.
    XZ,
    XD,
    ZD,
    Xzd,
    /// X, Z, or keep the sequence and replace the UIDs inside it.
    Xzu,
}

#[derive(Debug)]
pub(crate) struct TableEntry {
    /// `group << 16 | element`, with `X` digits as 0.
    pub tag: u32,
    /// Which bits of `tag` must match (0 nibbles where the table says `X`).
    pub mask: u32,
    /// The row `(GGGG,EEEE) where GGGG is odd`.
    pub private: bool,
    pub name: &'static str,
    pub basic: Basic,
    /// One byte per option column (`b'K'`, `b'C'`, or 0 for no entry), in the
    /// order of [`ProfileOption::column`].
    pub options: [u8; 10],
}

/// An option of the Basic Application Level Confidentiality Profile.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, PartialOrd, Ord)]
#[serde(rename_all = "kebab-case")]
pub enum ProfileOption {
    CleanDescriptors,
    RetainDeviceIdentity,
    RetainInstitutionIdentity,
    RetainPatientCharacteristics,
    RetainUids,
    RetainLongitudinalModifiedDates,
    RetainLongitudinalFullDates,
    RetainSafePrivate,
}

impl ProfileOption {
    pub const ALL: [ProfileOption; 8] = [
        ProfileOption::CleanDescriptors,
        ProfileOption::RetainDeviceIdentity,
        ProfileOption::RetainInstitutionIdentity,
        ProfileOption::RetainPatientCharacteristics,
        ProfileOption::RetainUids,
        ProfileOption::RetainLongitudinalModifiedDates,
        ProfileOption::RetainLongitudinalFullDates,
        ProfileOption::RetainSafePrivate,
    ];

    /// The CLI spelling (`--option NAME`).
    pub fn name(self) -> &'static str {
        match self {
            ProfileOption::CleanDescriptors => "clean-descriptors",
            ProfileOption::RetainDeviceIdentity => "retain-device-identity",
            ProfileOption::RetainInstitutionIdentity => "retain-institution-identity",
            ProfileOption::RetainPatientCharacteristics => "retain-patient-characteristics",
            ProfileOption::RetainUids => "retain-uids",
            ProfileOption::RetainLongitudinalModifiedDates => "retain-longitudinal-modified-dates",
            ProfileOption::RetainLongitudinalFullDates => "retain-longitudinal-full-dates",
            ProfileOption::RetainSafePrivate => "retain-safe-private",
        }
    }

    pub fn parse(s: &str) -> Option<ProfileOption> {
        ProfileOption::ALL.into_iter().find(|o| o.name() == s)
    }

    /// Column of the option in [`TableEntry::options`].
    fn column(self) -> usize {
        match self {
            ProfileOption::CleanDescriptors => 0,
            ProfileOption::RetainDeviceIdentity => 1,
            ProfileOption::RetainInstitutionIdentity => 2,
            ProfileOption::RetainPatientCharacteristics => 3,
            ProfileOption::RetainUids => 4,
            ProfileOption::RetainLongitudinalModifiedDates => 5,
            ProfileOption::RetainLongitudinalFullDates => 6,
            ProfileOption::RetainSafePrivate => 7,
        }
    }

    /// The CID 7050 (De-identification Method) code and its meaning.
    pub fn code(self) -> (&'static str, &'static str) {
        match self {
            ProfileOption::CleanDescriptors => ("113105", "Clean Descriptors Option"),
            ProfileOption::RetainLongitudinalFullDates => (
                "113106",
                "Retain Longitudinal Temporal Information Full Dates Option",
            ),
            ProfileOption::RetainLongitudinalModifiedDates => (
                "113107",
                "Retain Longitudinal Temporal Information Modified Dates Option",
            ),
            ProfileOption::RetainPatientCharacteristics => {
                ("113108", "Retain Patient Characteristics Option")
            }
            ProfileOption::RetainDeviceIdentity => ("113109", "Retain Device Identity Option"),
            ProfileOption::RetainUids => ("113110", "Retain UIDs Option"),
            ProfileOption::RetainSafePrivate => ("113111", "Retain Safe Private Option"),
            ProfileOption::RetainInstitutionIdentity => {
                ("113112", "Retain Institution Identity Option")
            }
        }
    }
}

/// CID 7050 code of the Basic Application Confidentiality Profile itself.
pub const BASIC_PROFILE_CODE: (&str, &str) =
    ("113100", "Basic Application Confidentiality Profile");

/// What the engine does to one attribute.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, PartialOrd, Ord)]
pub enum Action {
    /// Not in the table, or K: kept (sequences are still walked).
    Keep,
    /// X: removed.
    Remove,
    /// Z: kept with an empty value.
    Zero,
    /// D: replaced by a dummy value of its VR.
    Dummy,
    /// C: cleaned (dates shifted, text cleaned, or allow-listed private tags).
    Clean,
    /// U: UIDs replaced by the keyed mapping of DESIGN §4.
    Uid,
    /// Set to the patient pseudonym (PatientID, PatientName).
    Pseudonym,
}

impl Action {
    pub fn as_str(self) -> &'static str {
        match self {
            Action::Keep => "K",
            Action::Remove => "X",
            Action::Zero => "Z",
            Action::Dummy => "D",
            Action::Clean => "C",
            Action::Uid => "U",
            Action::Pseudonym => "P",
        }
    }
}

/// A resolved row: the action.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Resolved {
    pub action: Action,
}

fn exact_index() -> &'static HashMap<u32, usize> {
    static INDEX: OnceLock<HashMap<u32, usize>> = OnceLock::new();
    INDEX.get_or_init(|| {
        TABLE
            .iter()
            .enumerate()
            .filter(|(_, e)| !e.private && e.mask == u32::MAX)
            .map(|(i, e)| (e.tag, i))
            .collect()
    })
}

/// The standard's name of a tag's row, for the report when the dictionary
/// has no keyword (retired or masked rows such as overlays).
pub(crate) fn table_name(tag: u32) -> Option<&'static str> {
    entry(tag).map(|e| e.name)
}

#[cfg(test)]
pub(crate) fn table_len() -> usize {
    TABLE.len()
}

/// Rows with `X` digits in their tag (curves 50xx, overlays 60xx): few, so
/// they are scanned after the exact lookup misses.
fn masked_rows() -> &'static [&'static TableEntry] {
    static ROWS: OnceLock<Vec<&'static TableEntry>> = OnceLock::new();
    ROWS.get_or_init(|| {
        TABLE
            .iter()
            .filter(|e| !e.private && e.mask != u32::MAX)
            .collect()
    })
}

/// The table row for a standard (even-group) tag, if any.
fn entry(tag: u32) -> Option<&'static TableEntry> {
    if let Some(&i) = exact_index().get(&tag) {
        return TABLE.get(i);
    }
    masked_rows()
        .iter()
        .copied()
        .find(|e| tag & e.mask == e.tag)
}

/// Collapses the compound Basic Profile actions. We cannot know each IOD's
/// attribute types here, so we keep the attribute (empty or dummy) whenever
/// the standard allows it: removing a Type 2 attribute breaks conformance,
/// keeping it empty never leaks.
fn basic_action(b: Basic) -> Action {
    match b {
        Basic::X => Action::Remove,
        Basic::Z | Basic::XZ | Basic::ZD | Basic::Xzd => Action::Zero,
        Basic::D | Basic::XD => Action::Dummy,
        Basic::U => Action::Uid,
        Basic::K => Action::Keep,
        Basic::C => Action::Clean,
        // Source and referenced image sequences: the links matter, and every
        // UID inside them is itself a U row, so the sequence is kept and walked.
        Basic::Xzu => Action::Keep,
    }
}

/// Whether the Basic Profile allows a dummy value for this attribute (Z/D,
/// X/Z/D): where we would empty it, a dummy keeps a Type 1 attribute valid.
pub(crate) fn dummy_allowed(tag: u32) -> bool {
    entry(tag).is_some_and(|e| matches!(e.basic, Basic::ZD | Basic::Xzd))
}

/// The options enabled for a run, in a fixed order.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Options {
    enabled: Vec<ProfileOption>,
}

impl Options {
    pub fn new(mut opts: Vec<ProfileOption>) -> Options {
        opts.sort();
        opts.dedup();
        Options { enabled: opts }
    }

    pub fn has(&self, o: ProfileOption) -> bool {
        self.enabled.contains(&o)
    }

    pub fn iter(&self) -> impl Iterator<Item = ProfileOption> + '_ {
        self.enabled.iter().copied()
    }

    /// The action for a standard attribute. An option's column overrides the
    /// Basic Profile; where two enabled options both have an entry, C (clean)
    /// wins over K (keep), the safer of the two.
    pub(crate) fn resolve(&self, tag: u32) -> Resolved {
        let Some(e) = entry(tag) else {
            return Resolved {
                action: Action::Keep,
            };
        };
        let mut action = basic_action(e.basic);
        let mut overridden: Option<u8> = None;
        for o in &self.enabled {
            let v = e.options[o.column()];
            if v != 0 && overridden != Some(b'C') {
                overridden = Some(v);
            }
        }
        if let Some(v) = overridden {
            action = if v == b'K' {
                Action::Keep
            } else {
                Action::Clean
            };
        }
        Resolved { action }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn action_table_is_generated_from_the_standard() {
        assert_eq!(table_len(), 621);
        let o = Options::default();
        assert_eq!(o.resolve(0x0008_0050).action, Action::Zero); // Accession Number
        assert_eq!(o.resolve(0x0020_000D).action, Action::Uid); // Study Instance UID
        assert_eq!(o.resolve(0x0010_1000).action, Action::Remove); // Other Patient IDs
        assert_eq!(o.resolve(0x6002_3000).action, Action::Remove); // Overlay Data, 60xx
        assert_eq!(o.resolve(0x0028_0010).action, Action::Keep); // Rows: not listed
        let dates = Options::new(vec![ProfileOption::RetainLongitudinalModifiedDates]);
        assert_eq!(dates.resolve(0x0008_0020).action, Action::Clean); // Study Date
        let full = Options::new(vec![ProfileOption::RetainLongitudinalFullDates]);
        assert_eq!(full.resolve(0x0008_0020).action, Action::Keep);
        let desc = Options::new(vec![ProfileOption::CleanDescriptors]);
        assert_eq!(desc.resolve(0x0008_1030).action, Action::Clean); // Study Description
        assert_eq!(o.resolve(0x0008_1030).action, Action::Remove);
        assert!(dummy_allowed(0x0018_1000)); // Device Serial Number, X/Z/D
        assert!(!dummy_allowed(0x0008_0050)); // Accession Number, Z
    }

    #[test]
    fn option_names_round_trip() {
        for o in ProfileOption::ALL {
            assert_eq!(ProfileOption::parse(o.name()), Some(o));
            assert!(o.code().1.len() <= 64);
        }
    }
}
