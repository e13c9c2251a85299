import { createRequire } from 'node:module';

export interface TunOptions {
  /** Prefix every packet with a 12-byte virtio-net header (IFF_VNET_HDR), ready for offloads. */
  vnetHeader?: boolean;
  /** Most packets delivered per handler call. Default 64. */
  batchSize?: number;
  /** Bytes per slab slot, header included. Default 65536. */
  slotSize?: number;
}

/**
 * Called once per drained batch. packets are in slab at [i*slotSize + headerLength, +lengths[i]);
 * count < 0 is -errno of a failed read (polling has stopped). The slab is reused by the next
 * batch: copy a packet you keep.
 */
export type TunBatchHandler = (slab: Buffer, lengths: Int32Array, count: number) => void;

type Handle = object;

interface NativeTun {
  open(name: string, vnetHeader: boolean): { handle: Handle; name: string; headerLength: number };
  start(
    handle: Handle,
    slab: Buffer,
    slotSize: number,
    lengths: Int32Array,
    batchSize: number,
    onReadable: (count: number) => void,
  ): void;
  write(handle: Handle, packet: Uint8Array, offset: number, length: number): number;
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

function intOption(value: number | undefined, fallback: number, what: string, min: number): number {
  const v = value ?? fallback;
  if (!Number.isSafeInteger(v) || v < min) {
    throw Object.assign(new RangeError(`${what} must be an integer >= ${min}, got ${v}`), {
      code: 'ERR_OUT_OF_RANGE',
    });
  }
  return v;
}

export class TunDevice {
  readonly name: string;
  readonly slotSize: number;
  readonly headerLength: number;
  readonly batchSize: number;
  readonly #native: NativeTun;
  readonly #handle: Handle;
  #started = false;
  #closed = false;

  private constructor(
    nat: NativeTun,
    opened: { handle: Handle; name: string; headerLength: number },
    slotSize: number,
    batchSize: number,
  ) {
    this.#native = nat;
    this.#handle = opened.handle;
    this.name = opened.name;
    this.headerLength = opened.headerLength;
    this.slotSize = slotSize;
    this.batchSize = batchSize;
  }

  /** Creates the TUN device (non-persistent: it disappears on close). Throws Error with `code`. */
  static open(name: string, options: TunOptions = {}): TunDevice {
    const vnet = options.vnetHeader ?? false;
    const batchSize = intOption(options.batchSize, 64, 'batchSize', 1);
    const slotSize = intOption(options.slotSize, 65536, 'slotSize', (vnet ? 12 : 0) + MIN_PACKET_ROOM);
    const nat = loadNative();
    return new TunDevice(nat, nat.open(name, vnet), slotSize, batchSize);
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

  /** Writes one IP packet. Returns bytes written or -errno (e.g. -EBADF once closed); never throws. */
  write(packet: Uint8Array, offset = 0, length = packet.byteLength - offset): number {
    return this.#native.write(this.#handle, packet, offset, length);
  }

  /** Stops polling and closes the fd, which deletes the device in whatever namespace it is. */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#native.close(this.#handle);
  }
}
