#!/usr/bin/env python3
"""The Hugging Face round trip against transformers itself (ctest convert.hf_reference).

Makes a small checkpoint of ours (2 layers, 4 heads, 2 KV heads, head dim 16, random weights) with
the fixture tokenizer converted_2048, exports it with `hf_convert export`, loads the directory with
transformers' NanoChatForCausalLM in fp32 and AutoTokenizer, and checks
  - its logits against our CPU forward on the same ids (our_outputs logits): within 1e-4 relative
    once transformers' rotary cos/sin are rounded to bf16 as nanochat's are, and within 2e-3 as
    transformers computes them (fp32), the one formula difference the format cannot carry;
  - its chat template's ids against render_conversation's (our_outputs chat) on several chats;
that transformers' own converter of tiktoken ranks (TikTokenConverter, what hub conversions use)
writes the same vocabulary and set of merges and that `hf_convert import` takes its file; then
imports the directory back (`hf_convert import`) and checks that the weights are bit-identical to
the original, the tokenizer files the same, and our logits unchanged.
Exits 77 (ctest: skipped) when torch, safetensors, tiktoken or transformers (with NanoChat) cannot be
imported.
"""
import argparse
import json
import shutil
import subprocess
import sys
from pathlib import Path

try:
    import tiktoken  # noqa: F401 - transformers' TikTokenConverter reads the ranks with it
    import torch
    import transformers
    from safetensors.torch import load_file, save_file
    from transformers import AutoTokenizer, NanoChatForCausalLM
    from transformers.models.nanochat import modeling_nanochat
except Exception as e:  # noqa: BLE001 - any import failure means "cannot run here"
    print(f"SKIP: {sys.executable} cannot import torch, safetensors, tiktoken and transformers with NanoChat ({e}); "
          "see docs/model.md for the venv")
    sys.exit(77)

LAYERS, HEADS, KV_HEADS, HEAD_DIM, SEQ = 2, 4, 2, 16, 64
DIM = HEADS * HEAD_DIM

CHATS = [
    [{"role": "user", "content": "Hello! What is 12 + 345?"},
     {"role": "assistant", "content": "Let me compute: 12 + 345 = 357."}],
    [{"role": "system", "content": "You are terse."},
     {"role": "user", "content": "Name  three  colours\n\nplease"},
     {"role": "assistant", "content": [
         {"type": "text", "text": "Using a tool: "},
         {"type": "python", "text": "print(['red', 'green', 'blue'])"},
         {"type": "python_output", "text": "['red', 'green', 'blue']"},
         {"type": "text", "text": " Done."}]},
     {"role": "user", "content": "Merci beaucoup, ça marche très bien 🙂 — 2024年"}],
]


def run(*cmd):
    result = subprocess.run([str(c) for c in cmd], capture_output=True, text=True)
    if result.returncode != 0:
        sys.exit(f"FAIL: {' '.join(map(str, cmd))} exited {result.returncode}\n{result.stdout}{result.stderr}")
    return result.stdout


def relative_error(got, want):
    got, want = got.double(), want.double()
    return float((got - want).norm() / want.norm())


def make_checkpoint(fixtures: Path, ours: Path):
    """Our checkpoint layout: model_000000.safetensors (nanochat's names, model_config) and a tokenizer."""
    tok_dir = ours / "tokenizer"
    tok_dir.mkdir(parents=True)
    for name in ("tokenizer.json", "tokenizer.tiktoken"):
        shutil.copy(fixtures / "tokenizer" / "converted_2048" / name, tok_dir / name)
    specials = json.loads((tok_dir / "tokenizer.json").read_text())["special_tokens"]
    vocab = min(specials.values()) + len(specials)
    g = torch.Generator().manual_seed(1234)

    def normal(rows, cols, std):
        return (torch.randn(rows, cols, generator=g) * std).contiguous()

    tensors = {"transformer.wte.weight": normal(vocab, DIM, 1.0)}
    kv = KV_HEADS * HEAD_DIM
    for i in range(LAYERS):
        p = f"transformer.h.{i}."
        tensors[p + "attn.c_q.weight"] = normal(DIM, DIM, DIM ** -0.5)
        tensors[p + "attn.c_k.weight"] = normal(kv, DIM, DIM ** -0.5)
        tensors[p + "attn.c_v.weight"] = normal(kv, DIM, DIM ** -0.5)
        tensors[p + "attn.c_proj.weight"] = normal(DIM, DIM, DIM ** -0.5)
        tensors[p + "mlp.c_fc.weight"] = normal(4 * DIM, DIM, DIM ** -0.5)
        tensors[p + "mlp.c_proj.weight"] = normal(DIM, 4 * DIM, (4 * DIM) ** -0.5)
    tensors["lm_head.weight"] = normal(vocab, DIM, 0.5)  # logits of a few units: the softcap matters
    metadata = {"n_layer": str(LAYERS), "n_head": str(HEADS), "n_kv_head": str(KV_HEADS), "n_embd": str(DIM),
                "vocab_size": str(vocab), "sequence_len": str(SEQ)}
    save_file(tensors, str(ours / "model_000000.safetensors"), metadata=metadata)
    return ours / "model_000000.safetensors", tok_dir, vocab


def our_logits(our_outputs, checkpoint, ids, work: Path, name):
    ids_file = work / f"{name}.ids"
    ids_file.write_text(" ".join(map(str, ids)))
    out = work / f"{name}.logits.safetensors"
    run(our_outputs, "logits", checkpoint, ids_file, out)
    return load_file(str(out))["logits"]


def hf_logits(model, ids, bf16_rotary):
    original = modeling_nanochat.NanoChatRotaryEmbedding.forward

    def rounded(self, x, position_ids):
        cos, sin = original(self, x, position_ids)
        return cos.bfloat16().to(cos.dtype), sin.bfloat16().to(sin.dtype)

    if bf16_rotary:
        modeling_nanochat.NanoChatRotaryEmbedding.forward = rounded
    try:
        with torch.no_grad():
            return model(torch.tensor([ids])).logits[0].float()
    finally:
        modeling_nanochat.NanoChatRotaryEmbedding.forward = original


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--hf-convert", required=True)
    ap.add_argument("--our-outputs", required=True)
    ap.add_argument("--fixtures", required=True, type=Path)
    ap.add_argument("--work", required=True, type=Path)
    args = ap.parse_args()
    work = args.work
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    failures = []

    checkpoint, tok_dir, vocab = make_checkpoint(args.fixtures, work / "ours")
    hf_dir = work / "hf"
    run(args.hf_convert, "export", "--checkpoint", checkpoint, "--tokenizer", tok_dir, "--out", hf_dir)

    model = NanoChatForCausalLM.from_pretrained(str(hf_dir), dtype=torch.float32).eval()
    tokenizer = AutoTokenizer.from_pretrained(str(hf_dir))
    print(f"transformers {transformers.__version__}, torch {torch.__version__}: {type(model).__name__}, "
          f"{type(tokenizer).__name__}, vocab {vocab}")

    if model.model.embed_tokens.padding_idx is not None:
        failures.append(f"the embedding has padding_idx {model.model.embed_tokens.padding_idx}: fine-tuning would "
                        "never update that row, unlike nanochat's")

    # Ids: a rendered chat followed by arbitrary ids, SEQ positions in all.
    chat_ids = [int(i) for i in run(args.our_outputs, "chat", tok_dir, write_json(work / "chat0.json", CHATS[0])).split()]
    g = torch.Generator().manual_seed(5)
    ids = (chat_ids + torch.randint(0, vocab, (SEQ,), generator=g).tolist())[:SEQ]
    ours = our_logits(args.our_outputs, checkpoint, ids, work, "ours")
    rounded_err = relative_error(hf_logits(model, ids, bf16_rotary=True), ours)
    stock_err = relative_error(hf_logits(model, ids, bf16_rotary=False), ours)
    print(f"logits, relative error vs ours: {rounded_err:.3g} (transformers with bf16-rounded rotary), "
          f"{stock_err:.3g} (transformers as is, fp32 rotary)")
    if not rounded_err <= 1e-4:
        failures.append(f"logits differ by {rounded_err:.3g} relative (bf16 rotary), more than 1e-4")
    if not stock_err <= 2e-3:
        failures.append(f"logits differ by {stock_err:.3g} relative (fp32 rotary), more than 2e-3")

    # The chat template against render_conversation.
    for n, chat in enumerate(CHATS):
        want = [int(i) for i in run(args.our_outputs, "chat", tok_dir, write_json(work / f"chat{n}.json", chat)).split()]
        got = tokenizer.apply_chat_template(chat, tokenize=True, return_dict=False)
        if hasattr(got, "input_ids"):
            got = got["input_ids"]
        got = list(got)
        if got != want:
            failures.append(f"chat {n}: transformers' ids {got} differ from ours {want}")
    prompt = tokenizer.apply_chat_template(CHATS[0][:1], tokenize=False, add_generation_prompt=True)
    if not prompt.endswith("<|user_end|><|assistant_start|>"):
        failures.append(f"the generation prompt ends {prompt[-40:]!r}")
    # Plain text: the tokenizer fixtures' corpus (many scripts, digits, whitespace runs, emoji).
    corpus = args.fixtures / "tokenizer" / "corpus.txt"
    text = corpus.read_bytes().decode("utf-8")  # as it is: \r\n stays
    want_text = [int(i) for i in run(args.our_outputs, "encode", tok_dir, corpus).split()]
    got_text = tokenizer(text, add_special_tokens=False)["input_ids"]
    if got_text != want_text:
        first = next((i for i, (a, b) in enumerate(zip(got_text, want_text)) if a != b), min(len(got_text), len(want_text)))
        failures.append(f"tokenizer(corpus.txt) differs from our encode from id {first} on "
                        f"({len(got_text)} and {len(want_text)} ids)")
    if tokenizer.decode(got_text) != text:
        failures.append("tokenizer.decode does not give corpus.txt back")
    print(f"text: {len(text)} characters of corpus.txt, {len(want_text)} ids, "
          f"{'the same' if got_text == want_text else 'DIFFERENT'}")
    print(f"chat template: {len(CHATS)} chats, ids {'match' if not any('chat' in f for f in failures) else 'DIFFER'}")

    # transformers' own converter of tiktoken ranks (what hub conversions of nanochat use) writes the
    # same vocabulary and merges (in another order among the splits of one token); import takes it.
    from transformers.convert_slow_tokenizer import TikTokenConverter
    specials = json.loads((tok_dir / "tokenizer.json").read_text())["special_tokens"]
    theirs_dir = work / "theirs"
    shutil.copytree(hf_dir, theirs_dir)
    TikTokenConverter(vocab_file=str(tok_dir / "tokenizer.tiktoken"), pattern=json.loads(
        (tok_dir / "tokenizer.json").read_text())["pattern"], extra_special_tokens=sorted(specials, key=specials.get)
    ).converted().save(str(theirs_dir / "tokenizer.json"))
    theirs = json.loads((theirs_dir / "tokenizer.json").read_text())["model"]
    mine = json.loads((hf_dir / "tokenizer.json").read_text())["model"]
    if theirs["vocab"] != mine["vocab"]:
        failures.append("TikTokenConverter's vocabulary differs from ours")
    if sorted(map(tuple, theirs["merges"])) != sorted(tuple(m.split(" ")) for m in mine["merges"]):
        failures.append("TikTokenConverter's merges are not the set of ours")
    output = run(args.hf_convert, "import", "--hf", theirs_dir, "--checkpoint", work / "theirs_model.safetensors",
                 "--tokenizer", work / "theirs_tokenizer")
    if (work / "theirs_tokenizer" / "tokenizer.tiktoken").read_bytes() != (tok_dir / "tokenizer.tiktoken").read_bytes():
        failures.append("importing TikTokenConverter's tokenizer.json gives other ranks")
    print(f"transformers' TikTokenConverter: {len(theirs['merges'])} merges, the same set as ours; import: {output.strip()}")

    # Back: import, then the same weights, tokenizer and logits.
    before_import = len(failures)
    imported = work / "imported"
    run(args.hf_convert, "import", "--hf", hf_dir, "--checkpoint", imported / "model_000000.safetensors",
        "--tokenizer", imported / "tokenizer")
    original, back = load_file(str(checkpoint)), load_file(str(imported / "model_000000.safetensors"))
    if original.keys() != back.keys() or any(not torch.equal(original[k], back[k]) for k in original):
        failures.append("imported weights are not bit-identical to the exported ones")
    if (imported / "tokenizer" / "tokenizer.tiktoken").read_bytes() != (tok_dir / "tokenizer.tiktoken").read_bytes():
        failures.append("imported tokenizer.tiktoken differs from the original")
    if json.loads((imported / "tokenizer" / "tokenizer.json").read_text()) != json.loads((tok_dir / "tokenizer.json").read_text()):
        failures.append("imported tokenizer.json (specials, pattern) differs from the original")
    again = our_logits(args.our_outputs, imported / "model_000000.safetensors", ids, work, "imported")
    if not torch.equal(again, ours):
        failures.append(f"logits after import differ: {relative_error(again, ours):.3g} relative")
    print("import: weights, tokenizer and logits " + ("identical" if len(failures) == before_import else "DIFFER"))

    for f in failures:
        print("FAIL:", f)
    return 1 if failures else 0


def write_json(path: Path, value):
    path.write_text(json.dumps({"messages": value}, ensure_ascii=False))
    return path


if __name__ == "__main__":
    sys.exit(main())
