//! Netlink attributes (TLVs) as nf_tables uses them: integers in network byte order, strings
//! NUL-terminated, nested attributes flagged NLA_F_NESTED.

const NLA_F_NESTED: u16 = 0x8000;
const NLA_TYPE_MASK: u16 = 0x3fff;
const NLA_HDRLEN: usize = 4;

/// Builds an attribute stream.
#[derive(Default)]
pub struct Attrs(Vec<u8>);

impl Attrs {
    pub fn new() -> Attrs {
        Attrs::default()
    }

    pub fn bytes(mut self, kind: u16, value: &[u8]) -> Attrs {
        let len = NLA_HDRLEN + value.len();
        self.0.extend_from_slice(&(len as u16).to_ne_bytes());
        self.0.extend_from_slice(&kind.to_ne_bytes());
        self.0.extend_from_slice(value);
        self.0.resize((self.0.len() + 3) & !3, 0);
        self
    }

    pub fn string(self, kind: u16, value: &str) -> Attrs {
        let mut with_nul = value.as_bytes().to_vec();
        with_nul.push(0);
        self.bytes(kind, &with_nul)
    }

    pub fn be32(self, kind: u16, value: u32) -> Attrs {
        self.bytes(kind, &value.to_be_bytes())
    }

    pub fn be64(self, kind: u16, value: u64) -> Attrs {
        self.bytes(kind, &value.to_be_bytes())
    }

    pub fn nested(self, kind: u16, inner: Attrs) -> Attrs {
        self.bytes(kind | NLA_F_NESTED, &inner.0)
    }

    pub fn into_bytes(self) -> Vec<u8> {
        self.0
    }
}

/// Parsed attributes: (type, value) pairs borrowing the message.
pub type AttrList<'a> = Vec<(u16, &'a [u8])>;

/// Splits an attribute stream into (type, value) pairs, flags stripped. Malformed trailing
/// bytes end the stream.
pub fn parse(mut data: &[u8]) -> AttrList<'_> {
    let mut out = Vec::new();
    while data.len() >= NLA_HDRLEN {
        let len = u16::from_ne_bytes([data[0], data[1]]) as usize;
        let kind = u16::from_ne_bytes([data[2], data[3]]) & NLA_TYPE_MASK;
        if len < NLA_HDRLEN || len > data.len() {
            break;
        }
        out.push((kind, &data[NLA_HDRLEN..len]));
        data = &data[((len + 3) & !3).min(data.len())..];
    }
    out
}

pub fn get<'a>(attrs: &[(u16, &'a [u8])], kind: u16) -> Option<&'a [u8]> {
    attrs.iter().find(|(k, _)| *k == kind).map(|(_, v)| *v)
}

pub fn get_string(attrs: &[(u16, &[u8])], kind: u16) -> Option<String> {
    let raw = get(attrs, kind)?;
    let end = raw.iter().position(|b| *b == 0).unwrap_or(raw.len());
    String::from_utf8(raw[..end].to_vec()).ok()
}

pub fn get_be32(attrs: &[(u16, &[u8])], kind: u16) -> Option<u32> {
    Some(u32::from_be_bytes(get(attrs, kind)?.get(..4)?.try_into().ok()?))
}

pub fn get_be64(attrs: &[(u16, &[u8])], kind: u16) -> Option<u64> {
    Some(u64::from_be_bytes(get(attrs, kind)?.get(..8)?.try_into().ok()?))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_with_padding_and_nesting() {
        let inner = Attrs::new().be32(1, 0x0102_0304);
        let bytes = Attrs::new()
            .string(1, "nat")
            .nested(2, inner)
            .be64(3, 7)
            .into_bytes();
        assert_eq!(bytes.len() % 4, 0);
        let attrs = parse(&bytes);
        assert_eq!(get_string(&attrs, 1).as_deref(), Some("nat"));
        assert_eq!(get_be32(&parse(get(&attrs, 2).unwrap()), 1), Some(0x0102_0304));
        assert_eq!(get_be64(&attrs, 3), Some(7));
    }

    #[test]
    fn truncated_input_is_not_read_past() {
        let bytes = Attrs::new().string(1, "abc").into_bytes();
        assert_eq!(parse(&bytes[..5]).len(), 0);
    }
}
