// The panel API: JSON over fetch, the session cookie sent by the browser, the CSRF token
// added to every write, errors turned into ApiError with the server's stable code.

const BASE = '/panel/api/v1';
let csrfToken = null;
let onUnauthenticated = () => {};

export class ApiError extends Error {
  constructor(status, code, message, field) {
    super(message);
    this.status = status;
    this.code = code;
    this.field = field;
  }
}

export function setCsrf(token) { csrfToken = token; }
export function whenUnauthenticated(fn) { onUnauthenticated = fn; }
export function apiUrl(path) { return BASE + path; }

export async function api(method, path, body) {
  const headers = { Accept: 'application/json' };
  if (body !== undefined) headers['Content-Type'] = 'application/json';
  if (method !== 'GET' && csrfToken) headers['X-CSRF-Token'] = csrfToken;
  let response;
  try {
    response = await fetch(BASE + path, {
      method,
      headers,
      body: body === undefined ? undefined : JSON.stringify(body),
      credentials: 'same-origin',
    });
  } catch (e) {
    throw new ApiError(0, 'network', 'The gateway cannot be reached: ' + e.message);
  }
  if (response.status === 204) return null;
  let data = null;
  try { data = await response.json(); } catch { data = null; }
  if (!response.ok) {
    const err = data && data.error ? data.error : { code: 'http_' + response.status, message: response.statusText };
    if (response.status === 401 && path !== '/login') onUnauthenticated();
    throw new ApiError(response.status, err.code, err.message, err.field);
  }
  return data;
}
