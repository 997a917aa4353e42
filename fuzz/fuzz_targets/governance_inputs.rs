//! The spine's parsers of outside text: DUO codes, dates, names, roles, and the
//! de-identification manifest. None may panic on any input.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(s) = std::str::from_utf8(data) {
        let _ = mdc_types::DuoList::parse("use", s);
        let _ = mdc_types::parse_date("d", s);
        let _ = mdc_types::Slug::parse("name", s);
        let _ = mdc_types::UserName::parse("user", s);
        let _ = mdc_types::Role::parse_list("roles", s);
        let _ = mdc_types::Pseudonym::parse(s);
    }
    let _ = serde_json::from_slice::<mdc_types::Manifest>(data);
});
