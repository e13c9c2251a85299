/**
 * Puts netfilter on a router: defrag (-400), raw (-300), conntrack in (-200), mangle (-150), NAT
 * with the nat table (-100 / 100), filter (0), helpers (300), sequence adjustment (301) and
 * confirm (INT_MAX), each registered as plain hook ops, so any other module can register its own
 * anywhere in between. The helpers offered here are attached to connections only by rule.
 *
 * Everything a router's netfilter keeps is its own, as a network namespace's is in the kernel:
 * connection and expectation ids, tables, counters. Time and randomness come in from outside
 * (`now`, `random`), so a test builds the same stack as production on a clock it moves itself.
 */
import type { Router } from '../path/router.ts';
import { RateLimitedLog } from '../core/rate-limited-log.ts';
import type { HookOps } from '../core/hooks.ts';
import { ConntrackCore, type ConntrackOptions } from '../../netfilter/conntrack/conntrack-core.ts';
import { createGenericTracker, createTrackers, type TrackerOptions } from '../../netfilter/conntrack/trackers/index.ts';
import { seqAdjustHookOps, seqOffset } from '../../netfilter/conntrack/seqadj.ts';
import { Defrag } from '../../netfilter/defrag.ts';
import { HelperRegistry } from '../../netfilter/helpers/helper-registry.ts';
import { createFtpHelpers } from '../../netfilter/helpers/ftp.ts';
import { createPptpHelper, type PptpCounters, type PptpHelper } from '../../netfilter/helpers/pptp.ts';
import { GreKeymap } from '../../netfilter/conntrack/gre-keymap.ts';
import { RuleTables, type ParsedRuleset, type RestoreOptions } from '../../netfilter/tables/index.ts';
import { createPptpNat, type PptpNat, type PptpNatCounters } from '../../nat/helpers/nat-pptp.ts';
import { NatCore } from '../../nat/nat-core.ts';
import { NatHooks } from '../../nat/nat-hooks.ts';
import { natTargetTypes } from '../../nat/nat-targets.ts';
import { createFtpNat } from '../../nat/helpers/nat-ftp.ts';

export interface FtpOptions {
  ports?: number[];
  loose?: boolean;
}

/** The helpers a router can offer to `CT --helper NAME` rules. */
export const HELPER_NAMES = ['ftp', 'pptp'] as const;
export type HelperName = (typeof HELPER_NAMES)[number];

export interface NetfilterOptions {
  conntrack?: Pick<ConntrackOptions, 'max' | 'buckets' | 'autoHelpers' | 'checksum'>;
  /** Track connections even when no rule needs it (to watch `vrouter conntrack -E`). */
  alwaysTrack?: boolean;
  trackers?: TrackerOptions;
  ftp?: FtpOptions;
  /** Which helpers to offer (default: all of HELPER_NAMES). */
  helpers?: readonly HelperName[];
  /** The conntrack clock in ms (default: a HZ=250 jiffy clock on performance.now()). */
  now?: () => number;
  /** [0, 1), for NAT's port choices and the FTP NAT's port search (default Math.random). */
  random?: () => number;
  log?: RateLimitedLog;
  /** Where LOG target lines go (default: stdout, like a kernel log reader would show them). */
  logSink?: (line: string) => void;
}

export class NetfilterStack {
  readonly defrag: Defrag;
  readonly helpers = new HelperRegistry();
  readonly conntrack: ConntrackCore;
  readonly rules: RuleTables;
  readonly nat: NatCore;
  readonly natHooks: NatHooks;
  /** The PPTP helper's two halves, when pptp is offered (their counters). */
  readonly pptp: PptpHelper | null = null;
  readonly pptpNat: PptpNat | null = null;

  constructor(
    readonly router: Router,
    options: NetfilterOptions = {},
  ) {
    const log = options.log ?? new RateLimitedLog();
    const random = options.random ?? Math.random;
    this.alwaysTrack = options.alwaysTrack ?? false;
    this.defrag = new Defrag(options.now);
    const trackerOptions = options.trackers ?? {};
    // One keymap, shared by the GRE tracker (reads it) and the PPTP helper (fills it).
    const keymap = trackerOptions.greKeymap ?? new GreKeymap();
    const trackers = createTrackers({ ...trackerOptions, greKeymap: keymap, tcp: { ...trackerOptions.tcp, seqOffset } });
    this.conntrack = new ConntrackCore({ ...options.conntrack, trackers, generic: createGenericTracker(trackerOptions), helpers: this.helpers, log, ...(options.now ? { now: options.now } : {}) });
    this.nat = new NatCore(this.conntrack, random);
    const logSink = options.logSink ?? ((line: string) => process.stdout.write(`${line}\n`));
    this.rules = new RuleTables({
      reject: router,
      log: logSink,
      // The kernel logs TRACE lines; a running `vrouter trace` also shows them with the packet's steps.
      trace: (packet, line) => {
        logSink(line);
        router.traceLine(packet, line);
      },
      knownHelper: (name, protocol) => this.helpers.get(name)?.protocol === protocol,
      extraTargets: natTargetTypes(this.nat),
      interfaces: router.interfaces,
      ...(options.now ? { now: options.now } : {}),
    });
    // The nat table is walked from the NAT hooks, for a connection's first packet only.
    this.natHooks = new NatHooks(this.nat, this.rules);
    const expectations = this.conntrack.expectations;
    const offered = options.helpers ?? HELPER_NAMES;
    if (offered.includes('ftp')) {
      const ftpNat = createFtpNat({ expectations, nat: this.natHooks, log, random });
      for (const helper of createFtpHelpers({ ...options.ftp, expectations, nat: ftpNat, log })) this.helpers.register(helper);
    }
    if (offered.includes('pptp')) {
      const table = this.conntrack.table;
      this.pptp = createPptpHelper({
        expectations,
        keymap,
        destroyConnection: (entry) => this.conntrack.destroy(entry),
        findGre: (t) => table.find(t.src, t.dst, t.protocol, t.srcPort, t.dstPort)?.entry ?? null,
        nat: (this.pptpNat = createPptpNat({ nat: this.nat, log })),
        log,
      });
      this.helpers.register(this.pptp);
    }
  }

  /** What the helpers counted, by helper half (`vrouter stats`); only the helpers offered. */
  helperCounters(): { pptp?: PptpCounters; 'pptp-nat'?: PptpNatCounters } {
    return { ...(this.pptp ? { pptp: this.pptp.counters } : {}), ...(this.pptpNat ? { 'pptp-nat': this.pptpNat.counters } : {}) };
  }

  private trackingStarted = false;
  private attached = false;
  private readonly registeredTableOps = new Set<HookOps>();
  private readonly alwaysTrack: boolean;

  /**
   * Registers the rule tables' ops, and connection tracking (defrag, conntrack, helpers, seqadj,
   * NAT) if the rules need it. Like the kernel, which registers conntrack in a namespace only
   * once a rule uses it, a router with no such rule forwards without tracking anything.
   */
  attach(): void {
    this.attached = true;
    this.registerTableOps();
    if (this.alwaysTrack || this.rules.needsConntrack()) this.startTracking();
  }

  /**
   * Replaces the rules atomically (iptables-restore; `options`: -c, --noflush), hooking in new tables
   * and tracking if needed.
   */
  loadRules(text: string, origin: string, firstLine: number, options: RestoreOptions = {}): void {
    this.applyRules(this.rules.parse(text, origin, firstLine, options));
  }

  /** Installs tables already parsed (iptables-restore --noflush, the iptables command), as loadRules does. */
  applyRules(ruleset: ParsedRuleset): void {
    this.rules.apply(ruleset);
    if (!this.attached) return;
    this.registerTableOps();
    if (this.rules.needsConntrack()) this.startTracking();
  }

  private registerTableOps(): void {
    for (const ops of this.rules.loadedHookOps()) {
      if (this.registeredTableOps.has(ops)) continue;
      this.registeredTableOps.add(ops);
      this.router.register(ops);
    }
  }

  get tracking(): boolean {
    return this.trackingStarted;
  }

  private startTracking(): void {
    if (this.trackingStarted) return;
    this.trackingStarted = true;
    const seqadj = seqAdjustHookOps(() => this.conntrack.counters.dropped++);
    for (const ops of [...this.defrag.hookOps(), ...this.conntrack.hookOps(), ...seqadj, ...this.natHooks.hookOps()]) this.router.register(ops);
    this.router.onDrop = (packet) => this.conntrack.packetDropped(packet);
    this.router.attachConntrack = (made, about) => this.conntrack.attach(made, about);
    this.conntrack.start();
  }

  close(): void {
    this.conntrack.stop();
    this.defrag.close();
  }
}
