/**
 * Puts netfilter on a router: defrag (-400), raw (-300), conntrack in (-200), mangle (-150), NAT
 * with the nat table (-100 / 100), filter (0), helpers (300), sequence adjustment (301) and
 * confirm (INT_MAX), each registered as plain hook ops, so any other module can register its own
 * anywhere in between. The helpers known here are attached to connections only by rule.
 */
import type { Router } from '../router/router.ts';
import type { ControlServer } from '../router/control-server.ts';
import { RateLimitedLog } from '../router/rate-limited-log.ts';
import { buildTcpReset } from '../router/tcp-reset.ts';
import { ConntrackCore, type ConntrackOptions } from './conntrack/conntrack-core.ts';
import { registerConntrackCommands } from './conntrack/conntrack-commands.ts';
import { createTrackers, genericTracker, type TrackerOptions } from './conntrack/trackers/index.ts';
import { seqAdjustHookOps, seqOffset } from './conntrack/seqadj.ts';
import { Defrag } from './defrag.ts';
import { HelperRegistry } from './helpers/helper-registry.ts';
import { createFtpHelpers } from './helpers/ftp.ts';
import { createPptpHelper } from './helpers/pptp.ts';
import { GreKeymap } from './conntrack/gre-keymap.ts';
import { createPptpNat } from '../nat/helpers/nat-pptp.ts';
import { NatCore } from '../nat/nat-core.ts';
import { NatHooks } from '../nat/nat-hooks.ts';
import { createFtpNat } from '../nat/helpers/nat-ftp.ts';
import { RuleTables } from './tables/index.ts';
import type { HookOps } from './hooks.ts';

export interface FtpOptions {
  ports?: number[];
  loose?: boolean;
}

export interface NetfilterOptions {
  conntrack?: Pick<ConntrackOptions, 'max' | 'buckets' | 'autoHelpers' | 'checksum'>;
  /** Track connections even when no rule needs it (to watch `vrouter conntrack -E`). */
  alwaysTrack?: boolean;
  trackers?: TrackerOptions;
  ftp?: FtpOptions;
  log?: RateLimitedLog;
  /** Where LOG target lines go (default: stdout, like a kernel log reader would show them). */
  logSink?: (line: string) => void;
}

export class NetfilterStack {
  readonly defrag = new Defrag();
  readonly helpers = new HelperRegistry();
  readonly conntrack: ConntrackCore;
  readonly rules: RuleTables;
  readonly nat: NatCore;
  readonly natHooks: NatHooks;

  constructor(
    readonly router: Router,
    options: NetfilterOptions = {},
  ) {
    const log = options.log ?? new RateLimitedLog();
    this.alwaysTrack = options.alwaysTrack ?? false;
    const trackerOptions = options.trackers ?? {};
    // One keymap, shared by the GRE tracker (reads it) and the PPTP helper (fills it).
    const keymap = trackerOptions.greKeymap ?? new GreKeymap();
    const trackers = createTrackers({ ...trackerOptions, greKeymap: keymap, tcp: { ...trackerOptions.tcp, seqOffset } });
    this.conntrack = new ConntrackCore({ ...options.conntrack, trackers, generic: genericTracker, helpers: this.helpers, log });
    this.nat = new NatCore(this.conntrack);
    this.rules = new RuleTables({
      nat: this.nat,
      reject: {
        sendIcmpError: (packet, type, code) => router.sendIcmpError(packet, type, code),
        sendTcpReset: (packet) => {
          const reset = buildTcpReset(packet.buf);
          if (reset) router.sendLocal(reset, packet);
        },
      },
      log: options.logSink ?? ((line) => process.stdout.write(`${line}\n`)),
      knownHelper: (name, protocol) => this.helpers.get(name)?.protocol === protocol,
    });
    // The nat table is walked from the NAT hooks, for a connection's first packet only.
    this.natHooks = new NatHooks(this.nat, this.rules);
    const expectations = this.conntrack.expectations;
    const ftpNat = createFtpNat({ expectations, nat: this.natHooks, log });
    for (const helper of createFtpHelpers({ ...options.ftp, expectations, nat: ftpNat, log })) this.helpers.register(helper);
    const table = this.conntrack.table;
    this.helpers.register(
      createPptpHelper({
        expectations,
        keymap,
        destroyConnection: (entry) => this.conntrack.destroy(entry),
        findGre: (t) => table.find(t.src, t.dst, t.protocol, t.srcPort, t.dstPort)?.entry ?? null,
        nat: createPptpNat({ nat: this.nat, log }),
        log,
      }),
    );
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

  /** Replaces the rules atomically (iptables-restore), hooking in new tables and tracking if needed. */
  loadRules(text: string, origin: string, firstLine: number): void {
    this.rules.load(text, origin, firstLine);
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

  registerCommands(control: ControlServer): void {
    registerConntrackCommands(control, this.conntrack);
    control.register('iptables-save', { handler: (args) => this.rules.save(args.counters === true) });
    control.register('iptables-restore', {
      handler: (args) => {
        this.loadRules(String(args.text ?? ''), String(args.origin ?? 'iptables-restore'), 0);
        return 'ok';
      },
    });
  }

  close(): void {
    this.conntrack.stop();
    this.defrag.close();
  }
}
