#!/usr/bin/env python3
"""Streams through a running VixAspire gateway and checks what a client sees (standard library only).

  full    POST /infer/stream: start, tokens 0..n-1 in order, end with usage n
  resume  leave after some tokens, GET /infer/stream/{id} with Last-Event-ID: the rest, no gap, no duplicate
  cancel  DELETE /infer/stream/{id} mid-stream: the stream ends with reason "cancelled"
  kill    `podman kill` the StreamApi container serving the stream, then resume through the gateway

usage: stream-check.py URL COMPOSE_PROJECT [check ...]   (all checks by default)
"""
import http.client
import json
import subprocess
import sys
import time
import urllib.parse

URL = urllib.parse.urlsplit(sys.argv[1])
PROJECT = sys.argv[2]
CHECKS = sys.argv[3:] or ["full", "resume", "cancel", "kill"]


class Stream:
    """One SSE response, read event by event."""

    def __init__(self, method, path, body=None, last_event_id=None, timeout=30):
        self.conn = http.client.HTTPConnection(URL.hostname, URL.port, timeout=timeout)
        headers = {"Accept": "text/event-stream"}
        if body is not None:
            headers["Content-Type"] = "application/json"
        if last_event_id:
            headers["Last-Event-ID"] = last_event_id
        self.conn.request(method, path, body=json.dumps(body) if body is not None else None, headers=headers)
        self.response = self.conn.getresponse()
        if self.response.status != 200:
            raise AssertionError(f"{method} {path}: HTTP {self.response.status} {self.response.read()[:300]!r}")

    def events(self):
        event = {}
        while True:
            line = self.response.readline()
            if not line:
                return
            line = line.decode().rstrip("\r\n")
            if not line:
                if "data" in event:
                    event["data"] = json.loads(event["data"])
                    yield event
                event = {}
            elif not line.startswith(":"):
                field, _, value = line.partition(":")
                event[field] = value[1:] if value.startswith(" ") else value

    def close(self):
        self.conn.close()


def start(max_tokens, prompt):
    return Stream("POST", "/infer/stream", {"prompt": prompt, "max_tokens": max_tokens})


def take_tokens(events, count):
    """Reads the start and `count` tokens; returns (stream id, tokens, last event id)."""
    first = next(events)
    assert first["event"] == "start", first
    stream_id = first["data"]["payload"]["id"]
    tokens, last_id = [], first["id"]
    while len(tokens) < count:
        event = next(events)
        assert event["event"] == "token", event
        tokens.append(event["data"]["payload"]["index"])
        last_id = event["id"]
    return stream_id, tokens, last_id


def event_id(value):
    """Event ids are Redis stream ids, milliseconds-sequence."""
    ms, _, seq = value.partition("-")
    return int(ms), int(seq or 0)


def read_to_end(events, tokens, last_id):
    """Reads tokens after last_id to the end event; every id must grow and every index follow the last."""
    for event in events:
        assert event_id(event["id"]) > event_id(last_id), f"id {event['id']} not after {last_id}"
        last_id = event["id"]
        if event["event"] == "token":
            index = event["data"]["payload"]["index"]
            expected = tokens[-1] + 1 if tokens else 0
            assert index == expected, f"token {index} after {tokens[-1] if tokens else None}: gap or duplicate"
            tokens.append(index)
        elif event["event"] == "end":
            return event["data"]["payload"]
        else:
            raise AssertionError(f"unexpected event {event}")
    raise AssertionError(f"stream ended without an end event after {len(tokens)} tokens")


def check_full():
    stream = start(50, "hi")
    events = stream.events()
    _, tokens, last_id = take_tokens(events, 0)
    end = read_to_end(events, tokens, last_id)
    stream.close()
    assert end["reason"] == "length" and end["usage"]["output_tokens"] == 50 == len(tokens), (end, len(tokens))
    return f"50 tokens, end {end['reason']}"


def resume(stream_id, tokens, last_id, attempts=20):
    """Re-attaches with Last-Event-ID (retrying while the gateway finds a replica) and reads to the end."""
    for attempt in range(attempts):
        try:
            stream = Stream("GET", f"/infer/stream/{stream_id}", last_event_id=last_id)
            attached_at = time.monotonic()
            try:
                return read_to_end(stream.events(), tokens, last_id), attempt + 1, attached_at
            finally:
                stream.close()
        except (OSError, http.client.HTTPException, AssertionError) as error:
            if isinstance(error, AssertionError) and "HTTP 5" not in str(error):
                raise
            time.sleep(0.25)
    raise AssertionError(f"no resume of {stream_id} in {attempts} attempts")


def check_resume():
    stream = start(60, "resume me")
    stream_id, tokens, last_id = take_tokens(stream.events(), 10)
    stream.close()
    end, _, _ = resume(stream_id, tokens, last_id)
    assert end["reason"] == "length" and end["usage"]["output_tokens"] == 60 == len(tokens), (end, len(tokens))
    return f"left after 10 tokens, resumed from {last_id}, got 50 more"


def check_cancel():
    stream = start(5000, "cancel me")
    events = stream.events()
    stream_id, tokens, last_id = take_tokens(events, 5)
    conn = http.client.HTTPConnection(URL.hostname, URL.port, timeout=10)
    conn.request("DELETE", f"/infer/stream/{stream_id}")
    status = conn.getresponse().status
    conn.close()
    assert 200 <= status < 300, f"DELETE: HTTP {status}"
    end = read_to_end(events, tokens, last_id)
    stream.close()
    assert end["reason"] == "cancelled", end
    assert len(tokens) < 5000
    return f"DELETE {status}, end cancelled after {len(tokens)} tokens"


def streamapi_containers():
    out = subprocess.run(["podman", "ps", "--filter", f"label=io.podman.compose.project={PROJECT}",
                          "--filter", "label=com.docker.compose.service=streamapi", "--format", "{{.Names}}"],
                         check=True, capture_output=True, text=True).stdout.split()
    assert len(out) == 2, f"expected 2 StreamApi replicas, found {out}"
    return out


def bytes_sent_on_8080(container):
    """Bytes the container has sent on its established :8080 connections from other hosts (not probes)."""
    pid = subprocess.run(["podman", "inspect", "--format", "{{.State.Pid}}", container],
                         check=True, capture_output=True, text=True).stdout.strip()
    out = subprocess.run(["nsenter", "-t", pid, "-n", "ss", "-Htin", "state", "established", "( sport = :8080 )"],
                         check=True, capture_output=True, text=True).stdout
    total, remote = 0, ""
    for line in out.splitlines():
        if not line.startswith((" ", "\t")):
            remote = line.split()[-1]
        elif not remote.startswith(("127.", "[::1]", "[::ffff:127.")):
            for field in line.split():
                if field.startswith("bytes_sent:"):
                    total += int(field.split(":")[1])
    return total


def serving_replica(containers):
    before = {c: bytes_sent_on_8080(c) for c in containers}
    time.sleep(0.5)
    grown = [c for c in containers if bytes_sent_on_8080(c) > before[c]]
    assert len(grown) == 1, f"cannot tell which replica serves the stream: {grown}"
    return grown[0]


def check_kill():
    stream = start(400, "survive a crash")
    events = stream.events()
    stream_id, tokens, last_id = take_tokens(events, 20)
    victim = serving_replica(streamapi_containers())
    subprocess.run(["podman", "kill", victim], check=True, capture_output=True)
    killed_at = time.monotonic()
    # The gateway loses its upstream: this response ends early or breaks. Keep what arrived before that.
    try:
        for event in events:
            if event["event"] == "token":
                index = event["data"]["payload"]["index"]
                assert index == tokens[-1] + 1, f"token {index} after {tokens[-1]}"
                tokens.append(index)
                last_id = event["id"]
            elif event["event"] == "end":
                raise AssertionError("the stream ended normally although its replica was killed")
    except (OSError, http.client.HTTPException):
        pass
    stream.close()
    before = len(tokens)
    end, attempts, attached_at = resume(stream_id, tokens, last_id)
    took = attached_at - killed_at
    assert end["reason"] == "length" and end["usage"]["output_tokens"] == 400 == len(tokens), (end, len(tokens))
    return (f"killed {victim} after token {before - 1}; re-attached through the gateway {took:.2f} s after the kill "
            f"({attempts} attempt(s)), "
            f"{400 - before} more tokens, no gap or duplicate")


failed = False
for name in CHECKS:
    began = time.monotonic()
    try:
        detail = globals()[f"check_{name}"]()
        print(f"ok    {name:<7} {time.monotonic() - began:5.1f} s  {detail}", flush=True)
    except Exception as error:  # noqa: BLE001 - report every check, then fail
        failed = True
        print(f"FAIL  {name:<7} {time.monotonic() - began:5.1f} s  {type(error).__name__}: {error}", flush=True)
sys.exit(1 if failed else 0)
