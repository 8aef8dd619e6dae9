// ftx ui: the live parts of server-rendered pages. Vanilla JavaScript, no build step, nothing
// fetched from elsewhere. Exposes window.ftx = {followRun, drawOverlay, chat}.
"use strict";

(function () {
  const csrf = () => document.querySelector('meta[name="ftx-csrf"]').content;
  const $ = (sel) => document.querySelector(sel);
  const COLORS = ["#2563eb", "#dc2626", "#16a34a", "#9333ea", "#ea580c", "#0891b2", "#4d7c0f"];

  function fmtEta(seconds) {
    if (seconds === null || seconds === undefined) return "";
    const s = Math.round(seconds);
    const h = Math.floor(s / 3600), m = Math.floor((s % 3600) / 60), r = s % 60;
    return (h ? h + ":" + String(m).padStart(2, "0") : m) + ":" + String(r).padStart(2, "0");
  }

  // Draw loss curves into an <svg>: curves = {name: [[step, loss], ...]}.
  function drawCurves(svg, curves) {
    const W = 600, H = svg.viewBox.baseVal.height || 240, pad = 34;
    const all = Object.values(curves).flat();
    while (svg.firstChild) svg.removeChild(svg.firstChild);
    const ns = "http://www.w3.org/2000/svg";
    const el = (tag, attrs, text) => {
      const node = document.createElementNS(ns, tag);
      for (const k in attrs) node.setAttribute(k, attrs[k]);
      if (text !== undefined) node.textContent = text;
      svg.appendChild(node);
      return node;
    };
    if (!all.length) {
      el("text", { x: W / 2, y: H / 2, "text-anchor": "middle", class: "empty" }, "no loss logged yet");
      return;
    }
    const xs = all.map((p) => p[0]), ys = all.map((p) => p[1]);
    const x0 = Math.min(...xs), x1 = Math.max(...xs, x0 + 1);
    let y0 = Math.min(...ys), y1 = Math.max(...ys);
    if (y1 - y0 < 1e-9) { y0 -= 0.5; y1 += 0.5; }
    const X = (x) => pad + ((x - x0) / (x1 - x0)) * (W - pad - 8);
    const Y = (y) => H - pad + 10 - ((y - y0) / (y1 - y0)) * (H - pad - 8);
    el("line", { x1: pad, y1: H - pad + 10, x2: W - 8, y2: H - pad + 10, class: "axis" });
    el("line", { x1: pad, y1: 2, x2: pad, y2: H - pad + 10, class: "axis" });
    el("text", { x: pad - 4, y: 12, "text-anchor": "end", class: "tick" }, y1.toFixed(2));
    el("text", { x: pad - 4, y: H - pad + 10, "text-anchor": "end", class: "tick" }, y0.toFixed(2));
    el("text", { x: pad, y: H - 6, class: "tick" }, String(x0));
    el("text", { x: W - 8, y: H - 6, "text-anchor": "end", class: "tick" }, "step " + x1);
    Object.entries(curves).forEach(([name, points], i) => {
      if (!points.length) return;
      const d = points.map((p, j) => (j ? "L" : "M") + X(p[0]).toFixed(1) + " " + Y(p[1]).toFixed(1)).join(" ");
      el("path", { d: d, class: "curve", "data-run": name, stroke: COLORS[i % COLORS.length] });
    });
  }

  // The run page: follow /runs/NAME/events until the run ends, then refresh the parts that change.
  function followRun(name) {
    const data = JSON.parse($("#run-data").textContent);
    let points = data.points;
    const svg = $("#loss-curve");
    drawCurves(svg, { [name]: points });
    showProgress(data.progress);
    if (data.final) return;
    const base = "/runs/" + encodeURIComponent(name);
    const source = new EventSource(base + "/events");
    source.addEventListener("progress", (e) => showProgress(JSON.parse(e.data)));
    source.addEventListener("loss", (e) => {
      const msg = JSON.parse(e.data);
      points = msg.reset ? msg.points : points.concat(msg.points);
      drawCurves(svg, { [name]: points });
    });
    source.addEventListener("heldout", (e) => {
      const msg = JSON.parse(e.data);
      $("#heldout-before").textContent = msg.before;
      $("#heldout-after").textContent = msg.after;
    });
    source.addEventListener("log", (e) => {
      const pre = $("#log-tail");
      const atEnd = pre.scrollTop + pre.clientHeight >= pre.scrollHeight - 4;
      pre.textContent = JSON.parse(e.data).text;
      if (atEnd) pre.scrollTop = pre.scrollHeight;
    });
    source.addEventListener("status", (e) => {
      const msg = JSON.parse(e.data);
      const badge = $("#run-status");
      badge.textContent = msg.status;
      badge.className = "status status-" + msg.status;
      if (msg.final) {
        source.close();
        refreshParts(base);
      }
    });
  }

  function showProgress(p) {
    $("#run-step").textContent = p.step + " / " + (p.max_steps || "?");
    $("#run-eta").textContent = fmtEta(p.eta_s);
  }

  async function refreshParts(base) {
    const response = await fetch(base + "/fragments");
    if (!response.ok) return;
    const parts = await response.json();
    $("#run-actions").innerHTML = parts.actions;
    $("#run-summary").innerHTML = parts.summary;
    $("#run-report").innerHTML = parts.report;
    document.body.dataset.runFinal = "1";
  }

  function drawOverlay() {
    const curves = JSON.parse($("#compare-data").textContent);
    drawCurves($("#loss-overlay"), curves);
    const legend = $("#overlay-legend");
    Object.keys(curves).forEach((name, i) => {
      const item = document.createElement("span");
      item.className = "legend";
      item.style.color = COLORS[i % COLORS.length];
      item.textContent = "■ " + name;
      legend.appendChild(item);
    });
  }

  // The new-run form: reload for another method/objective, keep the command preview current.
  function newRunForm() {
    const form = $("#new-run");
    if (!form) return;
    for (const id of ["#plugin", "#objective"]) {
      $(id).addEventListener("change", () => {
        const q = new URLSearchParams({ plugin: $("#plugin").value, objective: $("#objective").value });
        window.location = "/new?" + q.toString();
      });
    }
    let timer = null;
    const preview = () => {
      const q = new URLSearchParams(new FormData(form));
      q.delete("csrf");
      fetch("/new/command?" + q.toString()).then(async (r) => {
        const text = await r.text();
        $("#command").textContent = text;
        $("#command").classList.toggle("invalid", !r.ok);
      });
    };
    form.addEventListener("input", () => { clearTimeout(timer); timer = setTimeout(preview, 250); });
    $("#copy-command").addEventListener("click", () => {
      const text = $("#command").textContent;
      if (navigator.clipboard) navigator.clipboard.writeText(text).catch(() => {});
      const range = document.createRange();
      range.selectNodeContents($("#command"));
      window.getSelection().removeAllRanges();
      window.getSelection().addRange(range);
      $("#copy-command").textContent = "Copied";
    });
  }

  // Chat: post the conversation, read the event stream of text pieces into the last message.
  function chat(name) {
    const form = $("#chat-form"), input = $("#chat-input"), log = $("#chat-log");
    let history = [];
    const add = (role, text) => {
      const div = document.createElement("div");
      div.className = "msg " + role;
      div.textContent = text;
      log.appendChild(div);
      log.scrollTop = log.scrollHeight;
      return div;
    };
    input.addEventListener("keydown", (e) => {
      if (e.key === "Enter" && !e.shiftKey) { e.preventDefault(); form.requestSubmit(); }
    });
    $("#chat-reset").addEventListener("click", () => { history = []; log.innerHTML = ""; });
    form.addEventListener("submit", async (e) => {
      e.preventDefault();
      const text = input.value.trim();
      if (!text) return;
      input.value = "";
      add("user", text);
      history.push({ role: "user", content: text });
      const answer = add("assistant", "");
      $("#chat-send").disabled = true;
      try {
        const response = await fetch(form.action, {
          method: "POST",
          headers: { "Content-Type": "application/json", "X-Ftx-Csrf": csrf() },
          body: JSON.stringify({ messages: history }),
        });
        if (!response.ok) throw new Error(await response.text());
        const reader = response.body.getReader(), decoder = new TextDecoder();
        let buffer = "", reply = "";
        for (;;) {
          const { value, done } = await reader.read();
          if (done) break;
          buffer += decoder.decode(value, { stream: true });
          let cut;
          while ((cut = buffer.indexOf("\n\n")) >= 0) {
            const block = buffer.slice(0, cut);
            buffer = buffer.slice(cut + 2);
            const kind = (block.match(/^event: (.*)$/m) || [])[1] || "message";
            const data = JSON.parse((block.match(/^data: (.*)$/m) || [])[1] || "{}");
            if (kind === "message") { reply += data.text; answer.textContent = reply; }
            if (kind === "error") { throw new Error(data.message); }
          }
        }
        history.push({ role: "assistant", content: reply.trim() });
      } catch (err) {
        answer.classList.add("error");
        answer.textContent = String(err.message || err);
        history.pop();
      } finally {
        answer.classList.add("done");
        $("#chat-send").disabled = false;
      }
    });
  }

  document.addEventListener("DOMContentLoaded", newRunForm);
  window.ftx = { followRun, drawOverlay, chat };
})();
