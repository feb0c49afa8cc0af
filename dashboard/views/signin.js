// Sign-in: an organization token, checked against the server before it is kept (in
// sessionStorage, so it lives as long as this tab).

import { api } from '../api.js';
import { h, say } from '../dom.js';

export function render(main, { message, onSignedIn }) {
  const notice = h('p', { class: 'notice', hidden: true });
  const input = h('input', {
    id: 'token',
    name: 'token',
    type: 'password',
    required: true,
    autocomplete: 'off',
    spellcheck: false,
    class: 'mono',
    placeholder: 'pk_… or msq-…',
    'aria-describedby': 'token-help',
  });
  const button = h('button', { type: 'submit', class: 'button button-primary', text: 'Sign in' });
  const form = h('form', { class: 'panel signin', on: { submit } },
    h('h1', { text: 'Sign in to Squadron' }),
    h('p', { id: 'token-help', class: 'muted' },
      'Paste an organization API token. It is kept for this browser tab only and forgotten when the tab closes. ',
      'An admin can make one with ', h('code', { text: 'squadron token create' }), '.'),
    h('label', { for: 'token', text: 'Organization token' }),
    input,
    h('div', { class: 'actions' }, button),
    notice);
  main.append(form);
  if (message) say(notice, message, 'error');
  input.focus();

  async function submit(e) {
    e.preventDefault();
    const token = input.value.trim();
    if (!token) return;
    button.disabled = true;
    say(notice, 'Checking the token…');
    try {
      await api.squads({ token });
      onSignedIn(token);
    } catch (err) {
      say(notice, err.status === 401
        ? 'The server refused this token: it is invalid, revoked or deleted.'
        : err.status === 403
          ? 'This is a squad key; the dashboard needs an organization token.'
          : `Could not sign in: ${err.message}`, 'error');
      button.disabled = false;
      input.focus();
    }
  }
}
