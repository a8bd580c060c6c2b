//! Making the kit's chained lines, continuing from a stored head.

use audit_format::record::ChainFields;
use audit_format::{AuditEvent, AuditEventType, AuditRecord, Integrity, LineEncoder};
use chrono::SubsecRound;

/// Makes chained lines, continuing from a head.
pub(super) struct Chain {
    encoder: LineEncoder,
    pub(super) next: u64,
    pub(super) prev: Option<[u8; 64]>,
}

impl Chain {
    pub(super) fn new() -> Self {
        Self {
            encoder: LineEncoder::new(),
            next: 1,
            prev: None,
        }
    }

    /// A chain continuing after `line` (a stored head).
    pub(super) fn after(line: &str) -> Result<Self, String> {
        let fields: ChainFields<'_> = serde_json::from_str(line)
            .map_err(|e| format!("its last_line is not an audit event: {e}"))?;
        let checksum = fields.checksum.as_deref().unwrap_or_default();
        let prev: [u8; 64] = checksum
            .as_bytes()
            .try_into()
            .map_err(|_| format!("its last_line has no SHA-256 checksum (`{checksum}`)"))?;
        Ok(Self {
            encoder: LineEncoder::new(),
            next: fields.sequence_number + 1,
            prev: Some(prev),
        })
    }

    /// The record at `seq` after `prev`, with `message`.
    pub(super) fn make(
        &mut self,
        seq: u64,
        prev: Option<&[u8; 64]>,
        message: &str,
    ) -> (AuditRecord, [u8; 64]) {
        let ev = AuditEvent::new(AuditEventType::DataAccess, message.to_owned());
        self.encoder.encode(
            &ev,
            &format!("conformance-{seq}"),
            "audit-plugin-test",
            i64::from(std::process::id()),
            ev.compliance_level,
        );
        self.encoder.assemble(
            &ev,
            seq,
            prev,
            chrono::Utc::now().trunc_subsecs(6),
            &Integrity::Sha256,
        )
    }

    /// The next `n` records of the chain.
    pub(super) fn batch(&mut self, n: u64) -> Vec<AuditRecord> {
        (0..n)
            .map(|_| {
                let seq = self.next;
                let prev = self.prev;
                let (record, hex) = self.make(seq, prev.as_ref(), &format!("conformance {seq}"));
                self.next += 1;
                self.prev = Some(hex);
                record
            })
            .collect()
    }
}
