// One squad, live: its agents, the board, the activity feed, notifications, and its agents'
// chat completions as they stream. Loaded once over HTTP, then kept current by live events;
// `#/squads/{id}/tasks/{task}` opens a task's dialog over it without drawing it again.

import { api } from '../api.js';
import { h, label, say } from '../dom.js';
import { renderAgents } from './agents.js';
import { createBoard } from './board.js';
import { fromActivity, fromEvent, noteFromActivity, noteFromEvent, renderFeed, renderNotes } from './feed.js';
import { drawCompletions } from './streams.js';
import { openTask } from './task.js';

const FEED_SIZE = 100;

export function render(main, params, ctx) {
  const squadId = params.squadId;
  const base = `#/squads/${encodeURIComponent(squadId)}`;
  const taskHref = (id) => `${base}/tasks/${encodeURIComponent(id)}`;
  const state = { agents: [], board: {}, tasks: new Map(), feed: [], notes: [] };
  let dialog = null; // the open task's dialog
  let openTaskId = null;
  let alive = true;
  const timers = new Map(); // pending reloads, by what they reload

  const heading = h('h1', { text: 'Squad' });
  const about = h('p', { class: 'muted' });
  const notice = h('p', { class: 'notice', hidden: true });
  const agentList = h('ul', { class: 'agents', 'aria-busy': 'true' });
  const feedList = h('ol', { class: 'feed', 'aria-busy': 'true' });
  const noteList = h('ol', { class: 'feed notes' });
  const streamList = h('div', { class: 'streams' });
  const board = createBoard({ onMove: move, taskHref });
  const boardNotice = h('p', { class: 'notice', hidden: true, role: 'alert' });

  main.append(
    h('div', { class: 'page-head' },
      h('p', { class: 'crumbs' }, h('a', { href: '#/squads', text: 'Squads' }), ' / '),
      heading, about, notice),
    h('div', { class: 'squad-layout' },
      h('section', { class: 'panel agents-panel', 'aria-labelledby': 'agents-h' },
        h('h2', { id: 'agents-h', text: 'Agents' }), agentList),
      h('section', { class: 'panel board-panel', 'aria-labelledby': 'board-h' },
        h('div', { class: 'panel-head' }, h('h2', { id: 'board-h', text: 'Board' }), newTaskForm()),
        boardNotice,
        board.el),
      h('section', { class: 'panel feed-panel', 'aria-labelledby': 'feed-h' },
        h('h2', { id: 'feed-h', text: 'Activity' }), feedList),
      h('div', { class: 'side-col' },
        h('section', { class: 'panel notes-panel', 'aria-labelledby': 'notes-h' },
          h('h2', { id: 'notes-h', text: 'Notifications' }), noteList),
        h('section', { class: 'panel streams-panel', 'aria-labelledby': 'streams-h' },
          h('h2', { id: 'streams-h', text: 'Live completions' }), streamList))));

  // Subscribe, then load: an event is then in the load, or comes live, or both (merged by
  // seq), never neither.
  const stopLive = ctx.live.on((message) => {
    if (message.squad_id === squadId) onEvent(message);
  });
  const stopStreams = ctx.completions.on((item) => {
    if (item.squadId === squadId) drawStreams();
  });
  drawStreams();
  ctx.live.watch([squadId]).then(load);
  if (params.taskId) showTask(params.taskId);

  async function load() {
    try {
      const [squad, agents, boardData, activities] = await Promise.all([
        api.squad(squadId), api.agents(squadId), api.board(squadId), api.activities(squadId, FEED_SIZE),
      ]);
      if (!alive) return;
      heading.textContent = squad.name;
      document.title = `${squad.name} · Squadron`;
      about.textContent = squad.description || '';
      state.agents = agents.map((a) => ({ ...a, current_task_id: a.current_task?.id || null }));
      setBoard(boardData);
      for (const a of activities) addFeed(fromActivity(a));
      if (activities.length) ctx.live.seed(squadId, activities[0].seq);
      for (const a of activities.filter((x) => x.type === 'notification_created')) addNote(noteFromActivity(a));
      agentList.removeAttribute('aria-busy');
      feedList.removeAttribute('aria-busy');
      drawAgents();
      drawFeed();
    } catch (err) {
      say(notice, err.status === 404 ? 'This squad does not exist (or is not your organization’s).' : err, 'error');
    }
  }

  function onEvent(message) {
    const event = message.event || {};
    const kind = event.kind || '';
    if (message.seq !== null && message.seq !== undefined) {
      addFeed(fromEvent(message));
      drawFeed();
    }
    if (kind === 'agent.heartbeat') {
      patchAgent(event.agent.id, {
        status: event.agent.status,
        last_heartbeat_at: event.agent.last_heartbeat_at,
        current_task_id: event.agent.current_task_id,
      });
    } else if (kind === 'agent.status_changed') {
      patchAgent(event.agent.id, { status: event.agent.status });
    } else if ((kind.startsWith('agent.') && !kind.startsWith('agent.completion')) || kind === 'squad.setup') {
      later('agents', reloadAgents);
    } else if (kind.startsWith('task.')) {
      later('board', reloadBoard);
      if (dialog && event.task?.id === openTaskId) later('task', () => dialog?.refresh());
    } else if (kind === 'comment.created') {
      if (dialog && event.task?.id === openTaskId) {
        dialog.addComment({
          id: event.comment.id,
          content: event.comment.content,
          from_human: event.comment.from_human,
          from_agent: event.by?.name ? event.by : null,
          created_at: message.created_at,
        });
      }
    } else if (kind === 'notification.created') {
      addNote(noteFromEvent(message));
    }
  }

  // Bursts of events (a busy squad) cause one reload, not one each.
  function later(key, fn) {
    if (timers.has(key)) return;
    timers.set(key, setTimeout(() => {
      timers.delete(key);
      if (alive) fn();
    }, 150));
  }

  let boardVersion = 0;
  async function reloadBoard() {
    const version = ++boardVersion;
    try {
      const data = await api.board(squadId);
      if (alive && version === boardVersion) setBoard(data);
    } catch (err) {
      say(boardNotice, err, 'error');
    }
  }

  async function reloadAgents() {
    try {
      const agents = await api.agents(squadId);
      if (!alive) return;
      state.agents = agents.map((a) => ({ ...a, current_task_id: a.current_task?.id || null }));
      drawAgents();
    } catch (err) {
      say(notice, err, 'error');
    }
  }

  function setBoard(data) {
    state.board = data;
    state.tasks = new Map(Object.values(data).flat().map((t) => [t.id, t]));
    board.render(data);
    drawAgents(); // current tasks' titles may have changed
  }

  async function move(taskId, status) {
    say(boardNotice, '');
    boardVersion++; // a reload already under way would undo the move on screen
    try {
      await api.moveTask(squadId, taskId, status);
    } catch (err) {
      say(boardNotice, `Could not move the task: ${err.message}`, 'error');
    }
    reloadBoard();
  }

  function patchAgent(id, changes) {
    const agent = state.agents.find((a) => a.id === id);
    if (!agent) return later('agents', reloadAgents);
    for (const [key, value] of Object.entries(changes)) if (value !== undefined) agent[key] = value;
    drawAgents();
  }

  function drawAgents() {
    renderAgents(agentList, state.agents, { taskTitle: (id) => state.tasks.get(id)?.title, taskHref });
  }

  function addFeed(entry) {
    if (state.feed.some((e) => e.seq === entry.seq)) return;
    state.feed.push(entry);
    state.feed.sort((a, b) => b.seq - a.seq);
    state.feed.length = Math.min(state.feed.length, FEED_SIZE);
  }

  function drawFeed() {
    renderFeed(feedList, state.feed, taskHref);
  }

  function addNote(note) {
    if (state.notes.some((n) => n.seq === note.seq)) return;
    state.notes.push(note);
    state.notes.sort((a, b) => b.seq - a.seq);
    state.notes.length = Math.min(state.notes.length, FEED_SIZE);
    renderNotes(noteList, state.notes, taskHref);
    dialog?.showNotifications();
  }
  renderNotes(noteList, state.notes, taskHref);

  function drawStreams() {
    drawCompletions(streamList, ctx.completions.list(squadId),
      'No chat completions since you opened the dashboard. They appear here token by token while they run.');
  }

  async function newTaskSubmit(e) {
    e.preventDefault();
    const form = e.currentTarget;
    const title = form.elements.title.value.trim();
    if (!title) return;
    try {
      await api.createTask(squadId, { title, priority: form.elements.priority.value });
      form.reset();
      reloadBoard();
    } catch (err) {
      say(boardNotice, err, 'error');
    }
  }

  function newTaskForm() {
    return h('form', { class: 'new-task', on: { submit: newTaskSubmit } },
      h('label', { for: 'new-task-title', class: 'visually-hidden', text: 'New task title' }),
      h('input', { id: 'new-task-title', name: 'title', placeholder: 'New task title', required: true, maxLength: 200, autocomplete: 'off' }),
      h('label', { for: 'new-task-priority', class: 'visually-hidden', text: 'Priority' }),
      h('select', { id: 'new-task-priority', name: 'priority' },
        ['low', 'normal', 'high', 'urgent'].map((p) => h('option', { value: p, text: label(p), selected: p === 'normal' }))),
      h('button', { type: 'submit', class: 'button', text: 'Add task' }));
  }

  function showTask(taskId) {
    if (openTaskId === taskId) return;
    dialog?.close();
    openTaskId = taskId;
    dialog = openTask(main, {
      squadId,
      taskId,
      agentNames: () => state.agents.map((a) => a.name),
      notifications: (id) => state.notes.filter((n) => n.taskId === id),
      onClose: () => {
        dialog = null;
        openTaskId = null;
        // Closing by Escape or the button goes back to the squad's address.
        if (alive && location.hash !== base) location.hash = base;
        const card = main.querySelector(`[data-task-id="${CSS.escape(taskId)}"] a`);
        card?.focus();
      },
    });
  }

  return {
    update(next) {
      if (next.squadId !== squadId) return false;
      if (next.taskId) showTask(next.taskId);
      else dialog?.close();
      return true;
    },
    cleanup() {
      alive = false;
      stopLive();
      stopStreams();
      for (const t of timers.values()) clearTimeout(t);
      dialog?.close();
      document.title = 'Squadron';
    },
  };
}
