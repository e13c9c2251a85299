/**
 * The router's YAML config: parsed and checked completely before anything is created, so that a
 * bad file changes nothing. Every refusal names the file, the line, the key path and the bad value.
 */
import { ConfigError, ConfigProblems } from './config-errors.ts';
import { readInputFile } from './input-file.ts';
import { parseConfigDocument } from './yaml-document.ts';
import { namespaceExists } from './namespaces.ts';
import { dirname, resolve } from 'node:path';
import { isMap, isSeq, type Document, type LineCounter } from 'yaml';
import { networkOf, parseIpv4Address, parseIpv4Prefix, type Prefix } from '../core/addresses.ts';
import { DEFAULT_CONNTRACK, type ConntrackSpec, type RulesSpec } from '../stack/build-router.ts';
import { readControl } from './control-config.ts';
import { DEFAULT_CONTROL_SOCKET, controlSocketAt, type ControlSocketSpec } from './control-socket.ts';

export { ConfigError, ConfigErrors } from './config-errors.ts';
export { DEFAULT_CONTROL_SOCKET } from './control-socket.ts';
export const DEFAULT_MTU = 1500;
/** The kernel's ranges for an IPv4 link MTU (IPV4_MIN_MTU) and a TUN device (IP_MAX_MTU). */
export const MIN_MTU = 68;
export const MAX_MTU = 65535;
export const INTERFACE_NAME = /^[A-Za-z0-9_][A-Za-z0-9_.-]{0,14}$/;

export interface InterfaceConfig {
  name: string;
  netns: string;
  address: Prefix;
  peer: Prefix;
  mtu: number;
}

export interface RouteConfig {
  to: Prefix;
  dev: string;
  /** 0 when the route has no gateway. */
  via: number;
}

/** Where the rules come from (the config's inline text or its rules file). */
export type RulesSource = RulesSpec;

/** The kernel's conntrack settings: see README (`conntrack:`). */
export type ConntrackConfig = ConntrackSpec;
export { DEFAULT_CONNTRACK };

export interface HelpersConfig {
  ftp: { ports: number[]; loose: boolean };
}

export interface RouterConfig {
  file: string;
  control: ControlSocketSpec;
  /** `capture: FILE.pcapng`, resolved against the config's directory; null without. */
  capture: string | null;
  interfaces: InterfaceConfig[];
  routes: RouteConfig[];
  rules: RulesSource | null;
  conntrack: ConntrackConfig;
  helpers: HelpersConfig;
}

export type Path = (string | number)[];

export function formatPath(path: Path): string {
  let text = '';
  for (const part of path) text += typeof part === 'number' ? `[${part}]` : text ? `.${part}` : part;
  return text;
}

/** Reads the document with line numbers for every key path it rejects. */
export class ConfigReader {
  private readonly lines: LineCounter;
  readonly doc: Document;
  /** The document as plain data; `doc` is kept for line numbers. */
  private readonly data: unknown;

  /** Throws ConfigErrors for a document that is not valid YAML or whose aliases are refused. */
  constructor(readonly file: string, text: string) {
    ({ doc: this.doc, lines: this.lines, data: this.data } = parseConfigDocument(file, text));
  }

  /**
   * Refuses a document that is no mapping or has none of the `known` keys at its top: most likely
   * another file named by mistake (/etc/shadow), so nothing of it is quoted back.
   */
  requireOwnDocument(known: readonly string[], refusal: string): void {
    const top = this.get([]);
    if (top !== null && typeof top === 'object' && !Array.isArray(top) && Object.keys(top).some((key) => known.includes(key))) return;
    throw new ConfigError(this.file, this.lineOf([]), '', undefined, refusal);
  }

  lineOf(path: Path): number {
    // The closest node that exists: a missing key is reported on its parent's line.
    for (let depth = path.length; depth >= 0; depth--) {
      const node = this.doc.getIn(path.slice(0, depth), true) as { range?: [number, number, number] } | undefined;
      if (node?.range) return this.lines.linePos(node.range[0]).line;
    }
    return 0;
  }

  fail(path: Path, value: unknown, reason: string): never {
    throw new ConfigError(this.file, this.lineOf(path), formatPath(path), value, reason);
  }

  get(path: Path): unknown {
    let value = this.data;
    for (const part of path) value = value === null || typeof value !== 'object' ? undefined : (value as Record<string | number, unknown>)[part];
    return value;
  }

  /** Refuses keys outside `allowed`: a misspelt key silently ignored is a misconfigured router. */
  requireMap(path: Path, allowed: readonly string[]): Record<string, unknown> {
    const node = path.length === 0 ? this.doc.contents : this.doc.getIn(path, true);
    if (!isMap(node)) this.fail(path, this.get(path), 'must be a mapping');
    const value = this.get(path) as Record<string, unknown>;
    for (const key of Object.keys(value)) {
      if (!allowed.includes(key)) this.fail([...path, key], value[key], `unknown key (known: ${allowed.join(', ')})`);
    }
    return value;
  }

  requireList(path: Path): unknown[] {
    const node = this.doc.getIn(path, true);
    if (!isSeq(node)) this.fail(path, this.get(path), 'must be a list');
    return this.get(path) as unknown[];
  }

  string(path: Path, value: unknown): string {
    if (typeof value !== 'string' || value.length === 0) this.fail(path, value, 'must be a non-empty string');
    return value;
  }

  prefix(path: Path, value: unknown): Prefix {
    const text = this.string(path, value);
    try {
      return parseIpv4Prefix(text);
    } catch (error) {
      this.fail(path, value, `not an IPv4 ADDRESS/PREFIX-LENGTH: ${(error as Error).message}`);
    }
  }

  address(path: Path, value: unknown): number {
    const text = this.string(path, value);
    try {
      return parseIpv4Address(text);
    } catch (error) {
      this.fail(path, value, `not an IPv4 address: ${(error as Error).message}`);
    }
  }

  boolean(path: Path, value: unknown): boolean {
    if (typeof value !== 'boolean') this.fail(path, value, 'must be true or false');
    return value;
  }

  integer(path: Path, value: unknown, min: number, max: number): number {
    if (typeof value !== 'number' || !Number.isInteger(value) || value < min || value > max) {
      this.fail(path, value, `must be a whole number from ${min} to ${max}`);
    }
    return value;
  }
}

const ROUTER_KEYS: readonly string[] = ['control', 'capture', 'interfaces', 'routes', 'rules', 'conntrack', 'helpers'];

export interface LoadOptions {
  /** Checks that a named network namespace exists; replaceable for unit tests. */
  namespaceExists?: (name: string) => boolean;
}

export function loadConfigFile(file: string, options: LoadOptions = {}): RouterConfig {
  return parseConfig(file, readConfigText(file), options);
}

export function readConfigText(file: string): string {
  try {
    return readInputFile(file);
  } catch (error) {
    throw new ConfigError(file, 0, '', undefined, `cannot read the config file: ${(error as Error).message}`);
  }
}

export function parseConfig(file: string, text: string, options: LoadOptions = {}): RouterConfig {
  return parseRouterConfig(new ConfigReader(file, text), options);
}

/** The one-router format from a document already read; every problem in it is reported (ConfigErrors). */
export function parseRouterConfig(reader: ConfigReader, options: LoadOptions = {}): RouterConfig {
  const file = reader.file;
  const exists = options.namespaceExists ?? namespaceExists;
  reader.requireOwnDocument(ROUTER_KEYS, 'not a vrouter config: that is a mapping with interfaces: (or, for a lab, name:, hosts:, routers:)');
  const problems = new ConfigProblems(reader);
  const top = problems.map([], ROUTER_KEYS) ?? {};

  const control = problems.check(() => readControl(reader, top.control, ['control']), controlSocketAt(DEFAULT_CONTROL_SOCKET));
  const capture = top.capture === undefined ? null : problems.check(() => readCapturePath(reader, ['capture'], top.capture), null);
  if (top.interfaces === undefined) problems.check(() => reader.fail(['interfaces'], undefined, 'is required: list the router\'s interfaces'), null);
  const { interfaces, named } = top.interfaces === undefined ? { interfaces: [], named: new Map() } : readInterfaces(problems, exists);
  const routes = top.routes === undefined ? [] : readRoutes(problems, named);
  const rules = problems.check(() => readRules(reader, top.rules), null);
  const conntrack = top.conntrack === undefined ? { ...DEFAULT_CONNTRACK } : problems.check(() => readConntrack(reader), { ...DEFAULT_CONNTRACK });
  const helpers = top.helpers === undefined ? defaultHelpers() : problems.check(() => readHelpers(reader), defaultHelpers());
  problems.throwIfAny();
  return { file, control, capture, interfaces, routes, rules, conntrack, helpers };
}

function defaultHelpers(): HelpersConfig {
  return { ftp: { ports: [21], loose: false } };
}

interface ReadInterfaces {
  /** The interfaces without a problem. */
  interfaces: InterfaceConfig[];
  /** Every well-formed interface name, with its interface when that has no problem: routes name them. */
  named: Map<string, InterfaceConfig | null>;
}

/** Each field checked on its own, so that a bad address and a missing namespace are both reported. */
function readInterfaces(problems: ConfigProblems, exists: (name: string) => boolean): ReadInterfaces {
  const reader = problems.reader;
  const result: ReadInterfaces = { interfaces: [], named: new Map() };
  const list = problems.check(() => reader.requireList(['interfaces']), null);
  if (list?.length === 0) problems.check(() => reader.fail(['interfaces'], list, 'must list at least one interface'), null);
  const netnsUsers = new Map<string, string>();
  const addresses: { name: string; address: Prefix }[] = [];
  (list ?? []).forEach((_, i) => {
    const at: Path = ['interfaces', i];
    const raw = problems.map(at, ['name', 'netns', 'address', 'peer', 'mtu']);
    if (!raw) return;
    const name = problems.check(() => {
      const value = reader.string([...at, 'name'], raw.name);
      if (!INTERFACE_NAME.test(value)) reader.fail([...at, 'name'], value, 'must be a Linux interface name (1-15 of A-Z a-z 0-9 _ . -)');
      if (result.named.has(value)) reader.fail([...at, 'name'], value, 'is used by another interface');
      result.named.set(value, null);
      return value;
    }, null);
    const netns = problems.check(() => {
      const value = reader.string([...at, 'netns'], raw.netns);
      if (!exists(value)) reader.fail([...at, 'netns'], value, `network namespace "${value}" does not exist (create it with: ip netns add ${value})`);
      const user = netnsUsers.get(value);
      if (user !== undefined) reader.fail([...at, 'netns'], value, `already holds interface ${user}; each namespace gets its default route through its one interface`);
      netnsUsers.set(value, name ?? `interfaces[${i}]`);
      return value;
    }, null);
    const address = problems.check(() => {
      if (raw.address === undefined) reader.fail([...at, 'address'], undefined, 'is required');
      const value = reader.prefix([...at, 'address'], raw.address);
      if (value.prefixLength > 30) reader.fail([...at, 'address'], raw.address, 'prefix length must be 30 or shorter, to hold the router and the peer');
      const clash = addresses.find((other) => overlaps(other.address, value));
      if (clash) reader.fail([...at, 'address'], raw.address, `overlaps the subnet of interface ${clash.name}`);
      addresses.push({ name: name ?? `interfaces[${i}]`, address: value });
      return value;
    }, null);
    const peer = problems.check(() => {
      if (raw.peer === undefined) reader.fail([...at, 'peer'], undefined, 'is required');
      const value = reader.prefix([...at, 'peer'], raw.peer);
      if (!address) return value;
      if (value.prefixLength !== address.prefixLength || networkOf(value.address, value.prefixLength) !== networkOf(address.address, address.prefixLength)) {
        reader.fail([...at, 'peer'], raw.peer, `must be in the same subnet as address ${String(raw.address)}`);
      }
      if (value.address === address.address) reader.fail([...at, 'peer'], raw.peer, 'must differ from the router\'s address');
      return value;
    }, null);
    const mtu = raw.mtu === undefined ? DEFAULT_MTU : problems.check(() => reader.integer([...at, 'mtu'], raw.mtu, MIN_MTU, MAX_MTU), null);
    if (name === null || netns === null || address === null || peer === null || mtu === null) return;
    const link = { name, netns, address, peer, mtu };
    result.interfaces.push(link);
    result.named.set(name, link);
  });
  return result;
}

export function overlaps(a: Prefix, b: Prefix): boolean {
  const shorter = Math.min(a.prefixLength, b.prefixLength);
  return networkOf(a.address, shorter) === networkOf(b.address, shorter);
}

function readRoutes(problems: ConfigProblems, named: ReadonlyMap<string, InterfaceConfig | null>): RouteConfig[] {
  const reader = problems.reader;
  const routes: RouteConfig[] = [];
  problems.check(() => reader.requireList(['routes']), []).forEach((_, i) => {
    const at: Path = ['routes', i];
    const raw = problems.map(at, ['to', 'dev', 'via']);
    if (!raw) return;
    const to = problems.check(() => {
      if (raw.to === undefined) reader.fail([...at, 'to'], undefined, 'is required');
      return raw.to === 'default' ? { address: 0, prefixLength: 0 } : reader.prefix([...at, 'to'], raw.to);
    }, null);
    const dev = problems.check(() => {
      const value = reader.string([...at, 'dev'], raw.dev);
      if (!named.has(value)) reader.fail([...at, 'dev'], value, `no interface has this name (interfaces: ${[...named.keys()].join(', ')})`);
      return value;
    }, null);
    const via = raw.via === undefined ? 0 : problems.check(() => {
      const value = reader.address([...at, 'via'], raw.via);
      // Checked against the link only when it has no problem of its own.
      const link = dev === null ? null : named.get(dev);
      if (link && networkOf(value, link.address.prefixLength) !== networkOf(link.address.address, link.address.prefixLength)) {
        reader.fail([...at, 'via'], raw.via, `is not on the subnet of ${dev}`);
      }
      return value;
    }, null);
    if (to !== null && dev !== null && via !== null) routes.push({ to, dev, via });
  });
  return routes;
}

/**
 * `rules:` at `at`: inline iptables-restore text, or a file relative to the config. Null when
 * there are none: no key, an empty value or an empty block (as an empty iptables-restore file).
 */
export function readRules(reader: ConfigReader, value: unknown, at: Path = ['rules']): RulesSource | null {
  if (value === undefined || value === null || (typeof value === 'string' && value.trim() === '')) return null;
  const text = reader.string(at, value);
  if (text.includes('\n')) {
    // A block scalar starts on the line after `rules: |`.
    return { text, origin: `${reader.file} (${formatPath(at)})`, firstLine: reader.lineOf(at) + 1 };
  }
  const path = resolve(dirname(reader.file), text);
  try {
    return { text: readInputFile(path), origin: path, firstLine: 0 };
  } catch (error) {
    reader.fail(at, text, `cannot read the rules file: ${(error as Error).message}`);
  }
}

export function readConntrack(reader: ConfigReader, at: Path = ['conntrack']): ConntrackConfig {
  const raw = reader.requireMap(at, ['always', 'max', 'buckets', 'auto_helpers', 'checksum', 'tcp_loose', 'tcp_be_liberal']);
  const flag = (key: string, fallback: boolean): boolean => (raw[key] === undefined ? fallback : reader.boolean([...at, key], raw[key]));
  const number = (key: string, fallback: number, min: number, max: number): number =>
    raw[key] === undefined ? fallback : reader.integer([...at, key], raw[key], min, max);
  return {
    always: flag('always', DEFAULT_CONNTRACK.always),
    max: number('max', DEFAULT_CONNTRACK.max, 1, 16_777_216),
    buckets: number('buckets', DEFAULT_CONNTRACK.buckets, 1, 16_777_216),
    autoHelpers: flag('auto_helpers', DEFAULT_CONNTRACK.autoHelpers),
    checksum: flag('checksum', DEFAULT_CONNTRACK.checksum),
    tcpLoose: flag('tcp_loose', DEFAULT_CONNTRACK.tcpLoose),
    tcpBeLiberal: flag('tcp_be_liberal', DEFAULT_CONNTRACK.tcpBeLiberal),
  };
}

/** The kernel's nf_conntrack_ftp parameters: up to 8 ports, and `loose`. */
const MAX_HELPER_PORTS = 8;

export function readHelpers(reader: ConfigReader, base: Path = ['helpers']): HelpersConfig {
  reader.requireMap(base, ['ftp']);
  const ftp = { ports: [21], loose: false };
  if (reader.get([...base, 'ftp']) !== undefined) {
    const at: Path = [...base, 'ftp'];
    const raw = reader.requireMap(at, ['ports', 'loose']);
    if (raw.ports !== undefined) {
      const ports = reader.requireList([...at, 'ports']);
      if (ports.length === 0 || ports.length > MAX_HELPER_PORTS) reader.fail([...at, 'ports'], ports, `must list 1 to ${MAX_HELPER_PORTS} ports`);
      ftp.ports = ports.map((port, i) => reader.integer([...at, 'ports', i], port, 1, 65535));
      if (new Set(ftp.ports).size !== ftp.ports.length) reader.fail([...at, 'ports'], ports, 'lists a port twice');
    }
    if (raw.loose !== undefined) ftp.loose = reader.boolean([...at, 'loose'], raw.loose);
  }
  return { ftp };
}

/** `capture: FILE.pcapng`: a path (relative to the config file), to a .pcapng file. */
export function readCapturePath(reader: ConfigReader, at: Path, value: unknown): string {
  const text = reader.string(at, value);
  if (!text.endsWith('.pcapng')) reader.fail(at, value, 'must name a .pcapng file (captures are pcapng)');
  return resolve(dirname(reader.file), text);
}
