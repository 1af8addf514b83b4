#pragma once
// The web chat page chat_web serves at / (issue 20 item 5): one self-contained HTML document,
// compiled into the binary so that a chat_web built anywhere serves it without an installed data
// file or a build step. It streams replies from /v1/chat/completions (SSE), renders markdown with
// the marked.min.js the server hands out beside it (Debian's libjs-marked; plain text, said so
// on the page, when the server has none), and loads nothing from the internet.
//
// Model text never becomes markup: marked's HTML is parsed into an inert <template>, and every
// element outside a short list of formatting tags is shown as its source text, every attribute
// dropped but a link's http(s)/mailto href (and a list's start, a cell's align, a code block's
// language class).

#include <string_view>

namespace nanochat::serve {

inline constexpr std::string_view chat_page_html = R"nanochat_page(<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>nanochat</title>
<style>
  :root { --fg: #1d1d1f; --muted: #6e6e73; --line: #d2d2d7; --user: #e8f0fe; --error: #fdecea; --note: #f5f5f7; }
  * { box-sizing: border-box; }
  body { margin: 0; font: 15px/1.5 system-ui, sans-serif; color: var(--fg); display: flex; flex-direction: column; height: 100vh; }
  header { display: flex; gap: 12px; align-items: center; padding: 8px 16px; border-bottom: 1px solid var(--line); }
  header .title { font-weight: 600; }
  header .info { color: var(--muted); font-size: 13px; flex: 1; }
  #notice { padding: 6px 16px; background: #fff8e1; border-bottom: 1px solid var(--line); font-size: 13px; }
  #log { flex: 1; overflow-y: auto; padding: 16px; display: flex; flex-direction: column; gap: 10px; }
  .msg { max-width: 46em; padding: 8px 12px; border-radius: 10px; white-space: normal; overflow-wrap: anywhere; }
  .msg.user { align-self: flex-end; background: var(--user); white-space: pre-wrap; }
  .msg.assistant { align-self: flex-start; border: 1px solid var(--line); }
  .msg.assistant.plain { white-space: pre-wrap; }
  .msg.error { align-self: stretch; background: var(--error); color: #8a1c12; }
  .msg.note { align-self: center; background: var(--note); color: var(--muted); font-size: 13px; white-space: pre-wrap; }
  .msg pre { background: var(--note); padding: 8px; overflow-x: auto; }
  .msg p { margin: 0.3em 0; }
  .actions { margin-top: 4px; display: flex; gap: 6px; }
  .actions button { font-size: 12px; }
  .msg textarea { width: 100%; min-width: 24em; font: inherit; }
  form { display: flex; gap: 8px; padding: 12px 16px; border-top: 1px solid var(--line); }
  form textarea { flex: 1; font: inherit; padding: 6px; resize: vertical; }
  button { font: inherit; cursor: pointer; }
  button:disabled { cursor: default; }
</style>
<script src="marked.min.js"></script>
</head>
<body data-state="idle">
<header>
  <span class="title">nanochat</span>
  <span class="info" id="info"></span>
  <button type="button" id="new-chat">New chat</button>
</header>
<div id="notice" hidden></div>
<main id="log"></main>
<form id="composer">
  <textarea id="input" rows="2" placeholder="Message (Enter sends, Shift+Enter breaks the line); /help lists the commands" autofocus></textarea>
  <button type="submit" id="send">Send</button>
  <button type="button" id="stop" hidden>Stop</button>
</form>
<script>
"use strict";
// What is on the page: messages (user and assistant turns, sent to the model) and notes and
// errors (shown, never sent). Settings left null take the server's defaults (-t, -k).
const state = { messages: [], temperature: null, topK: null, key: sessionStorage.getItem("nanochat-key") || "",
                busy: false, editing: -1, controller: null };
const log = document.getElementById("log"), input = document.getElementById("input");
const hasMarkdown = typeof window.marked === "object" && typeof window.marked.parse === "function";
if (!hasMarkdown) showNotice("Markdown is off: the server has no marked.min.js (Debian's libjs-marked is not installed there), so replies are shown as plain text.");

function showNotice(text) { const n = document.getElementById("notice"); n.textContent = text; n.hidden = false; }

// Markup that may come out of marked; anything else in model text is shown as its source.
const allowedTags = new Set(["P", "BR", "HR", "H1", "H2", "H3", "H4", "H5", "H6", "STRONG", "EM", "DEL", "CODE",
  "PRE", "BLOCKQUOTE", "UL", "OL", "LI", "A", "TABLE", "THEAD", "TBODY", "TR", "TH", "TD"]);
function sanitize(parent) {
  for (const node of [...parent.childNodes]) {
    if (node.nodeType === Node.TEXT_NODE) continue;
    if (node.nodeType !== Node.ELEMENT_NODE) { node.remove(); continue; }
    if (!allowedTags.has(node.tagName)) { node.replaceWith(document.createTextNode(node.outerHTML)); continue; }
    for (const attr of [...node.attributes]) {
      const keep = (attr.name === "href" && node.tagName === "A" && /^(https?:|mailto:)/i.test(attr.value.trim())) ||
                   (attr.name === "start" && node.tagName === "OL") ||
                   (attr.name === "align" && (node.tagName === "TH" || node.tagName === "TD")) ||
                   (attr.name === "class" && node.tagName === "CODE" && /^language-[\w+-]+$/.test(attr.value));
      if (!keep) node.removeAttribute(attr.name);
    }
    if (node.tagName === "A") { node.target = "_blank"; node.rel = "noopener noreferrer"; }
    sanitize(node);
  }
}
// Model text as DOM nodes: markdown through marked, sanitized, or else the plain text.
function renderMarkdown(text) {
  const t = document.createElement("template");  // its content is inert: no script runs, nothing loads
  if (!hasMarkdown) { t.content.append(document.createTextNode(text)); return t.content; }
  t.innerHTML = window.marked.parse(text, { breaks: true, headerIds: false, mangle: false });
  sanitize(t.content);
  return t.content;
}

function button(label, onclick) {
  const b = document.createElement("button");
  b.type = "button"; b.textContent = label; b.onclick = onclick; b.disabled = state.busy;
  return b;
}
function lastTurn(role) { for (let i = state.messages.length - 1; i >= 0; i--) if (state.messages[i].role === role) return i; return -1; }

function render() {
  log.replaceChildren();
  const lastAssistant = lastTurn("assistant");
  state.messages.forEach((m, i) => {
    const div = document.createElement("div");
    div.className = "msg " + m.role;
    div.dataset.index = i;
    if (m.role === "user" && state.editing === i) {
      const area = document.createElement("textarea");
      area.value = m.content; area.rows = Math.max(2, m.content.split("\n").length);
      const actions = document.createElement("div"); actions.className = "actions";
      actions.append(button("Save and send", () => { state.editing = -1; resend(i, area.value); }),
                     button("Cancel", () => { state.editing = -1; render(); }));
      div.append(area, actions);
    } else {
      const body = document.createElement("div"); body.className = "content";
      if (m.role === "assistant") { if (!hasMarkdown) div.classList.add("plain"); body.append(renderMarkdown(m.content)); }
      else body.textContent = m.content;
      div.append(body);
      const actions = document.createElement("div"); actions.className = "actions";
      if (m.role === "user") actions.append(button("Edit", () => { state.editing = i; render(); }));
      if (m.role === "assistant" && i === lastAssistant && !m.streaming) actions.append(button("Regenerate", regenerate));
      if (actions.childNodes.length) div.append(actions);
    }
    m.element = div;
    log.append(div);
  });
  const t = state.temperature === null ? "server default" : state.temperature;
  const k = state.topK === null ? "server default" : state.topK;
  document.getElementById("info").textContent = `${modelName} · temperature ${t} · top-k ${k}`;
  document.getElementById("send").disabled = state.busy;
  document.getElementById("stop").hidden = !state.busy;
  document.body.dataset.state = state.busy ? "busy" : "idle";
  log.scrollTop = log.scrollHeight;
}
// During a stream only the growing reply is drawn again, once per frame.
let frame = 0;
function redrawReply(m) {
  if (frame) return;
  frame = requestAnimationFrame(() => {
    frame = 0;
    const body = m.element && m.element.querySelector(".content");
    if (body) { body.replaceChildren(renderMarkdown(m.content)); log.scrollTop = log.scrollHeight; }
  });
}

function note(text) { state.messages.push({ role: "note", content: text }); render(); }
function error(text) { state.messages.push({ role: "error", content: text }); render(); }

let modelName = "";
function headers() {
  const h = { "Content-Type": "application/json" };
  if (state.key) h["Authorization"] = "Bearer " + state.key;
  return h;
}
async function errorMessage(response) {
  let text = `HTTP ${response.status}`;
  try {
    const body = await response.json();
    text = (body.error && body.error.message) || body.detail || text;
  } catch (e) { /* not JSON: the status says it */ }
  if (response.status === 401) text += " (give the key with /key <api key>)";
  return text;
}

// Streams a reply to the conversation so far into a new assistant turn.
async function complete() {
  const conversation = state.messages.filter(m => m.role === "user" || m.role === "assistant")
                                     .map(m => ({ role: m.role, content: m.content }));
  const reply = { role: "assistant", content: "", streaming: true };
  state.messages.push(reply);
  state.busy = true; state.controller = new AbortController();
  render();
  const request = { messages: conversation, stream: true };
  if (state.temperature !== null) request.temperature = state.temperature;
  if (state.topK !== null) request.top_k = state.topK;
  let failure = null;
  try {
    const response = await fetch("v1/chat/completions", { method: "POST", headers: headers(), body: JSON.stringify(request),
                                                           signal: state.controller.signal });
    if (!response.ok) throw new Error(await errorMessage(response));
    const reader = response.body.getReader(), decoder = new TextDecoder();
    let buffer = "", done = false;
    while (!done) {
      const chunk = await reader.read();
      if (chunk.done) break;
      buffer += decoder.decode(chunk.value, { stream: true });
      let cut;
      while (!done && (cut = buffer.indexOf("\n\n")) >= 0) {
        const event = buffer.slice(0, cut); buffer = buffer.slice(cut + 2);
        for (const line of event.split("\n")) {
          if (!line.startsWith("data: ")) continue;
          const data = line.slice(6);
          if (data === "[DONE]") { done = true; break; }
          const parsed = JSON.parse(data);
          if (parsed.error) throw new Error(parsed.error.message);
          const delta = parsed.choices && parsed.choices[0] && parsed.choices[0].delta;
          if (delta && delta.content) { reply.content += delta.content; redrawReply(reply); }
        }
      }
    }
    if (!done) throw new Error("the server closed the stream before the reply was over");
  } catch (e) {
    failure = e.name === "AbortError" ? null : (e.message || String(e));
  }
  reply.streaming = false;
  if (!reply.content) state.messages.splice(state.messages.indexOf(reply), 1);
  state.busy = false; state.controller = null;
  render();
  if (failure) error("The reply failed: " + failure);
}

function regenerate() {
  const i = lastTurn("assistant");
  if (state.busy || i < 0) return;
  state.messages.splice(i);
  complete();
}
function resend(i, text) {
  if (state.busy) return;
  if (!text.trim()) { error("A message cannot be empty."); return; }
  state.messages.splice(i);
  state.messages.push({ role: "user", content: text });
  complete();
}
function newChat() {
  if (state.controller) state.controller.abort();
  state.messages = []; state.editing = -1;
  render();
}

const commands = {
  help: () => note("/temperature [t]   sampling temperature (0 is greedy); no value: back to the server's default\n" +
                   "/topk [k]          sample among the k likeliest tokens; no value: the server's default\n" +
                   "/key [key]         the API key, if the server asks for one (kept in this tab only)\n" +
                   "/new               a new chat\n/help              this list"),
  temperature: arg => {
    if (arg === "") { state.temperature = null; note("temperature: the server's default"); return; }
    const t = Number(arg);
    if (!Number.isFinite(t) || t < 0) { error(`/temperature ${arg}: give a number, 0 or more (the server says how high it may go)`); return; }
    state.temperature = t; note(`temperature ${t}`);
  },
  topk: arg => {
    if (arg === "") { state.topK = null; note("top-k: the server's default"); return; }
    const k = Number(arg);
    if (!Number.isInteger(k) || k < 1) { error(`/topk ${arg}: give a whole number, 1 or more (the server says how high it may go)`); return; }
    state.topK = k; note(`top-k ${k}`);
  },
  key: arg => {
    state.key = arg; sessionStorage.setItem("nanochat-key", arg);
    note(arg ? "API key set" : "API key cleared");
    loadModel();
  },
  new: () => newChat(),
};

document.getElementById("composer").addEventListener("submit", e => {
  e.preventDefault();
  const text = input.value;
  if (!text.trim() || state.busy) return;
  input.value = "";
  const command = /^\/(\w+)\s*(.*)$/s.exec(text.trim());
  if (command) {
    const run = commands[command[1].toLowerCase()];
    if (run) run(command[2].trim()); else error(`Unknown command /${command[1]}; /help lists the commands.`);
    return;
  }
  state.messages.push({ role: "user", content: text });
  complete();
});
input.addEventListener("keydown", e => {
  if (e.key === "Enter" && !e.shiftKey) { e.preventDefault(); document.getElementById("composer").requestSubmit(); }
});
document.getElementById("stop").onclick = () => { if (state.controller) state.controller.abort(); };
document.getElementById("new-chat").onclick = newChat;

async function loadModel() {
  try {
    const response = await fetch("v1/models", { headers: headers() });
    if (!response.ok) { if (response.status === 401) error(await errorMessage(response)); return; }
    const models = await response.json();
    modelName = models.data[0].id;
  } catch (e) { error("The server cannot be reached: " + e.message); }
  render();
}
window.nanochat = { state, renderMarkdown, hasMarkdown };  // for tests and the curious
render();
loadModel();
</script>
</body>
</html>
)nanochat_page";

}  // namespace nanochat::serve
