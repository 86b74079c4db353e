// The console dashboard: polls the nodes' live numbers and their last hour (live.json)
// every few seconds and redraws tiles, tables and small canvas charts. No library, no
// inline script (the page's Content-Security-Policy allows only this file).
(() => {
  "use strict";
  const root = document.getElementById("dashboard");
  if (!root) return;
  const url = root.dataset.liveUrl;
  const refreshMs = Number(root.dataset.refreshMs) || 3000;
  const COLOURS = ["#2b6cb0", "#c05621", "#2f855a", "#6b46c1", "#b83280"];
  const HOUR_S = 3600;

  const fmt = (v, digits = 1) =>
    v === null || v === undefined ? "-" : Number.isInteger(v) ? String(v) : Number(v).toFixed(digits);
  const setText = (id, text) => {
    const el = document.getElementById(id);
    if (el) el.textContent = text;
  };
  const cell = (text, cls) => {
    const td = document.createElement("td");
    td.textContent = text;
    if (cls) td.className = cls;
    return td;
  };

  function drawTotals(t) {
    for (const key of ["connections", "msgs_in_per_s", "msgs_out_per_s", "latency_p99_ms", "dead_letters", "rejected_per_s"]) {
      setText(`t-${key}`, fmt(t[key]));
    }
    setText("t-rooms", `${fmt(t.rooms)} / ${fmt(t.room_members)}`);
    setText("t-flush", `${fmt(t.flush_lag_s)} / ${fmt(t.flush_backlog)}`);
    const bad = t.breakers_not_closed || [];
    setText("t-breakers", bad.length ? bad.join(", ") : "none");
    document.getElementById("t-breakers-tile").classList.toggle("bad", bad.length > 0);
  }

  function drawNodes(nodes) {
    const body = document.querySelector("#nodes tbody");
    body.replaceChildren();
    for (const [name, s] of Object.entries(nodes)) {
      const tr = document.createElement("tr");
      tr.dataset.node = name;
      tr.append(cell(name));
      for (const key of ["connections", "msgs_in_per_s", "msgs_out_per_s", "latency_p50_ms", "latency_p99_ms",
        "rooms", "room_members", "flush_lag_s", "flush_backlog", "dead_letters", "rejected_per_s"]) {
        tr.append(cell(fmt(s[key]), "num"));
      }
      const bad = s.breakers_not_closed || [];
      tr.append(cell(bad.length ? bad.join(", ") : "-", bad.length ? "bad breakers" : "breakers"));
      body.append(tr);
    }
  }

  function drawWorkers(workers, heartbeats) {
    const body = document.querySelector("#workers tbody");
    body.replaceChildren();
    for (const w of workers) {
      const tr = document.createElement("tr");
      const bad = w.breakers_not_closed || [];
      tr.append(cell(w.node), cell(bad.length ? bad.join(", ") : "-", bad.length ? "bad" : ""), cell("reports its breakers"));
      body.append(tr);
    }
    for (const h of heartbeats) {
      const tr = document.createElement("tr");
      tr.append(cell(`${h.worker} for ${h.node}`), cell("-"), cell(`${fmt(h.age_s)} s ago`));
      body.append(tr);
    }
  }

  function drawChart(canvas, history, now) {
    const key = canvas.dataset.key;
    const ratio = window.devicePixelRatio || 1;
    const w = canvas.clientWidth, h = canvas.clientHeight;
    canvas.width = w * ratio;
    canvas.height = h * ratio;
    const ctx = canvas.getContext("2d");
    ctx.scale(ratio, ratio);
    ctx.clearRect(0, 0, w, h);
    const series = Object.entries(history).map(([node, points]) => [node, points.filter((p) => p[key] !== null && p[key] !== undefined)]);
    let max = 0;
    for (const [, pts] of series) for (const p of pts) max = Math.max(max, Number(p[key]));
    max = max > 0 ? max * 1.1 : 1;
    const pad = 28;
    ctx.strokeStyle = "#999";
    ctx.fillStyle = "#666";
    ctx.font = "10px sans-serif";
    ctx.beginPath();
    ctx.moveTo(pad, 4);
    ctx.lineTo(pad, h - 14);
    ctx.lineTo(w - 4, h - 14);
    ctx.stroke();
    ctx.fillText(fmt(max, 1), 2, 12);
    ctx.fillText("-60 min", pad, h - 2);
    ctx.fillText("now", w - 24, h - 2);
    const x = (t) => pad + ((t - (now - HOUR_S)) / HOUR_S) * (w - pad - 4);
    const y = (v) => h - 14 - (v / max) * (h - 20);
    series.forEach(([, pts], i) => {
      ctx.strokeStyle = COLOURS[i % COLOURS.length];
      ctx.lineWidth = 1.5;
      ctx.beginPath();
      pts.forEach((p, j) => (j ? ctx.lineTo(x(p.t), y(Number(p[key]))) : ctx.moveTo(x(p.t), y(Number(p[key])))));
      ctx.stroke();
    });
    const legend = canvas.parentElement.querySelector(".legend");
    legend.replaceChildren(...series.map(([node, pts], i) => {
      const span = document.createElement("span");
      span.className = `c${i % COLOURS.length}`;
      const last = pts.length ? pts[pts.length - 1][key] : null;
      span.textContent = `${node}: ${fmt(last)}`;
      return span;
    }));
  }

  async function refresh() {
    try {
      const response = await fetch(url, { credentials: "same-origin", headers: { Accept: "application/json" } });
      if (!response.ok) throw new Error(`HTTP ${response.status}`);
      const data = await response.json();
      drawTotals(data.totals);
      drawNodes(data.nodes);
      drawWorkers(data.workers, data.heartbeats);
      for (const canvas of document.querySelectorAll(".chart canvas")) drawChart(canvas, data.history, data.now);
      setText("updated", `updated ${new Date(data.now * 1000).toLocaleTimeString()}`);
    } catch (error) {
      setText("updated", `update failed: ${error.message}`);
    } finally {
      setTimeout(refresh, refreshMs);
    }
  }
  refresh();
})();
