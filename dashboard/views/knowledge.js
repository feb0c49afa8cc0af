// Knowledge: the organization's knowledge bases (each is also an OpenAI vector store, `vs_…`),
// and for the chosen one its files with per-file ingest progress, upload, and search.
// Progress comes from live `knowledge.ingest.progress` / `.finished` events (sent to the
// organization's default squad, which the dashboard watches), and from polling the files'
// status while any is still being ingested, in case no event arrives.

import { api } from '../api.js';
import { badge, bytes, fill, h, label, say } from '../dom.js';

const POLL_MS = 2000;

const chunks = (n) => `${n} chunk${n === 1 ? '' : 's'}`;

export function render(main, params, ctx) {
  const storeId = params.storeId || null;
  const baseList = h('ul', { class: 'base-list', 'aria-busy': 'true' });
  const notice = h('p', { class: 'notice', hidden: true });
  const detail = h('section', { class: 'panel store-panel', 'aria-labelledby': 'store-h' });
  let alive = true;
  let poll = null;
  const progress = new Map(); // file id -> {done, total} from live events
  let files = [];
  let fileRows = null; // the files table's body, once drawn

  main.append(
    h('div', { class: 'page-head' },
      h('h1', { text: 'Knowledge' }),
      h('p', { class: 'muted', text: 'Knowledge bases that agents consult. Each is also an OpenAI-compatible vector store.' }),
      notice),
    h('div', { class: 'knowledge-layout' },
      h('section', { class: 'panel', 'aria-labelledby': 'bases-h' },
        h('h2', { id: 'bases-h', text: 'Knowledge bases' }),
        baseList,
        newBaseForm()),
      storeId ? detail : h('section', { class: 'panel empty', text: 'Choose a knowledge base to see its files, add some, and search it.' })));

  ctx.watchAll().catch(() => {});
  const stopLive = ctx.live.on(onEvent);
  loadBases();
  if (storeId) drawDetail();

  async function loadBases() {
    try {
      const bases = await api.bases();
      if (!alive) return;
      baseList.removeAttribute('aria-busy');
      fill(baseList, bases.length
        ? bases.map((b) => h('li', { class: `base${b.vector_store_id === storeId ? ' is-current' : ''}` },
          h('a', {
            href: `#/knowledge/${encodeURIComponent(b.vector_store_id)}`,
            text: b.name || b.vector_store_id,
            'aria-current': b.vector_store_id === storeId ? 'page' : false,
          }),
          ' ', badge(b.status),
          h('p', { class: 'small muted' },
            `${b.file_counts.completed}/${b.file_counts.total} files ready`,
            b.file_counts.failed ? ` · ${b.file_counts.failed} failed` : '',
            ` · ${bytes(b.usage_bytes)} · ${b.embedding_model || 'no model'}`),
          h('p', { class: 'small muted mono', text: b.vector_store_id })))
        : h('li', { class: 'empty', text: 'No knowledge bases yet.' }));
      if (storeId) {
        const current = bases.find((b) => b.vector_store_id === storeId);
        detail.querySelector('h2').textContent = current ? current.name || current.vector_store_id : 'Unknown knowledge base';
      }
    } catch (err) {
      say(notice, err, 'error');
    }
  }

  function newBaseForm() {
    const formNotice = h('p', { class: 'notice', hidden: true });
    const form = h('form', { class: 'stack new-base', on: { submit } },
      h('h3', { text: 'New knowledge base' }),
      h('div', { class: 'field' }, h('label', { for: 'base-name', text: 'Name' }),
        h('input', { id: 'base-name', name: 'name', required: true, maxLength: 256, autocomplete: 'off' })),
      h('div', { class: 'field' }, h('label', { for: 'base-desc', text: 'Description (optional)' }),
        h('input', { id: 'base-desc', name: 'description', autocomplete: 'off' })),
      h('div', { class: 'actions' }, h('button', { type: 'submit', class: 'button', text: 'Create' })),
      formNotice);
    async function submit(e) {
      e.preventDefault();
      try {
        const body = { name: form.elements.name.value.trim() };
        const description = form.elements.description.value.trim();
        if (description) body.description = description;
        const base = await api.createBase(body);
        form.reset();
        location.hash = `#/knowledge/${encodeURIComponent(base.vector_store_id)}`;
      } catch (err) {
        say(formNotice, err, 'error');
      }
    }
    return form;
  }

  function drawDetail() {
    fileRows = h('tbody', {});
    const uploadInput = h('input', { id: 'upload', name: 'files', type: 'file', multiple: true, required: true });
    const uploadNotice = h('p', { class: 'notice', hidden: true });
    const query = h('input', { id: 'search', name: 'query', type: 'search', required: true, autocomplete: 'off' });
    const results = h('ol', { class: 'results', 'aria-live': 'polite' });
    const searchNotice = h('p', { class: 'notice', hidden: true });

    const heading = h('h2', { id: 'store-h', tabIndex: -1, text: storeId });
    fill(detail,
      heading,
      h('h3', { text: 'Files' }),
      h('div', { class: 'table-wrap' },
        h('table', { class: 'table files' },
          h('thead', {}, h('tr', {}, ['File', 'Size', 'Status', 'Ingest'].map((t) => h('th', { scope: 'col', text: t })))),
          fileRows)),
      h('form', { class: 'inline-form', on: { submit: upload } },
        h('label', { for: 'upload', text: 'Add files' }),
        uploadInput,
        h('button', { type: 'submit', class: 'button', text: 'Upload' }),
        uploadNotice),
      h('h3', { text: 'Search' }),
      h('form', { class: 'inline-form', role: 'search', on: { submit: search } },
        h('label', { for: 'search', text: 'Search this base' }),
        query,
        h('button', { type: 'submit', class: 'button button-primary', text: 'Search' }),
        searchNotice),
      results);

    loadFiles();
    // On a phone the base's files sit below the list of bases: bring them into view.
    heading.focus();

    async function upload(e) {
      e.preventDefault();
      const chosen = [...uploadInput.files];
      if (!chosen.length) return;
      for (const file of chosen) {
        say(uploadNotice, `Uploading ${file.name}…`);
        try {
          const uploaded = await api.upload(file);
          await api.addFile(storeId, uploaded.id);
        } catch (err) {
          say(uploadNotice, `${file.name}: ${err.message}`, 'error');
          return;
        }
      }
      say(uploadNotice, chosen.length === 1 ? `${chosen[0].name} added; ingesting.` : `${chosen.length} files added; ingesting.`);
      uploadInput.value = '';
      loadFiles();
    }

    async function search(e) {
      e.preventDefault();
      const text = query.value.trim();
      if (!text) return;
      say(searchNotice, 'Searching…');
      try {
        const page = await api.search(storeId, text);
        say(searchNotice, page.data.length ? '' : 'No matches.');
        fill(results, page.data.map((hit) => h('li', { class: 'result' },
          h('div', { class: 'result-head' },
            h('strong', { text: hit.filename || hit.file_id }),
            h('span', { class: 'small muted', text: `score ${hit.score.toFixed(3)}` })),
          h('p', { class: 'small', text: (hit.content || []).map((c) => c.text).join(' ').slice(0, 400) }))));
      } catch (err) {
        say(searchNotice, err, 'error');
      }
    }
  }

  async function loadFiles() {
    clearTimeout(poll);
    try {
      const details = await api.storeFiles(storeId);
      if (!alive) return;
      files = details.data;
      drawFiles();
      // Polling is the fallback to live events: only while something is still ingesting.
      if (files.some((f) => f.status === 'in_progress')) poll = setTimeout(loadFiles, POLL_MS);
    } catch (err) {
      if (alive) say(notice, err.status === 404 ? 'This knowledge base does not exist.' : err, 'error');
    }
  }

  function drawFiles() {
    if (!fileRows) return;
    fill(fileRows, files.length
      ? files.map(fileRow)
      : h('tr', {}, h('td', { colSpan: 4, class: 'empty', text: 'No files yet. Upload one below.' })));
  }

  function fileRow(f) {
    const live = progress.get(f.file_id);
    let percent = null; // null: not known yet
    let text;
    if (f.status === 'completed') {
      percent = 100;
      text = `100% · ${chunks(f.chunk_count)}`;
    } else if (f.status === 'in_progress') {
      if (live?.total) {
        percent = Math.round((100 * live.done) / live.total);
        text = `${percent}% · ${live.done} of ${chunks(live.total)}`;
      } else text = f.chunk_count ? `${chunks(f.chunk_count)} so far` : 'Waiting…';
    } else text = f.last_error?.message || label(f.status);
    const name = f.filename || f.file_id;
    const bar = h('progress', { max: 100, 'aria-label': `Ingest of ${name}` });
    if (percent !== null) bar.value = percent;
    return h('tr', { dataset: { fileId: f.file_id, status: f.status } },
      h('td', { dataset: { label: 'File' } },
        h('div', {}, h('span', { class: 'filename', text: name }), h('br'), h('span', { class: 'small muted mono', text: f.file_id }))),
      h('td', { dataset: { label: 'Size' }, class: 'nowrap', text: bytes(f.bytes) }),
      h('td', { dataset: { label: 'Status' } }, badge(f.status)),
      h('td', { dataset: { label: 'Ingest' }, class: 'progress-cell' },
        ['failed', 'cancelled'].includes(f.status) ? null : bar,
        h('span', { class: 'small progress-text', text })));
  }

  function onEvent(message) {
    const event = message.event || {};
    if (!storeId || event.vector_store_id !== storeId) return;
    if (event.kind === 'knowledge.ingest.progress') {
      progress.set(event.file_id, { done: event.chunks_done, total: event.chunks_total });
      const file = files.find((f) => f.file_id === event.file_id);
      if (file) drawFiles();
      else loadFiles();
    } else if (event.kind === 'knowledge.ingest.finished') {
      progress.delete(event.file_id);
      loadFiles();
      loadBases();
    }
  }

  return () => {
    alive = false;
    clearTimeout(poll);
    stopLive();
  };
}
