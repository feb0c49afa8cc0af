// API tokens (organization admins), as SquadOS describes them: generate one (the full token is
// shown once, with a copy button), list them with prefix, status, created, last used and calls,
// revoke (the record stays) or delete (it goes).

import { api, session } from '../api.js';
import { badge, confirmDialog, copyField, fill, h, say, when } from '../dom.js';

export function render(main) {
  const rows = h('tbody', {});
  const notice = h('p', { class: 'notice', hidden: true, role: 'alert' });
  const generated = h('div', {});
  const form = generateForm();
  let alive = true;

  main.append(
    h('div', { class: 'page-head' },
      h('h1', { text: 'API tokens' }),
      h('p', { class: 'muted', text: 'Organization tokens for server-to-server integrations. Make one per integration, so each can be revoked alone.' })),
    h('section', { class: 'panel', 'aria-labelledby': 'gen-h' },
      h('h2', { id: 'gen-h', text: 'Generate a token' }),
      generated,
      form),
    h('section', { class: 'panel', 'aria-labelledby': 'list-h' },
      h('h2', { id: 'list-h', text: 'Tokens' }),
      notice,
      h('div', { class: 'table-wrap' },
        h('table', { class: 'table tokens' },
          h('thead', {}, h('tr', {},
            ['Name', 'Prefix', 'Role', 'Status', 'Created', 'Last used', 'Calls', 'Actions']
              .map((t) => h('th', { scope: 'col', text: t })))),
          rows))),
    h('p', { class: 'small muted' },
      'Send a token as ', h('code', { text: 'Authorization: Bearer pk_…' }), '. The API is described by the ',
      h('a', { href: '/api/v1/openapi.json', target: '_blank', rel: 'noopener', text: 'OpenAPI spec' }), '.'));

  load();

  async function load() {
    try {
      const tokens = await api.tokens();
      if (!alive) return;
      fill(rows, tokens.length ? tokens.map(row) : h('tr', {}, h('td', { colSpan: 8, class: 'empty', text: 'No tokens.' })));
    } catch (err) {
      if (err.status === 403) {
        say(notice, 'Only organization admins can see and manage API tokens.', 'error');
        form.hidden = true;
      } else say(notice, err, 'error');
    }
  }

  /** Whether `token` (a listed record) is the one this tab is signed in with. */
  function isMine(token) {
    const prefix = token.prefix.replace(/\.\.\.$/, '');
    return !!prefix && (session.token || '').startsWith(prefix);
  }

  function row(t) {
    const mine = isMine(t);
    const active = t.status === 'active';
    return h('tr', { dataset: { tokenId: t.id, status: t.status } },
      h('td', { dataset: { label: 'Name' } },
        h('span', {}, t.name, mine ? h('span', { class: 'small muted', text: ' (you are signed in with it)' }) : null)),
      h('td', { dataset: { label: 'Prefix' } }, h('span', { class: 'mono', text: t.prefix })),
      h('td', { dataset: { label: 'Role' }, text: t.role }),
      h('td', { dataset: { label: 'Status' } }, badge(t.status)),
      h('td', { dataset: { label: 'Created' }, text: when(t.created_at, false) }),
      h('td', { dataset: { label: 'Last used' }, text: when(t.last_used_at) }),
      h('td', { dataset: { label: 'Calls' }, class: 'num', text: String(t.calls) }),
      h('td', { dataset: { label: 'Actions' }, class: 'actions-cell' }, h('div', { class: 'row-actions' },
        active ? h('button', {
          type: 'button', class: 'button', text: 'Revoke', 'aria-label': `Revoke ${t.name}`,
          on: { click: () => act(t, 'revoke', mine) },
        }) : null,
        h('button', {
          type: 'button', class: 'button button-danger', text: 'Delete', 'aria-label': `Delete ${t.name}`,
          on: { click: () => act(t, 'delete', mine) },
        }))));
  }

  async function act(t, action, mine) {
    const warning = mine ? ' This is the token you are signed in with: the dashboard will sign you out.' : '';
    const question = action === 'revoke'
      ? `Revoke “${t.name}”? It stops working at once and cannot be reactivated; its record and call history stay.${warning}`
      : `Delete “${t.name}” and its record?${warning}`;
    if (!(await confirmDialog(question, action === 'revoke' ? 'Revoke token' : 'Delete token'))) return;
    try {
      if (action === 'revoke') await api.revokeToken(t.id);
      else await api.deleteToken(t.id);
      say(notice, action === 'revoke' ? `“${t.name}” was revoked.` : `“${t.name}” was deleted.`);
      load();
    } catch (err) {
      say(notice, err, 'error');
    }
  }

  function generateForm() {
    const formNotice = h('p', { class: 'notice', hidden: true });
    const f = h('form', { class: 'inline-form', on: { submit } },
      h('div', { class: 'field grow' }, h('label', { for: 'token-name', text: 'Token name' }),
        h('input', { id: 'token-name', name: 'name', required: true, maxLength: 100, placeholder: 'e.g. Marketing site integration', autocomplete: 'off' })),
      h('div', { class: 'field' }, h('label', { for: 'token-role', text: 'Role' }),
        h('select', { id: 'token-role', name: 'role' },
          h('option', { value: 'member', text: 'Member' }), h('option', { value: 'admin', text: 'Admin' }))),
      h('button', { type: 'submit', class: 'button button-primary', text: 'Generate token' }),
      formNotice);
    async function submit(e) {
      e.preventDefault();
      try {
        const created = await api.createToken({ name: f.elements.name.value.trim(), role: f.elements.role.value });
        f.reset();
        say(formNotice, '');
        showGenerated(created);
        load();
      } catch (err) {
        say(formNotice, err, 'error');
      }
    }
    return f;
  }

  function showGenerated(created) {
    fill(generated, h('div', { class: 'alert alert-warning', role: 'alert' },
      h('h3', { text: `Token “${created.name}” generated` }),
      h('p', {}, h('strong', { text: 'This token will be shown only once.' }),
        ' Copy it now and keep it somewhere safe (a secret manager or an environment variable).'),
      copyField(created.token, 'Your new token'),
      h('button', { type: 'button', class: 'button', text: 'Done', on: { click: () => fill(generated) } })));
    generated.querySelector('input').focus();
  }

  return () => {
    alive = false;
  };
}
