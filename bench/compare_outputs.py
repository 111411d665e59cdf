"""Compares a kiln output (.npy) with the FP32 PyTorch reference: relative max-norm and L2 error.

    python3 bench/compare_outputs.py REF.npy OUT.npy LABEL [MAX_REL]
Exits 1 when MAX_REL is given and the relative max-norm error exceeds it.
"""
import sys

import numpy as np

ref = np.load(sys.argv[1]).astype(np.float64)
out = np.load(sys.argv[2]).astype(np.float64)
label = sys.argv[3]
if ref.shape != out.shape:
    print(f"{label}: shape {out.shape} != reference {ref.shape}")
    sys.exit(1)
rel_max = np.abs(out - ref).max() / max(np.abs(ref).max(), 1e-30)
rel_l2 = np.linalg.norm(out - ref) / max(np.linalg.norm(ref), 1e-30)
print(f"{label}: max|d|/max|ref| = {rel_max:.3e}, L2 rel = {rel_l2:.3e}, shape {out.shape}")
if len(sys.argv) > 4 and rel_max > float(sys.argv[4]):
    print(f"{label}: FAIL (threshold {sys.argv[4]})")
    sys.exit(1)
