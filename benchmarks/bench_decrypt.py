"""Decrypt/encrypt benchmark: uid2fast (Python engine, C engine one by one and in batch) vs uid2-client.

Run ``python benchmarks/bench_decrypt.py [--quick] [--plot FILE] [--json]`` (the same as ``uid2fast bench``).
The benchmark itself lives in ``uid2fast._bench`` so the installed command can run it too.
"""
import sys

from uid2fast._bench import main

if __name__ == "__main__":
    sys.exit(main())
