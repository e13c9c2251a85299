/**
 * Puts each interface's TUN into its namespace: created here under a temporary unique name (two
 * routers may start at once, and "lan0" may exist here), moved with `ip link set DEV netns NS`,
 * renamed there, addressed, brought up and given a default route through the router. The fd the
 * router holds keeps working after the move; closing it deletes the device wherever it is.
 *
 * The default route is the one thing set up here that is not the TUN's own: `route replace`
 * displaces the namespace's default route, which may be another running router's. It is kept and
 * put back when this interface goes away (`restoreDefaultRoute`), so that a router that stops, or
 * fails to start, undoes only what it made.
 */
import { execFileSync } from 'node:child_process';
import { formatIpv4Address } from '../core/addresses.ts';
import type { InterfaceConfig } from './config.ts';
import { TunDevice } from './tun/tun-device.ts';

export class NetnsSetupError extends Error {
  readonly code = 'EVROUTERSETUP';
  constructor(readonly interfaceName: string, readonly netns: string, detail: string) {
    super(`interface ${interfaceName} (netns ${netns}): ${detail}`);
    this.name = 'NetnsSetupError';
  }
}

/** A TUN in its namespace, with the default route it took over. */
export interface NamespaceTun {
  readonly tun: TunDevice;
  /**
   * Puts back the default route this setup displaced, if the namespace's default route is still
   * ours (a router started later may have taken it in turn). Call before closing the TUN, so the
   * namespace is never without one. Never throws.
   */
  restoreDefaultRoute(): void;
}

function ip(args: string[]): string {
  return execFileSync('ip', args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
}

function temporaryName(index: number): string {
  return `vr${process.pid}t${index}`.slice(0, 15);
}

/** Words ip prints about a route's state that it does not take back as input. */
const STATE_WORDS = new Set(['linkdown', 'dead']);

/**
 * The main table's default route of metric 0, the one `route replace default` replaces, as the
 * words that add it again; null when there is none.
 */
function defaultRoute(netns: string): string[] | null {
  // A multipath route continues on lines that start with blanks.
  const routes = ip(['-n', netns, 'route', 'show', 'default']).replace(/\n\s+/g, ' ').split('\n');
  for (const route of routes) {
    const words = route.split(/\s+/).filter((word) => word !== '' && !STATE_WORDS.has(word));
    const metric = words.indexOf('metric');
    if (words[0] === 'default' && (metric < 0 || words[metric + 1] === '0')) return words;
  }
  return null;
}

/**
 * Opens and configures the TUN for `link`; on any failure the device is closed (so removed). The
 * TUN takes checksum and segmentation offload (a virtio-net header on every packet): the
 * namespace's stack hands over 64 KiB TCP super-packets with their checksums left to us.
 */
export function setUpInterface(link: InterfaceConfig, index: number): NamespaceTun {
  const device = TunDevice.open(temporaryName(index), { vnetHeader: true });
  const step = <T>(what: string, run: () => T): T => {
    try {
      return run();
    } catch (error) {
      device.close();
      const stderr = String((error as { stderr?: Buffer | string }).stderr ?? '').trim();
      throw new NetnsSetupError(link.name, link.netns, `${what} failed: ${stderr || (error as Error).message}`);
    }
  };
  const ns = link.netns;
  step('moving the TUN into the namespace', () => ip(['link', 'set', device.name, 'netns', ns]));
  step(`renaming the TUN to ${link.name}`, () => ip(['-n', ns, 'link', 'set', device.name, 'name', link.name]));
  // No IPv6 link-local address: the router is IPv4-only, and router solicitations would be noise.
  step('disabling IPv6 address generation', () => ip(['-n', ns, 'link', 'set', link.name, 'addrgenmode', 'none']));
  step('setting the MTU', () => ip(['-n', ns, 'link', 'set', link.name, 'mtu', String(link.mtu)]));
  step('adding the peer address', () => ip(['-n', ns, 'addr', 'add', `${formatIpv4Address(link.peer.address)}/${link.peer.prefixLength}`, 'dev', link.name]));
  step('bringing the link up', () => ip(['-n', ns, 'link', 'set', link.name, 'up']));
  const displaced = step('reading the default route', () => defaultRoute(ns));
  const ours = ['default', 'via', formatIpv4Address(link.address.address), 'dev', link.name];
  step('adding the default route', () => ip(['-n', ns, 'route', 'replace', ...ours]));
  return {
    tun: device,
    restoreDefaultRoute() {
      if (displaced === null) return;
      try {
        if (defaultRoute(ns)?.join(' ') === ours.join(' ')) ip(['-n', ns, 'route', 'replace', ...displaced]);
      } catch {
        // The displaced route's device is gone too (its router stopped), or the namespace is.
      }
    },
  };
}
