/**
 * ICMP error rate limiting as the kernel does it (net/ipv4/icmp.c, sysctls at their defaults):
 * - only types in icmp_ratemask (0x1818: destination unreachable, source quench, time exceeded,
 *   parameter problem) are limited, and "fragmentation needed" never is, so PMTU discovery works;
 * - a global token bucket: icmp_msgs_per_sec 1000, icmp_msgs_burst 50;
 * - a per-destination bucket (xrlim_allow): one message per icmp_ratelimit (1000 ms), with up to
 *   6 saved up (XRLIM_BURST_FACTOR); a new peer starts with a full bucket.
 */
import { IcmpType, IcmpUnreachableCode } from '../wire/icmp.ts';

const RATE_MASK = 0x1818;
const GLOBAL_PER_SECOND = 1000;
const GLOBAL_BURST = 50;
const PEER_INTERVAL_MS = 1000;
const PEER_BURST_FACTOR = 6;
/** Forget idle peers so the map cannot grow without bound (the kernel's inet_peer GC does the same). */
const PEER_IDLE_MS = 120_000;
const PEER_SWEEP_EVERY = 4096;

interface PeerBucket {
  tokens: number;
  last: number;
}

export class IcmpRateLimiter {
  private globalTokens = GLOBAL_BURST;
  private globalLast: number;
  private readonly peers = new Map<number, PeerBucket>();
  private checks = 0;

  constructor(private readonly now: () => number = () => performance.now()) {
    this.globalLast = now();
  }

  /** Whether an ICMP message of this type/code to `destination` may be sent now. */
  allow(type: number, code: number, destination: number): boolean {
    if (type > 31 || ((RATE_MASK >>> type) & 1) === 0) return true;
    if (type === IcmpType.DEST_UNREACHABLE && code === IcmpUnreachableCode.FRAGMENTATION_NEEDED) return true;
    const now = this.now();
    if (!this.allowGlobal(now)) return false;
    return this.allowPeer(destination, now);
  }

  private allowGlobal(now: number): boolean {
    const refill = ((now - this.globalLast) * GLOBAL_PER_SECOND) / 1000;
    this.globalTokens = Math.min(GLOBAL_BURST, this.globalTokens + refill);
    this.globalLast = now;
    if (this.globalTokens < 1) return false;
    this.globalTokens -= 1;
    return true;
  }

  private allowPeer(destination: number, now: number): boolean {
    if (++this.checks % PEER_SWEEP_EVERY === 0) this.sweep(now);
    let bucket = this.peers.get(destination);
    if (!bucket) {
      bucket = { tokens: 0, last: now - PEER_BURST_FACTOR * PEER_INTERVAL_MS };
      this.peers.set(destination, bucket);
    }
    const tokens = Math.min(bucket.tokens + (now - bucket.last), PEER_BURST_FACTOR * PEER_INTERVAL_MS);
    bucket.last = now;
    if (tokens >= PEER_INTERVAL_MS) {
      bucket.tokens = tokens - PEER_INTERVAL_MS;
      return true;
    }
    bucket.tokens = tokens;
    return false;
  }

  private sweep(now: number): void {
    for (const [peer, bucket] of this.peers) if (now - bucket.last > PEER_IDLE_MS) this.peers.delete(peer);
  }
}
