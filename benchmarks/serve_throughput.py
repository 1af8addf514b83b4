#!/usr/bin/env python3
"""Aggregate generated tokens/s and time to first token of chat_web, one slot (the Engine, one
request at a time) against N slots (continuous batching), at several client concurrencies.

Each client is a closed loop: it sends a streamed request (include_usage), reads it to [DONE],
then sends the next. Tokens/s is the completion tokens (from usage) of a phase over its wall time;
time to first token is from sending the request to its first content chunk. The model is a random
GPT over a byte tokenizer written by write_tiny_chat_model (d2, d4 or d12); requests sample with
temperature 1, so a reply may end before max_tokens, which usage counts. Python stdlib only.

  benchmarks/serve_throughput.py --chat-web build/release/examples/chat_web \\
      --write-model build/release/tests/serve/write_tiny_chat_model --work /tmp/serve-bench

For an A/B, name two builds (--chat-web old=/tmp/chat_web_old --chat-web new=build/...): each
server configuration runs on each build in turn, for --rounds rounds, so both see the same load.
"""
import argparse
import http.client
import json
import os
import statistics
import subprocess
import threading
import time


def start(chat_web, base_dir, slots, context, threads):
    env = dict(os.environ, NANOCHAT_BASE_DIR=base_dir, OMP_NUM_THREADS=str(threads))
    proc = subprocess.Popen([chat_web, "--port", "0", "--slots", str(slots), "--queue", "256", "--context", str(context),
                             "--queue-timeout", "600"], env=env, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    line = proc.stdout.readline()
    if "http://" not in line:
        proc.kill()
        raise SystemExit(f"chat_web did not start: {line!r}")
    host, port = line.strip().rsplit("http://", 1)[1].rsplit(":", 1)
    return proc, host, int(port)


def one_request(host, port, i, max_tokens):
    body = json.dumps({"messages": [{"role": "user", "content": f"Request {i}: tell me about the number {i * 7919 % 1000}."}],
                       "max_tokens": max_tokens, "temperature": 1.0, "top_k": 50, "seed": i, "stream": True,
                       "stream_options": {"include_usage": True}})
    conn = http.client.HTTPConnection(host, port, timeout=600)
    sent = time.perf_counter()
    conn.request("POST", "/v1/chat/completions", body, {"Content-Type": "application/json"})
    r = conn.getresponse()
    assert r.status == 200, r.status
    # The client parses as little as it can (it shares the machine): the first content delta's
    # arrival, and the usage of the last chunk.
    first, tail = None, b""
    while True:
        chunk = r.read1(65536)
        if not chunk:
            break
        if first is None and b'"content":' in chunk:
            first = time.perf_counter() - sent
        tail = (tail + chunk)[-4096:]
    usage = tail[tail.rindex(b'"usage":{'):]
    tokens = int(usage.split(b'"completion_tokens":', 1)[1].split(b",", 1)[0])
    conn.close()
    return first if first is not None else time.perf_counter() - sent, tokens


def phase(host, port, clients, per_client, max_tokens):
    ttfts, tokens = [], []
    lock = threading.Lock()

    def client(c):
        for k in range(per_client):
            t, n = one_request(host, port, c * 1000 + k, max_tokens)
            with lock:
                ttfts.append(t)
                tokens.append(n)

    start_t = time.perf_counter()
    threads = [threading.Thread(target=client, args=(c,)) for c in range(clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    wall = time.perf_counter() - start_t
    ttfts.sort()
    return sum(tokens) / wall, statistics.median(ttfts), ttfts[int(0.9 * (len(ttfts) - 1))], sum(tokens), len(tokens)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--chat-web", required=True, action="append", help="a chat_web binary, or label=binary; repeat to compare")
    ap.add_argument("--write-model", required=True)
    ap.add_argument("--work", required=True)
    ap.add_argument("--models", default="d2,d4")
    ap.add_argument("--slots", default="1,32")
    ap.add_argument("--concurrency", default="1,8,32")
    ap.add_argument("--max-tokens", type=int, default=64)
    ap.add_argument("--requests", type=int, default=64, help="requests per phase (at least one per client)")
    ap.add_argument("--rounds", type=int, default=1, help="times each build runs each configuration, interleaved")
    ap.add_argument("--threads", type=int, default=1,
                    help="the server's OpenMP threads; 1 leaves a core to the clients on a small machine, where a "
                         "team descheduled mid-step stalls every parallel region")
    a = ap.parse_args()
    with open("/proc/cpuinfo") as f:
        cpu = next(line.split(":", 1)[1].strip() for line in f if line.startswith("model name"))
    print(f"CPU: {cpu}, {os.cpu_count()} cores, server on {a.threads} OpenMP threads; load average at start {open('/proc/loadavg').read().split()[:3]}")
    builds = [b.split("=", 1) if "=" in b else ["", b] for b in a.chat_web]
    print("| build | model | slots | clients | requests | tokens | tokens/s | TTFT median (s) | TTFT p90 (s) |")
    print("|---|---|---|---|---|---|---|---|---|")
    for model in a.models.split(","):
        work = os.path.join(a.work, model)
        subprocess.run([a.write_model, work, "256"] + ([model] if model != "d2" else []), check=True)
        for slots in map(int, a.slots.split(",")):
            for _ in range(a.rounds):
                for label, chat_web in builds:
                    proc, host, port = start(chat_web, work, slots, 256, a.threads)
                    try:
                        one_request(host, port, 0, 4)  # warm up
                        for clients in map(int, a.concurrency.split(",")):
                            per_client = max(1, a.requests // clients)
                            rate, ttft, ttft90, tokens, n = phase(host, port, clients, per_client, a.max_tokens)
                            print(f"| {label} | {model} | {slots} | {clients} | {n} | {tokens} | {rate:.0f} | {ttft:.3f} | {ttft90:.3f} |",
                                  flush=True)
                    finally:
                        proc.terminate()
                        proc.wait(timeout=60)
    print(f"load average at end {open('/proc/loadavg').read().split()[:3]}")


if __name__ == "__main__":
    main()
