// SIP trunks: list, create, edit (the password is write-only), delete, and "Test now": a live
// REGISTER (or OPTIONS) with the stored credentials, its answer shown in the row.
import { api } from '../api.js';
import { h, table, form, button, notify, errorText, yesNo, opt } from '../ui.js';

export const title = 'Trunks';

function fields(t) {
  return [
    { name: 'name', label: 'Name', value: t?.name, required: true },
    { name: 'registrar_uri', label: 'Registrar URI', value: t?.registrar_uri, placeholder: 'sip:pbx.example.com', required: true },
    { name: 'transport', label: 'Transport', type: 'select', value: t?.transport || 'udp', options: [['udp', 'UDP'], ['tcp', 'TCP'], ['tls', 'TLS']] },
    { name: 'username', label: 'Username', value: t?.username },
    { name: 'auth_username', label: 'Auth username', value: t?.auth_username, help: 'Only when it differs from the username' },
    { name: 'password', label: 'Password', type: 'password', autocomplete: 'new-password', placeholder: t?.has_password ? 'unchanged' : '', help: t ? 'Leave empty to keep the stored password' : undefined },
    { name: 'realm', label: 'Realm', value: t?.realm },
    { name: 'register_expiry_s', label: 'Registration expiry (s)', type: 'number', min: 1, value: t?.register_expiry_s ?? 3600 },
    { name: 'outbound_proxy', label: 'Outbound proxy', value: t?.outbound_proxy, placeholder: 'sip:proxy.example.com' },
    { name: 'codecs', label: 'Codecs', value: (t?.codecs || ['opus', 'PCMU', 'PCMA']).join(', ') },
    { name: 'dtmf_mode', label: 'DTMF', type: 'select', value: t?.dtmf_mode || 'rfc4733', options: [['rfc4733', 'RFC 4733'], ['info', 'SIP INFO'], ['inband', 'In-band']] },
    { name: 'srtp', label: 'SRTP', type: 'select', value: t?.srtp || 'off', options: [['off', 'Off'], ['sdes_optional', 'SDES optional'], ['sdes_mandatory', 'SDES mandatory']], help: 'SDES-SRTP towards the PBX' },
    { name: 'register', label: 'Register', type: 'checkbox', value: t ? t.register : true },
    { name: 'enabled', label: 'Enabled', type: 'checkbox', value: t ? t.enabled : true },
  ];
}

// The outcome of POST /trunks/{id}/test as one line, e.g. "ok: 200 OK in 12 ms".
function testText(r) {
  const answer = r.code ? `${r.code} ${r.reason}`.trim() : r.reason;
  return `${r.ok ? 'ok' : 'failed'}: ${r.method} ${answer} in ${r.rtt_ms} ms` + (r.expires_s ? `, expires ${r.expires_s} s` : '');
}

function body(v, editing) {
  const b = {
    name: v.name.trim(),
    registrar_uri: v.registrar_uri.trim(),
    transport: v.transport,
    username: opt(v.username.trim()),
    auth_username: opt(v.auth_username.trim()),
    realm: opt(v.realm.trim()),
    register: v.register,
    register_expiry_s: Number(v.register_expiry_s) || 3600,
    outbound_proxy: opt(v.outbound_proxy.trim()),
    codecs: v.codecs.split(',').map(s => s.trim()).filter(Boolean),
    dtmf_mode: v.dtmf_mode,
    srtp: v.srtp,
    enabled: v.enabled,
  };
  if (v.password !== '' || !editing) b.password = opt(v.password);
  return b;
}

export async function render(root, ctx) {
  const list = await api('GET', '/trunks');
  const formSlot = h('div');
  const showForm = t => {
    const f = form(t ? `Edit trunk ${t.name}` : 'New trunk', fields(t), t ? 'Save' : 'Create trunk', async v => {
      if (t) await api('PUT', `/trunks/${t.id}`, body(v, true));
      else await api('POST', '/trunks', body(v, false));
      notify(t ? `Trunk ${v.name} saved.` : `Trunk ${v.name} created.`);
      ctx.rerender();
    }, t ? button('Cancel', () => showForm(null), 'secondary') : null);
    formSlot.replaceChildren(f);
    if (t) f.querySelector('input').focus();
  };
  const columns = [
    { label: 'Name', cell: t => t.name },
    { label: 'Registrar', cell: t => t.registrar_uri },
    { label: 'Transport', cell: t => t.transport.toUpperCase() },
    { label: 'Username', cell: t => t.username || '—' },
    { label: 'Password', cell: t => t.has_password ? 'set' : 'none' },
    { label: 'Register', cell: t => t.register ? `yes, ${t.register_expiry_s} s` : 'no' },
    { label: 'Enabled', cell: t => yesNo(t.enabled) },
  ];
  if (ctx.admin) {
    const results = new Map();
    columns.push({ label: 'Test', cell: t => {
      const out = h('output', { class: 'trunk-test', 'aria-live': 'polite', 'data-trunk': t.name });
      results.set(t.id, out);
      return out;
    } });
    columns.push({ label: 'Actions', class: 'row-actions', cell: t => h('span', {},
      button('Test now', async ev => {
        const out = results.get(t.id);
        ev.target.disabled = true;
        out.className = 'trunk-test';
        out.textContent = 'testing…';
        try {
          const r = await api('POST', `/trunks/${t.id}/test`);
          out.textContent = testText(r);
          out.className = 'trunk-test ' + (r.ok ? 'good' : 'bad');
        } catch (e) {
          out.textContent = errorText(e);
          out.className = 'trunk-test bad';
        } finally {
          ev.target.disabled = false;
        }
      }, 'secondary'),
      button('Edit', () => showForm(t), 'secondary'),
      button('Delete', async () => {
        if (!confirm(`Delete trunk ${t.name}?`)) return;
        try { await api('DELETE', `/trunks/${t.id}`); notify(`Trunk ${t.name} deleted.`); ctx.rerender(); }
        catch (e) { notify(errorText(e), 'error'); }
      }, 'danger')) });
  }
  root.append(
    h('h1', {}, 'SIP trunks'),
    h('p', { class: 'lead' }, 'Where calls go out and come in: the PBXs and providers Bifrons registers to.'),
    table('SIP trunks', columns, list, 'No trunks yet.' + (ctx.admin ? ' Create the first one below.' : '')),
  );
  if (ctx.admin) { root.append(formSlot); showForm(null); }
}
