//! A reader of the few DER structures the test kit looks into: PEM documents, the keys openssl
//! writes (PKCS#1, SEC1, PKCS#8, SubjectPublicKeyInfo) and a certificate's subject. The input
//! is always well-formed output of openssl or rustls; anything unexpected reads as `None`.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;

pub(crate) const INTEGER: u8 = 0x02;
pub(crate) const BIT_STRING: u8 = 0x03;
pub(crate) const OCTET_STRING: u8 = 0x04;
pub(crate) const OID: u8 = 0x06;
pub(crate) const SEQUENCE: u8 = 0x30;
pub(crate) const SET: u8 = 0x31;

/// Reads DER elements one after the other.
pub(crate) struct Reader<'a> {
    rest: &'a [u8],
}

impl<'a> Reader<'a> {
    pub(crate) fn new(input: &'a [u8]) -> Self {
        Self { rest: input }
    }

    /// The next element: its tag and its contents.
    pub(crate) fn next_any(&mut self) -> Option<(u8, &'a [u8])> {
        let (&tag, rest) = self.rest.split_first()?;
        let (&first, mut rest) = rest.split_first()?;
        let len = if first < 0x80 {
            usize::from(first)
        } else {
            let n = usize::from(first & 0x7f);
            if n == 0 || n > 4 || rest.len() < n {
                return None;
            }
            let len = rest[..n]
                .iter()
                .fold(0usize, |len, b| (len << 8) | usize::from(*b));
            rest = &rest[n..];
            len
        };
        if rest.len() < len {
            return None;
        }
        let (value, rest) = rest.split_at(len);
        self.rest = rest;
        Some((tag, value))
    }

    /// The contents of the next element, if it has this tag.
    pub(crate) fn next(&mut self, tag: u8) -> Option<&'a [u8]> {
        let (found, value) = self.next_any()?;
        (found == tag).then_some(value)
    }

    /// Whether every element has been read.
    pub(crate) fn is_empty(&self) -> bool {
        self.rest.is_empty()
    }
}

/// The contents of the one element `input` is, if it has this tag.
pub(crate) fn single(input: &[u8], tag: u8) -> Option<&[u8]> {
    let mut reader = Reader::new(input);
    let value = reader.next(tag)?;
    reader.is_empty().then_some(value)
}

/// An unsigned big-endian integer's contents without the zero bytes DER puts before a high bit.
pub(crate) fn unsigned(int: &[u8]) -> &[u8] {
    let zeros = int.iter().take_while(|b| **b == 0).count();
    &int[zeros.min(int.len().saturating_sub(1))..]
}

/// The label and the DER of the first PEM block in `text`.
pub(crate) fn pem(text: &str) -> Option<(String, Vec<u8>)> {
    let mut lines = text.lines().map(str::trim);
    let label = lines
        .find_map(|l| l.strip_prefix("-----BEGIN "))?
        .strip_suffix("-----")?
        .to_owned();
    let end = format!("-----END {label}-----");
    let mut body = String::new();
    for line in lines {
        if line == end {
            let der = STANDARD.decode(body).ok()?;
            return Some((label, der));
        }
        body.push_str(line);
    }
    None
}

/// The subject common name (OID 2.5.4.3) of an X.509 certificate.
pub(crate) fn certificate_cn(cert: &[u8]) -> Option<String> {
    let cert = single(cert, SEQUENCE)?;
    let tbs = Reader::new(cert).next(SEQUENCE)?;
    let mut tbs = Reader::new(tbs);
    let (mut tag, _) = tbs.next_any()?;
    // [0] EXPLICIT version, when present; then the serial number.
    if tag == 0xa0 {
        tag = tbs.next_any()?.0;
    }
    if tag != INTEGER {
        return None;
    }
    tbs.next(SEQUENCE)?; // signature algorithm
    tbs.next(SEQUENCE)?; // issuer
    tbs.next(SEQUENCE)?; // validity
    let mut subject = Reader::new(tbs.next(SEQUENCE)?);
    while let Some(rdn) = subject.next(SET) {
        let mut rdn = Reader::new(rdn);
        while let Some(attribute) = rdn.next(SEQUENCE) {
            let mut attribute = Reader::new(attribute);
            if attribute.next(OID)? == [0x55, 0x04, 0x03] {
                let (_, value) = attribute.next_any()?;
                return String::from_utf8(value.to_vec()).ok();
            }
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_short_and_long_lengths_and_refuses_truncation() {
        let mut long = vec![OCTET_STRING, 0x82, 0x01, 0x00];
        long.extend(std::iter::repeat_n(7u8, 256));
        assert_eq!(single(&long, OCTET_STRING).unwrap().len(), 256);
        assert!(single(&long[..long.len() - 1], OCTET_STRING).is_none());
        assert!(single(&long, INTEGER).is_none());
        let two = [INTEGER, 1, 5, INTEGER, 2, 0, 0x80];
        assert!(single(&two, INTEGER).is_none(), "trailing element");
        let mut reader = Reader::new(&two);
        assert_eq!(reader.next(INTEGER), Some(&[5u8][..]));
        assert_eq!(unsigned(reader.next(INTEGER).unwrap()), [0x80]);
        assert!(reader.is_empty());
        assert_eq!(unsigned(&[0, 0]), [0]);
    }

    #[test]
    fn pem_finds_the_first_block() {
        let text = "junk\n-----BEGIN THING-----\nAQID\nBA==\n-----END THING-----\n\
                    -----BEGIN OTHER-----\nBQ==\n-----END OTHER-----\n";
        assert_eq!(pem(text), Some(("THING".to_owned(), vec![1, 2, 3, 4])));
        assert_eq!(pem("-----BEGIN THING-----\nAQID\n"), None);
    }
}
