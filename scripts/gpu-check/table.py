"""The last section of scripts/gpu-check.sh: the benchmark lines, from the
runtime's profiles, the peers' timings and prepare.sh's CPU timings.

  table.py OUT_DIR CPU_JSONL
"""
import json
import re
import sys

out, cpu_path = sys.argv[1], sys.argv[2]
peers = json.load(open(f"{out}/peers.json"))


def profile(name):
    text = open(f"{out}/{name}.profile.jsonl").read()
    rows = [json.loads(l) for l in text.splitlines() if l.startswith("{")]
    total = re.search(r"forward: ([0-9.]+) ms", text)
    return rows, float(total.group(1)) if total else float("nan")


D, N, L = 4096, 16, 8192
moved = (3 * L * D + 2 * L * N) * 4  # u, delta in, y out; B, C in
for variant in ["sequential", "", "chunk32", "chunk128"]:
    name = "scan1" + ("." + variant if variant else "")
    try:
        rows, _ = profile(name)
    except OSError:
        continue
    # forward_kernel_0..3 gather u, delta, B and C from their tables; the
    # kernels after them are the scan (one, or the time-parallel form's
    # three phases).
    scan = [r for r in rows if re.fullmatch(r"forward_kernel_([4-9]|\d\d+)",
                                            r["kernel"])]
    ms = sum(r["ms_per_call"] for r in scan)
    gbps = moved / ms / 1e6
    print(f"Mamba-1 scan {name} ({len(scan)} kernel(s)): {ms:.3f} ms, "
          f"{gbps:.1f} GB/s = {100 * gbps / peers['copy_GBps']:.2f}% of the "
          f"measured copy bandwidth ({peers['copy_GBps']:.0f} GB/s); PyTorch "
          f"eager {peers['torch_scan_ms']:.1f} ms "
          f"({peers['torch_scan_ms'] / ms:.1f}x glint's time)")

_, sequential_ms = profile("m130.seq")
print(f"Mamba-130m shapes, L=2048, without the time-parallel form: "
      f"{sequential_ms:.1f} ms per forward")
_, gpu_ms = profile("m130")
cpu = {}
for line in open(cpu_path):
    record = json.loads(line)
    if record.get("case") == "mamba-130m":
        cpu[record["threads"]] = record["seconds_median"] * 1e3
line = f"Mamba-130m shapes, L=2048: glint GPU {gpu_ms:.1f} ms per forward"
for threads, ms in sorted(cpu.items()):
    line += f"; glint CPU {threads} thread(s) {ms:.0f} ms ({ms / gpu_ms:.1f}x)"
if "torch_mamba130m_L2048_ms" in peers:
    t = peers["torch_mamba130m_L2048_ms"]
    line += f"; PyTorch eager (transformers) {t:.0f} ms ({t / gpu_ms:.1f}x)"
print(line)
