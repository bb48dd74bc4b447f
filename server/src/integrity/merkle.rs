//! The Merkle tree of RFC 6962 (Certificate Transparency), section 2.1:
//! leaves hashed with a 0x00 prefix (see `leaf`), inner nodes as SHA-256 of
//! 0x01 ‖ left ‖ right, the split at the largest power of two below the
//! size. Chosen because it is specified, implemented independently many
//! times, and its inclusion proofs are short (log₂ n hashes).

use sha2::{Digest as _, Sha256};

pub type Hash = [u8; 32];

fn node(left: &Hash, right: &Hash) -> Hash {
    let mut h = Sha256::new();
    h.update([0x01]);
    h.update(left);
    h.update(right);
    h.finalize().into()
}

/// Largest power of two strictly below `n` (n ≥ 2).
fn split(n: usize) -> usize {
    let mut k = 1;
    while k * 2 < n {
        k *= 2;
    }
    k
}

/// MTH(D[n]) over leaf hashes. The empty tree is SHA-256 of nothing
/// (RFC 6962); a digest never seals zero leaves.
pub fn root(leaves: &[Hash]) -> Hash {
    match leaves.len() {
        0 => Sha256::digest([]).into(),
        1 => leaves[0],
        n => {
            let k = split(n);
            node(&root(&leaves[..k]), &root(&leaves[k..]))
        }
    }
}

/// PATH(m, D[n]): the audit path of leaf `index`, bottom up. `None` when
/// `index` is outside the tree.
pub fn proof(leaves: &[Hash], index: usize) -> Option<Vec<Hash>> {
    if index >= leaves.len() {
        return None;
    }
    let mut path = Vec::new();
    walk(leaves, index, &mut path);
    Some(path)
}

fn walk(leaves: &[Hash], m: usize, path: &mut Vec<Hash>) {
    let n = leaves.len();
    if n <= 1 {
        return;
    }
    let k = split(n);
    if m < k {
        walk(&leaves[..k], m, path);
        path.push(root(&leaves[k..]));
    } else {
        walk(&leaves[k..], m - k, path);
        path.push(root(&leaves[..k]));
    }
}

/// Recomputes the root from a leaf, its index, the tree size and its audit
/// path (RFC 9162, 2.1.3.2); `None` if the path has the wrong length.
pub fn root_from_proof(leaf: &Hash, index: usize, size: usize, path: &[Hash]) -> Option<Hash> {
    if index >= size {
        return None;
    }
    let (mut f_n, mut s_n) = (index, size - 1);
    let mut r = *leaf;
    for p in path {
        if s_n == 0 {
            return None;
        }
        if f_n & 1 == 1 || f_n == s_n {
            r = node(p, &r);
            while f_n & 1 == 0 && f_n != 0 {
                f_n >>= 1;
                s_n >>= 1;
            }
        } else {
            r = node(&r, p);
        }
        f_n >>= 1;
        s_n >>= 1;
    }
    (s_n == 0).then_some(r)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn leaves(n: usize) -> Vec<Hash> {
        (0..n)
            .map(|i| {
                let mut h = Sha256::new();
                h.update([0x00]);
                h.update(i.to_le_bytes());
                h.finalize().into()
            })
            .collect()
    }

    #[test]
    fn small_trees_follow_the_definition() {
        let l = leaves(3);
        assert_eq!(root(&l[..1]), l[0]);
        assert_eq!(root(&l[..2]), node(&l[0], &l[1]));
        assert_eq!(root(&l), node(&node(&l[0], &l[1]), &l[2]));
    }

    #[test]
    fn every_proof_of_every_size_verifies_and_only_for_its_leaf() {
        for n in 1..=33 {
            let l = leaves(n);
            let r = root(&l);
            for i in 0..n {
                let p = proof(&l, i).unwrap();
                assert_eq!(root_from_proof(&l[i], i, n, &p), Some(r), "n={n} i={i}");
                let other = (i + 1) % n;
                if other != i {
                    assert_ne!(root_from_proof(&l[other], i, n, &p), Some(r), "n={n} i={i}");
                }
                if !p.is_empty() {
                    assert_ne!(root_from_proof(&l[i], i, n, &p[1..]), Some(r));
                }
            }
            assert_eq!(proof(&l, n), None);
        }
    }

    /// RFC 6962's own test vector: the root of its eight test leaves
    /// (as used by Certificate Transparency implementations).
    #[test]
    fn matches_the_certificate_transparency_test_vector() {
        let inputs: [&[u8]; 8] = [
            b"",
            b"\x00",
            b"\x10",
            b"\x20\x21",
            b"\x30\x31",
            b"\x40\x41\x42\x43",
            b"\x50\x51\x52\x53\x54\x55\x56\x57",
            b"\x60\x61\x62\x63\x64\x65\x66\x67\x68\x69\x6a\x6b\x6c\x6d\x6e\x6f",
        ];
        let l: Vec<Hash> = inputs
            .iter()
            .map(|d| {
                let mut h = Sha256::new();
                h.update([0x00]);
                h.update(d);
                h.finalize().into()
            })
            .collect();
        let hex = super::super::encoding::hex;
        assert_eq!(
            hex(&root(&l[..1])),
            "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d"
        );
        assert_eq!(
            hex(&root(&l)),
            "5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328"
        );
    }
}
