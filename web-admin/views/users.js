// Panel users (admin only): create, change role, reset password, delete.
import { api } from '../api.js';
import { h, table, form, button, notify, errorText, fmtTime } from '../ui.js';

export const title = 'Users';

export async function render(root, ctx) {
  const list = await api('GET', '/users');
  const columns = [
    { label: 'Username', cell: u => u.username + (u.id === ctx.user.id ? ' (you)' : '') },
    { label: 'Role', cell: u => {
      const sel = h('select', { 'aria-label': `Role of ${u.username}` },
        h('option', { value: 'admin', selected: u.role === 'admin' }, 'admin'),
        h('option', { value: 'viewer', selected: u.role === 'viewer' }, 'viewer'));
      sel.addEventListener('change', async () => {
        try { await api('PATCH', `/users/${u.id}`, { role: sel.value }); notify(`${u.username} is now ${sel.value}.`); ctx.rerender(); }
        catch (e) { notify(errorText(e), 'error'); sel.value = u.role; }
      });
      return sel;
    } },
    { label: 'Created', cell: u => fmtTime(u.created_ms) },
    { label: 'Last login', cell: u => u.last_login_ms ? fmtTime(u.last_login_ms) : 'never' },
    { label: 'Actions', class: 'row-actions', cell: u => h('span', {},
      button('Set password', async () => {
        const pw = prompt(`New password for ${u.username} (at least 8 characters):`);
        if (!pw) return;
        try { await api('PATCH', `/users/${u.id}`, { password: pw }); notify(`Password of ${u.username} changed.`); }
        catch (e) { notify(errorText(e), 'error'); }
      }, 'secondary'),
      button('Delete', async () => {
        if (!confirm(`Delete user ${u.username}?`)) return;
        try { await api('DELETE', `/users/${u.id}`); notify(`User ${u.username} deleted.`); ctx.rerender(); }
        catch (e) { notify(errorText(e), 'error'); }
      }, 'danger')) },
  ];
  root.append(
    h('h1', {}, 'Users'),
    h('p', { class: 'lead' }, 'Who may log in to this panel: admins change things, viewers only look.'),
    table('Users', columns, list, 'No users.'),
    form('New user', [
      { name: 'username', label: 'Username', required: true },
      { name: 'password', label: 'Password', type: 'password', autocomplete: 'new-password', help: 'At least 8 characters' },
      { name: 'role', label: 'Role', type: 'select', value: 'viewer', options: [['viewer', 'viewer'], ['admin', 'admin']] },
    ], 'Create user', async v => {
      await api('POST', '/users', { username: v.username.trim(), password: v.password, role: v.role });
      notify(`User ${v.username.trim()} created.`);
      ctx.rerender();
    }),
  );
}
