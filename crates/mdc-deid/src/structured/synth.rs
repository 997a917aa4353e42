//! A generator of realistic synthetic Korean OMOP CDM v5.4 extracts, for
//! tests, the demo and benchmarks (no real OMOP data ships in any package).
//!
//! Patients have Korean record numbers, and identifiers are planted where
//! real extracts leak them: names, resident registration numbers (RRNs,
//! valid check digit), mobile numbers and addresses in clinical notes and in
//! free-text source values. `Planted` lists them so that tests can prove
//! none survives de-identification. Deterministic for a seed.

// Column-position bindings (l_id, m_id, …) mirror OMOP column names.
#![allow(clippy::similar_names)]

use super::omop;
use super::value::{days_from_civil, format_date};

/// SplitMix64: small, fast, deterministic.
#[derive(Debug, Clone)]
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng(seed ^ 0x9E37_79B9_7F4A_7C15)
    }
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    /// Uniform in `0..n` (n > 0).
    pub fn below(&mut self, n: u64) -> u64 {
        self.next_u64() % n.max(1)
    }
    pub fn pick<'a, T>(&mut self, xs: &'a [T]) -> &'a T {
        &xs[self.below(xs.len() as u64) as usize]
    }
    pub fn chance(&mut self, per_mille: u64) -> bool {
        self.below(1000) < per_mille
    }
}

const SURNAMES: &[&str] = &[
    "김", "이", "박", "최", "정", "강", "조", "윤", "장", "임", "한", "오", "서", "신", "권", "황",
    "안", "송", "류", "홍",
];
const GIVEN: &[&str] = &[
    "민준", "서연", "지훈", "하은", "도윤", "서윤", "예준", "지우", "시우", "하윤", "주원", "지민",
    "현우", "수아", "건우", "지아", "우진", "채원", "선우", "다은", "영수", "영희", "순자", "정숙",
    "상철", "미경",
];
const PLACES: &[(&str, &str, &str)] = &[
    ("서울특별시", "강남구", "06"),
    ("서울특별시", "송파구", "05"),
    ("서울특별시", "종로구", "03"),
    ("서울특별시", "마포구", "04"),
    ("부산광역시", "해운대구", "48"),
    ("대구광역시", "수성구", "42"),
    ("인천광역시", "연수구", "21"),
    ("광주광역시", "북구", "61"),
    ("대전광역시", "유성구", "34"),
    ("경기도", "성남시", "13"),
    ("경기도", "수원시", "16"),
    ("강원특별자치도", "춘천시", "24"),
    ("제주특별자치도", "제주시", "63"),
];
const ROADS: &[&str] = &[
    "테헤란로",
    "올림픽로",
    "세종대로",
    "월드컵로",
    "센텀중앙로",
    "달구벌대로",
    "컨벤시아대로",
    "대학로",
    "판교역로",
    "중앙로",
];
const CONDITIONS: &[(i64, &str)] = &[
    (320_128, "I10"),
    (201_826, "E11.9"),
    (255_848, "J18.9"),
    (4_329_847, "I21.9"),
    (257_012, "J01.9"),
    (80_180, "M19.9"),
    (432_867, "E78.5"),
    (317_576, "I25.1"),
    (4_112_343, "J44.9"),
    (443_392, "C16.9"),
];
const DRUGS: &[(i64, &str, &str)] = &[
    (1_503_297, "메트포르민 500mg", "mg"),
    (1_332_418, "암로디핀 5mg", "mg"),
    (1_545_958, "아토르바스타틴 20mg", "mg"),
    (1_124_957, "아세트아미노펜 500mg", "mg"),
    (1_713_332, "아목시실린 500mg", "mg"),
];
const LABS: &[(i64, &str, &str, f64, f64)] = &[
    (3_004_410, "HbA1c", "%", 5.7, 1.2),
    (3_013_682, "BUN", "mg/dL", 15.0, 5.0),
    (3_016_723, "Creatinine", "mg/dL", 1.0, 0.3),
    (3_000_963, "Hemoglobin", "g/dL", 13.5, 1.5),
    (3_004_249, "SBP", "mmHg", 128.0, 15.0),
    (3_012_888, "DBP", "mmHg", 80.0, 10.0),
    (3_027_018, "Heart rate", "/min", 75.0, 12.0),
    (3_025_315, "Body weight", "kg", 65.0, 12.0),
];
const PROCEDURES: &[(i64, &str)] = &[
    (4_163_872, "M0111"),
    (2_108_115, "HA341"),
    (4_058_336, "E7101"),
    (4_230_911, "C2200"),
];

/// Identifiers the generator planted, for leak tests.
#[derive(Debug, Default, Clone)]
pub struct Planted {
    pub record_numbers: Vec<String>,
    pub names: Vec<String>,
    pub rrns: Vec<String>,
    pub phones: Vec<String>,
    pub street_addresses: Vec<String>,
}

#[derive(Debug, Clone, Copy)]
pub struct SynthConfig {
    pub persons: u64,
    pub seed: u64,
    pub visits_per_person: u64,
    pub measurements_per_visit: u64,
    /// Collect `Planted` (costs memory on big runs).
    pub collect_planted: bool,
}

impl Default for SynthConfig {
    fn default() -> Self {
        SynthConfig {
            persons: 100,
            seed: 1,
            visits_per_person: 3,
            measurements_per_visit: 4,
            collect_planted: true,
        }
    }
}

/// RRN with a valid check digit for a birth date and sex.
pub fn rrn(y: i32, m: u32, d: u32, male: bool, serial: u64) -> String {
    let g = match (y >= 2000, male) {
        (false, true) => 1,
        (false, false) => 2,
        (true, true) => 3,
        (true, false) => 4,
    };
    let body = format!(
        "{:02}{m:02}{d:02}{g}{:05}",
        y.rem_euclid(100),
        serial % 100_000
    );
    let w = [2u32, 3, 4, 5, 6, 7, 8, 9, 2, 3, 4, 5];
    let sum: u32 = body
        .bytes()
        .zip(w)
        .map(|(b, w)| u32::from(b - b'0') * w)
        .sum();
    let check = (11 - sum % 11) % 10;
    format!("{}-{}{check}", &body[..6], &body[6..])
}

fn name(rng: &mut Rng) -> String {
    format!("{}{}", rng.pick(SURNAMES), rng.pick(GIVEN))
}

fn phone(rng: &mut Rng) -> String {
    format!("010-{:04}-{:04}", 2000 + rng.below(8000), rng.below(10_000))
}

/// Column positions of a table, so rows are built without name look-ups.
struct Shape {
    width: usize,
    names: Vec<&'static str>,
}

impl Shape {
    fn of(table: &str) -> Shape {
        let cols = omop::columns(table).unwrap_or(&[]);
        Shape {
            width: cols.len(),
            names: cols.iter().map(|(n, _)| *n).collect(),
        }
    }
    fn at(&self, col: &str) -> usize {
        self.names
            .iter()
            .position(|n| *n == col)
            .unwrap_or(usize::MAX)
    }
}

fn new_row(s: &Shape) -> Row<'_> {
    Row {
        shape: s,
        v: vec![String::new(); s.width],
    }
}

struct Row<'a> {
    shape: &'a Shape,
    v: Vec<String>,
}

impl Row<'_> {
    // Call sites pass temporaries (numbers, formatted strings).
    #[allow(clippy::needless_pass_by_value)]
    fn set(&mut self, i: usize, x: impl ToString) -> &mut Self {
        if let Some(slot) = self.v.get_mut(i) {
            *slot = x.to_string();
        }
        self
    }
}

/// Writes the extract through `sink(table, header, row)`: the header is
/// passed with every row of a table (the same slice), rows in table order.
/// Tables: location, care_site, provider, person, observation_period,
/// visit_occurrence, visit_detail, condition_occurrence, drug_exposure,
/// procedure_occurrence, measurement, observation, death, note.
/// Receives each row: table, header, values.
pub type Sink<'a, E> = dyn FnMut(&str, &[&str], &[String]) -> Result<(), E> + 'a;

struct P {
    id: u64,
    mrn: String,
    name: String,
    rrn: String,
    phone: String,
    birth: i32,
    addr: usize,
}

pub fn generate<E>(cfg: &SynthConfig, sink: &mut Sink<'_, E>) -> Result<Planted, E> {
    let mut rng = Rng::new(cfg.seed);
    let mut planted = Planted::default();
    let n = cfg.persons;
    let emit =
        |sink: &mut Sink<'_, E>, table: &str, row: Row<'_>| sink(table, &row.shape.names, &row.v);

    // Locations: one per person (home) and one per care site.
    let sites = 6u64;
    let loc = Shape::of("location");
    let (l_id, l_a1, l_a2, l_city, l_state, l_zip, l_src, l_cty, l_lat, l_lon) = (
        loc.at("location_id"),
        loc.at("address_1"),
        loc.at("address_2"),
        loc.at("city"),
        loc.at("state"),
        loc.at("zip"),
        loc.at("location_source_value"),
        loc.at("country_source_value"),
        loc.at("latitude"),
        loc.at("longitude"),
    );
    let mut home: Vec<(usize, String)> = Vec::with_capacity(n as usize);
    for i in 0..n + sites {
        let (sido, gu, zip2) = *rng.pick(PLACES);
        let road = rng.pick(ROADS);
        let a1 = format!("{road} {}", 1 + rng.below(300));
        let a2 = format!(
            "{}동 {}호",
            101 + rng.below(20),
            100 * (1 + rng.below(25)) + 1 + rng.below(8)
        );
        let zip = format!("{zip2}{:03}", rng.below(1000));
        let full = format!("{sido} {gu} {a1} {a2}");
        let mut r = new_row(&loc);
        r.set(l_id, 1 + i)
            .set(l_a1, &a1)
            .set(l_a2, &a2)
            .set(l_city, gu)
            .set(l_state, sido)
            .set(l_zip, &zip)
            .set(l_src, &full)
            .set(l_cty, "KR");
        r.set(
            l_lat,
            format!("{:.5}", 35.0 + rng.below(30_000) as f64 / 10_000.0),
        )
        .set(
            l_lon,
            format!("{:.5}", 126.5 + rng.below(30_000) as f64 / 10_000.0),
        );
        if cfg.collect_planted {
            planted.street_addresses.push(a1.clone());
        }
        if i < n {
            home.push((
                PLACES
                    .iter()
                    .position(|p| p.0 == sido && p.1 == gu)
                    .unwrap_or(0),
                full,
            ));
        }
        emit(sink, "location", r)?;
    }

    let cs = Shape::of("care_site");
    let site_names = [
        "서울중앙병원 내과",
        "서울중앙병원 가정의학과",
        "서울중앙병원 응급의학과",
        "부산해운대병원 내과",
        "대전유성병원 외과",
        "제주한라병원 소아청소년과",
    ];
    for s in 0..sites {
        let mut r = new_row(&cs);
        r.set(cs.at("care_site_id"), 1 + s)
            .set(
                cs.at("care_site_name"),
                site_names[s as usize % site_names.len()],
            )
            .set(cs.at("place_of_service_concept_id"), 8756)
            .set(cs.at("location_id"), n + s + 1)
            .set(cs.at("care_site_source_value"), format!("DEPT{:03}", s + 1))
            .set(cs.at("place_of_service_source_value"), "outpatient");
        emit(sink, "care_site", r)?;
    }

    let pv = Shape::of("provider");
    let providers = 4 * sites;
    for p in 0..providers {
        let nm = name(&mut rng);
        if cfg.collect_planted {
            planted.names.push(nm.clone());
        }
        let mut r = new_row(&pv);
        r.set(pv.at("provider_id"), 1 + p)
            .set(pv.at("provider_name"), &nm)
            .set(pv.at("npi"), format!("{:05}", 10_000 + rng.below(90_000)))
            .set(pv.at("specialty_concept_id"), 38_004_456)
            .set(pv.at("care_site_id"), 1 + p % sites)
            .set(pv.at("year_of_birth"), 1960 + rng.below(30))
            .set(
                pv.at("gender_concept_id"),
                if rng.chance(500) { 8507 } else { 8532 },
            )
            .set(pv.at("provider_source_value"), format!("EMP{:05}", 1 + p))
            .set(pv.at("specialty_source_value"), "내과")
            .set(pv.at("gender_source_value"), "");
        emit(sink, "provider", r)?;
    }

    // People. Ages 0–104 so that some are above 89.
    let ps = Shape::of("person");
    let mut people = Vec::with_capacity(n as usize);
    for i in 0..n {
        let male = rng.chance(490);
        let y = 1921 + rng.below(104) as i32;
        let m = 1 + rng.below(12) as u32;
        let d = 1 + rng.below(28) as u32;
        let mrn = format!("{:08}", 10_000_000 + i * 7919 % 89_999_999 + rng.below(7));
        let p = P {
            id: i + 1,
            mrn: mrn.clone(),
            name: name(&mut rng),
            rrn: rrn(y, m, d, male, rng.below(100_000)),
            phone: phone(&mut rng),
            birth: days_from_civil(y, m, d),
            addr: i as usize,
        };
        if cfg.collect_planted {
            planted.record_numbers.push(mrn.clone());
            planted.names.push(p.name.clone());
            planted.rrns.push(p.rrn.clone());
            planted.phones.push(p.phone.clone());
        }
        let mut r = new_row(&ps);
        r.set(ps.at("person_id"), p.id)
            .set(ps.at("gender_concept_id"), if male { 8507 } else { 8532 })
            .set(ps.at("year_of_birth"), y)
            .set(ps.at("month_of_birth"), m)
            .set(ps.at("day_of_birth"), d);
        r.set(
            ps.at("birth_datetime"),
            format!("{}T00:00:00", format_date(p.birth)),
        )
        .set(ps.at("race_concept_id"), 38_003_585)
        .set(ps.at("ethnicity_concept_id"), 38_003_564)
        .set(ps.at("location_id"), p.id)
        .set(ps.at("provider_id"), 1 + rng.below(providers))
        .set(ps.at("care_site_id"), 1 + rng.below(sites));
        r.set(ps.at("person_source_value"), &mrn)
            .set(ps.at("gender_source_value"), if male { "M" } else { "F" })
            .set(ps.at("race_source_value"), "Korean");
        emit(sink, "person", r)?;
        people.push(p);
    }

    let op = Shape::of("observation_period");
    let first_day = days_from_civil(2018, 1, 1);
    for p in &people {
        let mut r = new_row(&op);
        r.set(op.at("observation_period_id"), p.id)
            .set(op.at("person_id"), p.id)
            .set(
                op.at("observation_period_start_date"),
                format_date(first_day),
            )
            .set(
                op.at("observation_period_end_date"),
                format_date(first_day + 2555),
            )
            .set(op.at("period_type_concept_id"), 32_817);
        emit(sink, "observation_period", r)?;
    }

    // Visits and everything that hangs off them.
    let vo = Shape::of("visit_occurrence");
    let vd = Shape::of("visit_detail");
    let co = Shape::of("condition_occurrence");
    let de = Shape::of("drug_exposure");
    let po = Shape::of("procedure_occurrence");
    let me = Shape::of("measurement");
    let ob = Shape::of("observation");
    let nt = Shape::of("note");
    let (
        m_id,
        m_pid,
        m_cid,
        m_date,
        m_dt,
        m_type,
        m_val,
        m_unit_c,
        m_lo,
        m_hi,
        m_prov,
        m_visit,
        m_src,
        m_unit,
    ) = (
        me.at("measurement_id"),
        me.at("person_id"),
        me.at("measurement_concept_id"),
        me.at("measurement_date"),
        me.at("measurement_datetime"),
        me.at("measurement_type_concept_id"),
        me.at("value_as_number"),
        me.at("unit_concept_id"),
        me.at("range_low"),
        me.at("range_high"),
        me.at("provider_id"),
        me.at("visit_occurrence_id"),
        me.at("measurement_source_value"),
        me.at("unit_source_value"),
    );
    let mut visit_id = 0u64;
    let mut ids = [0u64; 6];
    let mut visits: Vec<Vec<(u64, i32, u64)>> = Vec::with_capacity(people.len());
    for p in &people {
        let mut mine = Vec::new();
        let mut day = first_day + rng.below(365) as i32;
        for _ in 0..cfg.visits_per_person {
            visit_id += 1;
            let len = if rng.chance(150) {
                1 + rng.below(10) as i32
            } else {
                0
            };
            let prov = 1 + rng.below(providers);
            let mut r = new_row(&vo);
            r.set(vo.at("visit_occurrence_id"), visit_id)
                .set(vo.at("person_id"), p.id)
                .set(vo.at("visit_concept_id"), if len > 0 { 9201 } else { 9202 })
                .set(vo.at("visit_start_date"), format_date(day))
                .set(
                    vo.at("visit_start_datetime"),
                    format!("{}T09:{:02}:00", format_date(day), rng.below(60)),
                );
            r.set(vo.at("visit_end_date"), format_date(day + len))
                .set(vo.at("visit_type_concept_id"), 32_817)
                .set(vo.at("provider_id"), prov)
                .set(vo.at("care_site_id"), 1 + (prov - 1) % sites)
                .set(vo.at("visit_source_value"), format!("V{visit_id:09}"));
            r.set(
                vo.at("admitted_from_source_value"),
                if len > 0 { "응급실" } else { "" },
            );
            emit(sink, "visit_occurrence", r)?;
            let mut r = new_row(&vd);
            r.set(vd.at("visit_detail_id"), visit_id)
                .set(vd.at("person_id"), p.id)
                .set(vd.at("visit_detail_concept_id"), 9202)
                .set(vd.at("visit_detail_start_date"), format_date(day))
                .set(vd.at("visit_detail_end_date"), format_date(day + len))
                .set(vd.at("visit_detail_type_concept_id"), 32_817)
                .set(vd.at("provider_id"), prov)
                .set(vd.at("visit_occurrence_id"), visit_id)
                .set(
                    vd.at("visit_detail_source_value"),
                    format!("D{visit_id:09}"),
                );
            emit(sink, "visit_detail", r)?;
            mine.push((visit_id, day, prov));
            day += 1 + rng.below(200) as i32;
        }
        visits.push(mine);
    }
    for (p, mine) in people.iter().zip(&visits) {
        for &(v, day, prov) in mine {
            let (cid, code) = *rng.pick(CONDITIONS);
            ids[0] += 1;
            // Now and then the free-text source value carries the patient's name and phone.
            let src = if rng.chance(100) {
                format!("{code} 환자 {} 보호자 연락처 {}", p.name, p.phone)
            } else {
                code.to_owned()
            };
            let mut r = new_row(&co);
            r.set(co.at("condition_occurrence_id"), ids[0])
                .set(co.at("person_id"), p.id)
                .set(co.at("condition_concept_id"), cid)
                .set(co.at("condition_start_date"), format_date(day))
                .set(co.at("condition_type_concept_id"), 32_817)
                .set(co.at("provider_id"), prov)
                .set(co.at("visit_occurrence_id"), v)
                .set(co.at("condition_source_value"), src);
            emit(sink, "condition_occurrence", r)?;

            let (did, dname, _) = *rng.pick(DRUGS);
            ids[1] += 1;
            let sig = if rng.chance(100) {
                format!("1일 2회 식후 복용, 문의 {}", p.phone)
            } else {
                "1일 2회 식후 복용".to_owned()
            };
            let mut r = new_row(&de);
            r.set(de.at("drug_exposure_id"), ids[1])
                .set(de.at("person_id"), p.id)
                .set(de.at("drug_concept_id"), did)
                .set(de.at("drug_exposure_start_date"), format_date(day))
                .set(de.at("drug_exposure_end_date"), format_date(day + 29))
                .set(de.at("drug_type_concept_id"), 32_838)
                .set(de.at("quantity"), 60)
                .set(de.at("days_supply"), 30)
                .set(de.at("sig"), sig)
                .set(de.at("provider_id"), prov)
                .set(de.at("visit_occurrence_id"), v)
                .set(de.at("drug_source_value"), dname)
                .set(de.at("dose_unit_source_value"), "mg");
            emit(sink, "drug_exposure", r)?;

            if rng.chance(300) {
                let (pid, pcode) = *rng.pick(PROCEDURES);
                ids[2] += 1;
                let mut r = new_row(&po);
                r.set(po.at("procedure_occurrence_id"), ids[2])
                    .set(po.at("person_id"), p.id)
                    .set(po.at("procedure_concept_id"), pid)
                    .set(po.at("procedure_date"), format_date(day))
                    .set(po.at("procedure_type_concept_id"), 32_817)
                    .set(po.at("provider_id"), prov)
                    .set(po.at("visit_occurrence_id"), v)
                    .set(po.at("procedure_source_value"), pcode);
                emit(sink, "procedure_occurrence", r)?;
            }

            for _ in 0..cfg.measurements_per_visit {
                let (lid, lname, unit, mean, sd) = *rng.pick(LABS);
                ids[3] += 1;
                let z = (rng.below(2001) as f64 - 1000.0) / 500.0;
                let mut r = new_row(&me);
                r.set(m_id, ids[3])
                    .set(m_pid, p.id)
                    .set(m_cid, lid)
                    .set(m_date, format_date(day))
                    .set(
                        m_dt,
                        format!("{}T10:{:02}:00", format_date(day), rng.below(60)),
                    )
                    .set(m_type, 32_856)
                    .set(m_val, format!("{:.1}", mean + z * sd));
                r.set(m_unit_c, 0)
                    .set(m_lo, format!("{:.1}", mean - 2.0 * sd))
                    .set(m_hi, format!("{:.1}", mean + 2.0 * sd))
                    .set(m_prov, prov)
                    .set(m_visit, v)
                    .set(m_src, lname)
                    .set(m_unit, unit);
                emit(sink, "measurement", r)?;
            }

            if rng.chance(400) {
                ids[4] += 1;
                let s = if rng.chance(300) {
                    format!("흡연 10갑년, 주소 {}", home[p.addr].1)
                } else {
                    "흡연 10갑년".to_owned()
                };
                let mut r = new_row(&ob);
                r.set(ob.at("observation_id"), ids[4])
                    .set(ob.at("person_id"), p.id)
                    .set(ob.at("observation_concept_id"), 4_275_495)
                    .set(ob.at("observation_date"), format_date(day))
                    .set(ob.at("observation_type_concept_id"), 32_817)
                    .set(ob.at("value_as_string"), s)
                    .set(ob.at("provider_id"), prov)
                    .set(ob.at("visit_occurrence_id"), v)
                    .set(ob.at("observation_source_value"), "SMOKING");
                emit(sink, "observation", r)?;
            }
        }
        // One note per patient with the usual identifiers in it.
        if let Some(&(v, day, prov)) = mine.first() {
            ids[5] += 1;
            let text = format!(
                "환자 {} (등록번호 {}, 주민등록번호 {})는 {} 내원하였다. 연락처 {}. 주소: {}. 고혈압 및 당뇨로 추적 관찰 중이며 금일 혈압 138/86.",
                p.name, p.mrn, p.rrn, format_date(day), p.phone, home[p.addr].1
            );
            let mut r = new_row(&nt);
            r.set(nt.at("note_id"), ids[5])
                .set(nt.at("person_id"), p.id)
                .set(nt.at("note_date"), format_date(day))
                .set(
                    nt.at("note_datetime"),
                    format!("{}T11:00:00", format_date(day)),
                )
                .set(nt.at("note_type_concept_id"), 44_814_637)
                .set(nt.at("note_class_concept_id"), 44_814_645);
            r.set(nt.at("note_title"), format!("{} 경과기록", p.name))
                .set(nt.at("note_text"), text)
                .set(nt.at("encoding_concept_id"), 32_678)
                .set(nt.at("language_concept_id"), 4_175_771)
                .set(nt.at("provider_id"), prov)
                .set(nt.at("visit_occurrence_id"), v)
                .set(nt.at("note_source_value"), format!("NOTE-{}", p.mrn));
            emit(sink, "note", r)?;
        }
    }

    let dt = Shape::of("death");
    for (p, mine) in people.iter().zip(&visits) {
        if rng.chance(40) {
            let last = mine.last().map_or(first_day, |v| v.1) + 3;
            let mut r = new_row(&dt);
            r.set(dt.at("person_id"), p.id)
                .set(dt.at("death_date"), format_date(last))
                .set(dt.at("death_type_concept_id"), 32_817)
                .set(dt.at("cause_concept_id"), 4_306_655)
                .set(dt.at("cause_source_value"), "I21.9");
            emit(sink, "death", r)?;
        }
    }
    Ok(planted)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    #[test]
    fn rrns_have_valid_check_digits() {
        let r = rrn(1985, 3, 7, true, 12_345);
        assert_eq!(r.len(), 14);
        assert_eq!(&r[..8], "850307-1");
        let digits: Vec<u32> = r
            .bytes()
            .filter(u8::is_ascii_digit)
            .map(|b| u32::from(b - b'0'))
            .collect();
        let w = [2u32, 3, 4, 5, 6, 7, 8, 9, 2, 3, 4, 5];
        let s: u32 = digits.iter().zip(w).map(|(d, w)| d * w).sum();
        assert_eq!((11 - s % 11) % 10, digits[12]);
    }

    #[test]
    fn generation_is_deterministic_and_covers_the_tables() {
        let cfg = SynthConfig {
            persons: 20,
            ..SynthConfig::default()
        };
        let mut a: HashMap<String, Vec<Vec<String>>> = HashMap::new();
        let pl = generate::<()>(&cfg, &mut |t, h, r| {
            assert_eq!(h.len(), r.len());
            a.entry(t.to_owned()).or_default().push(r.to_vec());
            Ok(())
        })
        .unwrap();
        let mut b: HashMap<String, Vec<Vec<String>>> = HashMap::new();
        generate::<()>(&cfg, &mut |t, _, r| {
            b.entry(t.to_owned()).or_default().push(r.to_vec());
            Ok(())
        })
        .unwrap();
        assert_eq!(a, b);
        assert!(a.len() >= 12, "{:?}", a.keys());
        assert_eq!(a["person"].len(), 20);
        assert_eq!(pl.record_numbers.len(), 20);
        assert_eq!(a["note"].len(), 20);
    }
}
