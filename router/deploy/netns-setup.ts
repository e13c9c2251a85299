/**
 * Puts each interface's TUN into its namespace: created here under a temporary unique name (two
 * routers may start at once, and "lan0" may exist here), moved with `ip link set DEV netns NS`,
 * renamed there, addressed, brought up and given a default route through the router. The fd the
 * router holds keeps working after the move; closing it deletes the device wherever it is.
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

function ip(args: string[]): void {
  execFileSync('ip', args, { stdio: ['ignore', 'ignore', 'pipe'] });
}

function temporaryName(index: number): string {
  return `vr${process.pid}t${index}`.slice(0, 15);
}

/** Opens and configures the TUN for `link`; on any failure the device is closed (so removed). */
export function setUpInterface(link: InterfaceConfig, index: number): TunDevice {
  const device = TunDevice.open(temporaryName(index));
  const step = (what: string, args: string[]): void => {
    try {
      ip(args);
    } catch (error) {
      device.close();
      const stderr = String((error as { stderr?: Buffer }).stderr ?? '').trim();
      throw new NetnsSetupError(link.name, link.netns, `${what} failed: ${stderr || (error as Error).message}`);
    }
  };
  const ns = link.netns;
  step('moving the TUN into the namespace', ['link', 'set', device.name, 'netns', ns]);
  step(`renaming the TUN to ${link.name}`, ['-n', ns, 'link', 'set', device.name, 'name', link.name]);
  // No IPv6 link-local address: the router is IPv4-only, and router solicitations would be noise.
  step('disabling IPv6 address generation', ['-n', ns, 'link', 'set', link.name, 'addrgenmode', 'none']);
  step('setting the MTU', ['-n', ns, 'link', 'set', link.name, 'mtu', String(link.mtu)]);
  step('adding the peer address', ['-n', ns, 'addr', 'add', `${formatIpv4Address(link.peer.address)}/${link.peer.prefixLength}`, 'dev', link.name]);
  step('bringing the link up', ['-n', ns, 'link', 'set', link.name, 'up']);
  step('adding the default route', ['-n', ns, 'route', 'replace', 'default', 'via', formatIpv4Address(link.address.address), 'dev', link.name]);
  return device;
}
