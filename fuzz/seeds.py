#!/usr/bin/env python3
"""Writes seed inputs for the fuzz targets into fuzz/corpus/<target>/: random containerd configs from the
reliability tests' generator (tests/reliability/configs.py), each behind a random options byte.

usage: fuzz/seeds.py [COUNT]   (default 200)
"""
import os
import random
import sys

here = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(here, "..", "tests", "reliability"))
import configs  # noqa: E402

count = int(sys.argv[1]) if len(sys.argv) > 1 else 200
for target in ("plan_parses", "plan_idempotent"):
    out = os.path.join(here, "corpus", target)
    os.makedirs(out, exist_ok=True)
    for seed in range(count):
        rng = random.Random(seed)
        text, _, _ = configs.random_case(rng)
        with open(os.path.join(out, "seed-%04d" % seed), "wb") as f:
            f.write(bytes([rng.randrange(256)]) + (text or "").encode())
print("seeds written under %s/corpus" % here)
