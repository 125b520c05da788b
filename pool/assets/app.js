// satpool's dashboard: reads the JSON API every few seconds and redraws.
// `/` shows the pool; `/address/{address}` one payout address.
(function () {
  "use strict";
  const POLL_MS = 5000;
  const COLORS = ["#f7931a", "#58a6ff", "#3fb950", "#d2a8ff", "#ff7b72", "#79c0ff", "#e3b341", "#56d4dd"];
  const state = { range: { pool: "1h", address: "1h" }, lastOk: 0, timer: null };
  const $ = (id) => document.getElementById(id);

  // ---- formatting -------------------------------------------------------
  function hashrate(v) {
    if (!isFinite(v) || v <= 0) return "0 H/s";
    const units = ["H/s", "kH/s", "MH/s", "GH/s", "TH/s", "PH/s", "EH/s", "ZH/s"];
    let i = 0;
    while (v >= 1000 && i < units.length - 1) { v /= 1000; i++; }
    return (v >= 100 ? v.toFixed(0) : v >= 10 ? v.toFixed(1) : v.toFixed(2)) + " " + units[i];
  }
  function hashrateParts(v) {
    const [n, u] = hashrate(v).split(" ");
    return n + "<small>" + u + "</small>";
  }
  function number(v, digits) {
    if (v === null || v === undefined || !isFinite(v)) return "—";
    if (Math.abs(v) >= 1e6) return v.toExponential(3);
    return v.toLocaleString(undefined, { maximumFractionDigits: digits === undefined ? 2 : digits });
  }
  function difficulty(v) {
    if (v === null || v === undefined) return "—";
    if (v >= 1e3) {
      const units = ["", "k", "M", "G", "T", "P", "E"];
      let i = 0;
      while (v >= 1000 && i < units.length - 1) { v /= 1000; i++; }
      return v.toFixed(2) + " " + units[i];
    }
    return v < 0.001 ? v.toExponential(3) : v.toFixed(4);
  }
  function btc(sats) {
    if (sats === null || sats === undefined) return "—";
    return (sats / 1e8).toLocaleString(undefined, { minimumFractionDigits: 8, maximumFractionDigits: 8 }) + " BTC";
  }
  // For the cards: small amounts in sat, others in BTC without trailing zeros.
  function btcParts(sats) {
    if (sats === null || sats === undefined) return "—";
    if (sats < 100000) return sats.toLocaleString() + "<small>sat</small>";
    return (sats / 1e8).toLocaleString(undefined, { maximumFractionDigits: sats >= 1e9 ? 4 : 6 }) + "<small>BTC</small>";
  }
  function ago(seconds, now) {
    if (!seconds) return "never";
    const d = Math.max(0, (now || Date.now() / 1000) - seconds);
    if (d < 60) return Math.floor(d) + " s ago";
    if (d < 3600) return Math.floor(d / 60) + " min ago";
    if (d < 86400) return Math.floor(d / 3600) + " h " + Math.floor((d % 3600) / 60) + " min ago";
    return Math.floor(d / 86400) + " d ago";
  }
  function percent(v) {
    if (v === null || v === undefined || !isFinite(v)) return "—";
    const p = v * 100;
    return (p >= 1e5 ? p.toExponential(2) : p.toFixed(1)) + " %";
  }
  function effortClass(v) {
    return v <= 1 ? "effort-good" : v <= 2 ? "effort-ok" : "effort-bad";
  }
  function short(text, keep) {
    keep = keep || 8;
    return text.length > keep * 2 + 1 ? text.slice(0, keep) + "…" + text.slice(-keep) : text;
  }
  function esc(text) {
    return String(text).replace(/[&<>"']/g, (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" })[c]);
  }
  function rate(rates, window) {
    const r = (rates || []).find((x) => x.window === window);
    return r ? r.hashes_per_second : 0;
  }

  // ---- building blocks ----------------------------------------------------
  function card(label, value, sub, extra) {
    return '<div class="card' + (extra && extra.accent ? " accent" : "") + '"><span class="label">' + label +
      '</span><span class="value">' + value + "</span>" + (sub ? '<span class="sub">' + sub + "</span>" : "") +
      (extra && extra.bar !== undefined ? '<div class="bar"><span style="width:' + Math.min(100, extra.bar * 100).toFixed(1) +
        "%;background:" + (extra.bar <= 1 ? "var(--good)" : extra.bar <= 2 ? "var(--warn)" : "var(--bad)") + '"></span></div>' : "") +
      "</div>";
  }
  function table(id, head, rows, empty) {
    const th = head.map((h) => '<th class="' + (h.num ? "num" : "") + '">' + h.label + "</th>").join("");
    const body = rows.length ? rows.join("") : '<tr><td class="empty" colspan="' + head.length + '">' + empty + "</td></tr>";
    $(id).innerHTML = "<thead><tr>" + th + "</tr></thead><tbody>" + body + "</tbody>";
  }
  function ranges(which, onChange) {
    const box = document.querySelector('.ranges[data-chart="' + which + '"]');
    box.innerHTML = ["1h", "24h", "7d"].map((r) => '<button type="button" data-range="' + r + '">' + r + "</button>").join("");
    const mark = () => box.querySelectorAll("button").forEach((b) => b.classList.toggle("on", b.dataset.range === state.range[which]));
    box.addEventListener("click", (event) => {
      const range = event.target.dataset && event.target.dataset.range;
      if (!range) return;
      state.range[which] = range;
      mark();
      onChange();
    });
    mark();
  }
  async function api(path) {
    const response = await fetch(path, { cache: "no-store" });
    if (!response.ok) throw new Error(path + ": " + response.status);
    return response.json();
  }
  function colored(series) {
    return series.map((s, i) => ({ name: s.name, color: COLORS[i % COLORS.length], points: s.points }));
  }

  // ---- the pool -----------------------------------------------------------
  function workerRows(workers, now, withAddress) {
    return workers.map((w) => {
      const name = w.worker || "(default)";
      const who = withAddress
        ? '<a class="mono" href="/address/' + encodeURIComponent(w.address) + '" title="' + esc(w.address) + '">' + esc(short(w.address)) + "</a> · " + esc(name)
        : esc(name);
      return "<tr><td><span class=\"dot " + (w.online ? "on" : "off") + '"></span>' + who + "</td>" +
        '<td class="num">' + hashrate(rate(w.hashrate, "1m")) + '</td><td class="num">' + hashrate(rate(w.hashrate, "1h")) +
        '</td><td class="num">' + hashrate(rate(w.hashrate, "24h")) + "</td>" +
        '<td class="num">' + number(w.shares.accepted, 0) + ' / <span class="rej">' + number(w.shares.rejected, 0) +
        '</span> / <span class="stale-n">' + number(w.shares.stale, 0) + "</span></td>" +
        '<td class="num">' + ago(w.last_share_at, now) + '</td><td class="num">' +
        (w.estimated_earnings_sats === null ? "—" : btc(w.estimated_earnings_sats)) + "</td></tr>";
    });
  }
  const WORKER_HEAD = [
    { label: "Worker" }, { label: "1 min", num: 1 }, { label: "1 h", num: 1 }, { label: "24 h", num: 1 },
    { label: "Acc / rej / stale", num: 1 }, { label: "Last share", num: 1 }, { label: "Est. earnings", num: 1 },
  ];

  async function drawPoolChart() {
    const chart = await api("/api/hashrate?range=" + state.range.pool);
    SatChart.draw($("pool-chart"), colored(chart.series), { format: hashrate });
  }

  async function refreshPool() {
    const [pool, workers, blocks] = await Promise.all([api("/api/pool"), api("/api/workers"), api("/api/blocks?limit=25")]);
    $("network").textContent = pool.network + " · " + pool.payout_mode;
    const net = pool.network_hashrate ? pool.network_hashrate.hashes_per_second : null;
    const share = net ? rate(pool.hashrate, "1h") / net : null;
    const effort = pool.round.effort;
    $("pool-cards").innerHTML = [
      card("Pool hashrate · 1 h", hashrateParts(rate(pool.hashrate, "1h")),
        "1 min " + hashrate(rate(pool.hashrate, "1m")) + " · 24 h " + hashrate(rate(pool.hashrate, "24h")), { accent: true }),
      card("Network hashrate", net === null ? "—" : hashrateParts(net), share === null ? "node unreachable" : "pool share " + percent(share)),
      card("Network difficulty", difficulty(pool.network_difficulty), "height " + (pool.height === null ? "—" : number(pool.height, 0))),
      card("Workers online", number(pool.workers_online, 0), number(pool.shares_per_second, 3) + " shares/s · last " + pool.activity_window_seconds / 60 + " min"),
      card("Round effort", effort === null || effort === undefined ? "—" : '<span class="' + effortClass(effort) + '">' + percent(effort) + "</span>",
        pool.round.started_at ? "since " + ago(pool.round.started_at, pool.now) : "no block found yet", { bar: effort || 0 }),
      card("Last block", pool.last_block ? "#" + number(pool.last_block.height, 0) : "—",
        pool.last_block ? ago(pool.last_block.found_at, pool.now) + " · " + pool.last_block.status : "none yet"),
    ].join("");
    const online = workers.workers.filter((w) => w.online).length;
    $("workers-note").textContent = workers.workers.length + " seen in 24 h · " + online + " online";
    table("workers-table", WORKER_HEAD, workerRows(workers.workers, workers.now, true), "No worker has submitted a share in the last 24 hours.");
    $("blocks-note").textContent = Object.entries(blocks.counts).map(([k, v]) => v + " " + k).join(" · ");
    table("blocks-table",
      [{ label: "Height" }, { label: "Status" }, { label: "Effort", num: 1 }, { label: "Reward", num: 1 }, { label: "Found", num: 1 }, { label: "Finder" }],
      blocks.blocks.map((b) => "<tr><td title=\"" + esc(b.hash) + '">' + number(b.height, 0) + ' <span class="muted mono">' + esc(short(b.hash, 6)) +
        '</span></td><td><span class="pill ' + esc(b.status) + '">' + esc(b.status) + "</span>" +
        (b.status === "pending" ? ' <span class="muted">' + Math.max(0, b.confirmations) + "/100</span>" : "") +
        '</td><td class="num ' + effortClass(b.effort) + '">' + percent(b.effort) + '</td><td class="num">' + btc(b.reward_sats) +
        '</td><td class="num">' + ago(b.found_at, pool.now) + '</td><td><a class="mono" href="/address/' + encodeURIComponent(b.finder_address) + '">' +
        esc(short(b.finder_address, 6)) + "</a>" + (b.finder_worker ? " · " + esc(b.finder_worker) : "") + "</td></tr>"),
      "No block found yet.");
    await drawPoolChart();
  }

  // ---- one address ----------------------------------------------------------
  async function drawAddressCharts(address) {
    const chart = await api("/api/hashrate?range=" + state.range.address + "&address=" + encodeURIComponent(address));
    const series = colored(chart.series);
    SatChart.draw($("address-chart"), series, { format: hashrate });
    $("address-legend").innerHTML = series.map((s) => '<span><i style="background:' + s.color + '"></i>' + esc(s.name) + "</span>").join("");
    const perWorker = series.slice(1);
    const box = $("worker-charts");
    if (box.children.length !== perWorker.length) {
      box.innerHTML = perWorker.map((s, i) => '<section class="panel"><div class="panel-head"><h2>' + esc(s.name) +
        '</h2><span class="muted" data-worker-rate="' + i + '"></span></div><div class="chart" data-worker-chart="' + i + '"></div></section>').join("");
    }
    perWorker.forEach((s, i) => {
      const latest = s.points.length ? s.points[s.points.length - 1][1] : 0;
      box.querySelector('[data-worker-rate="' + i + '"]').textContent = hashrate(latest);
      SatChart.draw(box.querySelector('[data-worker-chart="' + i + '"]'), [s], { format: hashrate, compact: true });
    });
  }

  async function refreshAddress(address) {
    const [info, pool] = await Promise.all([api("/api/workers/" + encodeURIComponent(address)), api("/api/pool")]);
    $("network").textContent = pool.network + " · " + pool.payout_mode;
    const online = info.workers.filter((w) => w.online).length;
    $("address-cards").innerHTML = [
      card("Hashrate · 1 h", hashrateParts(rate(info.hashrate, "1h")),
        "1 min " + hashrate(rate(info.hashrate, "1m")) + " · 24 h " + hashrate(rate(info.hashrate, "24h")), { accent: true }),
      card("Workers", online + "<small>/ " + info.workers.length + " online</small>", "seen in the last 24 h"),
      card("Estimated earnings", info.estimated_earnings_sats === null ? "—" : btcParts(info.estimated_earnings_sats), "if a block were found now (PPLNS)"),
      card("Paid · confirmed", btcParts(info.paid.confirmed_sats), "spendable coinbase outputs"),
      card("Paid · immature", btcParts(info.paid.pending_sats), "blocks under 100 confirmations"),
      card("Owed", btcParts(info.owed_sats), "carried to a later coinbase"),
    ].join("");
    table("address-workers", WORKER_HEAD, workerRows(info.workers, info.now, false), "No worker of this address has submitted a share in the last 24 hours.");
    table("address-payouts",
      [{ label: "Block" }, { label: "Status" }, { label: "Amount", num: 1 }, { label: "Found", num: 1 }],
      info.payouts.map((p) => '<tr><td title="' + esc(p.block_hash) + '">' + number(p.height, 0) + ' <span class="muted mono">' + esc(short(p.block_hash, 6)) +
        '</span></td><td><span class="pill ' + esc(p.status) + '">' + esc(p.status) + '</span></td><td class="num">' + btc(p.amount_sats) +
        '</td><td class="num">' + ago(p.found_at, info.now) + "</td></tr>"),
      "No payout yet.");
    await drawAddressCharts(address);
  }

  // ---- the loop -------------------------------------------------------------
  function setLive(ok, message) {
    const live = $("live");
    live.classList.toggle("ok", ok);
    live.classList.toggle("stale", !ok);
    $("updated").textContent = message;
    $("error").hidden = ok;
    if (!ok) $("error").textContent = "Cannot reach the pool's API: " + message + ". Retrying…";
  }

  function start() {
    const match = location.pathname.match(/^\/address\/([^/]+)\/?$/);
    const address = match ? decodeURIComponent(match[1]) : null;
    const refresh = address ? () => refreshAddress(address) : refreshPool;
    if (address) {
      $("address-view").hidden = false;
      $("address-title").textContent = address;
      $("lookup-address").value = address;
      document.title = "satpool · " + short(address);
      ranges("address", () => drawAddressCharts(address).catch(() => {}));
    } else {
      $("pool-view").hidden = false;
      ranges("pool", () => drawPoolChart().catch(() => {}));
    }
    $("lookup").addEventListener("submit", (event) => {
      event.preventDefault();
      const value = $("lookup-address").value.trim();
      if (value) location.href = "/address/" + encodeURIComponent(value);
    });
    async function tick() {
      try {
        await refresh();
        state.lastOk = Date.now();
        setLive(true, "live · " + new Date().toLocaleTimeString());
      } catch (error) {
        setLive(false, error.message || String(error));
      }
      state.timer = setTimeout(tick, POLL_MS);
    }
    let resizeTimer = null;
    window.addEventListener("resize", () => {
      clearTimeout(resizeTimer);
      resizeTimer = setTimeout(() => refresh().catch(() => {}), 200);
    });
    tick();
  }

  start();
})();
