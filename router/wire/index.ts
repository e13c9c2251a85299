/** The packet layer: zero-copy accessors over packet bytes, one module per protocol. */
export * from './bytes.ts';
export * from './checksum.ts';
export * from './ipv4.ts';
export * from './icmp.ts';
export * from './tcp.ts';
export * from './udp.ts';
export * from './gre.ts';
export * from './virtio-net.ts';
export * from './gso.ts';
