#!/usr/bin/env node
// Small traffic peers run inside namespaces (tests, demo) with plain node (no TypeScript, no deps).
// Every mode prints one JSON line with what it saw, and bounds itself in time.
//   tcp-sink PORT                 accept one connection, read to the end: {bytes, sha256}
//   tcp-send HOST PORT BYTES      send BYTES deterministic bytes: {bytes, sha256}
//   tcp-connect HOST PORT [MS]    try to connect within MS (default 10000): {result: "connected"|"timeout"|error code}
//   udp-echo PORT                 echo datagrams back until killed
//   udp-ask HOST PORT TEXT [MS]   send TEXT, wait up to MS (default 5000) for the reply: {reply} or {error}
//   udp-send HOST PORT FROM...    send one datagram from each local address FROM: {sent}
import { createHash } from 'node:crypto';
import { createSocket } from 'node:dgram';
import { connect, createServer } from 'node:net';

const [mode, ...args] = process.argv.slice(2);
const print = (value) => process.stdout.write(`${JSON.stringify(value)}\n`);
const deadline = (ms) => setTimeout(() => (print({ error: 'timeout' }), process.exit(3)), ms).unref();

function pattern(bytes) {
  const data = Buffer.alloc(bytes);
  let x = 0x12345678;
  for (let i = 0; i < bytes; i++) {
    x ^= x << 13; x >>>= 0; x ^= x >>> 17; x ^= x << 5; x >>>= 0;
    data[i] = x & 0xff;
  }
  return data;
}

switch (mode) {
  case 'tcp-sink': {
    deadline(60_000);
    const server = createServer((socket) => {
      const hash = createHash('sha256');
      let bytes = 0;
      socket.on('data', (chunk) => { hash.update(chunk); bytes += chunk.length; });
      socket.on('end', () => { print({ bytes, sha256: hash.digest('hex') }); socket.end(); server.close(); });
    });
    server.listen(Number(args[0]), () => print({ listening: true }));
    break;
  }
  case 'tcp-send': {
    deadline(60_000);
    const data = pattern(Number(args[2]));
    const socket = connect(Number(args[1]), args[0], () => socket.end(data));
    socket.on('error', (error) => (print({ error: error.code }), process.exit(1)));
    socket.on('close', () => print({ bytes: data.length, sha256: createHash('sha256').update(data).digest('hex') }));
    socket.resume();
    break;
  }
  case 'tcp-connect': {
    const socket = connect(Number(args[1]), args[0], () => (print({ result: 'connected' }), socket.destroy(), process.exit(0)));
    socket.on('error', (error) => (print({ result: error.code }), process.exit(0)));
    setTimeout(() => (print({ result: 'timeout' }), process.exit(0)), Number(args[2] ?? 10_000)).unref();
    break;
  }
  case 'udp-echo': {
    const socket = createSocket('udp4');
    socket.on('message', (message, from) => socket.send(message, from.port, from.address));
    socket.bind(Number(args[0]), () => print({ listening: true }));
    break;
  }
  case 'udp-ask': {
    deadline(Number(args[3] ?? 5_000));
    const socket = createSocket('udp4');
    socket.on('message', (message) => (print({ reply: message.toString() }), process.exit(0)));
    socket.on('error', (error) => (print({ error: error.code }), process.exit(0)));
    socket.connect(Number(args[1]), args[0], () => socket.send(args[2]));
    break;
  }
  case 'udp-send': {
    deadline(5_000);
    const [host, port, ...sources] = args;
    let sent = 0;
    for (const address of sources) {
      const socket = createSocket('udp4');
      socket.on('error', (error) => (print({ error: error.code }), process.exit(1)));
      socket.bind({ address }, () =>
        socket.send('x', Number(port), host, () => {
          socket.close();
          if (++sent === sources.length) print({ sent });
        }),
      );
    }
    break;
  }
  default:
    process.stderr.write(`unknown mode ${mode}\n`);
    process.exit(2);
}
