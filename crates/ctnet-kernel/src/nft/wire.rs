//! nfnetlink framing: message headers and netlink attributes, written by hand.
//!
//! nf_tables has no maintained pure-Rust encoder with a licence we can take, and its wire
//! format is small: a netlink header, a `nfgenmsg`, then type-length-value attributes whose
//! integers are big-endian. Nested attributes are written without `NLA_F_NESTED`, as
//! libnftnl does, because every nf_tables parser accepts that form.

/// `NETLINK_NETFILTER` subsystem number of nf_tables.
pub(crate) const NFNL_SUBSYS_NFTABLES: u16 = 10;
/// Batch delimiters (`NFNL_MSG_BATCH_BEGIN` / `_END`).
pub(crate) const NFNL_MSG_BATCH_BEGIN: u16 = 0x10;
pub(crate) const NFNL_MSG_BATCH_END: u16 = 0x11;

/// `enum nf_tables_msg_types`, the ones ctnet sends.
pub(crate) mod msg {
    pub const NEWTABLE: u16 = 0;
    pub const GETTABLE: u16 = 1;
    pub const NEWCHAIN: u16 = 3;
    pub const GETCHAIN: u16 = 4;
    pub const NEWRULE: u16 = 6;
    pub const DELRULE: u16 = 8;
    pub const NEWSET: u16 = 9;
    pub const NEWSETELEM: u16 = 12;
    pub const GETSETELEM: u16 = 13;
    pub const DELSETELEM: u16 = 14;
    pub const DESTROYTABLE: u16 = 26;
    pub const DESTROYSETELEM: u16 = 30;
}

/// Attribute numbers from `linux/netfilter/nf_tables.h`.
pub(crate) mod attr {
    pub const TABLE_NAME: u16 = 1;
    pub const TABLE_FLAGS: u16 = 2;
    pub const TABLE_USERDATA: u16 = 6;

    pub const CHAIN_TABLE: u16 = 1;
    pub const CHAIN_NAME: u16 = 3;
    pub const CHAIN_HOOK: u16 = 4;
    pub const CHAIN_POLICY: u16 = 5;
    pub const CHAIN_TYPE: u16 = 7;
    pub const HOOK_HOOKNUM: u16 = 1;
    pub const HOOK_PRIORITY: u16 = 2;

    pub const RULE_TABLE: u16 = 1;
    pub const RULE_CHAIN: u16 = 2;
    pub const RULE_EXPRESSIONS: u16 = 4;
    pub const RULE_USERDATA: u16 = 7;

    pub const LIST_ELEM: u16 = 1;
    pub const EXPR_NAME: u16 = 1;
    pub const EXPR_DATA: u16 = 2;

    pub const SET_TABLE: u16 = 1;
    pub const SET_NAME: u16 = 2;
    pub const SET_FLAGS: u16 = 3;
    pub const SET_KEY_TYPE: u16 = 4;
    pub const SET_KEY_LEN: u16 = 5;
    pub const SET_DATA_TYPE: u16 = 6;
    pub const SET_DATA_LEN: u16 = 7;
    pub const SET_DESC: u16 = 9;
    pub const SET_ID: u16 = 10;
    pub const SET_USERDATA: u16 = 13;
    pub const SET_DESC_CONCAT: u16 = 2;
    pub const SET_FIELD_LEN: u16 = 1;

    pub const SET_ELEM_LIST_TABLE: u16 = 1;
    pub const SET_ELEM_LIST_SET: u16 = 2;
    pub const SET_ELEM_LIST_ELEMENTS: u16 = 3;
    pub const SET_ELEM_KEY: u16 = 1;
    pub const SET_ELEM_DATA: u16 = 2;
    pub const SET_ELEM_FLAGS: u16 = 3;
    pub const SET_ELEM_KEY_END: u16 = 10;

    pub const DATA_VALUE: u16 = 1;
    pub const DATA_VERDICT: u16 = 2;
    pub const VERDICT_CODE: u16 = 1;
    pub const VERDICT_CHAIN: u16 = 2;
}

/// `NFTNL_UDATA_*_COMMENT`: the user-data TLV nft prints as `comment "..."`.
pub(crate) const UDATA_COMMENT: u8 = 0;

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
        self.buf.push(0); // NFNETLINK_V0
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
        let len = 4 + payload.len();
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
        self.nest(kind, |w| w.put(attr::DATA_VALUE, value));
    }

    fn align(&mut self) {
        while self.buf.len() % 4 != 0 {
            self.buf.push(0);
        }
    }
}

/// User data holding a single comment TLV (`type`, `length`, NUL-terminated text).
pub(crate) fn comment_udata(comment: &str) -> Vec<u8> {
    let text_len = comment.len().min(254);
    let mut out = Vec::with_capacity(text_len + 3);
    out.push(UDATA_COMMENT);
    out.push((text_len + 1) as u8);
    out.extend_from_slice(&comment.as_bytes()[..text_len]);
    out.push(0);
    out
}

/// Iterates over the attributes in `data` as `(type, payload)`, ignoring flag bits.
pub(crate) fn attributes(mut data: &[u8]) -> impl Iterator<Item = (u16, &[u8])> {
    std::iter::from_fn(move || {
        if data.len() < 4 {
            return None;
        }
        let len = u16::from_ne_bytes([data[0], data[1]]) as usize;
        let kind = u16::from_ne_bytes([data[2], data[3]]) & 0x3fff;
        if len < 4 || len > data.len() {
            return None;
        }
        let payload = &data[4..len];
        let advance = ((len + 3) & !3).min(data.len());
        data = &data[advance..];
        Some((kind, payload))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn attributes_are_padded_and_nests_measured() {
        let mut w = Writer::default();
        w.begin_message(msg::NEWTABLE, 0, 7, 1, 0);
        w.put_str(attr::TABLE_NAME, "ctnet");
        w.nest(attr::CHAIN_HOOK, |w| w.put_be32(attr::HOOK_HOOKNUM, 4));
        w.end_message();
        let b = w.bytes();
        assert_eq!(b.len() % 4, 0);
        assert_eq!(
            u32::from_ne_bytes(b[0..4].try_into().unwrap()) as usize,
            b.len()
        );
        let attrs: Vec<_> = attributes(&b[20..]).collect();
        assert_eq!(attrs[0], (attr::TABLE_NAME, &b"ctnet\0"[..]));
        assert_eq!(attrs[1].0, attr::CHAIN_HOOK);
        let inner: Vec<_> = attributes(attrs[1].1).collect();
        assert_eq!(inner, vec![(attr::HOOK_HOOKNUM, &[0u8, 0, 0, 4][..])]);
    }

    #[test]
    fn comment_udata_is_a_tlv() {
        assert_eq!(comment_udata("hi"), vec![0, 3, b'h', b'i', 0]);
    }
}
