#!/usr/bin/env python3
"""Memory of many slow clients: opens N streams that produce tokens as fast as the worker can, reads nothing
for a while (so every response is backpressured), samples the resident memory of the StreamApi and Gateway
processes, then reads every stream to its end and checks it is complete.

Run the AppHost with the per-client limit off and room for the streams, for example:
  ./run.sh Services:StreamApi:Streaming:MaxConcurrentStreamsPerClient=0 \
           Services:Worker:Worker:MaxConcurrency=1024 Services:Worker:Providers:Synthetic:TokenDelay=00:00:00
then: python3 bench/slow_clients.py --streams 1000 --max-tokens 2000
"""
import argparse, asyncio, json, os, re, time, urllib.parse


def rss_kib(name):
    total = 0
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            with open(f"/proc/{pid}/comm") as f:
                if not f.read().strip().startswith(name[:15]):
                    continue
            with open(f"/proc/{pid}/status") as f:
                total += int(re.search(r"VmRSS:\s+(\d+)", f.read()).group(1))
        except (OSError, AttributeError):
            pass
    return total


async def open_stream(host, port, body):
    reader, writer = await asyncio.open_connection(host, port, limit=1 << 20)
    writer.write((f"POST /infer/stream HTTP/1.1\r\nHost: {host}\r\nContent-Type: application/json\r\n"
                  f"Content-Length: {len(body)}\r\n\r\n").encode() + body)
    await writer.drain()
    status = await reader.readline()
    while (await reader.readline()) not in (b"\r\n", b""):
        pass
    return reader, writer, status


async def read_to_end(reader):
    """Reads an HTTP/1.1 chunked body until the end event; returns (token events, end reason or None)."""
    data = bytearray()
    while True:
        size_line = await reader.readline()
        if not size_line:
            break
        size = int(size_line.split(b";")[0], 16)
        if size == 0:
            break
        data += await reader.readexactly(size)
        await reader.readexactly(2)
        if b"event: end\n" in data[-512:]:
            break
    reason = re.search(rb'"reason":"(\w+)"', data[data.rfind(b"event: end"):]) if b"event: end" in data else None
    return data.count(b"event: token\n"), reason.group(1).decode() if reason else None


async def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--url", default="http://localhost:8080")
    ap.add_argument("--streams", type=int, default=1000)
    ap.add_argument("--max-tokens", type=int, default=2000)
    ap.add_argument("--hold", type=float, default=20.0, help="seconds the clients read nothing")
    a = ap.parse_args()
    u = urllib.parse.urlsplit(a.url)
    base = {n: rss_kib(n) for n in ("VixAspire.StreamApi", "VixAspire.Gateway")}
    opened = []
    for i in range(0, a.streams, 100):
        batch = [open_stream(u.hostname, u.port or 80, json.dumps({"prompt": f"slow {j}", "max_tokens": a.max_tokens}).encode())
                 for j in range(i, min(i + 100, a.streams))]
        opened += await asyncio.gather(*batch)
    ok = sum(1 for _, _, s in opened if b" 200 " in s)
    peak = dict(base)
    end = time.monotonic() + a.hold
    while time.monotonic() < end:
        for n in peak:
            peak[n] = max(peak[n], rss_kib(n))
        await asyncio.sleep(0.5)
    results = await asyncio.gather(*(read_to_end(r) for r, _, _ in opened))
    for _, w, _ in opened:
        w.close()
    complete = sum(1 for tokens, reason in results if reason == "length" and tokens == a.max_tokens)
    reasons = {}
    for _, reason in results:
        reasons[reason] = reasons.get(reason, 0) + 1
    print(f"streams={a.streams} accepted={ok} complete={complete} tokens_each={a.max_tokens} hold_s={a.hold} end_reasons={reasons}")
    for n in peak:
        delta = peak[n] - base[n]
        print(f"{n:20s} rss_before={base[n] / 1024:7.1f} MiB  peak={peak[n] / 1024:7.1f} MiB  "
              f"delta={delta / 1024:7.1f} MiB  per_stream={delta / max(ok, 1):6.1f} KiB")


asyncio.run(main())
