/**
 * A lab file: hosts, segments and several routers in one process (see README, "Labs"). Checked
 * completely before anything is made, and every problem in the file is reported, each with the
 * file, line, key path and bad value:
 *
 *   - names: the lab's (namespaces become `<name>-<host>`), hosts', routers', interfaces' (at most
 *     15 characters, as Linux allows);
 *   - a segment under `segments:` that nothing attaches to;
 *   - a host address outside the subnet of the router interfaces on its segment, a gateway no
 *     router owns on that segment, the same address twice on a segment;
 *   - a route via an address on none of the router's segments.
 *
 * A one-router file (`interfaces` with `netns` and `peer`) is read by config.ts and becomes a lab
 * with one router and one peer host per interface (one-router-lab.ts).
 */
import { networkOf, type Prefix } from '../../core/addresses.ts';
import type { RouterSpec } from '../../stack/build-router.ts';
import { ConfigProblems } from '../config-errors.ts';
import {
  ConfigReader,
  DEFAULT_CONNTRACK,
  DEFAULT_MTU,
  INTERFACE_NAME,
  MAX_MTU,
  MIN_MTU,
  overlaps,
  readCapturePath,
  readConntrack,
  readHelpers,
  readRules,
  type LoadOptions,
  type Path,
} from '../config.ts';
import { namespaceExists } from '../namespaces.ts';
import { readControl } from '../control-config.ts';
import { DEFAULT_CONTROL_SOCKET, controlSocketAt } from '../control-socket.ts';
import { IMPAIRMENT_KEYS, ImpairmentValueError } from './impairment-words.ts';
import type { ImpairmentSettings } from './impairment.ts';
import { seedOf, type HostInterfaceSpec, type HostSpec, type LabRouterSpec, type LabSpec, type SegmentSpec } from './lab-spec.ts';

/** Keys that make a file a lab rather than a one-router config. */
export const LAB_KEYS: readonly string[] = ['name', 'segments', 'hosts', 'routers'];

const LAB_NAME = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,31}$/;
const MEMBER_NAME = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,31}$/;
const DEFAULT_HOST_INTERFACE = 'eth0';
const SEGMENT_KEYS = [...Object.keys(IMPAIRMENT_KEYS), 'down', 'seed'];

interface Attachment {
  segment: string;
  /** A host's gateway on this segment (0: none). */
  gateway: number;
  address: Prefix;
  /** router or host name, and interface name */
  owner: string;
  kind: 'router' | 'host';
  at: Path;
}

export function parseLab(reader: ConfigReader, options: LoadOptions = {}, root: Path = []): LabSpec {
  const exists = options.namespaceExists ?? namespaceExists;
  const problems = new ConfigProblems(reader, root);
  const top = reader.requireMap(root, ['name', 'control', 'capture', 'segments', 'hosts', 'routers']);
  const name = problems.check(() => {
    const value = reader.string([...root, 'name'], top.name);
    if (!LAB_NAME.test(value)) reader.fail([...root, 'name'], value, 'must be 1-32 of A-Z a-z 0-9 _ . - (namespaces are named <name>-<host>)');
    return value;
  }, 'lab');
  const control = problems.check(() => readControl(reader, top.control, [...root, 'control']), controlSocketAt(DEFAULT_CONTROL_SOCKET));
  const capture = top.capture === undefined ? null : problems.check(() => readCapturePath(reader, [...root, 'capture'], top.capture), null);
  if (top.hosts === undefined && top.routers === undefined) problems.check(() => reader.fail(root, undefined, 'a lab needs hosts: or routers:'), null);

  const attachments: Attachment[] = [];
  const routers = top.routers === undefined ? [] : problems.check(() => Object.keys(reader.requireMap([...root, 'routers'], Object.keys(asRecord(top.routers)))), []).map((routerName) => readRouter(reader, problems, routerName, attachments));
  const hosts = top.hosts === undefined ? [] : problems.check(() => Object.keys(reader.requireMap([...root, 'hosts'], Object.keys(asRecord(top.hosts)))), []).map((hostName) => readHost(reader, problems, name, hostName, exists, attachments));
  for (const host of hosts) {
    if (routers.some((router) => router.name === host.name)) problems.check(() => reader.fail([...root, 'hosts', host.name], host.name, 'is also the name of a router'), null);
  }
  checkSegments(reader, problems, attachments, routers);
  const listed = top.segments === undefined ? {} : problems.check(() => reader.requireMap([...root, 'segments'], Object.keys(asRecord(top.segments))), {});
  const named = new Set(attachments.map((a) => a.segment));
  for (const segment of Object.keys(listed)) {
    if (!named.has(segment)) problems.check(() => reader.fail([...root, 'segments', segment], segment, 'nothing attaches to this segment (no host or router interface names it)'), null);
  }
  const segments: SegmentSpec[] = [...named].map((segment) => (listed[segment] === undefined ? { name: segment, impairment: {}, seed: seedOf(segment) } : readSegment(reader, problems, segment)));
  for (const router of routers) checkRoutes(reader, problems, router);
  problems.throwIfAny();
  return { name, file: reader.file, control, capture, segments, hosts, routers };
}

function asRecord(value: unknown): Record<string, unknown> {
  return value !== null && typeof value === 'object' && !Array.isArray(value) ? (value as Record<string, unknown>) : {};
}

function readSegment(reader: ConfigReader, problems: ConfigProblems, name: string): SegmentSpec {
  const at: Path = [...problems.root, 'segments', name];
  const raw = problems.map(at, SEGMENT_KEYS) ?? {};
  const impairment: Partial<ImpairmentSettings> = {};
  let seed = seedOf(name);
  for (const [key, value] of Object.entries(raw)) {
    problems.check(() => {
      if (key === 'down') impairment.down = reader.boolean([...at, key], value);
      else if (key === 'seed') seed = reader.integer([...at, key], value, 0, 0xffffffff);
      else {
        try {
          Object.assign(impairment, IMPAIRMENT_KEYS[key]!(value));
        } catch (error) {
          if (error instanceof ImpairmentValueError) reader.fail([...at, key], value, error.message);
          throw error;
        }
      }
    }, null);
  }
  return { name, impairment, seed };
}

function readInterfaceName(reader: ConfigReader, at: Path, value: unknown): string {
  const name = reader.string(at, value);
  if (!INTERFACE_NAME.test(name)) reader.fail(at, name, 'must be a Linux interface name (1-15 of A-Z a-z 0-9 _ . -)');
  return name;
}

function readRouter(reader: ConfigReader, problems: ConfigProblems, name: string, attachments: Attachment[]): LabRouterSpec {
  const base: Path = [...problems.root, 'routers', name];
  if (!MEMBER_NAME.test(name)) problems.check(() => reader.fail(base, name, 'a router name must be 1-32 of A-Z a-z 0-9 _ . -'), null);
  const raw = problems.map(base, ['interfaces', 'routes', 'rules', 'conntrack', 'helpers']) ?? {};
  const interfaces: RouterSpec['interfaces'][number][] = [];
  const segments: string[] = [];
  if (raw.interfaces === undefined) problems.check(() => reader.fail([...base, 'interfaces'], undefined, 'is required: list the router\'s interfaces'), null);
  else {
    const list = problems.check(() => reader.requireList([...base, 'interfaces']), []);
    list.forEach((_, i) => {
      const at: Path = [...base, 'interfaces', i];
      problems.check(() => {
        const item = problems.map(at, ['name', 'segment', 'address', 'mtu']);
        if (!item) return;
        const ifname = readInterfaceName(reader, [...at, 'name'], item.name);
        if (interfaces.some((other) => other.name === ifname)) reader.fail([...at, 'name'], ifname, 'is used by another interface of this router');
        const segment = reader.string([...at, 'segment'], item.segment);
        if (item.address === undefined) reader.fail([...at, 'address'], undefined, 'is required');
        const address = reader.prefix([...at, 'address'], item.address);
        const clash = interfaces.find((other) => overlaps({ address: other.address, prefixLength: other.prefixLength }, address));
        if (clash) reader.fail([...at, 'address'], item.address, `overlaps the subnet of interface ${clash.name}`);
        const mtu = item.mtu === undefined ? DEFAULT_MTU : reader.integer([...at, 'mtu'], item.mtu, MIN_MTU, MAX_MTU);
        interfaces.push({ name: ifname, address: address.address, prefixLength: address.prefixLength, mtu });
        segments.push(segment);
        attachments.push({ segment, gateway: 0, address, owner: `router ${name} interface ${ifname}`, kind: 'router', at: [...at, 'address'] });
      }, null);
    });
  }
  const rules = problems.check(() => readRules(reader, raw.rules, [...base, 'rules']), null);
  const conntrack = raw.conntrack === undefined ? { ...DEFAULT_CONNTRACK } : problems.check(() => readConntrack(reader, [...base, 'conntrack']), { ...DEFAULT_CONNTRACK });
  const helpers = raw.helpers === undefined ? { ftp: { ports: [21], loose: false } } : problems.check(() => readHelpers(reader, [...base, 'helpers']), { ftp: { ports: [21], loose: false } });
  // Routes are read once every interface is known (checkRoutes); kept raw until then.
  return { name, spec: { interfaces, routes: [], rules, conntrack, helpers }, segments };
}

function checkRoutes(reader: ConfigReader, problems: ConfigProblems, router: LabRouterSpec): void {
  const base: Path = [...problems.root, 'routers', router.name, 'routes'];
  if (reader.get(base) === undefined) return;
  const list = problems.check(() => reader.requireList(base), []);
  const interfaces = router.spec.interfaces;
  const routes: NonNullable<RouterSpec['routes']>[number][] = [];
  list.forEach((_, i) => {
    const at: Path = [...base, i];
    problems.check(() => {
      const raw = problems.map(at, ['to', 'via', 'dev']);
      if (!raw) return;
      if (raw.to === undefined) reader.fail([...at, 'to'], undefined, 'is required');
      const to = raw.to === 'default' ? { address: 0, prefixLength: 0 } : reader.prefix([...at, 'to'], raw.to);
      const via = raw.via === undefined ? 0 : reader.address([...at, 'via'], raw.via);
      const onLink = (link: (typeof interfaces)[number]): boolean => networkOf(via, link.prefixLength) === networkOf(link.address, link.prefixLength);
      let dev: string;
      if (raw.dev !== undefined) {
        dev = reader.string([...at, 'dev'], raw.dev);
        const link = interfaces.find((candidate) => candidate.name === dev);
        if (!link) reader.fail([...at, 'dev'], dev, `no interface of router ${router.name} has this name (interfaces: ${interfaces.map((x) => x.name).join(', ')})`);
        if (via && !onLink(link)) reader.fail([...at, 'via'], raw.via, `is not on the subnet of ${dev}`);
      } else {
        if (!via) reader.fail([...at, 'via'], undefined, 'is required when dev is not given');
        const link = interfaces.find(onLink);
        if (!link) reader.fail([...at, 'via'], raw.via, `is on none of router ${router.name}'s segments (${interfaces.map((x) => `${x.name} ${formatNetwork(x)}`).join(', ')})`);
        dev = link.name;
      }
      routes.push({ to: to.address, prefixLength: to.prefixLength, dev, via });
    }, null);
  });
  router.spec.routes = routes;
}

function formatNetwork(link: { address: number; prefixLength: number }): string {
  const network = networkOf(link.address, link.prefixLength);
  return `${[24, 16, 8, 0].map((shift) => (network >>> shift) & 255).join('.')}/${link.prefixLength}`;
}

function readHost(reader: ConfigReader, problems: ConfigProblems, lab: string, name: string, exists: (netns: string) => boolean, attachments: Attachment[]): HostSpec {
  const base: Path = [...problems.root, 'hosts', name];
  if (!MEMBER_NAME.test(name)) problems.check(() => reader.fail(base, name, 'a host name must be 1-32 of A-Z a-z 0-9 _ . -'), null);
  const raw = problems.map(base, ['segment', 'address', 'gateway', 'interface', 'mtu', 'netns', 'interfaces']) ?? {};
  let netns = `${lab}-${name}`;
  let ownsNetns = true;
  if (raw.netns !== undefined) {
    problems.check(() => {
      netns = reader.string([...base, 'netns'], raw.netns);
      ownsNetns = false;
      if (!exists(netns)) reader.fail([...base, 'netns'], netns, `network namespace "${netns}" does not exist (create it with: ip netns add ${netns}, or leave netns out to have the lab make one)`);
    }, null);
  }
  const interfaces: HostInterfaceSpec[] = [];
  const readInterface = (at: Path, item: Record<string, unknown>, defaultName: string): void => {
    problems.check(() => {
      const ifname = item.name === undefined && item.interface === undefined ? defaultName : readInterfaceName(reader, [...at, item.name === undefined ? 'interface' : 'name'], item.name ?? item.interface);
      if (interfaces.some((other) => other.name === ifname)) reader.fail([...at, 'name'], ifname, `is used by another interface of host ${name}`);
      const segment = reader.string([...at, 'segment'], item.segment);
      if (item.address === undefined) reader.fail([...at, 'address'], undefined, 'is required');
      const address = reader.prefix([...at, 'address'], item.address);
      const gateway = item.gateway === undefined ? 0 : reader.address([...at, 'gateway'], item.gateway);
      const mtu = item.mtu === undefined ? DEFAULT_MTU : reader.integer([...at, 'mtu'], item.mtu, MIN_MTU, MAX_MTU);
      interfaces.push({ name: ifname, segment, address, gateway, mtu });
      attachments.push({ segment, gateway, address, owner: `host ${name} interface ${ifname}`, kind: 'host', at: [...at, 'address'] });
    }, null);
  };
  if (raw.interfaces !== undefined) {
    const single = ['segment', 'address', 'gateway', 'interface', 'mtu'].find((key) => raw[key] !== undefined);
    if (single) problems.check(() => reader.fail([...base, single], raw[single], 'goes inside interfaces: when the host lists its interfaces'), null);
    const list = problems.check(() => reader.requireList([...base, 'interfaces']), []);
    list.forEach((_, i) => {
      const at: Path = [...base, 'interfaces', i];
      const item = problems.map(at, ['name', 'segment', 'address', 'gateway', 'mtu']);
      if (item) readInterface(at, item, `eth${i}`);
    });
  } else {
    readInterface(base, raw, DEFAULT_HOST_INTERFACE);
  }
  return { name, netns, ownsNetns, interfaces };
}

/** Addresses per segment: subnets agree with the routers there, no address twice, gateways owned. */
function checkSegments(reader: ConfigReader, problems: ConfigProblems, attachments: readonly Attachment[], routers: readonly LabRouterSpec[]): void {
  const bySegment = new Map<string, Attachment[]>();
  for (const attachment of attachments) bySegment.set(attachment.segment, [...(bySegment.get(attachment.segment) ?? []), attachment]);
  for (const [segment, members] of bySegment) {
    const routerPorts = members.filter((m) => m.kind === 'router');
    members.forEach((member, i) => {
      const twice = members.slice(0, i).find((other) => other.address.address === member.address.address);
      if (twice) problems.check(() => reader.fail(member.at, reader.get(member.at), `the same address as ${twice.owner} on segment ${segment}`), null);
      if (member.kind !== 'host') return;
      for (const port of routerPorts) {
        const where = `${port.owner} (${reader.get(port.at) as string}) on segment ${segment}`;
        if (networkOf(member.address.address, port.address.prefixLength) !== networkOf(port.address.address, port.address.prefixLength)) {
          problems.check(() => reader.fail(member.at, reader.get(member.at), `is outside the subnet of ${where}`), null);
        } else if (member.address.prefixLength !== port.address.prefixLength) {
          problems.check(() => reader.fail(member.at, reader.get(member.at), `has another prefix length than ${where}`), null);
        }
      }
    });
  }
  for (const attachment of attachments) {
    if (attachment.kind !== 'host' || attachment.gateway === 0) continue;
    const owned = routers.some((router) => router.spec.interfaces.some((link, i) => router.segments[i] === attachment.segment && link.address === attachment.gateway));
    const at = [...attachment.at.slice(0, -1), 'gateway'];
    if (!owned) problems.check(() => reader.fail(at, reader.get(at), `no router owns this address on segment ${attachment.segment}`), null);
  }
}

/** Whether the document is a lab file (else a one-router config). */
export function isLabDocument(reader: ConfigReader): boolean {
  const top = reader.get([]);
  return top !== null && typeof top === 'object' && LAB_KEYS.some((key) => key in (top as object));
}
