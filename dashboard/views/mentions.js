// @mention completion for a textarea: typing `@` and the start of a name lists the squad's
// agents (and `all`); arrows choose, Enter or Tab takes one, Escape closes the list.

import { fill, h } from '../dom.js';

let lists = 0;

/** Attaches completion to `textarea`; `names()` gives the agent names. Returns the listbox. */
export function attachMentions(textarea, names) {
  const id = `mentions-${++lists}`;
  const listbox = h('ul', { id, role: 'listbox', class: 'mentions', hidden: true, 'aria-label': 'Agents to mention' });
  textarea.setAttribute('aria-autocomplete', 'list');
  textarea.setAttribute('aria-controls', id);
  let matches = [];
  let active = 0;
  let query = null;

  const open = () => !listbox.hidden;

  function close() {
    listbox.hidden = true;
    matches = [];
    query = null;
    textarea.removeAttribute('aria-activedescendant');
  }

  /** The `@partial` just before the caret, if the caret is in one. */
  function partial() {
    const before = textarea.value.slice(0, textarea.selectionStart);
    const found = /(?:^|[^A-Za-z0-9_-])@([A-Za-z0-9_-]*)$/.exec(before);
    return found ? found[1] : null;
  }

  function update() {
    query = partial();
    if (query === null) return close();
    const wanted = query.toLowerCase();
    matches = [...names(), 'all'].filter((n) => n.toLowerCase().startsWith(wanted)).slice(0, 8);
    if (!matches.length) return close();
    active = Math.min(active, matches.length - 1);
    draw();
    listbox.hidden = false;
  }

  function draw() {
    fill(listbox, matches.map((name, i) => h('li', {
      id: `${id}-${i}`,
      role: 'option',
      'aria-selected': String(i === active),
      class: i === active ? 'active' : '',
      text: name === 'all' ? '@all (everyone in the squad)' : `@${name}`,
      on: {
        mousedown: (e) => e.preventDefault(), // keep the caret in the textarea
        click: () => accept(i),
      },
    })));
    textarea.setAttribute('aria-activedescendant', `${id}-${active}`);
  }

  function accept(i) {
    const name = matches[i];
    const caret = textarea.selectionStart;
    const start = caret - query.length;
    const after = textarea.value.slice(caret);
    const insert = after.startsWith(' ') ? name : `${name} `;
    textarea.value = textarea.value.slice(0, start) + insert + after;
    const at = start + insert.length + (after.startsWith(' ') ? 1 : 0);
    textarea.setSelectionRange(at, at);
    close();
    textarea.focus();
  }

  textarea.addEventListener('input', () => { active = 0; update(); });
  textarea.addEventListener('click', update);
  textarea.addEventListener('blur', close);
  textarea.addEventListener('keydown', (e) => {
    if (!open()) return;
    if (e.key === 'ArrowDown' || e.key === 'ArrowUp') {
      e.preventDefault();
      active = (active + (e.key === 'ArrowDown' ? 1 : matches.length - 1)) % matches.length;
      draw();
    } else if (e.key === 'Enter' || e.key === 'Tab') {
      e.preventDefault();
      accept(active);
    } else if (e.key === 'Escape') {
      // Inside a dialog, Escape would close it: while the list is open it closes the list only.
      e.preventDefault();
      e.stopPropagation();
      close();
    }
  });
  textarea.addEventListener('keyup', (e) => {
    if (['ArrowLeft', 'ArrowRight', 'Home', 'End'].includes(e.key)) update();
  });

  return { listbox, isOpen: open, close };
}
