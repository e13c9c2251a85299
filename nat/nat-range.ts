/**
 * NAT ranges as the SNAT/DNAT targets take them (nf_nat_range2): `ADDR[-ADDR][:PORT[-PORT]]`,
 * plus the --random / --persistent flags.
 */
import { formatIpv4Address, parseIpv4Address } from '../router/core/addresses.ts';

export const NatRangeFlag = {
  /** An address range was given (NF_NAT_RANGE_MAP_IPS). */
  MAP_IPS: 1 << 0,
  /** A port range was given (NF_NAT_RANGE_PROTO_SPECIFIED). */
  PROTO_SPECIFIED: 1 << 1,
  /** Pick ports at random (NF_NAT_RANGE_PROTO_RANDOM). */
  PROTO_RANDOM: 1 << 2,
  /** Same address for a client whatever the destination (NF_NAT_RANGE_PERSISTENT). */
  PERSISTENT: 1 << 3,
} as const;

export interface NatRange {
  flags: number;
  minAddress: number;
  maxAddress: number;
  minPort: number;
  maxPort: number;
}

export class NatRangeError extends Error {}

function port(text: string, whole: string): number {
  const value = Number(text);
  if (!/^\d+$/.test(text) || value < 0 || value > 65535) throw new NatRangeError(`bad port "${text}" in "${whole}"`);
  return value;
}

function address(text: string, whole: string): number {
  try {
    return parseIpv4Address(text);
  } catch {
    throw new NatRangeError(`bad address "${text}" in "${whole}"`);
  }
}

/** Parses `ADDR[-ADDR][:PORT[-PORT]]`; the address part may be empty (`:PORT`) as iptables allows. */
export function parseNatRange(text: string): NatRange {
  const range: NatRange = { flags: 0, minAddress: 0, maxAddress: 0, minPort: 0, maxPort: 0 };
  const colon = text.indexOf(':');
  const addresses = colon < 0 ? text : text.slice(0, colon);
  if (addresses) {
    const [first, last = first] = addresses.split('-');
    range.minAddress = address(first!, text);
    range.maxAddress = address(last, text);
    if (range.maxAddress < range.minAddress) throw new NatRangeError(`address range "${addresses}" ends before it starts`);
    range.flags |= NatRangeFlag.MAP_IPS;
  }
  if (colon >= 0) {
    const [first, last = first] = text.slice(colon + 1).split('-');
    range.minPort = port(first!, text);
    range.maxPort = port(last, text);
    if (range.maxPort < range.minPort) throw new NatRangeError(`port range in "${text}" ends before it starts`);
    range.flags |= NatRangeFlag.PROTO_SPECIFIED;
  }
  if (!(range.flags & (NatRangeFlag.MAP_IPS | NatRangeFlag.PROTO_SPECIFIED))) throw new NatRangeError(`empty range "${text}"`);
  return range;
}

/** As iptables-save prints a range. */
export function formatNatRange(range: NatRange): string {
  let text = '';
  if (range.flags & NatRangeFlag.MAP_IPS) {
    text = formatIpv4Address(range.minAddress);
    if (range.maxAddress !== range.minAddress) text += `-${formatIpv4Address(range.maxAddress)}`;
  }
  if (range.flags & NatRangeFlag.PROTO_SPECIFIED) {
    text += `:${range.minPort}`;
    if (range.maxPort !== range.minPort) text += `-${range.maxPort}`;
  }
  return text;
}
