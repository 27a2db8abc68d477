//! Input sources shared by the in-tree fuzz loops (tests/fuzz.rs) and the cargo-fuzz
//! targets (fuzz/): every harness is a function of a byte slice, so a libFuzzer input and
//! a seeded PRNG drive exactly the same code.

/// SplitMix64: small, seeded, reproducible.
pub struct Rng(pub u64);

impl Rng {
    pub fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    pub fn below(&mut self, n: usize) -> usize {
        if n == 0 {
            0
        } else {
            (self.next() % n as u64) as usize
        }
    }

    pub fn bytes(&mut self, n: usize) -> Vec<u8> {
        (0..n).map(|_| self.next() as u8).collect()
    }

    /// Random edits of `seed`: byte flips, inserts of interesting bytes, deletions,
    /// duplications and truncation. Used to turn hand-written seeds into fuzz inputs.
    pub fn mutate(&mut self, seed: &[u8], dict: &[&[u8]]) -> Vec<u8> {
        let mut v = seed.to_vec();
        for _ in 0..=self.below(4) {
            let at = self.below(v.len() + 1);
            match self.below(8) {
                0 if at < v.len() => v[at] = self.next() as u8,
                1 if at < v.len() => v[at] ^= 1 << self.below(8),
                2 => v.insert(at, b"\r\n\t :;,\0\x7f\xff0-9aZ/?#%{}\"'\\"[self.below(24)]),
                3 if !dict.is_empty() => {
                    let d = dict[self.below(dict.len())];
                    v.splice(at..at, d.iter().copied());
                }
                4 if at < v.len() => {
                    let end = (at + 1 + self.below(16)).min(v.len());
                    v.drain(at..end);
                }
                5 if at < v.len() => {
                    let end = (at + 1 + self.below(32)).min(v.len());
                    let piece = v[at..end].to_vec();
                    v.splice(at..at, piece);
                }
                6 => v.truncate(at),
                _ => {}
            }
        }
        v
    }
}

/// Structured choices read from fuzz input bytes; zeros once the input is exhausted, so
/// every input decodes to something and short inputs to simple cases.
pub struct Source<'a> {
    data: &'a [u8],
    pos: usize,
}

impl<'a> Source<'a> {
    pub fn new(data: &'a [u8]) -> Self {
        Source { data, pos: 0 }
    }

    pub fn byte(&mut self) -> u8 {
        let b = self.data.get(self.pos).copied().unwrap_or(0);
        self.pos += 1;
        b
    }

    pub fn exhausted(&self) -> bool {
        self.pos >= self.data.len()
    }

    /// A number in 0..n (n <= 65536).
    pub fn below(&mut self, n: usize) -> usize {
        if n <= 1 {
            return 0;
        }
        let v = if n <= 256 { self.byte() as usize } else { (self.byte() as usize) << 8 | self.byte() as usize };
        v % n
    }

    pub fn bool(&mut self) -> bool {
        self.byte() & 1 == 1
    }

    /// True with probability about 1/n.
    pub fn one_in(&mut self, n: usize) -> bool {
        self.below(n) == 0
    }

    pub fn pick<T: Copy>(&mut self, items: &[T]) -> T {
        items[self.below(items.len())]
    }

    /// The bytes not consumed yet.
    pub fn rest(&mut self) -> &'a [u8] {
        let r = self.data.get(self.pos..).unwrap_or(&[]);
        self.pos = self.data.len();
        r
    }
}
