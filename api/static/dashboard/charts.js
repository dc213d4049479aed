// Small SVG charts for the dashboard: time-series lines and stacked bars. No dependencies.
//
// Each chart is drawn into the `.plot` element of a <figure class="chart">; the figure gets
// data-state ("empty" | "ready" | "error") and data-points (values drawn), and every series a
// <g class="series" data-series=... data-count=... data-last-t=... data-last-v=...>, so the
// page can be inspected (and tested) without reading pixels. Values are shown on hover (<title>)
// and summarised in the SVG's aria-label.

const SVG = "http://www.w3.org/2000/svg";
const MIN_WIDTH = 260;
const HEIGHT = 220;
const MARGIN = { top: 10, right: 14, bottom: 26, left: 58 };
const MAX_MARKERS = 150;
const MAX_BAND = 48;
const MINUTE = 60_000;
const HOUR = 3_600_000;
const DAY = 86_400_000;
const TIME_STEPS = [
  MINUTE, 2 * MINUTE, 5 * MINUTE, 10 * MINUTE, 15 * MINUTE, 30 * MINUTE,
  HOUR, 2 * HOUR, 3 * HOUR, 6 * HOUR, 12 * HOUR,
  DAY, 2 * DAY, 7 * DAY, 14 * DAY, 30 * DAY, 91 * DAY, 365 * DAY,
];

const numberFormat = new Intl.NumberFormat(undefined, { maximumSignificantDigits: 4 });

export function fmtNum(v) {
  if (v === null || v === undefined || Number.isNaN(v)) return "–";
  return numberFormat.format(v);
}

function pad2(n) {
  return String(n).padStart(2, "0");
}

export function fmtTime(ms, withDate = true, withSeconds = false) {
  const d = new Date(ms);
  const time = `${pad2(d.getHours())}:${pad2(d.getMinutes())}` + (withSeconds ? `:${pad2(d.getSeconds())}` : "");
  return withDate ? `${d.getFullYear()}-${pad2(d.getMonth() + 1)}-${pad2(d.getDate())} ${time}` : time;
}

export function fmtAge(seconds) {
  if (seconds === null || seconds === undefined) return "–";
  if (seconds < 90) return `${seconds.toFixed(seconds < 10 ? 1 : 0)} s ago`;
  if (seconds < 5400) return `${Math.round(seconds / 60)} min ago`;
  if (seconds < 172800) return `${Math.round(seconds / 3600)} h ago`;
  return `${Math.round(seconds / 86400)} days ago`;
}

function node(name, attrs = {}, parent = null, text = null) {
  const el = document.createElementNS(SVG, name);
  for (const [k, v] of Object.entries(attrs)) el.setAttribute(k, String(v));
  if (text !== null) el.textContent = text;
  if (parent) parent.appendChild(el);
  return el;
}

function niceStep(span, target) {
  const raw = span / Math.max(1, target);
  const power = 10 ** Math.floor(Math.log10(raw));
  const f = raw / power;
  return (f <= 1 ? 1 : f <= 2 ? 2 : f <= 5 ? 5 : 10) * power;
}

function valueAxis(values, includeZero) {
  let lo = Math.min(...values);
  let hi = Math.max(...values);
  if (includeZero) {
    lo = Math.min(lo, 0);
    hi = Math.max(hi, 0);
  }
  if (lo === hi) {
    const pad = Math.abs(lo) * 0.1 || 1;
    lo -= pad;
    hi += pad;
  }
  const step = niceStep(hi - lo, 5);
  lo = Math.floor(lo / step) * step;
  hi = Math.ceil(hi / step) * step;
  const ticks = [];
  for (let v = lo; v <= hi + step / 2; v += step) ticks.push(Math.abs(v) < step / 1e6 ? 0 : v);
  return { lo, hi, ticks };
}

function timeTicks(t0, t1, target) {
  const span = t1 - t0;
  const step = TIME_STEPS.find((s) => span / s <= target) ?? TIME_STEPS[TIME_STEPS.length - 1];
  // Align to local time (the offset of the range's start; DST inside a range shifts labels by
  // an hour at most).
  const offset = -new Date(t0).getTimezoneOffset() * MINUTE;
  const first = Math.ceil((t0 + offset) / step) * step - offset;
  const ticks = [];
  for (let t = first; t <= t1; t += step) ticks.push(t);
  const withDate = span > DAY || step >= DAY;
  const label = (t) => {
    if (step >= DAY) return fmtTime(t, true).slice(5, 10);
    return withDate ? fmtTime(t, true).slice(5) : fmtTime(t, false);
  };
  return { ticks, label };
}

/** The drawing width: the plot's width in CSS pixels, so text keeps its size at any width. */
function widthOf(plot) {
  return Math.max(MIN_WIDTH, Math.round(plot.clientWidth || 640));
}

function frame(plot, width, ariaLabel) {
  plot.replaceChildren();
  const svg = node("svg", {
    viewBox: `0 0 ${width} ${HEIGHT}`,
    role: "img",
    "aria-label": ariaLabel,
    preserveAspectRatio: "xMidYMid meet",
  });
  plot.appendChild(svg);
  return svg;
}

function drawValueAxis(svg, width, axis, y) {
  const g = node("g", { class: "axis axis-y" }, svg);
  for (const v of axis.ticks) {
    const py = y(v);
    node("line", { class: "gridline", x1: MARGIN.left, x2: width - MARGIN.right, y1: py, y2: py }, g);
    node("text", { x: MARGIN.left - 6, y: py + 4, "text-anchor": "end" }, g, fmtNum(v));
  }
  if (axis.lo < 0 && axis.hi > 0) {
    node("line", { class: "zero", x1: MARGIN.left, x2: width - MARGIN.right, y1: y(0), y2: y(0) }, g);
  }
}

function legend(plot, names, box = false) {
  const ul = document.createElement("ul");
  ul.className = "legend";
  names.forEach((name, i) => {
    const li = document.createElement("li");
    li.className = `c${i % 6}`;
    const sw = document.createElement("span");
    sw.className = box ? "swatch box" : "swatch";
    sw.setAttribute("aria-hidden", "true");
    const label = document.createElement("span");
    label.className = "legend-label";
    label.textContent = name;
    li.append(sw, label);
    ul.appendChild(li);
  });
  plot.appendChild(ul);
}

export function renderEmpty(figure, message) {
  const plot = figure.querySelector(".plot");
  plot.replaceChildren();
  const p = document.createElement("p");
  p.className = "empty";
  p.textContent = message;
  plot.appendChild(p);
  figure.dataset.state = "empty";
  figure.dataset.points = "0";
}

export function renderError(figure, error) {
  const plot = figure.querySelector(".plot");
  plot.replaceChildren();
  const p = document.createElement("p");
  p.className = "empty error";
  p.textContent = `Could not load: ${error.message ?? error}`;
  plot.appendChild(p);
  figure.dataset.state = "error";
}

/**
 * Lines over time.
 * series: [{name, points: [[t_ms, value|null], ...]}]
 * options: {stepMs (gaps longer than 1.5 steps break the line), unit, label, includeZero,
 *           domain: [t0_ms, t1_ms] (default: the data's), emptyMessage}
 */
export function renderLineChart(figure, series, options = {}) {
  const { stepMs = 0, unit = "", label = "", includeZero = false, emptyMessage = "No data yet." } = options;
  const valid = series.map((s) => ({
    name: s.name,
    points: s.points
      .filter(([t, v]) => Number.isFinite(t) && v !== null && v !== undefined && Number.isFinite(v))
      .sort((a, b) => a[0] - b[0]),
  }));
  const all = valid.flatMap((s) => s.points);
  if (all.length === 0) {
    renderEmpty(figure, emptyMessage);
    return;
  }
  let [t0, t1] = options.domain ?? [Math.min(...all.map((p) => p[0])), Math.max(...all.map((p) => p[0]))];
  if (t1 <= t0) {
    t0 -= stepMs || HOUR;
    t1 += stepMs || HOUR;
  }
  const axis = valueAxis(all.map((p) => p[1]), includeZero);
  const plot = figure.querySelector(".plot");
  const width = widthOf(plot);
  const x = (t) => MARGIN.left + ((t - t0) / (t1 - t0)) * (width - MARGIN.left - MARGIN.right);
  const y = (v) => HEIGHT - MARGIN.bottom - ((v - axis.lo) / (axis.hi - axis.lo)) * (HEIGHT - MARGIN.top - MARGIN.bottom);

  const latest = valid
    .filter((s) => s.points.length)
    .map((s) => `${s.name} ${fmtNum(s.points[s.points.length - 1][1])} ${unit}`);
  const svg = frame(plot, width, `${label}: ${all.length} values from ${fmtTime(t0)} to ${fmtTime(t1)}; latest ${latest.join(", ")}`);
  drawValueAxis(svg, width, axis, y);
  const xa = node("g", { class: "axis axis-x" }, svg);
  const tt = timeTicks(t0, t1, Math.max(2, Math.floor((width - MARGIN.left) / 90)));
  node("line", { x1: MARGIN.left, x2: width - MARGIN.right, y1: HEIGHT - MARGIN.bottom, y2: HEIGHT - MARGIN.bottom }, xa);
  for (const t of tt.ticks) {
    node("line", { x1: x(t), x2: x(t), y1: HEIGHT - MARGIN.bottom, y2: HEIGHT - MARGIN.bottom + 4 }, xa);
    node("text", { x: x(t), y: HEIGHT - MARGIN.bottom + 16, "text-anchor": "middle" }, xa, tt.label(t));
  }

  valid.forEach((s, i) => {
    const g = node("g", { class: `series c${i % 6}`, "data-series": s.name, "data-count": s.points.length }, svg);
    if (s.points.length) {
      const [lt, lv] = s.points[s.points.length - 1];
      g.setAttribute("data-last-t", new Date(lt).toISOString());
      g.setAttribute("data-last-v", String(lv));
    }
    let d = "";
    let prev = null;
    for (const [t, v] of s.points) {
      const gap = prev === null || (stepMs > 0 && t - prev > 1.5 * stepMs);
      d += `${gap ? "M" : "L"}${x(t).toFixed(1)},${y(v).toFixed(1)}`;
      prev = t;
    }
    node("path", { d, "stroke-dasharray": i % 2 ? "6 3" : "none" }, g);
    if (s.points.length <= MAX_MARKERS) {
      for (const [t, v] of s.points) {
        const c = node("circle", { cx: x(t).toFixed(1), cy: y(v).toFixed(1), r: 2.5, "data-t": new Date(t).toISOString(), "data-v": v }, g);
        node("title", {}, c, `${s.name} ${fmtTime(t)}: ${fmtNum(v)} ${unit}`);
      }
    }
  });
  legend(plot, valid.map((s) => s.name));
  figure.dataset.state = "ready";
  figure.dataset.points = String(all.length);
}

/**
 * Stacked bars, one per period (ordinal: periods without data are not drawn).
 * periods: [{t: ms, values: [number|null per stack], total: number|null}]
 * options: {stacks: [names], unit, label, labelFor(t) -> string, emptyMessage}
 */
export function renderBarChart(figure, periods, options = {}) {
  const { stacks = [], unit = "", label = "", emptyMessage = "No data yet." } = options;
  const labelFor = options.labelFor ?? ((t) => fmtTime(t));
  const rows = periods.filter((p) => p.values.some((v) => v !== null && Number.isFinite(v)));
  if (rows.length === 0) {
    renderEmpty(figure, emptyMessage);
    return;
  }
  const sums = rows.map((p) => p.values.reduce((a, v) => a + (Number.isFinite(v) ? v : 0), 0));
  const axis = valueAxis(sums, true);
  const plot = figure.querySelector(".plot");
  const width = widthOf(plot);
  // Bars at most MAX_BAND wide, the newest at the right edge (few periods do not fill the plot).
  const band = Math.min(MAX_BAND, (width - MARGIN.left - MARGIN.right) / rows.length);
  const x0 = width - MARGIN.right - band * rows.length;
  const y = (v) => HEIGHT - MARGIN.bottom - ((v - axis.lo) / (axis.hi - axis.lo)) * (HEIGHT - MARGIN.top - MARGIN.bottom);
  const last = rows[rows.length - 1];
  const svg = frame(plot, width, `${label}: ${rows.length} periods; latest ${labelFor(last.t)} ${fmtNum(sums[sums.length - 1])} ${unit}`);
  drawValueAxis(svg, width, axis, y);
  const xa = node("g", { class: "axis axis-x" }, svg);
  node("line", { x1: MARGIN.left, x2: width - MARGIN.right, y1: y(0), y2: y(0) }, xa);
  const every = Math.max(1, Math.ceil(rows.length / Math.max(2, Math.floor((width - MARGIN.left) / 70))));
  const g = node("g", { class: "bars", "data-count": rows.length }, svg);
  rows.forEach((p, i) => {
    const left = x0 + i * band + band * 0.1;
    const width = Math.max(1, band * 0.8);
    const bar = node("g", { class: "bar-group", "data-t": new Date(p.t).toISOString(), "data-total": p.total ?? sums[i] }, g);
    let base = 0;
    p.values.forEach((v, k) => {
      if (!Number.isFinite(v) || v === 0) return;
      const top = base + v;
      node("rect", {
        class: `bar c${k % 6}`,
        x: left.toFixed(1),
        width: width.toFixed(1),
        y: Math.min(y(top), y(base)).toFixed(1),
        height: Math.max(0.5, Math.abs(y(base) - y(top))).toFixed(1),
        "data-stack": stacks[k] ?? String(k),
        "data-v": v,
      }, bar);
      base = top;
    });
    const parts = stacks.map((s, k) => `${s} ${fmtNum(p.values[k])}`).join(", ");
    node("title", {}, bar, `${labelFor(p.t)}: ${fmtNum(sums[i])} ${unit} (${parts})`);
    if (i % every === 0) {
      node("text", { x: (left + width / 2).toFixed(1), y: HEIGHT - MARGIN.bottom + 16, "text-anchor": "middle" }, xa, labelFor(p.t));
    }
  });
  legend(plot, stacks, true);
  figure.dataset.state = "ready";
  figure.dataset.points = String(rows.length);
}
