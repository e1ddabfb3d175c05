#!/usr/bin/env python3
"""DELETE-to-end delay through the gateway: for N sequential streams, read to the first token, send
DELETE /infer/stream/{id} on another connection, and time until the client receives `event: end`
(the worker has stopped generating by then: it writes the end entry after its generation loop exits).

Usage: python3 bench/cancel_delay.py [--requests 50] [--url http://localhost:8080]
"""
import argparse, asyncio, json, time, urllib.parse


async def one(host, port, i):
    reader, writer = await asyncio.open_connection(host, port)
    body = json.dumps({"prompt": f"cancel {i}", "max_tokens": 5000}).encode()
    writer.write((f"POST /infer/stream HTTP/1.1\r\nHost: {host}\r\nContent-Type: application/json\r\n"
                  f"Content-Length: {len(body)}\r\n\r\n").encode() + body)
    location = None
    while (line := await reader.readline()) not in (b"\r\n", b""):
        if line.lower().startswith(b"location:"):
            location = line.split(b":", 1)[1].strip().decode()
    while b"event: token" not in await reader.readline():
        pass
    r2, w2 = await asyncio.open_connection(host, port)
    t0 = time.perf_counter()
    w2.write(f"DELETE {location} HTTP/1.1\r\nHost: {host}\r\nContent-Length: 0\r\n\r\n".encode())
    while b"event: end" not in await reader.readline():
        pass
    delay = time.perf_counter() - t0
    writer.close()
    w2.close()
    return delay


async def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--url", default="http://localhost:8080")
    ap.add_argument("--requests", type=int, default=50)
    a = ap.parse_args()
    u = urllib.parse.urlsplit(a.url)
    delays = sorted([await one(u.hostname, u.port or 80, i) for i in range(a.requests)])
    pick = lambda p: delays[min(len(delays) - 1, int(round(p / 100 * (len(delays) - 1))))] * 1000
    print(f"requests={len(delays)} delete_to_end_ms p50={pick(50):.1f} p90={pick(90):.1f} p99={pick(99):.1f} max={delays[-1] * 1000:.1f}")


asyncio.run(main())
