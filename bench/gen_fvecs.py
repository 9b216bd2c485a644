#!/usr/bin/env python3
# Writes N Gaussian vectors of dimension D (float32, seeded, never zero in practice) as .fvecs, the
# input of bench/results/compact-durable-*.md:  python3 bench/gen_fvecs.py N D OUT.fvecs
# Standard library only (no numpy), about 0.5 s per 1000 rows of d = 768.
import array, random, struct, sys
n, d, path = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
random.seed(7)
with open(path, 'wb') as f:
    hdr = struct.pack('<i', d)
    for i in range(n):
        row = array.array('f', (random.gauss(0.0, 1.0) for _ in range(d)))
        f.write(hdr); f.write(row.tobytes())
