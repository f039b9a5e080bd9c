// RTMP stream keys: create (the key is shown once with the URLs), enable/disable, revoke.
// Where a mountpoint is re-published to is the Egress page's business.
import { api } from '../api.js';
import { h, table, form, button, notify, errorText, fmtTime } from '../ui.js';

export const title = 'Stream keys';

function copyButton(text) {
  return button('Copy', async ev => {
    try { await navigator.clipboard.writeText(text); ev.target.textContent = 'Copied'; }
    catch { ev.target.textContent = 'Select and copy'; }
  }, 'secondary');
}

export async function render(root, ctx) {
  let list = await api('GET', '/stream-keys');
  const tableSlot = h('div');
  const secretSlot = h('div', { 'aria-live': 'polite' });
  const showCreated = r => {
    const row = (label, value, name) => h('div', { class: 'secret-row' },
      h('span', { class: 'secret-label' }, label),
      h('code', { class: 'secret-value', 'data-secret': name }, value), copyButton(value));
    secretSlot.replaceChildren(h('div', { class: 'card secret', role: 'region', 'aria-label': 'New stream key' },
      h('h2', {}, `Stream key ${r.stream_key.name}`),
      h('p', {}, 'Shown only now. In OBS: Settings → Stream → Service "Custom", then Server and Stream Key below.'),
      row('Server (RTMP URL)', r.rtmp_url, 'rtmp-url'),
      r.whip_url ? row('WHIP URL (bearer token: the stream key)', r.whip_url, 'whip-url') : null,
      row('Stream key', r.key, 'key'),
      row('Full publish URL', r.publish_url, 'publish-url'),
      h('div', { class: 'actions' }, button('I saved it', () => ctx.rerender()))));
    secretSlot.querySelector('.actions button').focus();
  };
  const columns = [
    { label: 'Name', cell: k => k.name },
    { label: 'Owner', cell: k => k.owner },
    { label: 'State', cell: k => k.enabled ? 'enabled' : 'disabled' },
    { label: 'Created', cell: k => fmtTime(k.created_ms) },
    { label: 'Last used', cell: k => k.last_used_ms ? fmtTime(k.last_used_ms) : 'never' },
  ];
  if (ctx.admin) {
    columns.push({ label: 'Actions', class: 'row-actions', cell: k => h('span', {},
      button(k.enabled ? 'Disable' : 'Enable', async () => {
        try { await api('PATCH', `/stream-keys/${k.id}`, { enabled: !k.enabled }); ctx.rerender(); }
        catch (e) { notify(errorText(e), 'error'); }
      }, 'secondary'),
      button('Revoke', async () => {
        if (!confirm(`Revoke stream key ${k.name}? Encoders using it can no longer publish.`)) return;
        try { await api('DELETE', `/stream-keys/${k.id}`); notify(`Stream key ${k.name} revoked.`); ctx.rerender(); }
        catch (e) { notify(errorText(e), 'error'); }
      }, 'danger')) });
  }
  const showTable = () => tableSlot.replaceChildren(
    table('Stream keys', columns, list, 'No stream keys yet.' + (ctx.admin ? ' Create one below to hand a streamer.' : '')));
  showTable();
  root.append(
    h('h1', {}, 'Stream keys'),
    h('p', { class: 'lead' }, 'Keys encoders publish with over RTMP; each key is shown once, when it is created.'),
    secretSlot,
    tableSlot,
  );
  if (ctx.admin) {
    root.append(form('New stream key', [
      { name: 'name', label: 'Name', required: true, placeholder: 'studio-a' },
      { name: 'owner', label: 'Owner', placeholder: ctx.user.username },
    ], 'Create stream key', async v => {
      const r = await api('POST', '/stream-keys', { name: v.name.trim(), owner: v.owner.trim() || null });
      list = await api('GET', '/stream-keys');
      showTable();
      showCreated(r);
      notify(`Stream key ${r.stream_key.name} created.`);
    }));
  }
}
