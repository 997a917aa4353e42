//! De-identification engines of mdc. Sans-IO and synchronous: they see values,
//! never files or databases, so they are easy to test and to run on any pool.
//!
//! `pseudonym` holds the keyed pseudonym scheme of DESIGN §4 and the
//! `Pseudonymizer` trait through which every engine gets pseudonyms, whichever
//! mode (keyed or vault) the data root uses.
//!
//! `text` finds and replaces PHI in free-text clinical notes (Korean and English).

pub mod pseudonym;
pub mod structured;
pub mod text;

pub use pseudonym::{
    normalise, Domain, KeyedPseudonymizer, PseudonymError, PseudonymKey, Pseudonymizer, Token,
};
