/**
 * The same lab with every router replaced by the Linux kernel, for running a scenario through a
 * second, independent implementation: a namespace per router with ip_forward=1 and the same rules
 * loaded with iptables-restore (the kernel's own conntrack helpers attached by the same CT rules),
 * each segment a bridge, each host or router interface a veth onto it, and impairments on the
 * bridge: tc netem on its ports where the kernel has netem (each packet crossing a segment leaves
 * by exactly one port, so it is impaired once, as in vrouter). A kernel built without netem (this
 * project's CI machine) still gets `loss` and `down` (an nftables bridge rule dropping at random,
 * or everything) and `rate` (tbf on the ports); `delay`, `jitter`, `duplicate` and `reorder` are
 * refused there. The kernel's randomness is not seeded: impaired kernel runs do not repeat exactly.
 *
 * Host namespaces get the same names as in vrouter mode, so the same steps run unchanged; the
 * routers' namespaces are `<lab>-<router>` and the bridges live in `<lab>-segments`.
 *
 * Options the kernel cannot reproduce are refused by `kernelLabProblems` before anything is made.
 */
import { execFileSync } from 'node:child_process';
import { formatIpv4Address, formatPrefix } from '../../core/addresses.ts';
import { DEFAULT_CONNTRACK } from '../../stack/build-router.ts';
import { createNamespace, destroyNamespace, namespaceExists } from '../namespaces.ts';
import type { ImpairmentSettings } from './impairment.ts';
import { NO_IMPAIRMENT, impairs } from './impairment.ts';
import type { LabSpec } from './lab-spec.ts';

export const SEGMENTS_NAMESPACE_SUFFIX = 'segments';

export interface KernelLab {
  readonly spec: LabSpec;
  /** The namespace a router of the lab runs in. */
  routerNamespace(name: string): string;
  /** A segment's impairments at runtime (`link:` steps). */
  link(segment: string, settings: Partial<ImpairmentSettings>): ImpairmentSettings;
  close(): void;
}

let netem: boolean | null = null;

/** Whether this kernel has the netem qdisc (tried once, in a namespace of our own). */
export function kernelHasNetem(): boolean {
  if (netem !== null) return netem;
  const scratch = `vrnetem${process.pid}`;
  try {
    createNamespace(scratch);
    netem = execFileSyncQuiet(['ip', 'netns', 'exec', scratch, 'tc', 'qdisc', 'add', 'dev', 'lo', 'root', 'netem', 'delay', '1ms']);
  } finally {
    destroyNamespace(scratch);
  }
  return netem;
}

/** What of these impairments the kernel here cannot do, or null. */
export function kernelImpairmentProblem(settings: Partial<ImpairmentSettings>): string | null {
  const needNetem = (['delay', 'jitter', 'duplicate', 'reorder'] as const).filter((key) => (settings[key] ?? 0) > 0);
  if (needNetem.length === 0 || kernelHasNetem()) return null;
  return `${needNetem.join(', ')} need tc netem, which this machine's kernel lacks (CONFIG_NET_SCH_NETEM); it can do loss, rate and down`;
}

/** What this lab asks for that the kernel lacks, one sentence each; empty when it can run. */
export function kernelLabProblems(lab: LabSpec): string[] {
  const problems: string[] = [];
  for (const segment of lab.segments) {
    const problem = kernelImpairmentProblem(segment.impairment);
    if (problem) problems.push(`segment ${segment.name}: ${problem}`);
  }
  for (const router of lab.routers) {
    const conntrack = { ...DEFAULT_CONNTRACK, ...router.spec.conntrack };
    const where = `router ${router.name}`;
    if (conntrack.always) problems.push(`${where}: conntrack.always has no kernel equivalent (the kernel tracks only when a rule needs it)`);
    if (conntrack.autoHelpers) problems.push(`${where}: conntrack.auto_helpers was removed from the kernel (6.0)`);
    if (conntrack.max !== DEFAULT_CONNTRACK.max || conntrack.buckets !== DEFAULT_CONNTRACK.buckets) {
      problems.push(`${where}: conntrack.max and conntrack.buckets are global in the kernel, not per router namespace`);
    }
    const ftp = router.spec.helpers?.ftp;
    if (ftp && (ftp.loose || ftp.ports.length !== 1 || ftp.ports[0] !== 21)) {
      problems.push(`${where}: helpers.ftp ports and loose are parameters of the kernel's built-in nf_conntrack_ftp, shared by all namespaces (only ports [21], loose false)`);
    }
  }
  return problems;
}

function run(args: string[], input?: string): void {
  try {
    execFileSync(args[0]!, args.slice(1), { stdio: ['pipe', 'ignore', 'pipe'], ...(input === undefined ? {} : { input }) });
  } catch (error) {
    const stderr = String((error as { stderr?: Buffer }).stderr ?? '').trim();
    throw new Error(`${args.join(' ')}: ${stderr || (error as Error).message}`);
  }
}

/** tc netem words for a segment's settings (loss 100% for a link that is down). */
export function netemArguments(settings: ImpairmentSettings): string[] {
  const words = ['limit', String(settings.limit)];
  if (settings.delay > 0 || settings.jitter > 0) words.push('delay', `${settings.delay}ms`, ...(settings.jitter > 0 ? [`${settings.jitter}ms`] : []));
  if (settings.down) words.push('loss', '100%');
  else if (settings.loss > 0) words.push('loss', `${settings.loss}%`);
  if (settings.duplicate > 0) words.push('duplicate', `${settings.duplicate}%`);
  if (settings.reorder > 0) words.push('reorder', `${settings.reorder}%`);
  if (settings.rate > 0) words.push('rate', `${settings.rate}bit`);
  return words;
}

export function startKernelLab(lab: LabSpec): KernelLab {
  const problems = kernelLabProblems(lab);
  if (problems.length) throw new Error(`this lab cannot run on the kernel:\n  ${problems.join('\n  ')}`);
  const undo: (() => void)[] = [];
  const close = (): void => {
    while (undo.length) undo.pop()!();
  };
  const ns = (member: string): string => `${lab.name}-${member}`;
  const segmentsNs = ns(SEGMENTS_NAMESPACE_SUFFIX);
  const ports = new Map<string, string[]>();
  const settings = new Map<string, ImpairmentSettings>();
  let impairment: Impairer | null = null;
  try {
    const made = [segmentsNs, ...lab.routers.map((r) => ns(r.name)), ...lab.hosts.filter((h) => h.ownsNetns).map((h) => h.netns)];
    for (const name of made) {
      if (namespaceExists(name)) throw new Error(`network namespace ${name} already exists (remove it with: ip netns del ${name})`);
      createNamespace(name);
      undo.push(() => destroyNamespace(name));
    }
    lab.segments.forEach((segment, i) => {
      run(['ip', '-n', segmentsNs, 'link', 'add', `s${i}`, 'type', 'bridge']);
      run(['ip', '-n', segmentsNs, 'link', 'set', `s${i}`, 'up']);
      ports.set(segment.name, []);
      settings.set(segment.name, { ...NO_IMPAIRMENT, ...segment.impairment });
    });
    let portCount = 0;
    /** A veth from `netns` (named `name` there) onto the segment's bridge. */
    const plug = (netns: string, name: string, segment: string, mtu: number): void => {
      const port = `p${portCount++}`;
      const bridge = `s${lab.segments.findIndex((s) => s.name === segment)}`;
      run(['ip', '-n', segmentsNs, 'link', 'add', port, 'type', 'veth', 'peer', 'name', name, 'netns', netns]);
      // In a namespace the lab did not make, the veth goes with the namespace only if we delete it.
      undo.push(() => void execFileSyncQuiet(['ip', '-n', segmentsNs, 'link', 'del', port]));
      run(['ip', '-n', segmentsNs, 'link', 'set', port, 'mtu', String(mtu), 'master', bridge, 'up']);
      run(['ip', '-n', netns, 'link', 'set', name, 'mtu', String(mtu), 'up']);
      ports.get(segment)!.push(port);
    };
    for (const router of lab.routers) {
      const netns = ns(router.name);
      router.spec.interfaces.forEach((link, i) => {
        plug(netns, link.name, router.segments[i]!, link.mtu);
        run(['ip', '-n', netns, 'addr', 'add', `${formatIpv4Address(link.address)}/${link.prefixLength}`, 'dev', link.name]);
      });
      for (const route of router.spec.routes ?? []) {
        const to = route.prefixLength === 0 ? 'default' : formatPrefix({ address: route.to, prefixLength: route.prefixLength });
        run(['ip', '-n', netns, 'route', 'add', to, ...(route.via ? ['via', formatIpv4Address(route.via)] : []), 'dev', route.dev]);
      }
      run(['ip', 'netns', 'exec', netns, 'sysctl', '-qw', 'net.ipv4.ip_forward=1']);
      const conntrack = { ...DEFAULT_CONNTRACK, ...router.spec.conntrack };
      if (router.spec.rules) run(['ip', 'netns', 'exec', netns, 'iptables-restore'], router.spec.rules.text);
      // Per-namespace conntrack sysctls exist once conntrack is loaded (it is built in here).
      run(['ip', 'netns', 'exec', netns, 'sysctl', '-qw', `net.netfilter.nf_conntrack_checksum=${conntrack.checksum ? 1 : 0}`]);
      run(['ip', 'netns', 'exec', netns, 'sysctl', '-qw', `net.netfilter.nf_conntrack_tcp_loose=${conntrack.tcpLoose ? 1 : 0}`]);
      run(['ip', 'netns', 'exec', netns, 'sysctl', '-qw', `net.netfilter.nf_conntrack_tcp_be_liberal=${conntrack.tcpBeLiberal ? 1 : 0}`]);
    }
    for (const host of lab.hosts) {
      for (const link of host.interfaces) {
        plug(host.netns, link.name, link.segment, link.mtu);
        run(['ip', '-n', host.netns, 'addr', 'add', formatPrefix(link.address), 'dev', link.name]);
        if (link.gateway) run(['ip', '-n', host.netns, 'route', 'replace', 'default', 'via', formatIpv4Address(link.gateway), 'dev', link.name]);
      }
    }
    const impairer = kernelHasNetem() ? new NetemImpairer(segmentsNs) : new BridgeImpairer(segmentsNs, lab.segments.map((s) => s.name));
    impairment = impairer;
    for (const [segment, value] of settings) impairer.apply(segment, ports.get(segment)!, value);
  } catch (error) {
    close();
    throw error;
  }
  return {
    spec: lab,
    routerNamespace: (name) => {
      if (!lab.routers.some((r) => r.name === name)) throw new Error(`no router ${name} in lab ${lab.name}`);
      return ns(name);
    },
    link(segment, change) {
      const current = settings.get(segment);
      if (!current) throw new Error(`no segment ${segment} in lab ${lab.name}`);
      const problem = kernelImpairmentProblem(change);
      if (problem) throw new Error(`segment ${segment}: ${problem}`);
      const next = { ...current, ...change };
      impairment!.apply(segment, ports.get(segment)!, next);
      settings.set(segment, next);
      return { ...next };
    },
    close,
  };
}

interface Impairer {
  apply(segment: string, ports: readonly string[], settings: ImpairmentSettings): void;
}

/** tc netem on every port of the segment's bridge (or none when nothing is impaired). */
class NetemImpairer implements Impairer {
  constructor(private readonly netns: string) {}

  apply(_segment: string, ports: readonly string[], settings: ImpairmentSettings): void {
    for (const port of ports) {
      if (impairs(settings)) run(['ip', 'netns', 'exec', this.netns, 'tc', 'qdisc', 'replace', 'dev', port, 'root', 'netem', ...netemArguments(settings)]);
      else execFileSyncQuiet(['ip', 'netns', 'exec', this.netns, 'tc', 'qdisc', 'del', 'dev', port, 'root']);
    }
  }
}

/**
 * Without netem: loss and down as an nftables bridge-family rule per segment (frames forwarded
 * from the segment's ports dropped at random, or all), rate as tbf on the ports.
 */
class BridgeImpairer implements Impairer {
  private readonly chains = new Map<string, string>();

  constructor(
    private readonly netns: string,
    segments: readonly string[],
  ) {
    run(['ip', 'netns', 'exec', netns, 'nft', 'add', 'table', 'bridge', 'vrouter']);
    run(['ip', 'netns', 'exec', netns, 'nft', 'add chain bridge vrouter forward { type filter hook forward priority 0 ; }']);
    segments.forEach((segment, i) => this.chains.set(segment, `segment${i}`));
  }

  apply(segment: string, ports: readonly string[], settings: ImpairmentSettings): void {
    const chain = this.chains.get(segment)!;
    const nft = (rule: string): void => run(['ip', 'netns', 'exec', this.netns, 'nft', rule]);
    if (!this.hooked.has(chain) && ports.length) {
      nft(`add chain bridge vrouter ${chain}`);
      nft(`add rule bridge vrouter forward iifname { ${ports.map((p) => `"${p}"`).join(', ')} } jump ${chain}`);
      this.hooked.add(chain);
    }
    if (this.hooked.has(chain)) {
      nft(`flush chain bridge vrouter ${chain}`);
      if (settings.down || settings.loss >= 100) nft(`add rule bridge vrouter ${chain} counter drop`);
      else if (settings.loss > 0) nft(`add rule bridge vrouter ${chain} numgen random mod 1000000 < ${Math.round(settings.loss * 10_000)} counter drop`);
    }
    for (const port of ports) {
      if (settings.rate > 0) {
        // tbf wants a bucket of at least one frame; a millisecond of traffic keeps it close to pure pacing.
        const burst = Math.max(1600, Math.ceil(settings.rate / 8 / 1000));
        run(['ip', 'netns', 'exec', this.netns, 'tc', 'qdisc', 'replace', 'dev', port, 'root', 'tbf', 'rate', `${settings.rate}bit`, 'burst', String(burst), 'limit', String(settings.limit * 1514)]);
      } else {
        execFileSyncQuiet(['ip', 'netns', 'exec', this.netns, 'tc', 'qdisc', 'del', 'dev', port, 'root']);
      }
    }
  }

  private readonly hooked = new Set<string>();
}

function execFileSyncQuiet(args: string[]): boolean {
  try {
    execFileSync(args[0]!, args.slice(1), { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}
