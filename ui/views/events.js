// Server events: startup, token refreshes, target errors, log store problems; live and filterable.

import { api } from '../api.js';
import { subscribe } from '../store.js';
import { formatTime, h, toast } from '../util.js';

const LEVELS = ['debug', 'info', 'warn', 'error'];

export function render(main) {
  let level = 'info';
  let events = [];
  const tbody = h('tbody');
  const table = h('div.table-wrap', {}, h('table', {},
    h('thead', {}, h('tr', {}, h('th', {}, 'Time'), h('th', {}, 'Level'), h('th', {}, 'Message'))), tbody));
  const empty = h('div.empty', {}, h('h2', {}, 'No events at this level'), h('p', {}, 'Choose a lower level to see more.'));

  const row = (event) => h('tr', {},
    h('td', {}, formatTime(event.time)),
    h('td', {}, h(`span.badge.${event.level}`, {}, event.level)),
    h('td.message', {}, event.message));

  const draw = () => {
    tbody.replaceChildren(...events.map(row));
    table.hidden = events.length === 0;
    empty.hidden = events.length > 0;
  };

  const load = async () => {
    try {
      events = (await api.events({ limit: 500, level })).data;
      draw();
    } catch (err) {
      toast(err.message, 'error');
    }
  };

  const select = h('select', { 'aria-label': 'Lowest level shown' },
    LEVELS.map((l) => h('option', { value: l, selected: l === level }, `${l} and above`)));
  select.addEventListener('change', () => { level = select.value; load(); });

  main.append(h('div.toolbar', {}, h('h1', {}, 'Server events'), h('span.spacer'), select), empty, table);
  load();
  return subscribe((_, patch) => {
    if ('lastEvent' in patch && LEVELS.indexOf(patch.lastEvent.level) >= LEVELS.indexOf(level)) {
      events = [patch.lastEvent, ...events].slice(0, 500);
      draw();
    }
    if ('cleared' in patch) load();
  });
}
