#!/usr/bin/env python3
"""Time to first token and stream duration through the gateway, one client, sequential requests.

Usage: bench/ttft.py [--requests N] [--url http://localhost:8080] [--max-tokens 16] [--model synthetic]
Prints percentiles of: headers (response start), first token, end. Standard library only.
"""
import argparse, http.client, json, time, urllib.parse


def one(url, body):
    parts = urllib.parse.urlsplit(url)
    conn = http.client.HTTPConnection(parts.hostname, parts.port or 80, timeout=60)
    t0 = time.perf_counter()
    conn.request("POST", "/infer/stream", body=body, headers={"Content-Type": "application/json"})
    resp = conn.getresponse()
    headers = time.perf_counter() - t0
    first = end = None
    tokens = 0
    while True:
        line = resp.readline()
        if not line:
            break
        if line == b"event: token\n":
            tokens += 1
            if first is None:
                first = time.perf_counter() - t0
        elif line == b"event: end\n":
            end = time.perf_counter() - t0
    conn.close()
    return headers, first, end, tokens


def pct(values, p):
    values = sorted(values)
    return values[min(len(values) - 1, int(round(p / 100 * (len(values) - 1))))] * 1000


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--requests", type=int, default=50)
    ap.add_argument("--url", default="http://localhost:8080")
    ap.add_argument("--max-tokens", type=int, default=16)
    ap.add_argument("--model", default="synthetic")
    a = ap.parse_args()
    rows = []
    for i in range(a.requests):
        body = json.dumps({"prompt": f"bench {i}", "model": a.model, "max_tokens": a.max_tokens})
        rows.append(one(a.url, body))
    for name, idx in (("headers", 0), ("first_token", 1), ("end", 2)):
        vals = [r[idx] for r in rows if r[idx] is not None]
        print(f"{name:12s} ms  p50={pct(vals, 50):7.1f}  p90={pct(vals, 90):7.1f}  p99={pct(vals, 99):7.1f}  max={max(vals) * 1000:7.1f}")
    print(f"requests={len(rows)} tokens_each={rows[0][3]} incomplete={sum(1 for r in rows if r[2] is None)}")


if __name__ == "__main__":
    main()
