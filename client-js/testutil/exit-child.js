// Child process for test/exit.test.js: drives a client into one state, calls
// close() when told to on stdin, and must then exit on its own (no timer, socket or fetch left).
// The server lives in the parent, so it cannot mask a leak here.
//
// usage: node exit-child.js <ws-url> <open|reconnecting|connecting|probing>

import WebSocket from 'ws';
import { SessionGateClient } from '../src/index.js';
import { OpaqueWebSocket } from './server.js';

const [url, scenario] = process.argv.slice(2);
const client = new SessionGateClient({
  url,
  WebSocket: scenario === 'probing' ? OpaqueWebSocket : WebSocket,
  random: () => 1,
  reconnect: { minDelay: 60000, maxDelay: 60000 },
  authProbeAfter: 1,
  connectTimeout: 60000,
  probeTimeout: 60000,
  sendTimeout: 60000,
});

const reached = {
  open: (d) => d.state === 'open',
  reconnecting: (d) => d.state === 'reconnecting' && !d.probing,
  connecting: (d) => d.state === 'connecting',
  probing: (d) => d.state === 'reconnecting' && d.probing === true,
}[scenario];
if (!reached) throw new Error(`unknown scenario ${scenario}`);

// Tell the parent when the state is reached; it answers "close" on stdin once
// the server side confirms the state (probe in flight, handshake pending).
// A message is pending too (in flight when open, held otherwise): close()
// must settle it and stop its timer.
let sent = null;
const off = client.on('state', (d) => {
  if (!reached(d)) return;
  off();
  sent = client.send({ n: 1 }).then(() => 'acked', (e) => e.code);
  console.log('reached');
});
process.stdin.setEncoding('utf8');
process.stdin.on('data', (line) => {
  if (!line.includes('close')) return;
  process.stdin.destroy();
  client.close();
  sent.then((outcome) => console.log(`closed in ${scenario}: send ${outcome}`));
});
client.connect();
