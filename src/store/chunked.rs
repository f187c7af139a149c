//! A vector stored in shared chunks, so that two versions of a rule set share everything but
//! what changed: cloning copies one pointer per chunk, and replacing an element copies only
//! its chunk. With 100,000 faults a one-fault change then costs microseconds, where copying
//! (and later dropping) 100,000 `Arc`s cost milliseconds.

use std::sync::Arc;

/// Elements per chunk: small enough that copying one is cheap, large enough that iterating
/// rarely crosses a chunk boundary.
const CHUNK: usize = 256;

/// An append-and-replace vector of shared chunks.
#[derive(Debug)]
pub struct Chunked<T> {
    chunks: Vec<Arc<Vec<T>>>,
    len: usize,
}

impl<T> Default for Chunked<T> {
    fn default() -> Self {
        Chunked {
            chunks: Vec::new(),
            len: 0,
        }
    }
}

impl<T> Clone for Chunked<T> {
    fn clone(&self) -> Self {
        Chunked {
            chunks: self.chunks.clone(),
            len: self.len,
        }
    }
}

impl<T: Clone> Chunked<T> {
    /// Appends `value`.
    pub fn push(&mut self, value: T) {
        match self.chunks.last_mut() {
            Some(last) if last.len() < CHUNK => Arc::make_mut(last).push(value),
            _ => {
                let mut chunk = Vec::with_capacity(CHUNK);
                chunk.push(value);
                self.chunks.push(Arc::new(chunk));
            }
        }
        self.len += 1;
    }

    /// Replaces element `i`, copying its chunk if another version shares it. Returns false
    /// if there is no element `i`.
    pub fn set(&mut self, i: usize, value: T) -> bool {
        match self.chunks.get_mut(i / CHUNK) {
            Some(chunk) if i % CHUNK < chunk.len() => {
                Arc::make_mut(chunk)[i % CHUNK] = value;
                true
            }
            _ => false,
        }
    }
}

impl<T> Chunked<T> {
    /// How many elements.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Element `i`.
    pub fn get(&self, i: usize) -> Option<&T> {
        self.chunks.get(i / CHUNK)?.get(i % CHUNK)
    }

    /// Every element, in order.
    pub fn iter(&self) -> impl DoubleEndedIterator<Item = &T> + Clone {
        self.chunks.iter().flat_map(|c| c.iter())
    }
}

impl<'a, T> IntoIterator for &'a Chunked<T> {
    type Item = &'a T;
    type IntoIter = std::iter::FlatMap<
        std::slice::Iter<'a, Arc<Vec<T>>>,
        std::slice::Iter<'a, T>,
        fn(&'a Arc<Vec<T>>) -> std::slice::Iter<'a, T>,
    >;

    fn into_iter(self) -> Self::IntoIter {
        fn chunk<T>(c: &Arc<Vec<T>>) -> std::slice::Iter<'_, T> {
            c.iter()
        }
        self.chunks
            .iter()
            .flat_map(chunk as fn(&'a Arc<Vec<T>>) -> _)
    }
}

impl<T: Clone> FromIterator<T> for Chunked<T> {
    fn from_iter<I: IntoIterator<Item = T>>(items: I) -> Self {
        let mut out = Chunked::default();
        for item in items {
            out.push(item);
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_share_all_but_the_changed_chunk() {
        let a: Chunked<usize> = (0..1000).collect();
        assert_eq!(a.len(), 1000);
        assert_eq!(
            a.iter().copied().collect::<Vec<_>>(),
            (0..1000).collect::<Vec<_>>()
        );
        let mut b = a.clone();
        assert!(b.set(600, 9999));
        assert!(!b.set(1000, 1));
        assert_eq!(a.get(600), Some(&600));
        assert_eq!(b.get(600), Some(&9999));
        let shared = a
            .chunks
            .iter()
            .zip(&b.chunks)
            .filter(|(x, y)| Arc::ptr_eq(x, y))
            .count();
        assert_eq!(shared, a.chunks.len() - 1);
        assert_eq!((&b).into_iter().count(), 1000);
        assert!(Chunked::<u8>::default().is_empty());
    }
}
