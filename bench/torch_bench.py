"""torch's one-liner top-k, `torch.topk(q @ c.T, k)`, on the GPU benchmark's shapes (N = 1M,
d = 768, Q = 1, 16, 256, 4096; k = 10, 100, 1000; f32, tf32, bf16, f16): the peer hetcache's GPU
tier is judged against. Median of --runs timings after a warm-up, CUDA-synchronised. Prints a
markdown table."""
import argparse
import statistics
import time

import torch


def median_ms(runs, f):
    f()
    torch.cuda.synchronize()
    times = []
    for _ in range(runs):
        t0 = time.perf_counter()
        f()
        torch.cuda.synchronize()
        times.append((time.perf_counter() - t0) * 1e3)
    return statistics.median(times)


def positive(text):
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be >= 1, got {text}")
    return value


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--n", type=positive, default=1_000_000)
    parser.add_argument("--runs", type=positive, default=5)
    parser.add_argument("--ks", default="10,100,1000")
    parser.add_argument("--precisions", default="f32,tf32,bf16,f16")
    args = parser.parse_args()
    ks = [positive(k) for k in args.ks.split(",")]
    dtypes = {"f32": torch.float32, "tf32": torch.float32, "bf16": torch.bfloat16,
              "f16": torch.float16}
    precisions = args.precisions.split(",")
    for p in precisions:
        if p not in dtypes:
            parser.error(f"unknown precision '{p}' (expected f32, tf32, bf16 or f16)")
    dim = 768
    gen = torch.Generator(device="cuda").manual_seed(7)
    c32 = torch.rand(args.n, dim, device="cuda", generator=gen) * 2 - 1
    print(f"# torch {torch.__version__} -- {torch.cuda.get_device_name()}\n")
    print("| Q | k | precision | torch mm + topk ms |\n|---:|---:|---|---:|")
    for p in precisions:
        # tf32: f32 inputs on the tensor cores, as hetcache's Precision::Tf32.
        torch.backends.cuda.matmul.allow_tf32 = p == "tf32"
        cc = c32.to(dtypes[p])
        for q in (1, 16, 256, 4096):
            qq = (torch.rand(q, dim, device="cuda", generator=gen) * 2 - 1).to(dtypes[p])
            for k in ks:
                # q @ c.T of 4096 x 1M does not fit some GPUs in one piece: report, don't crash.
                try:
                    ms = median_ms(args.runs, lambda: torch.topk(qq @ cc.T, k, dim=1))
                    print(f"| {q} | {k} | {p} | {ms:.3f} |")
                except torch.cuda.OutOfMemoryError:
                    print(f"| {q} | {k} | {p} | out of memory |")
                    torch.cuda.empty_cache()
        del cc


if __name__ == "__main__":
    main()
