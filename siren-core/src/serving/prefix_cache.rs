//! A memory-bounded cache of computed prompt prefixes (one user's part of the prompt), least
//! recently used first out.

use std::collections::HashMap;

use crate::engine::Prefix;

/// Counters of a [`PrefixCache`].
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct CacheStats {
    /// Lookups that found their prefix.
    pub hits: u64,
    /// Lookups that computed it.
    pub misses: u64,
    /// Prefixes dropped to stay within the memory bound.
    pub evictions: u64,
    /// Prefixes held.
    pub entries: usize,
    /// Bytes of keys and values held.
    pub bytes: usize,
    /// The bound.
    pub max_bytes: usize,
}

struct Entry {
    prefix: Prefix,
    bytes: usize,
    used: u64,
}

/// Prefixes by the hash of their tokens (a hit also compares the tokens), at most `max_bytes`
/// of keys and values in all; a prefix larger than the bound is computed but not kept.
pub struct PrefixCache {
    entries: HashMap<u64, Entry>,
    clock: u64,
    stats: CacheStats,
}

impl PrefixCache {
    /// An empty cache holding at most `max_bytes`.
    pub fn new(max_bytes: usize) -> Self {
        Self {
            entries: HashMap::new(),
            clock: 0,
            stats: CacheStats {
                max_bytes,
                ..CacheStats::default()
            },
        }
    }

    /// The key of a token sequence.
    pub fn key(tokens: &[u32]) -> u64 {
        let bytes: Vec<u8> = tokens.iter().flat_map(|t| t.to_le_bytes()).collect();
        crate::hash::fnv1a([bytes.as_slice()])
    }

    /// Whether the prefix of `tokens` is held.
    pub fn contains(&self, tokens: &[u32]) -> bool {
        self.entries
            .get(&Self::key(tokens))
            .is_some_and(|e| e.prefix.tokens() == tokens)
    }

    /// The prefix of `tokens`, from the cache or made by `make` (and kept when it fits).
    pub fn get_or_insert_with<E>(
        &mut self,
        tokens: &[u32],
        bytes: impl Fn(&Prefix) -> usize,
        make: impl FnOnce() -> Result<Prefix, E>,
    ) -> Result<Prefix, E> {
        self.clock += 1;
        let key = Self::key(tokens);
        if let Some(e) = self.entries.get_mut(&key)
            && e.prefix.tokens() == tokens
        {
            e.used = self.clock;
            self.stats.hits += 1;
            return Ok(e.prefix.clone());
        }
        self.stats.misses += 1;
        let prefix = make()?;
        let size = bytes(&prefix);
        if size <= self.stats.max_bytes {
            if let Some(old) = self.entries.remove(&key) {
                self.stats.bytes -= old.bytes;
            }
            while self.stats.bytes + size > self.stats.max_bytes {
                let Some((&k, _)) = self.entries.iter().min_by_key(|(_, e)| e.used) else {
                    break;
                };
                if let Some(old) = self.entries.remove(&k) {
                    self.stats.bytes -= old.bytes;
                    self.stats.evictions += 1;
                }
            }
            self.stats.bytes += size;
            self.entries.insert(
                key,
                Entry {
                    prefix: prefix.clone(),
                    bytes: size,
                    used: self.clock,
                },
            );
        }
        Ok(prefix)
    }

    /// Drops every prefix (counters other than the held bytes stay).
    pub fn clear(&mut self) {
        self.entries.clear();
        self.stats.bytes = 0;
    }

    /// The counters.
    pub fn stats(&self) -> CacheStats {
        CacheStats {
            entries: self.entries.len(),
            ..self.stats
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use burn::tensor::Device;

    #[test]
    fn the_bound_holds_and_the_least_recently_used_goes_first() {
        let device = Device::flex();
        let model = crate::testkit::tiny_decoder(2, &device).unwrap();
        let make = |t: &[u32]| Prefix::new(&model, t, &device);
        let size = |p: &Prefix| p.cache_bytes(&model);
        let one = make(&[1, 2, 3]).unwrap().cache_bytes(&model);
        // Room for two three-token prefixes.
        let mut c = PrefixCache::new(2 * one);
        let (a, b, d) = ([1u32, 2, 3], [4u32, 5, 6], [7u32, 8, 9]);
        c.get_or_insert_with(&a, size, || make(&a)).unwrap();
        c.get_or_insert_with(&b, size, || make(&b)).unwrap();
        // `a` used again: `b` is now the oldest.
        c.get_or_insert_with(&a, size, || -> crate::Result<Prefix> {
            panic!("a is cached")
        })
        .unwrap();
        c.get_or_insert_with(&d, size, || make(&d)).unwrap();
        assert!(c.contains(&a) && c.contains(&d) && !c.contains(&b));
        let s = c.stats();
        assert_eq!((s.hits, s.misses, s.evictions, s.entries), (1, 3, 1, 2));
        assert_eq!(s.bytes, 2 * one);
        // A prefix larger than the whole bound is computed, not kept.
        let long: Vec<u32> = (0..9).collect();
        let p = c.get_or_insert_with(&long, size, || make(&long)).unwrap();
        assert_eq!(p.tokens(), long.as_slice());
        assert!(!c.contains(&long) && c.stats().bytes <= 2 * one);
    }
}
