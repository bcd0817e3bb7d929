//! Exact identification over a trained large person group.
//!
//! `train` snapshots the group's enrolled templates into a [`GroupIndex`]: one contiguous row-major matrix of
//! unit-length templates, so a search is a single pass of dot products (the cosine of unit vectors) over memory
//! in order, in fixed-width chunks the compiler vectorises. Each person scores its best face; the answer is the
//! top `k` persons at or above a threshold. Exact search keeps recall at 1 by construction; its cost is linear in
//! the number of enrolled faces (`cargo bench -p tessera-face` measures it at 1k, 10k and 100k persons).

use uuid::Uuid;

/// Width of the unrolled dot product.
const LANES: usize = 8;

/// The enrolled templates of one trained group.
#[derive(Debug, Clone, Default)]
pub struct GroupIndex {
    dim: usize,
    persons: Vec<Uuid>,
    matrix: Vec<f32>,
}

impl GroupIndex {
    /// Builds the index from `(person, template)` rows; every template must have `dim` values (others are
    /// refused, so a corrupt row cannot shift the matrix).
    pub fn build(dim: usize, rows: impl IntoIterator<Item = (Uuid, Vec<f32>)>) -> Result<Self, usize> {
        let mut index = Self {
            dim,
            ..Self::default()
        };
        for (person, template) in rows {
            if template.len() != dim {
                return Err(template.len());
            }
            index.persons.push(person);
            index.matrix.extend_from_slice(&template);
        }
        Ok(index)
    }

    /// How many templates it holds.
    pub fn len(&self) -> usize {
        self.persons.len()
    }

    /// Whether it holds none.
    pub fn is_empty(&self) -> bool {
        self.persons.is_empty()
    }

    /// The persons most similar to `query` (unit length, `dim` values): each person's best cosine, at least
    /// `min_cosine`, highest first, at most `k`.
    pub fn search(&self, query: &[f32], k: usize, min_cosine: f32) -> Vec<(Uuid, f32)> {
        if query.len() != self.dim || k == 0 {
            return Vec::new();
        }
        let mut best: std::collections::HashMap<Uuid, f32> = std::collections::HashMap::new();
        for (row, person) in self.matrix.chunks_exact(self.dim).zip(&self.persons) {
            let score = dot(row, query);
            if score >= min_cosine {
                let entry = best.entry(*person).or_insert(f32::NEG_INFINITY);
                *entry = entry.max(score);
            }
        }
        let mut ranked: Vec<(Uuid, f32)> = best.into_iter().collect();
        ranked.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
        ranked.truncate(k);
        ranked
    }
}

/// The dot product, in `LANES` independent accumulators so that it vectorises.
fn dot(a: &[f32], b: &[f32]) -> f32 {
    let mut acc = [0.0f32; LANES];
    let (a_chunks, b_chunks) = (a.chunks_exact(LANES), b.chunks_exact(LANES));
    let tail: f32 = a_chunks
        .remainder()
        .iter()
        .zip(b_chunks.remainder())
        .map(|(x, y)| x * y)
        .sum();
    for (x, y) in a_chunks.zip(b_chunks) {
        for i in 0..LANES {
            acc[i] += x[i] * y[i];
        }
    }
    acc.iter().sum::<f32>() + tail
}

#[cfg(test)]
mod tests {
    use super::*;

    fn unit(dim: usize, hot: usize, other: usize, w: f32) -> Vec<f32> {
        let mut v = vec![0.0; dim];
        v[hot] = (1.0 - w * w).sqrt();
        v[other] += w;
        v
    }

    #[test]
    fn best_face_per_person_highest_first_above_the_threshold() {
        let (alice, bob, carol) = (Uuid::from_u128(1), Uuid::from_u128(2), Uuid::from_u128(3));
        let index = GroupIndex::build(
            16,
            [
                (alice, unit(16, 0, 1, 0.1)),
                (alice, unit(16, 0, 1, 0.6)),
                (bob, unit(16, 1, 0, 0.5)),
                (carol, unit(16, 9, 10, 0.0)),
            ],
        )
        .unwrap();
        assert_eq!(index.len(), 4);
        let query = unit(16, 0, 1, 0.0);
        let found = index.search(&query, 10, 0.3);
        let names: Vec<Uuid> = found.iter().map(|(p, _)| *p).collect();
        assert_eq!(names, [alice, bob], "carol is orthogonal, below the threshold");
        assert!(
            (found[0].1 - (1.0f32 - 0.01).sqrt()).abs() < 1e-6,
            "alice's best face"
        );
        assert_eq!(index.search(&query, 1, 0.3).len(), 1);
        assert!(index.search(&query[..8], 10, 0.0).is_empty(), "wrong dimension");
        assert_eq!(GroupIndex::build(16, [(alice, vec![0.0; 15])]).unwrap_err(), 15);
    }

    #[test]
    fn the_unrolled_dot_product_is_exact() {
        let a: Vec<f32> = (0..131).map(|i| (i as f32 * 0.37).sin()).collect();
        let b: Vec<f32> = (0..131).map(|i| (i as f32 * 0.11).cos()).collect();
        let naive: f32 = a.iter().zip(&b).map(|(x, y)| x * y).sum();
        assert!((dot(&a, &b) - naive).abs() < 1e-4);
    }
}
