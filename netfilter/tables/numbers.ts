/**
 * Numbers as iptables reads them (strtoul with base 0: `0x1f` hex, `017` octal, else decimal) and
 * port specifications. Numeric only: service names from /etc/services are not looked up.
 */
import { OptionError } from './errors.ts';

const HEX = /^0[xX][0-9a-fA-F]+$/;
const OCTAL = /^0[0-7]*$/;
const DECIMAL = /^[1-9][0-9]*$/;

/** The value of `text` if it is a base-0 C number in [0, max], else -1. */
export function parseCNumber(text: string, max: number): number {
  let value: number;
  if (HEX.test(text)) value = parseInt(text.slice(2), 16);
  else if (OCTAL.test(text)) value = parseInt(text, 8);
  else if (DECIMAL.test(text)) value = parseInt(text, 10);
  else return -1;
  return value <= max ? value : -1;
}

export function parsePort(text: string): number {
  const port = parseCNumber(text, 0xffff);
  if (port < 0) {
    const reason = /^[A-Za-z]/.test(text) ? ' (service names are not supported: use the number)' : '';
    throw new OptionError(text, `invalid port "${text}"${reason}`);
  }
  return port;
}

/** `a`, `a:b`, `a:` (to 65535), `:b` (from 0) or `:` (all), as xt_tcpudp's --sport/--dport. */
export function parsePortRange(text: string): [number, number] {
  const colon = text.indexOf(':');
  if (colon < 0) {
    const port = parsePort(text);
    return [port, port];
  }
  const low = colon === 0 ? 0 : parsePort(text.slice(0, colon));
  const high = colon === text.length - 1 ? 0xffff : parsePort(text.slice(colon + 1));
  if (low > high) throw new OptionError(text, `invalid port range "${text}" (min > max)`);
  return [low, high];
}

/** `0x...` lowercase, as iptables-save prints marks. */
export function hex(value: number): string {
  return `0x${(value >>> 0).toString(16)}`;
}
