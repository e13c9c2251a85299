// Baseline for the benchmark: the cheapest possible userspace forwarder between two TUN
// devices (no parsing), to compare the router against.
// Usage: c-forwarder [--offload] TUN_A TUN_B   (prints "ready" once both exist; stops on
// SIGINT/SIGTERM)
// --offload: IFF_VNET_HDR with a 12-byte virtio-net header and TUNSETOFFLOAD CSUM|TSO4|TSO6, so
// the kernel hands over TCP super-packets of up to 64 KiB with seeded checksums; they go to the
// other TUN header and all, untouched. The ceiling for a TUN router that keeps super-packets whole.
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <linux/if.h>
#include <linux/if_tun.h>
#include <poll.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>

// Packets moved per readable fd per wakeup, so one busy direction cannot starve the other.
#define BURST 64
// sizeof(struct virtio_net_hdr_v1), as the router's TUN addon uses.
#define VNET_HDR_LEN 12

static volatile sig_atomic_t stop;

static void on_signal(int sig) {
  (void)sig;
  stop = 1;
}

static int open_tun(const char *name, bool offload) {
  if (strlen(name) >= IFNAMSIZ) {
    fprintf(stderr, "c-forwarder: name too long: %s\n", name);
    return -1;
  }
  int fd = open("/dev/net/tun", O_RDWR | O_NONBLOCK | O_CLOEXEC);
  if (fd < 0) {
    perror("c-forwarder: open /dev/net/tun");
    return -1;
  }
  struct ifreq ifr;
  memset(&ifr, 0, sizeof ifr);
  ifr.ifr_flags = IFF_TUN | IFF_NO_PI | (offload ? IFF_VNET_HDR : 0);
  memcpy(ifr.ifr_name, name, strlen(name));
  if (ioctl(fd, TUNSETIFF, &ifr) < 0) {
    fprintf(stderr, "c-forwarder: TUNSETIFF %s: %s\n", name, strerror(errno));
    close(fd);
    return -1;
  }
  int header = VNET_HDR_LEN;
  if (offload && (ioctl(fd, TUNSETVNETHDRSZ, &header) < 0 ||
                  ioctl(fd, TUNSETOFFLOAD, (unsigned long)(TUN_F_CSUM | TUN_F_TSO4 | TUN_F_TSO6)) < 0)) {
    fprintf(stderr, "c-forwarder: offload on %s: %s\n", name, strerror(errno));
    close(fd);
    return -1;
  }
  return fd;
}

// Moves up to BURST packets from -> to. Returns -1 on a fatal read error.
static int pump(int from, int to) {
  // The largest IPv4 packet (a super-packet can be one) and a virtio-net header.
  static unsigned char buf[VNET_HDR_LEN + 65535];
  for (int i = 0; i < BURST; i++) {
    ssize_t n = read(from, buf, sizeof buf);
    if (n < 0) {
      if (errno == EAGAIN || errno == EINTR) return 0;
      perror("c-forwarder: read");
      return -1;
    }
    // A failed write (e.g. peer device down) drops the packet, as a router would.
    if (write(to, buf, (size_t)n) < 0 && errno != EIO && errno != EINVAL && errno != ENOBUFS) {
      perror("c-forwarder: write");
      return -1;
    }
  }
  return 0;
}

int main(int argc, char **argv) {
  bool offload = argc == 4 && strcmp(argv[1], "--offload") == 0;
  if (argc != 3 + offload) {
    fprintf(stderr, "usage: %s [--offload] TUN_A TUN_B\n", argv[0]);
    return 2;
  }
  const char *name_a = argv[1 + offload], *name_b = argv[2 + offload];
  // No SA_RESTART: poll() must return EINTR so the loop sees `stop`.
  struct sigaction sa;
  memset(&sa, 0, sizeof sa);
  sa.sa_handler = on_signal;
  sigemptyset(&sa.sa_mask);
  sigaction(SIGINT, &sa, NULL);
  sigaction(SIGTERM, &sa, NULL);

  int a = open_tun(name_a, offload);
  if (a < 0) return 1;
  int b = open_tun(name_b, offload);
  if (b < 0) return 1;
  printf("ready\n");
  fflush(stdout);

  struct pollfd fds[2] = {{.fd = a, .events = POLLIN}, {.fd = b, .events = POLLIN}};
  while (!stop) {
    if (poll(fds, 2, -1) < 0) {
      if (errno == EINTR) continue;
      perror("c-forwarder: poll");
      return 1;
    }
    if (fds[0].revents & (POLLERR | POLLHUP | POLLNVAL) || fds[1].revents & (POLLERR | POLLHUP | POLLNVAL)) {
      fprintf(stderr, "c-forwarder: device gone\n");
      return 1;
    }
    if ((fds[0].revents & POLLIN && pump(a, b) < 0) || (fds[1].revents & POLLIN && pump(b, a) < 0)) return 1;
  }
  close(a);
  close(b);
  return 0;
}
