/**
 * The FILTER-EXPR of `vrouter capture` and `vrouter trace`: a subset of tcpdump's language
 * (pcap-filter(7)), read into a tree that capture-filter.ts compiles into a predicate.
 *
 *   primitive  := [proto] [dir] type ID  |  [dir] ID  |  tcp | udp | sctp | icmp | gre | ip
 *               | [ip] proto N  |  ID                       (an ID alone repeats the last qualifiers)
 *   proto      := tcp | udp | sctp | ip        (ip only before host/net; tcp/udp/sctp only before ports)
 *   dir        := src | dst | src or dst | src and dst          (default: src or dst)
 *   type       := host | net | port | portrange                 (default: host)
 *   expression := primitive, `not`/`!` expression, `(` expression `)`, joined by and/&&, or/||
 *
 * As in tcpdump, `not` binds tightest and `and` and `or` have the same precedence, grouping left
 * to right: `a or b and c` is `(a or b) and c`. An ID with no qualifiers of its own takes those of
 * the primitive before it, so `port 20 or 21` is `port 20 or port 21`.
 *
 * IDs: a host is a dotted quad; a net is ADDRESS/LEN (no host bits set) or 1 to 4 dotted numbers
 * (a, a.b, a.b.c, a.b.c.d: /8, /16, /24, /32); a port is 0-65535; a port range is LOW-HIGH (given
 * the other way round, swapped, as tcpdump does; one port alone is a range of one); a protocol
 * is 0-255 or a name above.
 *
 * Beyond tcpdump: `gre` alone (tcpdump wants `proto gre`), protocol names after `proto` without
 * tcpdump's backslash (`proto udp`), and an address alone as the first primitive. Not here: port
 * and host names (numbers only), `less`/`greater`, byte offsets (`tcp[13] & 2 != 0`), IPv6.
 *
 * Every error names the word and the character where it starts (1-based) in the text, and says
 * what was expected. The text is bounded (MAX_FILTER_LENGTH) and so is the nesting
 * (MAX_FILTER_DEPTH): a request from outside cannot exhaust the stack.
 */
import { parseIpv4Address } from '../../core/addresses.ts';
import { IpProtocol } from '../../wire/ipv4.ts';

export const MAX_FILTER_LENGTH = 4096;
export const MAX_FILTER_DEPTH = 64;
export const IP_PROTOCOL_SCTP = 132;

export class CaptureFilterError extends Error {
  readonly code = 'EVROUTERFILTER';
  constructor(
    message: string,
    /** The word at fault ('' at the end of the text). */
    readonly word: string,
    /** 1-based character where the word starts; the text's length + 1 at its end. */
    readonly position: number,
  ) {
    super(message);
  }
}

/** Which address or port of the packet a primitive looks at. */
export const FilterDirection = { SRC_OR_DST: 0, SRC: 1, DST: 2, SRC_AND_DST: 3 } as const;
export type FilterDirection = (typeof FilterDirection)[keyof typeof FilterDirection];

/** Transport protocols whose ports `port`/`portrange` read: a bit each. */
export const PortProtocols = { TCP: 1, UDP: 2, SCTP: 4, ANY: 7 } as const;

export type FilterNode =
  | { kind: 'and' | 'or'; left: FilterNode; right: FilterNode }
  | { kind: 'not'; operand: FilterNode }
  | { kind: 'host'; direction: FilterDirection; address: number }
  | { kind: 'net'; direction: FilterDirection; network: number; prefixLength: number }
  | { kind: 'port'; direction: FilterDirection; protocols: number; low: number; high: number }
  | { kind: 'protocol'; protocol: number }
  | { kind: 'ip' };

interface Token {
  text: string;
  /** 0-based. */
  start: number;
}

type PrimitiveType = 'host' | 'net' | 'port' | 'portrange';
type ProtoQualifier = 'tcp' | 'udp' | 'sctp' | 'ip' | null;

interface Qualifiers {
  proto: ProtoQualifier;
  direction: FilterDirection;
  type: PrimitiveType;
}

const PROTOCOL_NAMES: Readonly<Record<string, number>> = {
  icmp: IpProtocol.ICMP,
  tcp: IpProtocol.TCP,
  udp: IpProtocol.UDP,
  gre: IpProtocol.GRE,
  sctp: IP_PROTOCOL_SCTP,
};

const PORT_PROTOCOLS: Readonly<Record<string, number>> = {
  tcp: PortProtocols.TCP,
  udp: PortProtocols.UDP,
  sctp: PortProtocols.SCTP,
};

const KEYWORDS = new Set([
  'host',
  'net',
  'port',
  'portrange',
  'src',
  'dst',
  'tcp',
  'udp',
  'sctp',
  'icmp',
  'gre',
  'ip',
  'proto',
  'and',
  'or',
  'not',
]);
const PORTS_NOT_IP = 'cannot follow "ip" (ports belong to tcp, udp or sctp)';
const OPERATORS = new Set(['(', ')', '!', '&&', '||']);
const TYPES = new Set<string>(['host', 'net', 'port', 'portrange']);
const PRIMITIVE_START = 'host, net, port, portrange, src, dst, tcp, udp, sctp, icmp, gre, ip, proto, an address, not or "("';

function tokenize(text: string): Token[] {
  const tokens: Token[] = [];
  let i = 0;
  while (i < text.length) {
    const c = text[i]!;
    if (c === ' ' || c === '\t' || c === '\n' || c === '\r') {
      i++;
    } else if (c === '(' || c === ')' || c === '!') {
      tokens.push({ text: c, start: i++ });
    } else if (c === '&' || c === '|') {
      if (text[i + 1] !== c) {
        throw new CaptureFilterError(
          `capture filter: "${c}" at character ${i + 1} is not an operator (write ${c}${c} or ${c === '&' ? 'and' : 'or'})`,
          c,
          i + 1,
        );
      }
      tokens.push({ text: c + c, start: i });
      i += 2;
    } else {
      const start = i;
      while (i < text.length && !' \t\n\r()!&|'.includes(text[i]!)) i++;
      tokens.push({ text: text.slice(start, i), start });
    }
  }
  return tokens;
}

/** Reads the whole text; throws CaptureFilterError. Empty text: null (everything matches). */
export function parseCaptureFilter(text: string): FilterNode | null {
  if (text.length > MAX_FILTER_LENGTH) {
    throw new CaptureFilterError(
      `capture filter: ${text.length} characters is longer than the ${MAX_FILTER_LENGTH} allowed`,
      '',
      MAX_FILTER_LENGTH + 1,
    );
  }
  const parser = new Parser(text, tokenize(text));
  return parser.parseAll();
}

class Parser {
  private at = 0;
  private depth = 0;
  /** What an ID with no qualifiers of its own repeats (tcpdump's "identical qualifier lists can be omitted"). */
  private last: Qualifiers | null = null;

  constructor(
    private readonly text: string,
    private readonly tokens: Token[],
  ) {}

  parseAll(): FilterNode | null {
    if (this.tokens.length === 0) return null;
    const node = this.expression();
    const extra = this.peek();
    if (extra) throw extra.text === ')' ? this.invalid(extra, 'closes no "("') : this.error(extra, '"and" or "or"');
    return node;
  }

  private peek(offset = 0): Token | undefined {
    return this.tokens[this.at + offset];
  }

  private next(): Token | undefined {
    return this.tokens[this.at++];
  }

  private isWord(token: Token | undefined, ...words: string[]): boolean {
    return token !== undefined && words.includes(token.text);
  }

  /** "expected X, found W at character N" or, at the end, "expected X after the last word". */
  private error(token: Token | undefined, expected: string): CaptureFilterError {
    if (token) {
      return new CaptureFilterError(
        `capture filter: expected ${expected}, found "${token.text}" at character ${token.start + 1}`,
        token.text,
        token.start + 1,
      );
    }
    const before = this.tokens[this.tokens.length - 1]!;
    return new CaptureFilterError(
      `capture filter: expected ${expected} after "${before.text}" at character ${before.start + 1}, found the end`,
      '',
      this.text.length + 1,
    );
  }

  private invalid(token: Token, message: string): CaptureFilterError {
    return new CaptureFilterError(
      `capture filter: "${token.text}" at character ${token.start + 1} ${message}`,
      token.text,
      token.start + 1,
    );
  }

  private expression(): FilterNode {
    let node = this.unary();
    for (;;) {
      const token = this.peek();
      if (this.isWord(token, 'and', '&&')) {
        this.next();
        node = { kind: 'and', left: node, right: this.unary() };
      } else if (this.isWord(token, 'or', '||')) {
        this.next();
        node = { kind: 'or', left: node, right: this.unary() };
      } else {
        return node;
      }
    }
  }

  private nested<T>(token: Token, parse: () => T): T {
    if (++this.depth > MAX_FILTER_DEPTH) throw this.invalid(token, `nests deeper than ${MAX_FILTER_DEPTH} levels`);
    const result = parse();
    this.depth--;
    return result;
  }

  private unary(): FilterNode {
    const token = this.peek();
    if (this.isWord(token, 'not', '!')) {
      this.next();
      return this.nested(token!, () => ({ kind: 'not', operand: this.unary() }));
    }
    if (this.isWord(token, '(')) {
      this.next();
      return this.nested(token!, () => {
        const inner = this.expression();
        const close = this.next();
        if (!this.isWord(close, ')')) throw this.error(close, `")" to close the "(" at character ${token!.start + 1}`);
        return inner;
      });
    }
    return this.primitive();
  }

  private primitive(): FilterNode {
    const first = this.peek();
    if (!first || first.text === ')' || this.isWord(first, 'and', 'or', '&&', '||')) {
      throw this.error(first, `a primitive (${PRIMITIVE_START})`);
    }

    // A protocol: alone it is a primitive; before a qualifier it qualifies it.
    let proto: ProtoQualifier = null;
    let protoToken: Token | undefined;
    if (this.isWord(first, 'icmp', 'gre')) {
      this.next();
      return { kind: 'protocol', protocol: PROTOCOL_NAMES[first.text]! };
    }
    if (this.isWord(first, 'proto')) {
      this.next();
      return this.protocolNumber(first);
    }
    if (this.isWord(first, 'tcp', 'udp', 'sctp')) {
      this.next();
      const after = this.peek();
      if (!this.isWord(after, 'src', 'dst', 'port', 'portrange')) {
        if (this.isWord(after, 'host', 'net')) {
          throw this.invalid(after!, `cannot follow "${first.text}" (write "${first.text} and ${after!.text} ...")`);
        }
        return { kind: 'protocol', protocol: PROTOCOL_NAMES[first.text]! };
      }
      proto = first.text as ProtoQualifier;
      protoToken = first;
    } else if (this.isWord(first, 'ip')) {
      this.next();
      const after = this.peek();
      if (this.isWord(after, 'proto')) {
        this.next();
        return this.protocolNumber(after!);
      }
      if (this.isWord(after, 'port', 'portrange')) throw this.invalid(after!, PORTS_NOT_IP);
      if (!this.isWord(after, 'src', 'dst', 'host', 'net')) return { kind: 'ip' };
      proto = 'ip';
      protoToken = first;
    }

    let direction: FilterDirection | null = null;
    const dirToken = this.peek();
    if (this.isWord(dirToken, 'src', 'dst')) {
      this.next();
      direction = dirToken!.text === 'src' ? FilterDirection.SRC : FilterDirection.DST;
      const joiner = this.peek();
      const other = this.peek(1);
      const otherWord = dirToken!.text === 'src' ? 'dst' : 'src';
      if (this.isWord(joiner, 'or', 'and') && this.isWord(other, otherWord)) {
        this.at += 2;
        direction = joiner!.text === 'or' ? FilterDirection.SRC_OR_DST : FilterDirection.SRC_AND_DST;
      }
    }

    let type: PrimitiveType | null = null;
    const typeToken = this.peek();
    if (typeToken && TYPES.has(typeToken.text)) {
      this.next();
      type = typeToken.text as PrimitiveType;
    }

    let qualifiers: Qualifiers;
    if (proto === null && direction === null && type === null) {
      // A bare ID: the last qualifiers, or a host. A bare word that is no ID is a misspelt keyword.
      if (!/^\d/.test(first.text)) throw this.error(first, `a primitive (${PRIMITIVE_START})`);
      qualifiers = this.last ?? { proto: null, direction: FilterDirection.SRC_OR_DST, type: 'host' };
    } else {
      qualifiers = { proto, direction: direction ?? FilterDirection.SRC_OR_DST, type: type ?? 'host' };
    }
    const portsOnly = qualifiers.proto === 'tcp' || qualifiers.proto === 'udp' || qualifiers.proto === 'sctp';
    if (portsOnly && !qualifiers.type.startsWith('port')) {
      throw this.error(this.peek(), `"port" or "portrange" after "${protoToken?.text ?? qualifiers.proto}"`);
    }
    if (qualifiers.proto === 'ip' && qualifiers.type.startsWith('port')) {
      throw this.invalid(typeToken!, PORTS_NOT_IP);
    }

    const id = this.peek();
    if (!id || KEYWORDS.has(id.text) || OPERATORS.has(id.text)) throw this.error(id, this.describeId(qualifiers.type));
    this.next();
    this.last = qualifiers;
    return this.build(qualifiers, id);
  }

  private describeId(type: PrimitiveType): string {
    switch (type) {
      case 'host':
        return 'an IPv4 address (a.b.c.d)';
      case 'net':
        return 'a network (a.b.c.d/len, or a, a.b, a.b.c)';
      case 'port':
        return 'a port number (0-65535)';
      case 'portrange':
        return 'a port range (low-high)';
    }
  }

  private build(qualifiers: Qualifiers, id: Token): FilterNode {
    switch (qualifiers.type) {
      case 'host':
        return { kind: 'host', direction: qualifiers.direction, address: this.address(id) };
      case 'net': {
        const { network, prefixLength } = this.network(id);
        return { kind: 'net', direction: qualifiers.direction, network, prefixLength };
      }
      case 'port': {
        const port = this.port(id, id.text);
        return this.portNode(qualifiers, port, port);
      }
      case 'portrange': {
        // One port alone is a range of one, as in tcpdump.
        const match = /^(\d+)(?:-(\d+))?$/.exec(id.text);
        if (!match) throw this.invalid(id, 'is not a port range (low-high, e.g. 1024-65535)');
        const a = this.port(id, match[1]!);
        const b = match[2] === undefined ? a : this.port(id, match[2]);
        return a <= b ? this.portNode(qualifiers, a, b) : this.portNode(qualifiers, b, a);
      }
    }
  }

  private portNode(qualifiers: Qualifiers, low: number, high: number): FilterNode {
    const protocols = qualifiers.proto ? PORT_PROTOCOLS[qualifiers.proto]! : PortProtocols.ANY;
    return { kind: 'port', direction: qualifiers.direction, protocols, low, high };
  }

  private address(id: Token): number {
    if (!/^\d{1,3}\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(id.text)) {
      throw this.invalid(id, `is not an IPv4 address (a.b.c.d)${id.text.includes('/') ? '; a prefix needs "net"' : ''}`);
    }
    try {
      return parseIpv4Address(id.text);
    } catch {
      throw this.invalid(id, 'is not an IPv4 address (each part 0-255)');
    }
  }

  /** tcpdump's forms: ADDRESS/LEN, or 1-4 dotted numbers giving /8, /16, /24 or /32. */
  private network(id: Token): { network: number; prefixLength: number } {
    const slash = id.text.indexOf('/');
    let address: number;
    let prefixLength: number;
    if (slash >= 0) {
      address = this.address({ text: id.text.slice(0, slash), start: id.start });
      const lengthText = id.text.slice(slash + 1);
      prefixLength = /^\d{1,2}$/.test(lengthText) ? Number(lengthText) : NaN;
      if (!(prefixLength <= 32)) throw this.invalid(id, 'has a prefix length that is not 0-32');
    } else {
      const parts = id.text.split('.');
      if (parts.length > 4 || !parts.every((part) => /^\d{1,3}$/.test(part) && Number(part) <= 255)) {
        throw this.invalid(id, 'is not a network (a.b.c.d/len, or a, a.b, a.b.c)');
      }
      prefixLength = parts.length * 8;
      address = 0;
      for (let i = 0; i < 4; i++) address = address * 256 + Number(parts[i] ?? 0);
    }
    const mask = prefixLength === 0 ? 0 : (0xffffffff << (32 - prefixLength)) >>> 0;
    if (((address & ~mask) >>> 0) !== 0) throw this.invalid(id, `has host bits set beyond /${prefixLength}`);
    return { network: address, prefixLength };
  }

  private port(id: Token, text: string): number {
    const port = /^\d{1,5}$/.test(text) ? Number(text) : NaN;
    if (!(port <= 65535)) throw this.invalid(id, 'is not a port number (0-65535)');
    return port;
  }

  private protocolNumber(keyword: Token): FilterNode {
    const id = this.next();
    if (!id) throw this.error(undefined, 'a protocol (0-255, or tcp, udp, sctp, icmp, gre)');
    const named = PROTOCOL_NAMES[id.text];
    if (named !== undefined) return { kind: 'protocol', protocol: named };
    const protocol = /^\d{1,3}$/.test(id.text) ? Number(id.text) : NaN;
    if (!(protocol <= 255)) {
      throw this.invalid(id, `after "${keyword.text}" is not a protocol (0-255, or tcp, udp, sctp, icmp, gre)`);
    }
    return { kind: 'protocol', protocol };
  }
}
