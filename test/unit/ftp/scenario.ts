/**
 * Packet scenarios written as text (after Click's test files): TCP segments go in, and each is
 * followed by the segment that must come out of the router, or DROP.
 *
 *   # comment
 *   client = 10.0.1.2:40000                      an endpoint name
 *   client > server seq=1000 ack=1 "PORT 10,0,1,2,18,67\r\n"
 *   => public > server seq=1000 ack=1 "PORT 203,0,113,1,18,67\r\n"
 *   server > public seq=1 ack=1024 sack=1024-1030
 *   => DROP
 *
 * A segment: SRC > DST [FLAGS] seq=N [ack=N] [sack=L-R[,L-R...]] ["payload"]. Endpoints are names
 * or IP:PORT. FLAGS are letters of S F R P A; left out, they are A when ack= is given plus P when
 * there is a payload, and output shows them only when they differ from that. Payload escapes:
 * \r \n \t \\ \" \xHH. Output names an endpoint when one matches, and appends !ipsum / !tcpsum
 * when a checksum is wrong, so a bad checksum fails the comparison.
 */
import { formatIpv4Address } from '../../../router/core/addresses.ts';
import { computeIpv4HeaderChecksum, ipv4Checksum, ipv4Dst, ipv4HeaderLength, ipv4Src } from '../../../router/wire/ipv4.ts';
import { TcpFlag, TcpOptionKind, tcpAck, tcpChecksumValid, tcpDstPort, tcpFindOption, tcpFlags, tcpHeaderLength, tcpSackBlockCount, tcpSackBlockOffset, tcpSeq, tcpSrcPort } from '../../../router/wire/tcp.ts';
import { tcpPacket } from '../../support/packets.ts';

interface Endpoint {
  address: string;
  port: number;
}

export interface ScenarioStep {
  /** The input line as written. */
  line: string;
  packet: Buffer;
  /** What must come out: a formatted segment or DROP. */
  expected: string;
}

const FLAG_LETTERS: readonly [string, number][] = [
  ['S', TcpFlag.SYN],
  ['F', TcpFlag.FIN],
  ['R', TcpFlag.RST],
  ['P', TcpFlag.PSH],
  ['A', TcpFlag.ACK],
];

function unescape(quoted: string): Buffer {
  const body = quoted.slice(1, -1);
  const bytes: number[] = [];
  for (let i = 0; i < body.length; i++) {
    const c = body[i]!;
    if (c !== '\\') {
      bytes.push(c.charCodeAt(0));
      continue;
    }
    const next = body[++i];
    if (next === 'r') bytes.push(0x0d);
    else if (next === 'n') bytes.push(0x0a);
    else if (next === 't') bytes.push(0x09);
    else if (next === '\\' || next === '"') bytes.push(next.charCodeAt(0));
    else if (next === 'x') {
      bytes.push(parseInt(body.slice(i + 1, i + 3), 16));
      i += 2;
    } else throw new Error(`bad escape \\${next} in ${quoted}`);
  }
  return Buffer.from(bytes);
}

function escape(payload: Uint8Array): string {
  let text = '';
  for (const byte of payload) {
    if (byte === 0x0d) text += '\\r';
    else if (byte === 0x0a) text += '\\n';
    else if (byte === 0x09) text += '\\t';
    else if (byte === 0x5c) text += '\\\\';
    else if (byte === 0x22) text += '\\"';
    else if (byte >= 0x20 && byte < 0x7f) text += String.fromCharCode(byte);
    else text += `\\x${byte.toString(16).padStart(2, '0')}`;
  }
  return `"${text}"`;
}

function endpoint(token: string, names: Map<string, Endpoint>): Endpoint {
  const named = names.get(token);
  if (named) return named;
  const match = /^(\d+\.\d+\.\d+\.\d+):(\d+)$/.exec(token);
  if (!match) throw new Error(`unknown endpoint ${token}`);
  return { address: match[1]!, port: Number(match[2]) };
}

function sackOption(text: string): Uint8Array {
  const blocks = text.split(',').map((block) => block.split('-').map(Number));
  const option = Buffer.alloc(4 + blocks.length * 8);
  option[0] = TcpOptionKind.NOP;
  option[1] = TcpOptionKind.NOP;
  option[2] = TcpOptionKind.SACK;
  option[3] = 2 + blocks.length * 8;
  blocks.forEach(([left, right], i) => {
    option.writeUInt32BE(left! >>> 0, 4 + i * 8);
    option.writeUInt32BE(right! >>> 0, 8 + i * 8);
  });
  return option;
}

function segment(line: string, names: Map<string, Endpoint>): Buffer {
  const tokens = line.match(/"(?:[^"\\]|\\.)*"|\S+/g) ?? [];
  if (tokens[1] !== '>') throw new Error(`expected SRC > DST in: ${line}`);
  const from = endpoint(tokens[0]!, names);
  const to = endpoint(tokens[2]!, names);
  let flags: number | null = null;
  let seq: number | null = null;
  let ack: number | null = null;
  let options: Uint8Array | undefined;
  let payload: Buffer | undefined;
  for (const token of tokens.slice(3)) {
    if (token.startsWith('"')) payload = unescape(token);
    else if (token.startsWith('seq=')) seq = Number(token.slice(4));
    else if (token.startsWith('ack=')) ack = Number(token.slice(4));
    else if (token.startsWith('sack=')) options = sackOption(token.slice(5));
    else if (/^[SFRPA]+$/.test(token)) flags = FLAG_LETTERS.reduce((bits, [letter, bit]) => (token.includes(letter) ? bits | bit : bits), 0);
    else throw new Error(`bad token ${token} in: ${line}`);
  }
  if (seq === null) throw new Error(`no seq= in: ${line}`);
  flags ??= (ack !== null ? TcpFlag.ACK : 0) | (payload ? TcpFlag.PSH : 0);
  return tcpPacket(
    { src: from.address, dst: to.address },
    { srcPort: from.port, dstPort: to.port, seq, ack: ack ?? 0, flags, window: 65535, ...(options ? { options } : {}), ...(payload ? { payload } : {}) },
  );
}

/** Parses a scenario; throws on malformed text (test set-up, never the packet path). */
export function parseScenario(text: string): { names: Map<string, Endpoint>; steps: ScenarioStep[] } {
  const names = new Map<string, Endpoint>();
  const steps: ScenarioStep[] = [];
  let pending: { line: string; packet: Buffer } | null = null;
  for (const raw of text.split('\n')) {
    const line = raw.trim();
    if (line === '' || line.startsWith('#')) continue;
    const alias = /^(\w[\w-]*)\s*=\s*(\S+)$/.exec(line);
    if (alias) {
      names.set(alias[1]!, endpoint(alias[2]!, names));
    } else if (line.startsWith('=>')) {
      if (!pending) throw new Error(`expected output without input: ${line}`);
      steps.push({ ...pending, expected: line.slice(2).trim() });
      pending = null;
    } else {
      if (pending) throw new Error(`no expected output for: ${pending.line}`);
      pending = { line, packet: segment(line, names) };
    }
  }
  if (pending) throw new Error(`no expected output for: ${pending.line}`);
  return { names, steps };
}

/** A segment as scenario text, naming endpoints that match one of `names`. */
export function formatSegment(buf: Buffer, names: Map<string, Endpoint>): string {
  const l4 = ipv4HeaderLength(buf, 0);
  const name = (address: number, port: number): string => {
    const text = formatIpv4Address(address);
    for (const [key, value] of names) if (value.address === text && value.port === port) return key;
    return `${text}:${port}`;
  };
  const flags = tcpFlags(buf, l4);
  const payload = buf.subarray(l4 + tcpHeaderLength(buf, l4));
  const implied = (flags & TcpFlag.ACK) | (payload.length > 0 ? TcpFlag.PSH : 0);
  const parts = [`${name(ipv4Src(buf, 0), tcpSrcPort(buf, l4))} > ${name(ipv4Dst(buf, 0), tcpDstPort(buf, l4))}`];
  if (flags !== implied) parts.push(FLAG_LETTERS.filter(([, bit]) => flags & bit).map(([letter]) => letter).join(''));
  parts.push(`seq=${tcpSeq(buf, l4)}`);
  if (flags & TcpFlag.ACK) parts.push(`ack=${tcpAck(buf, l4)}`);
  const sack = tcpFindOption(buf, l4, TcpOptionKind.SACK);
  if (sack >= 0) {
    const blocks = Array.from({ length: tcpSackBlockCount(buf, sack) }, (_, i) => {
      const at = tcpSackBlockOffset(sack, i);
      return `${buf.readUInt32BE(at)}-${buf.readUInt32BE(at + 4)}`;
    });
    parts.push(`sack=${blocks.join(',')}`);
  }
  if (payload.length > 0) parts.push(escape(payload));
  if (ipv4Checksum(buf, 0) !== computeIpv4HeaderChecksum(buf, 0) || buf.readUInt16BE(2) !== buf.length) parts.push('!ipsum');
  if (!tcpChecksumValid(buf, l4, buf.length - l4, ipv4Src(buf, 0), ipv4Dst(buf, 0))) parts.push('!tcpsum');
  return parts.join(' ');
}

/**
 * Runs every input segment through `forward` (which returns what leaves the router, or null for a
 * drop) and returns the scenario as written next to the scenario as it happened.
 */
export function runScenario(text: string, forward: (packet: Buffer) => Buffer | null): { expected: string[]; actual: string[] } {
  const { names, steps } = parseScenario(text);
  const expected: string[] = [];
  const actual: string[] = [];
  for (const step of steps) {
    const out = forward(step.packet);
    expected.push(step.line, `=> ${step.expected}`);
    actual.push(step.line, `=> ${out ? formatSegment(out, names) : 'DROP'}`);
  }
  return { expected, actual };
}
