//! Element tokenising, the in-memory header tree, and its serialisation.
//!
//! Why not dicom-rs's `DataSetReader`: it reads every value into memory,
//! pixel data included. Here the header (everything before Pixel Data) is
//! read into a small tree of raw values, and the reader stops at top-level
//! Pixel Data so the caller can copy those bytes straight through. Values stay
//! raw bytes in the file's own transfer syntax; only the attributes the profile
//! touches are rewritten. Sequences are always written with undefined length,
//! so no length has to be recomputed up the tree after a change.
//!
//! Every length read from outside is checked against what is there: a value
//! is read with `take(len)` (no allocation of a claimed size up front), nested
//! sequences are capped at [`MAX_DEPTH`], and defined-length items must end
//! exactly where they say.

use std::io::{self, Read, Write};

use dicom_core::dictionary::DataDictionary;
use dicom_core::dictionary::DataDictionaryEntry;
use dicom_core::{Tag, VR};
use dicom_dictionary_std::StandardDataDictionary;

pub(crate) const UNDEFINED: u32 = 0xFFFF_FFFF;
const ITEM: u32 = 0xFFFE_E000;
const ITEM_DELIM: u32 = 0xFFFE_E00D;
const SEQ_DELIM: u32 = 0xFFFE_E0DD;
/// Deeper nesting than this is refused (real files stay below 10).
pub(crate) const MAX_DEPTH: usize = 32;

/// Top-level tags whose values are bulk pixel data, streamed not read.
pub(crate) fn is_bulk_pixel_tag(tag: u32) -> bool {
    matches!(tag, 0x7FE0_0010 | 0x7FE0_0008 | 0x7FE0_0009)
}

#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ParseError {
    #[error("the file ends in the middle of an element (truncated)")]
    Truncated,
    #[error("invalid value representation bytes")]
    InvalidVr,
    #[error("broken length: {0}")]
    BadLength(&'static str),
    #[error("sequences nested deeper than {MAX_DEPTH}")]
    TooDeep,
    #[error("a value is too long for its value representation")]
    ValueTooLong,
    #[error("I/O: {0}")]
    Io(#[from] io::Error),
}

/// Byte layout of a dataset: explicit or implicit VR, little or big endian.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Enc {
    pub explicit: bool,
    pub big: bool,
}

impl Enc {
    pub const EXPLICIT_LE: Enc = Enc {
        explicit: true,
        big: false,
    };
    pub const IMPLICIT_LE: Enc = Enc {
        explicit: false,
        big: false,
    };
    fn u16(self, b: [u8; 2]) -> u16 {
        if self.big {
            u16::from_be_bytes(b)
        } else {
            u16::from_le_bytes(b)
        }
    }
    fn u32(self, b: [u8; 4]) -> u32 {
        if self.big {
            u32::from_be_bytes(b)
        } else {
            u32::from_le_bytes(b)
        }
    }
    fn put16(self, v: u16) -> [u8; 2] {
        if self.big {
            v.to_be_bytes()
        } else {
            v.to_le_bytes()
        }
    }
    fn put32(self, v: u32) -> [u8; 4] {
        if self.big {
            v.to_be_bytes()
        } else {
            v.to_le_bytes()
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Value {
    Bytes(Vec<u8>),
    /// Items, and the encoding inside them (implicit LE for UN sequences, CP-246).
    Seq(Vec<Vec<Element>>, Enc),
    /// Encapsulated pixel data inside the header (e.g. an icon): the raw item
    /// stream, sequence delimiter included, written back verbatim.
    Encapsulated(Vec<u8>),
}

#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Element {
    pub tag: u32,
    pub vr: VR,
    pub value: Value,
}

impl Element {
    pub fn bytes(tag: u32, vr: VR, value: impl Into<Vec<u8>>) -> Element {
        Element {
            tag,
            vr,
            value: Value::Bytes(value.into()),
        }
    }
    pub fn group(&self) -> u16 {
        (self.tag >> 16) as u16
    }
    pub fn raw(&self) -> Option<&[u8]> {
        match &self.value {
            Value::Bytes(b) => Some(b),
            _ => None,
        }
    }
}

/// The header of one element as read.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Header {
    pub tag: u32,
    pub vr: VR,
    pub len: u32,
}

/// A reader that counts its position and can give back one tag it read too far.
#[derive(Debug)]
pub(crate) struct Src<R> {
    inner: R,
    pos: u64,
    pending: Option<[u8; 4]>,
}

impl<R: Read> Src<R> {
    pub fn new(inner: R) -> Self {
        Src {
            inner,
            pos: 0,
            pending: None,
        }
    }
    pub fn pos(&self) -> u64 {
        self.pos
    }

    fn exact(&mut self, buf: &mut [u8]) -> Result<(), ParseError> {
        let mut start = 0;
        if let Some(p) = self.pending.take() {
            let n = buf.len().min(4);
            buf[..n].copy_from_slice(&p[..n]);
            start = n;
        }
        match self.inner.read_exact(&mut buf[start..]) {
            Ok(()) => {
                self.pos += (buf.len() - start) as u64;
                Ok(())
            }
            Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => Err(ParseError::Truncated),
            Err(e) => Err(ParseError::Io(e)),
        }
    }

    /// Reads 4 raw tag bytes, or `None` at a clean end of input.
    fn raw_tag(&mut self) -> Result<Option<[u8; 4]>, ParseError> {
        if let Some(p) = self.pending.take() {
            return Ok(Some(p));
        }
        let mut b = [0u8; 4];
        let mut got = 0;
        while got < 4 {
            match self.inner.read(&mut b[got..]) {
                Ok(0) => break,
                Ok(n) => got += n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(ParseError::Io(e)),
            }
        }
        self.pos += got as u64;
        match got {
            0 => Ok(None),
            4 => Ok(Some(b)),
            _ => Err(ParseError::Truncated),
        }
    }

    /// Gives back a tag read too far (it was not this group's).
    fn unread(&mut self, raw: [u8; 4]) {
        self.pos -= 4;
        self.pending = Some(raw);
    }

    pub fn bytes(&mut self, len: u32) -> Result<Vec<u8>, ParseError> {
        let mut v = Vec::new();
        if let Some(p) = self.pending.take() {
            // Only tags are ever pending, and values never start with one.
            v.extend_from_slice(&p);
        }
        let want = u64::from(len).saturating_sub(v.len() as u64);
        let got = (&mut self.inner).take(want).read_to_end(&mut v)?;
        self.pos += got as u64;
        if v.len() as u64 != u64::from(len) {
            return Err(ParseError::Truncated);
        }
        Ok(v)
    }

    /// Copies `len` bytes to `out` without holding them.
    pub fn copy_to(&mut self, len: u64, out: &mut impl Write) -> Result<(), ParseError> {
        // One bounded buffer (at most 256 KiB) whatever the value's length.
        let mut buf = vec![0u8; len.min(1 << 18) as usize];
        let mut left = len;
        while left > 0 {
            let want = left.min(buf.len() as u64) as usize;
            let n = match self.inner.read(&mut buf[..want]) {
                Ok(0) => return Err(ParseError::Truncated),
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(ParseError::Io(e)),
            };
            out.write_all(&buf[..n])?;
            self.pos += n as u64;
            left -= n as u64;
        }
        Ok(())
    }

    fn tag(&mut self, enc: Enc) -> Result<Option<(u32, [u8; 4])>, ParseError> {
        Ok(self.raw_tag()?.map(|b| {
            let g = enc.u16([b[0], b[1]]);
            let e = enc.u16([b[2], b[3]]);
            ((u32::from(g) << 16) | u32::from(e), b)
        }))
    }

    /// Reads the rest of an element header after its tag.
    pub fn header_after_tag(&mut self, tag: u32, enc: Enc) -> Result<Header, ParseError> {
        if tag >> 16 == 0xFFFE {
            let mut l = [0u8; 4];
            self.exact(&mut l)?;
            return Ok(Header {
                tag,
                vr: VR::UN,
                len: enc.u32(l),
            });
        }
        if enc.explicit {
            let mut v = [0u8; 2];
            self.exact(&mut v)?;
            let vr = VR::from_binary(v).ok_or(ParseError::InvalidVr)?;
            let len = if long_length(vr) {
                let mut b = [0u8; 6];
                self.exact(&mut b)?;
                enc.u32([b[2], b[3], b[4], b[5]])
            } else {
                let mut b = [0u8; 2];
                self.exact(&mut b)?;
                u32::from(enc.u16(b))
            };
            Ok(Header { tag, vr, len })
        } else {
            let mut l = [0u8; 4];
            self.exact(&mut l)?;
            let len = enc.u32(l);
            let vr = if len == UNDEFINED && !is_bulk_pixel_tag(tag) {
                VR::SQ
            } else {
                implicit_vr(tag)
            };
            Ok(Header { tag, vr, len })
        }
    }
}

/// VRs whose explicit-VR header has 2 reserved bytes and a 32-bit length.
pub(crate) fn long_length(vr: VR) -> bool {
    matches!(
        vr,
        VR::OB
            | VR::OD
            | VR::OF
            | VR::OL
            | VR::OV
            | VR::OW
            | VR::SQ
            | VR::SV
            | VR::UC
            | VR::UN
            | VR::UR
            | VR::UT
            | VR::UV
    )
}

/// The VR of a tag in an implicit-VR dataset, from the standard dictionary.
pub(crate) fn implicit_vr(tag: u32) -> VR {
    let (g, e) = ((tag >> 16) as u16, (tag & 0xFFFF) as u16);
    if e == 0 {
        return VR::UL;
    }
    if g % 2 == 1 {
        return if (0x0010..=0x00FF).contains(&e) {
            VR::LO
        } else {
            VR::UN
        };
    }
    StandardDataDictionary
        .by_tag(Tag(g, e))
        .map_or(VR::UN, |entry| entry.vr().relaxed())
}

/// The standard keyword of a tag, for the report.
pub(crate) fn keyword(tag: u32) -> Option<&'static str> {
    StandardDataDictionary
        .by_tag(Tag((tag >> 16) as u16, (tag & 0xFFFF) as u16))
        .map(DataDictionaryEntry::alias)
}

/// Where a dataset being read ends.
#[derive(Debug, Clone, Copy)]
enum End {
    /// Top level: the end of input.
    Eof,
    /// A defined-length item: at this absolute position.
    At(u64),
    /// An undefined-length item: at an item delimiter.
    Delimiter,
}

/// What reading a top-level dataset stopped at.
#[derive(Debug)]
pub(crate) struct TopLevel {
    pub elements: Vec<Element>,
    /// The header of top-level pixel data, whose value is still unread.
    pub pixel: Option<Header>,
}

/// Reads a top-level dataset up to (not including) the value of bulk pixel
/// data, or to the end of input.
pub(crate) fn read_top_level<R: Read>(
    src: &mut Src<R>,
    enc: Enc,
    stop_at_pixel: bool,
) -> Result<TopLevel, ParseError> {
    let mut pixel = None;
    let elements = read_dataset(src, enc, End::Eof, 0, stop_at_pixel.then_some(&mut pixel))?;
    Ok(TopLevel { elements, pixel })
}

fn read_dataset<R: Read>(
    src: &mut Src<R>,
    enc: Enc,
    end: End,
    depth: usize,
    mut pixel: Option<&mut Option<Header>>,
) -> Result<Vec<Element>, ParseError> {
    if depth > MAX_DEPTH {
        return Err(ParseError::TooDeep);
    }
    let mut out = Vec::new();
    loop {
        if let End::At(stop) = end {
            if src.pos() == stop {
                return Ok(out);
            }
            if src.pos() > stop {
                return Err(ParseError::BadLength("an item overruns its length"));
            }
        }
        let Some((tag, _)) = src.tag(enc)? else {
            return match end {
                End::Eof => Ok(out),
                _ => Err(ParseError::Truncated),
            };
        };
        if tag == ITEM_DELIM {
            let h = src.header_after_tag(tag, enc)?;
            if h.len != 0 {
                return Err(ParseError::BadLength("item delimiter with a length"));
            }
            return match end {
                End::Delimiter => Ok(out),
                _ => Err(ParseError::BadLength("unexpected item delimiter")),
            };
        }
        if tag >> 16 == 0xFFFE {
            // Top-level trailing padding after a sequence delimiter is not
            // valid; treat it as broken structure.
            return Err(ParseError::BadLength("item tag outside a sequence"));
        }
        let h = src.header_after_tag(tag, enc)?;
        if let Some(slot) = pixel.as_deref_mut() {
            if depth == 0 && is_bulk_pixel_tag(tag) {
                *slot = Some(h);
                return Ok(out);
            }
        }
        out.push(read_value(src, enc, h, depth)?);
    }
}

fn read_value<R: Read>(
    src: &mut Src<R>,
    enc: Enc,
    h: Header,
    depth: usize,
) -> Result<Element, ParseError> {
    let value = if h.vr == VR::SQ || (h.vr == VR::UN && h.len == UNDEFINED) {
        // CP-246: an undefined-length UN is a sequence in implicit VR LE.
        let inner = if h.vr == VR::UN {
            Enc::IMPLICIT_LE
        } else {
            enc
        };
        Value::Seq(read_items(src, inner, h.len, depth + 1)?, inner)
    } else if h.len == UNDEFINED {
        if !matches!(h.vr, VR::OB | VR::OW) {
            return Err(ParseError::BadLength("undefined length on a non-sequence"));
        }
        let mut raw = Vec::new();
        copy_fragments(src, enc, &mut raw)?;
        Value::Encapsulated(raw)
    } else {
        Value::Bytes(src.bytes(h.len)?)
    };
    Ok(Element {
        tag: h.tag,
        vr: h.vr,
        value,
    })
}

fn read_items<R: Read>(
    src: &mut Src<R>,
    enc: Enc,
    len: u32,
    depth: usize,
) -> Result<Vec<Vec<Element>>, ParseError> {
    if depth > MAX_DEPTH {
        return Err(ParseError::TooDeep);
    }
    let stop = (len != UNDEFINED).then(|| src.pos() + u64::from(len));
    let mut items = Vec::new();
    loop {
        if let Some(stop) = stop {
            if src.pos() == stop {
                return Ok(items);
            }
            if src.pos() > stop {
                return Err(ParseError::BadLength("a sequence overruns its length"));
            }
        }
        let Some((tag, _)) = src.tag(enc)? else {
            return Err(ParseError::Truncated);
        };
        let h = src.header_after_tag(tag, enc)?;
        match tag {
            SEQ_DELIM if stop.is_none() => return Ok(items),
            ITEM => {
                let end = if h.len == UNDEFINED {
                    End::Delimiter
                } else {
                    End::At(src.pos() + u64::from(h.len))
                };
                items.push(read_dataset(src, enc, end, depth, None)?);
            }
            _ => return Err(ParseError::BadLength("expected an item in a sequence")),
        }
    }
}

/// Copies an encapsulated pixel data item stream (items then a sequence
/// delimiter) from `src` to `out`, re-encoding nothing.
pub(crate) fn copy_fragments<R: Read>(
    src: &mut Src<R>,
    enc: Enc,
    out: &mut impl Write,
) -> Result<(), ParseError> {
    loop {
        let Some((tag, raw)) = src.tag(enc)? else {
            return Err(ParseError::Truncated);
        };
        let mut l = [0u8; 4];
        src.exact(&mut l)?;
        let len = enc.u32(l);
        out.write_all(&raw)?;
        out.write_all(&l)?;
        match tag {
            ITEM if len != UNDEFINED => src.copy_to(u64::from(len), out)?,
            SEQ_DELIM => return Ok(()),
            _ => return Err(ParseError::BadLength("broken encapsulated pixel data")),
        }
    }
}

/// Reads the file meta group (explicit VR LE) after `DICM`: every group 0002
/// element, stopping before the first element of another group.
pub(crate) fn read_meta<R: Read>(src: &mut Src<R>) -> Result<Vec<Element>, ParseError> {
    let enc = Enc::EXPLICIT_LE;
    let mut out = Vec::new();
    while let Some((tag, raw)) = src.tag(enc)? {
        if tag >> 16 != 0x0002 {
            src.unread(raw);
            break;
        }
        let h = src.header_after_tag(tag, enc)?;
        if h.len == UNDEFINED {
            return Err(ParseError::BadLength("undefined length in file meta"));
        }
        out.push(Element::bytes(tag, h.vr, src.bytes(h.len)?));
    }
    Ok(out)
}

fn pad_byte(vr: VR) -> u8 {
    match vr {
        VR::AE
        | VR::AS
        | VR::CS
        | VR::DA
        | VR::DS
        | VR::DT
        | VR::IS
        | VR::LO
        | VR::LT
        | VR::PN
        | VR::SH
        | VR::ST
        | VR::TM
        | VR::UC
        | VR::UR
        | VR::UT => b' ',
        _ => 0,
    }
}

/// Writes one element header.
pub(crate) fn write_header(
    out: &mut impl Write,
    enc: Enc,
    tag: u32,
    vr: VR,
    len: u32,
) -> Result<(), ParseError> {
    out.write_all(&enc.put16((tag >> 16) as u16))?;
    out.write_all(&enc.put16((tag & 0xFFFF) as u16))?;
    if enc.explicit && tag >> 16 != 0xFFFE {
        out.write_all(&vr.to_bytes())?;
        if long_length(vr) {
            out.write_all(&[0, 0])?;
            out.write_all(&enc.put32(len))?;
        } else {
            let short = u16::try_from(len).map_err(|_| ParseError::ValueTooLong)?;
            out.write_all(&enc.put16(short))?;
        }
    } else {
        out.write_all(&enc.put32(len))?;
    }
    Ok(())
}

pub(crate) fn write_dataset(
    out: &mut impl Write,
    enc: Enc,
    elements: &[Element],
) -> Result<(), ParseError> {
    for el in elements {
        write_element(out, enc, el)?;
    }
    Ok(())
}

pub(crate) fn write_element(
    out: &mut impl Write,
    enc: Enc,
    el: &Element,
) -> Result<(), ParseError> {
    match &el.value {
        Value::Bytes(b) => {
            let odd = b.len() % 2 == 1;
            let len =
                u32::try_from(b.len() + usize::from(odd)).map_err(|_| ParseError::ValueTooLong)?;
            if len == UNDEFINED {
                return Err(ParseError::ValueTooLong);
            }
            write_header(out, enc, el.tag, el.vr, len)?;
            out.write_all(b)?;
            if odd {
                out.write_all(&[pad_byte(el.vr)])?;
            }
        }
        Value::Seq(items, inner) => {
            write_header(out, enc, el.tag, el.vr, UNDEFINED)?;
            for item in items {
                write_header(out, enc, ITEM, VR::UN, UNDEFINED)?;
                write_dataset(out, *inner, item)?;
                write_header(out, enc, ITEM_DELIM, VR::UN, 0)?;
            }
            write_header(out, enc, SEQ_DELIM, VR::UN, 0)?;
        }
        Value::Encapsulated(raw) => {
            write_header(out, enc, el.tag, el.vr, UNDEFINED)?;
            out.write_all(raw)?;
        }
    }
    Ok(())
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn round_trip(enc: Enc, elements: &[Element]) -> Vec<Element> {
        let mut buf = Vec::new();
        write_dataset(&mut buf, enc, elements).unwrap();
        let mut src = Src::new(&buf[..]);
        read_top_level(&mut src, enc, true).unwrap().elements
    }

    #[test]
    fn nested_sequences_round_trip_in_every_encoding() {
        let inner = vec![Element::bytes(0x0010_0010, VR::PN, b"A^B".to_vec())];
        let seq = Element {
            tag: 0x0008_1115,
            vr: VR::SQ,
            value: Value::Seq(vec![inner.clone(), vec![]], Enc::EXPLICIT_LE),
        };
        for enc in [
            Enc::EXPLICIT_LE,
            Enc::IMPLICIT_LE,
            Enc {
                explicit: true,
                big: true,
            },
        ] {
            let mut s = seq.clone();
            if let Value::Seq(_, e) = &mut s.value {
                *e = enc;
            }
            let got = round_trip(enc, &[s]);
            let Value::Seq(items, _) = &got[0].value else {
                panic!("not a sequence")
            };
            assert_eq!(items.len(), 2);
            // Odd lengths are padded with a space for text VRs.
            assert_eq!(items[0][0].raw().unwrap(), b"A^B ");
        }
    }

    #[test]
    fn truncated_and_overlong_input_is_an_error_not_a_panic() {
        let mut buf = Vec::new();
        write_element(
            &mut buf,
            Enc::EXPLICIT_LE,
            &Element::bytes(0x0010_0010, VR::PN, b"NAME".to_vec()),
        )
        .unwrap();
        for cut in 1..buf.len() {
            let mut src = Src::new(&buf[..cut]);
            assert!(read_top_level(&mut src, Enc::EXPLICIT_LE, true).is_err());
        }
        // A sequence item claiming more than the sequence holds.
        let bad = [
            0x08, 0x00, 0x15, 0x11, b'S', b'Q', 0, 0, 8, 0, 0, 0, 0xFE, 0xFF, 0x00, 0xE0, 100, 0,
            0, 0,
        ];
        let mut src = Src::new(&bad[..]);
        assert!(read_top_level(&mut src, Enc::EXPLICIT_LE, true).is_err());
    }
}
