// Small DOM helpers shared by the views: element builder, tables with empty states, forms,
// the notice line, formatting.

export function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === undefined || v === null || v === false) continue;
    if (k === 'class') el.className = v;
    else if (k.startsWith('on') && typeof v === 'function') el.addEventListener(k.slice(2), v);
    else if (k === 'text') el.textContent = v;
    else if (v === true) el.setAttribute(k, '');
    else el.setAttribute(k, v);
  }
  for (const c of children.flat()) {
    if (c === undefined || c === null || c === false) continue;
    el.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
  return el;
}

let noticeTimer = null;
export function notify(message, kind = 'ok') {
  const n = document.getElementById('notice');
  n.textContent = message;
  n.className = 'notice ' + kind;
  n.hidden = false;
  clearTimeout(noticeTimer);
  noticeTimer = setTimeout(() => { n.hidden = true; }, kind === 'error' ? 10000 : 4000);
}

export function errorText(e) {
  if (e && e.code) return `${e.message} (${e.code})`;
  return String(e && e.message ? e.message : e);
}

// columns: [{ label, cell: row => Node|string, class? }]
export function table(caption, columns, rows, emptyText) {
  if (!rows.length) return h('p', { class: 'empty' }, emptyText);
  return h('div', { class: 'table-wrap' },
    h('table', {},
      h('caption', { class: 'sr-only' }, caption),
      h('thead', {}, h('tr', {}, columns.map(c => h('th', { scope: 'col' }, c.label)))),
      h('tbody', {}, rows.map(r => h('tr', {}, columns.map(c => h('td', { 'data-label': c.label, class: c.class }, c.cell(r))))))));
}

// fields: [{ name, label, type?, value?, options?, required?, placeholder?, help? }]
export function form(title, fields, submitLabel, onSubmit, extra) {
  const error = h('p', { class: 'error', role: 'alert', hidden: true });
  const inputs = {};
  const rows = fields.map(f => {
    const id = 'f-' + title.replace(/\W+/g, '-').toLowerCase() + '-' + f.name;
    let input;
    if (f.type === 'select') {
      input = h('select', { id, name: f.name }, f.options.map(([v, l]) => h('option', { value: v, selected: String(f.value) === String(v) }, l)));
    } else if (f.type === 'checkbox') {
      input = h('input', { id, name: f.name, type: 'checkbox', checked: !!f.value });
    } else {
      input = h('input', { id, name: f.name, type: f.type || 'text', value: f.value ?? '', required: f.required, placeholder: f.placeholder, autocomplete: f.autocomplete || 'off', min: f.min });
    }
    inputs[f.name] = input;
    const cls = f.type === 'checkbox' ? 'field check' : 'field';
    return h('div', { class: cls }, h('label', { for: id }, f.label), input, f.help ? h('small', {}, f.help) : null);
  });
  const submit = h('button', { type: 'submit' }, submitLabel);
  const el = h('form', { class: 'card form', novalidate: true, 'aria-label': title },
    h('h2', {}, title), h('div', { class: 'fields' }, rows), error, h('div', { class: 'actions' }, submit, extra || null));
  el.addEventListener('submit', async ev => {
    ev.preventDefault();
    error.hidden = true;
    const values = {};
    for (const [name, input] of Object.entries(inputs)) {
      values[name] = input.type === 'checkbox' ? input.checked : input.value;
    }
    submit.disabled = true;
    try {
      await onSubmit(values);
      el.reset();
    } catch (e) {
      error.textContent = errorText(e);
      error.hidden = false;
      const bad = e && e.field && Object.entries(inputs).find(([n]) => e.field.replace(/ /g, '_').startsWith(n) || n.startsWith(e.field.replace(/ /g, '_')));
      (bad ? bad[1] : error).focus?.();
    } finally {
      submit.disabled = false;
    }
  });
  return el;
}

export function button(label, onclick, cls) {
  return h('button', { type: 'button', class: cls, onclick }, label);
}

export function fmtTime(ms) {
  if (ms === null || ms === undefined) return '—';
  const d = new Date(ms);
  return d.toISOString().replace('T', ' ').slice(0, 19) + ' UTC';
}

export function fmtDuration(ms) {
  // Whole seconds elapsed, as media players count.
  const s = Math.floor(ms / 1000);
  return `${Math.floor(s / 60)}:${String(s % 60).padStart(2, '0')}`;
}

export function fmtBytes(n) {
  if (n < 1024) return n + ' B';
  if (n < 1024 * 1024) return (n / 1024).toFixed(1) + ' KiB';
  return (n / 1024 / 1024).toFixed(1) + ' MiB';
}

export function yesNo(v) { return v ? 'yes' : 'no'; }

export function opt(s) { return s === undefined || s === null || s === '' ? null : s; }
