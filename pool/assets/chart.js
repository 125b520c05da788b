// satpool's line chart: SVG, no dependencies. Part of satpool (MIT).
//
// SatChart.draw(element, series, options) replaces the element's content
// with a chart of `series`: [{name, color, points: [[unixSeconds, value], ...]}].
// The first series gets a soft area fill. Options: {format: v => text,
// compact: bool}. Hovering shows every series' value at that time.
(function () {
  "use strict";
  const NS = "http://www.w3.org/2000/svg";

  function el(name, attrs, parent) {
    const node = document.createElementNS(NS, name);
    for (const key in attrs) node.setAttribute(key, attrs[key]);
    if (parent) parent.appendChild(node);
    return node;
  }

  // Round steps (1, 2, 2.5, 5 × 10^n) giving about `count` ticks up to max.
  function niceTicks(max, count) {
    if (!(max > 0)) return [0, 1];
    const raw = max / count;
    const mag = Math.pow(10, Math.floor(Math.log10(raw)));
    const step = [1, 2, 2.5, 5, 10].map((m) => m * mag).find((s) => s >= raw);
    const ticks = [];
    for (let v = 0; v <= max + step * 0.001; v += step) ticks.push(v);
    if (ticks[ticks.length - 1] < max) ticks.push(ticks[ticks.length - 1] + step);
    return ticks;
  }

  function timeLabel(seconds, span) {
    const d = new Date(seconds * 1000);
    const hh = String(d.getHours()).padStart(2, "0");
    const mm = String(d.getMinutes()).padStart(2, "0");
    if (span <= 2 * 86400) return hh + ":" + mm;
    return d.toLocaleDateString(undefined, { month: "short", day: "numeric" });
  }

  function draw(container, series, options) {
    options = options || {};
    const format = options.format || ((v) => String(v));
    const compact = !!options.compact;
    const width = Math.max(container.clientWidth, 200);
    const height = Math.max(container.clientHeight, 100);
    const pad = { left: compact ? 8 : 64, right: 12, top: 10, bottom: compact ? 6 : 26 };
    container.textContent = "";
    const svg = el("svg", { viewBox: "0 0 " + width + " " + height, role: "img" }, container);
    const all = series.flatMap((s) => s.points);
    if (!all.length) {
      el("text", { x: width / 2, y: height / 2, "text-anchor": "middle", class: "empty" }, svg).textContent = "no data yet";
      return;
    }
    const x0 = Math.min(...all.map((p) => p[0]));
    const x1 = Math.max(...all.map((p) => p[0]));
    const max = Math.max(...all.map((p) => p[1]));
    const ticks = niceTicks(max, compact ? 2 : 4);
    const yMax = ticks[ticks.length - 1] || 1;
    const w = width - pad.left - pad.right;
    const h = height - pad.top - pad.bottom;
    const X = (t) => pad.left + (x1 === x0 ? w / 2 : ((t - x0) / (x1 - x0)) * w);
    const Y = (v) => pad.top + h - (v / yMax) * h;

    const grid = el("g", { class: "grid" }, svg);
    const axis = el("g", { class: "axis" }, svg);
    ticks.forEach((v) => {
      el("line", { x1: pad.left, x2: width - pad.right, y1: Y(v), y2: Y(v) }, grid);
      if (!compact) {
        el("text", { x: pad.left - 8, y: Y(v) + 4, "text-anchor": "end" }, axis).textContent = format(v);
      }
    });
    if (!compact) {
      const labels = Math.max(2, Math.min(8, Math.floor(w / 110)));
      for (let i = 0; i <= labels; i++) {
        const t = x0 + ((x1 - x0) * i) / labels;
        const anchor = i === 0 ? "start" : i === labels ? "end" : "middle";
        el("text", { x: X(t), y: height - 6, "text-anchor": anchor }, axis).textContent = timeLabel(t, x1 - x0);
      }
    }

    const defs = el("defs", {}, svg);
    series.forEach((s, index) => {
      if (!s.points.length) return;
      const line = s.points.map((p, i) => (i ? "L" : "M") + X(p[0]).toFixed(1) + "," + Y(p[1]).toFixed(1)).join("");
      if (index === 0) {
        const id = "fill-" + Math.random().toString(36).slice(2);
        const gradient = el("linearGradient", { id: id, x1: 0, x2: 0, y1: 0, y2: 1 }, defs);
        el("stop", { offset: "0%", "stop-color": s.color, "stop-opacity": 0.35 }, gradient);
        el("stop", { offset: "100%", "stop-color": s.color, "stop-opacity": 0.02 }, gradient);
        const last = s.points[s.points.length - 1];
        const area = line + "L" + X(last[0]).toFixed(1) + "," + Y(0) + "L" + X(s.points[0][0]).toFixed(1) + "," + Y(0) + "Z";
        el("path", { d: area, fill: "url(#" + id + ")", stroke: "none", class: "area" }, svg);
      }
      el("path", {
        d: line, fill: "none", stroke: s.color, "stroke-width": index === 0 ? 2.2 : 1.6,
        "stroke-linejoin": "round", "stroke-linecap": "round", class: "line", "data-series": s.name,
      }, svg);
    });

    // Hover: a guide line and every series' value at the nearest bucket.
    const guide = el("line", { y1: pad.top, y2: pad.top + h, stroke: "#8b98a9", "stroke-dasharray": "3 3", visibility: "hidden" }, svg);
    const tip = document.createElement("div");
    tip.className = "tip";
    container.appendChild(tip);
    const times = series[0].points.map((p) => p[0]);
    svg.addEventListener("mousemove", (event) => {
      const box = svg.getBoundingClientRect();
      const px = ((event.clientX - box.left) / box.width) * width;
      const t = x0 + ((px - pad.left) / w) * (x1 - x0);
      let best = 0;
      times.forEach((time, i) => { if (Math.abs(time - t) < Math.abs(times[best] - t)) best = i; });
      const at = times[best];
      if (at === undefined) return;
      guide.setAttribute("x1", X(at));
      guide.setAttribute("x2", X(at));
      guide.setAttribute("visibility", "visible");
      const when = new Date(at * 1000).toLocaleString(undefined, { month: "short", day: "numeric", hour: "2-digit", minute: "2-digit" });
      tip.innerHTML = "";
      const head = document.createElement("div");
      head.className = "muted";
      head.textContent = when;
      tip.appendChild(head);
      series.forEach((s) => {
        const point = s.points.find((p) => p[0] === at);
        if (!point) return;
        const row = document.createElement("div");
        row.innerHTML = '<span style="color:' + s.color + '">●</span> ' + s.name + ": <b></b>";
        row.querySelector("b").textContent = format(point[1]);
        tip.appendChild(row);
      });
      tip.style.display = "block";
      tip.style.left = (X(at) / width) * 100 + "%";
      tip.style.top = (Y(Math.max(...series.map((s) => (s.points[best] || [0, 0])[1]))) / height) * 100 + "%";
    });
    svg.addEventListener("mouseleave", () => {
      guide.setAttribute("visibility", "hidden");
      tip.style.display = "none";
    });
  }

  window.SatChart = { draw: draw, niceTicks: niceTicks };
})();
