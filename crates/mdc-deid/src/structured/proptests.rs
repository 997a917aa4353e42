//! Property tests of the structured engines: determinism, interval
//! preservation, and that no planted identifier survives.

#![allow(clippy::unwrap_used)]

use proptest::prelude::*;
use serde_json::json;

use super::engine::{apply, Ctx, DigitHasher, PatientInfo};
use super::fhir::{deidentify, FhirCtx, FhirIndex};
use super::policy::{Action, Policy};
use super::value::{format_date, Column};
use crate::pseudonym::{KeyedPseudonymizer, PseudonymKey};

fn p(seed: u8) -> KeyedPseudonymizer {
    KeyedPseudonymizer::new(PseudonymKey::from_bytes([seed; 32]), 180)
}

fn run(p: &KeyedPseudonymizer, action: &str, col: Column, pats: &[Option<&PatientInfo>]) -> Column {
    let h = DigitHasher::new(p).unwrap();
    let mut ctx = Ctx::new(p, &h, None, 2025);
    let mut st = Default::default();
    apply(
        Action::parse(action).unwrap(),
        "c",
        col,
        pats,
        false,
        &mut ctx,
        &mut st,
    )
    .unwrap()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn pseudonyms_are_deterministic_and_injective_on_samples(ids in proptest::collection::hash_set(0i64..100_000_000, 1..50), seed in 0u8..4) {
        let ids: Vec<Option<i64>> = ids.into_iter().map(Some).collect();
        let pk = p(seed);
        let none = vec![None; ids.len()];
        let a = run(&pk, "pseudonym(provider)", Column::Int(ids.clone()), &none);
        let b = run(&pk, "pseudonym(provider)", Column::Int(ids.clone()), &none);
        prop_assert_eq!(&a, &b);
        let Column::Int(v) = a else { unreachable!() };
        let distinct: std::collections::HashSet<_> = v.iter().collect();
        prop_assert_eq!(distinct.len(), v.len());
        let h = run(&pk, "hash_digits", Column::Int(ids.clone()), &none);
        prop_assert_eq!(h, run(&pk, "hash_digits", Column::Int(ids), &none));
    }

    #[test]
    fn date_shifts_preserve_every_interval_of_a_patient(mrn in "[0-9]{8}", days in proptest::collection::vec(-20_000i32..30_000, 2..40)) {
        let pk = p(1);
        let info = PatientInfo::resolve(&pk, &mrn).unwrap();
        let pats: Vec<Option<&PatientInfo>> = days.iter().map(|_| Some(&info)).collect();
        let Column::Date(out) = run(&pk, "shift_date", Column::Date(days.iter().copied().map(Some).collect()), &pats) else { unreachable!() };
        let out: Vec<i32> = out.into_iter().flatten().collect();
        for i in 1..days.len() {
            prop_assert_eq!(out[i] - out[i - 1], days[i] - days[i - 1]);
        }
        prop_assert!(out[0] != days[0]);
        let text: Vec<Option<String>> = days.iter().map(|d| Some(format_date(*d))).collect();
        let Column::Str(st) = run(&pk, "shift_date", Column::Str(text), &pats) else { unreachable!() };
        for (s, d) in st.iter().zip(&out) {
            prop_assert_eq!(s.clone(), Some(format_date(*d)));
        }
    }

    #[test]
    fn planted_identifiers_never_survive_the_structured_actions(rrn in "[0-9]{6}-[1-4][0-9]{6}", phone in "010-[0-9]{4}-[0-9]{4}", mrn in "[0-9]{8}") {
        let pk = p(2);
        for action in ["drop", "pseudonym(patient)", "pseudonym(record)", "hash_digits", "generalize(sido)", "generalize(postal3)"] {
            for v in [&rrn, &phone, &mrn] {
                let out = run(&pk, action, Column::Str(vec![Some(v.clone())]), &[None]);
                if action == "drop" {
                    continue;
                }
                if let Some(s) = out.text_at(0) {
                    prop_assert!(!s.contains(v.as_str()), "{} kept a planted value", action);
                }
            }
        }
    }

    #[test]
    fn fhir_patients_lose_every_planted_identifier(family in "[가-힣]{1,2}", given in "[가-힣]{2}", phone in "010-[0-9]{4}-[0-9]{4}", mrn in "[0-9]{8}", ssn in "[0-9]{6}-[1-4][0-9]{6}") {
        let policy = Policy::profile("kr-health").unwrap();
        let pk = p(3);
        let h = DigitHasher::new(&pk).unwrap();
        let pat = json!({"resourceType": "Patient", "id": "p1", "identifier": [{"type": {"coding": [{"code": "MR"}]}, "value": mrn}, {"system": "urn:oid:rrn", "value": ssn}],
            "name": [{"family": family, "given": [given], "text": format!("{family}{given}")}], "telecom": [{"system": "phone", "value": phone}],
            "address": [{"text": "서울특별시 강남구 테헤란로 1", "line": ["테헤란로 1"], "state": "서울특별시", "postalCode": "06236"}],
            "contact": [{"name": {"text": "보호자"}, "telecom": [{"value": phone}]}], "birthDate": "1931-02-03",
            "photo": [{"contentType": "image/png", "data": "AAAA"}], "extension": [{"url": "http://x", "valueString": mrn}]});
        let mut index = FhirIndex::default();
        index.add(&pat, None);
        let mut ctx = FhirCtx::new(&policy, &pk, &h, None, 2025, &index);
        let out = deidentify(&pat, None, &mut ctx).unwrap().to_string();
        let full = format!("{family}{given}");
        for leak in [mrn.as_str(), ssn.as_str(), phone.as_str(), full.as_str(), "테헤란로", "06236", "1931-02-03"] {
            prop_assert!(!out.contains(leak), "planted value survived in {}", out);
        }
        prop_assert!(out.contains("\"birthDate\":\"1935\""), "{}", out);
    }
}
