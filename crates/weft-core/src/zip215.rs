//! Ed25519 verification by ZIP 215's rules, single and batched, on
//! curve25519-dalek 4 (whose AVX2 backend it picks at run time).
//!
//! ZIP 215 (<https://zips.z.cash/zip-0215>): `A` and `R` may be any
//! encoding of a curve point, `s` must be canonical, and the check is the
//! cofactored equation `[8]([s]B - R - [k]A) = 0` with
//! `k = SHA-512(R ‖ A ‖ M) mod ℓ`. Under it, a batch (a random linear
//! combination of the equations) passes exactly when every signature
//! passes alone, except with probability about 2^-128 over coefficients
//! the signer cannot predict. That agreement is what consensus needs: a
//! transaction one node admitted through a batch verifies the same way,
//! alone, in every other node's FinalizeBlock. ed25519-consensus implements
//! the same rules on curve25519-dalek-ng, whose portable backend verifies
//! about 40 % slower here; its outcomes are checked against these in tests.
//!
//! Weft adds one rule of its own before the equation: the public key must
//! not be of small order (a weak key, whose signatures anyone could make).

use curve25519_dalek::{
    constants::ED25519_BASEPOINT_POINT,
    edwards::{CompressedEdwardsY, EdwardsPoint},
    scalar::Scalar,
    traits::{IsIdentity, VartimeMultiscalarMul},
};
use rand::RngCore;
use sha2::{Digest, Sha512};

/// Why a signature does not verify.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Zip215Error {
    /// The key is not a curve point, or is of small order.
    Key,
    /// Anything else: `R` not a point, `s` not canonical, the equation.
    Signature,
}

/// A public key decoded once: the point and its encoding (which goes into
/// the challenge hash as given, not re-encoded).
#[derive(Clone, Copy)]
pub(crate) struct Key {
    point: EdwardsPoint,
    bytes: [u8; 32],
}

impl Key {
    pub(crate) fn decode(bytes: &[u8; 32]) -> Result<Self, Zip215Error> {
        let point = CompressedEdwardsY(*bytes)
            .decompress()
            .ok_or(Zip215Error::Key)?;
        if point.is_small_order() {
            return Err(Zip215Error::Key);
        }
        Ok(Key {
            point,
            bytes: *bytes,
        })
    }
}

/// One signature's parts: `R`, `s` and the challenge `k`.
struct Parts {
    r: EdwardsPoint,
    s: Scalar,
    k: Scalar,
}

fn parts(key: &Key, message: &[u8], signature: &[u8; 64]) -> Result<Parts, Zip215Error> {
    let mut r_bytes = [0u8; 32];
    r_bytes.copy_from_slice(&signature[..32]);
    let mut s_bytes = [0u8; 32];
    s_bytes.copy_from_slice(&signature[32..]);
    let r = CompressedEdwardsY(r_bytes)
        .decompress()
        .ok_or(Zip215Error::Signature)?;
    let s = Option::<Scalar>::from(Scalar::from_canonical_bytes(s_bytes))
        .ok_or(Zip215Error::Signature)?;
    let hash = Sha512::new()
        .chain_update(r_bytes)
        .chain_update(key.bytes)
        .chain_update(message)
        .finalize();
    let mut wide = [0u8; 64];
    wide.copy_from_slice(&hash);
    Ok(Parts {
        r,
        s,
        k: Scalar::from_bytes_mod_order_wide(&wide),
    })
}

/// Verifies one signature.
pub(crate) fn verify(key: &Key, message: &[u8], signature: &[u8; 64]) -> Result<(), Zip215Error> {
    let p = parts(key, message, signature)?;
    // [s]B - [k]A, then - R, times the cofactor.
    let sb_minus_ka = EdwardsPoint::vartime_double_scalar_mul_basepoint(&p.k, &-key.point, &p.s);
    if (sb_minus_ka - p.r).mul_by_cofactor().is_identity() {
        Ok(())
    } else {
        Err(Zip215Error::Signature)
    }
}

/// Signatures queued for one check.
#[derive(Default)]
pub(crate) struct Batch {
    items: Vec<(Key, Parts)>,
    /// An item already known not to verify (bad `R` or `s`).
    failed: bool,
}

impl Batch {
    pub(crate) fn queue(&mut self, key: Key, message: &[u8], signature: &[u8; 64]) {
        match parts(&key, message, signature) {
            Ok(p) => self.items.push((key, p)),
            Err(_) => self.failed = true,
        }
    }

    /// `[8]([-Σ zᵢsᵢ]B + Σ [zᵢ]Rᵢ + Σ [zᵢkᵢ]Aᵢ) = 0` with random 128-bit
    /// `zᵢ`, in one multiscalar multiplication.
    pub(crate) fn verify(self, rng: &mut impl RngCore) -> Result<(), Zip215Error> {
        if self.failed {
            return Err(Zip215Error::Signature);
        }
        if self.items.is_empty() {
            return Ok(());
        }
        let n = self.items.len();
        let mut scalars = Vec::with_capacity(2 * n + 1);
        let mut points = Vec::with_capacity(2 * n + 1);
        let mut b_coefficient = Scalar::ZERO;
        scalars.push(Scalar::ZERO); // replaced below
        points.push(ED25519_BASEPOINT_POINT);
        for (key, p) in &self.items {
            let mut z = [0u8; 16];
            rng.fill_bytes(&mut z);
            let z = Scalar::from(u128::from_le_bytes(z));
            b_coefficient -= z * p.s;
            scalars.push(z);
            points.push(p.r);
            scalars.push(z * p.k);
            points.push(key.point);
        }
        scalars[0] = b_coefficient;
        if EdwardsPoint::vartime_multiscalar_mul(&scalars, &points)
            .mul_by_cofactor()
            .is_identity()
        {
            Ok(())
        } else {
            Err(Zip215Error::Signature)
        }
    }
}

#[cfg(test)]
mod tests {
    use curve25519_dalek::constants::EIGHT_TORSION;

    use super::*;

    /// ed25519-consensus's verdict (the reference ZIP 215 implementation),
    /// with Weft's weak-key rule in front.
    fn reference(key: &[u8; 32], message: &[u8], signature: &[u8; 64]) -> bool {
        if Key::decode(key).is_err() {
            return false;
        }
        ed25519_consensus::VerificationKey::try_from(*key)
            .and_then(|k| k.verify(&ed25519_consensus::Signature::from(*signature), message))
            .is_ok()
    }

    fn ours(key: &[u8; 32], message: &[u8], signature: &[u8; 64]) -> bool {
        Key::decode(key).is_ok_and(|k| verify(&k, message, signature).is_ok())
    }

    fn batch_of(items: &[([u8; 32], Vec<u8>, [u8; 64])]) -> bool {
        let mut b = Batch::default();
        for (k, m, s) in items {
            match Key::decode(k) {
                Ok(k) => b.queue(k, m, s),
                Err(_) => return false,
            }
        }
        b.verify(&mut rand::rngs::OsRng).is_ok()
    }

    /// Signs `message` for the key `[a]B + T` (a mixed-order key when `T`
    /// is a torsion point) with nonce point `[r]B + U`: the cofactored
    /// equation holds, the cofactorless one fails unless the torsion parts
    /// cancel. Exactly the inputs on which verifiers disagree.
    fn crafted(a: u64, t: usize, r: u64, u: usize, message: &[u8]) -> ([u8; 32], [u8; 64]) {
        let a = Scalar::from(a);
        let r = Scalar::from(r);
        let key = ED25519_BASEPOINT_POINT * a + EIGHT_TORSION[t];
        let big_r = ED25519_BASEPOINT_POINT * r + EIGHT_TORSION[u];
        let key_bytes = key.compress().0;
        let r_bytes = big_r.compress().0;
        let hash = Sha512::new()
            .chain_update(r_bytes)
            .chain_update(key_bytes)
            .chain_update(message)
            .finalize();
        let mut wide = [0u8; 64];
        wide.copy_from_slice(&hash);
        let k = Scalar::from_bytes_mod_order_wide(&wide);
        let s = r + k * a;
        let mut sig = [0u8; 64];
        sig[..32].copy_from_slice(&r_bytes);
        sig[32..].copy_from_slice(s.as_bytes());
        (key_bytes, sig)
    }

    #[test]
    fn agrees_with_the_reference_on_honest_forged_and_torsion_crafted_signatures() {
        let mut cases = Vec::new();
        for i in 0..16u8 {
            let key = crate::SigningKey::from_seed(&format!("zip215-{i}"));
            let msg = vec![i; 50];
            let sig = key.sign(&msg).0;
            cases.push((key.public_key().0, msg.clone(), sig));
            let mut forged = sig;
            forged[usize::from(i) % 64] ^= 1;
            cases.push((key.public_key().0, msg, forged));
        }
        for t in 0..8 {
            for u in 0..8 {
                let msg = vec![t as u8, u as u8];
                let (k, s) = crafted(7 + t as u64, t, 11 + u as u64, u, &msg);
                cases.push((k, msg, s));
            }
        }
        // Small-order keys (refused) and a non-canonical s (refused).
        for t in EIGHT_TORSION {
            let (_, s) = crafted(5, 0, 9, 0, b"m");
            cases.push((t.compress().0, b"m".to_vec(), s));
        }
        let (k, mut s) = crafted(5, 0, 9, 0, b"m");
        s[63] |= 0xf0;
        cases.push((k, b"m".to_vec(), s));

        let mut accepted = 0;
        for (i, (k, m, s)) in cases.iter().enumerate() {
            let want = reference(k, m, s);
            assert_eq!(ours(k, m, s), want, "case {i}");
            assert_eq!(
                batch_of(&[(*k, m.clone(), *s)]),
                want,
                "case {i} as a batch of one"
            );
            accepted += usize::from(want);
        }
        // The 64 crafted mixed-order signatures all pass ZIP 215.
        assert_eq!(accepted, 16 + 64);

        // A batch of everything that passes, passes; one failure fails it.
        let good: Vec<_> = cases
            .iter()
            .filter(|(k, m, s)| reference(k, m, s))
            .cloned()
            .collect();
        assert!(batch_of(&good));
        let mut one_bad = good.clone();
        one_bad[40].2[40] ^= 1;
        assert!(!batch_of(&one_bad));
    }

    #[test]
    fn the_cofactorless_rule_would_disagree_on_the_crafted_signatures() {
        // Why the rule matters: dalek's strict verifier refuses what ZIP 215
        // (and a batch) accepts.
        let (k, s) = crafted(3, 1, 4, 2, b"x");
        assert!(ours(&k, b"x", &s));
        let dalek = ed25519_dalek::VerifyingKey::from_bytes(&k).unwrap();
        assert!(dalek
            .verify_strict(b"x", &ed25519_dalek::Signature::from_bytes(&s))
            .is_err());
    }
}
