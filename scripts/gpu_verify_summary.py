"""Summarise `symbench verify --json` for the device check (scripts/gpu-check.sh).

    python scripts/gpu_verify_summary.py VERIFY_JSON SUMMARY_TXT

Writes a per-kernel count of check statuses, every failure, and what is missing
to SUMMARY_TXT, prints the head of it, and exits 1 when a check failed or
errored, when a GPU kernel got no passing check (a kernel that was skipped,
e.g. unavailable, must not pass silently), or when a GPU group kernel got no
equivariance check. Standard library only: it runs with whatever Python has CuPy.
"""

from __future__ import annotations

import collections
import json
import sys

GPU_KERNELS = ("direct-cupy", "fft-cupy", "gconv-direct-cupy", "gconv-fft-cupy")
GROUP_KERNELS = ("gconv-direct-cupy", "gconv-fft-cupy")
#: Verified only where PyTorch with CUDA is installed (gpu-check.sh decides); when they appear, they must pass.
TORCH_KERNELS = ("direct-torch-cuda", "auto-torch-cuda", "fft-torch-cuda")


def summarise(checks: list[dict]) -> tuple[list[str], bool]:
    """The summary lines and whether the verification holds."""
    counts: dict[str, collections.Counter] = collections.defaultdict(collections.Counter)
    for c in checks:
        counts[c["kernel"]][c["status"]] += 1
    lines = [f"{name}: " + ", ".join(f"{n} {s}" for s, n in sorted(counts[name].items()))
             for name in sorted(counts)]
    bad = [c for c in checks if c["status"] in ("fail", "error")]
    lines += [f"FAIL {c['kernel']} {c['case']}: {c['message']}" for c in bad]
    required = GPU_KERNELS + tuple(name for name in TORCH_KERNELS if name in counts)
    missing = [f"{name}: no passing check" for name in required if counts[name]["ok"] == 0]
    for name in GROUP_KERNELS:
        if not any(c["kernel"] == name and "equivariance" in c["case"] and c["status"] == "ok" for c in checks):
            missing.append(f"{name}: no equivariance check passed")
    lines += [f"MISSING {m}" for m in missing]
    passed = sum(n["ok"] for n in counts.values())
    lines.append(f"{passed} checks passed, {len(bad)} failed" + (f", {len(missing)} missing" if missing else ""))
    return lines, not bad and not missing


def main(argv: list[str]) -> int:
    if len(argv) != 2:
        print("usage: gpu_verify_summary.py VERIFY_JSON SUMMARY_TXT", file=sys.stderr)
        return 2
    try:
        with open(argv[0]) as f:
            checks = json.load(f)
    except (OSError, ValueError) as exc:
        print(f"unreadable verify output {argv[0]}: {exc}", file=sys.stderr)
        return 1
    lines, ok = summarise(checks)
    with open(argv[1], "w") as f:
        f.write("\n".join(lines) + "\n")
    shown = [ln for ln in lines if not ln.startswith("FAIL ")]
    fails = [ln for ln in lines if ln.startswith("FAIL ")]
    print("\n".join(shown[:-1] + fails[:20] + shown[-1:]))
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
