// Egress targets: named RTMP destinations a mountpoint is re-published to. The destination's
// stream key is write-only. Each target shows the live state of its egress (connecting, live,
// reconnecting, failed with the reason) with Start / Stop; the page refreshes while one runs.
import { api } from '../api.js';
import { h, table, form, button, notify, errorText, yesNo, opt } from '../ui.js';

export const title = 'Egress';

const STATES = { not_started: 'not started', connecting: 'connecting', live: 'live', reconnecting: 'reconnecting', failed: 'failed' };
const BADGES = { live: 'good', failed: 'bad' };

function fields(t) {
  return [
    { name: 'name', label: 'Name', value: t?.name, required: true },
    { name: 'url', label: 'RTMP URL', value: t?.url, placeholder: 'rtmp://a.rtmp.youtube.com/live2', required: true, help: 'rtmp:// or rtmps:// (TLS), a host and the application; without a key, end it with the stream name' },
    { name: 'key', label: 'Stream key', type: 'password', autocomplete: 'new-password', placeholder: t?.has_key ? 'unchanged' : '', help: t ? 'Leave empty to keep the stored key' : 'The destination\'s key (needed unless the URL ends with the stream name); it cannot be read back' },
    { name: 'mountpoint', label: 'Mountpoint', value: t?.mountpoint, required: true, help: 'Id or name of the mountpoint to send; it may be created later' },
    { name: 'enabled', label: 'Enabled', type: 'checkbox', value: t ? t.enabled : true },
  ];
}

function body(v, editing) {
  const b = { name: v.name.trim(), url: v.url.trim(), mountpoint: v.mountpoint.trim(), enabled: v.enabled };
  if (v.key !== '' || !editing) b.key = opt(v.key);
  return b;
}

export async function render(root, ctx) {
  const list = await api('GET', '/egress-targets');
  const formSlot = h('div');
  const showForm = t => {
    const f = form(t ? `Edit egress ${t.name}` : 'New egress target', fields(t), t ? 'Save' : 'Create egress target', async v => {
      if (t) await api('PUT', `/egress-targets/${t.id}`, body(v, true));
      else await api('POST', '/egress-targets', body(v, false));
      notify(t ? `Egress target ${v.name} saved.` : `Egress target ${v.name} created.`);
      ctx.rerender();
    }, t ? button('Cancel', () => showForm(null), 'secondary') : null);
    formSlot.replaceChildren(f);
    if (t) f.querySelector('input').focus();
  };
  const columns = [
    { label: 'Name', cell: t => t.name },
    { label: 'URL', cell: t => t.url },
    { label: 'Key', cell: t => t.has_key ? 'set' : 'none' },
    { label: 'Mountpoint', cell: t => t.mountpoint },
    { label: 'Enabled', cell: t => yesNo(t.enabled) },
    { label: 'State', cell: t => h('span', { title: t.reason || '' },
      h('span', { class: `badge ${BADGES[t.state] || 'other'}` }, STATES[t.state] || t.state),
      t.reason ? ` ${t.reason}` : '') },
  ];
  const running = t => t.state !== 'not_started';
  const act = (t, what) => async () => {
    try { await api('POST', `/egress-targets/${t.id}/${what}`); notify(`Egress ${t.name}: ${what === 'start' ? 'started' : 'stopped'}.`); ctx.rerender(); }
    catch (e) { notify(errorText(e), 'error'); }
  };
  if (ctx.admin) {
    columns.push({ label: 'Actions', class: 'row-actions', cell: t => h('span', {},
      running(t) ? button('Stop', act(t, 'stop'), 'secondary') : button('Start', act(t, 'start')),
      button('Edit', () => showForm(t), 'secondary'),
      button('Delete', async () => {
        if (!confirm(`Delete egress target ${t.name}?`)) return;
        try { await api('DELETE', `/egress-targets/${t.id}`); notify(`Egress target ${t.name} deleted.`); ctx.rerender(); }
        catch (e) { notify(errorText(e), 'error'); }
      }, 'danger')) });
  }
  root.append(
    h('h1', {}, 'Egress targets'),
    h('p', { class: 'lead' }, 'Where a mountpoint is re-published: a CDN or a platform\'s RTMP ingest. Start sends the mountpoint\'s media there (H.264 as it is, VP8 re-encoded to H.264, Opus as AAC).'),
    table('Egress targets', columns, list, 'No egress targets yet.' + (ctx.admin ? ' Create the first one below.' : '')),
  );
  if (ctx.admin) { root.append(formSlot); showForm(null); }
  // Connecting and reconnecting end on their own: look again shortly.
  if (list.some(t => t.state === 'connecting' || t.state === 'reconnecting')) {
    const timer = setTimeout(() => ctx.rerender(), 2000);
    return () => clearTimeout(timer);
  }
  return null;
}
