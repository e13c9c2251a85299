/**
 * A router for the FTP tests, built by the composition root as production builds it: two
 * interfaces, lan0 (the inside) and wan0 (the outside), the FTP helpers attached by rule and the
 * nat table as iptables-restore text:
 *
 *   *raw  -A PREROUTING -p tcp --dport PORT -j CT --helper ftp[-PORT]   (one per control port)
 *   *nat  -A POSTROUTING -s INSIDE -j SNAT --to-source TO               (options.snat)
 *         -A PREROUTING -p tcp --dport PORT -j DNAT --to-destination TO (options.dnat, first port)
 *
 * `forward(buf)` hands the datagram to the router on the interface its source lives behind and
 * returns what came out (or that a hook dropped it, and under which reason), with the router's own Packet for what
 * netfilter left on it. The router forwards for real: TTL goes down by one, routes decide the way out.
 */
import { createFtpHelpers } from '../../../netfilter/helpers/ftp.ts';
import type { ConntrackHelper } from '../../../netfilter/helpers/helper.ts';
import { Verdict } from '../../../router/core/hooks.ts';
import type { Packet } from '../../../router/core/packet.ts';
import { RateLimitedLog } from '../../../router/core/rate-limited-log.ts';
import { DropReason } from '../../../router/core/stats.ts';
import type { RouteSpec } from '../../../router/stack/build-router.ts';
import { ip } from '../../support/packets.ts';
import { RouterBench, interfaceSpec } from '../../support/router-bench.ts';

export interface FtpBenchOptions {
  /** lan0's address and prefix (default 10.0.1.1/24). */
  lan?: string;
  /** wan0's address and prefix (default 203.0.113.1/24). */
  wan?: string;
  /** A default route on wan0 through this gateway, for far ends outside wan0's subnet. */
  upstream?: string;
  /** `-t nat -A POSTROUTING -s INSIDE -j SNAT --to-source TO` */
  snat?: { inside: string; to: string };
  /** `-t nat -A PREROUTING -p tcp --dport PORT -j DNAT --to-destination TO` (PORT: the first control port) */
  dnat?: { to: string };
  ports?: number[];
  loose?: boolean;
  /**
   * A router with nf_conntrack_ftp but not nf_nat_ftp: it offers no built-in ftp helper, and the
   * test registers FTP helpers without a NAT half in its helper registry before the rules are loaded.
   */
  withoutNatHelper?: boolean;
  random?: () => number;
}

export interface Forwarded {
  /** DROP when a hook dropped the datagram; ACCEPT when it went on (forwarded, or answered by the router). */
  verdict: Verdict;
  /** The router's Packet for the datagram, as its walk through the hooks left it. */
  packet: Packet;
  /** What the router transmitted for it (a copy), and by which interface; null for a drop. */
  out: Buffer | null;
  via: string | null;
  /** Under which reason `vrouter stats` counts the drop; null when it went on. */
  dropReason: DropReason | null;
}

/** The reasons a hook op's DROP is counted under: the helper's, NAT's, seqadj's, or a rule's. */
const HOOK_OP_DROPS: readonly DropReason[] = [
  DropReason.HOOK_DROP,
  DropReason.HELPER_DROP,
  DropReason.NAT_NO_TUPLE,
  DropReason.NAT_TRUNCATED,
  DropReason.SEQADJ_MALFORMED,
];

/** nf_conntrack_ftp's names: `ftp` for port 21, `ftp-PORT` for any other. */
const helperName = (port: number): string => (port === 21 ? 'ftp' : `ftp-${port}`);

export function ftpRules(options: Pick<FtpBenchOptions, 'snat' | 'dnat'>, ports: number[]): string {
  const raw = ports.map((port) => `-A PREROUTING -p tcp --dport ${port} -j CT --helper ${helperName(port)}`);
  const nat = [
    ...(options.snat ? [`-A POSTROUTING -s ${options.snat.inside} -j SNAT --to-source ${options.snat.to}`] : []),
    ...(options.dnat ? [`-A PREROUTING -p tcp --dport ${ports[0]} -j DNAT --to-destination ${options.dnat.to}`] : []),
  ];
  return ['*raw', ...raw, 'COMMIT', ...(nat.length ? ['*nat', ...nat, 'COMMIT'] : []), ''].join('\n');
}

export function ftpBench(options: FtpBenchOptions = {}) {
  const clock = { ms: 1_000_000 };
  const logLines: string[] = [];
  const log = new RateLimitedLog((line) => logLines.push(line), 5000, 1000, () => clock.ms);
  const ports = options.ports ?? [21];
  const loose = options.loose ?? false;
  const routes: RouteSpec[] = options.upstream ? [{ to: 0, prefixLength: 0, dev: 'wan0', via: ip(options.upstream) }] : [];
  const rules = { text: ftpRules(options, ports), origin: 'ftp-bench.rules', firstLine: 0 };
  const withoutNatHelper = options.withoutNatHelper ?? false;
  const bench = new RouterBench(
    {
      interfaces: [interfaceSpec('lan0', options.lan ?? '10.0.1.1/24'), interfaceSpec('wan0', options.wan ?? '203.0.113.1/24')],
      routes,
      // Without the NAT half the rules name helpers registered only after the build (below).
      rules: withoutNatHelper ? null : rules,
      conntrack: { buckets: 64 },
      helpers: { ftp: { ports, loose } },
    },
    { now: () => clock.ms, log, ...(options.random ? { random: options.random } : {}), ...(withoutNatHelper ? { helpers: [] } : {}) },
  );
  const { netfilter } = bench;
  const core = netfilter.conntrack;
  if (withoutNatHelper) {
    for (const helper of createFtpHelpers({ ports, loose, expectations: core.expectations, nat: null, log })) netfilter.helpers.register(helper);
    netfilter.loadRules(rules.text, rules.origin, rules.firstLine);
  }
  const helpers: ConntrackHelper[] = ports.map((port) => netfilter.helpers.get(helperName(port))!);

  /**
   * The datagram through the router. Three outcomes are expected: a hook drops it, it is forwarded
   * out of one interface, or it is for the router itself, which serves nothing and answers (a TCP
   * reset). Anything else (no route, TTL...) is a mistake in the test's set-up, not a result.
   */
  const forward = (buf: Buffer): Forwarded => {
    const { packet, sent, drops, forwarded } = bench.receive(buf);
    if (packet && sent.length === 0 && drops.length === 1 && HOOK_OP_DROPS.includes(drops[0]!)) return { verdict: Verdict.DROP, packet, out: null, via: null, dropReason: drops[0]! };
    const answered = !forwarded && drops.length === 1 && drops[0] === DropReason.LOCAL_UNSERVED;
    if (packet && sent.length === 1 && (forwarded ? drops.length === 0 : answered)) return { verdict: Verdict.ACCEPT, packet, out: sent[0]!.buf, via: sent[0]!.via, dropReason: null };
    throw new Error(`expected a hook drop or one datagram out, got ${sent.length} out (${sent.map((s) => s.via).join(',')}), drops [${drops.join(',')}], forwarded ${forwarded}`);
  };

  return { clock, bench, router: bench.router, netfilter, core, helpers, forward, logLines };
}

export type FtpBench = ReturnType<typeof ftpBench>;
