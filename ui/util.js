// Small DOM and formatting helpers shared by the views.

/** `h('div.card', {onclick}, child, ...)`: an element with classes, attributes and children. */
export function h(tag, attrs = {}, ...children) {
  const [name, ...classes] = tag.split('.');
  const el = document.createElement(name);
  if (classes.length) el.className = classes.join(' ');
  for (const [key, value] of Object.entries(attrs ?? {})) {
    if (value === undefined || value === null || value === false) continue;
    if (key.startsWith('on') && typeof value === 'function') el.addEventListener(key.slice(2), value);
    else if (key === 'text') el.textContent = value;
    else if (value === true) el.setAttribute(key, '');
    else el.setAttribute(key, value);
  }
  for (const child of children.flat()) {
    if (child === null || child === undefined || child === false) continue;
    el.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return el;
}

const SVG = 'http://www.w3.org/2000/svg';
export function svg(tag, attrs = {}, ...children) {
  const el = document.createElementNS(SVG, tag);
  for (const [key, value] of Object.entries(attrs)) el.setAttribute(key, value);
  for (const child of children.flat()) if (child) el.append(child);
  return el;
}

export function toast(message, kind = 'info') {
  const box = document.getElementById('toasts');
  const item = h(`div.toast.${kind}`, { role: kind === 'error' ? 'alert' : 'status' }, message);
  box.append(item);
  setTimeout(() => item.remove(), kind === 'error' ? 8000 : 3000);
}

export async function copy(text, what = 'Copied') {
  try {
    await navigator.clipboard.writeText(text);
    toast(`${what} to the clipboard`);
  } catch {
    // Clipboard access can be refused (no secure context, no permission): select instead.
    const area = h('textarea', {}, text);
    document.body.append(area);
    area.select();
    const ok = document.execCommand?.('copy');
    area.remove();
    toast(ok ? `${what} to the clipboard` : 'Copying is not allowed here; select the text instead', ok ? 'info' : 'error');
  }
}

export function copyButton(getText, label = 'Copy', what) {
  return h('button.small', { type: 'button', onclick: () => copy(getText(), what) }, label);
}

export function codeBlock(text, what = 'Copied') {
  return h('div.codeblock', {}, h('pre', {}, h('code', {}, text)), copyButton(() => text, 'Copy', what));
}

export function formatTime(ms) {
  const date = new Date(ms);
  const today = new Date();
  const sameDay = date.toDateString() === today.toDateString();
  const time = date.toLocaleTimeString([], { hour: '2-digit', minute: '2-digit', second: '2-digit' });
  return sameDay ? time : `${date.toLocaleDateString([], { month: 'short', day: 'numeric' })} ${time}`;
}

export function formatMs(ms) {
  if (ms === null || ms === undefined) return '–';
  if (ms < 10) return `${ms.toFixed(1)} ms`;
  if (ms < 1000) return `${Math.round(ms)} ms`;
  return `${(ms / 1000).toFixed(2)} s`;
}

export function formatNumber(n, digits = 0) {
  if (n === null || n === undefined || Number.isNaN(n)) return '–';
  return Number(n).toLocaleString([], { maximumFractionDigits: digits });
}

export function formatPercent(rate) {
  if (rate === null || rate === undefined) return '–';
  return `${(rate * 100).toFixed(rate > 0 && rate < 0.01 ? 2 : 1)}%`;
}

/** Pretty JSON when the text is JSON, the text itself otherwise. */
export function pretty(text) {
  if (text === null || text === undefined) return '';
  // The API serves a body that is JSON as JSON, and any other as text.
  if (typeof text !== 'string') return JSON.stringify(text, null, 2);
  try {
    return JSON.stringify(JSON.parse(text), null, 2);
  } catch {
    return text;
  }
}

export function mask(token) {
  if (!token) return '';
  return token.length <= 14 ? '•'.repeat(token.length) : `${token.slice(0, 10)}${'•'.repeat(12)}${token.slice(-4)}`;
}
