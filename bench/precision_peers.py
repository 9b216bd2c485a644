"""Compact sets against their peers, in one run on the same data: our f32 search and our f16 /
bf16 / int8 sets (exact and fast mode) against faiss-cpu from PyPI -- IndexFlatIP, and
IndexScalarQuantizer QT_bf16 / QT_fp16 / QT_8bit, FAISS's low-precision flat formats (approximate;
their recall is reported). Cosine: FAISS gets the candidates normalised at add time (not timed)
and normalises each query batch (timed), as a caller would.

    pip install faiss-cpu                      # into the venv that has hetcache (not a test dep)
    python bench/precision_peers.py [--n 1000000] [--dim 768] [--queries 1,16,64,256]
                                    [--k 10,100] [--runs 5] [--out FILE]

Times are medians of interleaved rounds (every system once per round), in ms; "recall" is
recall@k against our f32 search; "same" says whether exact mode returned the f32 ids for every
query. Both libraries use every core (faiss.omp_set_num_threads(os.cpu_count())).
"""

import argparse
import os
import statistics
import sys
import time

import numpy as np

import hetcache
from python_bench import cpu_name  # the bench scripts' one reading of /proc/cpuinfo

try:
    import faiss
except ImportError:  # the table says so instead of failing
    faiss = None


def recall(want, got):
    k = want.shape[1]
    return float(np.mean([len(set(a) & set(b)) / k for a, b in zip(want, got)]))


def medians(systems, runs):
    """Median seconds of each system, run interleaved; one warm-up round first."""
    results = {}
    for name, fn in systems:
        results[name] = fn()
    times = {name: [] for name, _ in systems}
    for _ in range(runs):
        for name, fn in systems:
            start = time.perf_counter()
            results[name] = fn()
            times[name].append(time.perf_counter() - start)
    return {name: statistics.median(t) for name, t in times.items()}, results


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--n", type=int, default=1_000_000)
    ap.add_argument("--dim", type=int, default=768)
    ap.add_argument("--queries", default="1,16,64,256")
    ap.add_argument("--k", default="10,100")
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--out")
    a = ap.parse_args()
    if not (1000 <= a.n <= 100_000_000 and 1 <= a.dim <= 65536 and 1 <= a.runs <= 100):
        sys.exit("precision_peers.py: --n in [1000, 1e8], --dim in [1, 65536], --runs in [1, 100]")
    qs = [int(x) for x in a.queries.split(",")]
    ks = [int(x) for x in a.k.split(",")]
    if not all(1 <= q <= 4096 for q in qs) or not all(1 <= k <= 4096 for k in ks):
        sys.exit("precision_peers.py: queries and k in [1, 4096]")

    rng = np.random.default_rng(1000 + a.dim)
    print(f"N={a.n} d={a.dim}: data", file=sys.stderr)
    c = rng.uniform(-1.0, 1.0, size=(a.n, a.dim)).astype(np.float32)
    queries = rng.uniform(-1.0, 1.0, size=(max(qs), a.dim)).astype(np.float32)
    engine = hetcache.SimilarityEngine()
    ours = {
        "f16": engine.compact_set(c, hetcache.StorageType.F16, keep_f32=False),
        "bf16": engine.compact_set(c, hetcache.StorageType.BF16, keep_f32=False),
        "i8": engine.compact_set(c, hetcache.StorageType.I8, keep_f32=False),
    }
    peers = {}
    if faiss is not None:
        faiss.omp_set_num_threads(os.cpu_count())
        normalised = c / np.linalg.norm(c, axis=1, keepdims=True)
        flat = faiss.IndexFlatIP(a.dim)
        flat.add(normalised)
        peers["faiss flat f32"] = flat
        for name, qt in (("faiss SQ bf16", "QT_bf16"), ("faiss SQ fp16", "QT_fp16"),
                         ("faiss SQ 8bit", "QT_8bit")):
            if not hasattr(faiss.ScalarQuantizer, qt):
                continue
            index = faiss.IndexScalarQuantizer(a.dim, getattr(faiss.ScalarQuantizer, qt),
                                               faiss.METRIC_INNER_PRODUCT)
            index.train(normalised)
            index.add(normalised)
            peers[name] = index
        del normalised

    lines = [
        f"CPU: {cpu_name()}, {os.cpu_count()} threads. hetcache {hetcache.__version__} "
        f"(ISA {engine.isa.name.lower()}), "
        + (f"faiss-cpu {faiss.__version__}" if faiss else "faiss-cpu not installed")
        + f". N = {a.n}, d = {a.dim}, Cosine, median of {a.runs} interleaved runs.",
        "",
        "| Q | k | system | ms | x our f32 | recall@k | same ids |",
        "|---|---|---|---|---|---|---|",
    ]
    for nq in qs:
        q = queries[:nq]
        for k in ks:
            print(f"Q={nq} k={k}", file=sys.stderr)
            systems = [("hetcache f32", lambda: engine.search(q, c, k=k))]
            for name, s in ours.items():
                systems.append((f"hetcache {name} exact",
                                lambda s=s: engine.search(q, s, k=k, f32_rows=c)))
                systems.append((f"hetcache {name} fast",
                                lambda s=s: engine.search(q, s, k=k, mode=hetcache.ScoreMode.FAST)))

            def faiss_search(index):
                qn = q / np.linalg.norm(q, axis=1, keepdims=True)
                scores, ids = index.search(qn, k)
                return ids, scores

            for name, index in peers.items():
                systems.append((name, lambda index=index: faiss_search(index)))
            t, results = medians(systems, a.runs)
            base_ids = results["hetcache f32"][0]
            base = t["hetcache f32"]
            for name, _ in systems:
                ids = results[name][0]
                same = ""
                if name.endswith("exact"):
                    same = "yes" if np.array_equal(ids, base_ids) else "NO"
                lines.append(f"| {nq} | {k} | {name} | {t[name] * 1e3:.1f} | "
                             f"{base / t[name]:.2f} | {recall(base_ids, ids):.3f} | {same} |")
    report = "\n".join(lines) + "\n"
    print(report)
    if a.out:
        tmp = a.out + ".tmp"
        with open(tmp, "w") as f:
            f.write(report)
        os.replace(tmp, a.out)


if __name__ == "__main__":
    main()
