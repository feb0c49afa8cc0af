// The Kanban board: a column per task status. A card moves by HTML5 drag and drop onto another
// column, or with the "Move to" select on the card (the keyboard way); either calls `onMove`.

import { fill, h, label } from '../dom.js';

export const STATUSES = ['inbox', 'assigned', 'in_progress', 'review', 'done', 'blocked'];
const DRAG_TYPE = 'application/x-squadron-task';

/**
 * `onMove(taskId, status)` is called when a card is dropped or its select changes; the card is
 * moved at once, and `render` with the server's board puts things right afterwards.
 * `taskHref(id)` is the link that opens a task.
 */
export function createBoard({ onMove, taskHref }) {
  const columns = new Map();
  const el = h('div', { class: 'board' });
  for (const status of STATUSES) {
    const list = h('ol', { class: 'cards', 'aria-labelledby': `col-${status}` });
    const count = h('span', { class: 'count', text: '0' });
    const column = h('section', { class: 'column', dataset: { status } },
      h('h3', { id: `col-${status}` }, label(status), ' ', count),
      list);
    column.addEventListener('dragover', (e) => {
      if (!e.dataTransfer.types.includes(DRAG_TYPE)) return;
      e.preventDefault(); // allows the drop
      e.dataTransfer.dropEffect = 'move';
      column.classList.add('drop-target');
    });
    column.addEventListener('dragleave', (e) => {
      if (!column.contains(e.relatedTarget)) column.classList.remove('drop-target');
    });
    column.addEventListener('drop', (e) => {
      e.preventDefault();
      column.classList.remove('drop-target');
      const id = e.dataTransfer.getData(DRAG_TYPE);
      if (id) move(id, status);
    });
    columns.set(status, { column, list, count });
    el.append(column);
  }

  function move(taskId, status) {
    const card = el.querySelector(`[data-task-id="${CSS.escape(taskId)}"]`);
    if (!card || card.dataset.status === status) return;
    placeCard(card, status);
    onMove(taskId, status);
  }

  function placeCard(card, status) {
    card.dataset.status = status;
    card.querySelector('select').value = status;
    columns.get(status).list.append(card);
    recount();
  }

  function recount() {
    for (const { list, count } of columns.values()) count.textContent = String(list.children.length);
  }

  function card(task) {
    const selectId = `move-${task.id}`;
    const select = h('select', { id: selectId, class: 'move', title: 'Move to another column' },
      STATUSES.map((s) => h('option', { value: s, text: label(s), selected: s === task.status })));
    select.addEventListener('change', () => move(task.id, select.value));
    const item = h('li', { class: 'task-card', draggable: 'true', dataset: { taskId: task.id, status: task.status } },
      h('a', { class: 'task-title', href: taskHref(task.id), draggable: 'false', text: task.title }),
      h('div', { class: 'task-meta' },
        h('span', { class: `badge priority-${task.priority}`, text: label(task.priority) }),
        task.assignees?.length
          ? h('span', { class: 'assignees', text: task.assignees.map((a) => a.name).join(', ') })
          : h('span', { class: 'assignees muted', text: 'Unassigned' })),
      h('div', { class: 'move-row' },
        h('label', { for: selectId, class: 'visually-hidden', text: `Move “${task.title}” to` }), select));
    item.addEventListener('dragstart', (e) => {
      e.dataTransfer.setData(DRAG_TYPE, task.id);
      e.dataTransfer.setData('text/plain', task.title);
      e.dataTransfer.effectAllowed = 'move';
      item.classList.add('dragging');
    });
    item.addEventListener('dragend', () => {
      item.classList.remove('dragging');
      for (const { column } of columns.values()) column.classList.remove('drop-target');
    });
    return item;
  }

  /** Draws the board (`{status: [task...]}`), keeping keyboard focus where it was. */
  function render(board) {
    const active = document.activeElement;
    const focusedCard = el.contains(active) ? active.closest('[data-task-id]') : null;
    const refocus = focusedCard && { id: focusedCard.dataset.taskId, select: active.tagName === 'SELECT' };
    for (const status of STATUSES) {
      fill(columns.get(status).list, (board[status] || []).map(card));
    }
    recount();
    if (refocus) {
      const again = el.querySelector(`[data-task-id="${CSS.escape(refocus.id)}"] ${refocus.select ? 'select' : 'a'}`);
      again?.focus();
    }
  }

  return { el, render };
}
