//! The SQL guard of governed analysis (issue 6): arbitrary text never panics,
//! and whatever it accepts parses as exactly one query.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(sql) = std::str::from_utf8(data) {
        if mdc_query::guard::check(sql).is_ok() {
            assert!(sql.len() <= mdc_query::guard::MAX_SQL_BYTES);
        }
        let _ = mdc_query::guard::position_of(sql, "from");
    }
});
