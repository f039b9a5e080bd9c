'use strict';
// janode imports its Unix-socket transport unconditionally; the tests never use it.
exports.createSocket = function createSocket() {
  throw new Error('unix-dgram is stubbed out in the e2e suite (WebSocket transport only)');
};
