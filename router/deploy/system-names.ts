/**
 * Names for `iptables -L` without -n, from the files glibc reads for getservbyport (/etc/services),
 * gethostbyaddr (/etc/hosts) and getnetbyaddr (/etc/networks) on the machine the router runs on.
 * DNS is not asked: a listing never waits on the network. Each file is read once per listing, on
 * its first lookup; a missing file has no names.
 */
import { readFileSync } from 'node:fs';
import type { ListFormat } from '../../netfilter/tables/extension.ts';

type Names = Pick<ListFormat, 'serviceName' | 'hostName'>;

export interface NameFiles {
  services: string;
  hosts: string;
  networks: string;
}

const SYSTEM_FILES: NameFiles = { services: '/etc/services', hosts: '/etc/hosts', networks: '/etc/networks' };

export function systemNames(files: NameFiles = SYSTEM_FILES): Names {
  let services: Map<string, string> | null = null;
  let hosts: Map<number, string> | null = null;
  return {
    serviceName(port, protocol) {
      services ??= readServices(files.services);
      return services.get(`${port}/${protocol}`) ?? null;
    },
    hostName(address) {
      hosts ??= readAddresses(files.hosts, files.networks);
      return hosts.get(address >>> 0) ?? null;
    },
  };
}

/** Lines without their comment, split on blanks; nothing for a file that cannot be read. */
function fields(path: string): string[][] {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch {
    return [];
  }
  return text
    .split('\n')
    .map((line) => line.replace(/#.*/, '').trim())
    .filter((line) => line !== '')
    .map((line) => line.split(/\s+/));
}

/** `name port/protocol aliases...`; the first entry for a port and protocol is the one getservbyport gives. */
function readServices(path: string): Map<string, string> {
  const names = new Map<string, string>();
  for (const [name, portProtocol] of fields(path)) if (name && portProtocol && !names.has(portProtocol)) names.set(portProtocol, name);
  return names;
}

/** Host names (`address name...`), then network names (`name number...`) for addresses that have no host name. */
function readAddresses(hostsPath: string, networksPath: string): Map<number, string> {
  const names = new Map<number, string>();
  for (const [address, name] of fields(hostsPath)) {
    const value = address ? dotted(address, true) : null;
    if (value !== null && name && !names.has(value)) names.set(value, name);
  }
  for (const [name, number] of fields(networksPath)) {
    const value = number ? dotted(number, false) : null;
    if (value !== null && name && !names.has(value)) names.set(value, name);
  }
  return names;
}

/**
 * An IPv4 address of /etc/hosts (four parts), or a network number of /etc/networks as inet_network
 * reads it (`127` is 127, not 127.0.0.0, so it names only what getnetbyaddr is asked for).
 */
function dotted(text: string, fourParts: boolean): number | null {
  const parts = text.split('.');
  if (parts.length > 4 || (fourParts && parts.length !== 4) || !parts.every((part) => /^\d{1,3}$/.test(part) && Number(part) <= 255)) return null;
  return parts.reduce((value, part) => value * 256 + Number(part), 0) >>> 0;
}
