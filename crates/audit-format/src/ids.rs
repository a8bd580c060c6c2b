//! Generated `event_id`s: random (version 4) UUIDs, as the Python trail's `uuid4()`.

use std::io;

use crate::error::{Error, Result};

/// Random UUIDs drawn from the operating system's generator 32 at a time.
///
/// One `getrandom` call fills the pool for 32 ids instead of one call per id (the
/// measurement is in docs/internals.md, "event ids"). The bytes are the same kernel
/// randomness, each used once.
///
/// The pool belongs to one trail, not to a thread: after `fork` a child has a copy, but no
/// writer thread, so nothing the child logs through the parent's trail is ever stored, and
/// the copied bytes cannot put a parent's `event_id` on a second stored event.
#[derive(Debug)]
pub struct IdPool {
    bytes: [u8; 512],
    used: usize,
}

impl Default for IdPool {
    fn default() -> Self {
        Self {
            bytes: [0; 512],
            used: 512,
        }
    }
}

impl IdPool {
    /// The next id, hyphenated (`xxxxxxxx-xxxx-4xxx-yxxx-xxxxxxxxxxxx`).
    ///
    /// # Errors
    /// [`Error::Io`] when the operating system's generator failed (`getrandom`).
    pub fn next_id(&mut self) -> Result<String> {
        if self.used == self.bytes.len() {
            getrandom::fill(&mut self.bytes).map_err(|e| {
                Error::io("cannot draw random bytes for an event_id from", "getrandom")(
                    io::Error::from(e),
                )
            })?;
            self.used = 0;
        }
        let mut random = [0u8; 16];
        random.copy_from_slice(&self.bytes[self.used..self.used + 16]);
        self.used += 16;
        Ok(uuid::Builder::from_random_bytes(random)
            .into_uuid()
            .hyphenated()
            .to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_version_4_and_distinct_across_refills() -> Result<()> {
        let mut pool = IdPool::default();
        let mut seen = std::collections::HashSet::new();
        // Three refills and a bit.
        for _ in 0..100 {
            let id = pool.next_id()?;
            let parsed = uuid::Uuid::parse_str(&id).map_err(|e| Error::backend(e.to_string()))?;
            assert_eq!(parsed.get_version_num(), 4, "{id}");
            assert_eq!(parsed.get_variant(), uuid::Variant::RFC4122, "{id}");
            assert_eq!(id.len(), 36);
            assert!(seen.insert(id), "an id came out twice");
        }
        Ok(())
    }
}
