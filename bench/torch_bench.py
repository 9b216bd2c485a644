"""torch's one-liner top-k, `torch.topk(q @ c.T, k)`, on the GPU benchmark's shapes (N = 1M,
d = 768, Q = 1, 16, 256, 4096, k = 10 and 1000) in f32 and bf16: the peer hetcache's GPU tier is
judged against. Median of --runs timings, CUDA-synchronised. Prints a markdown table."""
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


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--n", type=int, default=1_000_000)
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    dim = 768
    torch.backends.cuda.matmul.allow_tf32 = False  # exact f32, as hetcache's default
    gen = torch.Generator(device="cuda").manual_seed(7)
    c32 = torch.rand(args.n, dim, device="cuda", generator=gen) * 2 - 1
    c16 = c32.to(torch.bfloat16)
    print(f"# torch {torch.__version__} -- {torch.cuda.get_device_name()}\n")
    print("| Q | k | precision | torch mm + topk ms |\n|---:|---:|---|---:|")
    for q in (1, 16, 256, 4096):
        q32 = torch.rand(q, dim, device="cuda", generator=gen) * 2 - 1
        q16 = q32.to(torch.bfloat16)
        for k in (10, 1000):
            for name, qq, cc in (("f32", q32, c32), ("bf16", q16, c16)):
                # q @ c.T of 4096 x 1M does not fit some GPUs in one piece: report, don't crash.
                try:
                    ms = median_ms(args.runs, lambda: torch.topk(qq @ cc.T, k, dim=1))
                    print(f"| {q} | {k} | {name} | {ms:.3f} |")
                except torch.cuda.OutOfMemoryError:
                    print(f"| {q} | {k} | {name} | out of memory |")
                    torch.cuda.empty_cache()


if __name__ == "__main__":
    main()
