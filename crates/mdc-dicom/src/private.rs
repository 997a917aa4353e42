//! The Retain Safe Private option's allow-list (PS3.15 §E.3.10).
//!
//! Private attributes are removed by default. With `retain-safe-private`,
//! only the attributes below are kept: acquisition parameters that research
//! needs (diffusion b-values and directions) and that carry no identity.
//! They are a subset of Table E.3.10-1; a private element is matched by its
//! group, its private creator (the block's (gggg,00xx) value) and its element
//! offset within the block, never by its raw tag, because the block number
//! differs between files.

use std::collections::HashSet;

use crate::charset::Charset;
use crate::dataset::Element;

/// One allowed private attribute: group, creator, element offset (the `yy`
/// of `(gggg,xxyy)`).
#[derive(Debug, Clone, Copy)]
pub struct SafeEntry {
    pub group: u16,
    pub creator: &'static str,
    pub offset: u8,
    pub name: &'static str,
}

/// The documented allow-list.
pub const SAFE_PRIVATE: [SafeEntry; 9] = [
    SafeEntry {
        group: 0x0019,
        creator: "SIEMENS MR HEADER",
        offset: 0x0A,
        name: "NumberOfImagesInMosaic",
    },
    SafeEntry {
        group: 0x0019,
        creator: "SIEMENS MR HEADER",
        offset: 0x0B,
        name: "SliceMeasurementDuration",
    },
    SafeEntry {
        group: 0x0019,
        creator: "SIEMENS MR HEADER",
        offset: 0x0C,
        name: "B_value",
    },
    SafeEntry {
        group: 0x0019,
        creator: "SIEMENS MR HEADER",
        offset: 0x0D,
        name: "DiffusionDirectionality",
    },
    SafeEntry {
        group: 0x0019,
        creator: "SIEMENS MR HEADER",
        offset: 0x0E,
        name: "DiffusionGradientDirection",
    },
    SafeEntry {
        group: 0x0019,
        creator: "SIEMENS MR HEADER",
        offset: 0x27,
        name: "B_matrix",
    },
    SafeEntry {
        group: 0x0043,
        creator: "GEMS_PARM_01",
        offset: 0x39,
        name: "Slop_int_6..9 (b-value)",
    },
    SafeEntry {
        group: 0x2001,
        creator: "Philips Imaging DD 001",
        offset: 0x03,
        name: "Diffusion B-Factor",
    },
    SafeEntry {
        group: 0x2001,
        creator: "Philips Imaging DD 001",
        offset: 0x04,
        name: "Diffusion Direction",
    },
];

#[derive(Debug, Clone)]
pub(crate) struct SafePrivate {
    entries: Vec<SafeEntry>,
}

impl SafePrivate {
    pub fn standard() -> Self {
        SafePrivate {
            entries: SAFE_PRIVATE.to_vec(),
        }
    }

    /// Tags of one dataset level to keep: allowed elements and their creators.
    pub fn kept(&self, elements: &[Element], charset: &Charset) -> HashSet<u32> {
        let mut creators: Vec<(u16, u8, String)> = Vec::new();
        for e in elements {
            let (g, el) = ((e.tag >> 16) as u16, (e.tag & 0xFFFF) as u16);
            if g % 2 == 1 && (0x0010..=0x00FF).contains(&el) {
                if let Some(raw) = e.raw() {
                    let name = charset.decode(raw, false);
                    creators.push((g, el as u8, name.trim_matches([' ', '\0']).to_owned()));
                }
            }
        }
        let mut keep = HashSet::new();
        for e in elements {
            let (g, el) = ((e.tag >> 16) as u16, (e.tag & 0xFFFF) as u16);
            if g % 2 == 0 || el < 0x1000 {
                continue;
            }
            let block = (el >> 8) as u8;
            let offset = (el & 0xFF) as u8;
            let Some((_, _, creator)) = creators.iter().find(|(cg, b, _)| *cg == g && *b == block)
            else {
                continue;
            };
            if self
                .entries
                .iter()
                .any(|s| s.group == g && s.offset == offset && s.creator == creator)
            {
                keep.insert(e.tag);
                keep.insert((u32::from(g) << 16) | u32::from(block));
            }
        }
        keep
    }
}
