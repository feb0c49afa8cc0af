// Small DOM helpers. Everything that shows data goes through `h` (text nodes, never HTML),
// so nothing a server or an agent sends can become markup.

/**
 * Creates an element. `attrs` may hold `class`, `text`, `on: {event: fn}`, `dataset: {}`,
 * boolean properties (`hidden`, `disabled`...) and plain attributes; children are nodes,
 * strings (made text nodes), or nested arrays; null/false children are skipped.
 */
export function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs)) {
    if (value === undefined || value === null || value === false) continue;
    if (key === 'class') el.className = value;
    else if (key === 'text') el.textContent = value;
    else if (key === 'on') for (const [event, fn] of Object.entries(value)) el.addEventListener(event, fn);
    else if (key === 'dataset') Object.assign(el.dataset, value);
    else if (key in el && typeof value !== 'string') el[key] = value;
    else el.setAttribute(key, value === true ? '' : String(value));
  }
  append(el, children);
  return el;
}

function append(el, children) {
  for (const child of children) {
    if (child === null || child === undefined || child === false) continue;
    if (Array.isArray(child)) append(el, child);
    else el.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
}

/** Replaces an element's children. */
export function fill(el, ...children) {
  el.replaceChildren();
  append(el, children);
  return el;
}

/**
 * Plain text of a server string that may hold sanitized HTML (comments are cleaned with
 * ammonia, so `<` arrives as `&lt;`). DOMParser builds an inert document: no scripts run,
 * nothing loads; only its text is kept.
 */
export function plain(html) {
  if (!html || !/[<&]/.test(html)) return html || '';
  return new DOMParser().parseFromString(html, 'text/html').body.textContent || '';
}

/** "12 s ago", "5 min ago"... for an ISO date or epoch seconds. */
export function ago(when) {
  const at = toDate(when);
  if (!at) return 'never';
  const secs = Math.max(0, Math.round((Date.now() - at.getTime()) / 1000));
  if (secs < 60) return `${secs} s ago`;
  if (secs < 3600) return `${Math.floor(secs / 60)} min ago`;
  if (secs < 86400) return `${Math.floor(secs / 3600)} h ago`;
  return `${Math.floor(secs / 86400)} d ago`;
}

export function toDate(when) {
  if (when === null || when === undefined || when === '') return null;
  const at = typeof when === 'number' ? new Date(when * 1000) : new Date(when);
  return Number.isNaN(at.getTime()) ? null : at;
}

/** A date for tables: local date and time, or "-" when absent. */
export function when(value, withTime = true) {
  const at = toDate(value);
  if (!at) return '-';
  return withTime ? at.toLocaleString() : at.toLocaleDateString();
}

/**
 * A <time> that keeps saying how long ago `at` was: the ticker in app.js refreshes every
 * element marked `data-ago` once a second.
 */
export function agoTime(at, prefix = '') {
  const date = toDate(at);
  return h('time', {
    dateTime: date ? date.toISOString() : '',
    title: date ? date.toLocaleString() : '',
    dataset: { ago: date ? date.toISOString() : '', prefix },
    text: prefix + ago(date),
  });
}

export function tickAges(root = document) {
  for (const el of root.querySelectorAll('[data-ago]')) {
    el.textContent = el.dataset.prefix + ago(el.dataset.ago || null);
  }
}

export function bytes(n) {
  if (n === null || n === undefined) return '-';
  if (n < 1024) return `${n} B`;
  if (n < 1024 * 1024) return `${(n / 1024).toFixed(1)} KB`;
  return `${(n / 1024 / 1024).toFixed(1)} MB`;
}

/** Words for an identifier: `in_progress` → "In progress". */
export function label(word) {
  const text = String(word || '').replace(/[_.]/g, ' ');
  return text.charAt(0).toUpperCase() + text.slice(1);
}

/** A read-only field with a Copy button, for secrets shown once. */
export function copyField(value, fieldLabel) {
  const id = `copy-${Math.random().toString(36).slice(2)}`;
  const input = h('input', { id, type: 'text', readOnly: true, value, class: 'mono', spellcheck: false });
  const status = h('span', { class: 'copy-status', role: 'status' });
  const button = h('button', {
    type: 'button',
    class: 'button',
    text: 'Copy',
    on: {
      click: async () => {
        let copied = false;
        try {
          await navigator.clipboard.writeText(value);
          copied = true;
        } catch {
          input.select();
          copied = document.execCommand?.('copy') ?? false;
        }
        status.textContent = copied ? 'Copied' : 'Select and copy it by hand';
      },
    },
  });
  return h('div', { class: 'copy-field' },
    h('label', { for: id, text: fieldLabel }),
    h('div', { class: 'copy-row' }, input, button),
    status);
}

/** A message line for a form: `say(el, 'text')`, `say(el, err, 'error')`. */
export function say(el, message, kind = 'info') {
  el.textContent = message instanceof Error ? message.message : message || '';
  el.className = `notice notice-${kind}`;
  el.hidden = !el.textContent;
}

/**
 * Asks for confirmation in a modal <dialog> (focus stays inside, Escape cancels).
 * Resolves true when the action is confirmed.
 */
export function confirmDialog(message, action) {
  return new Promise((resolve) => {
    const dialog = h('dialog', { class: 'dialog dialog-small', 'aria-label': action },
      h('form', { method: 'dialog' },
        h('p', { text: message }),
        h('div', { class: 'actions' },
          h('button', { value: 'cancel', class: 'button', text: 'Cancel' }),
          h('button', { value: 'ok', class: 'button button-danger', text: action }))));
    dialog.addEventListener('close', () => {
      resolve(dialog.returnValue === 'ok');
      dialog.remove();
    });
    document.body.append(dialog);
    dialog.showModal();
  });
}

/** A badge for a status word, colored by `status-<word>` in app.css. */
export function badge(word, text = label(word)) {
  return h('span', { class: `badge status-${String(word).replace(/[^a-z_-]/gi, '')}`, text });
}
