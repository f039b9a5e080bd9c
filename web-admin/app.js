// The panel's shell: log in, keep the session's CSRF token, route #/view to a view module.

import { api, setCsrf, whenUnauthenticated } from './api.js';
import { errorText } from './ui.js';
import * as live from './views/live.js';
import * as trunks from './views/trunks.js';
import * as accounts from './views/accounts.js';
import * as streamKeys from './views/stream-keys.js';
import * as recordings from './views/recordings.js';
import * as egress from './views/egress.js';
import * as users from './views/users.js';

const VIEWS = { live, trunks, accounts, 'stream-keys': streamKeys, egress, recordings, users };
const $ = id => document.getElementById(id);
let me = null;
let cleanup = null;

function showLogin(message) {
  me = null;
  setCsrf(null);
  if (cleanup) { cleanup(); cleanup = null; }
  $('top').hidden = true;
  $('view').replaceChildren();
  $('login').hidden = false;
  const err = $('login-error');
  err.hidden = !message;
  err.textContent = message || '';
  document.title = 'Log in · Bifrons admin';
  $('login-username').focus();
}

function signedIn(info) {
  me = info.user;
  setCsrf(info.csrf_token);
  $('login').hidden = true;
  $('top').hidden = false;
  $('who').textContent = `${me.username} (${me.role})`;
  for (const a of document.querySelectorAll('[data-admin-only]')) a.parentElement.hidden = me.role !== 'admin';
  route();
}

// Set by a navigation (hash change): the new page's heading then takes the focus, so keyboard
// and screen-reader users land on it; a re-render after an edit leaves the focus alone.
let navigated = false;

async function route() {
  if (!me) return;
  let name = (location.hash.replace(/^#\/?/, '') || 'live').split('?')[0];
  if (!VIEWS[name] || (name === 'users' && me.role !== 'admin')) name = 'live';
  for (const a of document.querySelectorAll('#nav a')) {
    if (a.dataset.view === name) a.setAttribute('aria-current', 'page');
    else a.removeAttribute('aria-current');
  }
  if (cleanup) { cleanup(); cleanup = null; }
  const view = $('view');
  view.replaceChildren();
  view.dataset.view = name;
  const ctx = { user: me, admin: me.role === 'admin', rerender: route };
  try {
    cleanup = (await VIEWS[name].render(view, ctx)) || null;
  } catch (e) {
    if (e.status !== 401) {
      view.replaceChildren();
      const p = document.createElement('p');
      p.className = 'error';
      p.setAttribute('role', 'alert');
      p.textContent = 'Could not load this page: ' + errorText(e);
      view.append(p);
    }
  }
  document.title = `${VIEWS[name].title} · Bifrons admin`;
  const heading = view.querySelector('h1');
  if (navigated && heading) {
    heading.tabIndex = -1;
    heading.focus();
  }
  navigated = false;
}

whenUnauthenticated(() => showLogin('Your session ended; log in again.'));

window.addEventListener('hashchange', () => { navigated = true; route(); });

document.addEventListener('DOMContentLoaded', async () => {
  $('login-form').addEventListener('submit', async ev => {
    ev.preventDefault();
    const err = $('login-error');
    err.hidden = true;
    const username = $('login-username').value.trim();
    const password = $('login-password').value;
    if (!username || !password) {
      err.textContent = 'Enter a username and a password.';
      err.hidden = false;
      return;
    }
    try {
      const info = await api('POST', '/login', { username, password });
      $('login-password').value = '';
      signedIn(info);
    } catch (e) {
      err.textContent = e.code === 'invalid_credentials' ? 'Wrong username or password.' : errorText(e);
      err.hidden = false;
      $('login-password').focus();
    }
  });
  $('logout').addEventListener('click', async () => {
    try { await api('POST', '/logout'); } catch { /* the session is gone either way */ }
    showLogin('');
  });
  try {
    signedIn(await api('GET', '/me'));
  } catch {
    showLogin('');
  }
});
