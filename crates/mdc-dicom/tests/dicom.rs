//! Library-boundary tests of mdc-dicom on real public DICOM files
//! (`tests/data/`, see its README for provenance and licences).

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use dicom_core::Tag;
use dicom_dictionary_std::tags;
use dicom_object::{open_file, DefaultDicomObject};
use mdc_deid::{Domain, KeyedPseudonymizer, PseudonymKey, Pseudonymizer};
use mdc_dicom::{batch, Config, Deidentifier, Options, Outcome, Paths, ProfileOption, UidMapper};
use mdc_types::SourceId;

const KEY: [u8; 32] = [42; 32];

fn data(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/data")
        .join(name)
}

fn pseudonymizer() -> KeyedPseudonymizer {
    KeyedPseudonymizer::new(PseudonymKey::from_bytes(KEY), 180)
}

fn engine<'a>(p: &'a KeyedPseudonymizer, options: &[ProfileOption]) -> Deidentifier<'a> {
    let mut opts = vec![ProfileOption::RetainLongitudinalModifiedDates];
    opts.extend_from_slice(options);
    let config = Config {
        options: Options::new(opts),
        ..Config::default()
    };
    Deidentifier::new(config, p, UidMapper::new(PseudonymKey::from_bytes(KEY)))
}

/// De-identifies one file in memory; returns the output bytes.
fn deid_bytes(d: &Deidentifier<'_>, name: &str) -> Vec<u8> {
    let input = std::fs::read(data(name)).unwrap();
    match d.deidentify(&input[..], |_| Ok(Vec::new())).unwrap() {
        Outcome::Written(w) => w.writer,
        Outcome::Quarantined(r) => panic!("{name} quarantined: {r}"),
    }
}

fn reopen(bytes: &[u8]) -> DefaultDicomObject {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("x.dcm");
    std::fs::write(&p, bytes).unwrap();
    open_file(&p).expect("dicom-rs re-opens the output")
}

fn text(obj: &DefaultDicomObject, tag: Tag) -> Option<String> {
    obj.element(tag)
        .ok()
        .and_then(|e| e.to_str().ok())
        .map(|s| s.trim_end_matches(['\0', ' ']).to_owned())
}

fn has_private(obj: &dicom_object::InMemDicomObject) -> bool {
    obj.iter().any(|e| {
        e.header().tag.group() % 2 == 1
            || e.items().is_some_and(|items| items.iter().any(has_private))
    })
}

fn contains(hay: &[u8], needle: &[u8]) -> bool {
    !needle.is_empty() && hay.windows(needle.len()).any(|w| w == needle)
}

fn pixel_bytes(obj: &DefaultDicomObject) -> Vec<u8> {
    let e = obj.element(tags::PIXEL_DATA).unwrap();
    match e.value() {
        dicom_core::DicomValue::PixelSequence(seq) => {
            let mut v: Vec<u8> = seq
                .offset_table()
                .iter()
                .flat_map(|x| x.to_le_bytes())
                .collect();
            for f in seq.fragments() {
                v.extend_from_slice(f);
            }
            v
        }
        _ => e.to_bytes().unwrap().into_owned(),
    }
}

#[test]
fn korean_iso2022_patient_name_becomes_the_patient_pseudonym() {
    let p = pseudonymizer();
    let out = deid_bytes(&engine(&p, &[]), "chrI2.dcm");
    let obj = reopen(&out);
    let expected = p
        .token(Domain::Patient, &SourceId::new("I2EXAMPLE".into()))
        .unwrap();
    assert_eq!(
        text(&obj, tags::PATIENT_NAME).unwrap(),
        expected.text.as_str()
    );
    assert_eq!(
        text(&obj, tags::PATIENT_ID).unwrap(),
        expected.text.as_str()
    );
    // Neither the raw KS X 1001 bytes nor UTF-8 Hangul/Hanja survive anywhere.
    for needle in [
        &b"\xc8\xab^"[..],
        b"\xfb\xf3",
        "홍".as_bytes(),
        "길동".as_bytes(),
        "洪".as_bytes(),
        b"Hong",
        b"Gildong",
        b"I2EXAMPLE",
    ] {
        assert!(!contains(&out, needle), "residual identifier bytes");
    }
    assert_eq!(text(&obj, Tag(0x0012, 0x0062)).unwrap(), "YES");
}

#[test]
fn korean_text_is_decoded_and_cleaned_under_clean_descriptors() {
    // chrKoreanMulti: the patient's Hangul name also appears in Additional
    // Patient History (LT). Clean Descriptors keeps that attribute but cleans
    // it, which only works if the ISO 2022 IR 149 text was decoded correctly.
    let p = pseudonymizer();
    let out = deid_bytes(
        &engine(&p, &[ProfileOption::CleanDescriptors]),
        "chrKoreanMulti.dcm",
    );
    let obj = reopen(&out);
    assert_eq!(
        text(&obj, Tag(0x0010, 0x21B0)).as_deref(),
        Some("[REMOVED]"),
        "the Hangul name inside free text is found after decoding"
    );
    assert_eq!(
        text(&obj, tags::STUDY_DESCRIPTION).as_deref(),
        Some("Chest")
    );
    assert!(!contains(&out, "김희중".as_bytes()));
    assert!(!contains(&out, b"\xb1\xe8\xc8\xf1\xc1\xdf")); // 김희중 in EUC-KR
}

/// One explicit VR LE element.
fn el(g: u16, e: u16, vr: &[u8], v: &[u8]) -> Vec<u8> {
    let mut v = v.to_vec();
    if v.len() % 2 == 1 {
        v.push(if vr == b"UI" { 0 } else { b' ' });
    }
    let mut out = Vec::new();
    out.extend_from_slice(&g.to_le_bytes());
    out.extend_from_slice(&e.to_le_bytes());
    out.extend_from_slice(vr);
    if matches!(vr, b"OB" | b"OW" | b"SQ" | b"UN" | b"UT") {
        out.extend_from_slice(&[0, 0]);
        out.extend_from_slice(&(v.len() as u32).to_le_bytes());
    } else {
        out.extend_from_slice(&(v.len() as u16).to_le_bytes());
    }
    out.extend_from_slice(&v);
    out
}

/// A sequence of undefined length whose items are the given raw elements.
fn seq(g: u16, e: u16, items: &[Vec<u8>]) -> Vec<u8> {
    let mut out = Vec::new();
    out.extend_from_slice(&g.to_le_bytes());
    out.extend_from_slice(&e.to_le_bytes());
    out.extend_from_slice(b"SQ\0\0\xff\xff\xff\xff");
    for item in items {
        out.extend_from_slice(b"\xfe\xff\x00\xe0\xff\xff\xff\xff");
        out.extend_from_slice(item);
        out.extend_from_slice(b"\xfe\xff\x0d\xe0\0\0\0\0");
    }
    out.extend_from_slice(b"\xfe\xff\xdd\xe0\0\0\0\0");
    out
}

/// A minimal Part 10 file in explicit VR LE around raw dataset elements.
fn build(elements: &[Vec<u8>]) -> Vec<u8> {
    let mut f = vec![0u8; 128];
    f.extend_from_slice(b"DICM");
    f.extend(el(0x0002, 0x0002, b"UI", b"1.2.840.10008.5.1.4.1.1.2"));
    f.extend(el(0x0002, 0x0003, b"UI", b"1.2.3.4.5.6"));
    f.extend(el(0x0002, 0x0010, b"UI", b"1.2.840.10008.1.2.1"));
    for e in elements {
        f.extend_from_slice(e);
    }
    f
}

fn identity() -> Vec<Vec<u8>> {
    vec![
        el(0x0008, 0x0016, b"UI", b"1.2.840.10008.5.1.4.1.1.2"),
        el(0x0008, 0x0018, b"UI", b"1.2.3.4.5.6"),
        el(0x0008, 0x0060, b"CS", b"CT"),
        el(0x0010, 0x0010, b"PN", b"Hong^Gildong"),
        el(0x0010, 0x0020, b"LO", b"12345678"),
        el(0x0020, 0x000D, b"UI", b"1.2.3.4"),
    ]
}

#[test]
fn korean_descriptions_are_written_as_utf8_with_iso_ir_192() {
    let study_desc = b"\x1b$)C\xc8\xe4\xba\xce CT"; // 흉부 CT
    let mut elements = identity();
    elements.push(el(0x0008, 0x0005, b"CS", b"\\ISO 2022 IR 149"));
    elements.push(el(0x0008, 0x1030, b"LO", study_desc));
    elements.sort_by_key(|e| {
        (
            u16::from_le_bytes([e[0], e[1]]),
            u16::from_le_bytes([e[2], e[3]]),
        )
    });
    let file = build(&elements);
    let p = pseudonymizer();
    let d = engine(&p, &[ProfileOption::CleanDescriptors]);
    let Outcome::Written(w) = d.deidentify(&file[..], |_| Ok(Vec::new())).unwrap() else {
        panic!("quarantined")
    };
    let obj = reopen(&w.writer);
    assert_eq!(
        text(&obj, tags::STUDY_DESCRIPTION).as_deref(),
        Some("흉부 CT")
    );
    assert_eq!(
        text(&obj, tags::SPECIFIC_CHARACTER_SET).as_deref(),
        Some(mdc_dicom::OUTPUT_CHARSET)
    );
    assert!(!contains(&w.writer, b"12345678"));
}

#[test]
fn sequences_private_tags_and_uid_links_at_any_depth() {
    let p = pseudonymizer();
    let input = open_file(data("ctbrain1.dcm")).unwrap();
    let out = deid_bytes(&engine(&p, &[]), "ctbrain1.dcm");
    let obj = reopen(&out);
    assert!(
        !has_private(&obj),
        "private attributes are removed by default"
    );
    // Source Image Sequence (X/Z/U*) is kept, and its reference keeps its link
    // to the Irradiation Event UID that had the same original value.
    let study = text(&obj, tags::STUDY_INSTANCE_UID).unwrap();
    assert!(study.starts_with("2.25."));
    let event = text(&obj, tags::IRRADIATION_EVENT_UID).unwrap();
    assert!(event.starts_with("2.25."));
    let refd = obj.element(tags::SOURCE_IMAGE_SEQUENCE).unwrap();
    let item = &refd.items().unwrap()[0];
    assert_eq!(
        item.element(tags::REFERENCED_SOP_INSTANCE_UID)
            .unwrap()
            .to_str()
            .unwrap()
            .trim_end_matches('\0'),
        event
    );
    // SOP Class UIDs are not identifiers (not in Table E.1-1): kept as they are.
    assert_eq!(
        item.element(tags::REFERENCED_SOP_CLASS_UID)
            .unwrap()
            .to_str()
            .unwrap()
            .trim_end_matches('\0'),
        "1.3.12.2.1107.5.9.1"
    );
    // Referenced Patient Sequence (X) is gone; so are the names and ids.
    assert!(obj.element(tags::REFERENCED_PATIENT_SEQUENCE).is_err());
    for needle in [
        &b"SIMPSON"[..],
        b"HOMER",
        b"HIBBARD",
        b"RIVERIA",
        b"00007041776",
        b"M1212121",
        b"999887722",
        b"SPRINGFIELD",
        b"Evergreen",
        b"20200704",
        b"1.2.840.113696.376376.500.43158802",
    ] {
        assert!(!contains(&out, needle), "residual identifier bytes");
    }
    // Meta and dataset agree on the new SOP Instance UID.
    assert_eq!(
        obj.meta().media_storage_sop_instance_uid(),
        text(&obj, tags::SOP_INSTANCE_UID).unwrap()
    );
    // Pixel data (JPEG baseline, encapsulated) is byte-identical.
    assert_eq!(pixel_bytes(&obj), pixel_bytes(&input));
    // Dates moved by the patient's offset.
    let shift = p
        .date_shift_days(&SourceId::new("00007041776".into()))
        .unwrap();
    let expected = chrono::NaiveDate::from_ymd_opt(2023, 1, 1).unwrap()
        + chrono::Duration::days(i64::from(shift));
    assert_eq!(
        text(&obj, tags::STUDY_DATE).unwrap(),
        expected.format("%Y%m%d").to_string()
    );
    assert_eq!(text(&obj, Tag(0x0028, 0x0303)).as_deref(), Some("MODIFIED"));
    let codes: Vec<String> = obj
        .element(Tag(0x0012, 0x0064))
        .unwrap()
        .items()
        .unwrap()
        .iter()
        .map(|i| {
            i.element(tags::CODE_VALUE)
                .unwrap()
                .to_str()
                .unwrap()
                .trim()
                .to_owned()
        })
        .collect();
    assert_eq!(codes, ["113100", "113107"]);
}

#[test]
fn nested_private_tags_are_removed_and_safe_private_is_an_allow_list() {
    // Private elements two sequence levels down, and a Siemens b-value that
    // is on the Retain Safe Private allow-list.
    let deep = [
        el(0x0009, 0x0010, b"LO", b"ACME"),
        el(0x0009, 0x1001, b"LO", b"SECRETDEEP"),
    ];
    let mut elements = identity();
    elements.push(seq(
        0x0008,
        0x1140,
        &[[
            el(0x0008, 0x1155, b"UI", b"1.2.3.4.5.7"),
            seq(0x0008, 0x9215, &[deep.concat()]),
            el(0x0011, 0x0010, b"LO", b"ACME"),
            el(0x0011, 0x1001, b"LO", b"SECRETITEM"),
        ]
        .concat()],
    ));
    elements.push(el(0x0019, 0x0010, b"LO", b"SIEMENS MR HEADER"));
    elements.push(el(0x0019, 0x1008, b"LO", b"SECRETTOP"));
    elements.push(el(0x0019, 0x100C, b"IS", b"1000"));
    elements.sort_by_key(|e| {
        (
            u16::from_le_bytes([e[0], e[1]]),
            u16::from_le_bytes([e[2], e[3]]),
        )
    });
    let file = build(&elements);
    let p = pseudonymizer();
    for (opts, kept) in [
        (vec![], false),
        (vec![ProfileOption::RetainSafePrivate], true),
    ] {
        let d = engine(&p, &opts);
        let Outcome::Written(w) = d.deidentify(&file[..], |_| Ok(Vec::new())).unwrap() else {
            panic!("quarantined")
        };
        for secret in [&b"SECRETDEEP"[..], b"SECRETITEM", b"SECRETTOP", b"ACME"] {
            assert!(!contains(&w.writer, secret));
        }
        let obj = reopen(&w.writer);
        assert_eq!(obj.element(Tag(0x0019, 0x100C)).is_ok(), kept);
        assert_eq!(obj.element(Tag(0x0019, 0x0010)).is_ok(), kept);
        // The link inside the kept sequence was remapped, and the nested
        // sequence survives without its private content.
        let item = &obj
            .element(tags::REFERENCED_IMAGE_SEQUENCE)
            .unwrap()
            .items()
            .unwrap()[0];
        let r = item
            .element(tags::REFERENCED_SOP_INSTANCE_UID)
            .unwrap()
            .to_str()
            .unwrap()
            .into_owned();
        assert!(r.starts_with("2.25."));
        assert!(!has_private(item));
    }
}

#[test]
fn a_file_without_any_identity_is_rejected() {
    let p = pseudonymizer();
    let input = std::fs::read(data("nested_priv_SQ.dcm")).unwrap();
    let err = engine(&p, &[])
        .deidentify(&input[..], |_| Ok(Vec::new()))
        .unwrap_err();
    assert_eq!(err.code(), "no-identity");
}

#[test]
fn every_transfer_syntax_reopens_and_keeps_pixels() {
    let p = pseudonymizer();
    let d = engine(&p, &[]);
    for name in [
        "CT_small.dcm",
        "MR_small_implicit.dcm",
        "MR_small_bigendian.dcm",
        "JPEG2000.dcm",
        "SC_rgb_rle_2frame.dcm",
        "chrX1.dcm",
    ] {
        let input = open_file(data(name)).unwrap();
        let out = deid_bytes(&d, name);
        let obj = reopen(&out);
        assert_eq!(
            obj.meta().transfer_syntax(),
            input.meta().transfer_syntax(),
            "{name}"
        );
        if input.element(tags::PIXEL_DATA).is_ok() {
            assert_eq!(pixel_bytes(&obj), pixel_bytes(&input), "{name}");
        }
        assert_ne!(
            text(&obj, tags::SOP_INSTANCE_UID),
            text(&input, tags::SOP_INSTANCE_UID)
        );
        assert_eq!(text(&obj, Tag(0x0012, 0x0062)).as_deref(), Some("YES"));
    }
}

fn run_batch(input: &Path, out_root: &Path) -> batch::Summary {
    let p = pseudonymizer();
    let d = engine(&p, &[]);
    let paths = Paths::with_defaults(input.to_owned(), out_root.join("out"), None, None);
    batch::run(&d, &p, &paths, 2, &|_, _| {}).unwrap()
}

fn list(dir: &Path) -> Vec<String> {
    let mut v = Vec::new();
    let mut stack = vec![dir.to_owned()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let e = e.unwrap();
            if e.file_type().unwrap().is_dir() {
                stack.push(e.path());
            } else {
                v.push(
                    e.path()
                        .strip_prefix(dir)
                        .unwrap()
                        .to_string_lossy()
                        .into_owned(),
                );
            }
        }
    }
    v.sort();
    v
}

#[test]
fn batch_rejects_bad_input_quarantines_burned_in_and_continues() {
    let tmp = tempfile::tempdir().unwrap();
    let input = tmp.path().join("in");
    std::fs::create_dir_all(input.join("sub")).unwrap();
    for name in [
        "CT_small.dcm",
        "MR_truncated.dcm",
        "ExplVR_LitEndNoMeta.dcm",
        "meta_missing_tsyntax.dcm",
        "not_dicom.txt",
        "derived_us_burned_in.dcm",
    ] {
        std::fs::copy(data(name), input.join("sub").join(name)).unwrap();
    }
    let summary = run_batch(&input, tmp.path());
    assert_eq!(summary.counts.files, 6);
    assert_eq!(summary.counts.done, 1);
    assert_eq!(summary.counts.quarantined, 1);
    assert_eq!(summary.counts.rejected, 4);
    let report: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&summary.report).unwrap()).unwrap();
    let by_input: BTreeMap<String, (String, String)> = report["files"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| {
            (
                f["input"].as_str().unwrap().to_owned(),
                (
                    f["status"].as_str().unwrap().to_owned(),
                    f["code"].as_str().unwrap_or("").to_owned(),
                ),
            )
        })
        .collect();
    assert_eq!(
        by_input["sub/MR_truncated.dcm"],
        ("rejected".into(), "truncated".into())
    );
    assert_eq!(by_input["sub/ExplVR_LitEndNoMeta.dcm"].1, "missing-meta");
    assert_eq!(
        by_input["sub/meta_missing_tsyntax.dcm"].1,
        "missing-transfer-syntax"
    );
    assert_eq!(by_input["sub/not_dicom.txt"].1, "not-dicom");
    assert_eq!(by_input["sub/derived_us_burned_in.dcm"].0, "quarantined");
    // The output holds only the de-identified file, its manifest and index:
    // no temporary or partial files, no report, no quarantine.
    let files = list(&summary.output);
    assert_eq!(files.len(), 3, "{files:?}");
    assert!(files.contains(&"manifest.json".to_owned()));
    assert!(files.contains(&"instances.parquet".to_owned()));
    assert!(!summary.report.starts_with(&summary.output));
    let q = list(&summary.quarantine);
    assert_eq!(q.len(), 1);
    // The quarantined copy is the original, byte for byte, under a neutral name.
    assert_eq!(
        std::fs::read(summary.quarantine.join(&q[0])).unwrap(),
        std::fs::read(data("derived_us_burned_in.dcm")).unwrap()
    );
    // The report names no identifier from the files.
    let text = std::fs::read_to_string(&summary.report).unwrap();
    assert!(!text.contains("CompressedSamples") && !text.contains("1CT1"));
}

#[test]
fn uids_and_paths_are_the_same_across_runs() {
    let tmp = tempfile::tempdir().unwrap();
    let input = tmp.path().join("in");
    std::fs::create_dir_all(&input).unwrap();
    for name in [
        "CT_small.dcm",
        "ctbrain1.dcm",
        "chrI2.dcm",
        "SC_rgb_rle_2frame.dcm",
    ] {
        std::fs::copy(data(name), input.join(name)).unwrap();
    }
    let a = run_batch(&input, &tmp.path().join("a"));
    let b = run_batch(&input, &tmp.path().join("b"));
    assert_eq!(a.counts.done, 4);
    let la = list(&a.output);
    assert_eq!(la, list(&b.output));
    for f in la
        .iter()
        .filter(|f| Path::new(f).extension().is_some_and(|e| e == "dcm"))
    {
        assert_eq!(
            std::fs::read(a.output.join(f)).unwrap(),
            std::fs::read(b.output.join(f)).unwrap(),
            "deterministic output"
        );
        let obj = open_file(a.output.join(f)).unwrap();
        let sop = text(&obj, tags::SOP_INSTANCE_UID).unwrap();
        assert!(f.ends_with(&format!("{sop}.dcm")));
        assert_eq!(obj.meta().media_storage_sop_instance_uid(), sop);
    }
}

#[test]
fn mutated_real_files_never_panic() {
    // A small deterministic fuzz pass in the test suite (the cargo-fuzz
    // target in fuzz/ runs the same entry point without limits): truncations
    // and byte flips of real files, every transfer syntax and charset.
    let mut state: u64 = 0x9E37_79B9_7F4A_7C15;
    let mut rand = move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    for name in [
        "CT_small.dcm",
        "MR_small_implicit.dcm",
        "MR_small_bigendian.dcm",
        "JPEG2000.dcm",
        "chrI2.dcm",
        "ctbrain1.dcm",
        "nested_priv_SQ.dcm",
    ] {
        let orig = std::fs::read(data(name)).unwrap();
        for _ in 0..150 {
            let mut f = orig.clone();
            let cut = (rand() as usize) % f.len();
            if rand() % 3 == 0 {
                f.truncate(cut);
            }
            for _ in 0..(rand() % 8) {
                if f.is_empty() {
                    break;
                }
                let i = (rand() as usize) % f.len();
                f[i] = rand() as u8;
            }
            mdc_dicom::fuzz_one(&f);
        }
    }
}

#[test]
fn a_removed_overlay_goes_whole_and_type1_candidates_get_a_dummy() {
    let mut elements = identity();
    elements.push(el(0x0008, 0x0080, b"LO", b"Seoul Clinic"));
    elements.push(el(0x0018, 0x1000, b"LO", b"SN-4471"));
    elements.push(el(0x6000, 0x0010, b"US", &16u16.to_le_bytes()));
    elements.push(el(0x6000, 0x0011, b"US", &16u16.to_le_bytes()));
    elements.push(el(0x6000, 0x0040, b"CS", b"G"));
    elements.push(el(0x6000, 0x3000, b"OW", &[0xAA; 32]));
    elements.sort_by_key(|e| {
        (
            u16::from_le_bytes([e[0], e[1]]),
            u16::from_le_bytes([e[2], e[3]]),
        )
    });
    let file = build(&elements);
    let p = pseudonymizer();
    let d = engine(&p, &[]);
    let Outcome::Written(w) = d.deidentify(&file[..], |_| Ok(Vec::new())).unwrap() else {
        panic!("quarantined")
    };
    let obj = reopen(&w.writer);
    // No half overlay: rows, columns and type leave with the data.
    for e in [0x0010u16, 0x0011, 0x0040, 0x3000] {
        assert!(obj.element(Tag(0x6000, e)).is_err(), "(6000,{e:04X}) kept");
    }
    // X/Z/D attributes get a dummy, never the original.
    assert_eq!(
        text(&obj, tags::DEVICE_SERIAL_NUMBER).as_deref(),
        Some("ANONYMIZED")
    );
    assert_eq!(
        text(&obj, tags::INSTITUTION_NAME).as_deref(),
        Some("ANONYMIZED")
    );
    assert!(!contains(&w.writer, b"SN-4471") && !contains(&w.writer, b"Seoul Clinic"));
}

#[test]
fn z_sequences_stay_empty_where_they_are_type_2_and_go_elsewhere() {
    let observer = seq(0x0040, 0xA088, &[el(0x0008, 0x0100, b"SH", b"DOC-77")]);
    let context = seq(
        0x0040,
        0x0555,
        &[el(0x0040, 0xA160, b"UT", b"Seen by Dr Kim")],
    );
    let run = |sop_class: &[u8]| {
        let mut elements = identity();
        elements[0] = el(0x0008, 0x0016, b"UI", sop_class);
        elements.push(context.clone());
        elements.push(observer.clone());
        elements.sort_by_key(|e| {
            (
                u16::from_le_bytes([e[0], e[1]]),
                u16::from_le_bytes([e[2], e[3]]),
            )
        });
        let file = build(&elements);
        let p = pseudonymizer();
        let d = engine(&p, &[]);
        let Outcome::Written(w) = d.deidentify(&file[..], |_| Ok(Vec::new())).unwrap() else {
            panic!("quarantined")
        };
        assert!(!contains(&w.writer, b"DOC-77") && !contains(&w.writer, b"Dr Kim"));
        let obj = reopen(&w.writer);
        let items = |t: Tag| obj.element(t).ok().map(|e| e.items().map_or(0, <[_]>::len));
        (
            items(tags::ACQUISITION_CONTEXT_SEQUENCE),
            items(tags::VERIFYING_OBSERVER_IDENTIFICATION_CODE_SEQUENCE),
        )
    };
    // Comprehensive SR: both are Type 2 there, kept with zero items.
    assert_eq!(run(b"1.2.840.10008.5.1.4.1.1.88.33"), (Some(0), Some(0)));
    // CT image: the observer code sequence is not part of the IOD (removed);
    // Acquisition Context is Type 2 wherever its module is included.
    assert_eq!(run(b"1.2.840.10008.5.1.4.1.1.2"), (Some(0), None));
}
