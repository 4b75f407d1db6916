#!/usr/bin/env python3
"""The reference side of core/vector's BenchmarkVersusHNSWLib: the same
vectors (written by the benchmark as raw float32), the same HNSW parameters,
measured the same way, printed as one JSON object.

usage: hnswlib_bench.py DIR   (DIR holds meta.json, vectors.f32, truth.u32)
"""
import json
import sys
import time

import hnswlib
import numpy as np

d = sys.argv[1]
meta = json.load(open(d + "/meta.json"))
n, nq, nx, dim, k = meta["n"], meta["queries"], meta["extra"], meta["dim"], meta["k"]
data = np.fromfile(d + "/vectors.f32", dtype=np.float32).reshape(-1, dim)
base, queries, extra = data[:n], data[n:n + nq], data[n + nq:n + nq + nx]
truth = np.fromfile(d + "/truth.u32", dtype=np.uint32).reshape(nq, k)

idx = hnswlib.Index(space="ip", dim=dim)  # the vectors are unit length
idx.init_index(max_elements=n + nx, M=meta["m"], ef_construction=meta["ef_construction"], random_seed=100)
t = time.process_time()
idx.add_items(base, np.arange(n), num_threads=2)
build = (time.process_time() - t) / n
t = time.process_time()
idx.add_items(extra, np.arange(n, n + nx), num_threads=1)
insert = (time.process_time() - t) / nx
for i in range(n, n + nx):
    idx.mark_deleted(i)
idx.set_ef(meta["ef_search"])
idx.set_num_threads(1)
cpu, found = [], 0
for i in range(nq):
    t = time.thread_time_ns()
    labels, _ = idx.knn_query(queries[i:i + 1], k=k)
    cpu.append(time.thread_time_ns() - t)
    found += len(set(labels[0].tolist()) & set(truth[i].tolist()))
cpu.sort()
print(json.dumps({
    "build_cpu_us": build * 1e6,
    "insert_cpu_us": insert * 1e6,
    "search_cpu_p50_us": cpu[(len(cpu) - 1) // 2] / 1e3,
    "recall_at_10": found / (nq * k),
}))
