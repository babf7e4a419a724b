// API calls: a live table with filters and cursor paging, and a detail drawer per call.

import { api } from '../api.js';
import { state, subscribe } from '../store.js';
import { codeBlock, formatMs, formatNumber, formatTime, h, pretty, toast } from '../util.js';
import { snippets } from './overview.js';

const PAGE = 50;

function statusCell(status) {
  return h(`td.status.s${String(status)[0]}`, {}, String(status));
}

function tokens(call) {
  if (!call.usage) return '–';
  const total = formatNumber(call.usage.totalTokens);
  return call.usageSource === 'estimated' ? `~${total}` : total;
}

function matches(call, filters) {
  if (filters.model && call.model !== filters.model) return false;
  if (filters.status && String(call.status)[0] !== filters.status[0]) return false;
  if (filters.q) {
    const needle = filters.q.toLowerCase();
    const haystack = [call.path, call.model, call.error].filter(Boolean).join(' ').toLowerCase();
    // Bodies are not in the live summary: a live call that might match waits for a reload.
    if (!haystack.includes(needle)) return false;
  }
  return true;
}

async function openDetail(id, returnFocus) {
  const scrim = h('div.scrim');
  const drawer = h('aside.drawer', { role: 'dialog', 'aria-modal': 'true', 'aria-label': 'API call detail', tabindex: '-1' });
  const close = () => {
    scrim.remove();
    drawer.remove();
    document.removeEventListener('keydown', onKey);
    returnFocus?.focus();
  };
  const onKey = (event) => {
    if (event.key === 'Escape') close();
  };
  scrim.addEventListener('click', close);
  document.addEventListener('keydown', onKey);
  drawer.append(h('p', {}, 'Loading…'));
  document.body.append(scrim, drawer);
  drawer.focus();
  let call;
  try {
    call = await api.call(id);
  } catch (err) {
    drawer.replaceChildren(h('p.error', {}, err.message), h('button', { type: 'button', onclick: close }, 'Close'));
    return;
  }
  const section = (title, ...content) => h('section', {}, h('h3', {}, title), ...content);
  const usage = call.usage
    ? `${formatNumber(call.usage.promptTokens)} prompt + ${formatNumber(call.usage.completionTokens)} completion = ${formatNumber(call.usage.totalTokens)} (${call.usageSource})`
    : 'unknown';
  drawer.replaceChildren(...[
    h('header', {},
      h('h2', {}, `${call.method} ${call.path}`),
      h('button', { type: 'button', onclick: close, 'aria-label': 'Close detail' }, 'Close')),
    h('dl.kv', {},
      h('dt', {}, 'Status'), h('dd', {}, h(`span.status.s${String(call.status)[0]}`, {}, String(call.status))),
      h('dt', {}, 'Time'), h('dd', {}, new Date(call.time).toLocaleString()),
      h('dt', {}, 'Model'), h('dd.mono', {}, call.model ?? '–'),
      h('dt', {}, 'Stream'), h('dd', {}, call.stream ? `yes${call.chunkCount ? `, ${call.chunkCount} chunks` : ''}` : 'no'),
      h('dt', {}, 'Latency'), h('dd', {}, `${formatMs(call.latencyMs)} total · ${formatMs(call.ttfbMs)} to first byte · ${formatMs(call.upstreamMs)} at the target`),
      h('dt', {}, 'Tokens'), h('dd', {}, usage),
      h('dt', {}, 'Client'), h('dd', {}, call.client ?? '–')),
    call.error ? section('Error', h('p.error', {}, call.error)) : null,
    call.normalization ? section('Normalization', codeBlock(JSON.stringify(call.normalization, null, 2))) : null,
    section('Request body', call.requestBody ? codeBlock(pretty(call.requestBody), 'Request copied') : h('p.lede', {}, 'Not recorded (no body, or LOG_BODIES=false).')),
    section(call.stream ? 'Response (assembled from the stream)' : 'Response body',
      call.responseBody ? codeBlock(pretty(call.responseBody), 'Response copied') : h('p.lede', {}, 'Not recorded.')),
    section('Request headers (credentials redacted)', codeBlock(JSON.stringify(call.requestHeaders, null, 2), 'Headers copied')),
  ].filter(Boolean));
}

export function render(main) {
  const filters = { model: '', status: '', q: '' };
  let cursors = [null];
  let page = 0;
  let rows = [];
  let nextCursor = null;
  let loading = false;

  const tbody = h('tbody');
  const table = h('div.table-wrap', {}, h('table', {},
    h('thead', {}, h('tr', {},
      h('th', {}, 'Time'), h('th', {}, 'Model'), h('th', {}, 'Status'), h('th.num', {}, 'Latency'),
      h('th.num.hide-narrow', {}, 'Tokens'), h('th.hide-narrow', {}, 'Stream'), h('th.hide-narrow', {}, 'Path'))),
    tbody));
  const empty = h('div.empty');
  const pager = h('div.pager');
  const modelSelect = h('select', { 'aria-label': 'Filter by model' });
  const statusSelect = h('select', { 'aria-label': 'Filter by status' },
    h('option', { value: '' }, 'All statuses'), h('option', { value: '2xx' }, '2xx success'),
    h('option', { value: '4xx' }, '4xx client errors'), h('option', { value: '5xx' }, '5xx target errors'));
  const search = h('input', { type: 'search', placeholder: 'Search path, model, bodies…', 'aria-label': 'Search calls' });

  const row = (call, fresh = false) => {
    const tr = h(`tr.clickable${fresh ? '.fresh' : ''}`, { tabindex: '0', 'data-id': call.id },
      h('td', {}, formatTime(call.time)),
      h('td.mono', {}, call.model ?? '–'),
      statusCell(call.status),
      h('td.num', {}, formatMs(call.latencyMs)),
      h('td.num.hide-narrow', {}, tokens(call)),
      h('td.hide-narrow', {}, call.stream ? 'stream' : ''),
      h('td.mono.hide-narrow', {}, call.path));
    const open = () => openDetail(call.id, tr);
    tr.addEventListener('click', open);
    tr.addEventListener('keydown', (event) => {
      if (event.key === 'Enter' || event.key === ' ') {
        event.preventDefault();
        open();
      }
    });
    return tr;
  };

  const drawRows = () => {
    tbody.replaceChildren(...rows.map((call) => row(call)));
    const filtered = filters.model || filters.status || filters.q;
    empty.hidden = rows.length > 0;
    if (!rows.length) {
      const base = state.config?.apiBaseUrl ?? 'http://localhost:3000/v1';
      empty.replaceChildren(filtered
        ? h('div', {}, h('h2', {}, 'No calls match these filters'), h('p', {}, 'Clear the filters to see every call.'))
        : h('div', {}, h('h2', {}, 'No calls yet'), h('p', {}, 'Point a tool at the proxy, or try this; the call appears here at once.'),
          codeBlock(snippets(base, state.token ?? '<your-access-token>')[0][1], 'curl command copied')));
    }
    table.hidden = rows.length === 0;
    pager.replaceChildren(
      h('span', {}, rows.length ? `Page ${page + 1}` : ''),
      h('button.small', { type: 'button', disabled: page === 0, onclick: () => go(page - 1) }, 'Newer'),
      h('button.small', { type: 'button', disabled: !nextCursor, onclick: () => go(page + 1) }, 'Older'));
  };

  let pendingLive = [];
  const addLive = (call) => {
    if (page !== 0 || !matches(call, filters) || rows.some((r) => r.id === call.id)) return;
    if (rows.length && call.id < rows[0].id) return;
    rows = [call, ...rows].slice(0, PAGE);
    if (rows.length === PAGE) nextCursor = rows[rows.length - 1].id;
    tbody.prepend(row(call, true));
    while (tbody.children.length > PAGE) tbody.lastChild.remove();
    if (rows.length === 1) drawRows();
  };

  const load = async () => {
    loading = true;
    try {
      const result = await api.calls({ limit: PAGE, cursor: cursors[page], model: filters.model, status: filters.status, q: filters.q });
      rows = result.data;
      nextCursor = result.nextCursor;
      cursors[page + 1] = nextCursor;
      drawRows();
    } catch (err) {
      toast(err.message, 'error');
    } finally {
      loading = false;
      const held = pendingLive.sort((a, b) => a.id - b.id);
      pendingLive = [];
      for (const call of held) addLive(call);
    }
  };

  const go = (target) => {
    page = Math.max(0, target);
    load();
  };

  const reset = () => {
    cursors = [null];
    page = 0;
    load();
  };

  const fillModels = () => {
    const models = new Set((state.stats?.models ?? []).map((m) => m.model).filter((m) => m !== '(none)'));
    if (filters.model) models.add(filters.model);
    const current = filters.model;
    modelSelect.replaceChildren(h('option', { value: '' }, 'All models'),
      ...[...models].sort().map((m) => h('option', { value: m, selected: m === current }, m)));
  };

  modelSelect.addEventListener('change', () => { filters.model = modelSelect.value; reset(); });
  statusSelect.addEventListener('change', () => { filters.status = statusSelect.value; reset(); });
  let debounce;
  search.addEventListener('input', () => {
    clearTimeout(debounce);
    debounce = setTimeout(() => { filters.q = search.value.trim(); reset(); }, 250);
  });

  const clear = h('button.danger', {
    type: 'button',
    onclick: async () => {
      if (!confirm('Delete every recorded API call and server event?')) return;
      try {
        await api.clearLogs();
        toast('Logs cleared');
        reset();
      } catch (err) {
        toast(err.message, 'error');
      }
    },
  }, 'Clear logs');

  main.append(
    h('div.toolbar', {}, h('h1', {}, 'API calls'), h('span.spacer'), modelSelect, statusSelect, search, clear),
    empty, table, pager);
  fillModels();
  reset();

  return subscribe((_, patch) => {
    if ('stats' in patch) fillModels();
    if ('cleared' in patch) reset();
    if ('lastCall' in patch) {
      // A call that arrives while a page loads may or may not be in that page: hold it and
      // add it after, once, so it is neither lost nor shown twice.
      if (loading) pendingLive.push(patch.lastCall);
      else addLive(patch.lastCall);
    }
  });
}
