import { createRequire } from 'node:module';

/**
 * TUNSETOFFLOAD flags (include/uapi/linux/if_tun.h): what this side of the TUN can take from the
 * kernel. CSUM: packets whose transport checksum is only seeded (virtio NEEDS_CSUM). TSO4/TSO6:
 * TCP super-packets of up to 64 KiB (virtio GSO_TCPV4/TCPV6). TSO_ECN: such super-packets with
 * CWR set. UFO: accepted and ignored (Linux no longer makes UFO packets). USO4/USO6: UDP
 * super-packets (GSO_UDP_L4), Linux 6.2 on, and only both together. Every flag but CSUM needs
 * CSUM (drivers/net/tun.c set_offload refuses the rest with EINVAL).
 */
export const TunOffload = {
  CSUM: 0x01,
  TSO4: 0x02,
  TSO6: 0x04,
  TSO_ECN: 0x08,
  UFO: 0x10,
  USO4: 0x20,
  USO6: 0x40,
} as const;

/** What `vnetHeader: true` asks for. USO4|USO6 are dropped where the kernel lacks them. */
export const DEFAULT_OFFLOADS = TunOffload.CSUM | TunOffload.TSO4 | TunOffload.TSO6 | TunOffload.USO4 | TunOffload.USO6;

const ALL_OFFLOADS = Object.values(TunOffload).reduce((all, flag) => all | flag, 0);

/** `csum tso4 tso6`: the names of the flags set in `offloads`, for logs and reports. */
export function offloadNames(offloads: number): string[] {
  return Object.entries(TunOffload)
    .filter(([, flag]) => (offloads & flag) !== 0)
    .map(([name]) => name.toLowerCase());
}

export interface TunOptions {
  /**
   * Prefix every packet read and written with a 12-byte virtio-net header (IFF_VNET_HDR, layout
   * in router/wire/virtio-net.ts) and ask for `offloads`.
   */
  vnetHeader?: boolean;
  /** TunOffload flags to ask for with vnetHeader. Default DEFAULT_OFFLOADS; 0 for none. */
  offloads?: number;
  /** Most packets delivered per handler call. Default 64. */
  batchSize?: number;
  /**
   * Bytes per slab slot, header included. Default: the header plus 65535 (the largest IPv4
   * packet, which a super-packet can be), rounded up to 8 so every slot's packet starts aligned.
   */
  slotSize?: number;
}

/**
 * Called once per drained batch. packets are in slab at [i*slotSize + headerLength, +lengths[i]),
 * their virtio-net header (with vnetHeader) at i*slotSize;
 * count < 0 is -errno of a failed read (polling has stopped). The slab is reused by the next
 * batch: copy a packet you keep.
 */
export type TunBatchHandler = (slab: Buffer, lengths: Int32Array, count: number) => void;

type Handle = object;

interface Opened {
  handle: Handle;
  name: string;
  headerLength: number;
  offloads: number;
}

interface NativeTun {
  open(name: string, vnetHeader: boolean, offloads: number): Opened;
  start(
    handle: Handle,
    slab: Buffer,
    slotSize: number,
    lengths: Int32Array,
    batchSize: number,
    onReadable: (count: number) => void,
  ): void;
  write(handle: Handle, packet: Uint8Array, offset: number, length: number): number;
  writeWithHeader(
    handle: Handle,
    header: Uint8Array,
    headerOffset: number,
    packet: Uint8Array,
    offset: number,
    length: number,
  ): number;
  close(handle: Handle): void;
}

// Loaded on first open, so modules that merely import this one work without the build.
let native: NativeTun | undefined;
function loadNative(): NativeTun {
  native ??= createRequire(import.meta.url)('../../../build/Release/vrouter_tun.node') as NativeTun;
  return native;
}

// Smallest IPv4 MTU: a smaller slot could not hold every legal packet.
const MIN_PACKET_ROOM = 68;
const VNET_HEADER_LENGTH = 12;
const MAX_IPV4_PACKET = 65535;

function intOption(value: number | undefined, fallback: number, what: string, min: number): number {
  const v = value ?? fallback;
  if (!Number.isSafeInteger(v) || v < min) {
    throw Object.assign(new RangeError(`${what} must be an integer >= ${min}, got ${v}`), {
      code: 'ERR_OUT_OF_RANGE',
    });
  }
  return v;
}

function offloadOption(value: number | undefined, vnet: boolean): number {
  if (value === undefined) return vnet ? DEFAULT_OFFLOADS : 0;
  if (!Number.isInteger(value) || value < 0 || (value & ~ALL_OFFLOADS) !== 0) {
    throw Object.assign(new RangeError(`offloads must be a set of TunOffload flags, got ${value}`), {
      code: 'ERR_OUT_OF_RANGE',
    });
  }
  if (value !== 0 && !vnet) {
    throw Object.assign(new TypeError(`offloads ${offloadNames(value).join('|')} need vnetHeader: true`), {
      code: 'ERR_INVALID_ARG_VALUE',
    });
  }
  return value;
}

export class TunDevice {
  readonly name: string;
  readonly slotSize: number;
  readonly headerLength: number;
  /** TunOffload flags the kernel granted (0 without vnetHeader). */
  readonly offloads: number;
  readonly batchSize: number;
  readonly #native: NativeTun;
  readonly #handle: Handle;
  #started = false;
  #closed = false;

  private constructor(
    nat: NativeTun,
    opened: Opened,
    slotSize: number,
    batchSize: number,
  ) {
    this.#native = nat;
    this.#handle = opened.handle;
    this.name = opened.name;
    this.headerLength = opened.headerLength;
    this.offloads = opened.offloads;
    this.slotSize = slotSize;
    this.batchSize = batchSize;
  }

  /** Creates the TUN device (non-persistent: it disappears on close). Throws Error with `code`. */
  static open(name: string, options: TunOptions = {}): TunDevice {
    const vnet = options.vnetHeader ?? false;
    const headerLength = vnet ? VNET_HEADER_LENGTH : 0;
    const batchSize = intOption(options.batchSize, 64, 'batchSize', 1);
    const slotSize = intOption(options.slotSize, (headerLength + MAX_IPV4_PACKET + 7) & ~7, 'slotSize', headerLength + MIN_PACKET_ROOM);
    const offloads = offloadOption(options.offloads, vnet);
    const nat = loadNative();
    return new TunDevice(nat, nat.open(name, vnet, offloads), slotSize, batchSize);
  }

  get closed(): boolean {
    return this.#closed;
  }

  /** Begins polling; onBatch runs on the event loop once per drained batch. Call once. */
  start(onBatch: TunBatchHandler): void {
    if (this.#started) {
      throw Object.assign(new Error(`TUN ${this.name} was already started`), { code: 'ERR_INVALID_STATE' });
    }
    const slab = Buffer.alloc(this.batchSize * this.slotSize);
    const lengths = new Int32Array(this.batchSize);
    this.#native.start(this.#handle, slab, this.slotSize, lengths, this.batchSize, (count) =>
      onBatch(slab, lengths, count),
    );
    this.#started = true;
  }

  /**
   * Writes one IP packet (with vnetHeader, behind an all-zero header: no GSO, checksums complete).
   * Returns bytes written or -errno (e.g. -EBADF once closed); never throws.
   */
  write(packet: Uint8Array, offset = 0, length = packet.byteLength - offset): number {
    return this.#native.write(this.#handle, packet, offset, length);
  }

  /**
   * Writes the 12-byte virtio-net header at `headerOffset` of `header`, then the packet, in one
   * writev (no copy): a super-packet, or a packet whose checksum is only seeded (NEEDS_CSUM).
   * Returns the packet bytes written or -errno: -EINVAL without vnetHeader or for a header the
   * kernel refuses. Never throws.
   */
  writeWithHeader(
    header: Uint8Array,
    headerOffset: number,
    packet: Uint8Array,
    offset = 0,
    length = packet.byteLength - offset,
  ): number {
    return this.#native.writeWithHeader(this.#handle, header, headerOffset, packet, offset, length);
  }

  /** Stops polling and closes the fd, which deletes the device in whatever namespace it is. */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#native.close(this.#handle);
  }
}
