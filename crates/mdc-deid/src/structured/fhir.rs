//! FHIR R4 resources, one at a time, by policy path.
//!
//! Every element is looked up by its path (`Observation.valueString`, then
//! `*.valueString`, …); a rule applies to the whole subtree unless a deeper
//! rule says otherwise, and an element under no rule is dropped and reported
//! (deny by default). Whatever the policy, ids and references are rewritten
//! with the same pseudonyms as OMOP (`Patient/123` → `Patient/<patient
//! pseudonym of its MR identifier>`), `Reference.display` is dropped, and
//! attachments lose `data`/`url` unless `options.keep_attachments`.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use mdc_types::SourceId;
use serde_json::{Map, Value};

use super::engine::{generalize_text, DigitHasher, PatientInfo, TextScrubber};
use super::policy::{Action, Generalize, Policy};
use super::value::{civil_from_days, days_from_civil, format_date, parse_date, shift_date_text};
use crate::pseudonym::{Domain, PseudonymError, Pseudonymizer};

/// The resource types of FHIR R4 (4.0.1).
pub const R4_TYPES: &[&str] = &[
    "Account",
    "ActivityDefinition",
    "AdverseEvent",
    "AllergyIntolerance",
    "Appointment",
    "AppointmentResponse",
    "AuditEvent",
    "Basic",
    "Binary",
    "BiologicallyDerivedProduct",
    "BodyStructure",
    "Bundle",
    "CapabilityStatement",
    "CarePlan",
    "CareTeam",
    "CatalogEntry",
    "ChargeItem",
    "ChargeItemDefinition",
    "Claim",
    "ClaimResponse",
    "ClinicalImpression",
    "CodeSystem",
    "Communication",
    "CommunicationRequest",
    "CompartmentDefinition",
    "Composition",
    "ConceptMap",
    "Condition",
    "Consent",
    "Contract",
    "Coverage",
    "CoverageEligibilityRequest",
    "CoverageEligibilityResponse",
    "DetectedIssue",
    "Device",
    "DeviceDefinition",
    "DeviceMetric",
    "DeviceRequest",
    "DeviceUseStatement",
    "DiagnosticReport",
    "DocumentManifest",
    "DocumentReference",
    "EffectEvidenceSynthesis",
    "Encounter",
    "Endpoint",
    "EnrollmentRequest",
    "EnrollmentResponse",
    "EpisodeOfCare",
    "EventDefinition",
    "Evidence",
    "EvidenceVariable",
    "ExampleScenario",
    "ExplanationOfBenefit",
    "FamilyMemberHistory",
    "Flag",
    "Goal",
    "GraphDefinition",
    "Group",
    "GuidanceResponse",
    "HealthcareService",
    "ImagingStudy",
    "Immunization",
    "ImmunizationEvaluation",
    "ImmunizationRecommendation",
    "ImplementationGuide",
    "InsurancePlan",
    "Invoice",
    "Library",
    "Linkage",
    "List",
    "Location",
    "Measure",
    "MeasureReport",
    "Media",
    "Medication",
    "MedicationAdministration",
    "MedicationDispense",
    "MedicationKnowledge",
    "MedicationRequest",
    "MedicationStatement",
    "MedicinalProduct",
    "MedicinalProductAuthorization",
    "MedicinalProductContraindication",
    "MedicinalProductIndication",
    "MedicinalProductIngredient",
    "MedicinalProductInteraction",
    "MedicinalProductManufactured",
    "MedicinalProductPackaged",
    "MedicinalProductPharmaceutical",
    "MedicinalProductUndesirableEffect",
    "MessageDefinition",
    "MessageHeader",
    "MolecularSequence",
    "NamingSystem",
    "NutritionOrder",
    "Observation",
    "ObservationDefinition",
    "OperationDefinition",
    "OperationOutcome",
    "Organization",
    "OrganizationAffiliation",
    "Parameters",
    "Patient",
    "PaymentNotice",
    "PaymentReconciliation",
    "Person",
    "PlanDefinition",
    "Practitioner",
    "PractitionerRole",
    "Procedure",
    "Provenance",
    "Questionnaire",
    "QuestionnaireResponse",
    "RelatedPerson",
    "RequestGroup",
    "ResearchDefinition",
    "ResearchElementDefinition",
    "ResearchStudy",
    "ResearchSubject",
    "RiskAssessment",
    "RiskEvidenceSynthesis",
    "Schedule",
    "SearchParameter",
    "ServiceRequest",
    "Slot",
    "Specimen",
    "SpecimenDefinition",
    "StructureDefinition",
    "StructureMap",
    "Subscription",
    "Substance",
    "SubstanceNucleicAcid",
    "SubstancePolymer",
    "SubstanceProtein",
    "SubstanceReferenceInformation",
    "SubstanceSourceMaterial",
    "SubstanceSpecification",
    "SupplyDelivery",
    "SupplyRequest",
    "Task",
    "TerminologyCapabilities",
    "TestReport",
    "TestScript",
    "ValueSet",
    "VerificationResult",
    "VisionPrescription",
];

/// The patient's source id of a Patient resource: the value of its identifier
/// of type MR (DESIGN §4), else its logical id.
pub fn patient_source(r: &Value) -> Option<String> {
    let ids = r.get("identifier").and_then(Value::as_array);
    let mr = ids.and_then(|ids| {
        ids.iter().find(|i| {
            i.pointer("/type/coding")
                .and_then(Value::as_array)
                .is_some_and(|cs| {
                    cs.iter()
                        .any(|c| c.get("code").and_then(Value::as_str) == Some("MR"))
                })
        })
    });
    mr.and_then(|i| i.get("value"))
        .and_then(Value::as_str)
        .filter(|s| !s.trim().is_empty())
        .map(str::to_owned)
        .or_else(|| r.get("id").and_then(Value::as_str).map(str::to_owned))
}

/// Counts per path, for the report.
#[derive(Debug, Default, Clone)]
pub struct FhirStats {
    pub paths: BTreeMap<String, (String, u64)>,
    pub unknown: BTreeSet<String>,
    pub references: u64,
}

/// What the whole input tells about each resource: patients by reference,
/// and `fullUrl`s of bundle entries.
#[derive(Debug, Default)]
pub struct FhirIndex {
    /// `Patient/<id>` (and the patient's fullUrl) → record number.
    pub patients: HashMap<String, SourceId>,
    /// fullUrl → `Type/id`.
    pub full_urls: HashMap<String, String>,
}

impl FhirIndex {
    /// Records a resource (and the fullUrl it had in a bundle).
    pub fn add(&mut self, r: &Value, full_url: Option<&str>) {
        let (Some(t), id) = (
            r.get("resourceType").and_then(Value::as_str),
            r.get("id").and_then(Value::as_str),
        ) else {
            return;
        };
        let local = match (id, full_url) {
            (Some(id), _) => format!("{t}/{id}"),
            (None, Some(u)) => format!("{t}/{}", u.rsplit([':', '/']).next().unwrap_or(u)),
            (None, None) => return,
        };
        if let Some(u) = full_url {
            self.full_urls.insert(u.to_owned(), local.clone());
        }
        if t == "Patient" {
            let tail = local
                .split_once('/')
                .map_or(local.as_str(), |x| x.1)
                .to_owned();
            let src = patient_source(r).unwrap_or(tail);
            self.patients.insert(local, SourceId::new(src));
        }
    }
}

/// Why a resource was rejected (never a value from it).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FhirReject {
    pub field: Option<String>,
    pub reason: String,
}

/// Everything the rewrite needs.
pub struct FhirCtx<'a> {
    pub policy: &'a Policy,
    pub p: &'a dyn Pseudonymizer,
    pub hasher: &'a DigitHasher,
    pub text: Option<&'a dyn TextScrubber>,
    pub reference_year: i32,
    pub index: &'a FhirIndex,
    pub stats: FhirStats,
    patient_cache: HashMap<String, PatientInfo>,
}

impl std::fmt::Debug for FhirCtx<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("FhirCtx([redacted])")
    }
}

impl<'a> FhirCtx<'a> {
    pub fn new(
        policy: &'a Policy,
        p: &'a dyn Pseudonymizer,
        hasher: &'a DigitHasher,
        text: Option<&'a dyn TextScrubber>,
        reference_year: i32,
        index: &'a FhirIndex,
    ) -> FhirCtx<'a> {
        FhirCtx {
            policy,
            p,
            hasher,
            text,
            reference_year,
            index,
            stats: FhirStats::default(),
            patient_cache: HashMap::new(),
        }
    }

    fn patient(&mut self, local: &str) -> Result<Option<PatientInfo>, PseudonymError> {
        if let Some(p) = self.patient_cache.get(local) {
            return Ok(Some(p.clone()));
        }
        let Some(src) = self.index.patients.get(local) else {
            return Ok(None);
        };
        let info = PatientInfo::resolve(self.p, src.expose())?;
        self.patient_cache.insert(local.to_owned(), info.clone());
        Ok(Some(info))
    }

    fn count(&mut self, path: &str, action: &str) {
        let e = self
            .stats
            .paths
            .entry(path.to_owned())
            .or_insert_with(|| (action.to_owned(), 0));
        e.1 += 1;
    }

    /// The new form of a reference, or `None` to drop it.
    fn reference(&mut self, r: &str) -> Result<Option<String>, PseudonymError> {
        if r.starts_with('#') {
            return Ok(Some(r.to_owned()));
        }
        let local = if let Some(l) = self.index.full_urls.get(r) {
            l.clone()
        } else {
            let parts: Vec<&str> = r.split('/').collect();
            let pos = parts.iter().position(|p| R4_TYPES.contains(p));
            match pos {
                Some(i) if i + 1 < parts.len() => format!("{}/{}", parts[i], parts[i + 1]),
                _ => return Ok(None),
            }
        };
        self.stats.references += 1;
        Ok(Some(self.local_id(&local)?))
    }

    /// `Type/id` → `Type/<pseudonym>`, the patient's pseudonym for a Patient.
    fn local_id(&mut self, local: &str) -> Result<String, PseudonymError> {
        let (t, id) = local.split_once('/').unwrap_or(("", local));
        if t == "Patient" {
            if let Some(p) = self.patient(local)? {
                return Ok(format!("Patient/{}", p.token.text.as_str()));
            }
            return Ok(format!(
                "Patient/{}",
                self.p
                    .token(Domain::Patient, &SourceId::new(id.to_owned()))?
                    .text
                    .as_str()
            ));
        }
        Ok(format!(
            "{t}/{}",
            self.p
                .token(Domain::Record, &SourceId::new(local.to_owned()))?
                .text
                .as_str()
        ))
    }
}

/// De-identifies one resource (`full_url`: its bundle entry's, if any).
pub fn deidentify(
    r: &Value,
    full_url: Option<&str>,
    ctx: &mut FhirCtx<'_>,
) -> Result<Value, FhirReject> {
    let rej = |field: &str, reason: &str| FhirReject {
        field: Some(field.to_owned()),
        reason: reason.to_owned(),
    };
    let Some(obj) = r.as_object() else {
        return Err(FhirReject {
            field: None,
            reason: "not a JSON object".into(),
        });
    };
    let Some(t) = obj.get("resourceType").and_then(Value::as_str) else {
        return Err(rej("resourceType", "missing resourceType"));
    };
    if !R4_TYPES.contains(&t) {
        return Err(rej("resourceType", "unknown resource type"));
    }
    let pe = |_: PseudonymError| FhirReject {
        field: None,
        reason: "pseudonymiser error".into(),
    };
    // The resource's patient.
    let patient = if t == "Patient" {
        let local = match (obj.get("id").and_then(Value::as_str), full_url) {
            (Some(id), _) => format!("Patient/{id}"),
            (None, Some(u)) => ctx.index.full_urls.get(u).cloned().unwrap_or_default(),
            _ => String::new(),
        };
        match ctx.patient(&local).map_err(pe)? {
            Some(p) => Some(p),
            None => {
                return Err(rej(
                    "identifier",
                    "a Patient needs an MR identifier or an id",
                ))
            }
        }
    } else {
        let mut found = None;
        for key in ["subject", "patient", "beneficiary"] {
            let Some(reference) = obj
                .get(key)
                .and_then(|v| v.get("reference"))
                .and_then(Value::as_str)
            else {
                continue;
            };
            let local = ctx
                .index
                .full_urls
                .get(reference)
                .cloned()
                .unwrap_or_else(|| {
                    let parts: Vec<&str> = reference.split('/').collect();
                    if parts.len() >= 2 {
                        format!("{}/{}", parts[parts.len() - 2], parts[parts.len() - 1])
                    } else {
                        reference.to_owned()
                    }
                });
            if local.starts_with("Patient/") {
                match ctx.patient(&local).map_err(pe)? {
                    Some(p) => found = Some(p),
                    None => return Err(rej(key, "references a patient absent from the input")),
                }
                break;
            }
        }
        found
    };
    let mut out = Map::new();
    out.insert("resourceType".into(), Value::from(t));
    let local = match (obj.get("id").and_then(Value::as_str), full_url) {
        (Some(id), _) => Some(format!("{t}/{id}")),
        (None, Some(u)) => ctx.index.full_urls.get(u).cloned(),
        _ => None,
    };
    if let Some(local) = local {
        let new = ctx.local_id(&local).map_err(pe)?;
        out.insert(
            "id".into(),
            Value::from(new.split_once('/').map_or(new.as_str(), |x| x.1)),
        );
    }
    for (k, v) in obj {
        if k == "resourceType" || k == "id" {
            continue;
        }
        let path = format!("{t}.{k}");
        if let Some(nv) = element(&path, k, v, None, patient.as_ref(), ctx).map_err(pe)? {
            out.insert(k.clone(), nv);
        }
    }
    Ok(Value::Object(out))
}

/// One element: its own rule, else the inherited one, else dropped as unknown.
fn element(
    path: &str,
    key: &str,
    v: &Value,
    inherited: Option<Action>,
    patient: Option<&PatientInfo>,
    ctx: &mut FhirCtx<'_>,
) -> Result<Option<Value>, PseudonymError> {
    let rule = ctx.policy.fhir.path(path).map(|(_, a)| a);
    let Some(action) = rule.or(inherited) else {
        ctx.stats.unknown.insert(path.to_owned());
        return Ok(None);
    };
    if rule.is_some() {
        ctx.count(path, &action.to_string());
    }
    if key == "contained" {
        if let Some(arr) = v.as_array() {
            let mut out = Vec::new();
            for c in arr {
                let mut res = c.clone();
                let local_id = c.get("id").cloned();
                if let Some(obj) = res.as_object_mut() {
                    obj.remove("id");
                }
                if let Ok(mut d) = deidentify_with(&res, patient, ctx) {
                    if let (Some(id), Some(o)) = (local_id, d.as_object_mut()) {
                        o.insert("id".into(), id);
                    }
                    out.push(d);
                }
            }
            return Ok(Some(Value::Array(out)));
        }
    }
    if key == "resource" {
        // Bundle.entry.resource inside a kept bundle.
        return Ok(deidentify(v, None, ctx).ok());
    }
    match action {
        Action::Drop => Ok(None),
        Action::Keep => walk(path, v, patient, ctx),
        // A narrative restates the structured content (names, addresses,
        // numbers) in free XHTML: dropped whole unless the policy asks for
        // it to be cleaned (`options.clean_narratives`), then its text is
        // scrubbed like any other string and re-wrapped without markup.
        Action::Text if v.get("div").is_some() && !ctx.policy.options.clean_narratives => {
            ctx.count(path, "drop (narrative)");
            Ok(None)
        }
        Action::Text => {
            let Some(engine) = ctx.text else {
                return Ok(None);
            };
            Ok(map_strings(v, &mut |k, s| {
                if k == "div" {
                    let plain = strip_tags(s);
                    engine.scrub(&plain, patient.map(|p| &p.source)).map(|t| {
                        Value::from(format!(
                            "<div xmlns=\"http://www.w3.org/1999/xhtml\">{}</div>",
                            super::report::esc(&t)
                        ))
                    })
                } else if k == "status" || k == "system" || k == "code" {
                    Some(Value::from(s))
                } else {
                    engine.scrub(s, patient.map(|p| &p.source)).map(Value::from)
                }
            }))
        }
        Action::ShiftDate => Ok(map_strings(v, &mut |_, s| match patient {
            Some(p) => shift_fhir_date(s, p.offset_days).map(Value::from),
            None => generalize_text(Generalize::Year, s, ctx.reference_year).map(Value::from),
        })),
        Action::Generalize(g) => {
            let ry = ctx.reference_year;
            Ok(map_strings(v, &mut |_, s| {
                generalize_text(g, s, ry).map(Value::from)
            }))
        }
        Action::HashDigits => {
            let h = ctx.hasher.clone();
            Ok(map_strings(v, &mut |_, s| Some(Value::from(h.digits(s)))))
        }
        Action::SuppressIfRare(_) => Ok(None),
        Action::Pseudonym(domain) => {
            if key == "identifier" {
                let value = match (domain, patient) {
                    (Domain::Patient, Some(p)) => p.token.text.as_str().to_owned(),
                    _ => {
                        let first = v
                            .as_array()
                            .and_then(|a| a.first())
                            .and_then(|i| i.get("value"))
                            .and_then(Value::as_str)
                            .unwrap_or("");
                        if first.trim().is_empty() {
                            return Ok(None);
                        }
                        ctx.p
                            .token(domain, &SourceId::new(first.to_owned()))?
                            .text
                            .as_str()
                            .to_owned()
                    }
                };
                let id = serde_json::json!({"system": format!("urn:mdc:pseudonym:{}", domain.as_str()), "value": value});
                return Ok(Some(if v.is_array() {
                    Value::Array(vec![id])
                } else {
                    id
                }));
            }
            let mut err = None;
            let out = map_strings(v, &mut |_, s| match ctx
                .p
                .token(domain, &SourceId::new(s.to_owned()))
            {
                Ok(t) => Some(Value::from(t.text.as_str())),
                Err(e) => {
                    err = Some(e);
                    None
                }
            });
            match err {
                Some(PseudonymError::EmptyId) | None => Ok(out),
                Some(e) => Err(e),
            }
        }
    }
}

fn deidentify_with(
    r: &Value,
    patient: Option<&PatientInfo>,
    ctx: &mut FhirCtx<'_>,
) -> Result<Value, FhirReject> {
    // Contained resources share their container's patient; their own subject
    // (if any) is looked up as usual.
    let _ = patient;
    deidentify(r, None, ctx)
}

/// A kept subtree: recurse, rewriting references and dropping attachment data.
fn walk(
    path: &str,
    v: &Value,
    patient: Option<&PatientInfo>,
    ctx: &mut FhirCtx<'_>,
) -> Result<Option<Value>, PseudonymError> {
    match v {
        Value::Array(a) => {
            let mut out = Vec::with_capacity(a.len());
            for x in a {
                if let Some(y) = walk(path, x, patient, ctx)? {
                    out.push(y);
                }
            }
            Ok((!out.is_empty()).then_some(Value::Array(out)))
        }
        Value::Object(o) => {
            let mut out = Map::new();
            let is_ref = o.get("reference").is_some_and(Value::is_string);
            let is_attachment =
                o.contains_key("contentType") || (o.contains_key("data") && o.contains_key("size"));
            for (k, x) in o {
                let p = format!("{path}.{k}");
                if is_ref && k == "reference" {
                    if let Some(r) = x.as_str().map(|r| ctx.reference(r)).transpose()?.flatten() {
                        out.insert(k.clone(), Value::from(r));
                    }
                    continue;
                }
                if is_ref && k == "display" {
                    ctx.count(&p, "drop (reference display)");
                    continue;
                }
                if is_attachment
                    && (k == "data" || k == "url")
                    && !ctx.policy.options.keep_attachments
                {
                    ctx.count(&p, "drop (attachment)");
                    continue;
                }
                if let Some(y) = element(&p, k, x, Some(Action::Keep), patient, ctx)? {
                    out.insert(k.clone(), y);
                }
            }
            Ok((!out.is_empty()).then_some(Value::Object(out)))
        }
        other => Ok(Some(other.clone())),
    }
}

/// Applies `f` to every string leaf (with its key); a leaf mapped to `None`
/// is removed, and so is an object or array left empty.
fn map_strings(v: &Value, f: &mut dyn FnMut(&str, &str) -> Option<Value>) -> Option<Value> {
    fn go(key: &str, v: &Value, f: &mut dyn FnMut(&str, &str) -> Option<Value>) -> Option<Value> {
        match v {
            Value::String(s) => f(key, s),
            Value::Array(a) => {
                let out: Vec<Value> = a.iter().filter_map(|x| go(key, x, f)).collect();
                (!out.is_empty()).then_some(Value::Array(out))
            }
            Value::Object(o) => {
                let mut out = Map::new();
                for (k, x) in o {
                    if let Some(y) = go(k, x, f) {
                        out.insert(k.clone(), y);
                    }
                }
                (!out.is_empty()).then_some(Value::Object(out))
            }
            other => Some(other.clone()),
        }
    }
    go("", v, f)
}

/// Shifts a FHIR date, dateTime or instant, keeping its precision
/// (`YYYY` and `YYYY-MM` move with their first day).
pub fn shift_fhir_date(s: &str, days: i32) -> Option<String> {
    if let Some(x) = shift_date_text(s, days) {
        return Some(x);
    }
    let t = s.trim();
    if !t.is_ascii() {
        return None;
    }
    let y: i32 = t.get(0..4)?.parse().ok()?;
    match t.len() {
        4 => Some(format!(
            "{:04}",
            civil_from_days(days_from_civil(y, 1, 1) + days).0
        )),
        7 if &t[4..5] == "-" => {
            let m: u32 = t[5..7].parse().ok().filter(|m| (1..=12).contains(m))?;
            let (y2, m2, _) = civil_from_days(days_from_civil(y, m, 1) + days);
            Some(format!("{y2:04}-{m2:02}"))
        }
        _ => None,
    }
}

fn strip_tags(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut in_tag = false;
    for c in s.chars() {
        match c {
            '<' => in_tag = true,
            '>' => {
                in_tag = false;
                out.push(' ');
            }
            c if !in_tag => out.push(c),
            _ => {}
        }
    }
    out.replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&amp;", "&")
        .replace("&nbsp;", " ")
}

/// A calendar date as FHIR writes it (for flattened tables and tests).
pub fn fhir_date(days: i32) -> String {
    format_date(days)
}

/// True if the string is a FHIR date (for tests).
pub fn is_date(s: &str) -> bool {
    parse_date(s).is_some()
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::pseudonym::{KeyedPseudonymizer, PseudonymKey};
    use serde_json::json;

    #[test]
    fn patients_and_references_get_the_omop_pseudonyms() {
        let policy = Policy::profile("fhir-r4").unwrap();
        let p = KeyedPseudonymizer::new(PseudonymKey::from_bytes([9; 32]), 180);
        let h = DigitHasher::new(&p).unwrap();
        let pat = json!({"resourceType": "Patient", "id": "123", "identifier": [{"type": {"coding": [{"code": "MR"}]}, "value": "00012345"}, {"system": "ssn", "value": "850101-1234567"}],
            "name": [{"family": "홍", "given": ["길동"]}], "birthDate": "1985-01-01", "gender": "male", "telecom": [{"value": "010-1234-5678"}],
            "text": {"status": "generated", "div": "<div>홍길동</div>"}, "extension": [{"url": "x", "valueString": "y"}]});
        let obs = json!({"resourceType": "Observation", "id": "o1", "status": "final", "subject": {"reference": "Patient/123", "display": "홍길동"},
            "effectiveDateTime": "2024-03-01T10:00:00+09:00", "valueQuantity": {"value": 5.4, "unit": "%"}, "code": {"coding": [{"system": "http://loinc.org", "code": "4548-4"}]}, "note": [{"text": "call 010-1234-5678"}]});
        let mut index = FhirIndex::default();
        index.add(&pat, None);
        index.add(&obs, None);
        let mut ctx = FhirCtx::new(&policy, &p, &h, None, 2025, &index);
        let dp = deidentify(&pat, None, &mut ctx).unwrap();
        let info = PatientInfo::resolve(&p, "00012345").unwrap();
        assert_eq!(dp["id"], info.token.text.as_str());
        assert_eq!(dp["identifier"][0]["value"], info.token.text.as_str());
        assert!(
            dp.get("name").is_none()
                && dp.get("telecom").is_none()
                && dp.get("text").is_none()
                && dp.get("extension").is_none()
        );
        assert_eq!(
            dp["birthDate"],
            format_date(parse_date("1985-01-01").unwrap() + info.offset_days)
        );
        let dob = deidentify(&obs, None, &mut ctx).unwrap();
        assert_eq!(
            dob["subject"]["reference"],
            format!("Patient/{}", info.token.text.as_str())
        );
        assert!(dob["subject"].get("display").is_none());
        assert!(
            dob.get("note").is_none(),
            "no text engine: free text dropped"
        );
        assert_eq!(dob["valueQuantity"]["value"], 5.4);
        let s = dob.to_string() + &dp.to_string();
        for leak in ["00012345", "홍길동", "010-1234-5678", "850101"] {
            assert!(!s.contains(leak), "{leak} survived");
        }
        assert!(ctx.stats.unknown.is_empty() || !ctx.stats.unknown.contains("Observation.status"));
    }

    #[test]
    fn missing_patients_and_unknown_types_are_rejected() {
        let policy = Policy::profile("fhir-r4").unwrap();
        let p = KeyedPseudonymizer::new(PseudonymKey::from_bytes([9; 32]), 180);
        let h = DigitHasher::new(&p).unwrap();
        let index = FhirIndex::default();
        let mut ctx = FhirCtx::new(&policy, &p, &h, None, 2025, &index);
        let e = deidentify(
            &json!({"resourceType": "Observation", "subject": {"reference": "Patient/nope"}}),
            None,
            &mut ctx,
        )
        .unwrap_err();
        assert!(e.reason.contains("absent"));
        let e = deidentify(&json!({"resourceType": "Spaceship"}), None, &mut ctx).unwrap_err();
        assert_eq!(e.reason, "unknown resource type");
    }

    #[test]
    fn partial_dates_keep_their_precision() {
        assert_eq!(shift_fhir_date("2024", 400).unwrap(), "2025");
        assert_eq!(shift_fhir_date("2024-12", 31).unwrap(), "2025-01");
        assert_eq!(shift_fhir_date("2024-12-31", 1).unwrap(), "2025-01-01");
        assert!(shift_fhir_date("2024ㄱ", 1).is_none());
    }
}
