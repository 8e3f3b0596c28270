// The playground page itself: plain HTML, CSS and JavaScript in one raw string literal, so the
// binary needs no files and no build step at run time. Element ids are what
// tests/e2e/playground.test.mjs drives; keep them stable.
#include "frontend/playground.h"

namespace turbine::frontend {
namespace {

constexpr std::string_view kPage = R"turbine_html(<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Turbine playground</title>
<link rel="icon" href="data:,">
<style>
:root { --bg: #f7f7f8; --panel: #fff; --fg: #1d1d1f; --muted: #6b6b76; --line: #dcdce2;
        --accent: #2f6fdf; --user: #e8f0fe; --err: #b3261e; --errbg: #fdecea; --think: #f3f0e6; }
@media (prefers-color-scheme: dark) {
  :root { --bg: #15161a; --panel: #1e1f24; --fg: #e6e6ea; --muted: #9a9aa6; --line: #33343b;
          --accent: #6d9bff; --user: #23324d; --err: #ffb4ab; --errbg: #3b1c1a; --think: #2b2a22; }
}
* { box-sizing: border-box; }
body { margin: 0; font: 15px/1.45 system-ui, -apple-system, "Segoe UI", sans-serif;
       background: var(--bg); color: var(--fg); height: 100vh; display: flex; }
aside { width: 290px; padding: 16px; border-right: 1px solid var(--line); background: var(--panel);
        display: flex; flex-direction: column; gap: 12px; overflow-y: auto; }
main { flex: 1; display: flex; flex-direction: column; min-width: 0; }
h1 { font-size: 18px; margin: 0 0 4px; }
label { display: flex; flex-direction: column; gap: 4px; font-size: 13px; color: var(--muted); }
input, select, textarea, button { font: inherit; color: var(--fg); background: var(--bg);
        border: 1px solid var(--line); border-radius: 6px; padding: 6px 8px; }
textarea { resize: vertical; }
button { cursor: pointer; background: var(--accent); color: #fff; border: none; padding: 8px 14px; }
button.secondary { background: transparent; color: var(--fg); border: 1px solid var(--line); }
button:disabled { opacity: .45; cursor: default; }
.row { display: flex; gap: 8px; align-items: center; }
#messages { flex: 1; overflow-y: auto; padding: 20px; display: flex; flex-direction: column; gap: 14px; }
.msg { max-width: 820px; width: 100%; align-self: center; }
.msg .role { font-size: 12px; color: var(--muted); text-transform: uppercase; letter-spacing: .04em; }
.msg .content { white-space: pre-wrap; word-wrap: break-word; padding: 10px 12px; border-radius: 8px;
        background: var(--panel); border: 1px solid var(--line); min-height: 1.45em; }
.msg.user .content { background: var(--user); }
.msg .reasoning { white-space: pre-wrap; font-size: 13px; color: var(--muted); background: var(--think);
        border-radius: 8px; padding: 8px 10px; margin-bottom: 6px; }
.msg .reasoning summary { cursor: pointer; }
.msg .meta { font-size: 12px; color: var(--muted); margin-top: 4px; }
#error { display: none; color: var(--err); background: var(--errbg); border-radius: 6px; padding: 8px 10px;
        margin: 0 20px; }
#error.shown { display: block; }
footer { padding: 12px 20px 18px; border-top: 1px solid var(--line); background: var(--panel); }
footer .row textarea { flex: 1; min-height: 52px; }
#stats { font-size: 12px; color: var(--muted); margin-top: 6px; min-height: 1em; }
</style>
</head>
<body>
<aside>
  <div><h1>Turbine</h1><div style="font-size:13px;color:var(--muted)">Chat playground</div></div>
  <label>Model <select id="model"></select></label>
  <label>System prompt <textarea id="system" rows="4" placeholder="You are a helpful assistant."></textarea></label>
  <label>Temperature <span class="row"><input id="temperature" type="range" min="0" max="2" step="0.05" value="0.7" style="flex:1"><output id="temperature-value">0.7</output></span></label>
  <label>Max tokens <input id="max-tokens" type="number" min="1" value="256"></label>
  <label>API key <input id="api-key" type="password" autocomplete="off" placeholder="only if the server has --api-key"></label>
  <div class="row"><button id="reload" class="secondary" type="button">Reload models</button>
    <button id="clear" class="secondary" type="button">Clear chat</button></div>
</aside>
<main>
  <div id="messages" aria-live="polite"></div>
  <div id="error" role="alert"></div>
  <footer>
    <div class="row">
      <textarea id="prompt" rows="2" placeholder="Send a message (Enter to send, Shift+Enter for a new line)"></textarea>
      <button id="send" type="button">Send</button>
      <button id="stop" type="button" class="secondary" disabled>Stop</button>
    </div>
    <div id="stats"></div>
  </footer>
</main>
<script>
"use strict";
const $ = (id) => document.getElementById(id);
let history = [];        // the conversation sent with each request (system prompt apart)
let controller = null;   // AbortController of the request in flight

$("api-key").value = sessionStorage.getItem("turbine-api-key") || "";
$("api-key").addEventListener("change", () => {
  sessionStorage.setItem("turbine-api-key", $("api-key").value.trim());
  loadModels();
});
$("temperature").addEventListener("input", () => { $("temperature-value").textContent = $("temperature").value; });

function headers() {
  const h = { "content-type": "application/json" };
  const key = $("api-key").value.trim();
  if (key) h.authorization = "Bearer " + key;
  return h;
}
function showError(text) {
  $("error").textContent = text;
  $("error").classList.toggle("shown", !!text);
}
function errorText(response, body) {
  const msg = body && body.error && body.error.message ? body.error.message : response.statusText;
  return "Error " + response.status + ": " + msg;
}
async function loadModels() {
  showError("");
  try {
    const r = await fetch("/v1/models", { headers: headers() });
    const body = await r.json().catch(() => null);
    if (!r.ok) { showError(errorText(r, body)); return; }
    const sel = $("model");
    const previous = sel.value;
    sel.textContent = "";
    for (const m of body.data || []) {
      const o = document.createElement("option");
      o.value = o.textContent = m.id;
      sel.append(o);
    }
    if ([...sel.options].some((o) => o.value === previous)) sel.value = previous;
    if (!sel.options.length) showError("The server serves no model yet.");
  } catch (e) {
    showError("Cannot reach the server: " + e.message);
  }
}
function addMessage(role, text) {
  const div = document.createElement("div");
  div.className = "msg " + role;
  div.innerHTML = '<div class="role"></div><details class="reasoning" hidden open><summary>Reasoning</summary><div class="text"></div></details><div class="content"></div><div class="meta"></div>';
  div.querySelector(".role").textContent = role;
  div.querySelector(".content").textContent = text;
  $("messages").append(div);
  $("messages").scrollTop = $("messages").scrollHeight;
  return div;
}
function setBusy(busy) {
  $("send").disabled = busy;
  $("stop").disabled = !busy;
}
function formatStats(s) {
  const parts = [];
  if (s.ttft !== null) parts.push("TTFT " + s.ttft.toFixed(0) + " ms");
  if (s.tps !== null) parts.push(s.tps.toFixed(1) + " tok/s");
  parts.push(s.tokens + " tokens");
  if (s.state) parts.push(s.state);
  return parts.join(" \u00b7 ");
}
async function send() {
  const text = $("prompt").value.trim();
  if (!text || controller) return;
  if (!$("model").value) await loadModels();
  showError("");
  $("prompt").value = "";
  history.push({ role: "user", content: text });
  addMessage("user", text);
  const view = addMessage("assistant", "");
  const messages = [];
  const system = $("system").value.trim();
  if (system) messages.push({ role: "system", content: system });
  messages.push(...history);
  const body = {
    model: $("model").value, messages, stream: true, stream_options: { include_usage: true },
    temperature: Number($("temperature").value), max_tokens: Number($("max-tokens").value),
  };
  controller = new AbortController();
  setBusy(true);
  const t0 = performance.now();
  const stats = { ttft: null, tps: null, tokens: 0, state: "streaming" };
  let tFirst = 0, content = "", reasoning = "", chunks = 0, usage = null, finish = "";
  const update = () => {
    view.querySelector(".content").textContent = content;
    const r = view.querySelector(".reasoning");
    r.hidden = !reasoning;
    r.querySelector(".text").textContent = reasoning;
    stats.tokens = usage ? usage.completion_tokens : chunks;
    if (tFirst) {
      stats.ttft = tFirst - t0;
      const decodeS = (performance.now() - tFirst) / 1000;
      if (stats.tokens > 1 && decodeS > 0) stats.tps = (stats.tokens - 1) / decodeS;
    }
    $("stats").textContent = view.querySelector(".meta").textContent = formatStats(stats);
    $("messages").scrollTop = $("messages").scrollHeight;
  };
  try {
    const r = await fetch("/v1/chat/completions", {
      method: "POST", headers: headers(), body: JSON.stringify(body), signal: controller.signal,
    });
    if (!r.ok) throw new Error(errorText(r, await r.json().catch(() => null)));
    const reader = r.body.getReader();
    const decoder = new TextDecoder();
    let buffer = "";
    for (;;) {
      const { value, done } = await reader.read();
      if (done) break;
      buffer += decoder.decode(value, { stream: true });
      let nl;
      while ((nl = buffer.indexOf("\n")) >= 0) {
        const line = buffer.slice(0, nl).replace(/\r$/, "");
        buffer = buffer.slice(nl + 1);
        if (!line.startsWith("data:")) continue;
        const data = line.slice(5).trim();
        if (data === "[DONE]") continue;
        const chunk = JSON.parse(data);
        if (chunk.error) throw new Error(chunk.error.message || "stream error");
        if (chunk.usage) usage = chunk.usage;
        for (const c of chunk.choices || []) {
          const d = c.delta || {};
          if (d.reasoning_content) reasoning += d.reasoning_content;
          if (d.content) content += d.content;
          if (d.content || d.reasoning_content) {
            if (!tFirst) tFirst = performance.now();
            chunks++;
          }
          if (c.finish_reason) finish = c.finish_reason;
        }
      }
      update();
    }
    stats.state = "finish: " + (finish || "?");
  } catch (e) {
    if (e.name === "AbortError") {
      stats.state = "stopped";
    } else {
      stats.state = "error";
      showError(e.message);
    }
  } finally {
    controller = null;
    setBusy(false);
  }
  update();
  view.dataset.state = stats.state;
  if (content) history.push({ role: "assistant", content });
  else history.pop();  // a failed turn is not part of the conversation
}
$("send").addEventListener("click", send);
$("stop").addEventListener("click", () => { if (controller) controller.abort(); });
$("prompt").addEventListener("keydown", (e) => {
  if (e.key === "Enter" && !e.shiftKey) { e.preventDefault(); send(); }
});
$("reload").addEventListener("click", loadModels);
$("clear").addEventListener("click", () => {
  history = [];
  $("messages").textContent = "";
  $("stats").textContent = "";
  showError("");
});
loadModels();
</script>
</body>
</html>
)turbine_html";

}  // namespace

std::string_view playground_html() {
  return kPage;
}

}  // namespace turbine::frontend
