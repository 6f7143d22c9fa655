//! Ids to their index in a problem's list of hosts or VMs, shared by the model compiler and the
//! validator. A plain lookup: it checks nothing about a plan, so the validator stays
//! independent of the search in everything it checks.

/// Ids to their index in the problem's list, by binary search in a sorted copy: building an
/// ordered map of every VM costs several times more on whole clusters.
pub(crate) struct IdIndex {
    /// (id, index), sorted.
    pub(crate) sorted: Vec<(u64, usize)>,
    /// The index of the first entry whose id appeared before, if any.
    pub(crate) first_duplicate: Option<usize>,
    /// The least id when the ids are exactly `least..least + len` (then found by offset).
    dense: Option<u64>,
}

impl IdIndex {
    /// Indexes `ids`, each at its position in the iteration.
    pub(crate) fn new(ids: impl Iterator<Item = u64>) -> IdIndex {
        let mut sorted: Vec<(u64, usize)> = ids.enumerate().map(|(i, k)| (k, i)).collect();
        sorted.sort_unstable();
        let first_duplicate = sorted
            .windows(2)
            .filter(|w| w[0].0 == w[1].0)
            .map(|w| w[1].1)
            .min();
        let dense = match (sorted.first(), sorted.last()) {
            (Some(&(lo, _)), Some(&(hi, _)))
                if first_duplicate.is_none() && hi - lo == sorted.len() as u64 - 1 =>
            {
                Some(lo)
            }
            _ => None,
        };
        IdIndex {
            sorted,
            first_duplicate,
            dense,
        }
    }

    /// The index of `k` (its first occurrence).
    pub(crate) fn get(&self, k: u64) -> Option<usize> {
        if let Some(lo) = self.dense {
            let i = usize::try_from(k.checked_sub(lo)?).ok()?;
            return self.sorted.get(i).map(|&(_, i)| i);
        }
        let i = self.sorted.partition_point(|&(x, _)| x < k);
        self.sorted
            .get(i)
            .filter(|&&(x, _)| x == k)
            .map(|&(_, i)| i)
    }
}

#[cfg(test)]
mod tests {
    use super::IdIndex;

    #[test]
    fn dense_ids_are_found_by_offset() {
        let idx = IdIndex::new([12, 10, 11].into_iter());
        assert_eq!(idx.dense, Some(10));
        assert_eq!(idx.get(10), Some(1));
        assert_eq!(idx.get(12), Some(0));
        assert_eq!(idx.get(9), None);
        assert_eq!(idx.get(13), None);
        assert_eq!(idx.first_duplicate, None);
    }

    #[test]
    fn sparse_ids_are_found_by_binary_search() {
        let idx = IdIndex::new([400, 7, u64::MAX].into_iter());
        assert_eq!(idx.dense, None);
        assert_eq!(idx.get(7), Some(1));
        assert_eq!(idx.get(u64::MAX), Some(2));
        assert_eq!(idx.get(8), None);
    }

    #[test]
    fn the_first_duplicate_is_the_earliest_repeated_entry() {
        let idx = IdIndex::new([5, 3, 5, 3].into_iter());
        assert_eq!(idx.first_duplicate, Some(2));
        assert_eq!(idx.dense, None);
        assert_eq!(idx.get(5), Some(0));
    }
}
