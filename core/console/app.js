// agentfn console: a few views over the public API, in plain JavaScript (no build step).
// Every value from the API reaches the page as text (textContent), never as markup.
"use strict";

const view = () => document.getElementById("view");
const SVG = "http://www.w3.org/2000/svg";
let timer = null;

function el(tag, attrs, ...children) {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(attrs || {})) {
    if (name === "on") for (const [ev, fn] of Object.entries(value)) node.addEventListener(ev, fn);
    else if (value !== null && value !== undefined) node.setAttribute(name, value);
  }
  for (const child of children.flat()) {
    if (child === null || child === undefined) continue;
    node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return node;
}

function svg(tag, attrs, ...children) {
  const node = document.createElementNS(SVG, tag);
  for (const [name, value] of Object.entries(attrs || {})) node.setAttribute(name, value);
  for (const child of children) node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  return node;
}

const status = (s) => el("span", { class: `status ${s}` }, s);
const money = (v) => `$${(v || 0).toFixed(6)}`;
const when = (t) => (t ? new Date(t * 1000).toLocaleString() : "");

async function api(path, options = {}) {
  const key = sessionStorage.getItem("agentfn-key") || "";
  const headers = { authorization: `Bearer ${key}`, ...(options.headers || {}) };
  const response = await fetch(path, { ...options, headers });
  const text = await response.text();
  const body = text && (response.headers.get("content-type") || "").includes("json") ? JSON.parse(text) : text;
  if (!response.ok) {
    const error = (body && body.error) || { message: text || response.statusText };
    throw Object.assign(new Error(error.message), { status: response.status, field: error.field });
  }
  return body;
}

function show(...nodes) {
  view().replaceChildren(...nodes.filter((n) => n !== null && n !== undefined));
}

function failure(error) {
  return el("p", { class: "error", id: "error" }, `${error.status || ""} ${error.message}`);
}

// ------------------------------------------------------------------ runs

async function runsView() {
  const statusFilter = el("select", { id: "status-filter" },
    ...["", "queued", "running", "waiting", "completed", "failed", "cancelled"].map((s) => el("option", { value: s }, s || "any status")));
  const workflowFilter = el("input", { id: "workflow-filter", placeholder: "workflow" });
  const body = el("tbody");
  const more = el("button", { id: "more" }, "More");
  let runs = [];
  let cursor = null;
  const render = () => {
    const s = statusFilter.value, w = workflowFilter.value.trim();
    body.replaceChildren(...runs
      .filter((r) => (!s || r.status === s) && (!w || r.workflow.includes(w)))
      .map((r) => el("tr", { class: "run" },
        el("td", {}, el("a", { href: `#/run/${r.id}` }, r.id)),
        el("td", {}, r.workflow), el("td", {}, status(r.status)),
        el("td", { class: "num" }, r.steps), el("td", { class: "num" }, r.tokens),
        el("td", { class: "num" }, money(r.cost_usd)), el("td", {}, when(r.created_at)))));
  };
  const load = async () => {
    const page = await api(`/v1/runs?limit=50${cursor ? `&cursor=${encodeURIComponent(cursor)}` : ""}`);
    runs = runs.concat(page.items);
    cursor = page.next_cursor;
    more.hidden = !cursor;
    render();
  };
  statusFilter.addEventListener("change", render);
  workflowFilter.addEventListener("input", render);
  more.addEventListener("click", load);
  show(el("h2", {}, "Runs"), el("div", { class: "filters" }, statusFilter, workflowFilter),
    el("table", {}, el("thead", {}, el("tr", {}, ...["run", "workflow", "status", "steps", "tokens", "cost", "created"].map((h) => el("th", {}, h)))), body),
    more);
  await load();
}

// ------------------------------------------------------------------ one run

function layout(graph) {
  // Longest-path layers from the roots: a node sits right of everything it waits for.
  const incoming = new Map(graph.nodes.map((n) => [n.id, []]));
  for (const e of graph.edges) incoming.get(e.to).push(e.from);
  const depth = new Map();
  const depthOf = (id, seen = new Set()) => {
    if (depth.has(id)) return depth.get(id);
    if (seen.has(id)) return 0;
    seen.add(id);
    const d = Math.max(-1, ...incoming.get(id).map((p) => depthOf(p, seen))) + 1;
    depth.set(id, d);
    return d;
  };
  graph.nodes.forEach((n) => depthOf(n.id));
  const columns = [];
  for (const n of graph.nodes) (columns[depth.get(n.id)] ||= []).push(n);
  const place = new Map();
  columns.forEach((column, x) => column.forEach((n, y) => place.set(n.id, { x: 20 + x * 190, y: 20 + y * 70 })));
  const height = 10 + 70 * Math.max(1, ...columns.map((c) => c.length));
  return { place, width: 40 + 190 * columns.length, height };
}

function drawGraph(run, selected, onSelect) {
  const { place, width, height } = layout(run.graph);
  const root = svg("svg", { class: "graph", width, height, viewBox: `0 0 ${width} ${height}`, id: "graph" });
  root.append(svg("defs", {}, svg("marker", { id: "arrow", viewBox: "0 0 10 10", refX: "10", refY: "5", markerWidth: "7", markerHeight: "7", orient: "auto-start-reverse" },
    svg("path", { d: "M 0 0 L 10 5 L 0 10 z", fill: "#9aa3b1" }))));
  for (const e of run.graph.edges) {
    const a = place.get(e.from), b = place.get(e.to);
    root.append(svg("path", { class: "edge", d: `M ${a.x + 150} ${a.y + 20} C ${a.x + 170} ${a.y + 20}, ${b.x - 20} ${b.y + 20}, ${b.x} ${b.y + 20}` }));
  }
  for (const n of run.graph.nodes) {
    const p = place.get(n.id);
    const state = run.nodes[n.id] || "pending";
    const g = svg("g", { class: `node ${state}${n.id === selected ? " selected" : ""}`, "data-node": n.id, "data-state": state, transform: `translate(${p.x},${p.y})` },
      svg("rect", { width: "150", height: "40", rx: "6" }),
      svg("text", { x: "10", y: "17" }, n.id),
      svg("text", { x: "10", y: "32", class: "muted" }, `${n.type}${n.agent ? ` · ${n.agent}` : ""}`));
    g.addEventListener("click", () => onSelect(n.id));
    root.append(g);
  }
  return root;
}

function stepsOf(run, node) {
  return run.step_details.filter((s) => s.key === node || s.key.startsWith(`${node}@`) || s.key.startsWith(`${node}[`) || s.key.startsWith(`${node}.`));
}

function stepPanel(run, node) {
  if (!node) return el("div", { class: "panel muted", id: "step-panel" }, "Click a node to see its steps.");
  const rows = stepsOf(run, node).map((s) => el("div", { class: "panel step", "data-key": s.key },
    el("div", {}, el("strong", {}, s.key), " ", status(s.status), ` attempt ${s.attempt} · ${s.tokens} tokens · ${money(s.cost_usd)} · ${s.duration_ms === null ? "" : s.duration_ms.toFixed(1) + " ms"}`),
    s.input === null || s.input === undefined ? null : el("div", {}, "input", el("pre", {}, JSON.stringify(s.input, null, 2))),
    s.output === null || s.output === undefined ? null : el("div", {}, "output", el("pre", {}, JSON.stringify(s.output, null, 2))),
    s.error ? el("div", { class: "error step-error" }, s.error) : null));
  return el("div", { id: "step-panel" }, el("h3", {}, `Node ${node}`), rows.length ? rows : el("p", { class: "muted" }, "No step has run for this node yet."));
}

async function runView(id) {
  let selected = null;
  let run = null;
  const paint = () => {
    const summary = el("p", { id: "run-summary" }, status(run.status), ` ${run.workflow} · ${run.steps} steps · ${run.tokens} tokens · ${money(run.cost_usd)} · started ${when(run.created_at)}`);
    const error = run.error ? el("p", { class: "error", id: "run-error" }, `${run.error.step}: ${run.error.message}`) : null;
    const flags = run.flags && run.flags.length ? el("div", { class: "panel" }, el("strong", {}, "Flagged tool outputs"),
      ...run.flags.map((f) => el("div", {}, `${f.step} · ${f.tool} · ${f.signals.join(", ")}: `, el("code", {}, f.excerpt)))) : null;
    const output = run.status === "completed" ? el("div", { class: "panel" }, el("strong", {}, "Output"), el("pre", { id: "run-output" }, JSON.stringify(run.output, null, 2))) : null;
    show(el("h2", {}, `Run ${run.id}`), summary, error, drawGraph(run, selected, (node) => { selected = node; paint(); }), stepPanel(run, selected), flags, output);
  };
  const poll = async () => {
    run = await api(`/v1/runs/${encodeURIComponent(id)}`);
    paint();
    if (!["completed", "failed", "cancelled"].includes(run.status)) timer = setTimeout(() => poll().catch((e) => show(failure(e))), 700);
  };
  await poll();
}

// ------------------------------------------------------------------ start a run

function inputField(name, spec) {
  const id = `input-${name}`;
  const label = `${name}${spec.required ? " *" : ""}${spec.description ? ` — ${spec.description}` : ""}`;
  let control;
  if (spec.type === "boolean") {
    control = el("select", { id, name }, el("option", { value: "true" }, "true"), el("option", { value: "false" }, "false"));
    if (spec.default === false) control.value = "false";
  } else if (["object", "array", "any"].includes(spec.type)) {
    control = el("textarea", { id, name, rows: "3", placeholder: "JSON" });
    if (spec.default !== undefined && spec.default !== null) control.value = JSON.stringify(spec.default);
  } else {
    control = el("input", { id, name, type: ["number", "integer"].includes(spec.type) ? "number" : "text", step: spec.type === "number" ? "any" : null });
    if (spec.default !== undefined && spec.default !== null) control.value = String(spec.default);
  }
  return el("label", {}, label, control);
}

function readInput(spec, raw) {
  if (raw === "" && !spec.required) return undefined;
  if (spec.type === "integer") return parseInt(raw, 10);
  if (spec.type === "number") return parseFloat(raw);
  if (spec.type === "boolean") return raw === "true";
  if (["object", "array", "any"].includes(spec.type)) return JSON.parse(raw);
  return raw;
}

async function startView(name) {
  const nameInput = el("input", { id: "workflow-name", placeholder: "workflow name", value: name || "", list: "workflow-names" });
  const names = el("datalist", { id: "workflow-names" });
  api("/v1/workflows").then((list) => names.replaceChildren(...list.items.map((n) => el("option", { value: n })))).catch(() => {});
  const holder = el("div", { id: "start-form" });
  const open = async () => {
    const workflow = await api(`/v1/workflows/${encodeURIComponent(nameInput.value.trim())}`);
    const fields = Object.entries(workflow.inputs);
    const form = el("form", { class: "inputs", id: "inputs" },
      el("p", { class: "muted" }, workflow.description || `${workflow.nodes} nodes, ${workflow.edges} edges`),
      ...fields.map(([n, spec]) => inputField(n, spec)), el("button", { type: "submit", id: "start" }, "Start run"));
    form.addEventListener("submit", async (event) => {
      event.preventDefault();
      const input = {};
      try {
        for (const [n, spec] of fields) {
          const value = readInput(spec, form.elements[n].value);
          if (value !== undefined) input[n] = value;
        }
        const run = await api("/v1/runs", { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify({ workflow: workflow.name, input }) });
        location.hash = `#/run/${run.id}`;
      } catch (error) {
        form.append(failure(error));
      }
    });
    holder.replaceChildren(form);
  };
  const pick = el("form", { class: "filters", id: "pick" }, nameInput, names, el("button", { type: "submit" }, "Open"));
  pick.addEventListener("submit", (event) => { event.preventDefault(); open().catch((e) => holder.replaceChildren(failure(e))); });
  show(el("h2", {}, "Start a run"), pick, holder, agentForm());
  if (name) await open();
}

function agentForm() {
  // A stored agent's input is one prompt; the workflow named supplies its models.
  const form = el("form", { class: "inputs panel", id: "agent-form" },
    el("strong", {}, "Ask a stored agent"),
    el("label", {}, "agent *", el("input", { id: "agent-name", name: "agent" })),
    el("label", {}, "models of the workflow *", el("input", { id: "agent-models", name: "models", list: "workflow-names" })),
    el("label", {}, "prompt *", el("textarea", { id: "agent-prompt", name: "prompt", rows: "3" })),
    el("button", { type: "submit", id: "agent-start" }, "Ask"));
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    try {
      const body = { prompt: form.elements.prompt.value, models_from: form.elements.models.value.trim() };
      const run = await api(`/v1/agents/${encodeURIComponent(form.elements.agent.value.trim())}/runs`,
        { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify(body) });
      location.hash = `#/run/${run.id}`;
    } catch (error) {
      form.append(failure(error));
    }
  });
  return form;
}

// ------------------------------------------------------------------ costs

function bars(days) {
  const width = 40 + days.length * 44, height = 170;
  const top = Math.max(...days.map((d) => d.cost_usd), 1e-9);
  const chart = svg("svg", { class: "bars", width, height, id: "cost-chart" });
  days.forEach((d, i) => {
    const h = Math.round((d.cost_usd / top) * 120);
    chart.append(svg("rect", { x: 30 + i * 44, y: 140 - h, width: "30", height: Math.max(h, 1) }),
      svg("text", { x: 30 + i * 44, y: 156 }, d.day.slice(5)));
  });
  return chart;
}

async function costsView() {
  const metrics = await api("/v1/metrics?days=14");
  const table = el("table", { id: "metrics" }, el("thead", {}, el("tr", {}, ...["day", "runs", "failed", "steps", "retries", "dead letters", "tokens", "cost"].map((h) => el("th", {}, h)))),
    el("tbody", {}, ...metrics.days.slice().reverse().map((d) => el("tr", {}, el("td", {}, d.day), el("td", { class: "num" }, d.runs), el("td", { class: "num" }, d.failed),
      el("td", { class: "num" }, d.steps), el("td", { class: "num" }, d.retries), el("td", { class: "num" }, d.dead_letters), el("td", { class: "num" }, d.tokens), el("td", { class: "num" }, money(d.cost_usd))))));
  const byAgent = el("div", { id: "by-agent" });
  show(el("h2", {}, "Costs"), el("div", { class: "panel" }, el("strong", {}, "Cost per day"), bars(metrics.days)), table, el("h3", {}, "Per workflow and agent"), byAgent);
  try {
    const costs = await api("/v1/costs?days=14");
    byAgent.replaceChildren(el("table", {}, el("thead", {}, el("tr", {}, ...["day", "workflow", "agent", "calls", "tokens", "cost"].map((h) => el("th", {}, h)))),
      el("tbody", {}, ...costs.items.map((r) => el("tr", {}, el("td", {}, r.day), el("td", {}, r.workflow), el("td", {}, r.agent), el("td", { class: "num" }, r.calls),
        el("td", { class: "num" }, r.prompt_tokens + r.completion_tokens), el("td", { class: "num" }, money(r.cost_usd)))))),
      el("a", { href: "#/costs", id: "csv", on: { click: downloadCsv } }, "Download CSV"));
  } catch (error) {
    byAgent.replaceChildren(el("p", { class: "muted" }, error.status === 403 ? "Costs per agent need a tenant admin's key." : error.message));
  }
}

async function downloadCsv(event) {
  event.preventDefault();
  const text = await api("/v1/costs.csv?days=14");
  const link = el("a", { href: URL.createObjectURL(new Blob([text], { type: "text/csv" })), download: "agentfn-costs.csv" });
  link.click();
}

// ------------------------------------------------------------------ collaborations

async function collaborationView(id) {
  const pick = el("form", { class: "filters" }, el("input", { id: "collaboration-id", placeholder: "collaboration (run) id", value: id || "" }), el("button", { type: "submit" }, "Open"));
  pick.addEventListener("submit", (event) => { event.preventDefault(); location.hash = `#/collaboration/${pick.elements[0].value.trim()}`; });
  if (!id) return show(el("h2", {}, "Collaborations"), pick);
  const poll = async () => {
    const c = await api(`/v1/collaborations/${encodeURIComponent(id)}`);
    show(el("h2", {}, `Collaboration ${c.id}`), pick, el("p", {}, status(c.status), ` ${Object.entries(c.progress).map(([k, v]) => `${v} ${k}`).join(" · ")}`),
      el("table", { id: "subtasks" }, el("thead", {}, el("tr", {}, ...["subtask", "agent", "status", "attempts", "tokens", "cost", "error"].map((h) => el("th", {}, h)))),
        el("tbody", {}, ...c.subtasks.map((s) => el("tr", {}, el("td", {}, s.id), el("td", {}, s.agent), el("td", {}, status(s.status)), el("td", { class: "num" }, s.attempts),
          el("td", { class: "num" }, s.tokens), el("td", { class: "num" }, money(s.cost_usd)), el("td", { class: "error" }, s.error || ""))))));
    if (["queued", "running", "waiting"].includes(c.status)) timer = setTimeout(() => poll().catch((e) => show(failure(e))), 1000);
  };
  await poll();
}

// ------------------------------------------------------------------ routing

async function route() {
  clearTimeout(timer);
  if (!sessionStorage.getItem("agentfn-key")) return show(el("p", { class: "muted" }, "Enter an API key to begin."));
  const [, page, arg] = (location.hash || "#/runs").split("/");
  const arg2 = arg ? decodeURIComponent(arg) : null;
  const views = { runs: runsView, run: runView, start: startView, costs: costsView, collaboration: collaborationView };
  try {
    await (views[page] || runsView)(arg2);
  } catch (error) {
    show(failure(error));
  }
}

document.addEventListener("DOMContentLoaded", () => {
  const keyInput = document.getElementById("key");
  keyInput.value = sessionStorage.getItem("agentfn-key") || "";
  document.getElementById("key-form").addEventListener("submit", (event) => {
    event.preventDefault();
    sessionStorage.setItem("agentfn-key", keyInput.value.trim());
    route();
  });
  window.addEventListener("hashchange", route);
  route();
});
