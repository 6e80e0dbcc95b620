// The agent at a glance. Everything comes from this agent's own read-only endpoints; every
// value is written with textContent (a model's reason or a chain string is never markup).
"use strict";

const POLL_MS = 2000;
const MAX_POINTS = 2000;
const series = { ticks: [], price: [], net_worth: [], runway: [], action: [], status: [] };
let nextSince = 0;

const $ = (id) => document.getElementById(id);
const text = (id, value) => { $(id).textContent = value; };
const fmt = (value, digits = 2) =>
  value === null || value === undefined ? "–" : Number(value).toLocaleString("en-US", {
    minimumFractionDigits: digits, maximumFractionDigits: digits });

async function getJson(path) {
  const response = await fetch(path, { cache: "no-store" });
  if (!response.ok && response.status !== 503) throw new Error(`${path}: ${response.status}`);
  return response.json();
}

function badge(id, label, kind) {
  const el = $(id);
  el.textContent = label;
  el.className = `badge ${kind}`;
}

function row(cells, classes = []) {
  const tr = document.createElement("tr");
  cells.forEach((cell, i) => {
    const td = document.createElement("td");
    td.textContent = cell;
    if (classes[i]) td.className = classes[i];
    tr.appendChild(td);
  });
  return tr;
}

function chart(id, values) {
  const svg = $(id);
  const ns = "http://www.w3.org/2000/svg";
  while (svg.firstChild) svg.removeChild(svg.firstChild);
  const width = 600, height = 180, pad = 4;
  for (let i = 1; i < 4; i++) {
    const line = document.createElementNS(ns, "line");
    const y = (height / 4) * i;
    line.setAttribute("x1", 0); line.setAttribute("x2", width);
    line.setAttribute("y1", y); line.setAttribute("y2", y);
    line.setAttribute("class", "grid");
    svg.appendChild(line);
  }
  const points = values.filter((v) => v !== null && Number.isFinite(v));
  if (points.length === 0) return;
  let lo = Math.min(...points), hi = Math.max(...points);
  if (hi === lo) { hi += Math.abs(hi) * 0.01 || 1; lo -= Math.abs(lo) * 0.01 || 1; }
  const step = points.length > 1 ? (width - 2 * pad) / (points.length - 1) : 0;
  const coords = points.map((v, i) =>
    `${(pad + i * step).toFixed(1)},${(height - pad - ((v - lo) / (hi - lo)) * (height - 2 * pad)).toFixed(1)}`);
  const path = document.createElementNS(ns, "polyline");
  path.setAttribute("points", coords.length === 1 ? `${coords[0]} ${width - pad},${coords[0].split(",")[1]}` : coords.join(" "));
  path.setAttribute("class", "series");
  svg.appendChild(path);
  for (const [value, y] of [[hi, 12], [lo, height - 6]]) {
    const label = document.createElementNS(ns, "text");
    label.setAttribute("x", 6); label.setAttribute("y", y);
    label.textContent = fmt(value, 2);
    svg.appendChild(label);
  }
}

function showState(state) {
  text("agent", state.agent_id || "starting…");
  const parts = [state.strategy && `strategy ${state.strategy}`, state.model,
    state.adapter && `adapter ${state.adapter}`, `generation ${state.generation}`,
    state.address, state.chain_id && `chain ${state.chain_id}`].filter(Boolean);
  text("identity", parts.join(" · "));
  if (state.alive === null) badge("life", "STARTING", "warn");
  else if (state.alive) badge("life", state.paused ? "PAUSED" : "ALIVE", state.paused ? "warn" : "ok");
  else badge("life", `DEAD: ${state.death_cause}`, "bad");
  text("net-worth", fmt(state.net_worth));
  const b = state.balances;
  text("balances", b ? `${fmt(b.stable)} STABLE · ${fmt(b.risk, 4)} RISK · ${fmt(b.native, 4)} gas` : "");
  text("runway", fmt(state.runway_periods, 1));
  text("price", fmt(state.price, 4));
  text("price-change", state.price_change_pct === null ? "" : `${state.price_change_pct > 0 ? "+" : ""}${fmt(state.price_change_pct, 2)} % over ${state.recent_prices.length} ticks`);
  const rent = state.rent;
  text("rent", rent.owed_periods ? `owes ${rent.amount_due}` : rent.next_due_in_ticks === null || rent.next_due_in_ticks === undefined ? `${rent.amount}` : `due in ${rent.next_due_in_ticks}`);
  text("rent-detail", `${rent.amount} every ${rent.period_ticks} ticks · paid ${rent.paid_periods ?? 0} · grace ${rent.grace_ticks}`);
  text("tick", state.tick === null ? "–" : state.tick);
  text("age", state.age_ticks === null ? "" : `age ${state.age_ticks} ticks · block ${state.block ?? "–"}`);
  const dl = $("decision");
  while (dl.firstChild) dl.removeChild(dl.firstChild);
  const d = state.last_decision;
  const entries = d ? [["action", `${d.action} ${d.amount_pct}%`], ["reason", d.reason || "–"],
    ["verdict", state.policy_verdict || "–"], ["valid", d.valid ? "yes" : `no: ${d.error}`],
    ["latency", `${fmt(d.latency_s * 1000, 0)} ms`],
    ["outcome", state.last_outcome ? state.last_outcome.status : "–"]] : [["", "no decision yet"]];
  for (const [k, v] of entries) {
    const dt = document.createElement("dt"); dt.textContent = k;
    const dd = document.createElement("dd"); dd.textContent = v;
    dl.append(dt, dd);
  }
  const tbody = $("actions");
  while (tbody.firstChild) tbody.removeChild(tbody.firstChild);
  for (const a of state.recent_actions) {
    const hashes = a.tx_hashes.map((h) => `${h.slice(0, 10)}…${h.slice(-4)}`).join(" ");
    tbody.appendChild(row([a.tick, a.kind, a.status, hashes || a.veto || a.error || ""], ["", "", `status-${a.status}`, ""]));
  }
}

function showHealth(health) {
  badge("health", health.is_healthy ? "HEALTHY" : "UNHEALTHY", health.is_healthy ? "ok" : "bad");
  const reasons = $("reasons");
  reasons.hidden = health.reasons.length === 0;
  reasons.textContent = health.reasons.join(" · ");
}

function showSeries(page) {
  for (const key of Object.keys(series)) {
    series[key].push(...page[key]);
    if (series[key].length > MAX_POINTS) series[key].splice(0, series[key].length - MAX_POINTS);
  }
  chart("chart-net-worth", series.net_worth);
  chart("chart-price", series.price);
  chart("chart-runway", series.runway);
  const tbody = $("ticks");
  while (tbody.firstChild) tbody.removeChild(tbody.firstChild);
  const n = series.ticks.length;
  for (let i = n - 1; i >= Math.max(0, n - 8); i--) {
    tbody.appendChild(row([series.ticks[i], series.action[i], series.status[i], fmt(series.net_worth[i])],
      ["", "", `status-${series.status[i]}`, ""]));
  }
}

async function refresh() {
  try {
    const [state, health] = await Promise.all([getJson("/state"), getJson("/healthz")]);
    showState(state);
    showHealth(health);
    let page;
    do {
      page = await getJson(`/series?since=${nextSince}&limit=1000`);
      if (page.ticks.length) nextSince = page.ticks[page.ticks.length - 1] + 1;
      showSeries(page);
    } while (page.next_since !== null);
    text("updated", `updated ${new Date().toLocaleTimeString()}`);
  } catch (error) {
    badge("health", "UNREACHABLE", "bad");
    text("updated", `agent unreachable: ${error.message}`);
  }
}

refresh();
setInterval(refresh, POLL_MS);
