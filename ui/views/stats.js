// Live stats: rates, latency and errors over a chosen window, per-minute charts and models.

import { api } from '../api.js';
import { set, state, subscribe } from '../store.js';
import { formatMs, formatNumber, formatPercent, h, svg, toast } from '../util.js';

const WINDOWS = [['1m', 'Last minute'], ['15m', '15 minutes'], ['1h', 'Hour'], ['24h', '24 hours']];

/** A bar chart of `values` (with `errors` stacked in the error colour) as SVG. */
function barChart(series, label) {
  const width = 600;
  const height = 160;
  const max = Math.max(1, ...series.map((p) => p.requests));
  const step = width / series.length;
  const bars = series.flatMap((point, i) => {
    const total = (point.requests / max) * (height - 20);
    const errors = (point.errors / max) * (height - 20);
    return [
      svg('rect', { class: 'bar', x: i * step + 1, y: height - total, width: Math.max(1, step - 2), height: total }),
      errors > 0 ? svg('rect', { class: 'bar err', x: i * step + 1, y: height - errors, width: Math.max(1, step - 2), height: errors }) : null,
    ];
  });
  return svg('svg', { class: 'chart', viewBox: `0 0 ${width} ${height}`, preserveAspectRatio: 'none', role: 'img', 'aria-label': label },
    svg('line', { class: 'axis', x1: 0, y1: height - 0.5, x2: width, y2: height - 0.5 }),
    svg('text', { x: 4, y: 12 }, document.createTextNode(`max ${max}/min`)),
    bars);
}

function lineChart(series, label) {
  const width = 600;
  const height = 160;
  const values = series.flatMap((p) => [p.p50Ms, p.p95Ms]).filter((v) => v !== null);
  const max = Math.max(1, ...values);
  const step = width / Math.max(1, series.length - 1);
  const path = (key) => series
    .map((p, i) => (p[key] === null ? null : `${i * step},${height - (p[key] / max) * (height - 20)}`))
    .filter(Boolean)
    .map((xy, i) => `${i ? 'L' : 'M'}${xy}`)
    .join(' ');
  return svg('svg', { class: 'chart', viewBox: `0 0 ${width} ${height}`, preserveAspectRatio: 'none', role: 'img', 'aria-label': label },
    svg('line', { class: 'axis', x1: 0, y1: height - 0.5, x2: width, y2: height - 0.5 }),
    svg('text', { x: 4, y: 12 }, document.createTextNode(`max ${formatMs(max)}`)),
    path('p50Ms') ? svg('path', { class: 'line', d: path('p50Ms') }) : null,
    path('p95Ms') ? svg('path', { class: 'line p95', d: path('p95Ms') }) : null,
    // Dots too, so a minute with traffic between two quiet ones still shows.
    series.flatMap((p, i) => ['p50Ms', 'p95Ms'].map((key) => (p[key] === null ? null
      : svg('circle', { class: `dot ${key === 'p95Ms' ? 'p95' : ''}`, cx: i * step, cy: height - (p[key] / max) * (height - 20), r: 3 })))));
}

export function render(main) {
  let windowName = '15m';
  const root = h('div');
  main.append(root);

  const draw = () => {
    const stats = state.stats;
    if (!stats) {
      root.replaceChildren(h('h1', {}, 'Stats'), h('p.lede', {}, 'Loading…'));
      return;
    }
    const w = stats.windows[windowName];
    const metric = (value, label) => h('div.card.metric', {}, h('div.value', {}, value), h('div.label', {}, label));
    const selector = h('div.segmented', { role: 'group', 'aria-label': 'Window' },
      WINDOWS.map(([key, name]) => h('button', { type: 'button', 'aria-pressed': String(key === windowName), onclick: () => { windowName = key; draw(); } }, name)));
    const models = stats.models.length
      ? h('div.table-wrap', {}, h('table', {},
        h('thead', {}, h('tr', {}, h('th', {}, 'Model'), h('th.num', {}, 'Requests'), h('th.num', {}, 'Errors'), h('th.num', {}, 'Prompt tokens'), h('th.num', {}, 'Completion tokens'))),
        h('tbody', {}, stats.models.map((m) => h('tr', {},
          h('td.mono', {}, m.model), h('td.num', {}, formatNumber(m.requests)), h('td.num', {}, formatNumber(m.errors)),
          h('td.num', {}, formatNumber(m.promptTokens)), h('td.num', {}, formatNumber(m.completionTokens)))))))
      : h('p.lede', {}, 'No calls in the last 24 hours.');
    root.replaceChildren(
      h('div.toolbar', {}, h('h1', {}, 'Stats'), h('span.spacer'), selector),
      h('div.grid.metrics', {},
        metric(formatNumber(w.requestsPerMinute, 1), 'requests per minute'),
        metric(formatNumber(w.tokensPerMinute, 0), 'tokens per minute'),
        metric(formatMs(w.latencyMs.p50), 'latency p50'),
        metric(formatMs(w.latencyMs.p95), 'latency p95'),
        metric(formatPercent(w.errorRate), `error rate (${formatNumber(w.errors)} of ${formatNumber(w.requests)})`)),
      h('div.grid', {},
        h('section.card', {}, h('h3', {}, 'Requests per minute, last hour'),
          h('div.legend', {}, h('span', {}, 'requests'), h('span.err', {}, 'errors')),
          barChart(stats.series, 'Requests per minute over the last hour')),
        h('section.card', {}, h('h3', {}, 'Latency, last hour'),
          h('div.legend', {}, h('span', {}, 'p50'), h('span.p95', {}, 'p95')),
          lineChart(stats.series, 'Latency p50 and p95 per minute over the last hour'))),
      h('section', {}, h('h2', {}, 'Models, last 24 hours'), models),
      h('p.lede', {}, `Since start: ${formatNumber(stats.totals.requests)} requests, ${formatNumber(stats.totals.promptTokens + stats.totals.completionTokens)} tokens.`),
    );
  };
  draw();
  // The live feed sends stats every few seconds; fetch now so the view opens current.
  api.stats().then((stats) => set({ stats })).catch((err) => toast(err.message, 'error'));
  return subscribe((_, patch) => {
    if ('stats' in patch) draw();
  });
}
