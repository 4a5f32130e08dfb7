"""Helpers of scripts/gpu-check.sh on the GPU machine (numpy, torch and
safetensors are there; nothing is installed).

  check.py compare OUT.npy REFERENCE.npy CASE   relative error, PASS <= 1e-4
  check.py weights SPEC.json OUT.safetensors    random weights of those shapes
  check.py ids L OUT.npy                        token ids [1, L] below 256
  check.py peers RESULTS.json                   PyTorch eager and the roofline
"""
import json
import sys
import time

import numpy as np


def compare(out, reference, case):
    got = np.load(out).astype(np.float64)
    want = np.load(reference).astype(np.float64)
    if got.shape != want.shape:
        print(f"{case:22s} FAIL shape {got.shape} != {want.shape}")
        return 1
    error = np.abs(got - want).max() / np.abs(want).max()
    verdict = "PASS" if error <= 1e-4 and np.isfinite(got).all() else "FAIL"
    print(f"{case:22s} {verdict} rel. error {error:.2e} (max |diff| / max |ref|, fp32 GPU vs fp64 reference)")
    return 0 if verdict == "PASS" else 1


def weights(spec_path, out):
    from safetensors.numpy import save_file
    rng = np.random.default_rng(0)
    spec = json.load(open(spec_path))
    tensors = {}
    for name, shape in spec.items():
        if name.endswith("A_log"):  # Mamba: A = -exp(A_log), A_log = log(1..N)
            value = np.log(np.broadcast_to(np.arange(1, shape[-1] + 1), shape))
        elif name == "A":  # scan1: log decays, negative
            value = -rng.uniform(0.1, 4.0, shape)
        elif name == "dt.weight":  # scan1: positive steps
            value = rng.uniform(0.001, 0.1, shape)
        elif name.endswith("norm.weight") or name.endswith("norm_f.weight"):
            value = np.ones(shape)
        else:
            value = rng.normal(0.0, 0.02 if len(shape) > 1 else 0.1, shape)
        tensors[name] = np.ascontiguousarray(value, dtype=np.float32)
    save_file(tensors, out)


def ids(length, out):
    rng = np.random.default_rng(1)
    np.save(out, rng.integers(0, 256, size=(1, int(length)), dtype=np.int64))


def timed(fn, repeats=3):
    import torch
    fn()
    torch.cuda.synchronize()
    start = time.perf_counter()
    for _ in range(repeats):
        fn()
    torch.cuda.synchronize()
    return (time.perf_counter() - start) / repeats * 1e3


def peers(out):
    import torch
    results = {"device": torch.cuda.get_device_name(0)}
    # HBM: a device-to-device copy of 2 GiB (read + write).
    a = torch.empty(2**29, dtype=torch.float32, device="cuda")
    b = torch.empty_like(a)
    ms = timed(lambda: b.copy_(a), 10)
    results["copy_GBps"] = 2 * a.numel() * 4 / ms / 1e6
    del a, b
    # Mamba-1 selective scan, B = 1, D = 4096, N = 16, L = 8192, PyTorch
    # eager (one step per iteration, as transformers' slow path does).
    D, N, L = 4096, 16, 8192
    g = torch.Generator(device="cuda").manual_seed(0)
    u = torch.rand(L, D, device="cuda", generator=g)
    dt = torch.rand(L, D, device="cuda", generator=g) * 0.1
    Bm = torch.rand(L, N, device="cuda", generator=g)
    Cm = torch.rand(L, N, device="cuda", generator=g)
    A = -torch.rand(D, N, device="cuda", generator=g) * 4

    def scan():
        h = torch.zeros(D, N, device="cuda")
        ys = []
        for t in range(L):
            h = torch.exp(dt[t, :, None] * A) * h + (dt[t] * u[t])[:, None] * Bm[t]
            ys.append(h @ Cm[t])
        return torch.stack(ys)

    results["torch_scan_ms"] = timed(scan, 1)
    # Mamba-130m's shapes (transformers, random weights, no mamba_ssm: its
    # PyTorch path), prefill of 2048 tokens.
    try:
        from transformers import MambaConfig, MambaForCausalLM
        config = MambaConfig(vocab_size=50280, hidden_size=768,
                             num_hidden_layers=24, state_size=16, expand=2,
                             conv_kernel=4)
        model = MambaForCausalLM(config).cuda().eval()
        x = torch.randint(0, 50280, (1, 2048), device="cuda")
        with torch.no_grad():
            results["torch_mamba130m_L2048_ms"] = timed(lambda: model(x), 3)
    except Exception as e:  # report, do not fail the check
        results["torch_mamba130m_error"] = repr(e)
    json.dump(results, open(out, "w"), indent=1)
    print(json.dumps(results, indent=1))


if __name__ == "__main__":
    command, args = sys.argv[1], sys.argv[2:]
    if command == "compare":
        sys.exit(compare(*args))
    elif command == "weights":
        weights(*args)
    elif command == "ids":
        ids(*args)
    elif command == "peers":
        peers(*args)
    else:
        sys.exit(f"unknown command {command}")
