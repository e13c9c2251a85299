/**
 * Address parsing and printing at the edges (config, rules, tool output), through ip-address.
 * Inside the router an IPv4 address is an unsigned 32-bit number.
 */
import { Address4 } from 'ip-address';

export interface Prefix {
  /** The address as written (host bits kept), unsigned 32-bit. */
  address: number;
  prefixLength: number;
}

/** Throws ip-address's AddressError with its message for anything that is not a.b.c.d. */
export function parseIpv4Address(text: string): number {
  if (text.includes('/')) throw new Error('expected an address without a prefix length');
  return Number(new Address4(text).bigInt());
}

/** `a.b.c.d/len`; a bare address is taken as /32 only when `bareIsHost` is set. */
export function parseIpv4Prefix(text: string, bareIsHost = false): Prefix {
  if (!text.includes('/') && !bareIsHost) throw new Error('expected ADDRESS/PREFIX-LENGTH');
  const parsed = new Address4(text);
  return { address: Number(parsed.bigInt()), prefixLength: parsed.subnetMask };
}

export function formatIpv4Address(address: number): string {
  return Address4.fromInteger(address >>> 0).correctForm();
}

export function prefixMask(prefixLength: number): number {
  return prefixLength === 0 ? 0 : (0xffffffff << (32 - prefixLength)) >>> 0;
}

export function networkOf(address: number, prefixLength: number): number {
  return (address & prefixMask(prefixLength)) >>> 0;
}

export function formatPrefix(prefix: Prefix): string {
  return `${formatIpv4Address(prefix.address)}/${prefix.prefixLength}`;
}
