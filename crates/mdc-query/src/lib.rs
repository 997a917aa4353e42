//! Governed SQL and disclosure control.
