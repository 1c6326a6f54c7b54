//! `hnsw`: approximate average-linkage agglomerative clustering for large corpora.
//!
//! 1. Index the items in an HNSW graph (hnsw_rs, L2 distance), inserted one by one in an order
//!    shuffled by the seed (hnsw_rs draws node levels from a fixed-seed generator, so the index
//!    is a pure function of the insertion order: deterministic under a seed).
//! 2. Query each item's `neighbors` approximate nearest neighbours: a sparse, symmetric
//!    k-nearest-neighbour graph with edge weight `1 / (1 + d²)`.
//! 3. Agglomerate: every item starts as its own cluster; repeatedly merge the two connected
//!    clusters with the highest average linkage `Σ w(a, b) / (|A|·|B|)` (pairs without an edge
//!    count as 0) until `k` remain. If the graph has more than `k` components, the remaining
//!    clusters are merged smallest first into the cluster with the nearest center.
//! 4. Centers are member means; each topic's `m` nearest items come from an HNSW search around
//!    its center (exact search below `exact_below` items).
//!
//! Cost: one HNSW build and `n` queries plus `O(E log E)` merges on `E ≈ n · neighbors` edges,
//! against `O(n · k · iterations · restarts)` distance computations for exact k-means.

use std::cmp::Ordering;
use std::collections::{BinaryHeap, HashMap};

use hnsw_rs::anndists::dist::DistL2;
use hnsw_rs::hnsw::Hnsw;
use rand::SeedableRng;
use rand::rngs::StdRng;
use rand::seq::SliceRandom;
use serde::Deserialize;
use siren_core::traits::{Embeddings, TopicClusterer, Topics};
use siren_core::{CoreError, Plugin, Result};

/// Parameters of `hnsw`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct HnswParams {
    /// Neighbours per item in the k-nearest-neighbour graph (default 15).
    pub neighbors: usize,
    /// HNSW links per node, at most 256 (default 16).
    pub max_connections: usize,
    /// HNSW candidate list while building (default 100).
    pub ef_construction: usize,
    /// HNSW candidate list while searching (default 48).
    pub ef_search: usize,
    /// Corpora smaller than this get exact nearest-item lists (default 20,000).
    pub exact_below: usize,
}

impl Default for HnswParams {
    fn default() -> Self {
        Self {
            neighbors: 15,
            max_connections: 16,
            ef_construction: 100,
            ef_search: 48,
            exact_below: 20_000,
        }
    }
}

/// The `hnsw` clusterer.
#[derive(Debug, Clone)]
pub struct HnswClusterer {
    p: HnswParams,
}

impl Plugin for HnswClusterer {
    type Params = HnswParams;
    const SUMMARY: &'static str = "approximate average-linkage agglomeration on an HNSW k-nearest-neighbour graph (large corpora)";
    fn from_params(p: HnswParams) -> Result<Self> {
        let bad = |f: &str, m: &str| Err(CoreError::config(format!("topic-clusterer hnsw.{f}"), m));
        if p.neighbors == 0 {
            return bad("neighbors", "must be at least 1");
        }
        if !(2..=256).contains(&p.max_connections) {
            return bad("max_connections", "must be in 2..=256");
        }
        if p.ef_construction == 0 || p.ef_search == 0 {
            return bad(
                "ef_search",
                "ef_construction and ef_search must be at least 1",
            );
        }
        Ok(Self { p })
    }
}

siren_core::register_clusterer!("hnsw", HnswClusterer);

/// A heap entry: linkage of clusters `a` and `b` at their versions.
#[derive(Debug, PartialEq)]
struct Candidate {
    linkage: f64,
    a: usize,
    b: usize,
    va: u32,
    vb: u32,
}

impl Eq for Candidate {}

impl Ord for Candidate {
    fn cmp(&self, o: &Self) -> Ordering {
        // Highest linkage first; ties broken by the smaller ids for determinism.
        self.linkage
            .total_cmp(&o.linkage)
            .then_with(|| o.a.cmp(&self.a))
            .then_with(|| o.b.cmp(&self.b))
    }
}

impl PartialOrd for Candidate {
    fn partial_cmp(&self, o: &Self) -> Option<Ordering> {
        Some(self.cmp(o))
    }
}

fn find(parent: &mut [usize], mut x: usize) -> usize {
    while parent[x] != x {
        parent[x] = parent[parent[x]];
        x = parent[x];
    }
    x
}

/// Average-linkage agglomeration of `n` nodes over weighted undirected `edges` down to `k`
/// clusters (or as few as the graph's components allow). Returns each node's cluster root.
pub fn average_linkage(n: usize, edges: &[(usize, usize, f64)], k: usize) -> Vec<usize> {
    let mut adj: Vec<HashMap<usize, f64>> = vec![HashMap::new(); n];
    for &(a, b, w) in edges {
        if a != b {
            *adj[a].entry(b).or_insert(0.0) += w;
            *adj[b].entry(a).or_insert(0.0) += w;
        }
    }
    let mut size = vec![1usize; n];
    let mut version = vec![0u32; n];
    let mut alive = vec![true; n];
    let mut parent: Vec<usize> = (0..n).collect();
    let mut heap = BinaryHeap::new();
    for (a, nb) in adj.iter().enumerate() {
        for (&b, &w) in nb {
            if a < b {
                heap.push(Candidate {
                    linkage: w,
                    a,
                    b,
                    va: 0,
                    vb: 0,
                });
            }
        }
    }
    let mut count = n;
    while count > k {
        let Some(c) = heap.pop() else { break };
        if !alive[c.a] || !alive[c.b] || version[c.a] != c.va || version[c.b] != c.vb {
            continue;
        }
        // Merge the cluster with fewer neighbours into the other.
        let (big, small) = if adj[c.a].len() >= adj[c.b].len() {
            (c.a, c.b)
        } else {
            (c.b, c.a)
        };
        let moved = std::mem::take(&mut adj[small]);
        for (x, w) in moved {
            if x == big {
                continue;
            }
            *adj[big].entry(x).or_insert(0.0) += w;
            let xs = &mut adj[x];
            xs.remove(&small);
            *xs.entry(big).or_insert(0.0) += w;
        }
        adj[big].remove(&small);
        alive[small] = false;
        parent[small] = big;
        size[big] += size[small];
        version[big] += 1;
        count -= 1;
        for (&x, &w) in &adj[big] {
            let (a, b) = if big < x { (big, x) } else { (x, big) };
            heap.push(Candidate {
                linkage: w / (size[big] as f64 * size[x] as f64),
                a,
                b,
                va: version[a],
                vb: version[b],
            });
        }
    }
    (0..n).map(|i| find(&mut parent, i)).collect()
}

impl TopicClusterer for HnswClusterer {
    fn fit(&self, items: &Embeddings, k: usize, m: usize, seed: u64) -> Result<Topics> {
        crate::check_input(items, k, "hnsw")?;
        let n = items.n;
        let p = &self.p;
        let t = std::time::Instant::now();
        let mut order: Vec<usize> = (0..n).collect();
        order.shuffle(&mut StdRng::seed_from_u64(seed));
        let max_layer = 16
            .min(((n as f64).ln() / (p.max_connections as f64).ln()).ceil() as usize + 2)
            .max(2);
        let index: Hnsw<'_, f32, DistL2> = Hnsw::new(
            p.max_connections,
            n,
            max_layer,
            p.ef_construction,
            DistL2 {},
        );
        for &i in &order {
            index.insert_slice((items.row(i), i));
        }
        let build_s = t.elapsed().as_secs_f64();
        // Queries only read the index: run them on every core (the result does not depend on
        // the split).
        let want = (p.neighbors + 1).min(n);
        let threads = std::thread::available_parallelism()
            .map_or(1, |t| t.get())
            .min(n);
        let chunk = n.div_ceil(threads);
        let mut edges: Vec<(usize, usize, f64)> = std::thread::scope(|s| {
            let handles: Vec<_> = (0..threads)
                .map(|t| {
                    let index = &index;
                    s.spawn(move || {
                        let mut out = Vec::with_capacity(chunk * want);
                        for i in t * chunk..((t + 1) * chunk).min(n) {
                            for nb in index.search(items.row(i), want, p.ef_search.max(want)) {
                                let j = nb.d_id;
                                if j != i {
                                    let d = f64::from(nb.distance);
                                    out.push((i.min(j), i.max(j), 1.0 / (1.0 + d * d)));
                                }
                            }
                        }
                        out
                    })
                })
                .collect();
            handles
                .into_iter()
                .flat_map(|h| h.join().unwrap_or_default())
                .collect()
        });
        edges.sort_by_key(|e| (e.0, e.1));
        edges.dedup_by(|a, b| (a.0, a.1) == (b.0, b.1));
        let graph_s = t.elapsed().as_secs_f64() - build_s;
        let roots = average_linkage(n, &edges, k);
        let link_s = t.elapsed().as_secs_f64() - build_s - graph_s;

        // Number the clusters by their first item.
        let mut label: HashMap<usize, usize> = HashMap::new();
        let mut assignment: Vec<usize> = roots
            .iter()
            .map(|r| {
                let next = label.len();
                *label.entry(*r).or_insert(next)
            })
            .collect();
        let mut count = label.len();
        if count > k {
            tracing::warn!(
                "hnsw: the {}-nearest-neighbour graph has {count} components for k = {k}; merging the smallest by center distance",
                p.neighbors
            );
        }
        while count > k {
            let centers = crate::centers_of(items, &assignment, count);
            let mut sizes = vec![0usize; count];
            assignment.iter().for_each(|&t| sizes[t] += 1);
            let small = (0..count).min_by_key(|&t| (sizes[t], t)).unwrap_or(0);
            let target = (0..count)
                .filter(|&t| t != small)
                .min_by(|&a, &b| {
                    crate::dist2(centers.row(small), centers.row(a))
                        .total_cmp(&crate::dist2(centers.row(small), centers.row(b)))
                })
                .unwrap_or(0);
            for a in assignment.iter_mut() {
                if *a == small {
                    *a = target;
                }
                if *a > small {
                    *a -= 1;
                }
            }
            count -= 1;
        }
        let centers = crate::centers_of(items, &assignment, k);
        let nearest = if n < p.exact_below {
            crate::nearest_exact(items, &centers, m)
        } else {
            (0..k)
                .map(|t| {
                    let mut v: Vec<(f32, usize)> = index
                        .search(centers.row(t), m.min(n), p.ef_search.max(m))
                        .into_iter()
                        .map(|nb| (nb.distance, nb.d_id))
                        .collect();
                    v.sort_by(|a, b| a.0.total_cmp(&b.0).then(a.1.cmp(&b.1)));
                    v.into_iter().map(|x| x.1).collect()
                })
                .collect()
        };
        tracing::info!(
            "hnsw: {n} items, index {build_s:.1}s, {}-NN graph ({} edges) {graph_s:.1}s, linkage {link_s:.1}s, {:.1}s in all",
            p.neighbors,
            edges.len(),
            t.elapsed().as_secs_f64()
        );
        Ok(Topics {
            centers,
            assignment,
            nearest,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn average_linkage_merges_the_tightest_pairs_first() {
        // Two triangles joined by a weak bridge → two clusters.
        let e = vec![
            (0, 1, 1.0),
            (1, 2, 1.0),
            (0, 2, 1.0),
            (3, 4, 1.0),
            (4, 5, 1.0),
            (3, 5, 1.0),
            (2, 3, 0.01),
        ];
        let r = average_linkage(6, &e, 2);
        assert_eq!(r[0], r[1]);
        assert_eq!(r[1], r[2]);
        assert_eq!(r[3], r[4]);
        assert_eq!(r[4], r[5]);
        assert_ne!(r[0], r[3]);
        // Down to one cluster through the bridge.
        let r = average_linkage(6, &e, 1);
        assert!(r.iter().all(|&x| x == r[0]));
        // Disconnected nodes stay apart.
        let r = average_linkage(4, &[(0, 1, 1.0)], 1);
        assert_eq!(r[0], r[1]);
        assert_ne!(r[2], r[3]);
    }
}
