//! The de-identification of one DICOM stream.
//!
//! [`Deidentifier::deidentify`] reads the preamble, the file meta group and
//! the dataset header into memory, applies the profile, asks the caller for a
//! writer (so the output can be named after the *new* UIDs), writes the new
//! header, then copies top-level pixel data from input to output in bounded
//! chunks: pixel data is never decoded and never held whole, so memory stays
//! flat for multi-gigabyte multi-frame files. Elements after pixel data
//! (trailing padding, odd private groups) are read and cleaned the same way.
//!
//! Nothing here logs, and no error carries a value from the file.

use std::collections::{BTreeMap, HashMap};
use std::io::{self, Read, Write};
use std::sync::Arc;

use chrono::{Duration, NaiveDate};
use dicom_core::VR;
use dicom_encoding::Codec;
use dicom_object::meta::FileMetaTableBuilder;
use dicom_transfer_syntax_registry::{TransferSyntaxIndex, TransferSyntaxRegistry};
use mdc_deid::{Domain, KeyedPseudonymizer, Pseudonymizer};
use mdc_types::SourceId;
use serde::Serialize;

use crate::action::{Action, Options, ProfileOption, BASIC_PROFILE_CODE};
use crate::charset::{Charset, CharsetError};
use crate::clean::{KnownIdentifiers, KnownValueCleaner, TextCleaner};
use crate::dataset::{
    copy_fragments, read_meta, read_top_level, write_dataset, write_header, Element, Enc,
    ParseError, Src, Value, UNDEFINED,
};
use crate::private::SafePrivate;

/// Implementation Class UID written into the file meta of every output
/// (a `2.25` UUID-derived root, fixed for mdc).
pub const IMPLEMENTATION_CLASS_UID: &str = "2.25.233926311270471356384612916335297306946";
pub const IMPLEMENTATION_VERSION_NAME: &str = "MDC_DEID_0_1";
/// The character set of every output file's text.
pub const OUTPUT_CHARSET: &str = "ISO_IR 192";

const MEDIA_STORAGE_DIRECTORY: &str = "1.2.840.10008.1.3.10";
const DEFLATED: &str = "1.2.840.10008.1.2.1.99";

/// Why a file was not de-identified. Messages name no value from the file.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum DeidError {
    #[error("not a DICOM file (no DICM marker at offset 128)")]
    NotDicom,
    #[error("no file meta information (a bare dataset without the DICM header)")]
    MissingMeta,
    #[error("the file meta information has no transfer syntax")]
    MissingTransferSyntax,
    #[error("unknown transfer syntax {0}")]
    UnknownTransferSyntax(String),
    #[error("unsupported transfer syntax {0}")]
    UnsupportedTransferSyntax(String),
    #[error("a DICOMDIR (media directory) is not copied; rebuild it from the output")]
    Dicomdir,
    #[error("no PatientID, StudyInstanceUID or SOPInstanceUID to derive a pseudonym from")]
    NoIdentity,
    #[error("{0}")]
    Charset(#[from] CharsetError),
    #[error("{0}")]
    Parse(#[from] ParseError),
    #[error("pseudonym: {0}")]
    Pseudonym(#[from] mdc_deid::PseudonymError),
    #[error("file meta: {0}")]
    Meta(String),
    #[error("output: {0}")]
    Output(io::Error),
}

impl DeidError {
    /// A stable short code for the report.
    pub fn code(&self) -> &'static str {
        match self {
            DeidError::NotDicom => "not-dicom",
            DeidError::MissingMeta => "missing-meta",
            DeidError::MissingTransferSyntax => "missing-transfer-syntax",
            DeidError::UnknownTransferSyntax(_) => "unknown-transfer-syntax",
            DeidError::UnsupportedTransferSyntax(_) => "unsupported-transfer-syntax",
            DeidError::Dicomdir => "dicomdir",
            DeidError::NoIdentity => "no-identity",
            DeidError::Charset(_) => "charset",
            DeidError::Parse(ParseError::Truncated) => "truncated",
            DeidError::Parse(_) => "malformed",
            DeidError::Pseudonym(_) => "pseudonym",
            DeidError::Meta(_) => "meta",
            DeidError::Output(_) => "output",
        }
    }
}

/// What a run does beyond the profile's table.
#[derive(Clone)]
pub struct Config {
    pub options: Options,
    /// Modalities let through although known for burned-in text (steward override).
    pub allow_modalities: Vec<String>,
    /// The free-text cleaner for C actions; `None` uses [`KnownValueCleaner`].
    pub text_cleaner: Option<Arc<dyn TextCleaner>>,
}

impl std::fmt::Debug for Config {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Config")
            .field("options", &self.options)
            .field("allow_modalities", &self.allow_modalities)
            .field("text_cleaner", &self.text_cleaner.is_some())
            .finish()
    }
}

impl Default for Config {
    /// The default: Basic Profile + Retain Longitudinal Temporal
    /// Information with Modified Dates.
    fn default() -> Self {
        Config {
            options: Options::new(vec![ProfileOption::RetainLongitudinalModifiedDates]),
            allow_modalities: Vec::new(),
            text_cleaner: None,
        }
    }
}

/// Modalities whose images commonly carry burned-in text. US and SC and
/// encapsulated documents are quarantined even when BurnedInAnnotation says
/// NO (devices get that flag wrong); XA only when the flag is absent.
const ALWAYS_SUSPECT: [&str; 3] = ["US", "SC", "DOC"];
const SUSPECT_UNLESS_NO: [&str; 2] = ["XA", "ES"];

/// The de-identified identity of one instance: safe to print and store.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct Instance {
    pub patient_pseudonym: String,
    pub person_id: i64,
    pub study_instance_uid: String,
    pub series_instance_uid: String,
    pub sop_instance_uid: String,
    pub sop_class_uid: String,
    pub modality: String,
    /// The (shifted) study date, if any.
    #[serde(serialize_with = "ser_date")]
    pub study_date: Option<NaiveDate>,
    pub transfer_syntax: String,
}

// serde's `serialize_with` passes the field by reference.
#[allow(clippy::ref_option, clippy::trivially_copy_pass_by_ref)]
fn ser_date<S: serde::Serializer>(d: &Option<NaiveDate>, s: S) -> Result<S::Ok, S::Error> {
    match d {
        Some(d) => s.serialize_str(&d.format("%Y-%m-%d").to_string()),
        None => s.serialize_none(),
    }
}

/// Counts of actions by attribute, for the report.
pub type ActionCounts = BTreeMap<String, BTreeMap<&'static str, u64>>;

#[derive(Debug)]
pub struct Written<W> {
    pub instance: Instance,
    pub writer: W,
    pub actions: ActionCounts,
}

#[derive(Debug)]
pub enum Outcome<W> {
    Written(Written<W>),
    /// Not written: the pixel data may show identifiers. Says why.
    Quarantined(String),
}

/// DICOM UIDs: DESIGN §4 `2.25.` + 128 bits of the keyed `h("uid", uid)`, in
/// both pseudonym modes (a UID is not a patient, so it needs no vault entry).
#[derive(Debug, Clone)]
pub struct UidMapper {
    keyed: KeyedPseudonymizer,
}

impl UidMapper {
    pub fn new(key: mdc_deid::PseudonymKey) -> Self {
        UidMapper {
            keyed: KeyedPseudonymizer::new(key, 1),
        }
    }

    /// Maps one UID; DICOM's own well-known UIDs (1.2.840.10008.…) are kept.
    pub fn map(&self, uid: &str) -> Result<String, mdc_deid::PseudonymError> {
        if uid.starts_with("1.2.840.10008.") {
            return Ok(uid.to_owned());
        }
        self.keyed.uid(uid)
    }
}

/// The engine for one run: profile options, pseudonyms, UID mapping.
pub struct Deidentifier<'a> {
    config: Config,
    pseudonyms: &'a dyn Pseudonymizer,
    uids: UidMapper,
    safe_private: SafePrivate,
}

impl std::fmt::Debug for Deidentifier<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Deidentifier")
            .field("config", &self.config)
            .field("key_id", &self.pseudonyms.key_id())
            .finish_non_exhaustive()
    }
}

/// Per-file state while the tree is transformed.
struct Ctx {
    pseudonym: String,
    shift_days: Option<i64>,
    known: KnownIdentifiers,
    actions: ActionCounts,
    non_ascii_text: bool,
    /// A Structured Report: its Z sequences are Type 2 and stay, empty.
    structured_report: bool,
}

fn tag_label(tag: u32) -> String {
    if (tag >> 16) % 2 == 1 {
        return "private".into();
    }
    crate::dataset::keyword(tag)
        .or_else(|| crate::action::table_name(tag))
        .map_or_else(
            || format!("({:04X},{:04X})", tag >> 16, tag & 0xFFFF),
            str::to_owned,
        )
}

fn is_text_vr(vr: VR) -> bool {
    matches!(
        vr,
        VR::SH | VR::LO | VR::UC | VR::ST | VR::LT | VR::UT | VR::PN
    )
}

fn is_string_vr(vr: VR) -> bool {
    is_text_vr(vr)
        || matches!(
            vr,
            VR::AE | VR::AS | VR::CS | VR::DA | VR::DS | VR::DT | VR::IS | VR::TM | VR::UI | VR::UR
        )
}

/// Trims DICOM padding (spaces and NULs) from a raw string value.
fn trim_raw(b: &[u8]) -> &[u8] {
    let end = b
        .iter()
        .rposition(|&c| c != b' ' && c != 0)
        .map_or(0, |p| p + 1);
    let start = b[..end].iter().position(|&c| c != b' ').unwrap_or(end);
    &b[start..end]
}

fn ascii_value(b: &[u8]) -> String {
    String::from_utf8_lossy(trim_raw(b)).into_owned()
}

fn find(elements: &[Element], tag: u32) -> Option<&Element> {
    elements
        .binary_search_by_key(&tag, |e| e.tag)
        .ok()
        .and_then(|i| elements.get(i))
        .or_else(|| elements.iter().find(|e| e.tag == tag))
}

fn dummy(vr: VR, len: usize) -> Vec<u8> {
    match vr {
        VR::PN | VR::LO | VR::SH | VR::LT | VR::ST | VR::UT | VR::UC | VR::CS | VR::AE => {
            b"ANONYMIZED".to_vec()
        }
        VR::DA => b"20000101".to_vec(),
        VR::TM => b"000000".to_vec(),
        VR::DT => b"20000101000000".to_vec(),
        VR::AS => b"000Y".to_vec(),
        VR::IS | VR::DS => b"0".to_vec(),
        VR::US | VR::SS | VR::UL | VR::SL | VR::FL | VR::FD | VR::AT | VR::SV | VR::UV => {
            vec![0; len]
        }
        _ => Vec::new(),
    }
}

/// Shifts a DA value (possibly multi-valued or a range) by `days`; values
/// that are not dates become empty rather than kept.
fn shift_da(raw: &[u8], days: i64) -> Vec<u8> {
    let text = ascii_value(raw);
    let shift_one = |s: &str| -> String {
        let s = s.trim();
        if s.is_empty() {
            return String::new();
        }
        let compact: String = s.chars().filter(|c| *c != '.').collect();
        NaiveDate::parse_from_str(&compact, "%Y%m%d")
            .ok()
            .and_then(|d| d.checked_add_signed(Duration::days(days)))
            .map(|d| d.format("%Y%m%d").to_string())
            .unwrap_or_default()
    };
    text.split('\\')
        .map(|v| {
            if let Some((a, b)) = v.split_once('-') {
                format!("{}-{}", shift_one(a), shift_one(b))
            } else {
                shift_one(v)
            }
        })
        .collect::<Vec<_>>()
        .join("\\")
        .into_bytes()
}

/// Shifts the date part of DT values; time and offset are kept.
fn shift_dt(raw: &[u8], days: i64) -> Vec<u8> {
    let text = ascii_value(raw);
    text.split('\\')
        .map(|v| {
            let v = v.trim();
            if v.len() < 8 || !v.is_char_boundary(8) {
                return String::new();
            }
            let (date, rest) = v.split_at(8);
            match NaiveDate::parse_from_str(date, "%Y%m%d")
                .ok()
                .and_then(|d| d.checked_add_signed(Duration::days(days)))
            {
                Some(d) => format!("{}{rest}", d.format("%Y%m%d")),
                None => String::new(),
            }
        })
        .collect::<Vec<_>>()
        .join("\\")
        .into_bytes()
}

struct Level {
    charset: Charset,
}

impl<'a> Deidentifier<'a> {
    pub fn new(config: Config, pseudonyms: &'a dyn Pseudonymizer, uids: UidMapper) -> Self {
        Deidentifier {
            config,
            pseudonyms,
            uids,
            safe_private: SafePrivate::standard(),
        }
    }

    pub fn config(&self) -> &Config {
        &self.config
    }

    fn count(ctx: &mut Ctx, tag: u32, action: Action) {
        *ctx.actions
            .entry(tag_label(tag))
            .or_default()
            .entry(action.as_str())
            .or_default() += 1;
    }

    /// De-identifies one DICOM Part 10 stream. `open` is called once the new
    /// identity is known, and returns the writer for the output; it is not
    /// called for a quarantined or rejected file, so nothing partial is written
    /// by this function (the caller still writes to a temporary name, because
    /// an error can occur after `open`, e.g. truncated pixel data).
    pub fn deidentify<R: Read, W: Write>(
        &self,
        input: R,
        open: impl FnOnce(&Instance) -> io::Result<W>,
    ) -> Result<Outcome<W>, DeidError> {
        let mut src = Src::new(input);
        // Preamble and magic.
        let first = src.bytes(132).map_err(|e| match e {
            ParseError::Truncated => DeidError::NotDicom,
            e => DeidError::Parse(e),
        })?;
        if &first[128..132] != b"DICM" {
            // A bare dataset starts with a group 0008 (or 0002-less) tag.
            return Err(if first.starts_with(&[0x08, 0x00]) {
                DeidError::MissingMeta
            } else {
                DeidError::NotDicom
            });
        }
        let meta = read_meta(&mut src)?;
        let ts = find(&meta, 0x0002_0010)
            .and_then(Element::raw)
            .map(ascii_value)
            .filter(|s| !s.is_empty())
            .ok_or(DeidError::MissingTransferSyntax)?;
        let media_class = find(&meta, 0x0002_0002)
            .and_then(Element::raw)
            .map(ascii_value)
            .unwrap_or_default();
        if media_class == MEDIA_STORAGE_DIRECTORY {
            return Err(DeidError::Dicomdir);
        }
        let registered = TransferSyntaxRegistry
            .get(&ts)
            .ok_or_else(|| DeidError::UnknownTransferSyntax(ts.clone()))?;
        if ts == DEFLATED || matches!(registered.codec(), Codec::Dataset(_)) {
            return Err(DeidError::UnsupportedTransferSyntax(ts));
        }
        let enc = match ts.as_str() {
            "1.2.840.10008.1.2" => Enc::IMPLICIT_LE,
            "1.2.840.10008.1.2.2" => Enc {
                explicit: true,
                big: true,
            },
            _ => Enc::EXPLICIT_LE,
        };

        let top = read_top_level(&mut src, enc, true)?;
        let mut elements = top.elements;
        let top_charset = match find(&elements, 0x0008_0005).and_then(Element::raw) {
            Some(raw) => Charset::parse(raw)?,
            None => Charset::default(),
        };
        let text_of = |tag: u32, pn: bool| -> Option<String> {
            find(&elements, tag)
                .and_then(Element::raw)
                .map(|b| top_charset.decode(trim_raw(b), pn).trim().to_owned())
                .filter(|s| !s.is_empty())
        };
        let modality = text_of(0x0008_0060, false).unwrap_or_default();
        let burned_in = text_of(0x0028_0301, false).unwrap_or_default();
        if let Some(reason) = self.quarantine_reason(&modality, &burned_in) {
            return Ok(Outcome::Quarantined(reason));
        }

        // The patient: DESIGN §4 source id is PatientID. Without one, the
        // study (else the instance) stands in, so that its files stay together.
        let source = text_of(0x0010_0020, false)
            .or_else(|| text_of(0x0020_000D, false).map(|u| format!("NOID:{u}")))
            .or_else(|| text_of(0x0008_0018, false).map(|u| format!("NOID:{u}")))
            .ok_or(DeidError::NoIdentity)?;
        let source = SourceId::new(source);
        let token = self.pseudonyms.token(Domain::Patient, &source)?;
        let shift = if self
            .config
            .options
            .has(ProfileOption::RetainLongitudinalModifiedDates)
        {
            Some(i64::from(self.pseudonyms.date_shift_days(&source)?))
        } else {
            None
        };
        let mut known = KnownIdentifiers::default();
        for (tag, pn) in [
            (0x0010_0010, true),
            (0x0010_0020, false),
            (0x0010_1000, false),
            (0x0010_1001, true),
            (0x0010_1005, true),
            (0x0010_1060, true),
            (0x0010_0030, false),
            (0x0008_0050, false),
            (0x0008_0090, true),
            (0x0008_1050, true),
            (0x0008_1070, true),
            (0x0010_2154, false),
            (0x0010_1040, false),
        ] {
            if let Some(v) = text_of(tag, pn) {
                known.add(&v, pn);
            }
        }
        let mut ctx = Ctx {
            pseudonym: token.text.as_str().to_owned(),
            shift_days: shift,
            known,
            actions: ActionCounts::new(),
            non_ascii_text: false,
            structured_report: text_of(0x0008_0016, false)
                .is_some_and(|c| c.starts_with("1.2.840.10008.5.1.4.1.1.88.")),
        };

        elements = self.transform(
            elements,
            &Level {
                charset: top_charset,
            },
            &mut ctx,
            0,
        )?;
        self.add_markers(&mut elements, &ctx, enc);

        let uid = |tag: u32| {
            find(&elements, tag)
                .and_then(Element::raw)
                .map(ascii_value)
                .unwrap_or_default()
        };
        let sop_class = {
            let c = uid(0x0008_0016);
            if c.is_empty() {
                media_class.clone()
            } else {
                c
            }
        };
        let study_date = find(&elements, 0x0008_0020)
            .and_then(Element::raw)
            .and_then(|b| NaiveDate::parse_from_str(&ascii_value(b), "%Y%m%d").ok());
        let instance = Instance {
            patient_pseudonym: ctx.pseudonym.clone(),
            person_id: token.int,
            study_instance_uid: uid(0x0020_000D),
            series_instance_uid: uid(0x0020_000E),
            sop_instance_uid: uid(0x0008_0018),
            sop_class_uid: sop_class,
            modality,
            study_date,
            transfer_syntax: ts.clone(),
        };
        if instance.sop_instance_uid.is_empty() {
            return Err(DeidError::NoIdentity);
        }

        let meta_table = FileMetaTableBuilder::new()
            .media_storage_sop_class_uid(instance.sop_class_uid.as_str())
            .media_storage_sop_instance_uid(instance.sop_instance_uid.as_str())
            .transfer_syntax(ts.as_str())
            .implementation_class_uid(IMPLEMENTATION_CLASS_UID)
            .implementation_version_name(IMPLEMENTATION_VERSION_NAME)
            .build()
            .map_err(|e| DeidError::Meta(e.to_string()))?;

        let mut out = open(&instance).map_err(DeidError::Output)?;
        let w = &mut out;
        w.write_all(&[0u8; 128]).map_err(DeidError::Output)?;
        w.write_all(b"DICM").map_err(DeidError::Output)?;
        meta_table
            .write(&mut *w)
            .map_err(|e| DeidError::Meta(e.to_string()))?;
        write_dataset(w, enc, &elements)?;
        if let Some(h) = top.pixel {
            write_header(w, enc, h.tag, h.vr, h.len)?;
            Self::count(&mut ctx, h.tag, Action::Keep);
            if h.len == UNDEFINED {
                copy_fragments(&mut src, enc, w)?;
            } else {
                src.copy_to(u64::from(h.len), w)?;
            }
            let trailing = read_top_level(&mut src, enc, false)?.elements;
            let trailing = self.transform(
                trailing,
                &Level {
                    charset: top_charset,
                },
                &mut ctx,
                0,
            )?;
            write_dataset(w, enc, &trailing)?;
        }
        w.flush().map_err(DeidError::Output)?;
        Ok(Outcome::Written(Written {
            instance,
            writer: out,
            actions: ctx.actions,
        }))
    }

    fn quarantine_reason(&self, modality: &str, burned_in: &str) -> Option<String> {
        if burned_in.eq_ignore_ascii_case("YES") {
            return Some("BurnedInAnnotation is YES: pixel data shows text".into());
        }
        if self
            .config
            .allow_modalities
            .iter()
            .any(|m| m.eq_ignore_ascii_case(modality))
        {
            return None;
        }
        if ALWAYS_SUSPECT.contains(&modality) {
            return Some(format!(
                "modality {modality} is known for burned-in text (pass --allow-modality {modality} after review)"
            ));
        }
        if SUSPECT_UNLESS_NO.contains(&modality) && !burned_in.eq_ignore_ascii_case("NO") {
            return Some(format!(
                "modality {modality} without BurnedInAnnotation NO may show burned-in text (pass --allow-modality {modality} after review)"
            ));
        }
        None
    }

    /// Adds PatientIdentityRemoved, the de-identification method (text and
    /// CID 7050 codes), the longitudinal flag and the output character set.
    fn add_markers(&self, elements: &mut Vec<Element>, ctx: &Ctx, enc: Enc) {
        let mut codes = vec![BASIC_PROFILE_CODE];
        codes.extend(self.config.options.iter().map(ProfileOption::code));
        let method = codes.iter().map(|(_, m)| *m).collect::<Vec<_>>().join("\\");
        let items = codes
            .iter()
            .map(|(code, meaning)| {
                vec![
                    Element::bytes(0x0008_0100, VR::SH, code.as_bytes()),
                    Element::bytes(0x0008_0102, VR::SH, b"DCM".to_vec()),
                    Element::bytes(0x0008_0104, VR::LO, meaning.as_bytes()),
                ]
            })
            .collect();
        let temporal: &[u8] = if ctx.shift_days.is_some() {
            b"MODIFIED"
        } else if self
            .config
            .options
            .has(ProfileOption::RetainLongitudinalFullDates)
        {
            b"UNMODIFIED"
        } else {
            b"REMOVED"
        };
        elements.retain(|e| {
            !matches!(
                e.tag,
                0x0012_0062 | 0x0012_0063 | 0x0012_0064 | 0x0028_0303 | 0x0008_0005
            )
        });
        elements.push(Element::bytes(0x0012_0062, VR::CS, b"YES".to_vec()));
        elements.push(Element::bytes(0x0012_0063, VR::LO, method.into_bytes()));
        elements.push(Element {
            tag: 0x0012_0064,
            vr: VR::SQ,
            value: Value::Seq(items, enc),
        });
        elements.push(Element::bytes(0x0028_0303, VR::CS, temporal.to_vec()));
        if ctx.non_ascii_text {
            elements.push(Element::bytes(
                0x0008_0005,
                VR::CS,
                OUTPUT_CHARSET.as_bytes(),
            ));
        }
        elements.sort_by_key(|e| e.tag);
    }

    fn transform(
        &self,
        elements: Vec<Element>,
        parent: &Level,
        ctx: &mut Ctx,
        depth: usize,
    ) -> Result<Vec<Element>, DeidError> {
        let charset = match find(&elements, 0x0008_0005).and_then(Element::raw) {
            Some(raw) => Charset::parse(raw)?,
            None => parent.charset,
        };
        let level = Level { charset };
        let keep_private = self
            .config
            .options
            .has(ProfileOption::RetainSafePrivate)
            .then(|| self.safe_private.kept(&elements, &charset));
        // Overlay groups whose Overlay Data (60xx,3000) the profile removes.
        let overlays_removed: Vec<u16> = elements
            .iter()
            .filter(|e| e.tag & 0xFF01_FFFF == 0x6000_3000)
            .filter(|e| self.config.options.resolve(e.tag).action == Action::Remove)
            .map(Element::group)
            .collect();
        let mut out = Vec::with_capacity(elements.len());
        for mut el in elements {
            let tag = el.tag;
            let group = el.group();
            if group == 0x0002 || tag as u16 == 0 {
                // File meta inside a dataset, and retired group lengths.
                continue;
            }
            if tag == 0x0008_0005 {
                // Rewritten below (every text value is written as UTF-8).
                if depth > 0 {
                    out.push(Element::bytes(tag, VR::CS, OUTPUT_CHARSET.as_bytes()));
                }
                continue;
            }
            if group % 2 == 1 {
                if keep_private.as_ref().is_some_and(|k| k.contains(&tag)) {
                    Self::count(ctx, tag, Action::Clean);
                    self.keep_value(&mut el, &level, ctx, depth)?;
                    out.push(el);
                } else {
                    Self::count(ctx, tag, Action::Remove);
                }
                continue;
            }
            if depth == 0 && (tag == 0x0010_0010 || tag == 0x0010_0020) {
                Self::count(ctx, tag, Action::Pseudonym);
                out.push(Element::bytes(tag, el.vr, ctx.pseudonym.as_bytes()));
                continue;
            }
            let mut action = self.config.options.resolve(tag).action;
            if action == Action::Keep
                && ctx.shift_days.is_some()
                && matches!(el.vr, VR::DA | VR::DT)
            {
                // Dates the table does not list are shifted too, so no real
                // date survives and intervals stay consistent.
                action = Action::Clean;
            }
            if action == Action::Zero
                && !matches!(el.value, Value::Seq(..))
                && crate::action::dummy_allowed(tag)
            {
                // Z/D and X/Z/D: a dummy keeps the attribute valid where an
                // IOD makes it Type 1 (dciodvfy flagged DeviceSerialNumber
                // emptied under Enhanced Equipment) and holds no identity.
                action = Action::Dummy;
            }
            if (0x6000..=0x601E).contains(&group)
                && group % 2 == 0
                && overlays_removed.contains(&group)
            {
                // The overlay's data is removed (Table E.1-1, 60xx,3000): the
                // rest of its group goes too, so no half overlay remains.
                Self::count(ctx, tag, Action::Remove);
                continue;
            }
            if action == Action::Zero
                && matches!(el.value, Value::Seq(..))
                && !ctx.structured_report
                // Type 2 in the Acquisition Context module, wherever an IOD
                // includes it (Enhanced CT/MR, waveforms, SR).
                && tag != 0x0040_0555
            {
                // An empty sequence breaks a Type 3 sequence's "1-n items"
                // rule (dciodvfy reports it); the Z sequences of Table E.1-1
                // are Type 3 in the common image IODs, so they are removed
                // there. In SR documents they are Type 2 (Acquisition
                // Context, Referenced PPS, Verifying Observer Identification
                // Code) and stay, with zero items.
                action = Action::Remove;
            }
            if action != Action::Keep {
                Self::count(ctx, tag, action);
            }
            match action {
                Action::Remove => {}
                Action::Keep | Action::Pseudonym => {
                    self.keep_value(&mut el, &level, ctx, depth)?;
                    out.push(el);
                }
                Action::Zero => {
                    el.value = match el.value {
                        Value::Seq(_, enc) => Value::Seq(Vec::new(), enc),
                        _ => Value::Bytes(Vec::new()),
                    };
                    out.push(el);
                }
                Action::Dummy => {
                    match &el.value {
                        Value::Seq(..) => self.keep_value(&mut el, &level, ctx, depth)?,
                        Value::Bytes(b) if el.vr == VR::UI => {
                            el.value = Value::Bytes(self.map_uids(b)?);
                        }
                        Value::Bytes(b) => {
                            el.value = Value::Bytes(dummy(el.vr, b.len()));
                        }
                        Value::Encapsulated(_) => el.value = Value::Bytes(Vec::new()),
                    }
                    out.push(el);
                }
                Action::Uid => {
                    match &el.value {
                        Value::Bytes(b) if el.vr == VR::UI => {
                            el.value = Value::Bytes(self.map_uids(b)?);
                        }
                        Value::Seq(..) => self.keep_value(&mut el, &level, ctx, depth)?,
                        Value::Bytes(b) => el.value = Value::Bytes(dummy(el.vr, b.len())),
                        Value::Encapsulated(_) => el.value = Value::Bytes(Vec::new()),
                    }
                    out.push(el);
                }
                Action::Clean => {
                    self.clean_value(&mut el, &level, ctx, depth)?;
                    out.push(el);
                }
            }
        }
        Ok(out)
    }

    /// Keeps an element: walks sequences, re-encodes text as UTF-8.
    fn keep_value(
        &self,
        el: &mut Element,
        level: &Level,
        ctx: &mut Ctx,
        depth: usize,
    ) -> Result<(), DeidError> {
        match &mut el.value {
            Value::Seq(items, _) => {
                let taken = std::mem::take(items);
                let mut new_items = Vec::with_capacity(taken.len());
                for item in taken {
                    new_items.push(self.transform(item, level, ctx, depth + 1)?);
                }
                *items = new_items;
            }
            Value::Bytes(b) if is_text_vr(el.vr) && !b.is_ascii() => {
                ctx.non_ascii_text = true;
                if !level.charset.is_utf8() {
                    *b = level.charset.decode(b, el.vr == VR::PN).into_bytes();
                }
            }
            _ => {}
        }
        Ok(())
    }

    fn clean_value(
        &self,
        el: &mut Element,
        level: &Level,
        ctx: &mut Ctx,
        depth: usize,
    ) -> Result<(), DeidError> {
        let Value::Bytes(b) = &el.value else {
            return self.keep_value(el, level, ctx, depth);
        };
        let new = match el.vr {
            VR::DA => match ctx.shift_days {
                Some(d) => shift_da(b, d),
                None => dummy(VR::DA, 0),
            },
            VR::DT => match ctx.shift_days {
                Some(d) => shift_dt(b, d),
                None => dummy(VR::DT, 0),
            },
            // Times are not shifted: the shift is a whole number of days.
            VR::TM => b.clone(),
            // A name is not a descriptor: nothing of it is kept.
            VR::PN => Vec::new(),
            vr if is_string_vr(vr) => {
                let text = level.charset.decode(trim_raw(b), false);
                let cleaner: &dyn TextCleaner = match &self.config.text_cleaner {
                    Some(c) => c.as_ref(),
                    None => &KnownValueCleaner,
                };
                let clean_text = cleaner.clean(&text, &ctx.known);
                if !clean_text.is_ascii() {
                    ctx.non_ascii_text = true;
                }
                clean_text.into_bytes()
            }
            _ => b.clone(),
        };
        el.value = Value::Bytes(new);
        Ok(())
    }

    fn map_uids(&self, raw: &[u8]) -> Result<Vec<u8>, DeidError> {
        let text = ascii_value(raw);
        let mut parts = Vec::new();
        for v in text.split('\\') {
            let v = v.trim_matches(|c: char| c == ' ' || c == '\0');
            parts.push(if v.is_empty() {
                String::new()
            } else {
                self.uids.map(v)?
            });
        }
        let mut out = parts.join("\\").into_bytes();
        if out.len() % 2 == 1 {
            out.push(0);
        }
        Ok(out)
    }
}

/// A map of what each input SOP Instance UID became; handy in tests.
pub type UidMap = HashMap<String, String>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates_shift_and_garbage_is_dropped() {
        assert_eq!(shift_da(b"20200131", 1), b"20200201");
        assert_eq!(shift_da(b"2020.01.31 ", -31), b"20191231");
        assert_eq!(shift_da(b"20200101-20200110", 10), b"20200111-20200120");
        assert_eq!(shift_da(b"notadate", 3), b"");
        assert_eq!(
            shift_dt(b"20200131120000.000+0900", 1),
            b"20200201120000.000+0900"
        );
        assert_eq!(shift_dt(b"2020", 1), b"");
    }

    #[test]
    fn trim_raw_strips_padding() {
        assert_eq!(trim_raw(b" 1.2.3\0"), b"1.2.3");
        assert_eq!(trim_raw(b"   "), b"");
    }
}
