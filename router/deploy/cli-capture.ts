/**
 * `vrouter capture [--router R] [-i IFACE]... [-w FILE | -w -] [-c N | --count N] [FILTER-EXPR]`:
 * a live pcapng capture of the running lab's interfaces, as tcpdump -w would write it. `-w -` is
 * standard output (`| tshark -r -`, `| wireshark -k -i -`); a reader that goes away ends it
 * quietly, as Ctrl-C does. What the router sends after its reply line is the pcapng stream itself.
 */
import { createWriteStream } from 'node:fs';
import type { Writable } from 'node:stream';
import { compileFilterFor } from './capture/capture-filter.ts';
import { UsageError } from './cli-errors.ts';
import { connectControl, connectionError, ControlError, requestLine } from './control-client.ts';

export const CAPTURE_USAGE = 'usage: vrouter capture [--router R] [-i IFACE]... -w FILE|- [-c N] [FILTER-EXPR]';

interface CaptureArgs {
  interfaces: string[];
  output: string;
  count: number;
  filter: string;
}

function parseCaptureArgs(argv: string[]): CaptureArgs {
  const interfaces: string[] = [];
  let output: string | null = null;
  let count = 0;
  const words: string[] = [];
  for (let i = 0; i < argv.length; i++) {
    const word = argv[i]!;
    const value = (): string => {
      const next = argv[++i];
      if (next === undefined) throw new UsageError(`capture: ${word} needs a value\n${CAPTURE_USAGE}`);
      return next;
    };
    if (word === '-i') interfaces.push(value());
    else if (word === '-w') output = value();
    else if (word === '-c' || word === '--count') {
      const text = value();
      count = Number(text);
      if (!/^[0-9]+$/.test(text) || !Number.isSafeInteger(count) || count < 1) throw new UsageError(`capture: ${word} ${text}: not a packet count >= 1`);
    } else if (word === '-h' || word === '--help') throw new UsageError(CAPTURE_USAGE);
    else if (word.startsWith('-') && words.length === 0) throw new UsageError(`capture: unknown option ${word}\n${CAPTURE_USAGE}`);
    else words.push(word);
  }
  if (output === null) throw new UsageError(`capture: say where the pcapng goes: -w FILE or -w - (standard output)\n${CAPTURE_USAGE}`);
  const filter = words.join(' ');
  compileFilterFor('capture', filter, (message) => new UsageError(message));
  return { interfaces, output, count, filter };
}

export async function runCapture(socketPath: string, argv: string[]): Promise<void> {
  const args = parseCaptureArgs(argv);
  const socket = connectControl(socketPath);
  const out: Writable = args.output === '-' ? process.stdout : createWriteStream(args.output);
  // A reader of stdout that goes away (`| head`) ends the capture, without a stack trace.
  out.on('error', () => socket.destroy());
  const stop = (): void => void socket.end();
  process.once('SIGINT', stop);
  process.once('SIGTERM', stop);
  await new Promise<void>((resolve, reject) => {
    let head = Buffer.alloc(0);
    let started = false;
    socket.on('connect', () => socket.write(requestLine('capture', { interfaces: args.interfaces, filter: args.filter, count: args.count })));
    socket.on('data', (chunk: Buffer) => {
      if (started) {
        if (!out.write(chunk)) socket.pause();
        return;
      }
      head = Buffer.concat([head, chunk]);
      const newline = head.indexOf(0x0a);
      if (newline < 0) return;
      const reply = JSON.parse(head.subarray(0, newline).toString('utf8')) as { ok: boolean; result?: { interfaces: string[] }; error?: string };
      if (!reply.ok) {
        socket.destroy();
        return reject(new ControlError(reply.error ?? 'capture refused'));
      }
      started = true;
      process.stderr.write(`vrouter capture: listening on ${reply.result!.interfaces.join(', ')}\n`);
      const rest = head.subarray(newline + 1);
      if (rest.length) out.write(rest);
    });
    out.on('drain', () => socket.resume());
    socket.on('error', (error: NodeJS.ErrnoException) => reject(connectionError(socketPath, error)));
    socket.on('close', () => resolve());
  });
  if (out !== process.stdout) await new Promise<void>((resolve) => out.end(resolve));
}
