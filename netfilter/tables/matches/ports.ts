/** The port range part shared by xt_tcpudp's tcp and udp matches. */
import { OptionError } from '../errors.ts';
import type { ListFormat, RuleHeader } from '../extension.ts';
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

/** A port as `iptables -L` shows it: its service name for `protocol` unless -n or it has none. */
export function printPort(port: number, protocol: string, format: ListFormat): string {
  return (format.numeric ? null : format.serviceName(port, protocol)) ?? `${port}`;
}

/** libxt_tcp's print_ports: ` dpt:80`, ` dpt:!80`, ` dpts:1000:2000`; nothing for the whole range. */
export function printPortRange(name: string, range: PortRange, protocol: string, format: ListFormat): string {
  if (range.low === 0 && range.high === 0xffff) return '';
  const invert = range.invert ? '!' : '';
  if (range.low === range.high) return ` ${name}:${invert}${printPort(range.low, protocol, format)}`;
  return ` ${name}s:${invert}${printPort(range.low, protocol, format)}:${printPort(range.high, protocol, format)}`;
}

/** The kernel's xt_check_match: a protocol match needs that protocol, not inverted. */
export function requireProtocol(header: RuleHeader, protocol: number, match: string): void {
  if (header.protocol !== protocol || header.invertProtocol) {
    const name = protocolName(protocol);
    throw new OptionError(match, `the ${match} match needs "-p ${name}" (not inverted)`);
  }
}
