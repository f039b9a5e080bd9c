// SIP accounts: list, create, edit, delete; access token shown once; voicemail PIN; mailbox
// settings (limits, message waiting, greeting upload).
import { api, apiUrl, ApiError } from '../api.js';
import { h, table, form, button, notify, errorText, yesNo } from '../ui.js';

export const title = 'Accounts';

export async function render(root, ctx) {
  const [list, trunks] = await Promise.all([api('GET', '/accounts'), api('GET', '/trunks')]);
  const users = ctx.admin ? await api('GET', '/users') : [];
  const trunkName = id => (trunks.find(t => t.id === id) || { name: `#${id}` }).name;
  const userName = id => id == null ? '—' : (users.find(u => u.id === id) || { username: `#${id}` }).username;
  const formSlot = h('div');
  const secretSlot = h('div', { 'aria-live': 'polite' });

  const showForm = a => {
    if (!trunks.length) {
      formSlot.replaceChildren(h('p', { class: 'empty' }, 'Create a trunk first: every account sends its calls through one.'));
      return;
    }
    const fields = [
      { name: 'extension', label: 'Extension', value: a?.extension, required: true },
      { name: 'display_name', label: 'Display name', value: a?.display_name },
      { name: 'sip_uri', label: 'SIP URI', value: a?.sip_uri, placeholder: 'sip:1001@pbx.example.com', required: true },
      { name: 'trunk_id', label: 'Trunk', type: 'select', value: a?.trunk_id ?? trunks[0].id, options: trunks.map(t => [t.id, t.name]) },
      { name: 'user_id', label: 'Panel user', type: 'select', value: a?.user_id ?? '', options: [['', '— none —'], ...users.map(u => [u.id, u.username])] },
      { name: 'voicemail_enabled', label: 'Voicemail', type: 'checkbox', value: a?.voicemail_enabled },
    ];
    const f = form(a ? `Edit account ${a.extension}` : 'New account', fields, a ? 'Save' : 'Create account', async v => {
      const b = {
        extension: v.extension.trim(),
        display_name: v.display_name.trim() || null,
        sip_uri: v.sip_uri.trim(),
        trunk_id: Number(v.trunk_id),
        user_id: v.user_id === '' ? null : Number(v.user_id),
        voicemail_enabled: v.voicemail_enabled,
      };
      if (a) await api('PUT', `/accounts/${a.id}`, b);
      else await api('POST', '/accounts', b);
      notify(a ? `Account ${b.extension} saved.` : `Account ${b.extension} created.`);
      ctx.rerender();
    }, a ? button('Cancel', () => showForm(null), 'secondary') : null);
    const parts = [f];
    if (a) {
      parts.push(form(`Voicemail PIN of ${a.extension}`, [
        { name: 'pin', label: 'New PIN (4 to 12 digits)', type: 'password', autocomplete: 'new-password' },
      ], 'Set PIN', async v => {
        await api('PUT', `/accounts/${a.id}/voicemail-pin`, { pin: v.pin });
        notify(`PIN of ${a.extension} set.`);
        ctx.rerender();
      }, a.has_voicemail_pin ? button('Remove PIN', async () => {
        try { await api('PUT', `/accounts/${a.id}/voicemail-pin`, { pin: null }); notify(`PIN of ${a.extension} removed.`); ctx.rerender(); }
        catch (e) { notify(errorText(e), 'error'); }
      }, 'secondary') : null));
    }
    formSlot.replaceChildren(...parts);
    if (a) mailboxForm(a).then(m => formSlot.append(m)).catch(e => notify(errorText(e), 'error'));
    if (a) f.querySelector('input').focus();
  };

  // The mailbox of account `a`: settings form, greeting upload (Ogg/Opus or WAV file).
  const mailboxForm = async a => {
    const m = await api('GET', `/accounts/${a.id}/mailbox`);
    const settings = form(`Mailbox of ${a.extension}`, [
      { name: 'enabled', label: 'Unanswered calls go to the mailbox', type: 'checkbox', value: m.enabled },
      { name: 'max_messages', label: 'Messages kept at most', type: 'number', min: 1, value: m.max_messages ?? '', placeholder: 'no limit' },
      { name: 'max_length_s', label: 'Longest message (s)', type: 'number', min: 1, value: m.max_length_s ?? '', placeholder: 'gateway default' },
      { name: 'mwi', label: 'SIP message waiting', type: 'select', value: m.mwi, options: [['off', 'off'], ['unsolicited', 'unsolicited NOTIFY'], ['subscribe', 'on SUBSCRIBE']] },
    ], 'Save mailbox', async v => {
      const num = x => (x === '' ? null : Number(x));
      await api('PUT', `/accounts/${a.id}/mailbox`, { enabled: v.enabled, max_messages: num(v.max_messages), max_length_s: num(v.max_length_s), mwi: v.mwi });
      notify(`Mailbox of ${a.extension} saved.`);
      ctx.rerender();
    });
    const file = h('input', { type: 'file', accept: 'audio/ogg,audio/wav,.ogg,.opus,.wav', 'aria-label': 'Greeting file' });
    const upload = async () => {
      const f = file.files[0];
      if (!f) return notify('Choose an Ogg/Opus or WAV file first.', 'error');
      try {
        const me = await api('GET', '/me');
        const res = await fetch(apiUrl(`/accounts/${a.id}/mailbox/greeting`), {
          method: 'PUT',
          headers: { 'X-CSRF-Token': me.csrf_token, 'Content-Type': f.type || 'application/octet-stream' },
          body: f,
          credentials: 'same-origin',
        });
        const body = await res.json().catch(() => null);
        if (!res.ok) throw new ApiError(res.status, body?.error?.code, body?.error?.message || res.statusText);
        notify(`Greeting of ${a.extension} uploaded.`);
        ctx.rerender();
      } catch (e) { notify(errorText(e), 'error'); }
    };
    const greeting = h('div', { class: 'card', role: 'region', 'aria-label': `Greeting of ${a.extension}` },
      h('h2', {}, `Greeting of ${a.extension}`),
      h('p', { class: 'greeting-file' }, m.greeting_file ? `Uploaded: ${m.greeting_file}` : 'The generated tone (no greeting uploaded).'),
      file,
      h('div', { class: 'actions' }, button('Upload greeting', upload),
        m.greeting_file ? button('Back to the tone', async () => {
          try { await api('DELETE', `/accounts/${a.id}/mailbox/greeting`); notify(`Greeting of ${a.extension} removed.`); ctx.rerender(); }
          catch (e) { notify(errorText(e), 'error'); }
        }, 'secondary') : null));
    return h('div', {}, settings, greeting);
  };

  const newToken = async a => {
    if (a.has_access_token && !confirm(`Replace the access token of ${a.extension}? The old one stops working.`)) return;
    try {
      const r = await api('POST', `/accounts/${a.id}/access-token`);
      secretSlot.replaceChildren(h('div', { class: 'card secret', role: 'region', 'aria-label': 'New access token' },
        h('h2', {}, `Access token of ${a.extension}`),
        h('p', {}, 'Shown only now: copy it to the client.'),
        h('code', { class: 'secret-value', 'data-secret': 'access-token' }, r.access_token),
        h('div', { class: 'actions' }, button('Done', () => ctx.rerender()))));
      secretSlot.querySelector('button').focus();
    } catch (e) { notify(errorText(e), 'error'); }
  };

  const columns = [
    { label: 'Extension', cell: a => a.extension },
    { label: 'Display name', cell: a => a.display_name },
    { label: 'SIP URI', cell: a => a.sip_uri },
    { label: 'Trunk', cell: a => trunkName(a.trunk_id) },
    { label: 'User', cell: a => userName(a.user_id) },
    { label: 'Voicemail', cell: a => a.voicemail_enabled ? (a.has_voicemail_pin ? 'on, PIN set' : 'on, no PIN') : 'off' },
    { label: 'Token', cell: a => yesNo(a.has_access_token) },
  ];
  if (ctx.admin) {
    columns.push({ label: 'Actions', class: 'row-actions', cell: a => h('span', {},
      button('Edit', () => showForm(a), 'secondary'),
      button('New token', () => newToken(a), 'secondary'),
      button('Delete', async () => {
        if (!confirm(`Delete account ${a.extension}?`)) return;
        try { await api('DELETE', `/accounts/${a.id}`); notify(`Account ${a.extension} deleted.`); ctx.rerender(); }
        catch (e) { notify(errorText(e), 'error'); }
      }, 'danger')) });
  }
  root.append(
    h('h1', {}, 'SIP accounts'),
    h('p', { class: 'lead' }, 'The identities browsers call with: an extension, its SIP URI and the trunk it uses.'),
    secretSlot,
    table('SIP accounts', columns, list, 'No accounts yet.' + (ctx.admin ? ' Create the first one below.' : '')),
  );
  if (ctx.admin) { root.append(formSlot); showForm(null); }
}
