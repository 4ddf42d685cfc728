//! A xorshift generator for the tests that drive the machines with random
//! peers: deterministic, so a seed names a run, and without dependencies.

/// Xorshift64.
pub struct Rng(u64);

#[allow(dead_code)]
impl Rng {
    /// A generator for `seed` (any seed, zero included).
    pub fn new(seed: u64) -> Self {
        Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1)
    }

    /// The next number.
    pub fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    /// A number below `n` (`n` > 0).
    pub fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }

    /// One of `choices`, evenly (a choice listed twice is twice as likely).
    pub fn pick<'a>(&mut self, choices: &[&'a str]) -> &'a str {
        choices[self.below(choices.len() as u64) as usize]
    }
}
