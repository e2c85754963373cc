//! Batch objects, their hash chain, signed checkpoints, and verification.
//!
//! A batch object is gzip-compressed JSON lines: first a header
//! `{"format":"keyless-audit-batch/1","org","stream","batch","prevHash","firstSeq","lastSeq","count"}`,
//! then one event per line. Its hash is the SHA-256 of the uncompressed bytes.
//! Batch numbers start at 1 per org and stream; batch 1 names 64 zeros as its
//! previous hash.

use std::io::{Read, Write};

use aws_lc_rs::signature::{self, Ed25519KeyPair, KeyPair};
use serde::{Deserialize, Serialize};
use serde_json::json;

use crate::event::AuditEvent;

pub const BATCH_FORMAT: &str = "keyless-audit-batch/1";
pub const GENESIS_HASH: &str = "0000000000000000000000000000000000000000000000000000000000000000";
/// Every this many batches a permanent checkpoint is written.
pub const CHECKPOINT_EVERY: u64 = 16;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct BatchHeader {
    pub format: String,
    pub org: String,
    pub stream: String,
    pub batch: u64,
    pub prev_hash: String,
    pub first_seq: u64,
    pub last_seq: u64,
    pub count: u64,
}

/// Encodes a batch; returns the uncompressed hash and the gzip bytes. The
/// output depends only on the inputs, so a redone delivery writes the same bytes.
pub fn encode_batch(header: &BatchHeader, events: &[(u64, &AuditEvent)]) -> (String, Vec<u8>) {
    let mut plain = Vec::new();
    plain.extend_from_slice(serde_json::to_string(header).unwrap_or_default().as_bytes());
    plain.push(b'\n');
    for (seq, event) in events {
        let line = json!({ "seq": seq, "event": event });
        plain.extend_from_slice(line.to_string().as_bytes());
        plain.push(b'\n');
    }
    let hash = sha256_hex(&plain);
    let mut encoder = flate2::GzBuilder::new().mtime(0).write(Vec::new(), flate2::Compression::default());
    // Writing into a Vec cannot fail.
    let _ = encoder.write_all(&plain);
    let gz = encoder.finish().unwrap_or_default();
    (hash, gz)
}

pub fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, bytes).as_ref())
}

/// The Ed25519 key that signs checkpoints, derived from a 32-byte seed.
pub struct CheckpointSigner {
    key: Ed25519KeyPair,
}

impl CheckpointSigner {
    pub fn from_seed(seed: &[u8; 32]) -> Option<Self> {
        Ed25519KeyPair::from_seed_unchecked(seed).ok().map(|key| CheckpointSigner { key })
    }

    pub fn public_key_hex(&self) -> String {
        hex::encode(self.key.public_key().as_ref())
    }

    /// Builds a checkpoint document for the newest batch of a chain.
    pub fn checkpoint(&self, org: &str, stream: &str, batch: u64, hash: &str) -> Vec<u8> {
        let message = checkpoint_message(org, stream, batch, hash);
        let signature = hex::encode(self.key.sign(message.as_bytes()).as_ref());
        let doc = json!({
            "format": "keyless-audit-checkpoint/1",
            "org": org, "stream": stream, "batch": batch, "hash": hash,
            "publicKey": self.public_key_hex(),
            "signature": signature,
        });
        doc.to_string().into_bytes()
    }
}

fn checkpoint_message(org: &str, stream: &str, batch: u64, hash: &str) -> String {
    format!("keyless-audit-checkpoint/1\n{org}\n{stream}\n{batch}\n{hash}")
}

/// Findings of `verify_chain`.
#[derive(Debug, Clone, Default, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct VerifyReport {
    pub ok: bool,
    pub batches: u64,
    pub events: u64,
    /// One line per problem, naming the batch.
    pub problems: Vec<String>,
}

/// Verifies one chain. `objects` are the batch objects in name order as
/// `(object key, gzip bytes)`; `checkpoint` is the latest checkpoint document;
/// `public_key_hex` is the key it must be signed with.
pub fn verify_chain(org: &str, stream: &str, objects: &[(String, Vec<u8>)], checkpoint: Option<&[u8]>, public_key_hex: &str) -> VerifyReport {
    let mut report = VerifyReport::default();
    let mut prev_hash = GENESIS_HASH.to_owned();
    let mut expected_batch = 1u64;
    let mut last_seq = 0u64;

    for (key, gz) in objects {
        let mut plain = Vec::new();
        if flate2::read::GzDecoder::new(gz.as_slice()).read_to_end(&mut plain).is_err() {
            report.problems.push(format!("{key}: not readable gzip (edited or truncated)"));
            prev_hash = String::new();
            expected_batch += 1;
            continue;
        }
        let hash = sha256_hex(&plain);
        let header_line = plain.split(|b| *b == b'\n').next().unwrap_or_default();
        let Ok(header) = serde_json::from_slice::<BatchHeader>(header_line) else {
            report.problems.push(format!("{key}: the batch header is missing or invalid (edited)"));
            prev_hash = hash;
            expected_batch += 1;
            continue;
        };
        if header.org != org || header.stream != stream || header.format != BATCH_FORMAT {
            report.problems.push(format!("{key}: the header names org {:?} stream {:?}, expected {org:?} {stream:?}", header.org, header.stream));
        }
        if header.batch != expected_batch {
            report.problems.push(format!(
                "{key}: batch {} found where batch {expected_batch} was expected (a batch was removed or reordered)",
                header.batch
            ));
        }
        if header.prev_hash != prev_hash {
            report.problems.push(format!(
                "{key}: batch {} does not chain to the batch before it (that batch was edited, removed or reordered)",
                header.batch
            ));
        }
        if header.first_seq <= last_seq && last_seq != 0 {
            report.problems.push(format!("{key}: batch {} repeats or reorders event sequence numbers", header.batch));
        }
        let lines = plain.split(|b| *b == b'\n').skip(1).filter(|l| !l.is_empty()).count() as u64;
        if lines != header.count {
            report.problems.push(format!("{key}: batch {} holds {lines} events but its header says {}", header.batch, header.count));
        }
        report.events += lines;
        last_seq = header.last_seq;
        prev_hash = hash;
        expected_batch = header.batch + 1;
        report.batches += 1;
    }

    match checkpoint {
        None if report.batches > 0 => report.problems.push("no signed checkpoint found: the newest batches cannot be confirmed".into()),
        None => {}
        Some(doc) => match serde_json::from_slice::<serde_json::Value>(doc) {
            Ok(cp) => {
                let batch = cp.get("batch").and_then(serde_json::Value::as_u64).unwrap_or(0);
                let hash = cp.get("hash").and_then(serde_json::Value::as_str).unwrap_or("");
                let sig = cp.get("signature").and_then(serde_json::Value::as_str).and_then(|s| hex::decode(s).ok()).unwrap_or_default();
                let key = hex::decode(public_key_hex).unwrap_or_default();
                let message = checkpoint_message(org, stream, batch, hash);
                let valid = signature::UnparsedPublicKey::new(&signature::ED25519, &key).verify(message.as_bytes(), &sig).is_ok();
                if !valid {
                    report.problems.push("the checkpoint signature does not verify with the audit public key".into());
                } else if batch != report.batches || hash != prev_hash {
                    report.problems.push(format!(
                        "the signed checkpoint names batch {batch}, but the chain ends at batch {} with another hash (batches were removed, or the last was edited)",
                        report.batches
                    ));
                }
            }
            Err(_) => report.problems.push("the checkpoint is not valid JSON".into()),
        },
    }
    report.ok = report.problems.is_empty();
    report
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::{Decision, EventKind};

    fn chain(n: u64, signer: &CheckpointSigner) -> (Vec<(String, Vec<u8>)>, Vec<u8>) {
        let mut prev = GENESIS_HASH.to_owned();
        let mut objects = Vec::new();
        for batch in 1..=n {
            let event = AuditEvent::new(EventKind::Data, "default", "s3:GetObject", Decision::Allow);
            let header = BatchHeader {
                format: BATCH_FORMAT.into(),
                org: "default".into(),
                stream: "data-plane".into(),
                batch,
                prev_hash: prev.clone(),
                first_seq: batch,
                last_seq: batch,
                count: 1,
            };
            let (hash, gz) = encode_batch(&header, &[(batch, &event)]);
            objects.push((format!("data-plane/{batch:020}.jsonl.gz"), gz));
            prev = hash;
        }
        let checkpoint = signer.checkpoint("default", "data-plane", n, &prev);
        (objects, checkpoint)
    }

    fn signer() -> CheckpointSigner {
        CheckpointSigner::from_seed(&[5u8; 32]).unwrap()
    }

    fn verify(objects: &[(String, Vec<u8>)], checkpoint: &[u8]) -> VerifyReport {
        verify_chain("default", "data-plane", objects, Some(checkpoint), &signer().public_key_hex())
    }

    #[test]
    fn intact_chain_verifies() {
        let (objects, cp) = chain(4, &signer());
        let report = verify(&objects, &cp);
        assert!(report.ok, "{:?}", report.problems);
        assert_eq!(report.batches, 4);
    }

    #[test]
    fn edited_batch_is_named() {
        let (mut objects, cp) = chain(4, &signer());
        let header = BatchHeader {
            format: BATCH_FORMAT.into(),
            org: "default".into(),
            stream: "data-plane".into(),
            batch: 2,
            prev_hash: "x".into(),
            first_seq: 2,
            last_seq: 2,
            count: 0,
        };
        let (_, forged) = encode_batch(&header, &[]);
        objects[1].1 = forged;
        let report = verify(&objects, &cp);
        assert!(!report.ok);
        assert!(report.problems.iter().any(|p| p.contains("batch 2")), "{:?}", report.problems);
    }

    #[test]
    fn removed_and_reordered_batches_are_found() {
        let (objects, cp) = chain(4, &signer());
        let mut removed = objects.clone();
        removed.remove(1);
        assert!(!verify(&removed, &cp).ok);
        let mut reordered = objects.clone();
        reordered.swap(1, 2);
        assert!(!verify(&reordered, &cp).ok);
        let mut truncated = objects;
        truncated.pop();
        assert!(!verify(&truncated, &cp).ok);
    }

    #[test]
    fn forged_checkpoint_fails() {
        let (objects, _) = chain(2, &signer());
        let other = CheckpointSigner::from_seed(&[6u8; 32]).unwrap();
        let (_, cp) = chain(2, &other);
        assert!(!verify(&objects, &cp).ok);
    }
}
