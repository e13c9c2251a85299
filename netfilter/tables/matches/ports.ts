/** The port range part shared by xt_tcpudp's tcp and udp matches. */
import { OptionError } from '../errors.ts';
import type { RuleHeader } from '../extension.ts';
import { protocolName } from '../protocols.ts';

export interface PortRange {
  low: number;
  high: number;
  invert: boolean;
}

export const ANY_PORT: PortRange = Object.freeze({ low: 0, high: 0xffff, invert: false });

/** port_match: inside the range, XOR the inversion. */
export function portMatches(range: PortRange, port: number): boolean {
  return (port >= range.low && port <= range.high) !== range.invert;
}

/**
 * iptables-save prints a range only if it is not 0:65535 (so `! --dport 0:65535`, which never
 * matches, is printed as nothing: iptables does the same), and a single port without the colon.
 */
export function savePortRange(option: string, range: PortRange): string {
  if (range.low === 0 && range.high === 0xffff) return '';
  const value = range.low === range.high ? `${range.low}` : `${range.low}:${range.high}`;
  return `${range.invert ? ' !' : ''} --${option} ${value}`;
}

/** The kernel's xt_check_match: a protocol match needs that protocol, not inverted. */
export function requireProtocol(header: RuleHeader, protocol: number, match: string): void {
  if (header.protocol !== protocol || header.invertProtocol) {
    const name = protocolName(protocol);
    throw new OptionError(match, `the ${match} match needs "-p ${name}" (not inverted)`);
  }
}
