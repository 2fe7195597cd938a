// fletch console: plain JavaScript and SVG, no build step. The data comes
// shaped from /console/api/ (package console); this file only draws it.
"use strict";

const API = "api/";
const TOKEN = "fletch.token";
const SVGNS = "http://www.w3.org/2000/svg";
let whoami = null;
let livePoll = null;

// h makes an HTML element; s an SVG one. Children may be strings.
function h(tag, attrs, ...kids) { return build(document.createElement(tag), attrs, kids); }
function s(tag, attrs, ...kids) { return build(document.createElementNS(SVGNS, tag), attrs, kids); }
function build(el, attrs, kids) {
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === undefined || v === null || v === false) continue;
    if (k.startsWith("on")) el.addEventListener(k.slice(2), v);
    else el.setAttribute(k, v);
  }
  for (const k of kids.flat()) if (k !== null && k !== undefined) el.append(k.nodeType ? k : String(k));
  return el;
}

// api calls the console's API with the tab's token; a 401 asks for one.
async function api(path, opts) {
  opts = opts || {};
  const headers = Object.assign({}, opts.headers);
  const t = sessionStorage.getItem(TOKEN);
  if (t) headers["Authorization"] = "Bearer " + t;
  const res = await fetch(API + path, Object.assign({}, opts, { headers }));
  let body = null;
  try { body = await res.json(); } catch (e) { body = { error: res.statusText }; }
  if (res.status === 401) {
    askToken(body.error);
    throw new Error("a token is needed: " + body.error);
  }
  if (!res.ok) throw new Error(body.error || res.statusText);
  return body;
}

function askToken(why) {
  const d = document.getElementById("login");
  document.getElementById("login-error").textContent = sessionStorage.getItem(TOKEN) ? why : "";
  if (!d.open) d.showModal();
}

document.getElementById("login-form").addEventListener("submit", () => {
  sessionStorage.setItem(TOKEN, document.getElementById("token").value.trim());
  whoami = null;
  route();
});

async function showWho() {
  whoami = await api("whoami");
  const who = document.getElementById("who");
  who.replaceChildren(whoami.auth ? "token " + whoami.name + " (" + whoami.scopes.join(" ") + ")" : "auth off",
    whoami.auth ? h("button", { onclick: () => { sessionStorage.removeItem(TOKEN); location.reload(); } }, "sign out") : "",
    " · " + whoami.mode);
}

// route draws the page the hash names: #/catalogue, #/lineage/<fqn>,
// #/query, #/live.
async function route() {
  const [, page, arg] = (location.hash || "#/catalogue").match(/^#\/([a-z]+)\/?(.*)$/) || [null, "catalogue", ""];
  for (const a of document.querySelectorAll("nav a")) a.classList.toggle("active", a.dataset.page === page);
  if (livePoll) { clearTimeout(livePoll); livePoll = null; }
  const view = document.getElementById("view");
  view.replaceChildren(h("p", { class: "muted" }, "loading…"));
  try {
    if (!whoami) await showWho();
    const pages = { catalogue: pageCatalogue, lineage: pageLineage, query: pageQuery, live: pageLive };
    await (pages[page] || pageCatalogue)(view, decodeURIComponent(arg));
  } catch (e) {
    view.replaceChildren(h("p", { class: "error", id: "page-error" }, e.message));
  }
}
window.addEventListener("hashchange", route);

// ---- Catalogue ----

async function pageCatalogue(view, selected) {
  const cat = await api("catalogue");
  const search = h("input", { type: "search", id: "search", placeholder: "search classes and features", size: 32 });
  const matches = h("div", { id: "matches" });
  const detail = h("div", { id: "class-detail", class: "panel grow" });
  const graph = classGraph(cat, (table) => showClass(table));
  view.replaceChildren(
    h("div", { class: "row" }, h("div", {}, h("h2", {}, "Classes and relations"), search, matches, graph.svg), detail));
  function showClass(table) {
    graph.select(table);
    const c = cat.classes.find((c) => c.table === table);
    if (!c) { detail.replaceChildren(h("p", { class: "muted" }, "Click a class.")); return; }
    detail.replaceChildren(
      h("h2", {}, c.name + " ", h("span", { class: "muted" }, "(" + c.table + ", " + c.pos + ") "), h("a", { class: "feat", id: "query-class", href: "#/query/" + encodeURIComponent(c.table) }, "query it")),
      h("p", {}, c.owner ? "owner " + c.owner + " · " : "", ...(c.tags || []).map((t) => h("span", { class: "tag" }, t)),
        c.primary ? "primary key " + c.primary : "", c.event_time ? " · event time " + c.event_time : "",
        c.max_staleness ? " · max_staleness " + c.max_staleness : ""),
      h("table", { id: "features" },
        h("tr", {}, ["feature", "type", "computed by", "windows", "staleness", "materialization", "owner / tags", "description"].map((x) => h("th", {}, x))),
        c.features.map((f) => h("tr", { "data-fqn": f.fqn },
          h("td", {}, h("a", { class: "feat", href: "#/lineage/" + encodeURIComponent(f.fqn) }, f.name), f.primary ? h("span", { class: "tag" }, "key") : null),
          h("td", { class: "mono" }, f.type),
          h("td", {}, f.computed_by + (f.resolver ? " " + f.resolver : ""), f.expression ? h("div", { class: "mono muted" }, f.expression) : null),
          h("td", {}, (f.windows || []).join(", ")),
          h("td", {}, f.max_staleness || ""),
          h("td", {}, f.materialization || ""),
          h("td", {}, f.owner || "", " ", ...(f.tags || []).map((t) => h("span", { class: "tag" }, t))),
          h("td", {}, f.description || "", (f.validations || []).length ? h("div", { class: "muted" }, "valid: " + f.validations.join("; ")) : null)))));
  }
  search.addEventListener("input", () => {
    const q = search.value.trim().toLowerCase();
    const hits = [];
    const classHits = new Set();
    if (q) for (const c of cat.classes) {
      if (c.table.includes(q) || c.name.toLowerCase().includes(q)) classHits.add(c.table);
      for (const f of c.features) if (f.fqn.includes(q)) { hits.push(f); classHits.add(c.table); }
    }
    graph.highlight(classHits);
    matches.replaceChildren(...hits.slice(0, 20).map((f) =>
      h("div", {}, h("a", { class: "feat", href: "#/lineage/" + encodeURIComponent(f.fqn) }, f.fqn), " ", h("span", { class: "muted" }, f.type))));
  });
  showClass(selected || (cat.classes[0] && cat.classes[0].table));
}

// classGraph draws classes on a circle, relations as arrows (has-many
// dashed); nodes can be dragged, and a click selects a class.
function classGraph(cat, onSelect) {
  const W = 560, H = 460, R = 170, cx = W / 2, cy = H / 2;
  const svg = s("svg", { id: "classgraph", width: W, height: H, viewBox: `0 0 ${W} ${H}` });
  svg.append(s("defs", {}, s("marker", { id: "arrow", viewBox: "0 0 10 10", refX: 10, refY: 5, markerWidth: 7, markerHeight: 7, orient: "auto-start-reverse" },
    s("path", { d: "M 0 0 L 10 5 L 0 10 z", fill: "#94a3b8" }))));
  const pos = {};
  cat.classes.forEach((c, i) => {
    const a = (2 * Math.PI * i) / cat.classes.length - Math.PI / 2;
    pos[c.table] = { x: cx + R * Math.cos(a), y: cy + R * Math.sin(a) };
  });
  const edgeLayer = s("g", {});
  const nodeLayer = s("g", {});
  svg.append(edgeLayer, nodeLayer);
  const nodes = {};
  function drawEdges() {
    edgeLayer.replaceChildren();
    for (const r of cat.relations) {
      const a = pos[r.from], b = pos[r.to];
      if (!a || !b || r.from === r.to) continue;
      // Bend each direction its own way, so that A→B and B→A both show.
      const mx = (a.x + b.x) / 2, my = (a.y + b.y) / 2, dx = b.x - a.x, dy = b.y - a.y;
      const len = Math.hypot(dx, dy) || 1, off = 18;
      const qx = mx - (dy / len) * off, qy = my + (dx / len) * off;
      const end = shorten(qx, qy, b.x, b.y, 26);
      edgeLayer.append(
        s("path", { class: "edge" + (r.many ? " many" : ""), d: `M ${a.x} ${a.y} Q ${qx} ${qy} ${end.x} ${end.y}`, "marker-end": "url(#arrow)", "data-from": r.from, "data-to": r.to },
          s("title", {}, `${r.from}.${r.feature} → ${r.to} (${r.many ? "has-many" : "has-one"}: ${r.on})`)),
        s("text", { class: "edgelabel", x: qx, y: qy }, r.feature));
    }
  }
  for (const c of cat.classes) {
    const w = Math.max(80, 8 * c.table.length + 16);
    const g = s("g", { class: "node", "data-class": c.table },
      s("rect", { x: -w / 2, y: -16, width: w, height: 32, rx: 6 }),
      s("text", { x: 0, y: 4, "text-anchor": "middle" }, c.table),
      s("title", {}, `${c.name}: ${c.features.length} features`));
    nodes[c.table] = g;
    place(c.table);
    let drag = null;
    g.addEventListener("pointerdown", (e) => { drag = { x: e.clientX, y: e.clientY, moved: false }; g.setPointerCapture(e.pointerId); });
    g.addEventListener("pointermove", (e) => {
      if (!drag) return;
      const dx = e.clientX - drag.x, dy = e.clientY - drag.y;
      if (Math.abs(dx) + Math.abs(dy) < 3 && !drag.moved) return;
      drag.moved = true;
      pos[c.table].x += dx; pos[c.table].y += dy; drag.x = e.clientX; drag.y = e.clientY;
      place(c.table); drawEdges();
    });
    g.addEventListener("pointerup", () => { if (drag && !drag.moved) onSelect(c.table); drag = null; });
    nodeLayer.append(g);
  }
  function place(t) { nodes[t].setAttribute("transform", `translate(${pos[t].x},${pos[t].y})`); }
  drawEdges();
  return {
    svg,
    select(t) { for (const [k, g] of Object.entries(nodes)) g.classList.toggle("sel", k === t); },
    highlight(set) { for (const [k, g] of Object.entries(nodes)) g.classList.toggle("match", set.has(k)); },
  };
}

function shorten(x1, y1, x2, y2, by) {
  const d = Math.hypot(x2 - x1, y2 - y1) || 1;
  return { x: x2 - ((x2 - x1) / d) * by, y: y2 - ((y2 - y1) / d) * by };
}

// ---- Lineage ----

async function pageLineage(view, fqn) {
  const input = h("input", { type: "text", id: "lineage-feature", value: fqn || "", placeholder: "class.feature, e.g. user_item.price_fit", size: 40 });
  const go = () => { location.hash = "#/lineage/" + encodeURIComponent(input.value.trim()); };
  const form = h("p", {}, input, " ", h("button", { onclick: go }, "Show"));
  input.addEventListener("keydown", (e) => { if (e.key === "Enter") go(); });
  if (!fqn) { view.replaceChildren(h("h2", {}, "Lineage"), form, h("p", { class: "muted" }, "Pick a feature in the catalogue, or type its name.")); return; }
  const l = await api("lineage?feature=" + encodeURIComponent(fqn));
  view.replaceChildren(h("h2", {}, "Lineage of " + l.feature), form,
    h("p", { class: "muted" }, "Left: what it is computed from, back to resolvers and sources. Right: what is computed from it. Click a feature to follow it.",
      l.hidden ? ` ${l.hidden} node(s) in classes this token may not read are left out.` : ""),
    layered(l.nodes, l.edges, l.feature));
}

// layered draws a graph whose nodes carry a layer: one column per layer,
// edges as curves from left to right.
function layered(nodes, edges, root) {
  const colW = 230, rowH = 52, boxW = 200, boxH = 40;
  const layers = [...new Set(nodes.map((n) => n.layer))].sort((a, b) => a - b);
  const cols = new Map(layers.map((l) => [l, []]));
  for (const n of nodes) cols.get(n.layer).push(n);
  const rows = Math.max(...[...cols.values()].map((c) => c.length));
  const W = layers.length * colW + 20, H = rows * rowH + 20;
  const svg = s("svg", { id: "lineage", width: W, height: H, viewBox: `0 0 ${W} ${H}` });
  svg.append(s("defs", {}, s("marker", { id: "larrow", viewBox: "0 0 10 10", refX: 10, refY: 5, markerWidth: 6, markerHeight: 6, orient: "auto" },
    s("path", { d: "M 0 0 L 10 5 L 0 10 z", fill: "#94a3b8" }))));
  const pos = {};
  layers.forEach((l, i) => {
    const col = cols.get(l);
    const top = (H - col.length * rowH) / 2;
    col.forEach((n, j) => { pos[n.id] = { x: 10 + i * colW, y: top + j * rowH + 6 }; });
  });
  for (const e of edges) {
    const a = pos[e.from], b = pos[e.to];
    if (!a || !b) continue;
    const x1 = a.x + boxW, y1 = a.y + boxH / 2, x2 = b.x, y2 = b.y + boxH / 2;
    svg.append(s("path", { class: "edge", d: `M ${x1} ${y1} C ${x1 + 20} ${y1}, ${x2 - 20} ${y2}, ${x2} ${y2}`, "marker-end": "url(#larrow)" }));
  }
  for (const n of nodes) {
    const p = pos[n.id];
    const g = s("g", { class: "lnode" + (n.label === root ? " root" : ""), "data-id": n.id, "data-kind": n.kind, transform: `translate(${p.x},${p.y})` },
      s("rect", { width: boxW, height: boxH, rx: 5 }),
      s("text", { x: 6, y: 16 }, clip(n.label, 30)),
      s("text", { x: 6, y: 31, class: "small" }, clip(n.kind + (n.detail ? ": " + n.detail : ""), 36)),
      s("title", {}, n.label + "\n" + n.kind + (n.detail ? "\n" + n.detail : "")));
    if (n.kind === "feature" || n.kind === "relation") g.addEventListener("click", () => { location.hash = "#/lineage/" + encodeURIComponent(n.label); });
    svg.append(g);
  }
  return svg;
}

function clip(t, n) { return t.length > n ? t.slice(0, n - 1) + "…" : t; }

// ---- Query ----

async function pageQuery(view, table) {
  const cat = await api("catalogue");
  const cls = h("select", { id: "q-class" }, cat.classes.map((c) => h("option", { value: c.table, selected: c.table === table ? "selected" : null }, c.table)));
  const inputs = h("textarea", { id: "q-inputs", rows: 3, placeholder: "one input per line: feature=value (repeat a feature for more rows)" });
  const outputs = h("input", { type: "text", id: "q-outputs", size: 60, placeholder: "outputs, comma-separated (empty: every feature)" });
  const now = h("input", { type: "text", id: "q-now", size: 26, placeholder: "now (RFC 3339; empty: the server's clock)" });
  const sqlText = h("textarea", { id: "q-sql", rows: 3, placeholder: "or SQL: SELECT price_fit FROM user_item WHERE user_id = '50' AND item_id = '200'" });
  const out = h("div", { id: "q-out" });
  const names = h("p", { class: "muted", id: "q-names" });
  const suggest = () => {
    const c = cat.classes.find((c) => c.table === cls.value);
    inputs.placeholder = c ? "one input per line, e.g. " + (c.primary || "id") + "=…" : "";
    // The class's features, a click adds one to the outputs.
    names.replaceChildren("outputs of " + cls.value + ": ", ...(c ? c.features : []).filter((f) => f.kind !== "has-many").map((f) =>
      h("a", { class: "feat", onclick: () => { outputs.value = (outputs.value.trim() ? outputs.value.replace(/\s*,?\s*$/, ", ") : "") + f.name; } }, f.name + " ")));
  };
  cls.addEventListener("change", suggest); suggest();
  const run = h("button", { id: "q-run", onclick: async () => {
    const req = {};
    if (now.value.trim()) req.now = now.value.trim();
    if (sqlText.value.trim()) req.sql = sqlText.value;
    else {
      req.class = cls.value; req.inputs = {};
      for (const line of inputs.value.split(/\n|;/)) {
        const m = line.match(/^\s*([^=\s]+)\s*=\s*(.*?)\s*$/);
        if (!m) continue;
        const name = m[1].replace(new RegExp("^" + cls.value + "\\."), "");
        (req.inputs[name] = req.inputs[name] || []).push(m[2]);
      }
      req.outputs = outputs.value.split(",").map((x) => x.trim()).filter(Boolean);
    }
    out.replaceChildren(h("p", { class: "muted" }, "running…"));
    try {
      const r = await api("query", { method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify(req) });
      out.replaceChildren(resultTable(r), h("h2", {}, `Plan (EXPLAIN ANALYZE: ${r.plan.total_ms} ms)`), planGraph(r.plan), h("pre", { id: "plan-text" }, r.plan.text));
    } catch (e) {
      out.replaceChildren(h("p", { class: "error", id: "q-error" }, e.message));
    }
  } }, "Run");
  view.replaceChildren(h("h2", {}, "Query"),
    h("div", { class: "panel" }, h("p", {}, "class ", cls), inputs, h("p", {}, outputs, " ", now), names, sqlText, h("p", {}, run)), out);
}

function fmt(v) {
  if (v === null || v === undefined) return h("span", { class: "muted" }, "null");
  if (typeof v === "object") return JSON.stringify(v);
  return String(v);
}

// resultTable shows one row as the CLI does (Name, Hit?, Value), more as
// a table with hits marked.
function resultTable(r) {
  const errs = (r.errors || []).map((e) => h("p", { class: "error" }, e));
  if (r.rows.length === 1) {
    return h("div", {}, errs, h("table", { id: "result" }, h("tr", {}, h("th", {}, "Name"), h("th", {}, "Hit?"), h("th", {}, "Value")),
      r.columns.map((c, j) => h("tr", { "data-col": c }, h("td", { class: "mono" }, c), h("td", { class: "hit" }, r.rows[0][j].hit ? "✓" : ""),
        h("td", { class: "mono val" }, fmt(r.rows[0][j].v))))));
  }
  return h("div", {}, errs, h("p", { class: "muted" }, (r.more ? `more than ${r.total_rows} rows, the first ${r.rows.length} shown (the query stopped there)` : `${r.total_rows} row(s)` + (r.total_rows > r.rows.length ? `, first ${r.rows.length} shown` : "")) + (r.hits ? "; ✓ served from the online store" : "")),
    h("table", { id: "result" }, h("tr", {}, r.columns.map((c) => h("th", {}, c))),
      r.rows.map((row) => h("tr", {}, row.map((c) => h("td", { class: "mono val" }, fmt(c.v), c.hit ? h("span", { class: "hit" }, " ✓") : null))))));
}

// planGraph draws the plan's frames as a tree (children left of their
// parent: data flows right), each with its stages: what, when, how long,
// rows in → out, and a bar on the run's time axis.
function planGraph(plan) {
  if (!plan.frames.length) return h("p", { class: "muted" }, "SQL beyond a feature lookup: the plan is the text below.");
  const depth = plan.frames.map(() => 0);
  for (const f of plan.frames) if (f.Parent >= 0) depth[f.ID] = depth[f.Parent] + 1;
  const maxD = Math.max(...depth);
  const byFrame = plan.frames.map(() => []);
  for (const st of plan.stages) if (byFrame[st.frame]) byFrame[st.frame].push(st);
  const boxW = 330, lineH = 18, colW = boxW + 50;
  const heights = plan.frames.map((f, i) => 36 + (f.Fetches || []).length * lineH + byFrame[i].length * lineH + 6);
  const colY = new Array(maxD + 1).fill(10);
  const pos = [];
  plan.frames.forEach((f, i) => { pos[i] = { x: 10 + (maxD - depth[i]) * colW, y: colY[depth[i]] }; colY[depth[i]] += heights[i] + 14; });
  const W = (maxD + 1) * colW + 20, H = Math.max(...colY) + 10;
  const svg = s("svg", { id: "plan", width: W, height: H, viewBox: `0 0 ${W} ${H}` });
  const total = plan.total_ms || 1;
  plan.frames.forEach((f, i) => {
    if (f.Parent < 0) return;
    const a = pos[i], b = pos[f.Parent];
    svg.append(s("path", { class: "edge", d: `M ${a.x + boxW} ${a.y + 18} C ${a.x + boxW + 25} ${a.y + 18}, ${b.x - 25} ${b.y + 18}, ${b.x} ${b.y + 18}` }));
  });
  plan.frames.forEach((f, i) => {
    const p = pos[i];
    const g = s("g", { class: "frame", "data-frame": f.ID, transform: `translate(${p.x},${p.y})` },
      s("rect", { width: boxW, height: heights[i], rx: 5 }),
      s("text", { x: 8, y: 16 }, clip(f.Title, 52), s("title", {}, f.Title)));
    let y = 32;
    for (const fe of f.Fetches || []) { g.append(s("text", { x: 8, y, class: "small" }, "fetch " + clip(fe, 50))); y += lineH; }
    for (const st of byFrame[i]) {
      g.append(s("rect", { class: "stagebar", x: 8 + (st.at_ms / total) * (boxW - 16), y: y + 3, width: Math.max(1, (st.ms / total) * (boxW - 16)), height: 2 }));
      g.append(s("text", { x: 8, y, class: "small stage" }, `${clip(st.what, 30)}: ${st.ms} ms, ${st.in} → ${st.out} rows`, s("title", {}, `at ${st.at_ms} ms${st.note ? "; " + st.note : ""}`)));
      y += lineH;
    }
    svg.append(g);
  });
  return svg;
}

// ---- Live ----

async function pageLive(view) {
  if (!whoami.live) { view.replaceChildren(h("p", { class: "muted" }, "No live metrics here: this console runs without a server. `fletch serve --http-listen ADDR` serves one with them.")); return; }
  const plots = h("div", { class: "plots", id: "plots" });
  const slow = h("div", { id: "slow" });
  view.replaceChildren(h("h2", {}, "Live"), h("p", { class: "muted" }, "From the server's own metrics, every 2 s while this page is open (the same counters as /metrics)."), plots,
    h("h2", {}, "Slowest recent queries"), slow);
  const tick = async () => {
    if (!location.hash.startsWith("#/live")) return;
    try {
      const [live, sq] = await Promise.all([api("live"), api("slow")]);
      drawLive(plots, live.points);
      drawSlow(slow, sq);
    } catch (e) { plots.replaceChildren(h("p", { class: "error" }, e.message)); }
    livePoll = setTimeout(tick, 2000);
  };
  await tick();
}

const COLORS = ["#2563eb", "#f97316", "#16a34a", "#db2777", "#9333ea", "#0891b2", "#ca8a04", "#475569"];

function drawLive(el, pts) {
  const series = (pick) => { const keys = new Set(); for (const p of pts) for (const k of Object.keys(pick(p) || {})) keys.add(k); return [...keys].sort(); };
  const plots = [
    plot("rate", "Requests / s", pts, [["queries/s", (p) => p.rate]]),
    plot("latency", "Query latency (ms)", pts, [["p50", (p) => p.rate ? p.p50_ms : null], ["p90", (p) => p.rate ? p.p90_ms : null], ["p99", (p) => p.rate ? p.p99_ms : null]]),
    plot("errors", "Errors / s by code", pts, series((p) => p.errors).map((k) => [k, (p) => p.errors[k] || 0])),
    plot("hits", "Online store hit ratio by class", pts, series((p) => p.hit_ratio).map((k) => [k, (p) => (k in p.hit_ratio ? p.hit_ratio[k] : null)]), 1),
    plot("sources", "Source latency p50 / p99 (ms)", pts, series((p) => p.sources).flatMap((k) => [[k + " p50", (p) => (p.sources[k] ? p.sources[k][0] : null)], [k + " p99", (p) => (p.sources[k] ? p.sources[k][1] : null)]])),
  ];
  el.replaceChildren(...plots);
}

// plot draws a small time series: lines of [name, value(point)], a gap
// where a value is null.
function plot(id, title, pts, lines, fixedMax) {
  const W = 380, H = 130, L = 44, B = 18;
  const svg = s("svg", { width: W, height: H, class: "series", "data-plot": id });
  let max = fixedMax || 0;
  for (const [, f] of lines) for (const p of pts) { const v = f(p); if (v !== null && v > max) max = v; }
  if (!max) max = 1;
  const t0 = pts.length ? pts[0].t : 0, t1 = pts.length ? pts[pts.length - 1].t : 1;
  const x = (t) => L + ((t - t0) / Math.max(1, t1 - t0)) * (W - L - 8);
  const y = (v) => H - B - (v / max) * (H - B - 8);
  svg.append(s("line", { x1: L, y1: H - B, x2: W - 8, y2: H - B, stroke: "#d0d5dd" }), s("text", { x: 2, y: 12, class: "small" }, round(max)), s("text", { x: 2, y: H - B, class: "small" }, "0"));
  lines.forEach(([name, f], i) => {
    let d = "", pen = false;
    for (const p of pts) {
      const v = f(p);
      if (v === null || v === undefined) { pen = false; continue; }
      d += (pen ? " L " : " M ") + x(p.t).toFixed(1) + " " + y(v).toFixed(1); pen = true;
    }
    if (d) svg.append(s("path", { d, fill: "none", stroke: COLORS[i % COLORS.length], "stroke-width": 1.5, "data-line": name }));
  });
  const last = pts.length ? pts[pts.length - 1] : null;
  return h("div", { class: "plot panel" }, h("h3", {}, title), svg,
    h("div", { class: "legend" }, lines.map(([name, f], i) => h("span", { style: "color:" + COLORS[i % COLORS.length] }, "■ " + name + (last && f(last) !== null ? " " + round(f(last)) : "")))));
}

function round(v) { return v >= 100 ? v.toFixed(0) : v >= 1 ? v.toFixed(2) : v.toPrecision(2); }

function drawSlow(el, qs) {
  if (!qs.length) { el.replaceChildren(h("p", { class: "muted" }, "No query in the last 10 minutes" + (whoami.auth ? " reading only classes this token may read." : "."))); return; }
  el.replaceChildren(h("table", { id: "slow-table" }, h("tr", {}, ["ms", "path", "code", "ended", "trace id", "classes", "plan"].map((x) => h("th", {}, x))),
    qs.map((q) => h("tr", {}, h("td", {}, q.ms), h("td", {}, q.path), h("td", {}, q.code), h("td", {}, q.end.replace("T", " ").slice(0, 23)),
      h("td", { class: "mono" }, q.trace || ""), h("td", {}, (q.classes || []).join(", ")),
      h("td", {}, q.plan ? h("details", {}, h("summary", {}, "plan"), h("pre", {}, q.plan)) : "")))));
}

route();
