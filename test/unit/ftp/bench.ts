/**
 * A router's netfilter path for FTP tests, built from the real pieces: ConntrackCore with the real
 * trackers (TCP told about sequence adjustment, as netfilter-stack.ts does), NatCore / NatHooks,
 * the FTP helpers with their NAT half, and sequence adjustment. The nat table is configuration:
 * an optional SNAT of an inside prefix on POSTROUTING (MASQUERADE-like) and an optional DNAT of
 * the control port on PREROUTING. The raw table attaches the helper (`CT --helper ftp`) to
 * connections to a control port, as `iptables -t raw ... -j CT --helper ftp` does.
 */
import { ConntrackCore } from '../../../netfilter/conntrack/conntrack-core.ts';
import { seqAdjustHookOps, seqOffset } from '../../../netfilter/conntrack/seqadj.ts';
import { createTrackers, genericTracker } from '../../../netfilter/conntrack/trackers/index.ts';
import { createFtpHelpers, type FtpNatHook } from '../../../netfilter/helpers/ftp.ts';
import { HelperRegistry } from '../../../netfilter/helpers/helper-registry.ts';
import { Hook, Verdict } from '../../../router/core/hooks.ts';
import { createFtpNat } from '../../../nat/helpers/nat-ftp.ts';
import { ManipType, NatCore } from '../../../nat/nat-core.ts';
import { NatHooks } from '../../../nat/nat-hooks.ts';
import { parseNatRange } from '../../../nat/nat-range.ts';
import { networkOf, parseIpv4Prefix } from '../../../router/core/addresses.ts';
import { Packet } from '../../../router/core/packet.ts';
import { RateLimitedLog } from '../../../router/core/rate-limited-log.ts';
import { IpProtocol, ipv4HeaderLength, ipv4Protocol } from '../../../router/wire/ipv4.ts';
import { tcpDstPort } from '../../../router/wire/tcp.ts';

export interface FtpBenchOptions {
  /** `-t nat -A POSTROUTING -s INSIDE -j SNAT --to-source TO` */
  snat?: { inside: string; to: string };
  /** `-t nat -A PREROUTING -p tcp --dport PORT -j DNAT --to-destination TO` (PORT: the first control port) */
  dnat?: { to: string };
  ports?: number[];
  loose?: boolean;
  /** Leave the NAT half out (a router without nf_nat_ftp). */
  withoutNatHelper?: boolean;
  random?: () => number;
}

export interface Forwarded {
  verdict: Verdict;
  packet: Packet;
}

export function ftpBench(options: FtpBenchOptions = {}) {
  const clock = { ms: 1_000_000 };
  const logLines: string[] = [];
  const log = new RateLimitedLog((line) => logLines.push(line), 5000, 1000, () => clock.ms);
  const helpers = new HelperRegistry();
  const core = new ConntrackCore({ trackers: createTrackers({ tcp: { seqOffset } }), generic: genericTracker, helpers, now: () => clock.ms, buckets: 64, log });
  const natCore = new NatCore(core);
  const ports = options.ports ?? [21];
  const snat = options.snat && { inside: parseIpv4Prefix(options.snat.inside), range: parseNatRange(options.snat.to) };
  const dnat = options.dnat && parseNatRange(options.dnat.to);
  const nat = new NatHooks(natCore, {
    hasNatTable: () => true,
    runNatChain: (hook, packet) => {
      const entry = packet.conntrack;
      if (!entry) return Verdict.ACCEPT;
      const original = entry.tuples[0];
      if (hook === Hook.POST_ROUTING && snat && networkOf(original.src, snat.inside.prefixLength) === networkOf(snat.inside.address, snat.inside.prefixLength)) {
        natCore.setup(entry, snat.range, ManipType.SRC);
      }
      if (hook === Hook.PRE_ROUTING && dnat && original.protocol === IpProtocol.TCP && original.dstPort === ports[0]) {
        natCore.setup(entry, dnat, ManipType.DST);
      }
      return Verdict.ACCEPT;
    },
  });
  const ftpNat: FtpNatHook = createFtpNat({ expectations: core.expectations, nat, log, ...(options.random ? { random: options.random } : {}) });
  const ftpHelpers = createFtpHelpers({ ports, loose: options.loose ?? false, expectations: core.expectations, nat: options.withoutNatHelper ? null : ftpNat, log });
  for (const helper of ftpHelpers) helpers.register(helper);
  const seqadj = seqAdjustHookOps(() => undefined).find((ops) => ops.hook === Hook.POST_ROUTING)!;

  /** A forwarded packet, hook by hook in priority order; a packet that is not accepted stops there. */
  const forward = (buf: Buffer): Forwarded => {
    const packet = new Packet(buf, null);
    if (ipv4Protocol(buf, 0) === IpProtocol.TCP) {
      const at = ports.indexOf(tcpDstPort(buf, ipv4HeaderLength(buf, 0)));
      if (at >= 0) packet.ctTemplate = { helper: ftpHelpers[at]!.name, notrack: false };
    }
    const steps = [
      () => core.track(packet, Hook.PRE_ROUTING),
      () => nat.nat(packet, Hook.PRE_ROUTING),
      () => nat.nat(packet, Hook.POST_ROUTING),
      () => core.help(packet),
      () => seqadj.fn(packet, Hook.POST_ROUTING),
      () => core.confirm(packet),
    ];
    for (const step of steps) {
      const verdict = step();
      if (verdict !== Verdict.ACCEPT) {
        core.packetDropped(packet);
        return { verdict, packet };
      }
    }
    return { verdict: Verdict.ACCEPT, packet };
  };

  return { clock, core, natCore, nat, ftpNat, helpers: ftpHelpers, forward, logLines };
}

export type FtpBench = ReturnType<typeof ftpBench>;
