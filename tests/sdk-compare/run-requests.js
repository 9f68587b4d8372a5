'use strict';
// Sends requests through the SAP Cloud SDK for JavaScript, so that
// tests/tests/sdk_compare.rs can compare what the SDK sends to a backend with
// what the gateway sends for the same destinations.
//
// Input on stdin, one JSON job:
//   { "requests": [{ "destinationName": "D", "path": "/x?y=1",
//                    "jwt": "optional user JWT", "refreshToken": "optional" }] }
// `jwt` and `refreshToken` are passed to the SDK as the destination fetch
// options of the same names.
// The SDK finds destinations through VCAP_SERVICES (and `destinations`, if
// set), as it does on Cloud Foundry.
//
// Output on stdout, one JSON line per request, in order:
//   { "index": 0, "destinationName": "D", "path": "/x?y=1", "status": 200 }
//   { "index": 1, "destinationName": "E", "path": "/", "error": "Failed to ...: ..." }
// and a last line { "done": true, "blockedConnections": ["host:port", ...] }.
// The SDK's own log lines may appear between them, so readers keep only the
// lines that are JSON objects with `index` or `done`.
//
// Every outgoing TCP connection to a host other than 127.0.0.1 is rejected
// before it is opened and listed in `blockedConnections`, so that nothing the
// SDK does here can reach another machine.

const net = require('node:net');

const ALLOWED_HOST = '127.0.0.1';
const blockedConnections = [];

/** Returns the `host:port` that a `net.Socket#connect` call targets, or null for an IPC path. */
function connectHost(args) {
  // net.connect() passes its arguments to Socket#connect already normalised
  // as one array [options, callback].
  const first = Array.isArray(args[0]) ? args[0][0] : args[0];
  if (first !== null && typeof first === 'object') {
    if (typeof first.path === 'string') {
      return null;
    }
    return `${first.host ?? 'localhost'}:${first.port}`;
  }
  const host = typeof args[1] === 'string' ? args[1] : 'localhost';
  return `${host}:${first}`;
}

/** Rejects connections to any host but 127.0.0.1 and records them. */
function guardConnections() {
  const connect = net.Socket.prototype.connect;
  net.Socket.prototype.connect = function guardedConnect(...args) {
    const target = connectHost(args);
    if (target !== null && !target.startsWith(`${ALLOWED_HOST}:`)) {
      blockedConnections.push(target);
      process.nextTick(() =>
        this.destroy(
          new Error(
            `connection to ${target} rejected: this test only allows ${ALLOWED_HOST}`
          )
        )
      );
      return this;
    }
    return connect.apply(this, args);
  };
}

/** Joins an error's message with the messages of its causes. */
function errorMessage(error) {
  const messages = [];
  for (
    let current = error, depth = 0;
    current && depth < 10;
    current = current.cause, depth += 1
  ) {
    messages.push(current.message ?? String(current));
  }
  return messages.join(': ');
}

async function readStdin() {
  const chunks = [];
  for await (const chunk of process.stdin) {
    chunks.push(chunk);
  }
  return Buffer.concat(chunks).toString('utf8');
}

function printLine(value) {
  process.stdout.write(`${JSON.stringify(value)}\n`);
}

async function main() {
  guardConnections();
  // Loaded after the guard, so that connections opened while the SDK loads
  // are checked as well.
  const { executeHttpRequest } = require('@sap-cloud-sdk/http-client');

  const job = JSON.parse(await readStdin());
  if (!Array.isArray(job.requests)) {
    throw new Error('the job on stdin has no "requests" array');
  }

  for (const [index, request] of job.requests.entries()) {
    const { destinationName, path, jwt, refreshToken } = request;
    const result = { index, destinationName, path };
    try {
      const destination = { destinationName };
      if (jwt) {
        destination.jwt = jwt;
      }
      if (refreshToken) {
        destination.refreshToken = refreshToken;
      }
      const response = await executeHttpRequest(destination, {
        method: 'get',
        url: path
      });
      result.status = response.status;
    } catch (error) {
      result.error = errorMessage(error);
      if (error.response?.status) {
        result.status = error.response.status;
      }
    }
    printLine(result);
  }
  printLine({ done: true, blockedConnections });
}

main().catch(error => {
  process.stderr.write(`run-requests.js failed: ${errorMessage(error)}\n`);
  process.exitCode = 1;
});
