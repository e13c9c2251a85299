/**
 * Compiles a capture filter (filter-syntax.ts) once into a predicate over the raw bytes of an
 * IPv4 datagram: a tree of small closures made at compile time, so that matching a packet reads
 * a few header fields and allocates nothing.
 *
 * What a packet must be for a primitive to look at it: an IPv4 header (version 4, IHL >= 5, the
 * header within the bytes given). Anything else matches no primitive (and so matches `not tcp`).
 * Ports are read only from the first fragment (fragment offset 0) of TCP, UDP or SCTP, and only
 * when the port word looked at is within the bytes given: later fragments have no ports and match
 * no port primitive, as in tcpdump. `tcp`, `udp`, `proto N` read the protocol field, so they match every fragment.
 */
import { readU16, readU32 } from '../../wire/bytes.ts';
import { IPV4, IPV4_FRAGMENT_OFFSET_MASK, IPV4_MIN_HEADER_LENGTH, IpProtocol } from '../../wire/ipv4.ts';
import { CaptureFilterError, FilterDirection, IP_PROTOCOL_SCTP, PortProtocols, parseCaptureFilter, type FilterNode } from './filter-syntax.ts';

export { CaptureFilterError } from './filter-syntax.ts';

/** True when the datagram of `length` bytes at `offset` matches. Never throws, never allocates. */
export type PacketPredicate = (buf: Uint8Array, offset: number, length: number) => boolean;

export interface CaptureFilter {
  /** The expression as given ('' matches everything). */
  readonly text: string;
  readonly matches: PacketPredicate;
}

const matchAll: PacketPredicate = () => true;

/**
 * Parses and compiles `text` (the FILTER-EXPR words joined by spaces); throws CaptureFilterError
 * naming the bad word and its character. An empty expression matches every packet.
 */
export function compileCaptureFilter(text: string): CaptureFilter {
  const tree = parseCaptureFilter(text);
  return { text: text.trim(), matches: tree ? compile(tree) : matchAll };
}

/**
 * compileCaptureFilter for a tool: a refusal comes back as `refuse(message)`, the message saying
 * which filter it was (`trace filter: ...`): a usage error in a CLI, an error reply in the router.
 */
export function compileFilterFor(what: string, text: string, refuse: (message: string) => Error): CaptureFilter {
  try {
    return compileCaptureFilter(text);
  } catch (error) {
    if (error instanceof CaptureFilterError) throw refuse(`${what} filter: ${error.message}`);
    throw error;
  }
}

/** A readable IPv4 header: version 4 and the whole header within `length`. */
function isIpv4(buf: Uint8Array, off: number, length: number): boolean {
  if (length < IPV4_MIN_HEADER_LENGTH) return false;
  const versionIhl = buf[off + IPV4.VERSION_IHL]!;
  const headerLength = (versionIhl & 0x0f) * 4;
  return versionIhl >>> 4 === 4 && headerLength >= IPV4_MIN_HEADER_LENGTH && headerLength <= length;
}

function protocolBit(protocol: number): number {
  if (protocol === IpProtocol.TCP) return PortProtocols.TCP;
  if (protocol === IpProtocol.UDP) return PortProtocols.UDP;
  if (protocol === IP_PROTOCOL_SCTP) return PortProtocols.SCTP;
  return 0;
}

/**
 * Where the transport header starts, or -1 when this packet has no ports to read: not IPv4, not
 * one of `protocols`, a later fragment, or fewer than `needed` bytes of transport header (2 for
 * the source port, 4 for both, as tcpdump's loads need).
 */
function portsAt(buf: Uint8Array, off: number, length: number, protocols: number, needed: number): number {
  if (!isIpv4(buf, off, length)) return -1;
  if ((protocolBit(buf[off + IPV4.PROTOCOL]!) & protocols) === 0) return -1;
  if ((readU16(buf, off + IPV4.FLAGS_FRAGMENT) & IPV4_FRAGMENT_OFFSET_MASK) !== 0) return -1;
  const headerLength = (buf[off + IPV4.VERSION_IHL]! & 0x0f) * 4;
  return headerLength + needed <= length ? off + headerLength : -1;
}

function compile(node: FilterNode): PacketPredicate {
  switch (node.kind) {
    case 'and': {
      const left = compile(node.left);
      const right = compile(node.right);
      return (buf, off, len) => left(buf, off, len) && right(buf, off, len);
    }
    case 'or': {
      const left = compile(node.left);
      const right = compile(node.right);
      return (buf, off, len) => left(buf, off, len) || right(buf, off, len);
    }
    case 'not': {
      const operand = compile(node.operand);
      return (buf, off, len) => !operand(buf, off, len);
    }
    case 'ip':
      return isIpv4;
    case 'protocol': {
      const protocol = node.protocol;
      return (buf, off, len) => isIpv4(buf, off, len) && buf[off + IPV4.PROTOCOL] === protocol;
    }
    case 'host':
      return addressMatch(node.direction, node.address >>> 0, 0xffffffff);
    case 'net': {
      const mask = node.prefixLength === 0 ? 0 : (0xffffffff << (32 - node.prefixLength)) >>> 0;
      return addressMatch(node.direction, node.network >>> 0, mask);
    }
    case 'port':
      return portMatch(node.direction, node.protocols, node.low, node.high);
  }
}

/** `(address & mask) === network` on the source, the destination, either or both. */
function addressMatch(direction: FilterDirection, network: number, mask: number): PacketPredicate {
  // Compared as signed 32-bit values: `&` yields one, so nothing is converted back per packet.
  const net = network | 0;
  const m = mask | 0;
  const src = (buf: Uint8Array, off: number): boolean => (readU32(buf, off + IPV4.SRC) & m) === net;
  const dst = (buf: Uint8Array, off: number): boolean => (readU32(buf, off + IPV4.DST) & m) === net;
  switch (direction) {
    case FilterDirection.SRC:
      return (buf, off, len) => isIpv4(buf, off, len) && src(buf, off);
    case FilterDirection.DST:
      return (buf, off, len) => isIpv4(buf, off, len) && dst(buf, off);
    case FilterDirection.SRC_AND_DST:
      return (buf, off, len) => isIpv4(buf, off, len) && src(buf, off) && dst(buf, off);
    case FilterDirection.SRC_OR_DST:
      return (buf, off, len) => isIpv4(buf, off, len) && (src(buf, off) || dst(buf, off));
  }
}

function portMatch(direction: FilterDirection, protocols: number, low: number, high: number): PacketPredicate {
  const inRange = (port: number): boolean => port >= low && port <= high;
  switch (direction) {
    case FilterDirection.SRC:
      return (buf, off, len) => {
        const at = portsAt(buf, off, len, protocols, 2);
        return at >= 0 && inRange(readU16(buf, at));
      };
    case FilterDirection.DST:
      return (buf, off, len) => {
        const at = portsAt(buf, off, len, protocols, 4);
        return at >= 0 && inRange(readU16(buf, at + 2));
      };
    case FilterDirection.SRC_AND_DST:
      return (buf, off, len) => {
        const at = portsAt(buf, off, len, protocols, 4);
        return at >= 0 && inRange(readU16(buf, at)) && inRange(readU16(buf, at + 2));
      };
    case FilterDirection.SRC_OR_DST:
      // The source port first: a header cut after it can still match on it, as in tcpdump.
      return (buf, off, len) => {
        const at = portsAt(buf, off, len, protocols, 2);
        if (at < 0) return false;
        if (inRange(readU16(buf, at))) return true;
        return at - off + 4 <= len && inRange(readU16(buf, at + 2));
      };
  }
}
