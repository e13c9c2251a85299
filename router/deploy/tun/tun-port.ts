/**
 * A TUN device as a Device: transmit writes one datagram to the fd; once a receiver is set, every
 * datagram the kernel side sends is read in batches and handed to it, as a view into the read
 * slab (valid until the receiver returns).
 *
 * A receiver that throws is a bug on the packet path: it costs that one packet, is reported
 * through `onFault`, and reading goes on.
 */
import { PacketFlag, type Device, type Receiver } from '../../core/device.ts';
import type { TunDevice } from './tun-device.ts';

export interface TunPortEvents {
  /** A read failed (polling has stopped); `errno` is positive. */
  onReadError(errno: number): void;
  /** The receiver threw for one packet. */
  onFault(error: unknown): void;
}

export class TunPort implements Device {
  private receiver: Receiver | null = null;
  private started = false;

  constructor(
    readonly tun: TunDevice,
    private readonly events: TunPortEvents,
  ) {}

  get name(): string {
    return this.tun.name;
  }

  transmit(buf: Uint8Array, offset: number, length: number): number {
    return this.tun.write(buf, offset, length);
  }

  setReceiver(receiver: Receiver | null): void {
    this.receiver = receiver;
    if (receiver && !this.started) this.start();
  }

  close(): void {
    this.receiver = null;
    this.tun.close();
  }

  private start(): void {
    this.started = true;
    const slotSize = this.tun.slotSize;
    const headerLength = this.tun.headerLength;
    this.tun.start((slab, lengths, count) => {
      if (count < 0) return this.events.onReadError(-count);
      for (let i = 0; i < count; i++) {
        const receiver = this.receiver;
        if (!receiver) return;
        const start = i * slotSize + headerLength;
        try {
          receiver(slab.subarray(start, start + lengths[i]!), PacketFlag.NONE);
        } catch (error) {
          this.events.onFault(error);
        }
      }
    });
  }
}
