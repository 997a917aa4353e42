//! The pattern table: every rule of the detector as one regular expression
//! plus the `Rule` that checks and trims its matches.
//!
//! All patterns are compiled into one multi-pattern regex (regex-automata's
//! meta engine), so a note is scanned once by a lazy DFA whatever the number
//! of rules, and each match says which rule found it. Patterns use no word
//! boundaries (a Unicode `\b` would push the engine off the DFA); the rules
//! check their boundaries themselves.

use super::lexicon::{
    EN_FIRST_NAMES, ID_LABELS, KO_COMPOUND_SURNAMES, KO_GIVEN_SYLLABLES, KO_HONORIFICS,
    KO_NAME_LABELS_STRONG, KO_SURNAMES, MRN_LABELS,
};
use super::Lang;

/// What a pattern's matches are, and how its rule checks them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Rule {
    Email,
    Url,
    Ip,
    Ipv6,
    Rrn,
    Card,
    Ssn,
    KoDriverLicence,
    PhoneKo,
    PhoneUs,
    /// A label, then the identifier (MRN).
    MrnLabel,
    /// A label, then the identifier (ID).
    IdLabel,
    KoPlate,
    DateKo,
    DateNumeric,
    DateEnglish,
    AgeNumberFirst,
    AgeLabelFirst,
    AddressKo,
    AddressKoDistrict,
    AddressUs,
    PoBox,
    KoNameHonorific,
    KoNameLabel,
    EnNameTitle,
    EnNameLabel,
    EnNameCredential,
    EnNameFirstLast,
    EnNameLastFirst,
    EnNameInitial,
}

impl Rule {
    /// A short stable name, shown by `--explain`.
    pub fn name(self) -> &'static str {
        match self {
            Rule::Email => "email",
            Rule::Url => "url",
            Rule::Ip => "ipv4",
            Rule::Ipv6 => "ipv6",
            Rule::Rrn => "rrn",
            Rule::Card => "card-number",
            Rule::Ssn => "us-ssn",
            Rule::KoDriverLicence => "ko-driver-licence",
            Rule::PhoneKo => "phone-ko",
            Rule::PhoneUs => "phone-us",
            Rule::MrnLabel => "mrn-after-label",
            Rule::IdLabel => "id-after-label",
            Rule::KoPlate => "ko-vehicle-plate",
            Rule::DateKo => "date-ko",
            Rule::DateNumeric => "date-numeric",
            Rule::DateEnglish => "date-en",
            Rule::AgeNumberFirst => "age-over-89",
            Rule::AgeLabelFirst => "age-over-89-after-label",
            Rule::AddressKo => "address-ko",
            Rule::AddressKoDistrict => "address-ko-district",
            Rule::AddressUs => "address-us",
            Rule::PoBox => "address-po-box",
            Rule::KoNameHonorific => "name-ko-honorific",
            Rule::KoNameLabel => "name-ko-label",
            Rule::EnNameTitle => "name-en-title",
            Rule::EnNameLabel => "name-en-label",
            Rule::EnNameCredential => "name-en-credential",
            Rule::EnNameFirstLast => "name-en-first-last",
            Rule::EnNameLastFirst => "name-en-last-comma-first",
            Rule::EnNameInitial => "name-en-middle-initial",
        }
    }

    fn korean_only(self) -> bool {
        matches!(
            self,
            Rule::KoPlate
                | Rule::AddressKo
                | Rule::AddressKoDistrict
                | Rule::KoNameHonorific
                | Rule::KoNameLabel
                | Rule::DateKo
                | Rule::KoDriverLicence
        )
    }

    fn english_only(self) -> bool {
        matches!(
            self,
            Rule::EnNameTitle
                | Rule::EnNameLabel
                | Rule::EnNameCredential
                | Rule::EnNameFirstLast
                | Rule::EnNameLastFirst
                | Rule::EnNameInitial
                | Rule::AddressUs
                | Rule::PoBox
                | Rule::DateEnglish
                | Rule::PhoneUs
                | Rule::Ssn
        )
    }

    pub(crate) fn enabled(self, lang: Lang) -> bool {
        match lang {
            Lang::Auto => true,
            Lang::Ko => !self.english_only() || matches!(self, Rule::DateEnglish),
            Lang::En => !self.korean_only(),
        }
    }
}

fn alt(words: &[&str]) -> String {
    let mut sorted: Vec<&str> = words.to_vec();
    // Longest first: the meta regex is leftmost-first, like a backtracker.
    sorted.sort_by_key(|w| std::cmp::Reverse(w.chars().count()));
    let escaped: Vec<String> = sorted
        .iter()
        .map(|w| regex_escape(w).replace(' ', "[ ]?"))
        .collect();
    format!("(?:{})", escaped.join("|"))
}

fn regex_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        if "\\.+*?()|[]{}^$#&-~'".contains(c) {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

const SEP: &str = "[ .\\-]?";
const SIDO: &str = "(?:서울특별시|서울시|서울|부산광역시|부산시|부산|대구광역시|대구시|대구|인천광역시|인천시|인천|광주광역시|광주시|광주|대전광역시|대전시|대전|울산광역시|울산시|울산|세종특별자치시|세종시|세종|경기도|경기|강원특별자치도|강원도|강원|충청북도|충북|충청남도|충남|전북특별자치도|전라북도|전북|전라남도|전남|경상북도|경북|경상남도|경남|제주특별자치도|제주도|제주)";
const MONTHS: &str = "(?:January|February|March|April|May|June|July|August|September|October|November|December|Jan|Feb|Mar|Apr|Jun|Jul|Aug|Sept|Sep|Oct|Nov|Dec)";

/// Builds the (rule, pattern) table. Order matters: at one starting point the
/// earlier pattern wins.
pub(crate) fn table() -> Vec<(Rule, String)> {
    let surname = format!(
        "(?:{}|{})",
        KO_COMPOUND_SURNAMES.join("|"),
        KO_SURNAMES.join("|")
    );
    let given = format!("[{KO_GIVEN_SYLLABLES}]");
    let honorific = alt(KO_HONORIFICS);
    let name_label = alt(KO_NAME_LABELS_STRONG);
    let mrn_label = alt(MRN_LABELS);
    let id_label = alt(ID_LABELS);
    let first = alt(EN_FIRST_NAMES);
    let cap = "(?:[A-Z]'|Ma?c)?[A-Z][a-z]+(?:-[A-Z][a-z]+)?";
    let label_sep = "[ ]?(?:[:：#]|No\\.?|번호)?[ ]?(?:[:：#][ ]?)?";
    let road = "[가-힣0-9]{1,12}(?:대로|로|길)[ ]?[0-9]{1,4}(?:-[0-9]{1,4})?";
    let lot = "[가-힣0-9]{1,8}(?:동|읍|면|리|가)[ ]?[0-9]{1,4}(?:-[0-9]{1,4})?(?:번지)?";
    let unit = "(?:,?[ ]?(?:[0-9]{1,4}동[ ]?)?[0-9]{1,5}호|,?[ ]?[0-9]{1,3}층|,?[ ]?[가-힣A-Za-z0-9]{1,15}(?:아파트|빌라|오피스텔|타워|맨션)(?:[ ]?[0-9]{1,4}동)?(?:[ ]?[0-9]{1,5}호)?|[ ]?\\([가-힣0-9]{1,10}(?:동|가|리)(?:,[ ]?[가-힣0-9 ]{1,20})?\\))*";
    let us_suffix = "(?:Street|St|Avenue|Ave|Road|Rd|Boulevard|Blvd|Lane|Ln|Drive|Dr|Court|Ct|Way|Place|Pl|Terrace|Ter|Circle|Cir|Parkway|Pkwy|Highway|Hwy)";
    vec![
        (Rule::Email, "[A-Za-z0-9._%+\\-]+@[A-Za-z0-9\\-]+(?:\\.[A-Za-z0-9\\-]+)*\\.[A-Za-z]{2,}".into()),
        (Rule::Url, "(?:[Hh][Tt][Tt][Pp][Ss]?://|www\\.)[^\\s<>\"'\\[\\]{}|\\\\^`]+".into()),
        (Rule::Ip, "[0-9]{1,3}\\.[0-9]{1,3}\\.[0-9]{1,3}\\.[0-9]{1,3}".into()),
        (Rule::MrnLabel, format!("{mrn_label}{label_sep}([A-Za-z]{{0,3}}-?[0-9][0-9\\-]{{3,14}})")),
        (Rule::IdLabel, format!("{id_label}{label_sep}(?:[가-힣A-Za-z]{{1,12}}[ ])?([A-Za-z0-9][A-Za-z0-9\\-]*(?:[ ]?[가-힣][ ]?[0-9]{{4}})?)")),
        (Rule::Rrn, "[0-9]{6}[ ]?[-–][ ]?[0-9][0-9*]{6}|[0-9]{13}".into()),
        (Rule::Card, "[0-9]{4}[ \\-][0-9]{4}[ \\-][0-9]{4}[ \\-][0-9]{4}".into()),
        (Rule::KoDriverLicence, "[0-9]{2}-[0-9]{2}-[0-9]{6}-[0-9]{2}".into()),
        (Rule::Ssn, "[0-9]{3}-[0-9]{2}-[0-9]{4}".into()),
        (Rule::PhoneKo, format!("\\+[ ]?82{SEP}(?:\\(0\\))?{SEP}(?:1[016789]|2|3[1-3]|4[1-4]|5[1-5]|6[1-4]|70){SEP}[0-9]{{3,4}}{SEP}[0-9]{{4}}|\\(?0(?:1[016789]|2|3[1-3]|4[1-4]|5[1-5]|6[1-4]|70|50[0-9])\\)?{SEP}[0-9]{{3,4}}{SEP}[0-9]{{4}}|1[568][0-9]{{2}}[.\\-][0-9]{{4}}")),
        (Rule::PhoneUs, "(?:\\+1[ .\\-]?)?(?:\\([2-9][0-9]{2}\\)[ ]?|[2-9][0-9]{2}[ .\\-])[2-9][0-9]{2}[ .\\-][0-9]{4}".into()),
        (Rule::DateKo, "(?:[0-9]{4}|'[0-9]{2})[ ]?년[ ]?[0-9]{1,2}[ ]?월(?:[ ]?[0-9]{1,2}[ ]?일)?|[0-9]{1,2}[ ]?월[ ]?[0-9]{1,2}[ ]?일".into()),
        (Rule::DateNumeric, "(?:19|20)[0-9]{2}[.\\-/][ ]?[0-9]{1,2}[.\\-/][ ]?[0-9]{1,2}\\.?|['’][0-9]{2}[.\\-/][0-9]{1,2}[.\\-/][0-9]{1,2}|[0-9]{1,2}/[0-9]{1,2}/(?:19|20)?[0-9]{2}|[0-9]{1,2}-[0-9]{1,2}-(?:19|20)[0-9]{2}|[0-9]{1,2}\\.[0-9]{1,2}\\.(?:19|20)[0-9]{2}|(?:19|20)[0-9]{2}(?:0[1-9]|1[0-2])(?:0[1-9]|[12][0-9]|3[01])".into()),
        (Rule::DateEnglish, format!("{MONTHS}\\.?,?[ ](?:19|20)[0-9]{{2}}|{MONTHS}\\.?[ ][0-9]{{1,2}}(?:st|nd|rd|th)?(?:,?[ ](?:19|20)[0-9]{{2}})?|[0-9]{{1,2}}(?:st|nd|rd|th)?[ ](?:of[ ])?{MONTHS}\\.?,?[ ](?:19|20)[0-9]{{2}}")),
        (Rule::KoPlate, "[0-9]{2,3}[ ]?[가나다라마거너더러머버서어저고노도로모보소오조구누두루무부수우주하허호배][ ]?[0-9]{4}".into()),
        (Rule::AgeLabelFirst, "(?:[Aa]ged?|AGE|나이|연령)[ ]?[:：]?[ ]?(9[0-9]|1[0-2][0-9])".into()),
        (Rule::AgeNumberFirst, "(9[0-9]|1[0-2][0-9])(?:[ ]?세|[ -]?(?:years?|yrs?)[ -]?old|[ -]?y/?o|-year)".into()),
        (Rule::AddressKo, format!("{SIDO}[ ]?(?:[가-힣]{{1,6}}(?:시|군|구)[ ]?){{0,3}}(?:{road}|{lot}){unit}")),
        (Rule::AddressKoDistrict, format!("(?:[가-힣]{{2,6}}(?:시|군|구)|[중동서남북]구)[ ](?:[가-힣]{{1,6}}(?:구|군)[ ])?(?:{road}|{lot}){unit}")),
        (Rule::AddressUs, format!("[0-9]{{1,6}}[ ](?:[NSEW]\\.?[ ])?(?:[A-Z][a-z]+[ ]){{1,3}}{us_suffix}\\.?(?:,?[ ](?:Apt|Apartment|Suite|Ste|Unit|#)\\.?[ ]?[A-Za-z0-9\\-]+)?(?:,?[ ](?:[A-Z][a-z]+[ ]){{0,2}}[A-Z][a-z]+,?[ ](?:[A-Z]{{2}}|[A-Z][a-z]+)[ ][0-9]{{5}}(?:-[0-9]{{4}})?)?")),
        (Rule::PoBox, "P\\.?[ ]?O\\.?[ ]Box[ ][0-9]{1,6}".into()),
        (Rule::KoNameLabel, format!("{name_label}[ ]?(?:[:：][ ]?|[ ])([가-힣]{{2,6}})")),
        (Rule::KoNameHonorific, format!("({surname}{given}{{1,3}})[ ]?{honorific}")),
        (Rule::EnNameTitle, format!("(?:Dr|Mr|Mrs|Ms|Miss|Prof|Mx)\\.?[ ]((?:{cap}[ ])?(?:[A-Z]\\.[ ])?{cap})")),
        (Rule::EnNameLabel, format!("(?:Patient|Pt|Name|Patient [Nn]ame|Attending|Attending [Pp]hysician|Physician|Resident|Nurse|Surgeon|PCP|Provider|Referring [Pp]hysician|Referred by|Seen by|Signed by|Dictated by|Transcribed by|Emergency [Cc]ontact|Contact|Guardian|Next of [Kk]in|Spouse|Mother|Father|Wife|Husband|Son|Daughter|Caregiver|cc|CC)[ ]?:[ ]?({cap}(?:,?[ ]{cap})?(?:[ ][A-Z]\\.)?(?:[ ]{cap})?)")),
        (Rule::EnNameCredential, format!("({cap}[ ](?:[A-Z]\\.[ ])?{cap}),?[ ](?:(?:MD|DO|RN|NP|PA-C|PhD|MBBS)(?-u:\\b)|M\\.D\\.)")),
        (Rule::EnNameLastFirst, format!("{cap},[ ]{first}(?:[ ][A-Z]\\.)?")),
        (Rule::EnNameFirstLast, format!("{first}[ ](?:[A-Z]\\.[ ])?{cap}")),
        (Rule::EnNameInitial, format!("{cap}[ ][A-Z]\\.[ ]{cap}")),
        // Last, so it never shadows another rule at the same start. Loose on
        // purpose: the rule parses the match as an address.
        (Rule::Ipv6, "[0-9A-Fa-f]{1,4}(?::[0-9A-Fa-f]{0,4}){2,7}(?:%[0-9A-Za-z]{1,15})?".into()),
    ]
}
