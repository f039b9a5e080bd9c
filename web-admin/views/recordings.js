// Recordings: filter, play in the page (range requests let the player seek), download,
// mark heard, delete.
import { api } from '../api.js';
import { h, table, button, notify, errorText, fmtTime, fmtDuration, fmtBytes } from '../ui.js';

export const title = 'Recordings';

const PAGE = 50;
const KINDS = ['voicemail', 'room', 'stream', 'call', 'echotest'];
let filters = { kind: '', owner: '', heard: '', from: '', to: '', offset: 0 };

function query() {
  const q = new URLSearchParams();
  if (filters.kind) q.set('kind', filters.kind);
  if (filters.owner) q.set('owner', filters.owner);
  if (filters.heard) q.set('heard', filters.heard);
  if (filters.from) q.set('from_ms', String(Date.parse(filters.from + 'T00:00:00Z')));
  if (filters.to) q.set('to_ms', String(Date.parse(filters.to + 'T00:00:00Z') + 86400000));
  q.set('offset', String(filters.offset));
  q.set('limit', String(PAGE));
  return q.toString();
}

export async function render(root, ctx) {
  const data = await api('GET', '/recordings?' + query());
  const player = h('div', { class: 'player', 'aria-live': 'polite' });

  const filterForm = h('form', { class: 'card filters', 'aria-label': 'Filter recordings' },
    h('div', { class: 'field' }, h('label', { for: 'flt-kind' }, 'Kind'),
      h('select', { id: 'flt-kind', name: 'kind' }, h('option', { value: '' }, 'any'), KINDS.map(k => h('option', { value: k, selected: filters.kind === k }, k)))),
    h('div', { class: 'field' }, h('label', { for: 'flt-owner' }, 'Owner'), h('input', { id: 'flt-owner', name: 'owner', value: filters.owner })),
    h('div', { class: 'field' }, h('label', { for: 'flt-heard' }, 'Heard'),
      h('select', { id: 'flt-heard', name: 'heard' }, [['', 'any'], ['false', 'new only'], ['true', 'heard only']].map(([v, l]) => h('option', { value: v, selected: filters.heard === v }, l)))),
    h('div', { class: 'field' }, h('label', { for: 'flt-from' }, 'From'), h('input', { id: 'flt-from', name: 'from', type: 'date', value: filters.from })),
    h('div', { class: 'field' }, h('label', { for: 'flt-to' }, 'To'), h('input', { id: 'flt-to', name: 'to', type: 'date', value: filters.to })),
    h('div', { class: 'actions' }, h('button', { type: 'submit' }, 'Apply'),
      button('Clear', () => { filters = { kind: '', owner: '', heard: '', from: '', to: '', offset: 0 }; ctx.rerender(); }, 'secondary')));
  filterForm.addEventListener('submit', ev => {
    ev.preventDefault();
    const f = new FormData(filterForm);
    filters = { kind: f.get('kind'), owner: f.get('owner').trim(), heard: f.get('heard'), from: f.get('from'), to: f.get('to'), offset: 0 };
    ctx.rerender();
  });

  const play = r => {
    const audio = h('audio', { controls: true, preload: 'auto', src: r.file_url, 'data-recording': String(r.id) });
    audio.addEventListener('error', () => notify(`Recording ${r.id} cannot be played (${r.content_type}).`, 'error'));
    audio.addEventListener('ended', async () => {
      audio.dataset.ended = 'true';
      if (ctx.admin && !r.heard) {
        try {
          await api('PATCH', `/recordings/${r.id}`, { heard: true });
          r.heard = true;
          const cell = root.querySelector(`[data-heard="${r.id}"]`);
          if (cell) cell.replaceChildren('yes');
          const mark = root.querySelector(`[data-mark="${r.id}"]`);
          if (mark) mark.textContent = 'Mark new';
        } catch (e) { notify(errorText(e), 'error'); }
      }
    });
    player.replaceChildren(h('div', { class: 'card' },
      h('h2', {}, `Recording ${r.id}: ${r.kind} of ${r.owner}`),
      h('p', {}, `${fmtTime(r.created_ms)} · ${fmtDuration(r.duration_ms)} · ${r.codec}`),
      audio,
      h('div', { class: 'actions' }, button('Close player', () => player.replaceChildren(), 'secondary'))));
    audio.play().catch(() => { /* autoplay may be refused; the controls remain */ });
    audio.focus();
  };

  const columns = [
    { label: 'Created', cell: r => fmtTime(r.created_ms) },
    { label: 'Kind', cell: r => r.kind },
    { label: 'Owner', cell: r => r.owner },
    { label: 'Caller', cell: r => r.caller || '—' },
    { label: 'Callee', cell: r => r.callee || '—' },
    { label: 'Length', cell: r => fmtDuration(r.duration_ms) },
    { label: 'Size', cell: r => fmtBytes(r.size_bytes) },
    { label: 'Heard', cell: r => h('span', { 'data-heard': String(r.id) }, r.heard ? 'yes' : h('strong', {}, 'new')) },
    { label: 'Actions', class: 'row-actions', cell: r => h('span', {},
      button('Play', () => play(r)),
      h('a', { class: 'button secondary', href: r.file_url + '?download=true', download: '' }, 'Download'),
      ctx.admin ? h('button', { type: 'button', class: 'secondary', 'data-mark': String(r.id), onclick: async () => {
        try { await api('PATCH', `/recordings/${r.id}`, { heard: !r.heard }); ctx.rerender(); }
        catch (e) { notify(errorText(e), 'error'); }
      } }, r.heard ? 'Mark new' : 'Mark heard') : null,
      ctx.admin ? button('Delete', async () => {
        if (!confirm(`Delete recording ${r.id} (${r.kind} of ${r.owner})? The file is removed.`)) return;
        try { await api('DELETE', `/recordings/${r.id}`); notify(`Recording ${r.id} deleted.`); ctx.rerender(); }
        catch (e) { notify(errorText(e), 'error'); }
      }, 'danger') : null) },
  ];
  const first = data.total ? filters.offset + 1 : 0;
  const last = filters.offset + data.recordings.length;
  const pager = h('div', { class: 'pager' },
    h('span', {}, `${first}–${last} of ${data.total}`),
    button('Previous', () => { filters.offset = Math.max(0, filters.offset - PAGE); ctx.rerender(); }, 'secondary'),
    button('Next', () => { filters.offset += PAGE; ctx.rerender(); }, 'secondary'));
  pager.children[1].disabled = filters.offset === 0;
  pager.children[2].disabled = last >= data.total;
  const filtered = filters.kind || filters.owner || filters.heard || filters.from || filters.to;
  root.append(
    h('h1', {}, 'Recordings'),
    h('p', { class: 'lead' }, 'Voicemail, rooms, streams and calls recorded by this gateway.'),
    filterForm,
    player,
    table('Recordings', columns, data.recordings, filtered ? 'No recording matches these filters.' : 'No recordings yet.'),
  );
  if (data.total > PAGE) root.append(pager);
}
