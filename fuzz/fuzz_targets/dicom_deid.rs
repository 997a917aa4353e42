//! Arbitrary bytes through the whole DICOM de-identification path: preamble,
//! file meta, element headers, sequences at any depth, charsets, pixel data
//! copy. Any input must end in Ok or Err, never a panic, hang or huge allocation.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    // As a whole file, and behind a valid preamble so the fuzzer reaches the
    // dataset parser quickly.
    mdc_dicom::fuzz_one(data);
    let mut f = vec![0u8; 128];
    f.extend_from_slice(b"DICM");
    f.extend_from_slice(data);
    mdc_dicom::fuzz_one(&f);
});
