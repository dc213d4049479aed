// carbonstream live dashboard: reads the API of the same origin; alerts arrive over SSE.
//
// URL parameters: refresh=<seconds> (data refresh, default 5), entity=<id> (entity shown),
// resolution=interval|day|month, ec_hours=1|6|24.

import { fmtAge, fmtNum, fmtTime, renderBarChart, renderError, renderLineChart } from "./charts.js";

const params = new URLSearchParams(location.search);
const REFRESH_S = Math.min(300, Math.max(1, Number(params.get("refresh")) || 5));
const ALERT_BACKLOG = 50;
const FEED_MAX = 200;
const EC_VARIABLES = ["FC", "H", "LE"];
const CEMS_CO2 = "a05001";
const HOUR = 3_600_000;
const ENTITY_SPAN = { interval: 2 * HOUR, day: 31 * 24 * HOUR, month: 366 * 24 * HOUR };

const $ = (sel) => document.querySelector(sel);

function text(el, value, dataValue = value) {
  el.textContent = value;
  el.dataset.value = dataValue === null || dataValue === undefined ? "" : String(dataValue);
}

function make(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (k === "class") el.className = v;
    else if (k.startsWith("data-")) el.setAttribute(k, String(v));
    else el[k] = v;
  }
  el.append(...children.filter((c) => c !== null && c !== undefined));
  return el;
}

const isoOf = (ms) => new Date(ms).toISOString();
const msOfNs = (ns) => Number(ns) / 1e6;

class ApiError extends Error {}

async function getJSON(path, { okStatuses = [] } = {}) {
  const r = await fetch(path, { headers: { Accept: "application/json" }, cache: "no-store" });
  if (r.status === 401 || r.status === 403) {
    throw new ApiError("the API refuses anonymous reads (api.anonymous_read is off)");
  }
  if (!r.ok && !okStatuses.includes(r.status)) {
    let detail = "";
    try {
      detail = (await r.json()).detail ?? "";
    } catch {
      /* not JSON */
    }
    throw new ApiError(`${path}: HTTP ${r.status} ${detail}`);
  }
  return r.json();
}

// ---------------------------------------------------------------- fleet status

async function refreshFleet() {
  const [health, meters, devices, firing] = await Promise.allSettled([
    getJSON("/health", { okStatuses: [503] }),
    getJSON("/v1/meters?limit=1"),
    getJSON("/v1/meters/health?limit=1"),
    getJSON("/v1/alerts?status=firing&limit=10000"),
  ]);
  const overall = $("#overall");
  if (health.status === "fulfilled") {
    const h = health.value;
    overall.dataset.status = h.status;
    overall.textContent = h.status === "ok" ? "all roles healthy" : "degraded";
    const roles = $("#roles");
    roles.replaceChildren(
      ...Object.entries(h.roles).map(([name, r]) =>
        make(
          "li",
          { "data-role": name, "data-alive": r.alive },
          make("span", {}, name),
          make(
            "span",
            { class: `alive-${r.alive}` },
            r.alive ? `alive · ${r.heartbeat_age_s.toFixed(1)} s` : r.seen === false ? "never seen" : "silent",
          ),
        ),
      ),
    );
    text($("#journal-lag-records"), fmtNum(h.journal.lag_records), h.journal.lag_records);
    text($("#journal-lag-seconds"), fmtNum(h.journal.lag_seconds), h.journal.lag_seconds);
    const lw = h.last_write;
    text($("#last-write"), lw.time ? fmtTime(Date.parse(lw.time), true, true) : "never", lw.time);
    if (lw.time) $("#last-write").setAttribute("datetime", lw.time);
    text($("#last-write-age"), fmtAge(lw.age_s), lw.age_s);
    $("#problems").replaceChildren(...h.problems.map((p) => make("li", {}, p)));
  } else {
    overall.dataset.status = "unreachable";
    overall.textContent = "API unreachable";
    $("#problems").replaceChildren(make("li", {}, String(health.reason.message ?? health.reason)));
  }
  if (meters.status === "fulfilled") text($("#meters-total"), fmtNum(meters.value.total), meters.value.total);
  if (devices.status === "fulfilled") {
    const states = Object.entries(devices.value.states);
    $("#device-states").replaceChildren(
      ...(states.length
        ? states.map(([state, n]) => make("li", { class: `state-${state}`, "data-state": state, "data-count": n }, `${n} ${state}`))
        : [make("li", { class: "muted" }, "none polled")]),
    );
  }
  if (firing.status === "fulfilled") text($("#firing-count"), String(firing.value.items.length), firing.value.items.length);
}

// ---------------------------------------------------------------- sites

const sites = { cems: [], ec: [] };

async function refreshSites() {
  const [cems, ec] = await Promise.allSettled([getJSON("/v1/cems/sites"), getJSON("/v1/ec/sites")]);
  if (cems.status === "fulfilled") {
    sites.cems = cems.value.items;
    const now = Date.now();
    $("#cems-sites tbody").replaceChildren(
      ...sites.cems.map((s) => {
        const live = s.server ?? {};
        const connected = (live.connections ?? 0) > 0;
        const last = live.last_packet_ns ? msOfNs(live.last_packet_ns) : null;
        return make(
          "tr",
          { "data-site": s.id, "data-kind": "cems", "data-connected": connected },
          make("th", { scope: "row", title: s.name }, s.id),
          make("td", {}, s.mn),
          make("td", {}, s.policy),
          make("td", { class: connected ? "alive-true" : "alive-false" }, connected ? "connected" : "disconnected"),
          make("td", {}, fmtNum(live.packets ?? 0)),
          make("td", {}, last ? fmtAge((now - last) / 1000) : "–"),
        );
      }),
    );
  } else {
    $("#cems-sites tbody").replaceChildren(errorRow(6, cems.reason));
  }
  if (ec.status === "fulfilled") {
    sites.ec = ec.value.items;
    renderEcTable();
  } else {
    $("#ec-sites tbody").replaceChildren(errorRow(5, ec.reason));
  }
}

function errorRow(span, error) {
  return make("tr", {}, make("td", { colSpan: span, class: "alive-false" }, `Could not load: ${error.message ?? error}`));
}

// ---------------------------------------------------------------- EC fluxes (incremental)

const ec = { hours: Number(params.get("ec_hours")) || 6, data: new Map() };

function renderEcTable() {
  $("#ec-sites tbody").replaceChildren(
    ...sites.ec.map((s) => {
      const periods = ec.data.get(s.id);
      const lastT = periods && periods.size ? Math.max(...periods.keys()) : null;
      const last = lastT === null ? null : periods.get(lastT);
      return make(
        "tr",
        { "data-site": s.id, "data-kind": "ec" },
        make("th", { scope: "row" }, s.id),
        make("td", {}, `${fmtNum(s.averaging_min)} min`),
        make("td", {}, `${fmtNum(s.sampling_hz)} Hz`),
        make("td", {}, lastT === null ? "–" : fmtTime(lastT)),
        make("td", { "data-value": last?.FC ?? "" }, last ? fmtNum(last.FC) : "–"),
      );
    }),
  );
}

async function refreshEc() {
  const now = Date.now();
  const from = now - ec.hours * HOUR;
  const errors = [];
  await Promise.all(
    sites.ec.map(async (s) => {
      const step = s.averaging_min * 60_000;
      let periods = ec.data.get(s.id);
      if (!periods) ec.data.set(s.id, (periods = new Map()));
      const newest = periods.size ? Math.max(...periods.keys()) : null;
      const start = newest === null ? from : Math.max(from, newest - 3 * step);
      try {
        const res = await getJSON(`/v1/ec/${encodeURIComponent(s.id)}/fluxes?start=${isoOf(start)}`);
        for (const p of res.periods) {
          periods.set(Date.parse(p.period_start), Object.fromEntries(EC_VARIABLES.map((v) => [v, p[v]])));
        }
      } catch (e) {
        errors.push(e);
      }
      for (const t of periods.keys()) if (t < from) periods.delete(t);
    }),
  );
  const step = Math.max(...sites.ec.map((s) => s.averaging_min * 60_000), 0);
  for (const v of EC_VARIABLES) {
    const figure = $(`#chart-ec-${v}`);
    if (errors.length && sites.ec.every((s) => !ec.data.get(s.id)?.size)) {
      renderError(figure, errors[0]);
      continue;
    }
    const series = sites.ec.map((s) => ({
      name: s.id,
      points: [...(ec.data.get(s.id) ?? new Map()).entries()].map(([t, p]) => [t, p[v]]),
    }));
    renderLineChart(figure, series, {
      stepMs: step,
      unit: v === "FC" ? "µmol m⁻² s⁻¹" : "W m⁻²",
      label: v,
      includeZero: true,
      emptyMessage: sites.ec.length ? "No flux periods in the window yet." : "No eddy-covariance site.",
    });
  }
  renderEcTable();
}

// ---------------------------------------------------------------- CEMS hourly CO2

async function refreshCems() {
  const figure = $("#chart-cems-co2");
  const start = isoOf(Date.now() - 48 * HOUR);
  try {
    const results = await Promise.all(
      sites.cems.map((s) => getJSON(`/v1/cems/${encodeURIComponent(s.id)}/hourly?code=${CEMS_CO2}&start=${start}`)),
    );
    const series = sites.cems.map((s, i) => ({
      name: s.id,
      points: results[i].hours.filter((h) => h.code === CEMS_CO2).map((h) => [Date.parse(h.hour_start), h.mass]),
    }));
    renderLineChart(figure, series, {
      stepMs: HOUR,
      unit: "kg",
      label: "Hourly CO₂ mass",
      includeZero: true,
      emptyMessage: sites.cems.length ? "No closed hour in the last 48 hours yet." : "No CEMS site.",
    });
  } catch (e) {
    renderError(figure, e);
  }
}

// ---------------------------------------------------------------- entity emissions

const KIND_ORDER = { city: 0, district: 1, park: 2, enterprise: 3 };
const entity = { id: params.get("entity"), resolution: params.get("resolution") || "interval", loaded: false };

async function loadEntities() {
  const res = await getJSON("/v1/entities");
  const items = [...res.items].sort(
    (a, b) => (KIND_ORDER[a.kind] ?? 9) - (KIND_ORDER[b.kind] ?? 9) || a.id.localeCompare(b.id),
  );
  const select = $("#entity-select");
  select.replaceChildren(...items.map((e) => make("option", { value: e.id }, `${e.name ?? e.id} (${e.kind})`)));
  if (!entity.id || !items.some((e) => e.id === entity.id)) entity.id = items.find((e) => e.parent === null)?.id ?? items[0]?.id ?? null;
  if (entity.id) select.value = entity.id;
  entity.loaded = true;
}

const COMMODITY_UNITS = {
  electricity: "kWh", green_electricity: "kWh", heat: "GJ", natural_gas: "Nm³", raw_coal: "kg", diesel: "kg", water: "m³",
};

async function refreshEntity() {
  const figure = $("#chart-entity-co2");
  try {
    if (!entity.loaded) await loadEntities();
    if (!entity.id) {
      renderError(figure, new Error("no entity is registered"));
      return;
    }
    const start = isoOf(Date.now() - ENTITY_SPAN[entity.resolution]);
    const res = await getJSON(
      `/v1/entities/${encodeURIComponent(entity.id)}/emissions?resolution=${entity.resolution}&start=${start}`,
    );
    figure.dataset.entity = res.entity;
    figure.dataset.resolution = res.resolution;
    const periods = res.periods.map((p) => ({
      t: Date.parse(p.period_start),
      values: [p.co2_scope1_kg, p.co2_scope2_kg],
      total: p.co2_kg,
    }));
    const labelFor =
      entity.resolution === "interval"
        ? (t) => fmtTime(t, false)
        : entity.resolution === "day"
          ? (t) => isoOf(t).slice(5, 10)
          : (t) => isoOf(t).slice(0, 7);
    renderBarChart(figure, periods, {
      stacks: ["scope 1", "scope 2"],
      unit: "kg",
      label: `CO₂ of ${res.entity} by ${res.resolution}`,
      labelFor,
      emptyMessage: "No emissions in this range yet.",
    });
    renderEntityLatest(res);
  } catch (e) {
    renderError(figure, e);
  }
}

function renderEntityLatest(res) {
  const dl = $("#entity-latest");
  const last = res.periods[res.periods.length - 1];
  if (!last) {
    dl.replaceChildren();
    return;
  }
  const facts = [
    ["Latest period", res.resolution === "interval" ? fmtTime(Date.parse(last.period_start)) : last.period_start.slice(0, 10)],
    ["CO₂", `${fmtNum(last.co2_kg)} kg`],
    ["Completeness", last.completeness === null ? "–" : `${fmtNum(last.completeness * 100)} %`],
  ];
  if (last.meters_reporting !== undefined) facts.push(["Meters reporting", fmtNum(last.meters_reporting)]);
  for (const [c, unit] of Object.entries(COMMODITY_UNITS)) {
    if (last[c] !== null && last[c] !== undefined) facts.push([c.replace("_", " "), `${fmtNum(last[c])} ${unit}`]);
  }
  for (const [k, v] of Object.entries(last)) {
    if (k.startsWith("co2_intensity_kg_per_")) facts.push(["Intensity", `${fmtNum(v)} kg/${k.slice(21)}`]);
  }
  dl.replaceChildren(...facts.flatMap(([k, v]) => [make("dt", {}, k), make("dd", {}, v)]));
}

// ---------------------------------------------------------------- alert feed (SSE)

const feed = { seen: new Set(), lastSeq: 0, source: null, firingRefresh: null };

function setStreamState(state, label = state) {
  const el = $("#alert-stream-state");
  el.dataset.state = state;
  el.textContent = label;
}

function addAlert(e) {
  if (feed.seen.has(e.seq)) return;
  feed.seen.add(e.seq);
  feed.lastSeq = Math.max(feed.lastSeq, e.seq);
  const recorded = e.created_ns ? msOfNs(e.created_ns) : null;
  const value =
    e.value === null || e.value === undefined ? "" : `value ${fmtNum(e.value)} (threshold ${fmtNum(e.threshold)})`;
  const li = make(
    "li",
    {
      class: "alert",
      "data-seq": e.seq,
      "data-alert-id": e.alert_id,
      "data-transition": e.transition,
      "data-severity": e.severity,
      "data-rule": e.rule,
      "data-subject": e.subject,
      "data-created-ns": e.created_ns ?? "",
    },
    make(
      "div",
      { class: "head" },
      make("span", { class: `badge ${e.transition}` }, e.transition),
      make("span", { class: `badge sev-${e.severity}` }, e.severity),
      make("span", { class: "rule" }, e.rule),
      make("span", { class: "subject" }, e.subject),
      make("time", { class: "when", dateTime: recorded ? isoOf(recorded) : "" }, recorded ? fmtTime(recorded, false, true) : ""),
    ),
    make("p", { class: "msg" }, e.message || value),
    e.message && value ? make("p", { class: "msg muted" }, value) : null,
  );
  const list = $("#alert-feed");
  const after = [...list.children].find((c) => Number(c.dataset.seq) < e.seq);
  list.insertBefore(li, after ?? null);
  li.dataset.shownMs = String(Date.now());
  requestAnimationFrame(() => {
    li.dataset.paintedMs = String(Date.now());
  });
  while (list.children.length > FEED_MAX) list.lastElementChild.remove();
  $("#alert-empty").hidden = true;
  clearTimeout(feed.firingRefresh);
  feed.firingRefresh = setTimeout(() => {
    getJSON("/v1/alerts?status=firing&limit=10000")
      .then((r) => text($("#firing-count"), String(r.items.length), r.items.length))
      .catch(() => {});
  }, 250);
}

function openStream(since) {
  const source = new EventSource(`/v1/alerts/stream?since=${since}`);
  feed.source = source;
  source.addEventListener("open", () => setStreamState("live"));
  source.addEventListener("alert", (ev) => {
    try {
      addAlert(JSON.parse(ev.data));
    } catch (err) {
      console.error("unreadable alert event", err);
    }
  });
  source.addEventListener("error", () => {
    if (source.readyState === EventSource.CLOSED) {
      // Refused (e.g. an HTTP error): EventSource gives up; try again from the last event seen.
      setStreamState("closed", "disconnected, retrying");
      setTimeout(() => openStream(feed.lastSeq), 5000);
    } else {
      setStreamState("reconnecting"); // EventSource resumes with Last-Event-ID by itself
    }
  });
}

async function startAlerts() {
  let since = 0;
  try {
    const current = await getJSON("/v1/alerts?limit=1");
    const newest = current.items[0];
    if (newest) since = Math.max(0, newest.updated_seq - ALERT_BACKLOG);
  } catch {
    /* the stream replays from the start */
  }
  openStream(since);
}

// ---------------------------------------------------------------- main loop

async function cycle() {
  await Promise.allSettled([refreshFleet(), refreshSites()]);
  await Promise.allSettled([refreshEc(), refreshCems(), refreshEntity()]);
  const now = Date.now();
  const refreshed = $("#refreshed");
  refreshed.textContent = `updated ${fmtTime(now, false, true)}`;
  refreshed.dataset.ms = String(now);
  $("#dashboard").dataset.state = "ready";
  setTimeout(cycle, REFRESH_S * 1000);
}

function init() {
  $("#refresh-s").textContent = String(REFRESH_S);
  $("#tz").textContent = Intl.DateTimeFormat().resolvedOptions().timeZone ?? "local";
  const ecWindow = $("#ec-window");
  if ([1, 6, 24].includes(ec.hours)) ecWindow.value = String(ec.hours);
  ecWindow.addEventListener("change", () => {
    ec.hours = Number(ecWindow.value);
    ec.data.clear();
    refreshEc();
  });
  const resolution = $("#entity-resolution");
  if (ENTITY_SPAN[entity.resolution]) resolution.value = entity.resolution;
  else entity.resolution = "interval";
  resolution.addEventListener("change", () => {
    entity.resolution = resolution.value;
    refreshEntity();
  });
  $("#entity-select").addEventListener("change", (ev) => {
    entity.id = ev.target.value;
    refreshEntity();
  });
  startAlerts();
  cycle();
}

init();
