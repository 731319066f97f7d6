//! nfnetlink framing: message headers and netlink attributes, written by hand.
//!
//! nf_tables has no maintained pure-Rust encoder with a licence we can take, and its wire
//! format is small: a netlink header, a `nfgenmsg`, then type-length-value attributes whose
//! integers are big-endian. Nested attributes are written without `NLA_F_NESTED`, as
//! libnftnl does, because every nf_tables parser accepts that form.

use crate::abi::{
    NFNETLINK_V0, NFTA_DATA_VALUE, NFTNL_UDATA_COMMENT, NLA_ALIGNTO, NLA_HDRLEN, NLA_TYPE_MASK,
};

/// A growing buffer of netlink messages.
#[derive(Default)]
pub(crate) struct Writer {
    buf: Vec<u8>,
    /// Offsets of messages and nests whose length is patched when they end.
    open: Vec<usize>,
}

impl Writer {
    pub fn bytes(&self) -> &[u8] {
        &self.buf
    }

    /// Starts a message: netlink header, then `nfgenmsg`.
    pub fn begin_message(&mut self, kind: u16, flags: u16, seq: u32, family: u8, res_id: u16) {
        self.align();
        self.open.push(self.buf.len());
        self.buf.extend_from_slice(&0u32.to_ne_bytes()); // length, patched in end_message
        self.buf.extend_from_slice(&kind.to_ne_bytes());
        self.buf.extend_from_slice(&flags.to_ne_bytes());
        self.buf.extend_from_slice(&seq.to_ne_bytes());
        self.buf.extend_from_slice(&0u32.to_ne_bytes()); // port id: the kernel
        self.buf.push(family);
        self.buf.push(NFNETLINK_V0);
        self.buf.extend_from_slice(&res_id.to_be_bytes());
    }

    pub fn end_message(&mut self) {
        self.align();
        let start = self.open.pop().expect("end_message without begin_message");
        let len = (self.buf.len() - start) as u32;
        self.buf[start..start + 4].copy_from_slice(&len.to_ne_bytes());
    }

    pub fn put(&mut self, kind: u16, payload: &[u8]) {
        self.align();
        let len = NLA_HDRLEN + payload.len();
        self.buf.extend_from_slice(
            &u16::try_from(len)
                .expect("attribute too long")
                .to_ne_bytes(),
        );
        self.buf.extend_from_slice(&kind.to_ne_bytes());
        self.buf.extend_from_slice(payload);
        self.align();
    }

    pub fn put_be32(&mut self, kind: u16, value: u32) {
        self.put(kind, &value.to_be_bytes());
    }

    pub fn put_be64(&mut self, kind: u16, value: u64) {
        self.put(kind, &value.to_be_bytes());
    }

    /// A NUL-terminated string, as nf_tables expects for names.
    pub fn put_str(&mut self, kind: u16, value: &str) {
        let mut payload = Vec::with_capacity(value.len() + 1);
        payload.extend_from_slice(value.as_bytes());
        payload.push(0);
        self.put(kind, &payload);
    }

    /// A nested attribute whose contents `body` writes.
    pub fn nest(&mut self, kind: u16, body: impl FnOnce(&mut Self)) {
        self.align();
        let start = self.buf.len();
        self.buf.extend_from_slice(&0u16.to_ne_bytes());
        self.buf.extend_from_slice(&kind.to_ne_bytes());
        body(self);
        let len = u16::try_from(self.buf.len() - start).expect("nested attribute too long");
        self.buf[start..start + 2].copy_from_slice(&len.to_ne_bytes());
        self.align();
    }

    /// `NFTA_DATA_VALUE` inside a nest of type `kind`.
    pub fn put_data_value(&mut self, kind: u16, value: &[u8]) {
        self.nest(kind, |w| w.put(NFTA_DATA_VALUE, value));
    }

    fn align(&mut self) {
        while self.buf.len() % NLA_ALIGNTO != 0 {
            self.buf.push(0);
        }
    }
}

/// User data holding a single comment TLV (`type`, `length`, NUL-terminated text).
pub(crate) fn comment_udata(comment: &str) -> Vec<u8> {
    // The TLV's length is one byte and counts the NUL, so longer comments are cut.
    let text_len = comment.len().min(usize::from(u8::MAX) - 1);
    let mut out = Vec::with_capacity(text_len + 3);
    out.push(NFTNL_UDATA_COMMENT);
    out.push((text_len + 1) as u8);
    out.extend_from_slice(&comment.as_bytes()[..text_len]);
    out.push(0);
    out
}

/// Iterates over the attributes in `data` as `(type, payload)`, ignoring flag bits.
pub(crate) fn attributes(mut data: &[u8]) -> impl Iterator<Item = (u16, &[u8])> {
    std::iter::from_fn(move || {
        if data.len() < NLA_HDRLEN {
            return None;
        }
        let len = u16::from_ne_bytes([data[0], data[1]]) as usize;
        let kind = u16::from_ne_bytes([data[2], data[3]]) & NLA_TYPE_MASK;
        if len < NLA_HDRLEN || len > data.len() {
            return None;
        }
        let payload = &data[NLA_HDRLEN..len];
        let advance = len.next_multiple_of(NLA_ALIGNTO).min(data.len());
        data = &data[advance..];
        Some((kind, payload))
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::abi::{
        NFGENMSG_LEN, NFTA_CHAIN_HOOK, NFTA_HOOK_HOOKNUM, NFTA_TABLE_NAME, NFT_MSG_NEWTABLE,
        NLMSG_HDRLEN,
    };

    #[test]
    fn attributes_are_padded_and_nests_measured() {
        let mut w = Writer::default();
        w.begin_message(NFT_MSG_NEWTABLE, 0, 7, 1, 0);
        w.put_str(NFTA_TABLE_NAME, "ctnet");
        w.nest(NFTA_CHAIN_HOOK, |w| w.put_be32(NFTA_HOOK_HOOKNUM, 4));
        w.end_message();
        let b = w.bytes();
        assert_eq!(b.len() % 4, 0);
        assert_eq!(
            u32::from_ne_bytes(b[0..4].try_into().unwrap()) as usize,
            b.len()
        );
        let attrs: Vec<_> = attributes(&b[NLMSG_HDRLEN + NFGENMSG_LEN..]).collect();
        assert_eq!(attrs[0], (NFTA_TABLE_NAME, &b"ctnet\0"[..]));
        assert_eq!(attrs[1].0, NFTA_CHAIN_HOOK);
        let inner: Vec<_> = attributes(attrs[1].1).collect();
        assert_eq!(inner, vec![(NFTA_HOOK_HOOKNUM, &[0u8, 0, 0, 4][..])]);
    }

    #[test]
    fn comment_udata_is_a_tlv() {
        assert_eq!(comment_udata("hi"), vec![0, 3, b'h', b'i', 0]);
    }
}
