//! Randomness as an input: query IDs and the choice of source socket come from
//! an [`Entropy`] the shell gives the core (the kernel's CSPRNG there), so tests
//! and fuzz targets replay deterministically with [`SplitMix64`].

/// A source of random numbers.
pub trait Entropy {
    /// The next random 64 bits.
    fn next_u64(&mut self) -> u64;

    /// A random number below `n` (`n > 0`; the bias is below 2^-32 for our sizes).
    fn below(&mut self, n: u64) -> u64 {
        if n == 0 { 0 } else { self.next_u64() % n }
    }
}

/// A small deterministic generator for tests and fuzzing (not for production:
/// its output is predictable).
#[derive(Debug, Clone)]
pub struct SplitMix64(pub u64);

impl Entropy for SplitMix64 {
    fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
}
