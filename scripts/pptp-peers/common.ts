/**
 * What the PPTP test peers share: JSON-line reporting, option parsing, the RFC 2637 control
 * channel over a TCP socket, and enhanced GRE (version 1) through a raw IPv4 socket (protocol 47,
 * the `raw-socket` addon). This kernel has no PPP, so pptpd/pppd cannot run: these peers speak just
 * enough of the protocol to open calls and to exchange GRE packets with the right call ids.
 *
 * Every peer prints one JSON object per line on stdout (`role`, `t` in ms since start, `event`,
 * and the event's fields) and ends with a `summary` line. Errors go to stderr.
 */
import { createRequire } from 'node:module';
import type { Socket } from 'node:net';
import {
  PptpMessageView,
  PptpParse,
  encodePptpMessage,
  parsePptpMessage,
  pptpMessageName,
  splitPptpStream,
  type PptpFieldValues,
} from '../../netfilter/helpers/pptp-messages.ts';
import { GRE_PROTOCOL_PPP, emitGreV1, greHasSequence, greV1CallId, greV1LengthOf, greV1PayloadLength, greV1Sequence, greVersion, greProtocol, greHeaderLength } from '../../router/wire/gre.ts';

export type Role = 'pns' | 'pac';
const started = performance.now();

/** Prints one JSON line. */
export function report(role: Role, event: string, fields: Record<string, unknown> = {}): void {
  process.stdout.write(`${JSON.stringify({ role, t: Math.round(performance.now() - started), event, ...fields })}\n`);
}

export const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

/** `--name value` and `--flag` options; numbers are parsed where the default is a number. */
export function parseOptions<T extends Record<string, string | number | boolean>>(argv: string[], defaults: T, usage: string): T {
  const options: Record<string, string | number | boolean> = { ...defaults };
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]!;
    if (arg === '--help' || arg === '-h') {
      process.stdout.write(`${usage}\n`);
      process.exit(0);
    }
    if (!arg.startsWith('--')) fail(`unexpected argument ${arg}\n${usage}`);
    const name = arg.slice(2).replace(/-([a-z])/g, (_, c: string) => c.toUpperCase());
    if (!(name in defaults)) fail(`unknown option ${arg}\n${usage}`);
    const kind = typeof defaults[name];
    if (kind === 'boolean') {
      options[name] = true;
      continue;
    }
    const value = argv[++i];
    if (value === undefined) fail(`${arg} needs a value`);
    if (kind === 'number') {
      const n = Number(value);
      if (!Number.isFinite(n)) fail(`${arg}: not a number: ${value}`);
      options[name] = n;
    } else {
      options[name] = value;
    }
  }
  return options as T;
}

export function fail(message: string): never {
  process.stderr.write(`${message}\n`);
  process.exit(2);
}

/** A received control message: its type and a view over its own bytes. */
export interface ControlMessage {
  type: number;
  view: PptpMessageView;
}

/**
 * The control connection: frames the TCP stream into messages by their Length field and hands
 * them out in order. `next` rejects on timeout or when the connection ends first.
 */
export class ControlChannel {
  private pending = Buffer.alloc(0);
  private readonly queue: ControlMessage[] = [];
  private waiter: ((message: ControlMessage | null) => void) | null = null;
  ended = false;

  constructor(
    readonly socket: Socket,
    private readonly role: Role,
  ) {
    socket.on('data', (chunk: Buffer) => this.receive(chunk));
    const end = (): void => {
      this.ended = true;
      this.waiter?.(null);
      this.waiter = null;
    };
    socket.on('end', end);
    socket.on('close', end);
    socket.on('error', (error) => {
      report(this.role, 'tcp-error', { message: error.message });
      end();
    });
  }

  send(type: number, fields: PptpFieldValues): void {
    const message = encodePptpMessage(type, fields);
    report(this.role, 'sent', { msg: pptpMessageName(type), ...numericFields(fields) });
    this.socket.write(message);
  }

  async next(timeoutMs: number): Promise<ControlMessage> {
    const queued = this.queue.shift();
    if (queued) return queued;
    if (this.ended) throw new Error('control connection closed');
    const message = await new Promise<ControlMessage | null>((resolve) => {
      const timer = setTimeout(() => {
        this.waiter = null;
        resolve(null);
      }, timeoutMs);
      this.waiter = (m) => {
        clearTimeout(timer);
        resolve(m);
      };
    });
    if (!message) throw new Error(this.ended ? 'control connection closed' : `no control message within ${timeoutMs} ms`);
    return message;
  }

  /** Waits for a message of `type`; anything else first is an error. */
  async expect(type: number, timeoutMs: number): Promise<PptpMessageView> {
    const message = await this.next(timeoutMs);
    if (message.type !== type) throw new Error(`expected ${pptpMessageName(type)}, got ${pptpMessageName(message.type)}`);
    return message.view;
  }

  private receive(chunk: Buffer): void {
    const { messages, rest } = splitPptpStream(Buffer.concat([this.pending, chunk]));
    this.pending = Buffer.from(rest);
    for (const bytes of messages) {
      const view = new PptpMessageView();
      const parsed = parsePptpMessage(bytes, 0, bytes.length, view);
      if (parsed !== PptpParse.OK) {
        report(this.role, 'recv-bad', { parse: parsed, bytes: bytes.length });
        continue;
      }
      const message = { type: view.type, view };
      if (this.waiter) {
        const waiter = this.waiter;
        this.waiter = null;
        waiter(message);
      } else {
        this.queue.push(message);
      }
    }
  }
}

function numericFields(fields: PptpFieldValues): Record<string, number | string> {
  const out: Record<string, number | string> = {};
  for (const [name, value] of Object.entries(fields)) if (typeof value === 'number' || value.length > 0) out[name] = value;
  return out;
}

/** The few members of the `raw-socket` module these peers use. */
interface RawSocket {
  on(event: 'message', listener: (buffer: Buffer, source: string) => void): void;
  on(event: 'error', listener: (error: Error) => void): void;
  send(buffer: Buffer, offset: number, length: number, address: string, callback: (error: Error | null, bytes: number) => void): void;
  close(): void;
}
interface RawSocketModule {
  createSocket(options: { protocol: number; addressFamily?: number; bufferSize?: number }): RawSocket;
}

const IPPROTO_GRE = 47;

/** One enhanced GRE packet as received. */
export interface GrePacket {
  from: string;
  callId: number;
  sequence: number;
  payload: Buffer;
}

/**
 * Enhanced GRE over a raw socket. Received datagrams include their IPv4 header; only version 1
 * packets of protocol 0x880B are handed on, anything else is reported and ignored.
 */
export class GreSocket {
  private readonly socket: RawSocket;
  private closed = false;

  constructor(
    private readonly role: Role,
    onPacket: (packet: GrePacket) => void,
  ) {
    const raw = createRequire(import.meta.url)('raw-socket') as RawSocketModule;
    this.socket = raw.createSocket({ protocol: IPPROTO_GRE, bufferSize: 65535 });
    this.socket.on('error', (error) => report(role, 'gre-error', { message: error.message }));
    this.socket.on('message', (buffer, source) => {
      const ihl = (buffer[0]! & 0x0f) * 4;
      const gre = buffer.subarray(ihl);
      if (gre.length < 8 || greVersion(gre, 0) !== 1 || greProtocol(gre, 0) !== GRE_PROTOCOL_PPP) {
        report(role, 'gre-ignored', { from: source, bytes: gre.length });
        return;
      }
      const header = greHeaderLength(gre, 0);
      const length = greV1PayloadLength(gre, 0);
      onPacket({
        from: source,
        callId: greV1CallId(gre, 0),
        sequence: greHasSequence(gre, 0) ? greV1Sequence(gre, 0) : -1,
        payload: Buffer.from(gre.subarray(header, header + length)),
      });
    });
  }

  send(to: string, callId: number, sequence: number, payload: Buffer): Promise<void> {
    const repr = { callId, sequence, payload };
    const buf = Buffer.alloc(greV1LengthOf(repr));
    emitGreV1(repr, buf, 0);
    return new Promise((resolve) => {
      this.socket.send(buf, 0, buf.length, to, (error) => {
        if (error) report(this.role, 'gre-send-error', { to, message: error.message });
        resolve();
      });
    });
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.socket.close();
  }
}

/** A PPP-looking payload (address/control ff 03, then text) that names its sender and packet. */
export function grePayload(role: Role, call: number, sequence: number): Buffer {
  return Buffer.concat([Buffer.from([0xff, 0x03]), Buffer.from(`${role}:call${call}:seq${sequence}`, 'latin1')]);
}

export type GreFirst = 'pns' | 'pac' | 'both';

export function parseGreFirst(value: string): GreFirst {
  if (value === 'pns' || value === 'client') return 'pns';
  if (value === 'pac' || value === 'server') return 'pac';
  if (value === 'both') return 'both';
  return fail(`--gre-first: pns (client), pac (server) or both, not ${value}`);
}

/** The GRE side of one call, on either peer. */
export class GreCall {
  readonly received: GrePacket[] = [];
  sent = 0;
  private firstResolve: (() => void) | null = null;
  readonly firstReceived: Promise<void>;
  private allResolve: (() => void) | null = null;
  readonly allReceived: Promise<void>;

  constructor(
    readonly index: number,
    /** This peer's call id: what the other side's GRE must carry. */
    readonly ownCallId: number,
    /** The other side's call id as the control connection told it: what this peer's GRE carries. */
    readonly peerCallId: number,
    readonly peerAddress: string,
    readonly expected: number,
  ) {
    this.firstReceived = new Promise((resolve) => (this.firstResolve = resolve));
    this.allReceived = new Promise((resolve) => (this.allResolve = resolve));
  }

  take(packet: GrePacket): void {
    this.received.push(packet);
    this.firstResolve?.();
    this.firstResolve = null;
    if (this.received.length >= this.expected) {
      this.allResolve?.();
      this.allResolve = null;
    }
  }

  summary(): Record<string, unknown> {
    return {
      call: this.index,
      ownCallId: this.ownCallId,
      peerCallId: this.peerCallId,
      greSent: this.sent,
      greReceived: this.received.length,
      receivedCallIds: [...new Set(this.received.map((p) => p.callId))],
      ok: this.received.length >= this.expected,
    };
  }
}

/**
 * Runs this peer's half of a call's GRE exchange: send `count` packets `interval` ms apart, first
 * waiting up to `waitMs` for the other side's first packet unless this side goes first.
 */
export async function sendGre(role: Role, gre: GreSocket, call: GreCall, first: GreFirst, count: number, interval: number, waitMs: number, active: () => boolean): Promise<void> {
  if (first !== 'both' && first !== role) {
    const arrived = await Promise.race([call.firstReceived.then(() => true), sleep(waitMs).then(() => false)]);
    if (!arrived) report(role, 'gre-wait-timeout', { call: call.index, waitedMs: waitMs });
  }
  for (let sequence = 0; sequence < count && active(); sequence++) {
    await gre.send(call.peerAddress, call.peerCallId, sequence, grePayload(role, call.index, sequence));
    call.sent++;
    report(role, 'gre-sent', { call: call.index, to: call.peerAddress, callId: call.peerCallId, seq: sequence });
    if (sequence + 1 < count) await sleep(interval);
  }
}

/**
 * Hands received GRE packets to the call they belong to (by this peer's call id and the sender's
 * address). A packet for no active call is kept for a moment: the other side may send its first
 * GRE packet right after its control message, before this peer has set the call up.
 */
export class GreDemux {
  private readonly active = new Set<GreCall>();
  private early: { packet: GrePacket; at: number }[] = [];

  constructor(private readonly role: Role) {}

  receive(packet: GrePacket): void {
    for (const call of this.active) {
      if (call.ownCallId === packet.callId && call.peerAddress === packet.from) {
        this.deliver(call, packet);
        return;
      }
    }
    const now = performance.now();
    this.early = this.early.filter((e) => now - e.at < EARLY_KEEP_MS);
    this.early.push({ packet, at: now });
    report(this.role, 'gre-unmatched', { from: packet.from, callId: packet.callId, seq: packet.sequence });
  }

  add(call: GreCall): void {
    this.active.add(call);
    const now = performance.now();
    const mine = this.early.filter((e) => now - e.at < EARLY_KEEP_MS && e.packet.callId === call.ownCallId && e.packet.from === call.peerAddress);
    this.early = this.early.filter((e) => !mine.includes(e));
    for (const e of mine) this.deliver(call, e.packet);
  }

  remove(call: GreCall): void {
    this.active.delete(call);
  }

  has(call: GreCall): boolean {
    return this.active.has(call);
  }

  private deliver(call: GreCall, packet: GrePacket): void {
    call.take(packet);
    report(this.role, 'gre-recv', { call: call.index, from: packet.from, callId: packet.callId, seq: packet.sequence, payload: packet.payload.subarray(2).toString('latin1') });
  }
}

/** How long a GRE packet for no call yet is kept for a call about to start. */
const EARLY_KEEP_MS = 1000;
