/**
 * The FTP helper's tracking half (nf_conntrack_ftp.c): reads the control connection for the
 * commands and replies that announce a data connection and expects that connection.
 *
 *   client -> server (ORIGINAL): `PORT a,b,c,d,p1,p2\r`       `EPRT |1|a.b.c.d|port|`
 *   server -> client (REPLY):    `227 ` ... a,b,c,d,p1,p2     `229 ` ... `(|||port|)`
 *
 * Invariants, all as in the kernel:
 * - Only ESTABLISHED / ESTABLISHED_REPLY segments with payload are read, and only when the segment
 *   starts right after a '\n' the helper saw in that direction (two such sequence numbers are kept
 *   per direction, on `entry.helperData`). The first payload segment of a direction is never read,
 *   and only the start of a segment is matched: a command is recognised only at a line start.
 * - A segment that could be, but is not, a complete command (a prefix of a pattern, no skip
 *   character, numbers that do not parse) is dropped, and not recorded for line sync, so that its
 *   retransmission is read again.
 * - An address in the command that is not the sender's own makes no expectation unless `loose`.
 * - The expectation: TCP, from the other direction's source address (any port), to the other
 *   direction's destination address (post-NAT, as the tuples hold it) and the announced port.
 *   When the connection is NATed the NAT half (nat/helpers/nat-ftp.ts) registers it and rewrites
 *   the payload; otherwise it is registered here, and the segment dropped if that fails.
 *
 * Sequence numbers seen here are the sender's own: adjustment runs after the helper (seqadj.ts).
 * Only IPv4 is tracked, so EPRT's IPv6 form (`|2|...`) never matches the connection's family.
 */
import type { Conntrack } from '../conntrack/conntrack-entry.ts';
import { Expectation } from '../conntrack/expectation.ts';
import { ExpectResult, type ExpectationTable } from '../conntrack/expectation-table.ts';
import { CtInfo, Status, ctinfoDirection } from '../conntrack/status.ts';
import { Tuple } from '../conntrack/tuple.ts';
import { Verdict } from '../../router/core/hooks.ts';
import type { Packet } from '../../router/core/packet.ts';
import { RateLimitedLog } from '../../router/core/rate-limited-log.ts';
import { formatIpv4Address } from '../../router/core/addresses.ts';
import { IpProtocol } from '../../router/wire/ipv4.ts';
import { TCP_MIN_HEADER_LENGTH, tcpHeaderLength, tcpSeq } from '../../router/wire/tcp.ts';
import type { ConntrackHelper, ExpectationPolicy } from './helper.ts';

export const FTP_PORT = 21;
/** The kernel module's `ports` parameter takes at most this many. */
export const FTP_MAX_PORTS = 8;

/** enum nf_ct_ftp_type: which command or reply announced the data connection. */
export const FtpType = { PORT: 0, PASV: 1, EPRT: 2, EPSV: 3 } as const;
export type FtpType = (typeof FtpType)[keyof typeof FtpType];
/** As a trace names what was read: the command (PORT, EPRT) or reply (227 for PASV, 229 for EPSV). */
const FTP_TYPE_NAMES = ['PORT', '227', 'EPRT', '229'] as const;
/** The hook-drop origin of a command cut short (`vrouter stats`, captures, traces). */
const PARTIAL_COMMAND_DROP = 'ftp helper: partial command or reply';

/**
 * The NAT half's entry point (nf_nat_ftp_hook). Called only for connections with SRC_NAT or
 * DST_NAT; it owns registering the expectation (possibly on another port), rewriting the
 * argument at `matchOffset`/`matchLength` (bytes from the start of the TCP payload), and the verdict.
 */
export interface FtpNatHook {
  help(packet: Packet, entry: Conntrack, ctinfo: number, type: FtpType, matchOffset: number, matchLength: number, expectation: Expectation): Verdict;
}

export interface FtpHelperOptions {
  /** Control ports, at most 8; default [21]. Each gets its own helper, `ftp` or `ftp-PORT`. */
  ports?: number[];
  /** Accept a command naming an address other than the sender's (the `loose` module parameter). */
  loose?: boolean;
  expectations: ExpectationTable;
  nat?: FtpNatHook | null;
  log?: RateLimitedLog;
}

/** Per-connection state kept on `entry.helperData` (struct nf_ct_ftp_master). */
export class FtpConnectionState {
  /** Per direction [ORIGINAL, REPLY]: up to two sequence numbers that directly follow a '\n'. */
  readonly seqAfterNewline: [number[], number[]] = [[], []];
}

/** NUM_SEQ_TO_REMEMBER */
const SEQ_TO_REMEMBER = 2;

const LF = 0x0a;
const CR = 0x0d;
const SPACE = 0x20;
const OPEN_PAREN = 0x28;
const COMMA = 0x2c;
const DOT = 0x2e;
const DIGIT_0 = 0x30;
const DIGIT_9 = 0x39;

const isDigit = (byte: number | undefined): boolean => byte !== undefined && byte >= DIGIT_0 && byte <= DIGIT_9;

/** What an argument parser read. `start` is where the argument begins; parsers may move it on. */
export interface FtpArgument {
  address: number;
  port: number;
  start: number;
}

/**
 * try_number: `count` decimal numbers separated by `separator` in data[start, end), ended by
 * `terminator` (0: by any other byte). Returns the length up to the terminator, 0 if the text does
 * not have that form (too few or too many numbers, a stray byte, or no terminator before `end`).
 * Numbers wrap at 2^32 and are not range-checked, as in the kernel.
 */
export function parseNumberList(data: Uint8Array, start: number, end: number, values: number[], count: number, separator: number, terminator: number): number {
  values.fill(0, 0, count);
  let i = 0;
  for (let at = start; at < end && i < count; at++) {
    const byte = data[at]!;
    if (byte >= DIGIT_0 && byte <= DIGIT_9) {
      values[i] = (Math.imul(values[i]!, 10) + byte - DIGIT_0) >>> 0;
    } else if (byte === separator) {
      i++;
    } else {
      return (byte === terminator || terminator === 0) && i === count - 1 ? at - start : 0;
    }
  }
  return 0;
}

/** The four numbers of an address as the kernel combines them: shifted and OR'ed, unmasked. */
const addressOf = (v: number[]): number => ((v[0]! << 24) | (v[1]! << 16) | (v[2]! << 8) | v[3]!) >>> 0;

/** try_rfc959: `a,b,c,d,p1,p2` ended by `terminator`. Returns its length or 0. */
export function parseRfc959(data: Uint8Array, start: number, end: number, terminator: number, into: FtpArgument): number {
  const values = [0, 0, 0, 0, 0, 0];
  const length = parseNumberList(data, start, end, values, 6, COMMA, terminator);
  if (length === 0) return 0;
  into.address = addressOf(values);
  into.port = ((values[4]! << 8) | values[5]!) & 0xffff;
  return length;
}

/**
 * try_rfc1123: a 227 reply need not put the numbers in parentheses (RFC 1123 section 4.1.2.6), so
 * the numbers start at the first digit; anything but a digit or comma ends them.
 */
export function parseRfc1123(data: Uint8Array, start: number, end: number, into: FtpArgument): number {
  let at = start;
  while (at < end && !isDigit(data[at])) at++;
  if (at === end) return 0;
  into.start += at - start;
  return parseRfc959(data, at, end, 0, into);
}

/**
 * get_port: decimal digits from `at` up to `delimiter`. Returns the length from `base` through
 * the delimiter, 0 for port 0 (the value wraps at 16 bits first), a stray byte or no delimiter.
 */
function parsePortUntil(data: Uint8Array, base: number, at: number, end: number, delimiter: number, into: FtpArgument): number {
  let port = 0;
  for (; at < end; at++) {
    const byte = data[at]!;
    if (byte === delimiter) {
      if (port === 0) return 0;
      into.port = port;
      return at + 1 - base;
    }
    if (!isDigit(byte)) return 0;
    port = (port * 10 + byte - DIGIT_0) & 0xffff;
  }
  return 0;
}

/** An EPRT/EPSV delimiter: printable ASCII (33..126) but not a digit. */
const validDelimiter = (byte: number): boolean => byte >= 33 && byte <= 126 && !isDigit(byte);

/** try_eprt: `|1|a.b.c.d|port|` with any valid delimiter; the family must be 1 (IPv4). */
export function parseEprt(data: Uint8Array, start: number, end: number, into: FtpArgument): number {
  if (end - start <= 3) return 0;
  const delimiter = data[start]!;
  if (!validDelimiter(delimiter) || data[start + 2] !== delimiter) return 0;
  if (data[start + 1] !== 0x31) return 0;
  const values = [0, 0, 0, 0];
  const length = parseNumberList(data, start + 3, end, values, 4, DOT, delimiter);
  if (length === 0) return 0;
  into.address = addressOf(values);
  // The port starts past `|1|`, the address and its closing delimiter.
  return parsePortUntil(data, start, start + 3 + length + 1, end, delimiter, into);
}

/** try_epsv_response: `|||port|`; the address stays the sender's. */
export function parseEpsvResponse(data: Uint8Array, start: number, end: number, into: FtpArgument): number {
  if (end - start <= 3) return 0;
  const delimiter = data[start]!;
  if (!validDelimiter(delimiter) || data[start + 1] !== delimiter || data[start + 2] !== delimiter) return 0;
  return parsePortUntil(data, start, start + 3, end, delimiter, into);
}

interface FtpPattern {
  readonly text: string;
  readonly bytes: Uint8Array;
  /** The byte to skip to before the argument; 0: the argument follows the pattern. */
  readonly skip: number;
  readonly type: FtpType;
  readonly parse: (data: Uint8Array, start: number, end: number, into: FtpArgument) => number;
}

function pattern(text: string, skip: number, type: FtpType, parse: FtpPattern['parse']): FtpPattern {
  return { text, bytes: Buffer.from(text, 'latin1'), skip, type, parse };
}

/** The kernel's search table, per direction, tried in this order. */
const SEARCH: readonly (readonly FtpPattern[])[] = [
  [
    pattern('PORT', SPACE, FtpType.PORT, (d, s, e, into) => parseRfc959(d, s, e, CR, into)),
    pattern('EPRT', SPACE, FtpType.EPRT, parseEprt),
  ],
  [pattern('227 ', 0, FtpType.PASV, parseRfc1123), pattern('229 ', OPEN_PAREN, FtpType.EPSV, parseEpsvResponse)],
];

const lower = (byte: number): number => (byte >= 0x41 && byte <= 0x5a ? byte | 0x20 : byte);

function sameIgnoringCase(data: Uint8Array, pattern: Uint8Array, length: number): boolean {
  for (let i = 0; i < length; i++) if (lower(data[i]!) !== lower(pattern[i]!)) return false;
  return true;
}

export type FtpSearchResult =
  | { readonly kind: 'none' }
  | { readonly kind: 'partial'; readonly pattern: string }
  | {
      readonly kind: 'match';
      readonly pattern: string;
      readonly type: FtpType;
      /** Where the argument starts in the payload, and its length: the bytes NAT rewrites. */
      readonly offset: number;
      readonly length: number;
      readonly address: number;
      readonly port: number;
    };

const NONE: FtpSearchResult = Object.freeze({ kind: 'none' });

/**
 * find_pattern for one pattern: 'none' if the payload does not start with it, 'partial' if it is
 * only a prefix of it, has no skip character, or its argument does not parse.
 */
function findPattern(payload: Uint8Array, p: FtpPattern, senderAddress: number): FtpSearchResult {
  const length = payload.length;
  const plen = p.bytes.length;
  if (length <= plen) return sameIgnoringCase(payload, p.bytes, length) ? { kind: 'partial', pattern: p.text } : NONE;
  if (!sameIgnoringCase(payload, p.bytes, plen)) return NONE;
  let at = plen;
  if (p.skip !== 0) {
    while (payload[at] !== p.skip) {
      if (at === length - 1) return { kind: 'partial', pattern: p.text };
      at++;
    }
    at++;
  }
  const argument: FtpArgument = { address: senderAddress, port: 0, start: at };
  const argumentLength = p.parse(payload, at, length, argument);
  if (argumentLength === 0) return { kind: 'partial', pattern: p.text };
  return { kind: 'match', pattern: p.text, type: p.type, offset: argument.start, length: argumentLength, address: argument.address, port: argument.port };
}

/**
 * Reads the start of a payload for the commands of `direction` (0: client, 1: server). Addresses
 * the text does not carry (a 229 reply) are `senderAddress`.
 */
export function findFtpCommand(payload: Uint8Array, direction: 0 | 1, senderAddress: number): FtpSearchResult {
  for (const p of SEARCH[direction]!) {
    const result = findPattern(payload, p, senderAddress);
    if (result.kind !== 'none') return result;
  }
  return NONE;
}

const before = (a: number, b: number): boolean => ((a - b) | 0) < 0;

/** update_nl_seq: remember `seq`; when both slots are used it replaces the older one, if newer. */
export function recordNewlineSeq(state: FtpConnectionState, direction: 0 | 1, seq: number): void {
  const known = state.seqAfterNewline[direction];
  if (known.includes(seq)) return;
  if (known.length < SEQ_TO_REMEMBER) {
    known.push(seq);
    return;
  }
  const oldest = before(known[0]!, known[1]!) ? 0 : 1;
  if (before(known[oldest]!, seq)) known[oldest] = seq;
}

function stateOf(entry: Conntrack): FtpConnectionState {
  if (entry.helperData instanceof FtpConnectionState) return entry.helperData;
  const state = new FtpConnectionState();
  entry.helperData = state;
  return state;
}

/** The `ftp` / `ftp-PORT` helpers, one per control port (nf_conntrack_ftp_init). */
export function createFtpHelpers(options: FtpHelperOptions): ConntrackHelper[] {
  const ports = options.ports && options.ports.length > 0 ? options.ports : [FTP_PORT];
  if (ports.length > FTP_MAX_PORTS) throw new RangeError(`ftp helper: at most ${FTP_MAX_PORTS} ports, got ${ports.length}`);
  for (const port of ports) {
    if (!Number.isInteger(port) || port < 1 || port > 65535) throw new RangeError(`ftp helper: bad port ${port}`);
  }
  if (new Set(ports).size !== ports.length) throw new RangeError(`ftp helper: port listed twice in ${ports.join(',')}`);
  const log = options.log ?? new RateLimitedLog();
  return ports.map((port) => new FtpHelper(port === FTP_PORT ? 'ftp' : `ftp-${port}`, port, options.loose ?? false, options.expectations, options.nat ?? null, log));
}

class FtpHelper implements ConntrackHelper {
  readonly protocol = IpProtocol.TCP;
  readonly ports: readonly number[];
  readonly policies: readonly ExpectationPolicy[];

  constructor(
    readonly name: string,
    port: number,
    private readonly loose: boolean,
    private readonly expectations: ExpectationTable,
    private readonly nat: FtpNatHook | null,
    private readonly log: RateLimitedLog,
  ) {
    this.ports = [port];
    this.policies = [{ name, maxExpected: 1, timeout: 300 }];
  }

  help(packet: Packet, entry: Conntrack, ctinfo: number, l4Offset: number): Verdict {
    // Until there has been traffic both ways, nothing is read.
    if (ctinfo !== CtInfo.ESTABLISHED && ctinfo !== CtInfo.ESTABLISHED_REPLY) return Verdict.ACCEPT;
    const buf = packet.buf;
    if (buf.length < l4Offset + TCP_MIN_HEADER_LENGTH) return Verdict.ACCEPT;
    const dataOffset = l4Offset + tcpHeaderLength(buf, l4Offset);
    if (dataOffset >= buf.length) return Verdict.ACCEPT;
    const payload = buf.subarray(dataOffset);
    const direction = ctinfoDirection(ctinfo);
    const seq = tcpSeq(buf, l4Offset);
    // Taken now: the NAT half may change the payload and its length.
    const endsInNewline = payload[payload.length - 1] === LF;
    const nextLineSeq = (seq + payload.length) >>> 0;
    const state = stateOf(entry);
    let verdict: Verdict = Verdict.ACCEPT;
    if (state.seqAfterNewline[direction].includes(seq)) {
      const result = findFtpCommand(payload, direction, entry.tuples[direction].src);
      if (result.kind === 'partial') {
        // A command cut short would slip past: drop it (not recorded, so its retransmission is read).
        this.log.log(`nf_ct_${this.name}`, `dropping packet: partial matching of \`${result.pattern}'`);
        packet.dropOrigin = PARTIAL_COMMAND_DROP;
        return Verdict.DROP;
      }
      if (result.kind === 'match') {
        if (packet.traced) packet.traceNote = `${this.name} read ${FTP_TYPE_NAMES[result.type]} ${formatIpv4Address(result.address)} port ${result.port}`;
        verdict = this.expect(packet, entry, ctinfo, direction, result);
      }
    }
    // As in the kernel, this runs for any verdict but a partial match (seq+len before any rewrite).
    if (endsInNewline) recordNewlineSeq(state, direction, nextLineSeq);
    return verdict;
  }

  private expect(packet: Packet, entry: Conntrack, ctinfo: number, direction: 0 | 1, command: Extract<FtpSearchResult, { kind: 'match' }>): Verdict {
    // The data connection goes the other way: it comes from where this packet goes.
    const other = entry.tuples[direction ^ 1]!;
    let destination = other.dst;
    if (command.address !== entry.tuples[direction].src) {
      // A third party (a DMZ host opening a hole to another one): only with `loose`.
      if (!this.loose) return Verdict.ACCEPT;
      destination = command.address;
    }
    const expectation = new Expectation(entry, new Tuple(other.src, destination, IpProtocol.TCP, 0, command.port), { src: 0xffffffff, srcPort: 0 }, 0, this);
    if (this.nat && entry.status & (Status.SRC_NAT | Status.DST_NAT)) {
      return this.nat.help(packet, entry, ctinfo, command.type, command.offset, command.length, expectation);
    }
    if (this.expectations.add(expectation) !== ExpectResult.OK) {
      this.log.log(`nf_ct_${this.name}`, 'dropping packet: cannot add expectation');
      return Verdict.DROP;
    }
    return Verdict.ACCEPT;
  }
}
