// A task's detail, in a modal dialog: its status, assignees and description, its comment thread
// (live), a composer with @mention completion, and the notifications the task caused.

import { api } from '../api.js';
import { agoTime, badge, fill, h, label, plain, say } from '../dom.js';
import { attachMentions } from './mentions.js';

/**
 * Opens task `taskId` of `squadId`. `agentNames()` feeds the mention list; `notifications(id)`
 * gives the squad's notifications about the task; `onClose` runs when the dialog closes.
 * Returns {addComment(event), refresh(), showNotifications(), close()}.
 */
export function openTask(container, { squadId, taskId, agentNames, notifications, onClose }) {
  const titleId = `task-title-${taskId}`;
  const title = h('h2', { id: titleId, text: 'Loading…' });
  const facts = h('div', { class: 'task-facts' });
  const description = h('p', { class: 'task-description' });
  const comments = h('ol', { class: 'comments', 'aria-live': 'polite', 'aria-label': 'Comments' });
  const notes = h('ul', { class: 'notes' });
  const notice = h('p', { class: 'notice', hidden: true });
  const textarea = h('textarea', { id: `comment-${taskId}`, name: 'comment', rows: 3, required: true, maxLength: 10000, 'aria-describedby': `comment-help-${taskId}` });
  const mentions = attachMentions(textarea, agentNames);
  const post = h('button', { type: 'submit', class: 'button button-primary', text: 'Post comment' });
  const seen = new Set();

  const dialog = h('dialog', { class: 'dialog task-dialog', 'aria-labelledby': titleId },
    h('div', { class: 'dialog-head' },
      title,
      h('button', { type: 'button', class: 'button button-quiet', text: 'Close', on: { click: () => dialog.close() } })),
    facts,
    description,
    h('section', { 'aria-label': 'Comment thread' },
      h('h3', { text: 'Comments' }),
      comments,
      h('form', { class: 'composer', on: { submit } },
        h('label', { for: textarea.id, text: 'Add a comment' }),
        h('div', { class: 'mention-wrap' }, textarea, mentions.listbox),
        h('p', { id: `comment-help-${taskId}`, class: 'small muted', text: 'Type @ to mention an agent; @all notifies the whole squad.' }),
        h('div', { class: 'actions' }, post),
        notice)),
    h('section', { 'aria-label': 'Notifications about this task' },
      h('h3', { text: 'Notifications' }),
      notes));

  dialog.addEventListener('cancel', (e) => {
    if (mentions.isOpen()) {
      e.preventDefault();
      mentions.close();
    }
  });
  dialog.addEventListener('close', () => {
    dialog.remove();
    onClose();
  });
  container.append(dialog);
  dialog.showModal();
  refresh();
  showNotifications();

  let first = true;
  async function refresh() {
    try {
      const task = await api.task(squadId, taskId);
      title.textContent = task.title;
      fill(facts,
        badge(task.status),
        h('span', { class: `badge priority-${task.priority}`, text: `${label(task.priority)} priority` }),
        h('span', { class: 'muted' }, task.assignees.length
          ? `Assigned to ${task.assignees.map((a) => a.name).join(', ')}`
          : 'Unassigned'),
        h('span', { class: 'muted' }, 'Updated ', agoTime(task.updated_at)));
      description.textContent = task.description || 'No description.';
      description.classList.toggle('muted', !task.description);
      for (const c of task.comments || []) addComment(c);
      if (first) textarea.focus();
      first = false;
    } catch (err) {
      title.textContent = 'Task not found';
      say(notice, err, 'error');
    }
  }

  /** Adds a comment (a CommentView, or the `comment` of a live comment.created event). */
  function addComment(c) {
    if (seen.has(c.id)) return;
    seen.add(c.id);
    const author = c.from_agent?.name || (c.from_human ? 'A human (dashboard or API)' : 'Unknown');
    const at = c.created_at || new Date().toISOString();
    const item = h('li', { class: 'comment', dataset: { commentId: c.id, at } },
      h('div', { class: 'comment-head' },
        h('strong', { text: author }),
        agoTime(at)),
      h('p', { class: 'comment-body', text: plain(c.content) }));
    // Oldest first, whichever came first: the thread's load or a live event.
    const later = [...comments.children].find((li) => new Date(li.dataset.at) > new Date(at));
    comments.insertBefore(item, later || null);
  }

  function showNotifications() {
    const list = notifications(taskId);
    fill(notes, list.length
      ? list.map((n) => h('li', {}, h('strong', { text: n.agent || 'An agent' }), ` · ${label(n.kind || 'notified')} · `,
        n.content ? h('span', { text: plain(n.content) }) : null, ' ', agoTime(n.at)))
      : h('li', { class: 'muted', text: 'No notifications yet.' }));
  }

  async function submit(e) {
    e.preventDefault();
    const content = textarea.value.trim();
    if (!content) return;
    post.disabled = true;
    say(notice, '');
    try {
      const comment = await api.comment(squadId, taskId, content);
      addComment(comment);
      textarea.value = '';
    } catch (err) {
      say(notice, err, 'error');
    } finally {
      post.disabled = false;
      textarea.focus();
    }
  }

  return {
    addComment,
    refresh,
    showNotifications,
    close: () => dialog.open && dialog.close(),
  };
}
