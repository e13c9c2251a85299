// TUN device binding: open/configure at config time (throws), then a packet path that never
// throws and never allocates. Reading is readiness-driven on the Node event loop (uv_poll),
// draining a bounded batch into a JS-owned slab and calling JS once per batch.
#define _GNU_SOURCE
#define NAPI_VERSION 8

#include <errno.h>
#include <fcntl.h>
#include <linux/if.h>
#include <linux/if_tun.h>
#include <node_api.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/uio.h>
#include <unistd.h>
#include <uv.h>

// The virtio_net_hdr_v1 layout (virtio_net_hdr + num_buffers), not the 10-byte legacy one: 12
// bytes keep the IP header that follows 4-byte aligned in a slot whose start is, so checksums sum
// native 32-bit words. The kernel reads and writes only the first 10 (drivers/net/tun_vnet.h
// skips the rest), so num_buffers is never meaningful here.
#define VNET_HDR_LEN 12

// include/uapi/linux/if_tun.h since Linux 6.2; older libc headers lack them.
#ifndef TUN_F_USO4
#define TUN_F_USO4 0x20
#endif
#ifndef TUN_F_USO6
#define TUN_F_USO6 0x40
#endif
// Offloads that are dropped, not refused, when the running kernel lacks them. tun.c turns on UDP
// segmentation only when both are asked for together.
#define OPTIONAL_OFFLOADS (TUN_F_USO4 | TUN_F_USO6)

typedef struct {
  napi_env env;
  int fd;             // -1 once closed
  int header_len;     // VNET_HDR_LEN with IFF_VNET_HDR, else 0
  unsigned offloads;  // TUN_F_* the kernel granted through TUNSETOFFLOAD
  uv_poll_t *poll;    // non-NULL while polling; freed by its uv_close callback
  bool in_callback;   // JS may close() from inside the batch callback
  bool cleanup_hook;  // registered with napi_add_env_cleanup_hook
  // Held only while polling: self_ref keeps a polling device alive even if JS drops it.
  napi_ref self_ref, cb_ref, slab_ref, lengths_ref;
  napi_async_context async_ctx;
  uint8_t *slab;
  int32_t *lengths;
  size_t slot_size;
  uint32_t batch_size;
} tun_dev;

// All-zero virtio_net_hdr = "no checksum offload, no GSO": valid for every packet we write.
static const uint8_t zero_vnet_hdr[VNET_HDR_LEN];

static napi_value throw_errno(napi_env env, int err, const char *what, const char *name) {
  char msg[160];
  snprintf(msg, sizeof msg, "%s '%s': %s", what, name, strerror(err));
  const char *code = strerrorname_np(err);
  napi_throw_error(env, code ? code : "EUNKNOWN", msg);
  return NULL;
}

// The close callback is libc's free, not a function of ours: when a worker exits, Node unloads
// this addon before its loop runs the pending close callbacks.
#define free_poll_handle ((uv_close_cb)free)

static void stop_polling(tun_dev *dev) {
  if (!dev->poll) return;
  uv_poll_stop(dev->poll);
  uv_close((uv_handle_t *)dev->poll, free_poll_handle);
  dev->poll = NULL;
}

static void delete_ref(napi_env env, napi_ref *ref) {
  if (!*ref) return;
  napi_delete_reference(env, *ref);
  *ref = NULL;
}

// Drops what start() took. Deferred while the JS callback runs, so the async context and
// callback stay valid until napi_close_callback_scope.
static void release_js(tun_dev *dev) {
  if (dev->in_callback) return;
  delete_ref(dev->env, &dev->cb_ref);
  delete_ref(dev->env, &dev->slab_ref);
  delete_ref(dev->env, &dev->lengths_ref);
  delete_ref(dev->env, &dev->self_ref);
  if (dev->async_ctx) {
    napi_async_destroy(dev->env, dev->async_ctx);
    dev->async_ctx = NULL;
  }
  dev->slab = NULL;
  dev->lengths = NULL;
}

static void env_cleanup(void *arg);

static void dev_close(tun_dev *dev) {
  stop_polling(dev);
  if (dev->fd >= 0) {
    close(dev->fd);  // last reference: the kernel deletes the (non-persistent) device
    dev->fd = -1;
  }
  release_js(dev);
  if (dev->cleanup_hook) {
    dev->cleanup_hook = false;
    napi_remove_env_cleanup_hook(dev->env, env_cleanup, dev);
  }
}

// Env teardown (worker exit) while a device is still open: the loop is about to go away.
static void env_cleanup(void *arg) {
  tun_dev *dev = arg;
  dev->cleanup_hook = false;
  dev_close(dev);
}

static void finalize_dev(napi_env env, void *data, void *hint) {
  (void)env;
  (void)hint;
  tun_dev *dev = data;
  dev_close(dev);
  free(dev);
}

// Calls JS once with `count`. The callback scope (a bare napi_call_function has none) runs
// nextTicks and microtasks when it closes, before any other I/O callback, as Node does for
// its own libuv callbacks; it also gives async_hooks/AsyncLocalStorage a context.
static void deliver(tun_dev *dev, int32_t count) {
  napi_env env = dev->env;
  napi_handle_scope hscope;
  if (napi_open_handle_scope(env, &hscope) != napi_ok) return;
  napi_callback_scope cscope;
  napi_value cb, recv, arg, exc;
  if (napi_open_callback_scope(env, NULL, dev->async_ctx, &cscope) == napi_ok) {
    napi_get_reference_value(env, dev->cb_ref, &cb);
    napi_get_undefined(env, &recv);
    napi_create_int32(env, count, &arg);
    dev->in_callback = true;
    if (napi_call_function(env, recv, cb, 1, &arg, NULL) == napi_pending_exception &&
        napi_get_and_clear_last_exception(env, &exc) == napi_ok) {
      napi_fatal_exception(env, exc);  // -> process 'uncaughtException'; we keep polling
    }
    dev->in_callback = false;
    napi_close_callback_scope(env, cscope);
  }
  napi_close_handle_scope(env, hscope);
  if (!dev->poll) release_js(dev);  // closed from inside the callback, or a read error
}

static void on_readable(uv_poll_t *handle, int status, int events) {
  (void)events;
  tun_dev *dev = handle->data;
  int32_t count = 0;
  int err = 0;
  while (err == 0 && count < (int32_t)dev->batch_size) {
    ssize_t n = read(dev->fd, dev->slab + (size_t)count * dev->slot_size, dev->slot_size);
    if (n >= 0) {
      dev->lengths[count++] = n > dev->header_len ? (int32_t)(n - dev->header_len) : 0;
    } else if (errno == EAGAIN) {
      break;
    } else if (errno != EINTR) {
      err = -errno;
    }
  }
  // POLLERR (libuv says EBADF) when the device is deleted under us; read()'s errno says more.
  if (err == 0 && status < 0) err = status;
  // A full batch just returns: the poll is level-triggered and fires again.
  if (count > 0) deliver(dev, count);
  if (err != 0 && dev->poll) {
    stop_polling(dev);
    deliver(dev, err);
  }
}

static bool get_dev(napi_env env, napi_value v, tun_dev **dev) {
  return napi_get_value_external(env, v, (void **)dev) == napi_ok && *dev != NULL;
}

// The virtio-net header set-up of a TUN opened with IFF_VNET_HDR: its size, little-endian fields
// on every host (TUNSETVNETLE; without it the byte order is the host's), and the offloads. USO is
// probed: a kernel that does not know a TUN_F_* flag refuses the whole request with EINVAL, so the
// request is retried once without OPTIONAL_OFFLOADS. Returns 0 and the granted flags, or an errno
// with the ioctl that failed.
static int configure_vnet(int fd, unsigned requested, unsigned *granted, const char **failed) {
  int size = VNET_HDR_LEN, little_endian = 1;
  if (ioctl(fd, TUNSETVNETHDRSZ, &size) < 0) {
    *failed = "TUNSETVNETHDRSZ";
    return errno;
  }
  if (ioctl(fd, TUNSETVNETLE, &little_endian) < 0) {
    *failed = "TUNSETVNETLE";
    return errno;
  }
  if (ioctl(fd, TUNSETOFFLOAD, (unsigned long)requested) == 0) {
    *granted = requested;
    return 0;
  }
  int err = errno;
  unsigned without_optional = requested & ~(unsigned)OPTIONAL_OFFLOADS;
  if (err == EINVAL && without_optional != requested) {
    if (ioctl(fd, TUNSETOFFLOAD, (unsigned long)without_optional) == 0) {
      *granted = without_optional;
      return 0;
    }
    err = errno;
  }
  *failed = "TUNSETOFFLOAD";
  return err;
}

// open(name: string, vnetHeader: boolean, offloads: number) -> { handle, name, headerLength,
// offloads }. offloads (TUN_F_*) is asked for only with vnetHeader; `offloads` in the result is
// what the kernel granted.
static napi_value js_open(napi_env env, napi_callback_info info) {
  size_t argc = 3;
  napi_value argv[3];
  char name[IFNAMSIZ];
  size_t name_len;
  bool vnet = false;
  uint32_t requested = 0;
  napi_get_cb_info(env, info, &argc, argv, NULL, NULL);
  if (argc < 3 || napi_get_value_string_utf8(env, argv[0], NULL, 0, &name_len) != napi_ok ||
      napi_get_value_bool(env, argv[1], &vnet) != napi_ok ||
      napi_get_value_uint32(env, argv[2], &requested) != napi_ok) {
    napi_throw_type_error(env, "ERR_INVALID_ARG_TYPE",
                          "open(name: string, vnetHeader: boolean, offloads: number)");
    return NULL;
  }
  if (name_len >= IFNAMSIZ) {
    char msg[64];
    snprintf(msg, sizeof msg, "TUN name is %zu bytes, the limit is %d", name_len, IFNAMSIZ - 1);
    napi_throw_error(env, "ENAMETOOLONG", msg);
    return NULL;
  }
  napi_get_value_string_utf8(env, argv[0], name, sizeof name, NULL);
  if (strlen(name) != name_len) {
    napi_throw_error(env, "EINVAL", "TUN name contains a NUL character");
    return NULL;
  }

  int fd = open("/dev/net/tun", O_RDWR | O_NONBLOCK | O_CLOEXEC);
  if (fd < 0) return throw_errno(env, errno, "open /dev/net/tun for", name);
  struct ifreq ifr;
  memset(&ifr, 0, sizeof ifr);
  ifr.ifr_flags = IFF_TUN | IFF_NO_PI | (vnet ? IFF_VNET_HDR : 0);
  memcpy(ifr.ifr_name, name, name_len);
  if (ioctl(fd, TUNSETIFF, &ifr) < 0) {
    int err = errno;
    close(fd);
    return throw_errno(env, err, "TUNSETIFF", name);
  }
  unsigned granted = 0;
  const char *failed = NULL;
  int err = vnet ? configure_vnet(fd, requested, &granted, &failed) : 0;
  if (err) {
    close(fd);
    return throw_errno(env, err, failed, name);
  }

  tun_dev *dev = calloc(1, sizeof *dev);
  if (!dev) {
    close(fd);
    return throw_errno(env, ENOMEM, "open", name);
  }
  dev->env = env;
  dev->fd = fd;
  dev->header_len = vnet ? VNET_HDR_LEN : 0;
  dev->offloads = granted;

  napi_value handle, result, actual, hlen, offloads;
  if (napi_create_external(env, dev, finalize_dev, NULL, &handle) != napi_ok) {
    close(fd);
    free(dev);
    return NULL;
  }
  if (napi_add_env_cleanup_hook(env, env_cleanup, dev) == napi_ok) dev->cleanup_hook = true;
  ifr.ifr_name[IFNAMSIZ - 1] = '\0';
  napi_create_object(env, &result);
  napi_create_string_utf8(env, ifr.ifr_name, NAPI_AUTO_LENGTH, &actual);
  napi_create_int32(env, dev->header_len, &hlen);
  napi_create_uint32(env, dev->offloads, &offloads);
  napi_set_named_property(env, result, "handle", handle);
  napi_set_named_property(env, result, "name", actual);
  napi_set_named_property(env, result, "headerLength", hlen);
  napi_set_named_property(env, result, "offloads", offloads);
  return result;
}

// start(handle, slab: Uint8Array, slotSize, lengths: Int32Array, batchSize, cb: (count) => void)
static napi_value js_start(napi_env env, napi_callback_info info) {
  size_t argc = 6;
  napi_value argv[6], this_name;
  tun_dev *dev;
  napi_typedarray_type slab_type, len_type;
  size_t slab_len, len_len;
  void *slab, *lengths;
  uint32_t slot_size, batch_size;
  napi_valuetype cb_type;
  napi_get_cb_info(env, info, &argc, argv, NULL, NULL);
  if (argc < 6 || !get_dev(env, argv[0], &dev) ||
      napi_get_typedarray_info(env, argv[1], &slab_type, &slab_len, &slab, NULL, NULL) != napi_ok ||
      slab_type != napi_uint8_array || napi_get_value_uint32(env, argv[2], &slot_size) != napi_ok ||
      napi_get_typedarray_info(env, argv[3], &len_type, &len_len, &lengths, NULL, NULL) != napi_ok ||
      len_type != napi_int32_array || napi_get_value_uint32(env, argv[4], &batch_size) != napi_ok ||
      napi_typeof(env, argv[5], &cb_type) != napi_ok || cb_type != napi_function) {
    napi_throw_type_error(env, "ERR_INVALID_ARG_TYPE",
                          "start(handle, slab, slotSize, lengths, batchSize, callback)");
    return NULL;
  }
  if (batch_size == 0 || slot_size <= (uint32_t)dev->header_len || len_len < batch_size ||
      slab_len / slot_size < batch_size) {
    napi_throw_range_error(env, "ERR_OUT_OF_RANGE", "slab/lengths too small for batchSize x slotSize");
    return NULL;
  }
  if (dev->fd < 0) {
    napi_throw_error(env, "EBADF", "TUN device is closed");
    return NULL;
  }
  if (dev->poll || dev->cb_ref) {
    napi_throw_error(env, "ERR_INVALID_STATE", "TUN device was already started");
    return NULL;
  }

  uv_loop_t *loop;
  if (napi_get_uv_event_loop(env, &loop) != napi_ok) return NULL;
  uv_poll_t *poll = malloc(sizeof *poll);
  if (!poll) return throw_errno(env, ENOMEM, "start", "poll");
  int rc = uv_poll_init(loop, poll, dev->fd);
  if (rc != 0) {
    free(poll);
    return throw_errno(env, -rc, "uv_poll_init", "tun");
  }
  poll->data = dev;
  rc = uv_poll_start(poll, UV_READABLE, on_readable);
  if (rc != 0) {
    uv_close((uv_handle_t *)poll, free_poll_handle);
    return throw_errno(env, -rc, "uv_poll_start", "tun");
  }
  dev->poll = poll;
  dev->slab = slab;
  dev->lengths = lengths;
  dev->slot_size = slot_size;
  dev->batch_size = batch_size;
  napi_create_reference(env, argv[0], 1, &dev->self_ref);
  napi_create_reference(env, argv[1], 1, &dev->slab_ref);
  napi_create_reference(env, argv[3], 1, &dev->lengths_ref);
  napi_create_reference(env, argv[5], 1, &dev->cb_ref);
  napi_create_string_utf8(env, "TunDevice", NAPI_AUTO_LENGTH, &this_name);
  napi_async_init(env, NULL, this_name, &dev->async_ctx);
  return NULL;
}

// write(handle, packet: Uint8Array, offset, length) -> bytes written or -errno. Never throws,
// never allocates (beyond the returned number): this is the per-packet path.
static napi_value js_write(napi_env env, napi_callback_info info) {
  size_t argc = 4;
  napi_value argv[4], result;
  tun_dev *dev;
  napi_typedarray_type type;
  size_t len;
  uint8_t *data;
  int64_t off, n;
  int32_t rc = -EINVAL;
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) == napi_ok && argc == 4 &&
      get_dev(env, argv[0], &dev) &&
      napi_get_typedarray_info(env, argv[1], &type, &len, (void **)&data, NULL, NULL) == napi_ok &&
      type == napi_uint8_array && napi_get_value_int64(env, argv[2], &off) == napi_ok &&
      napi_get_value_int64(env, argv[3], &n) == napi_ok && off >= 0 && n >= 0 &&
      (uint64_t)off + (uint64_t)n <= len && n <= INT32_MAX - VNET_HDR_LEN) {
    ssize_t w;
    if (dev->fd < 0) {
      w = -1;
      errno = EBADF;
    } else if (dev->header_len) {
      // The caller writes plain IP packets; prepend the no-offload virtio header.
      struct iovec iov[2] = {{(void *)zero_vnet_hdr, VNET_HDR_LEN}, {data + off, (size_t)n}};
      do w = writev(dev->fd, iov, 2); while (w < 0 && errno == EINTR);
      if (w >= VNET_HDR_LEN) w -= VNET_HDR_LEN;
    } else {
      do w = write(dev->fd, data + off, (size_t)n); while (w < 0 && errno == EINTR);
    }
    rc = w < 0 ? -errno : (int32_t)w;
  }
  napi_create_int32(env, rc, &result);
  return result;
}

// writeWithHeader(handle, header: Uint8Array, headerOffset, packet: Uint8Array, offset, length)
// -> packet bytes written or -errno. The caller's VNET_HDR_LEN-byte virtio-net header (GSO,
// NEEDS_CSUM) goes out in front of the packet in one writev, so neither is copied. Like write():
// never throws, never allocates; -EINVAL without IFF_VNET_HDR or for a header the kernel refuses.
static napi_value js_write_with_header(napi_env env, napi_callback_info info) {
  size_t argc = 6;
  napi_value argv[6], result;
  tun_dev *dev;
  napi_typedarray_type htype, ptype;
  size_t hbytes, pbytes;
  uint8_t *hdata, *pdata;
  int64_t hoff, off, n;
  int32_t rc = -EINVAL;
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) == napi_ok && argc == 6 &&
      get_dev(env, argv[0], &dev) &&
      napi_get_typedarray_info(env, argv[1], &htype, &hbytes, (void **)&hdata, NULL, NULL) == napi_ok &&
      htype == napi_uint8_array && napi_get_value_int64(env, argv[2], &hoff) == napi_ok &&
      napi_get_typedarray_info(env, argv[3], &ptype, &pbytes, (void **)&pdata, NULL, NULL) == napi_ok &&
      ptype == napi_uint8_array && napi_get_value_int64(env, argv[4], &off) == napi_ok &&
      napi_get_value_int64(env, argv[5], &n) == napi_ok && hoff >= 0 &&
      (uint64_t)hoff + VNET_HDR_LEN <= hbytes && off >= 0 && n >= 0 &&
      (uint64_t)off + (uint64_t)n <= pbytes && n <= INT32_MAX - VNET_HDR_LEN && dev->header_len) {
    ssize_t w;
    if (dev->fd < 0) {
      w = -1;
      errno = EBADF;
    } else {
      struct iovec iov[2] = {{hdata + hoff, VNET_HDR_LEN}, {pdata + off, (size_t)n}};
      do w = writev(dev->fd, iov, 2); while (w < 0 && errno == EINTR);
      if (w >= VNET_HDR_LEN) w -= VNET_HDR_LEN;
    }
    rc = w < 0 ? -errno : (int32_t)w;
  }
  napi_create_int32(env, rc, &result);
  return result;
}

static napi_value js_close(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1];
  tun_dev *dev;
  napi_get_cb_info(env, info, &argc, argv, NULL, NULL);
  if (argc < 1 || !get_dev(env, argv[0], &dev)) {
    napi_throw_type_error(env, "ERR_INVALID_ARG_TYPE", "close(handle)");
    return NULL;
  }
  dev_close(dev);
  return NULL;
}

static napi_value init(napi_env env, napi_value exports) {
  napi_property_descriptor props[] = {
      {"open", NULL, js_open, NULL, NULL, NULL, napi_enumerable, NULL},
      {"start", NULL, js_start, NULL, NULL, NULL, napi_enumerable, NULL},
      {"write", NULL, js_write, NULL, NULL, NULL, napi_enumerable, NULL},
      {"writeWithHeader", NULL, js_write_with_header, NULL, NULL, NULL, napi_enumerable, NULL},
      {"close", NULL, js_close, NULL, NULL, NULL, napi_enumerable, NULL},
  };
  napi_define_properties(env, exports, sizeof props / sizeof props[0], props);
  return exports;
}

NAPI_MODULE(NODE_GYP_MODULE_NAME, init)
