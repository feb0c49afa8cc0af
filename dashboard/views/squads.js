// Squads: the organization's list, and a form that creates one with its agents' specs. The
// reply's setup URL (it carries a one-time token for the agent runner) is shown once, with a
// copy button.

import { api } from '../api.js';
import { agoTime, copyField, fill, h, say, when } from '../dom.js';

export function render(main, _params, ctx) {
  const list = h('ul', { class: 'squad-list', 'aria-busy': 'true' });
  const listNotice = h('p', { class: 'notice', hidden: true });
  const created = h('div', { class: 'created-result' });
  const form = squadForm(onCreated);

  main.append(
    h('div', { class: 'page-head' },
      h('h1', { text: 'Squads' }),
      h('p', { class: 'muted', text: 'Squads of agents coordinating on tasks. Open one to watch it live.' })),
    h('div', { class: 'two-col' },
      h('section', { 'aria-labelledby': 'squads-h' },
        h('h2', { id: 'squads-h', class: 'visually-hidden', text: 'All squads' }),
        listNotice, list),
      h('section', { class: 'panel', 'aria-labelledby': 'new-squad-h' },
        h('h2', { id: 'new-squad-h', text: 'New squad' }),
        created, form)));

  let alive = true;
  load();

  async function load() {
    try {
      const squads = await api.squads();
      if (!alive) return;
      list.removeAttribute('aria-busy');
      if (!squads.length) {
        fill(list, h('li', { class: 'empty', text: 'No squads yet. Create the first one with the form.' }));
        return;
      }
      fill(list, squads.map((s) => h('li', { class: 'card squad-card' },
        h('h3', {}, h('a', { href: `#/squads/${encodeURIComponent(s.id)}`, text: s.name })),
        s.description ? h('p', { text: s.description }) : null,
        h('p', { class: 'muted small' }, 'Created ', agoTime(s.created_at)))));
    } catch (err) {
      say(listNotice, err, 'error');
    }
  }

  function onCreated(squad) {
    fill(created, h('div', { class: 'alert alert-warning', role: 'alert' },
      h('h3', {}, 'Squad ', h('a', { href: `#/squads/${encodeURIComponent(squad.id)}`, text: squad.name }), ' created'),
      h('p', { text: 'Give this setup URL to the agent runner. It holds a one-time token and is shown only this once.' }),
      copyField(squad.setup_url, 'Setup URL'),
      h('p', { class: 'small muted', text: `Valid once, until ${when(squad.setup_expires_at)}.` }),
      h('button', { type: 'button', class: 'button', text: 'Done', on: { click: () => fill(created) } })));
    created.querySelector('input').focus();
    load();
    ctx.watchAll().catch(() => {});
  }

  return () => {
    alive = false;
  };
}

/** The create form: the squad's name, description and workflow, and one row per agent. */
function squadForm(onCreated) {
  const rows = h('div', { class: 'agent-rows' });
  const notice = h('p', { class: 'notice', hidden: true });
  let next = 0;

  function addRow(focus = true) {
    const n = next++;
    const field = (name, text, attrs) => {
      const id = `agent-${n}-${name}`;
      return h('div', { class: 'field' }, h('label', { for: id, text }), h('input', { id, name, ...attrs }));
    };
    const row = h('fieldset', { class: 'agent-row' },
      h('legend', { class: 'visually-hidden', text: `Agent ${n + 1}` }),
      field('name', 'Agent name', { required: true, pattern: '[A-Za-z][A-Za-z0-9_-]{0,31}', autocomplete: 'off', title: 'A letter, then letters, digits, _ or - (at most 32)' }),
      field('role', 'Role', { autocomplete: 'off', placeholder: 'e.g. Researcher' }),
      field('interval', 'Heartbeat (s)', { type: 'number', min: 1, max: 86400, placeholder: '60', inputmode: 'numeric' }),
      h('button', {
        type: 'button',
        class: 'button button-quiet remove',
        text: 'Remove',
        'aria-label': `Remove agent ${n + 1}`,
        on: { click: () => { row.remove(); rows.querySelector('input')?.focus(); } },
      }));
    rows.append(row);
    if (focus) row.querySelector('input').focus();
  }
  addRow(false);

  const form = h('form', { class: 'stack', on: { submit } },
    h('div', { class: 'field' }, h('label', { for: 'squad-name', text: 'Name' }),
      h('input', { id: 'squad-name', name: 'squad-name', required: true, maxLength: 100, autocomplete: 'off' })),
    h('div', { class: 'field' }, h('label', { for: 'squad-desc', text: 'Description (optional)' }),
      h('input', { id: 'squad-desc', name: 'squad-desc', autocomplete: 'off' })),
    h('div', { class: 'field' }, h('label', { for: 'squad-workflow', text: 'Workflow (optional)' }),
      h('textarea', { id: 'squad-workflow', name: 'squad-workflow', rows: 2 })),
    h('h3', { text: 'Agents' }),
    rows,
    h('div', { class: 'actions' },
      h('button', { type: 'button', class: 'button', text: 'Add an agent', on: { click: () => addRow() } }),
      h('button', { type: 'submit', class: 'button button-primary', text: 'Create squad' })),
    notice);

  async function submit(e) {
    e.preventDefault();
    const agents = [...rows.querySelectorAll('.agent-row')].map((row) => {
      const value = (name) => row.querySelector(`[name=${name}]`).value.trim();
      const spec = { name: value('name') };
      if (value('role')) spec.role = value('role');
      if (value('interval')) spec.heartbeat_interval_secs = Number(value('interval'));
      return spec;
    });
    const body = { name: form.elements['squad-name'].value.trim(), agents };
    const description = form.elements['squad-desc'].value.trim();
    const workflow = form.elements['squad-workflow'].value.trim();
    if (description) body.description = description;
    if (workflow) body.workflow = workflow;
    const button = form.querySelector('[type=submit]');
    button.disabled = true;
    say(notice, 'Creating…');
    try {
      const squad = await api.createSquad(body);
      form.reset();
      fill(rows);
      addRow(false);
      say(notice, '');
      onCreated(squad);
    } catch (err) {
      say(notice, err, 'error');
    } finally {
      button.disabled = false;
    }
  }

  return form;
}
