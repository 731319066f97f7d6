//! The gateway's JSON, as etcd 3.4 writes it: protobuf's JSON mapping, so bytes are base64,
//! int64 fields are strings, and a field at its default (0, false, empty) is left out.
//! Streamed calls (lease keep-alive, watch) wrap each message as `{"result": {...}}`, or
//! `{"error": {...}}` for an error after the stream started.

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use serde::de::{self, DeserializeOwned, Deserializer};
use serde::Deserialize;

use crate::{KeyValue, WatchEvent};

/// Bytes as the gateway takes them.
pub(crate) fn b64(bytes: &[u8]) -> String {
    STANDARD.encode(bytes)
}

fn unb64(text: &str, what: &str) -> Result<Vec<u8>, String> {
    STANDARD
        .decode(text)
        .map_err(|e| format!("{what} {text:?} is not base64 ({e})"))
}

/// The `(key, range_end)` pair that selects every key starting with `prefix`: range_end
/// is the prefix with its last byte below 0xff incremented (bytes after it dropped); for
/// an empty prefix, or one of only 0xff bytes, both are `\0`, etcd's "every key from here".
pub(crate) fn prefix_range(prefix: &[u8]) -> (Vec<u8>, Vec<u8>) {
    let mut end = prefix.to_vec();
    while let Some(last) = end.pop() {
        if last < 0xff {
            end.push(last + 1);
            return (prefix.to_vec(), end);
        }
    }
    let key = if prefix.is_empty() {
        vec![0]
    } else {
        prefix.to_vec()
    };
    (key, vec![0])
}

/// An int64 written as a JSON string (the gateway's way) or as a number (accepted too).
fn int64<'de, D: Deserializer<'de>>(d: D) -> Result<i64, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Int64 {
        Number(i64),
        Text(String),
    }
    match Int64::deserialize(d)? {
        Int64::Number(n) => Ok(n),
        Int64::Text(t) => t
            .parse()
            .map_err(|_| de::Error::custom(format!("{t:?} is not an int64"))),
    }
}

/// Decodes the first JSON value of a reply (a streamed reply may hold more after it).
pub(crate) fn decode<T: DeserializeOwned>(body: &[u8]) -> Result<T, String> {
    match serde_json::Deserializer::from_slice(body)
        .into_iter::<T>()
        .next()
    {
        Some(Ok(v)) => Ok(v),
        Some(Err(e)) => Err(format!("{e} in {}", excerpt(body))),
        None => Err("the reply is empty".into()),
    }
}

/// The start of a reply for a message, lossy and bounded.
pub(crate) fn excerpt(body: &[u8]) -> String {
    const MAX: usize = 200;
    let text = String::from_utf8_lossy(&body[..body.len().min(MAX)]);
    let text = text.trim();
    if body.len() > MAX {
        format!("{text:?}...")
    } else {
        format!("{text:?}")
    }
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub(crate) struct Header {
    #[serde(deserialize_with = "int64")]
    pub revision: i64,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub(crate) struct RawKv {
    key: String,
    value: String,
    #[serde(deserialize_with = "int64")]
    create_revision: i64,
    #[serde(deserialize_with = "int64")]
    mod_revision: i64,
    #[serde(deserialize_with = "int64")]
    lease: i64,
}

impl RawKv {
    fn key(&self) -> Result<String, String> {
        let bytes = unb64(&self.key, "the key")?;
        String::from_utf8(bytes).map_err(|e| {
            format!(
                "the key {:?} is not UTF-8; it was not written by ctnet",
                String::from_utf8_lossy(e.as_bytes())
            )
        })
    }

    pub fn into_key_value(self) -> Result<KeyValue, String> {
        Ok(KeyValue {
            key: self.key()?,
            value: unb64(&self.value, "the value")?,
            create_revision: self.create_revision,
            mod_revision: self.mod_revision,
            lease: self.lease,
        })
    }
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub(crate) struct RangeReply {
    pub header: Header,
    pub kvs: Vec<RawKv>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub(crate) struct HeaderOnly {
    pub header: Header,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub(crate) struct DeleteReply {
    #[serde(deserialize_with = "int64")]
    pub deleted: i64,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub(crate) struct TxnReply {
    pub succeeded: bool,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub(crate) struct LeaseReply {
    #[serde(rename = "ID", deserialize_with = "int64")]
    pub id: i64,
    #[serde(rename = "TTL", deserialize_with = "int64")]
    pub ttl: i64,
    /// Only a grant has it; empty when all went well.
    pub error: String,
}

/// One message of a streamed reply.
#[derive(Debug, Deserialize)]
pub(crate) struct Streamed<T> {
    pub result: Option<T>,
    pub error: Option<serde_json::Value>,
}

/// A non-200 reply's body, or the error object inside a stream.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub(crate) struct ErrorReply {
    pub error: String,
    pub message: String,
    pub code: Option<u32>,
    pub grpc_code: Option<u32>,
}

impl ErrorReply {
    /// etcd's message and gRPC code from an error body, whatever its shape; the body's
    /// text when it is not etcd's JSON (a proxy's page, Go's "404 page not found").
    pub fn read(body: &[u8]) -> (String, Option<u32>) {
        match serde_json::from_slice::<ErrorReply>(body) {
            Ok(e) => {
                let message = if e.message.is_empty() {
                    e.error
                } else {
                    e.message
                };
                let message = if message.is_empty() {
                    excerpt(body)
                } else {
                    message
                };
                (message, e.code.or(e.grpc_code))
            }
            Err(_) => match serde_json::from_slice::<String>(body) {
                Ok(s) => (s, None),
                Err(_) => (excerpt(body), None),
            },
        }
    }
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub(crate) struct WatchReply {
    pub header: Header,
    pub created: bool,
    pub canceled: bool,
    #[serde(deserialize_with = "int64")]
    pub compact_revision: i64,
    pub cancel_reason: String,
    pub events: Vec<RawEvent>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub(crate) struct RawEvent {
    /// "PUT" is the default and so is left out; "DELETE" is written.
    #[serde(rename = "type")]
    kind: String,
    kv: RawKv,
}

impl RawEvent {
    pub fn into_event(self) -> Result<WatchEvent, String> {
        match self.kind.as_str() {
            "" | "PUT" => Ok(WatchEvent::Put(self.kv.into_key_value()?)),
            "DELETE" => Ok(WatchEvent::Delete {
                key: self.kv.key()?,
                mod_revision: self.kv.mod_revision,
            }),
            other => Err(format!("an event of unknown type {other:?}")),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefix_ranges_cover_exactly_the_prefix() {
        assert_eq!(prefix_range(b"a/"), (b"a/".to_vec(), b"a0".to_vec()));
        assert_eq!(prefix_range(b"a\xff"), (b"a\xff".to_vec(), b"b".to_vec()));
        assert_eq!(prefix_range(b"\xff\xff"), (b"\xff\xff".to_vec(), vec![0]));
        assert_eq!(prefix_range(b""), (vec![0], vec![0]));
    }

    #[test]
    fn a_range_reply_decodes_with_int64_strings_and_defaults_left_out() {
        // As etcd 3.4.23 wrote it; the second kv has no value and no lease.
        let body = br#"{"header":{"cluster_id":"324952591200643719","member_id":"3319814642761637952","revision":"7","raft_term":"2"},"kvs":[{"key":"Zm9v","create_revision":"2","mod_revision":"5","version":"2","value":"YmFy","lease":"2324035876546019848"},{"key":"ZW1wdHk=","create_revision":"6","mod_revision":"6","version":"1"}],"count":"2"}"#;
        let r: RangeReply = decode(body).unwrap();
        assert_eq!(r.header.revision, 7);
        let kvs: Vec<KeyValue> = r
            .kvs
            .into_iter()
            .map(|k| k.into_key_value().unwrap())
            .collect();
        assert_eq!(
            kvs[0],
            KeyValue {
                key: "foo".into(),
                value: b"bar".to_vec(),
                create_revision: 2,
                mod_revision: 5,
                lease: 2324035876546019848,
            }
        );
        assert_eq!(kvs[1].key, "empty");
        assert!(kvs[1].value.is_empty());
        assert_eq!(kvs[1].lease, 0);

        // No key: no kvs at all. Numbers accepted too.
        let r: RangeReply = decode(br#"{"header":{"revision":3}}"#).unwrap();
        assert!(r.kvs.is_empty());
        assert_eq!(r.header.revision, 3);
    }

    #[test]
    fn bad_replies_say_what_is_wrong() {
        let e = decode::<RangeReply>(br#"{"header":{"revision":"x7"}}"#).unwrap_err();
        assert!(e.contains("\"x7\" is not an int64"), "{e}");
        let e = decode::<RangeReply>(b"").unwrap_err();
        assert!(e.contains("empty"), "{e}");
        let kv: RangeReply = decode(br#"{"kvs":[{"key":"!!"}]}"#).unwrap();
        let e = kv
            .kvs
            .into_iter()
            .next()
            .unwrap()
            .into_key_value()
            .unwrap_err();
        assert!(e.contains("not base64"), "{e}");
        let kv: RangeReply = decode(br#"{"kvs":[{"key":"/w=="}]}"#).unwrap();
        let e = kv
            .kvs
            .into_iter()
            .next()
            .unwrap()
            .into_key_value()
            .unwrap_err();
        assert!(e.contains("not UTF-8"), "{e}");
    }

    #[test]
    fn txn_and_delete_replies() {
        let t: TxnReply = decode(br#"{"header":{"revision":"3"},"succeeded":true,"responses":[{"response_put":{"header":{"revision":"3"}}}]}"#).unwrap();
        assert!(t.succeeded);
        // A failed compare: `succeeded` is false and so left out.
        let t: TxnReply = decode(br#"{"header":{"revision":"2"}}"#).unwrap();
        assert!(!t.succeeded);
        let d: DeleteReply = decode(br#"{"header":{"revision":"4"},"deleted":"1"}"#).unwrap();
        assert_eq!(d.deleted, 1);
        let d: DeleteReply = decode(br#"{"header":{"revision":"4"}}"#).unwrap();
        assert_eq!(d.deleted, 0);
    }

    #[test]
    fn keep_alive_replies_live_and_dead() {
        let live: Streamed<LeaseReply> =
            decode(b"{\"result\":{\"header\":{\"revision\":\"6\"},\"ID\":\"2324035876587088397\",\"TTL\":\"2\"}}\n").unwrap();
        let r = live.result.unwrap();
        assert_eq!((r.id, r.ttl), (2324035876587088397, 2));
        // A lease that expired or never was: HTTP 200, and TTL simply left out.
        let dead: Streamed<LeaseReply> =
            decode(br#"{"result":{"header":{"revision":"6"},"ID":"12345"}}"#).unwrap();
        assert_eq!(dead.result.unwrap().ttl, 0);
        let failed: Streamed<LeaseReply> =
            decode(br#"{"error":{"grpc_code":14,"http_code":503,"message":"etcdserver: no leader","http_status":"Service Unavailable"}}"#).unwrap();
        assert!(failed.result.is_none());
        let e: ErrorReply = serde_json::from_value(failed.error.unwrap()).unwrap();
        assert_eq!(
            (e.message.as_str(), e.grpc_code),
            ("etcdserver: no leader", Some(14))
        );
    }

    #[test]
    fn error_bodies_give_etcds_message() {
        let (m, c) = ErrorReply::read(br#"{"error":"etcdserver: requested lease not found","message":"etcdserver: requested lease not found","code":5}"#);
        assert_eq!(
            (m.as_str(), c),
            ("etcdserver: requested lease not found", Some(5))
        );
        let (m, c) = ErrorReply::read(b"404 page not found\n");
        assert_eq!((m.as_str(), c), ("\"404 page not found\"", None));
    }

    #[test]
    fn watch_messages_decode_to_events() {
        let created: Streamed<WatchReply> =
            decode(br#"{"result":{"header":{"revision":"6"},"created":true}}"#).unwrap();
        let c = created.result.unwrap();
        assert!(c.created && c.events.is_empty());

        let body = br#"{"result":{"header":{"revision":"6"},"events":[{"kv":{"key":"cC8z","create_revision":"4","mod_revision":"4","version":"1","value":"djM="}},{"type":"DELETE","kv":{"key":"cC8x","mod_revision":"6"}}]}}"#;
        let m: Streamed<WatchReply> = decode(body).unwrap();
        let events: Vec<WatchEvent> = m
            .result
            .unwrap()
            .events
            .into_iter()
            .map(|e| e.into_event().unwrap())
            .collect();
        assert_eq!(
            events,
            vec![
                WatchEvent::Put(KeyValue {
                    key: "p/3".into(),
                    value: b"v3".to_vec(),
                    create_revision: 4,
                    mod_revision: 4,
                    lease: 0
                }),
                WatchEvent::Delete {
                    key: "p/1".into(),
                    mod_revision: 6
                },
            ]
        );

        // A watch from a compacted revision: cancelled, with no header revision.
        let m: Streamed<WatchReply> =
            decode(br#"{"result":{"header":{"cluster_id":"1","raft_term":"2"},"canceled":true,"compact_revision":"4"}}"#).unwrap();
        let m = m.result.unwrap();
        assert!(m.canceled);
        assert_eq!(m.compact_revision, 4);

        let odd: Streamed<WatchReply> =
            decode(br#"{"result":{"events":[{"type":"MERGE","kv":{"key":"YQ=="}}]}}"#).unwrap();
        let e = odd
            .result
            .unwrap()
            .events
            .into_iter()
            .next()
            .unwrap()
            .into_event()
            .unwrap_err();
        assert!(e.contains("MERGE"), "{e}");
    }
}
