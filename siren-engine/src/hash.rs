//! Stable hashing for cache keys and ids: a leaf module that every layer may use (the engine,
//! training, serving and the stages).

/// FNV-1a over byte strings (cache keys, stable ids; not cryptographic). Each part ends with a
/// separator byte, so `["ab", "c"]` and `["a", "bc"]` hash apart.
pub fn fnv1a<'a>(parts: impl IntoIterator<Item = &'a [u8]>) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for p in parts {
        for &b in p {
            h = (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3);
        }
        h = (h ^ 0xff).wrapping_mul(0x0100_0000_01b3);
    }
    h
}

#[cfg(test)]
mod tests {
    use super::fnv1a;

    #[test]
    fn parts_are_separated_and_the_value_is_stable() {
        assert_ne!(fnv1a([&b"ab"[..], b"c"]), fnv1a([&b"a"[..], b"bc"]));
        // The FNV-1a 64 offset basis, then one 0xff separator for the empty part.
        assert_eq!(
            fnv1a([&b""[..]]),
            (0xcbf2_9ce4_8422_2325u64 ^ 0xff).wrapping_mul(0x0100_0000_01b3)
        );
    }
}
