"""chat_web against the official openai Python client, over loopback, with a tiny random model.

Checks what an OpenAI client sees: the model list; whole and streamed replies (the same seed
gives the same text both ways, and n choices repeat it), usage counts, finish_reason, stop
strings; errors as the client raises them (400 with the field named, 401 without the key);
nanochat's own /chat/completions events; /health, /metrics and the body size limit; all of it
with one slot (the Engine) and with four (the batched generator). Then, with a model whose
replies never end and no wait queue: a request while every slot is busy gets 429, and streaming
clients that disconnect have their generation cancelled and their slots freed. Last, a load
test: 64 concurrent clients against 8 slots, rounds of them, every reply whole and its own
(the endless model's greedy reply is max_tokens NUL bytes, each client asking a different
length), the server healthy after, its memory flat across rounds; then 64 concurrent sampled
requests on the random model (a seed each), every reply equal to the same request run alone
after. And fuzzing at 1 and 3
slots: malformed JSON, wrong types in every field, bodies past --max-body, stalled and truncated
clients, all refused with a 4xx or a closed connection, the server alive with no slot held after.
Run by run_openai_client_test.sh (ctest serve.openai_client).
"""
import argparse
import concurrent.futures
import contextlib
import json
import os
import socket
import subprocess
import time
import urllib.error
import urllib.request

import openai

KEY = "test-key"


@contextlib.contextmanager
def serving(chat_web, base_dir, queue, slots=1, extra=()):
    """chat_web on a free loopback port: yields (process, address); afterwards SIGTERM, on which it
    must exit 0 (not checked when the body failed: its error is the one to see)."""
    env = dict(os.environ, NANOCHAT_BASE_DIR=base_dir)
    proc = subprocess.Popen([chat_web, "--port", "0", "--api-key", KEY, "--queue", str(queue), "--slots", str(slots), *extra], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    line = proc.stdout.readline()
    if "http://" not in line:
        proc.kill()
        raise SystemExit(f"chat_web did not start: {line!r}")
    try:
        yield proc, line.strip().rsplit("http://", 1)[1]
    finally:
        proc.terminate()
        code = proc.wait(timeout=30)
    assert code == 0, f"chat_web exited with {code} on SIGTERM"


def http(url, body=None, headers=None):
    req = urllib.request.Request(url, data=body, headers=headers or {}, method="POST" if body is not None else "GET")
    try:
        with urllib.request.urlopen(req, timeout=60) as r:
            return r.status, r.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode()


def expect_status_error(cls, status, param, call):
    try:
        call()
    except cls as e:
        assert e.status_code == status, (e.status_code, e)
        assert e.param == param, (e.param, e.message)
        return e
    raise AssertionError(f"expected {cls.__name__} ({status}, {param})")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--chat-web", required=True)
    ap.add_argument("--write-model", required=True)
    ap.add_argument("--work", required=True)
    a = ap.parse_args()
    os.makedirs(a.work, exist_ok=True)
    subprocess.run([a.write_model, a.work], check=True)
    checks = 0
    for slots in (1, 4):
        checks += client_checks(a, slots)

    endless = os.path.join(a.work, "endless")
    subprocess.run([a.write_model, endless, "2048", "endless"], check=True)
    for slots in (1, 2):
        with serving(a.chat_web, endless, 0, slots) as (_, address):
            checks += busy_and_disconnect(address, slots)
    max_body = 1 << 16
    for slots in (1, 3):
        with serving(a.chat_web, a.work, 4, slots, ["--max-body", str(max_body), "--io-timeout", "1"]) as (proc, address):
            checks += fuzz(address, proc, max_body)

    with serving(a.chat_web, endless, 64, 8) as (proc, address):
        checks += load(address, proc.pid)
    with serving(a.chat_web, a.work, 64, 8) as (_, address):
        checks += load_sampled(address)
    print(f"{checks} passed, 0 failed")


def client_checks(a, slots):
    checks = 0
    with serving(a.chat_web, a.work, 4, slots) as (_, address):
        base = f"http://{address}"
        client = openai.OpenAI(base_url=base + "/v1", api_key=KEY, max_retries=0, timeout=60)

        models = client.models.list().data
        assert len(models) == 1 and models[0].id.startswith("nanochat-"), models
        model = models[0].id
        checks += 1

        messages = [{"role": "user", "content": "hi"}]
        prompt_tokens = 1 + 1 + len(b"hi") + 1 + 1  # <|bos|> <|user_start|> h i <|user_end|> <|assistant_start|>
        params = dict(model=model, messages=messages, max_tokens=16, seed=7, temperature=0.9, extra_body={"top_k": 50})
        whole = client.chat.completions.create(**params)
        assert whole.object == "chat.completion"
        assert len(whole.choices) == 1
        text = whole.choices[0].message.content
        assert isinstance(text, str) and whole.choices[0].message.role == "assistant"
        assert whole.choices[0].finish_reason in ("stop", "length")
        u = whole.usage
        assert u.prompt_tokens == prompt_tokens, u
        assert 1 <= u.completion_tokens <= 16 and u.total_tokens == u.prompt_tokens + u.completion_tokens, u
        again = client.chat.completions.create(**params)
        assert again.choices[0].message.content == text, "the same seed gave another reply"
        checks += 2

        chunks = list(client.chat.completions.create(**params, stream=True, stream_options={"include_usage": True}))
        assert chunks[0].choices[0].delta.role == "assistant"
        streamed = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
        assert streamed == text, (streamed, text)
        finishes = [c.choices[0].finish_reason for c in chunks if c.choices and c.choices[0].finish_reason]
        assert finishes == [whole.choices[0].finish_reason], finishes
        assert chunks[-1].choices == [] and chunks[-1].usage.completion_tokens == u.completion_tokens, chunks[-1]
        assert all(c.usage is None for c in chunks[:-1])
        plain = list(client.chat.completions.create(**params, stream=True))
        assert all(c.usage is None for c in plain) and "".join(c.choices[0].delta.content or "" for c in plain) == text
        checks += 2

        two = client.chat.completions.create(**params, n=2)
        assert [c.index for c in two.choices] == [0, 1]
        assert two.choices[0].message.content == text  # choice i samples with seed + i
        checks += 1

        if len(text) >= 4:
            stop = text[2:4]
            cut = client.chat.completions.create(**params, stop=[stop, "\u2603never"])
            assert cut.choices[0].message.content == text[: text.find(stop)], (cut.choices[0].message.content, text, stop)
            assert cut.choices[0].finish_reason == "stop"
            cut_stream = list(client.chat.completions.create(**params, stop=stop, stream=True))
            assert "".join(c.choices[0].delta.content or "" for c in cut_stream) == text[: text.find(stop)]
            checks += 1

        greedy = dict(model=model, messages=messages, max_tokens=8, temperature=0)
        assert client.chat.completions.create(**greedy).choices[0].message.content == \
            client.chat.completions.create(**greedy, seed=123).choices[0].message.content
        checks += 1

        bad = openai.BadRequestError
        expect_status_error(bad, 400, "temperature", lambda: client.chat.completions.create(model=model, messages=messages, temperature=2.5))
        expect_status_error(bad, 400, "top_p", lambda: client.chat.completions.create(model=model, messages=messages, top_p=0.5))
        expect_status_error(bad, 400, "max_tokens", lambda: client.chat.completions.create(model=model, messages=messages, max_tokens=4097))
        expect_status_error(bad, 400, "top_k", lambda: client.chat.completions.create(model=model, messages=messages, extra_body={"top_k": 0}))
        expect_status_error(bad, 400, "messages[0].role",
                            lambda: client.chat.completions.create(model=model, messages=[{"role": "tool", "content": "x", "tool_call_id": "1"}]))
        expect_status_error(bad, 400, "messages[0].content",
                            lambda: client.chat.completions.create(model=model, messages=[{"role": "user", "content": "x" * 8001}]))
        expect_status_error(bad, 400, "temperature",
                            lambda: client.chat.completions.create(model=model, messages=messages, temperature=-1, stream=True))
        long_chat = [{"role": "user" if i % 2 == 0 else "assistant", "content": "word " * 300} for i in range(5)]
        e = expect_status_error(bad, 400, "messages", lambda: client.chat.completions.create(model=model, messages=long_chat))
        assert e.code == "context_length_exceeded", e.code  # 1500 characters, past the tiny model's 64 positions
        unauthorized = openai.OpenAI(base_url=base + "/v1", api_key="wrong", max_retries=0)
        e = expect_status_error(openai.AuthenticationError, 401, None,
                                lambda: unauthorized.chat.completions.create(model=model, messages=messages))
        assert e.code == "invalid_api_key"
        expect_status_error(openai.AuthenticationError, 401, None, lambda: unauthorized.models.list())
        checks += 10

        auth = {"Authorization": f"Bearer {KEY}", "Content-Type": "application/json"}
        status, body = http(base + "/chat/completions", json.dumps({"messages": messages, "max_tokens": 6}).encode(), auth)
        assert status == 200, (status, body)
        events = [json.loads(part[len("data: "):]) for part in body.split("\n\n") if part]
        assert events[-1] == {"done": True}, events
        assert all(set(e) == {"token", "gpu"} for e in events[:-1]), events
        status, body = http(base + "/chat/completions", json.dumps({"messages": messages, "top_k": 201}).encode(), auth)
        assert status == 400 and "top_k" in json.loads(body)["detail"], (status, body)
        status, body = http(base + "/chat/completions", json.dumps({"messages": messages}).encode(), {"Content-Type": "application/json"})
        assert status == 401 and "detail" in json.loads(body), (status, body)
        checks += 3

        status, body = http(base + "/health")
        assert status == 200 and json.loads(body)["status"] == "ok", body
        status, body = http(base + "/metrics", headers=auth)
        assert status == 200 and 'nanochat_requests_total{route="/v1/chat/completions",status="400"}' in body, body
        assert "nanochat_completion_tokens_total" in body and f"nanochat_slots {slots}\n" in body
        status, body = http(base + "/v1/chat/completions", b"{" + b" " * (2 << 20) + b"}", auth)
        assert status == 413, status
        status, body = http(base + "/v1/chat/completions", b"{not json", auth)
        assert status == 400 and "invalid JSON" in json.loads(body)["error"]["message"], body
        checks += 4
    return checks


def busy_and_disconnect(address, slots):
    """Every slot held by a streamed reply that would run 4096 tokens: another request is
    refused with 429; then the streaming clients leave and their generation stops early."""
    base = f"http://{address}"
    auth = {"Authorization": f"Bearer {KEY}"}
    host, port = address.rsplit(":", 1)
    body = json.dumps({"messages": [{"role": "user", "content": "hi"}], "max_tokens": 4096, "temperature": 0,
                       "stream": True}).encode()
    streams = []
    for _ in range(slots):
        s = socket.create_connection((host, int(port)), timeout=60)
        s.sendall(b"POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer " + KEY.encode() +
                  b"\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n" % len(body) + body)
        seen = b""
        while b"data: " not in seen:  # the first chunk: the reply is being generated
            data = s.recv(4096)
            assert data, "the server closed the stream"
            seen += data
        assert seen.startswith(b"HTTP/1.1 200"), seen[:100]
        streams.append(s)
    client = openai.OpenAI(base_url=base + "/v1", api_key=KEY, max_retries=0, timeout=60)
    e = expect_status_error(openai.RateLimitError, 429, None,
                            lambda: client.chat.completions.create(model="m", messages=[{"role": "user", "content": "x"}]))
    assert e.code == "queue_full", e.code
    for s in streams:
        s.close()
    deadline = time.time() + 60
    while json.loads(http(base + "/health")[1])["slots_in_use"] != 0:
        assert time.time() < deadline, "the slot of a client that left was not freed"
        time.sleep(0.02)
    metrics = http(base + "/metrics", headers=auth)[1]
    tokens = next(int(line.split()[1]) for line in metrics.splitlines() if line.startswith("nanochat_completion_tokens_total"))
    assert tokens < 4096 * slots, f"the generation of a client that left ran on: {tokens} tokens"
    assert f'nanochat_requests_total{{route="/v1/chat/completions",status="499"}} {slots}' in metrics, metrics
    assert 'nanochat_requests_total{route="/v1/chat/completions",status="429"} 1' in metrics, metrics
    return 3


def rss_kib(pid):
    with open(f"/proc/{pid}/status") as f:
        return next(int(line.split()[1]) for line in f if line.startswith("VmRSS:"))


def load(address, pid, clients=64, rounds=3):
    """Rounds of `clients` concurrent requests, half streamed: each must come back whole, with
    its own length and usage, and nothing may be left running after."""
    base = f"http://{address}"
    auth = {"Authorization": f"Bearer {KEY}", "Content-Type": "application/json"}

    def one(i):
        n = 1 + i % 24  # the reply's length identifies the request
        user = "q" * (1 + (i * 7) % 50)
        stream = i % 2 == 1
        body = {"messages": [{"role": "user", "content": user}], "max_tokens": n, "temperature": 0, "stream": stream}
        status, text = http(base + "/v1/chat/completions", json.dumps(body).encode(), auth)
        assert status == 200, (i, status, text)
        prompt_tokens = 1 + 1 + len(user) + 1 + 1
        if stream:
            parts = [p for p in text.split("\n\n") if p]
            assert all(p.startswith("data: ") for p in parts) and parts[-1] == "data: [DONE]", (i, text[-200:])
            chunks = [json.loads(p[len("data: "):]) for p in parts[:-1]]
            content = "".join(c["choices"][0]["delta"].get("content") or "" for c in chunks)
            finish = [c["choices"][0]["finish_reason"] for c in chunks if c["choices"][0]["finish_reason"]]
            assert finish == ["length"], (i, finish)
        else:
            r = json.loads(text)
            content = r["choices"][0]["message"]["content"]
            assert r["choices"][0]["finish_reason"] == "length", (i, r)
            assert r["usage"] == {"prompt_tokens": prompt_tokens, "completion_tokens": n,
                                  "total_tokens": prompt_tokens + n}, (i, r["usage"])
        assert content == "\0" * n, (i, n, content[:40])
        return n

    rss = []
    generated = 0
    with concurrent.futures.ThreadPoolExecutor(clients) as pool:
        for _ in range(rounds):
            generated += sum(pool.map(one, range(clients)))
            health = json.loads(http(base + "/health")[1])
            assert health["slots"] == 8 and health["slots_in_use"] == 0 and health["queued"] == 0, health
            rss.append(rss_kib(pid))
    metrics = http(base + "/metrics", headers=auth)[1]
    assert f"nanochat_completion_tokens_total {generated}\n" in metrics, metrics
    assert f'nanochat_requests_total{{route="/v1/chat/completions",status="200"}} {clients * rounds}' in metrics, metrics
    # Memory flat across rounds: the KV pool and buffers are planned at start; a leak per request
    # would add up over the rounds after the first.
    assert rss[-1] - rss[0] < 16 * 1024, f"server memory grew across rounds: {rss} KiB"
    return 4


def load_sampled(address, clients=64):
    """`clients` concurrent sampled requests (temperature 1, top-k 50, a seed each, different
    prompts) on a random model: each reply must equal the same request's reply run alone
    afterwards, so no request saw another's tokens, KV rows or random stream."""
    base = f"http://{address}"
    auth = {"Authorization": f"Bearer {KEY}", "Content-Type": "application/json"}

    def one(i):
        body = {"messages": [{"role": "user", "content": f"request {i}: " + "ab" * (i % 9)}], "max_tokens": 12,
                "temperature": 1.0, "top_k": 50, "seed": 1000 + i, "stream": i % 2 == 1}
        status, text = http(base + "/v1/chat/completions", json.dumps(body).encode(), auth)
        assert status == 200, (i, status, text)
        if body["stream"]:
            chunks = [json.loads(p[len("data: "):]) for p in text.split("\n\n") if p and p != "data: [DONE]"]
            return "".join(c["choices"][0]["delta"].get("content") or "" for c in chunks)
        return json.loads(text)["choices"][0]["message"]["content"]

    with concurrent.futures.ThreadPoolExecutor(clients) as pool:
        together = list(pool.map(one, range(clients)))
    alone = [one(i) for i in range(clients)]
    mixed = [i for i in range(clients) if together[i] != alone[i]]
    assert not mixed, f"{len(mixed)} replies differ from the same request run alone, e.g. {mixed[0]}: {together[mixed[0]]!r} vs {alone[mixed[0]]!r}"
    assert len(set(alone)) > clients // 2, "the seeds gave too few different replies to tell requests apart"
    return 1


def raw_exchange(address, data, shutdown=False, timeout=10):
    """Sends raw bytes on a fresh connection and reads until the server closes it (or `timeout`
    passes, which fails the test: the server must answer or close). Returns what came back."""
    host, port = address.rsplit(":", 1)
    with socket.create_connection((host, int(port)), timeout=timeout) as s:
        try:
            s.sendall(data)
            if shutdown:
                s.shutdown(socket.SHUT_WR)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the server answered and closed before taking it all in
        received = b""
        deadline = time.time() + timeout
        while True:
            assert time.time() < deadline, f"the server neither answered nor closed: {data[:80]!r}"
            try:
                chunk = s.recv(65536)
            except ConnectionResetError:
                break
            except socket.timeout:
                raise AssertionError(f"the server neither answered nor closed: {data[:80]!r}")
            if not chunk:
                break
            received += chunk
        return received


def post_bytes(route, body, extra_headers=b""):
    return (b"POST " + route + b" HTTP/1.1\r\nHost: x\r\nConnection: close\r\nAuthorization: Bearer " + KEY.encode() +
            b"\r\nContent-Type: application/json\r\n" + extra_headers + b"Content-Length: %d\r\n\r\n" % len(body) + body)


def fuzz(address, proc, max_body):
    """HTTP bodies the server must refuse without crashing or losing a slot: malformed JSON, a
    wrong type in every field, bodies past --max-body, and clients that send part of a request
    and stall or leave. Every answer is a 4xx that says what is wrong, or a closed connection."""
    base = f"http://{address}"
    auth = {"Authorization": f"Bearer {KEY}", "Content-Type": "application/json"}
    routes = ("/v1/chat/completions", "/chat/completions")

    def refused(route, body):
        status, text = http(base + route, body, auth)
        assert 400 <= status < 500, (route, body[:80], status, text)
        error = json.loads(text)
        message = error["error"]["message"] if route.startswith("/v1") else error["detail"]
        assert isinstance(message, str) and message, (route, body[:80], text)
        return status, error, message

    malformed = [b"", b"{", b"}", b"[]", b"null", b'"text"', b"42", b'{"messages": [', b'{"messages": "unterminated',
                 b'{"a": 1,}', b"{'messages': []}", b'{"temperature": NaN, "messages": []}', b"\xff\xfe{}",
                 b'{"messages": [{"role": "user", "content": "\\x"}]}',
                 b"[" * 60000, b'{"a":' * 12000, b'{"messages": [] } trailing', b"\x00" * 64]
    for route in routes:
        for body in malformed:
            status, _, _ = refused(route, body)
            assert status == 400, (route, body[:40], status)

    # A value of each kind but the field's own, in every field: a 400 naming the field.
    kinds = {"string": "x", "fraction": 1.5, "bool": True, "list": [1], "object": {"a": 1}}
    fields = {"model": {"string"}, "messages": set(), "messages[0]": {"object"}, "messages[0].role": {"string"},
              "messages[0].content": {"string"}, "temperature": {"fraction"}, "top_p": set(), "top_k": set(),
              "max_tokens": set(), "max_completion_tokens": set(), "seed": set(), "n": set(), "logprobs": {"bool"},
              "stream": {"bool"}, "stop": {"string"}, "stream_options": {"object"}, "stream_options.include_usage": {"bool"}}
    nanochat_fields = {"messages", "messages[0]", "messages[0].role", "messages[0].content", "temperature", "top_k", "max_tokens"}
    wrong = 0
    for field, own in fields.items():
        for kind, value in kinds.items():
            if kind in own:
                continue
            body = {"messages": [{"role": "user", "content": "hi"}], "max_tokens": 2}
            if field.startswith("messages[0]."):
                body["messages"][0][field.split(".", 1)[1]] = value
            elif field == "messages[0]":
                body["messages"][0] = value
            elif field.startswith("stream_options."):
                body["stream_options"] = {"include_usage": value}
            else:
                body[field] = value
            for route in routes if field in nanochat_fields else routes[:1]:
                _, error, message = refused(route, json.dumps(body).encode())
                if route.startswith("/v1"):
                    assert error["error"]["param"].startswith(field), (field, kind, error)
                else:
                    assert field.split("[")[0].split(".")[0] in message, (field, kind, message)
                wrong += 1
    assert wrong > 60, wrong

    # Bodies past the limit: told with a 413, or the connection is closed, whatever the framing.
    host_header = b"POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nConnection: close\r\nAuthorization: Bearer " + KEY.encode() + b"\r\n"
    huge = json.dumps({"messages": [{"role": "user", "content": "x" * (max_body + 1)}]}).encode()
    for data in (post_bytes(b"/v1/chat/completions", huge), post_bytes(b"/chat/completions", huge),
                 host_header + b"Content-Length: 1000000000000\r\n\r\n{}",
                 host_header + b"Transfer-Encoding: chunked\r\n\r\n" + b"".join(b"%x\r\n%s\r\n" % (8192, b"x" * 8192)
                                                                                  for _ in range(max_body // 8192 + 2)) + b"0\r\n\r\n",
                 host_header + b"Content-Length: -5\r\n\r\n{}", host_header + b"Content-Length: banana\r\n\r\n{}"):
        answer = raw_exchange(address, data)
        if answer:
            status = int(answer.split(b" ", 2)[1])
            assert 400 <= status < 500, answer[:200]
    answer = raw_exchange(address, post_bytes(b"/v1/chat/completions", huge))
    assert answer.startswith(b"HTTP/1.1 413") and str(max_body).encode() in answer, answer[:300]

    # Slow and truncated clients: part of the headers or of the body, then a stall (the server
    # drops them after --io-timeout) or a close; many at once, more than the server has threads.
    body = json.dumps({"messages": [{"role": "user", "content": "hi"}], "max_tokens": 2}).encode()
    whole = post_bytes(b"/v1/chat/completions", body)
    cut_in_body = whole[: len(whole) - len(body) // 2]
    host, port = address.rsplit(":", 1)
    stalled = []
    for i in range(24):
        s = socket.create_connection((host, int(port)), timeout=30)
        s.sendall(cut_in_body if i % 2 else whole[:30])
        stalled.append(s)
    for data in (cut_in_body, whole[:30], b"GARBAGE\r\n\r\n", b"POST / HTTP/9.9\r\n\r\n"):
        raw_exchange(address, data, shutdown=True)  # answered or closed, never left hanging
    started = time.time()
    for s in stalled:
        s.settimeout(30)
        answer = b""
        try:
            while chunk := s.recv(65536):
                answer += chunk
        except ConnectionResetError:
            pass
        assert answer == b"" or b" 408 " in answer.split(b"\r\n", 1)[0] or b" 400 " in answer.split(b"\r\n", 1)[0], answer[:200]
        s.close()
    assert time.time() - started < 20, "stalled clients were not dropped after --io-timeout"

    assert proc.poll() is None, "chat_web died"
    status, text = http(base + "/v1/chat/completions", body, auth)
    assert status == 200 and json.loads(text)["usage"]["completion_tokens"] >= 1, (status, text)
    # A reply's bookkeeping ends after its last byte is sent: the gauges may lag it briefly.
    gauges = ("nanochat_slots_in_use", "nanochat_requests_in_flight", "nanochat_requests_queued")
    deadline = time.time() + 10
    while not all(f"\n{g} 0\n" in (metrics := http(base + "/metrics", headers=auth)[1]) for g in gauges):
        assert time.time() < deadline, ("a slot, request or queue entry was left after fuzzing", metrics)
        time.sleep(0.05)
    health = json.loads(http(base + "/health")[1])
    assert health["slots_in_use"] == 0 and health["queued"] == 0, health
    return 5


if __name__ == "__main__":
    main()
