// Live view: Janus sessions and handles with ICE/DTLS state and bitrates, SIP registrations
// and publishers, pushed by the gateway every second over Server-Sent Events.
import { api, apiUrl } from '../api.js';
import { h, table, fmtTime } from '../ui.js';

export const title = 'Live';

const rate = v => v === null || v === undefined ? '—' : `${v} kbit/s`;

function renderSnapshot(slot, s) {
  const rows = [];
  for (const session of s.sessions) {
    if (!session.handles.length) rows.push({ session, handle: null });
    for (const handle of session.handles) rows.push({ session, handle });
  }
  const media = hd => !hd || !hd.media.length ? '—' : h('ul', { class: 'media' },
    hd.media.map(m => h('li', {}, `${m.kind} ${m.mid}: in ${rate(m.kbps_in)}, out ${rate(m.kbps_out)}`)));
  const state = (v, good) => v ? h('span', { class: 'badge ' + (v === good ? 'good' : v === 'failed' ? 'bad' : 'other') }, v) : '—';
  slot.replaceChildren(
    h('h2', {}, `Sessions (${s.sessions.length})`),
    table('Janus sessions and handles', [
      { label: 'Session', cell: r => String(r.session.id) },
      { label: 'Transport', cell: r => r.session.transport.replace('janus.transport.', '') },
      { label: 'Handle', cell: r => r.handle ? String(r.handle.id) : '—' },
      { label: 'Plugin', cell: r => r.handle ? r.handle.plugin.replace('janus.plugin.', '') : '—' },
      { label: 'ICE', cell: r => state(r.handle?.ice_state, 'connected') },
      { label: 'DTLS', cell: r => state(r.handle?.dtls_state, 'connected') },
      { label: 'Media', cell: r => media(r.handle) },
    ], rows, 'No sessions right now.'),
    h('h2', {}, 'SIP registrations'),
    s.feeds.sip
      ? table('SIP registrations', [
        { label: 'Trunk', cell: r => r.trunk },
        { label: 'Account', cell: r => r.account || 'trunk' },
        { label: 'State', cell: r => state(r.state, 'registered') },
        { label: 'Answer', cell: r => r.detail || '—' },
        { label: 'Expires', cell: r => r.expires_s ? `${r.expires_s} s` : '—' },
        { label: 'Since', cell: r => fmtTime(r.updated_ms) },
      ], s.sip_registrations, 'No registrations.')
      : h('p', { class: 'empty' }, 'No SIP service reports registrations on this gateway.'),
    h('h2', {}, 'Publishers'),
    s.feeds.publishers
      ? table('RTMP, WHIP and janus.js publishers', [
        { label: 'Mountpoint', cell: r => r.mountpoint },
        { label: 'Protocol', cell: r => r.protocol.toUpperCase() },
        { label: 'Stream key', cell: r => r.stream_key },
        { label: 'Viewers', cell: r => String(r.viewers) },
        { label: 'Bitrate', cell: r => rate(r.kbps) },
        { label: 'Codecs', cell: r => (r.codecs || []).join(' + ') || '—' },
        { label: 'Remote', cell: r => r.remote || '—' },
        { label: 'Since', cell: r => fmtTime(r.since_ms) },
      ], s.publishers, 'Nobody is publishing.')
      : h('p', { class: 'empty' }, 'RTMP ingest is off on this gateway ([rtmp] enabled = false).'),
    h('h2', {}, 'Egress'),
    table('RTMP egresses', [
      { label: 'Mountpoint', cell: r => String(r.mountpoint) },
      { label: 'Target', cell: r => r.name ? `${r.name} (${r.target})` : r.target },
      { label: 'State', cell: r => r.reason ? `${r.state}: ${r.reason}` : r.state },
      { label: 'Video', cell: r => r.video },
      { label: 'Since', cell: r => fmtTime(r.started_ms) },
    ], s.egresses || [], 'No mountpoint is re-published.'),
  );
}

export async function render(root) {
  const status = h('p', { class: 'live-status', role: 'status' }, 'Connecting…');
  const slot = h('div', { id: 'live-data' });
  root.append(h('h1', {}, 'Live'), status, slot);
  let source = null;
  let retry = null;
  let stopped = false;
  const connect = () => {
    source = new EventSource(apiUrl('/live/events'));
    source.addEventListener('snapshot', ev => {
      const snap = JSON.parse(ev.data);
      status.textContent = `Live · updated ${fmtTime(snap.generated_ms)}`;
      status.className = 'live-status up';
      renderSnapshot(slot, snap);
    });
    source.addEventListener('error', async () => {
      status.textContent = 'Disconnected from the gateway; retrying…';
      status.className = 'live-status down';
      // The browser retries a dropped stream by itself, but gives up on an error answer (the
      // session ended, the gateway restarted): then ask who we are, which shows the login
      // form on 401, and otherwise reconnect a little later.
      if (source.readyState !== EventSource.CLOSED || stopped) return;
      try {
        await api('GET', '/me');
        if (!stopped) retry = setTimeout(connect, 2000);
      } catch (e) {
        if (e.status !== 401 && !stopped) retry = setTimeout(connect, 2000);
      }
    });
  };
  connect();
  return () => { stopped = true; clearTimeout(retry); source.close(); };
}
