//! A small public study for `mdc demo`: MIT-licensed test files of pydicom
//! and deid-data (see `tests/data/README.md`), embedded so the demo needs no download.
//! One of them is an ultrasound marked BurnedInAnnotation=YES, to show the
//! quarantine path.

/// (file name, bytes) of the demo study.
pub const FILES: [(&str, &[u8]); 4] = [
    ("CT_small.dcm", include_bytes!("../tests/data/CT_small.dcm")),
    ("ctbrain1.dcm", include_bytes!("../tests/data/ctbrain1.dcm")),
    ("chrI2.dcm", include_bytes!("../tests/data/chrI2.dcm")),
    (
        "us_burned_in.dcm",
        include_bytes!("../tests/data/derived_us_burned_in.dcm"),
    ),
];
