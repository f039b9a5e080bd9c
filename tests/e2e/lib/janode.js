// janode set-up shared by the tests: quiet logs, one helper to connect.

import Janode from 'janode';

Janode.Logger.setLevel(process.env.JANODE_LOG || 'none');

/**
 * Opens a janode connection (Janus API, or Admin API with `admin: true`).
 * `retry_time_secs`/`max_retries` are minimal so a refused connection fails the test at once.
 */
export function connect(url, { apisecret, admin = false } = {}) {
  return Janode.connect({
    is_admin: admin,
    address: { url, ...(apisecret !== undefined ? { apisecret } : {}) },
    retry_time_secs: 1,
    max_retries: 1,
  });
}

export { Janode };
