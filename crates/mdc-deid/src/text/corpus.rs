//! A labelled evaluation corpus: synthetic Korean and English clinical notes
//! with gold PHI spans, generated from a seed.
//!
//! No real notes with gold labels exist for Korean, so the project makes its
//! own. Every identifier is planted in varied formats (with and without
//! hyphens, honorifics, particles, labels), and every note also carries
//! clinical content that must survive: drug doses, lab values, vitals, ICD
//! codes, eponyms, and Korean words that begin with a surname syllable. The
//! same author wrote the detector and the generator, so these figures measure
//! the formats listed here, not the unknown formats of a real archive.

use std::fmt::Write as _;

use mdc_types::PhiType;

/// One gold span, in code points of the note's text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GoldSpan {
    pub start: usize,
    pub end: usize,
    pub ty: PhiType,
}

/// One generated note.
#[derive(Debug, Clone)]
pub struct GoldNote {
    pub id: String,
    /// `ko` or `en`.
    pub lang: &'static str,
    pub text: String,
    pub patient_id: String,
    /// The patient's own identifiers, as a caller would pass them (`known`).
    pub known: Vec<(PhiType, String)>,
    pub gold: Vec<GoldSpan>,
}

impl GoldNote {
    /// The note as one JSONL input line of `mdc deid text`, plus `gold` and `lang`.
    pub fn to_json(&self, with_gold: bool) -> String {
        let mut s = String::with_capacity(self.text.len() + 256);
        s.push_str("{\"id\":");
        push_json_str(&mut s, &self.id);
        s.push_str(",\"lang\":\"");
        s.push_str(self.lang);
        s.push_str("\",\"patient_id\":");
        push_json_str(&mut s, &self.patient_id);
        s.push_str(",\"text\":");
        push_json_str(&mut s, &self.text);
        if !self.known.is_empty() {
            s.push_str(",\"known\":{");
            for (i, (ty, v)) in self.known.iter().enumerate() {
                if i > 0 {
                    s.push(',');
                }
                push_json_str(&mut s, ty.as_str());
                s.push_str(":[");
                push_json_str(&mut s, v);
                s.push(']');
            }
            s.push('}');
        }
        if with_gold {
            s.push_str(",\"gold\":[");
            for (i, g) in self.gold.iter().enumerate() {
                if i > 0 {
                    s.push(',');
                }
                let _ = write!(
                    s,
                    "{{\"start\":{},\"end\":{},\"type\":\"{}\"}}",
                    g.start,
                    g.end,
                    g.ty.as_str()
                );
            }
            s.push(']');
        }
        s.push('}');
        s
    }
}

fn push_json_str(out: &mut String, v: &str) {
    out.push('"');
    for c in v.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if (c as u32) < 0x20 => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
}

/// SplitMix64: small, seedable, good enough for test data.
#[derive(Debug, Clone)]
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng(seed)
    }
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    pub fn below(&mut self, n: usize) -> usize {
        (self.next_u64() % n.max(1) as u64) as usize
    }
    fn range(&mut self, lo: u32, hi: u32) -> u32 {
        lo + self.below((hi - lo + 1) as usize) as u32
    }
    fn chance(&mut self, percent: usize) -> bool {
        self.below(100) < percent
    }
    fn pick<'a>(&mut self, v: &[&'a str]) -> &'a str {
        v[self.below(v.len())]
    }
    fn digits(&mut self, n: usize) -> String {
        (0..n)
            .map(|_| char::from(b'0' + self.below(10) as u8))
            .collect()
    }
}

/// Builds a note while recording gold spans in code points.
struct Builder {
    text: String,
    chars: usize,
    gold: Vec<GoldSpan>,
}

impl Builder {
    fn lit(&mut self, s: &str) {
        self.text.push_str(s);
        self.chars += s.chars().count();
    }
    fn phi(&mut self, ty: PhiType, s: &str) {
        let start = self.chars;
        self.lit(s);
        self.gold.push(GoldSpan {
            start,
            end: self.chars,
            ty,
        });
    }
}

const KO_SURNAMES: &[&str] = &[
    "김", "김", "김", "이", "이", "이", "박", "박", "최", "정", "강", "조", "윤", "장", "임", "한",
    "오", "서", "신", "권", "황", "안", "송", "류", "전", "홍", "고", "문", "양", "손", "배", "백",
    "허", "유", "남", "심", "노", "하", "곽", "성", "차", "주", "우", "구", "민",
];
const KO_COMPOUND: &[&str] = &["남궁", "황보", "제갈", "선우", "독고", "사공"];
const KO_GIVEN: &[&str] = &[
    "민준", "서준", "도윤", "예준", "시우", "하준", "주원", "지호", "지후", "준우", "현우", "준서",
    "도현", "건우", "우진", "민재", "현준", "연우", "유준", "정우", "승우", "승현", "시윤", "준혁",
    "은우", "지환", "승민", "지우", "유찬", "민성", "준영", "시후", "진우", "서연", "서윤", "서현",
    "민서", "하은", "하윤", "윤서", "지유", "지민", "채원", "수아", "지아", "지윤", "은서", "다은",
    "예은", "수빈", "소윤", "예린", "하린", "영숙", "영자", "정숙", "순자", "영희", "미숙", "경숙",
    "정희", "명숙", "철수", "영수", "영호", "영철", "상철", "성호", "동현", "상훈", "성민", "정훈",
    "광수", "경호", "혜진", "은정", "미영", "수진", "지영", "현정", "은영", "소영", "민정", "경민",
    "상민", "재민", "태호", "병철", "종민", "옥순", "말순", "춘자", "길동", "재석", "혜원", "나래",
    "보람", "슬기",
];
const KO_GIVEN_ONE: &[&str] = &["철", "훈", "진", "민", "솔", "결", "현", "윤"];
const EN_FIRST: &[&str] = &[
    "James",
    "John",
    "Robert",
    "Michael",
    "David",
    "Richard",
    "Joseph",
    "Thomas",
    "Daniel",
    "Mary",
    "Patricia",
    "Jennifer",
    "Linda",
    "Elizabeth",
    "Susan",
    "Sarah",
    "Karen",
    "Nancy",
    "Margaret",
    "Emily",
    "Helen",
    "Anna",
    "Rachel",
    "Kevin",
    "Brian",
    "George",
    "Edward",
];
/// First names outside the detector's dictionary: found only through other cues.
const EN_FIRST_RARE: &[&str] = &[
    "Zoltan", "Ingrid", "Thaddeus", "Priya", "Oksana", "Desmond", "Marisol", "Leopold",
];
const EN_LAST: &[&str] = &[
    "Smith",
    "Johnson",
    "Williams",
    "Brown",
    "Jones",
    "Garcia",
    "Miller",
    "Davis",
    "Rodriguez",
    "Martinez",
    "Hernandez",
    "Lopez",
    "Gonzalez",
    "Wilson",
    "Anderson",
    "Taylor",
    "Moore",
    "Jackson",
    "Thompson",
    "Harris",
    "Sanchez",
    "Clark",
    "Ramirez",
    "Lewis",
    "Robinson",
    "Walker",
    "Young",
    "Allen",
    "Wright",
    "Scott",
    "Torres",
    "Nguyen",
    "Hill",
    "Flores",
    "Adams",
    "Nelson",
    "Baker",
    "Hall",
    "Rivera",
    "Campbell",
    "Mitchell",
    "Carter",
    "Roberts",
    "O'Brien",
    "McDonald",
    "Kowalski",
    "Goldberg",
    "Fitzgerald",
    "Okafor",
    "Haddad",
];
const SIDO_FULL: &[&str] = &[
    "서울특별시",
    "부산광역시",
    "대구광역시",
    "인천광역시",
    "광주광역시",
    "대전광역시",
    "울산광역시",
    "경기도",
    "강원특별자치도",
    "충청북도",
    "충청남도",
    "전라남도",
    "경상북도",
    "경상남도",
    "제주특별자치도",
];
const SIDO_SHORT: &[&str] = &[
    "서울", "부산", "대구", "인천", "광주", "대전", "울산", "경기", "강원", "충북", "충남", "전남",
    "경북", "경남", "제주",
];
const SIGUNGU: &[&str] = &[
    "강남구",
    "서초구",
    "송파구",
    "종로구",
    "마포구",
    "해운대구",
    "수성구",
    "연수구",
    "북구",
    "유성구",
    "남구",
    "수원시 영통구",
    "성남시 분당구",
    "고양시 일산동구",
    "춘천시",
    "청주시 흥덕구",
    "천안시 동남구",
    "순천시",
    "포항시 북구",
    "창원시 성산구",
    "제주시",
];
const ROADS: &[&str] = &[
    "테헤란로",
    "세종대로",
    "올림픽로",
    "중앙로",
    "해운대로",
    "달구벌대로",
    "판교역로",
    "일산로",
    "동탄대로",
    "월드컵북로",
    "반포대로",
    "은행로",
    "경수대로",
    "무등로",
    "충장로",
];
const DONGS: &[&str] = &[
    "역삼동",
    "서초동",
    "잠실동",
    "우동",
    "범어동",
    "송도동",
    "정자동",
    "삼산동",
    "봉명동",
    "연동",
];
const US_STREETS: &[&str] = &[
    "Main",
    "Oak",
    "Maple",
    "Washington",
    "Lincoln",
    "Park",
    "Lake",
    "Hillside",
    "Sunset",
    "River",
];
const US_SUFFIX: &[&str] = &[
    "Street",
    "St.",
    "Avenue",
    "Ave",
    "Road",
    "Rd",
    "Boulevard",
    "Blvd",
    "Lane",
    "Drive",
    "Court",
];
const US_CITIES: &[(&str, &str)] = &[
    ("Boston", "MA"),
    ("Springfield", "IL"),
    ("Austin", "TX"),
    ("Seattle", "WA"),
    ("Denver", "CO"),
    ("Columbus", "OH"),
    ("San Jose", "CA"),
    ("Portland", "OR"),
];
const MONTHS_EN: &[&str] = &[
    "January",
    "February",
    "March",
    "April",
    "May",
    "June",
    "July",
    "August",
    "September",
    "October",
    "November",
    "December",
];
const MONTHS_AB: &[&str] = &[
    "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
];

fn ko_name(r: &mut Rng) -> String {
    if r.chance(8) {
        format!("{}{}", r.pick(KO_COMPOUND), r.pick(KO_GIVEN))
    } else if r.chance(6) {
        format!("{}{}", r.pick(KO_SURNAMES), r.pick(KO_GIVEN_ONE))
    } else {
        format!("{}{}", r.pick(KO_SURNAMES), r.pick(KO_GIVEN))
    }
}

struct EnName {
    first: &'static str,
    last: &'static str,
    initial: char,
}

fn en_name(r: &mut Rng, rare_ok: bool) -> EnName {
    let first = if rare_ok && r.chance(25) {
        r.pick(EN_FIRST_RARE)
    } else {
        r.pick(EN_FIRST)
    };
    EnName {
        first,
        last: r.pick(EN_LAST),
        initial: char::from(b'A' + r.below(26) as u8),
    }
}

fn rrn(r: &mut Rng) -> String {
    let y = r.range(30, 99);
    let m = r.range(1, 12);
    let d = r.range(1, 28);
    let g = if r.chance(10) {
        r.range(5, 8)
    } else {
        r.range(1, 4)
    };
    let tail = r.digits(6);
    match r.below(4) {
        0 => format!("{y:02}{m:02}{d:02}{g}{tail}"),
        1 => format!("{y:02}{m:02}{d:02} - {g}{tail}"),
        _ => format!("{y:02}{m:02}{d:02}-{g}{tail}"),
    }
}

fn phone_ko(r: &mut Rng) -> String {
    let a = r.range(2000, 9999);
    let b = r.digits(4);
    match r.below(12) {
        0 => format!("010-{a}-{b}"),
        1 => format!("010.{a}.{b}"),
        2 => format!("010 {a} {b}"),
        3 => format!("010{a}{b}"),
        4 => format!("02-{}-{b}", r.range(200, 9999)),
        5 => format!("031-{}-{b}", r.range(200, 999)),
        6 => format!("070-{a}-{b}"),
        7 => format!("0505-{}-{b}", r.range(100, 999)),
        8 => format!("{}-{b}", r.pick(&["1588", "1577", "1644", "1899", "1566"])),
        9 => format!("+82 10-{a}-{b}"),
        10 => format!("+82-2-{}-{b}", r.range(200, 999)),
        _ => format!("(02) {}-{b}", r.range(200, 999)),
    }
}

fn phone_us(r: &mut Rng) -> String {
    let (a, b, c) = (r.range(201, 989), r.range(201, 999), r.digits(4));
    match r.below(4) {
        0 => format!("({a}) {b}-{c}"),
        1 => format!("{a}-{b}-{c}"),
        2 => format!("{a}.{b}.{c}"),
        _ => format!("+1 {a} {b} {c}"),
    }
}

fn addr_ko(r: &mut Rng) -> String {
    let sido = if r.chance(60) {
        r.pick(SIDO_FULL)
    } else {
        r.pick(SIDO_SHORT)
    };
    let sgg = r.pick(SIGUNGU);
    let tail = match r.below(4) {
        0 => format!(", {}동 {}호", r.range(101, 120), r.range(101, 2304)),
        1 => format!(" {}층", r.range(2, 30)),
        2 => format!(" {}호", r.range(101, 1504)),
        _ => String::new(),
    };
    if r.chance(25) {
        format!(
            "{sido} {sgg} {} {}-{}{tail}",
            r.pick(DONGS),
            r.range(1, 999),
            r.range(1, 99)
        )
    } else if r.chance(20) {
        format!("{sgg} {} {}{tail}", r.pick(ROADS), r.range(1, 500))
    } else {
        format!("{sido} {sgg} {} {}{tail}", r.pick(ROADS), r.range(1, 500))
    }
}

fn addr_us(r: &mut Rng) -> String {
    let (city, st) = US_CITIES[r.below(US_CITIES.len())];
    let unit = if r.chance(30) {
        format!(", Apt {}", r.range(1, 40))
    } else {
        String::new()
    };
    format!(
        "{} {} {}{unit}, {city}, {st} {}",
        r.range(1, 9999),
        r.pick(US_STREETS),
        r.pick(US_SUFFIX),
        r.digits(5)
    )
}

fn date_ko(r: &mut Rng) -> String {
    let (y, m, d) = (r.range(2015, 2025), r.range(1, 12), r.range(1, 28));
    match r.below(8) {
        0 => format!("{y}년 {m}월 {d}일"),
        1 => format!("{y}.{m:02}.{d:02}"),
        2 => format!("{y}-{m:02}-{d:02}"),
        3 => format!("'{:02}.{m}.{d}", y % 100),
        4 => format!("{m}월 {d}일"),
        5 => format!("{y}/{m}/{d}"),
        6 => format!("{y}{m:02}{d:02}"),
        _ => format!("{y}년 {m}월"),
    }
}

fn date_en(r: &mut Rng) -> String {
    let (y, m, d) = (r.range(2015, 2025), r.range(1, 12), r.range(1, 28));
    let mi = m as usize - 1;
    match r.below(7) {
        0 => format!("{m:02}/{d:02}/{y}"),
        1 => format!("{m}/{d}/{:02}", y % 100),
        2 => format!("{} {d}, {y}", MONTHS_EN[mi]),
        3 => format!("{}. {d}", MONTHS_AB[mi]),
        4 => format!("{d} {} {y}", MONTHS_EN[mi]),
        5 => format!("{y}-{m:02}-{d:02}"),
        _ => format!("{} {y}", MONTHS_EN[mi]),
    }
}

fn mrn(r: &mut Rng) -> String {
    match r.below(4) {
        0 => format!("{}", r.range(10_000_000, 99_999_999)),
        1 => format!("{}{}", r.pick(&["A", "MR", "H"]), r.digits(7)),
        2 => format!("{}-{}", r.digits(2), r.digits(6)),
        _ => r.digits(8),
    }
}

const KO_TRAPS: &[&str] = &[
    "이상 소견 없음.",
    "정상 범위 내 검사 결과.",
    "조영제 투여 후 이상 반응 없음.",
    "신장 170cm, 체중 65kg.",
    "전신 쇠약감 호소.",
    "한쪽 다리 부종 관찰됨.",
    "고혈압 환자로 아스피린 100mg 1일 1회 복용 중.",
    "당뇨병 환자 교육 시행함.",
    "혈압 130/80 mmHg, 맥박 78회/분, 체온 36.8도, 호흡 18회/분.",
    "HbA1c 7.2%, Cr 1.2 mg/dL, Hb 11.5 g/dL, WBC 8,400/uL.",
    "진단: E11.9 제2형 당뇨병, I10 본태성 고혈압, K29.7 위염.",
    "67세 남자 환자.",
    "2주 후 외래 추적 예정.",
    "정상 환자군과 비교하였음.",
    "신장 기능 저하 소견 보임.",
    "전원 환자로 응급실 내원함.",
    "세프트리악손 2g 정맥 주사 1일 1회.",
    "조영제 알레르기 없음.",
    "신경과 협진 의뢰함.",
    "안정 가료 중.",
    "3일간 고열 지속됨.",
    "이상 반응 모니터링 중.",
    "정상 심전도 소견.",
    "전신마취 하에 수술 시행.",
    "한쪽 눈 시력 저하.",
    "조영제 사용 CT 검사 예정.",
    "신장 초음파 정상.",
    "메트포르민 500mg 1일 2회 경구 투여.",
    "Parkinson's disease 과거력 있음.",
    "Murphy's sign 양성.",
    "수액 1,000mL/day 투여.",
    "SpO2 97%, 실내 공기.",
    "흉부 X-ray 상 이상 없음.",
    "간기능 검사 AST 32, ALT 28 U/L.",
    "장기 입원 환자로 욕창 예방 교육.",
    "고령 환자로 낙상 주의.",
    "신경학적 이상 없음.",
];

const EN_TRAPS: &[&str] = &[
    "History of Parkinson's disease and Crohn's disease.",
    "Murphy's sign negative.",
    "Metformin 500 mg PO BID; lisinopril 10 mg daily.",
    "Na 138, K 4.1, Cr 0.9, Hb 12.4, WBC 7.2, Plt 250.",
    "BP 128/76, HR 82, RR 16, SpO2 98% on RA, T 36.8 C.",
    "ICD-10: E11.9, I10, J18.9, N18.3.",
    "Glasgow Coma Scale 15.",
    "Follow up in 2 weeks.",
    "Alzheimer's dementia and Bell's palsy.",
    "Graves' disease, on methimazole 10 mg daily.",
    "Babinski sign absent, Homans sign negative.",
    "Insulin glargine 20 units at bedtime.",
    "Whipple procedure in 2019.",
    "Take 1/2 tablet twice daily.",
    "Apgar scores 8 and 9.",
    "He is a 67-year-old man.",
    "Hodgkin lymphoma, stage II.",
    "Cushing syndrome was ruled out.",
    "Troponin 0.02 ng/mL, BNP 340 pg/mL.",
    "Heparin 5000 units SC q8h.",
    "Foley catheter removed.",
    "Down syndrome, status post repair of VSD.",
    "Tylenol 650 mg q6h PRN pain.",
    "INR 1.1, PTT 32 seconds.",
];

const RELATIONS_KO: &[&str] = &["배우자", "아들", "딸", "며느리", "모친", "부친"];
const RELATIONS_EN: &[&str] = &["daughter", "son", "wife", "husband", "sister", "mother"];

fn korean_note(r: &mut Rng, id: usize) -> GoldNote {
    let mut b = Builder {
        text: String::new(),
        chars: 0,
        gold: Vec::new(),
    };
    let name = ko_name(r);
    let mrn_v = mrn(r);
    let mut known = Vec::new();
    // Header.
    match r.below(4) {
        3 if r.chance(30) => {
            // A document title that starts with the name (OMOP note_title).
            b.phi(PhiType::Name, &name);
            b.lit(r.pick(&[" 경과기록\n", " 퇴원요약\n", " 입원기록\n"]));
            b.lit("등록번호 ");
            b.phi(PhiType::Mrn, &mrn_v);
            b.lit("\n");
        }
        3 => {
            // A role word and a bare name, no colon.
            b.lit(r.pick(&["환자 ", "환자분 ", "[입원] 환자 "]));
            b.phi(PhiType::Name, &name);
            b.lit(" (등록번호 ");
            b.phi(PhiType::Mrn, &mrn_v);
            b.lit(")\n");
        }
        0 => {
            b.lit("환자명: ");
            b.phi(PhiType::Name, &name);
            b.lit("\n등록번호: ");
            b.phi(PhiType::Mrn, &mrn_v);
            b.lit("\n");
        }
        1 => {
            b.lit("[경과기록] 병록번호 ");
            b.phi(PhiType::Mrn, &mrn_v);
            b.lit(" / 성명 ");
            b.phi(PhiType::Name, &name);
            b.lit("\n");
        }
        _ => {
            b.lit("환자번호 #");
            b.phi(PhiType::Mrn, &mrn_v);
            b.lit("\n");
            b.phi(PhiType::Name, &name);
            b.lit(r.pick(&["님은 ", " 환자는 ", " 씨는 ", " 환자분께서 "]));
            b.lit("내원하셨음.\n");
        }
    }
    if r.chance(30) {
        known.push((PhiType::Name, name.clone()));
    }
    let n = 5 + r.below(6);
    for _ in 0..n {
        match r.below(17) {
            0 => {
                b.lit("주민등록번호 ");
                b.phi(PhiType::Rrn, &rrn(r));
                b.lit(" 확인함.\n");
            }
            1 => {
                let g = ko_name(r);
                b.lit("보호자 ");
                b.phi(PhiType::Name, &g);
                b.lit(r.pick(&["님(", "씨 (", " ("]));
                b.lit(r.pick(RELATIONS_KO));
                b.lit(") 연락처 ");
                b.phi(PhiType::Phone, &phone_ko(r));
                b.lit(".\n");
            }
            2 => {
                b.lit(r.pick(&["주소: ", "거주지 ", "현 주소지는 "]));
                b.phi(PhiType::Address, &addr_ko(r));
                b.lit(r.pick(&["\n", " 입니다.\n", "(자택).\n"]));
            }
            3 => {
                b.phi(PhiType::Date, &date_ko(r));
                b.lit(r.pick(&[
                    " 외래 방문하였음.\n",
                    "부터 흉통 호소.\n",
                    "에 수술 시행함.\n",
                ]));
            }
            4 => {
                b.lit(r.pick(&["담당의: ", "주치의 ", "작성자: ", "판독의 "]));
                b.phi(PhiType::Name, &ko_name(r));
                b.lit(r.pick(&[" 교수\n", "\n", " 선생님\n", " (서명)\n"]));
            }
            5 => {
                b.lit("이메일 ");
                let e = format!(
                    "{}{}@{}",
                    r.pick(&["kim", "lee", "park.j", "mj_choi", "health"]),
                    r.digits(3),
                    r.pick(&["naver.com", "gmail.com", "daum.net", "snuh.org"])
                );
                b.phi(PhiType::Email, &e);
                b.lit("로 결과지 송부 요청.\n");
            }
            6 => {
                b.lit("검사 결과 조회 ");
                let u = format!(
                    "{}{}/{}",
                    r.pick(&["https://portal.", "http://www.", "www."]),
                    r.pick(&["snuh.org", "amc.seoul.kr", "cmc.or.kr"]),
                    r.digits(6)
                );
                b.phi(PhiType::Url, &u);
                b.lit(r.pick(&["\n", "에서 확인.\n"]));
            }
            7 => {
                b.lit("접속 IP ");
                let ip = ip(r);
                b.phi(PhiType::Ip, &ip);
                b.lit("에서 기록 열람.\n");
            }
            8 => {
                let (label, v) = match r.below(5) {
                    0 => (
                        "건강보험증번호 ",
                        format!("{}", r.range(10_000_000, 99_999_999)) + &r.digits(3),
                    ),
                    1 => ("여권번호: ", format!("M{}", r.digits(8))),
                    2 => (
                        "차량번호 ",
                        format!(
                            "{}{} {}",
                            r.range(10, 399),
                            r.pick(&["가", "나", "더", "로", "보", "수", "허"]),
                            r.digits(4)
                        ),
                    ),
                    3 => (
                        "계좌번호: 국민은행 ",
                        format!("{}-{}-{}", r.digits(3), r.digits(2), r.digits(6)),
                    ),
                    _ => (
                        "운전면허번호 ",
                        format!(
                            "{}-{}-{}-{}",
                            r.range(11, 28),
                            r.digits(2),
                            r.digits(6),
                            r.digits(2)
                        ),
                    ),
                };
                b.lit(label);
                b.phi(PhiType::Id, &v);
                b.lit("\n");
            }
            9 => {
                b.lit(r.pick(&["", "만 "]));
                b.phi(PhiType::Age, &r.range(90, 104).to_string());
                b.lit("세 고령으로 보호자 동반 필요.\n");
            }
            10 => {
                // The patient's name again, bare with a particle: found by propagation.
                b.phi(PhiType::Name, &name);
                b.lit(r.pick(&["은 어제보다 호전됨.\n", "의 통증 감소.\n", "에게 설명함.\n"]));
            }
            11 => {
                b.lit("휴대폰 ");
                let p = phone_ko(r);
                if r.chance(30) {
                    known.push((PhiType::Phone, p.clone()));
                }
                b.phi(PhiType::Phone, &p);
                b.lit("로 연락 바람.\n");
            }
            12 => {
                b.phi(PhiType::Name, &ko_name(r));
                b.lit(r.pick(&[" 간호사 확인함.\n", " 전공의 처방.\n", "님께 설명함.\n"]));
            }
            13 => {
                b.lit("Dr. ");
                b.phi(PhiType::Name, r.pick(EN_LAST));
                b.lit("에게 협진 의뢰.\n");
            }
            _ => {
                b.lit(r.pick(KO_TRAPS));
                b.lit("\n");
            }
        }
    }
    GoldNote {
        id: format!("ko-{id:06}"),
        lang: "ko",
        text: b.text,
        patient_id: mrn_v,
        known,
        gold: b.gold,
    }
}

fn english_note(r: &mut Rng, id: usize) -> GoldNote {
    let mut b = Builder {
        text: String::new(),
        chars: 0,
        gold: Vec::new(),
    };
    let p = en_name(r, true);
    let mrn_v = mrn(r);
    let mut known = Vec::new();
    match r.below(3) {
        0 => {
            b.lit("Patient: ");
            b.phi(PhiType::Name, &format!("{}, {}", p.last, p.first));
            b.lit("    MRN: ");
            b.phi(PhiType::Mrn, &mrn_v);
            b.lit("\n");
        }
        1 => {
            b.lit("Name: ");
            b.phi(
                PhiType::Name,
                &format!("{} {}. {}", p.first, p.initial, p.last),
            );
            b.lit("\nMedical Record Number ");
            b.phi(PhiType::Mrn, &mrn_v);
            b.lit("\n");
        }
        _ => {
            b.lit("MRN #");
            b.phi(PhiType::Mrn, &mrn_v);
            b.lit("\n");
            b.lit(r.pick(&["Mr. ", "Mrs. ", "Ms. "]));
            b.phi(PhiType::Name, p.last);
            b.lit(" presents for follow-up.\n");
        }
    }
    if r.chance(30) {
        known.push((PhiType::Name, format!("{} {}", p.first, p.last)));
    }
    let n = 5 + r.below(6);
    for _ in 0..n {
        match r.below(16) {
            0 => {
                b.lit("DOB: ");
                b.phi(PhiType::Date, &date_en(r));
                b.lit(".\n");
            }
            1 => {
                let c = en_name(r, false);
                b.lit("Emergency contact: ");
                b.phi(PhiType::Name, &format!("{} {}", c.first, c.last));
                b.lit(&format!(" ({}), phone ", r.pick(RELATIONS_EN)));
                b.phi(PhiType::Phone, &phone_us(r));
                b.lit(".\n");
            }
            2 => {
                b.lit(r.pick(&["Address: ", "Lives at ", "Home address "]));
                b.phi(PhiType::Address, &addr_us(r));
                b.lit(".\n");
            }
            3 => {
                b.lit(r.pick(&[
                    "Seen today with Dr. ",
                    "Discussed with Dr. ",
                    "Referred to Dr. ",
                ]));
                let d = en_name(r, true);
                if r.chance(50) {
                    b.phi(PhiType::Name, &format!("{} {}", d.first, d.last));
                } else {
                    b.phi(PhiType::Name, d.last);
                }
                b.lit(".\n");
            }
            4 => {
                let d = en_name(r, true);
                b.lit("Electronically signed by ");
                b.phi(
                    PhiType::Name,
                    &format!("{} {}. {}", d.first, d.initial, d.last),
                );
                b.lit(", MD on ");
                b.phi(PhiType::Date, &date_en(r));
                b.lit(".\n");
            }
            5 => {
                b.lit("Email: ");
                let e = format!(
                    "{}.{}{}@{}",
                    p.first.to_lowercase(),
                    r.pick(&["j", "m", "k"]),
                    r.digits(2),
                    r.pick(&["gmail.com", "yahoo.com", "example.net", "mgh.harvard.edu"])
                );
                b.phi(PhiType::Email, &e);
                b.lit("\n");
            }
            6 => {
                b.lit("Patient portal: ");
                let u = format!(
                    "https://{}/{}",
                    r.pick(&["mychart.example.org", "portal.mayo.edu", "www.health.gov"]),
                    r.digits(7)
                );
                b.phi(PhiType::Url, &u);
                b.lit("\n");
            }
            7 => {
                b.lit("Accessed from ");
                let ip = ip(r);
                b.phi(PhiType::Ip, &ip);
                b.lit(".\n");
            }
            8 => {
                let (label, v) = match r.below(4) {
                    0 => (
                        "SSN ",
                        format!(
                            "{}-{}-{}",
                            r.range(100, 665),
                            r.digits(2),
                            r.range(1000, 9999)
                        ),
                    ),
                    1 => (
                        "Insurance ID: ",
                        format!("{}{}", r.pick(&["XKJ", "BCB", "UHC"]), r.digits(9)),
                    ),
                    2 => (
                        "Passport No. ",
                        format!("{}", r.range(100_000_000, 999_999_999)),
                    ),
                    _ => ("License No: ", format!("D{}", r.digits(7))),
                };
                b.lit(label);
                b.phi(PhiType::Id, &v);
                b.lit("\n");
            }
            9 => {
                b.lit(r.pick(&["The patient is a ", "She is a ", "He is a "]));
                b.phi(PhiType::Age, &r.range(90, 104).to_string());
                b.lit(r.pick(&["-year-old ", " year old ", " y/o "]));
                b.lit("with dementia.\n");
            }
            10 => {
                b.phi(PhiType::Name, p.last);
                b.lit(r.pick(&[
                    " tolerated the procedure well.\n",
                    " was counselled on diet.\n",
                ]));
            }
            11 => {
                b.lit("Admitted on ");
                b.phi(PhiType::Date, &date_en(r));
                b.lit(" and discharged on ");
                b.phi(PhiType::Date, &date_en(r));
                b.lit(".\n");
            }
            12 => {
                let c = en_name(r, false);
                b.phi(PhiType::Name, &format!("{} {}", c.first, c.last));
                b.lit(r.pick(&[" (RN) administered the dose.\n", " called the family.\n"]));
            }
            13 => {
                b.lit("Call back at ");
                let ph = phone_us(r);
                if r.chance(30) {
                    known.push((PhiType::Phone, ph.clone()));
                }
                b.phi(PhiType::Phone, &ph);
                b.lit(".\n");
            }
            _ => {
                b.lit(r.pick(EN_TRAPS));
                b.lit("\n");
            }
        }
    }
    GoldNote {
        id: format!("en-{id:06}"),
        lang: "en",
        text: b.text,
        patient_id: mrn_v,
        known,
        gold: b.gold,
    }
}

/// Which languages to generate.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CorpusLang {
    Ko,
    En,
    Mixed,
}

/// Generates `n` notes from `seed`; `Mixed` alternates Korean and English.
pub fn generate(seed: u64, n: usize, lang: CorpusLang) -> Vec<GoldNote> {
    let mut r = Rng::new(seed);
    (0..n)
        .map(|i| match lang {
            CorpusLang::Ko => korean_note(&mut r, i),
            CorpusLang::En => english_note(&mut r, i),
            CorpusLang::Mixed if i % 2 == 0 => korean_note(&mut r, i),
            CorpusLang::Mixed => english_note(&mut r, i),
        })
        .collect()
}

/// Streams notes for large benchmark files without holding them all.
pub fn generate_iter(seed: u64, lang: CorpusLang) -> impl Iterator<Item = GoldNote> {
    let mut r = Rng::new(seed);
    (0..).map(move |i| match lang {
        CorpusLang::Ko => korean_note(&mut r, i),
        CorpusLang::En => english_note(&mut r, i),
        CorpusLang::Mixed if i % 2 == 0 => korean_note(&mut r, i),
        CorpusLang::Mixed => english_note(&mut r, i),
    })
}

/// An IPv4 address, or one time in four an IPv6 one (full or compressed).
fn ip(r: &mut Rng) -> String {
    if r.chance(25) {
        let g: Vec<String> = (0..8)
            .map(|_| format!("{:x}", r.range(0, 0xffff)))
            .collect();
        if r.chance(50) {
            g.join(":")
        } else {
            format!("2001:db8:{}::{}:{}", g[2], g[6], g[7])
        }
    } else {
        format!(
            "{}.{}.{}.{}",
            r.range(1, 223),
            r.range(0, 255),
            r.range(0, 255),
            r.range(1, 254)
        )
    }
}
