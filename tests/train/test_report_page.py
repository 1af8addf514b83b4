"""The report card looked at as an image: report.md rendered in headless Chromium (markdown through
Debian's marked, as chat_web's page renders replies), over loopback HTTP from the report directory.

Checks that every plot the report links loads as an image of the SVG's size and shows its curves
(pixels of the validation blue and the training orange, counted on a canvas), that the title and
nanochat's summary table are there with the values the stages wrote, and that a broken plot is
caught (the same checks fail on a truncated SVG). Saves the whole page as a PNG.

  ctest: train.report_page (run_report_page_test.sh) writes a run's sections itself: `report reset`,
         then base-model-training, base-model-evaluation, chat-sft, chat-evaluation-sft and chat-rl
         in nanochat's format with their metrics.jsonl, then `report generate`.
  --report DIR: renders an existing report directory instead (the main job's: BASE/report), e.g.
         python3 tests/train/test_report_page.py --chromium chromium --report ~/.cache/nanochat/report --png docs/report_card.png
"""
import argparse
import functools
import http.server
import json
import math
import os
import shutil
import subprocess
import sys
import tempfile
import threading

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
from devtools_browser import Browser  # noqa: E402

MARKED = "/usr/share/javascript/marked/marked.min.js"
BLUE, ORANGE = (0x1F, 0x77, 0xB4), (0xFF, 0x7F, 0x0E)  # train/metrics_plot.hpp's validation and training colours

PAGE = """<!doctype html><html><head><meta charset="utf-8"><base href="/report/">
<style>body{font-family:sans-serif;max-width:900px;margin:16px auto;padding:0 16px}
table{border-collapse:collapse}td,th{border:1px solid #ccc;padding:2px 8px}img{display:block}</style>
<script src="/marked.js"></script></head><body><div id="doc">loading</div><script>
fetch("report.md").then(r => r.text()).then(md => {
  document.getElementById("doc").innerHTML = marked.parse(md);
  return Promise.all([...document.images].map(img => img.decode().catch(() => null)));
}).then(() => { document.body.dataset.ready = "1"; });
</script></body></html>"""

# Per image: whether it loaded, its natural size, and how many pixels are within a small distance of
# each curve colour (drawn on a canvas: the page and the images share the loopback origin).
IMAGE_STATS = """(() => [...document.images].map(img => {
  const out = {src: img.getAttribute("src"), ok: img.complete && img.naturalWidth > 0, w: img.naturalWidth, h: img.naturalHeight, colours: []};
  if (!out.ok) return out;
  const c = document.createElement("canvas"); c.width = img.naturalWidth; c.height = img.naturalHeight;
  const g = c.getContext("2d"); g.drawImage(img, 0, 0);
  const px = g.getImageData(0, 0, c.width, c.height).data;
  out.colours = %s.map(([r, gr, b]) => { let n = 0;
    for (let i = 0; i < px.length; i += 4) if (Math.abs(px[i] - r) + Math.abs(px[i + 1] - gr) + Math.abs(px[i + 2] - b) < 40) ++n;
    return n; });
  return out; }))()""" % json.dumps([BLUE, ORANGE])


def serve(report_dir, marked):
    """A loopback HTTP server: / is the page, /marked.js Debian's marked, /report/<name> the report's files."""
    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            name = self.path.removeprefix("/report/")  # one plain file name of the report directory
            if self.path == "/":
                body, kind = PAGE.encode(), "text/html"
            elif self.path == "/marked.js":
                body, kind = open(marked, "rb").read(), "text/javascript"
            elif name != self.path and "/" not in name and os.path.isfile(os.path.join(report_dir, name)):
                body = open(os.path.join(report_dir, name), "rb").read()
                kind = "image/svg+xml" if name.endswith(".svg") else "text/markdown; charset=utf-8"
            else:
                self.send_error(404)
                return
            self.send_response(200)
            self.send_header("Content-Type", kind)
            self.send_header("Content-Length", str(len(body)))
            self.send_header("Cache-Control", "no-store")
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


def render(browser, address):
    browser.call("Page.navigate", url=f"http://{address}/")
    browser.wait("document.body && document.body.dataset.ready === '1'", "report.md to render")


def check_images(browser, expect_plots):
    """Every plot loaded at the SVG's size and shows both curves; returns how many were checked."""
    stats = browser.eval(IMAGE_STATS)
    assert len(stats) >= expect_plots, f"the report shows {len(stats)} plots, {expect_plots} expected: {stats}"
    for s in stats:
        assert s["ok"], f"{s['src']}: the plot did not load as an image"
        assert (s["w"], s["h"]) == (640, 360), f"{s['src']}: {s['w']} x {s['h']}, not the SVG's 640 x 360"
        blue, orange = s["colours"]
        # A 2-pixel polyline across the 528-pixel plot area has over 500 pixels of its colour.
        assert blue > 500, f"{s['src']}: the validation curve shows {blue} blue pixels"
        assert orange > 500, f"{s['src']}: the training curve shows {orange} orange pixels"
    return len(stats)


def summary_table(browser):
    """nanochat's summary table as rows of cell texts, the header first."""
    return browser.eval("""(() => { const t = [...document.querySelectorAll('table')].find(t => t.rows[0] &&
        t.rows[0].cells[0].textContent.trim() === 'Metric');
      return t ? [...t.rows].map(r => [...r.cells].map(c => c.textContent.trim())) : null; })()""")


def write_metrics(path, kind, steps):
    """A stage's metrics.jsonl with the keys train/metrics_plot.hpp reads, curves of a plausible shape."""
    with open(path, "w") as f:
        for step in range(steps):
            decay = math.exp(-step / (steps / 4))
            if kind == "base":
                f.write(json.dumps({"step": step, "loss": 2.0 + 7.0 * decay}) + "\n")
                if step % 10 == 0 or step == steps - 1:
                    f.write(json.dumps({"step": step, "val_bpb": 1.0 + 2.0 * math.sqrt(decay)}) + "\n")
            elif kind == "sft":
                f.write(json.dumps({"step": step, "train_loss": 0.6 + decay * (1 + 0.3 * math.sin(step))}) + "\n")
                if step % 10 == 0 or step == steps - 1:
                    f.write(json.dumps({"step": step, "val_loss": 0.7 + 0.5 * math.sqrt(decay)}) + "\n")
            else:
                f.write(json.dumps({"step": step, "reward": 0.5 - 0.3 * decay + 0.1 * math.sin(step), "loss": 0.01}) + "\n")
                if step % 10 == 0 or step == steps - 1:
                    f.write(json.dumps({"step": step, "pass@1": 0.45 - 0.1 * decay, "pass@8": 0.6 - 0.05 * decay}) + "\n")


def write_run(report_program, base):
    """A run's report directory as the stages leave it; returns the values its summary must show."""
    env = dict(os.environ, NANOCHAT_BASE_DIR=base)
    subprocess.run([report_program, "reset"], check=True, env=env, stdout=subprocess.DEVNULL)
    report = os.path.join(base, "report")
    sections = {
        "base-model-training": ("Base model training", "base", ["Minimum validation bpb: 1.0123"]),
        "base-model-evaluation": ("Base model evaluation", None, ["Model: base_model (step 400)", "CORE metric: 0.1234"]),
        "chat-sft": ("Chat SFT", "sft", ["Validation loss: 0.7012"]),
        "chat-evaluation-sft": ("Chat evaluation sft", None, ["arithmetic: 0.9650", "letter-count: 0.6400"]),
        "chat-rl": ("Chat RL", "rl", ["Final step: 400"]),
    }
    for name, (title, kind, items) in sections.items():
        lines = [f"## {title}", "timestamp: 2026-12-07 12:00:00", ""] + [f"- {item}" for item in items]
        if kind:
            metrics = os.path.join(base, f"{name}.jsonl")
            write_metrics(metrics, kind, 200)
            lines.append(f"- Metrics file: {metrics}")
        with open(os.path.join(report, f"{name}.md"), "w") as f:
            f.write("\n".join(lines) + "\n")
    subprocess.run([report_program, "generate"], check=True, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return report, {"CORE": ("BASE", "0.1234"), "arithmetic": ("SFT", "0.9650"), "letter-count": ("SFT", "0.6400")}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--chromium", required=True)
    ap.add_argument("--report-program", help="the report program: write a run's sections and generate its report.md")
    ap.add_argument("--report", help="render this report directory (holding report.md) instead")
    ap.add_argument("--work", default=None, help="scratch directory (default: a temporary one)")
    ap.add_argument("--png", default=None, help="where to save the page (default: <work>/report.png)")
    ap.add_argument("--marked-js", default=MARKED)
    a = ap.parse_args()
    if bool(a.report) == bool(a.report_program):
        ap.error("give --report-program (write a run) or --report DIR (render one)")
    work = a.work or tempfile.mkdtemp(prefix="report_page.")
    os.makedirs(work, exist_ok=True)
    if a.report:
        report, expected, plots = a.report, {}, 1
    else:
        base = os.path.join(work, "base")
        shutil.rmtree(base, ignore_errors=True)
        report, expected = write_run(a.report_program, base)
        plots = 3
    if not os.path.isfile(os.path.join(report, "report.md")):
        raise SystemExit(f"{report}: no report.md (run `report generate`)")
    png = a.png or os.path.join(work, "report.png")

    server = serve(report, a.marked_js)
    address = f"127.0.0.1:{server.server_address[1]}"
    checks = 0
    browser = Browser(a.chromium, window="1000,800")
    try:
        render(browser, address)
        browser.screenshot(png, full_page=True)  # first, to show what a failing check saw
        assert browser.eval("document.querySelector('h1') && document.querySelector('h1').textContent") == \
            "nanochat training report", "the report's title is missing"
        checks += 1
        shown = check_images(browser, plots)
        checks += 1
        table = summary_table(browser)
        assert table and table[0] == ["Metric", "BASE", "MID", "SFT", "RL"], f"summary table: {table}"
        rows = {r[0]: dict(zip(table[0][1:], r[1:])) for r in table[1:]}
        for metric, (stage, value) in expected.items():
            assert rows.get(metric, {}).get(stage) == value, f"summary {metric} {stage}: {rows.get(metric)}, {value} expected"
        checks += 1

        if a.report_program:
            # The checks must see a broken plot: truncate one SVG and render again.
            svg = sorted(n for n in os.listdir(report) if n.endswith(".svg"))[0]
            path = os.path.join(report, svg)
            text = open(path).read()
            with open(path, "w") as f:
                f.write(text[: len(text) // 2])
            render(browser, address)
            try:
                check_images(browser, plots)
            except AssertionError as e:
                assert svg in str(e), e
                checks += 1
            else:
                raise AssertionError(f"a truncated {svg} passed the image checks")
    finally:
        browser.close()
        server.shutdown()
    print(f"{checks} passed, 0 failed; {shown} plots; page {png}")


if __name__ == "__main__":
    main()
