// Streams: agents' chat completions appearing token by token while they run, from every
// watched squad, and a form to ask a gateway agent something (its answer streams in here,
// through the same live events any other caller's would).

import { api } from '../api.js';
import { fill, h, label, say } from '../dom.js';

/** One completion: who, how it stands, and its text so far. */
export function renderCompletion(item, note) {
  const el = h('article', { class: 'completion', dataset: { completionId: item.id } },
    h('div', { class: 'completion-head' },
      h('strong', { text: item.agent?.name || 'An agent' }),
      h('span', { class: 'badge' }),
      h('span', { class: 'small muted usage' }),
      h('span', { class: 'small muted where' })),
    h('p', { class: 'completion-text' }));
  return refreshCompletion(el, item, note);
}

/** Brings a drawn completion up to date in place (its text keeps growing where it is). */
export function refreshCompletion(el, item, note) {
  const running = item.state === 'running';
  el.className = `completion state-${item.state}`;
  const status = el.querySelector('.badge');
  status.className = `badge status-${running ? 'running' : item.outcome}`;
  status.textContent = running ? 'Streaming…' : label(item.outcome);
  el.querySelector('.usage').textContent = item.usage?.completion_tokens ? `${item.usage.completion_tokens} tokens` : '';
  el.querySelector('.completion-text').textContent = item.text || '…';
  if (note) el.querySelector('.where').textContent = note;
  return el;
}

/**
 * Shows `items` (newest first) in `container`, reusing what is drawn; `note(item)` may add a
 * word (the squad's name). `empty` is shown when there are none.
 */
export function drawCompletions(container, items, empty, note = () => null) {
  if (!items.length) {
    fill(container, h('p', { class: 'empty', text: empty }));
    return;
  }
  const drawn = new Map([...container.querySelectorAll('[data-completion-id]')].map((el) => [el.dataset.completionId, el]));
  fill(container, items.map((item) => {
    const el = drawn.get(item.id);
    return el ? refreshCompletion(el, item, note(item)) : renderCompletion(item, note(item));
  }));
}

export function render(main, _params, ctx) {
  const list = h('div', { class: 'streams' });
  const agentSelect = h('select', { id: 'ask-agent', name: 'agent', required: true });
  const message = h('textarea', { id: 'ask-message', name: 'message', rows: 2, required: true });
  const notice = h('p', { class: 'notice', hidden: true });
  const send = h('button', { type: 'submit', class: 'button button-primary', text: 'Send' });
  const squadNames = new Map();
  let controller = null;

  main.append(
    h('div', { class: 'page-head' },
      h('h1', { text: 'Streams' }),
      h('p', { class: 'muted', text: 'Chat completions of your agents, token by token while they run. Completions from any client appear here.' })),
    h('div', { class: 'two-col' },
      h('section', { 'aria-labelledby': 'streams-h' },
        h('h2', { id: 'streams-h', class: 'visually-hidden', text: 'Completions' }),
        list),
      h('section', { class: 'panel', 'aria-labelledby': 'ask-h' },
        h('h2', { id: 'ask-h', text: 'Ask an agent' }),
        h('form', { class: 'stack', on: { submit } },
          h('div', { class: 'field' }, h('label', { for: 'ask-agent', text: 'Agent' }), agentSelect),
          h('div', { class: 'field' }, h('label', { for: 'ask-message', text: 'Message' }), message),
          h('div', { class: 'actions' }, send),
          notice))));

  const stop = ctx.completions.on((item) => {
    const el = list.querySelector(`[data-completion-id="${CSS.escape(item.id)}"]`);
    if (el) refreshCompletion(el, item);
    else draw();
  });
  draw();
  load();

  function draw() {
    drawCompletions(list, ctx.completions.list(),
      'No completions since you opened the dashboard. Ask an agent, or call /v1/chat/completions with an agent’s name as the model.',
      (item) => (squadNames.has(item.squadId) ? `in ${squadNames.get(item.squadId)}` : null));
  }

  async function load() {
    try {
      // Gateway agents live in the organization's default squad: watch every squad.
      const [squads, agents] = await Promise.all([ctx.watchAll(), api.gatewayAgents()]);
      for (const s of squads) squadNames.set(s.id, s.name);
      fill(agentSelect, agents.data.length
        ? agents.data.map((a) => h('option', { value: a.name, text: a.model ? `${a.name} (${a.model})` : a.name }))
        : h('option', { value: '', text: 'No gateway agents yet' }));
      send.disabled = !agents.data.length;
      draw();
    } catch (err) {
      say(notice, err, 'error');
    }
  }

  async function submit(e) {
    e.preventDefault();
    const content = message.value.trim();
    if (!content || !agentSelect.value) return;
    controller?.abort();
    controller = new AbortController();
    say(notice, 'Sent; the answer streams in on the left.');
    try {
      const res = await api.chat({
        model: agentSelect.value,
        stream: true,
        messages: [{ role: 'user', content }],
      }, controller.signal);
      if (!res.ok) {
        const body = await res.json().catch(() => ({}));
        throw new Error(body.error?.message || `the server answered ${res.status}`);
      }
      // The tokens are shown from live events; reading the body to its end lets it run.
      const reader = res.body.getReader();
      while (!(await reader.read()).done);
      message.value = '';
      say(notice, '');
    } catch (err) {
      if (err.name !== 'AbortError') say(notice, `Could not chat: ${err.message}`, 'error');
    }
  }

  // A question still streaming goes on when the view is left: its answer is the agent's.
  return stop;
}
