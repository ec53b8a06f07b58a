/**
 * One self-contained HTML page: uPlot's JS and CSS inlined, the series inlined as JSON, no network
 * references, so the file can be opened from disk or attached anywhere.
 */
import type { ReportSeries } from "./series.ts"
import type { RunLog } from "./run-log.ts"

export interface ChartAssets {
  readonly uplotJs: string
  readonly uplotCss: string
}

const escapeHtml = (s: string) =>
  s.replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;").replace(/"/g, "&quot;")

/** JSON that cannot close the surrounding <script> element. */
const scriptSafeJson = (value: unknown) => JSON.stringify(value).replace(/</g, "\\u003c")

/** Inline code must not contain "</script"; uPlot does not, but make sure whatever is inlined cannot break out. */
const scriptSafeCode = (code: string) => code.replace(/<\/script/gi, "<\\/script")

const fmt = (x: number | null | undefined, digits: number) => (x === null || x === undefined ? "–" : x.toFixed(digits))

const summaryRows = (log: RunLog, s: ReportSeries): Array<[string, string]> => {
  const losses = s.validatorLoss.filter((x): x is number => x !== null)
  const share = s.outsideComputePct.filter((x): x is number => x !== null)
  const sum = (xs: number[]) => xs.reduce((a, b) => a + b, 0)
  const rows: Array<[string, string]> = [
    ["windows", s.windows.length === 0 ? "0" : `${s.windows.length} (${s.windows[0]}–${s.windows[s.windows.length - 1]})`],
    ["peers seen", String(s.peers.length)],
    ["validator loss, first → last", losses.length === 0 ? "–" : `${fmt(losses[0], 4)} → ${fmt(losses[losses.length - 1], 4)}`],
    ["MiB sent / received", `${fmt(sum(s.mibUp), 2)} / ${fmt(sum(s.mibDown), 2)}`],
    ["mean share of active round outside compute", share.length === 0 ? "–" : `${fmt(sum(share) / share.length, 1)} %`],
  ]
  for (const [k, v] of Object.entries(log.meta ?? {})) rows.push([k, v])
  return rows
}

/** Browser side: builds one uPlot chart per metric from the inlined series. */
const CLIENT_SCRIPT = String.raw`
(function () {
  var s = JSON.parse(document.getElementById("report-data").textContent);
  var root = document.getElementById("charts");
  var palette = ["#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22", "#17becf"];
  var width = Math.max(480, Math.min(1100, root.clientWidth || 960));
  var count = 0;
  function anyValue(col) { for (var i = 0; i < col.length; i++) if (col[i] !== null) return true; return false; }
  function plot(id, title, yLabel, series, columns, yRange) {
    var box = document.createElement("section");
    box.className = "chart";
    box.id = id;
    root.appendChild(box);
    var opts = {
      title: title, width: width, height: 300,
      scales: { x: { time: false }, y: yRange ? { range: yRange } : {} },
      axes: [
        { label: "window", incrs: [1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 2000, 5000, 10000] },
        { label: yLabel, size: 70 }
      ],
      series: [{ label: "window" }].concat(series)
    };
    new uPlot(opts, [s.windows].concat(columns), box);
    count++;
  }
  if (s.windows.length > 0) {
    var lossSeries = s.peers.map(function (p, i) {
      return { label: "peer " + p, stroke: palette[i % palette.length], width: 1.25, spanGaps: false };
    });
    var lossCols = s.peerLoss.slice();
    if (anyValue(s.validatorLoss)) {
      lossSeries.push({ label: "validator (aggregate)", stroke: "#000", width: 3, spanGaps: true });
      lossCols.push(s.validatorLoss);
    }
    plot("chart-loss", "Loss per window", "loss", lossSeries, lossCols);
    plot("chart-bytes", "Bytes per window", "MiB",
      [{ label: "sent", stroke: "#d62728", width: 2 }, { label: "received", stroke: "#1f77b4", width: 2 }],
      [s.mibUp, s.mibDown], [0, null]);
    var peerSeries = [{ label: "delivered", stroke: "#2ca02c", width: 2, fill: "rgba(44,160,44,0.12)" }];
    var peerCols = [s.peersGathered];
    if (anyValue(s.peersExpected)) {
      peerSeries.push({ label: "expected", stroke: "#7f7f7f", width: 1.5, dash: [6, 4] });
      peerCols.push(s.peersExpected);
    }
    plot("chart-peers", "Peers delivered per window", "peers", peerSeries, peerCols, [0, null]);
    plot("chart-outside", "Share of active round time outside compute (idle wait excluded)", "%",
      [{ label: "outside compute", stroke: "#9467bd", width: 2, fill: "rgba(148,103,189,0.15)" }],
      [s.outsideComputePct], [0, 100]);
    plot("chart-phases", "Time per phase", "seconds",
      s.phases.map(function (name, i) { return { label: name, stroke: palette[i % palette.length], width: 1.75 }; }),
      s.phaseSeconds, [0, null]);
    if (s.peerWeight.some(anyValue)) {
      // One colour per behaviour: honest peers green, each adversary kind its own warm colour.
      var kinds = [];
      s.weightBehaviour.forEach(function (b) { if (b !== "honest" && kinds.indexOf(b) < 0) kinds.push(b); });
      var hostile = ["#d62728", "#ff7f0e", "#9467bd", "#8c564b", "#e377c2", "#bcbd22", "#17becf", "#7f7f7f", "#1f77b4"];
      var colourOf = function (b) { return b === "honest" ? "#2ca02c" : hostile[kinds.indexOf(b) % hostile.length]; };
      plot("chart-weights", "Weight per peer, coloured by behaviour", "weight",
        s.weightPeers.map(function (p, i) {
          var b = s.weightBehaviour[i];
          return { label: "peer " + p + " (" + b + ")", stroke: colourOf(b), width: b === "honest" ? 1.25 : 2.5, spanGaps: true, points: { show: true } };
        }),
        s.peerWeight, [0, null]);
    }
  } else {
    root.textContent = "No windows were recorded.";
  }
  document.body.setAttribute("data-charts", String(count));
})();
`

export const renderReportHtml = (log: RunLog, series: ReportSeries, assets: ChartAssets): string => {
  const rows = summaryRows(log, series)
    .map(([k, v]) => `<tr><th>${escapeHtml(k)}</th><td>${escapeHtml(v)}</td></tr>`)
    .join("\n")
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>${escapeHtml(log.title)}</title>
<style>${assets.uplotCss}</style>
<style>
body { font-family: system-ui, sans-serif; margin: 24px auto; max-width: 1140px; padding: 0 16px; color: #222; background: #fff; }
h1 { font-size: 22px; margin-bottom: 8px; }
table.summary { border-collapse: collapse; margin-bottom: 16px; }
table.summary th { text-align: left; font-weight: 600; padding: 2px 16px 2px 0; }
table.summary td { padding: 2px 0; font-variant-numeric: tabular-nums; }
section.chart { margin: 20px 0 28px; }
</style>
</head>
<body>
<h1>${escapeHtml(log.title)}</h1>
<table class="summary">
${rows}
</table>
<div id="charts"></div>
<script type="application/json" id="report-data">${scriptSafeJson(series)}</script>
<script>${scriptSafeCode(assets.uplotJs)}</script>
<script>${CLIENT_SCRIPT}</script>
</body>
</html>
`
}
