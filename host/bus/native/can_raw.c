/*
 * vgw's raw SocketCAN socket (Node-API, C): one AF_CAN/CAN_RAW socket per bus, for sending and for receiving in batches.
 *
 * Why not the `socketcan` npm addon (docs/socketcan.md has the measurements): it reads one frame per system call and
 * makes one JS object per frame, and on an idle 2-vCPU VM it loses frames from bursts of 48 where candump does not;
 * it also hides errno, cannot tell an FD frame of 8 bytes or less from a classic one, drops BRS/ESI on receive, and
 * has no kernel drop counter. This module:
 *   - receives on its own thread: poll(), then recvmmsg() of up to RX_BATCH frames per call, so a paused JS thread
 *     (GC, a slow consumer) does not leave the kernel's socket buffer to overflow;
 *   - packs each frame straight into the packed record layout of frame/packed.ts (f64 t, u32 id, u8 flags,
 *     u8 length, u8 remote dlc, u8 bus index, data), the same bytes `vgw record` hands to its writer thread, and
 *     delivers one ArrayBuffer per chunk to JS through a thread-safe function;
 *   - reads SO_TIMESTAMP (microseconds, as candump), and SO_MEMINFO's drop count (frames the kernel dropped for this
 *     socket because its buffer was full);
 *   - names its thread `vgw-can-rx` (vgw record runs every other thread at a lower priority);
 *   - returns errno from send() so the caller can say what went wrong.
 * Nothing is dropped silently: chunks waiting for JS are bounded (MAX_PENDING_BYTES); frames beyond are counted in
 * `userDropped`.
 *
 * JS API (wrapped by host/bus/socketcan.ts, the only user):
 *   open(ifname, receiveOwn, rcvbuf) -> handle    throws an Error with .errno and .syscall; rcvbuf 0 = the default
 *   receiveBuffer(handle) -> bytes                 the socket's receive buffer as set (as asked for, not doubled)
 *   receive(handle, filters: Uint32Array [id, mask, ...], errMask, onChunk(ab, count, errorFrames), onEnd(errno))
 *   send(handle, canId, fdFlags (-1 = classic), data: Uint8Array, rtrDlc) -> 0 or errno
 *   sendBatch(handle, frames: Uint8Array, sizes: Uint8Array) -> frames sent (or -errno when none was)
 *                                                 `frames` holds struct canfd_frame slots (72 bytes, filled by JS),
 *                                                 `sizes` each slot's size on the wire (CAN_MTU or CANFD_MTU): one
 *                                                 sendmmsg() for the lot instead of a call and a write per frame
 *   counters(handle) -> [kernelDropped, userDropped]
 *   close(handle)                                  onEnd follows once every received chunk was delivered
 *   strerror(errno) -> the C library's text for it
 *   layout: { header, ext, rtr, fd, brs, esi, err }  checked against the TypeScript side when loaded
 */
#define _GNU_SOURCE
#include <errno.h>
#include <net/if.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>
#include <linux/can.h>
#include <linux/can/raw.h>
#include <node_api.h>

#ifndef SO_MEMINFO
#define SO_MEMINFO 55
#endif
#ifndef SK_MEMINFO_DROPS
#define SK_MEMINFO_DROPS 8
#endif

/* The packed record, defined and documented in frame/packed.ts (PACKED_HEADER, FRAME_FLAG); host/bus/can-raw.ts
 * refuses a module whose `layout` export differs from it. */
#define HEADER 16
#define F_EXT 1
#define F_RTR 2
#define F_FD 4
#define F_BRS 8
#define F_ESI 16
#define F_ERR 32

/* Frames per recvmmsg(); a chunk for JS holds up to CHUNK_BYTES (about 2,700 classic frames). */
#define RX_BATCH 64
#define CHUNK_BYTES (64 * 1024)
/* Received bytes waiting for the JS thread before frames are dropped (and counted): about 2.8 M classic frames. */
#define MAX_PENDING_BYTES (64 * 1024 * 1024)

typedef struct {
  uint8_t *bytes; /* NULL for the end item */
  size_t used;
  uint32_t count;
  uint32_t errors; /* error frames among them */
  int end_errno; /* end item: 0 = closed, else the error that ended receiving */
} item_t;

typedef struct {
  int fd;
  int stop_fd; /* eventfd: written by close() to end the receive thread */
  int receiving;
  int joined;
  pthread_t thread;
  napi_threadsafe_function tsfn;
  napi_ref on_end;
  napi_ref self; /* the handle, kept alive while the receive thread may still deliver (items point at this struct) */
  atomic_size_t pending_bytes;
  atomic_uint_fast64_t user_dropped;
} sock_t;

#define CHECK(call)                                                                                                    \
  do {                                                                                                                 \
    if ((call) != napi_ok) return NULL;                                                                                \
  } while (0)

static napi_value throw_errno(napi_env env, const char *syscall, int err) {
  napi_value msg, error, num, sys;
  char text[160];
  snprintf(text, sizeof text, "%s: %s", syscall, strerror(err));
  napi_create_string_utf8(env, text, NAPI_AUTO_LENGTH, &msg);
  napi_create_error(env, NULL, msg, &error);
  napi_create_int32(env, err, &num);
  napi_set_named_property(env, error, "errno", num);
  napi_create_string_utf8(env, syscall, NAPI_AUTO_LENGTH, &sys);
  napi_set_named_property(env, error, "syscall", sys);
  napi_throw(env, error);
  return NULL;
}

static sock_t *get_sock(napi_env env, napi_value v) {
  void *p = NULL;
  if (napi_get_value_external(env, v, &p) != napi_ok || p == NULL) {
    napi_throw_type_error(env, NULL, "not a CAN socket handle");
    return NULL;
  }
  return (sock_t *)p;
}

/* Opens a JS call whose first argument is a socket handle: declares argv[n] and s; returns on a bad call. */
#define SOCKET_CALL(n)                                                                                                 \
  size_t argc = (n);                                                                                                   \
  napi_value argv[(n)];                                                                                                \
  CHECK(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));                                                         \
  sock_t *s = get_sock(env, argv[0]);                                                                                  \
  if (!s) return NULL

/* ---- receive thread ---- */

static int post(sock_t *s, item_t *it) {
  if (it->bytes) atomic_fetch_add(&s->pending_bytes, it->used);
  napi_status st = napi_call_threadsafe_function(s->tsfn, it, napi_tsfn_nonblocking);
  if (st != napi_ok) { /* the environment is shutting down */
    free(it->bytes);
    free(it);
    return -1;
  }
  return 0;
}

static item_t *new_chunk(void) {
  item_t *it = calloc(1, sizeof *it);
  if (it) it->bytes = malloc(CHUNK_BYTES);
  if (it && !it->bytes) {
    free(it);
    it = NULL;
  }
  return it;
}

static void pack(item_t *it, const struct canfd_frame *cf, ssize_t nbytes, const struct timeval *tv) {
  uint8_t *o = it->bytes + it->used;
  double t = tv ? (double)tv->tv_sec + (double)tv->tv_usec / 1e6 : __builtin_nan("");
  uint32_t id = cf->can_id;
  uint8_t flags = 0, len = 0, dlc = 0;
  if (id & CAN_ERR_FLAG) {
    flags = F_ERR;
    it->errors++;
    id &= CAN_ERR_MASK;
    len = cf->len > CAN_MAX_DLEN ? CAN_MAX_DLEN : cf->len;
  } else {
    if (id & CAN_EFF_FLAG) {
      flags |= F_EXT;
      id &= CAN_EFF_MASK;
    } else
      id &= CAN_SFF_MASK;
    if (nbytes == CANFD_MTU) {
      flags |= F_FD;
      if (cf->flags & CANFD_BRS) flags |= F_BRS;
      if (cf->flags & CANFD_ESI) flags |= F_ESI;
      len = cf->len > CANFD_MAX_DLEN ? CANFD_MAX_DLEN : cf->len;
    } else if (cf->can_id & CAN_RTR_FLAG) {
      flags |= F_RTR;
      dlc = cf->len > CAN_MAX_DLEN ? CAN_MAX_DLEN : cf->len;
    } else
      len = cf->len > CAN_MAX_DLEN ? CAN_MAX_DLEN : cf->len;
  }
  memcpy(o, &t, 8); /* little-endian hosts only, as the record layout */
  memcpy(o + 8, &id, 4);
  o[12] = flags;
  o[13] = len;
  o[14] = dlc;
  o[15] = 0; /* bus index 0: each chunk belongs to one interface */
  memcpy(o + HEADER, cf->data, len);
  it->used += HEADER + len;
  it->count++;
}

static void *receive_loop(void *arg) {
  sock_t *s = arg;
  struct canfd_frame frames[RX_BATCH];
  char control[RX_BATCH][CMSG_SPACE(sizeof(struct timeval))];
  struct iovec iov[RX_BATCH];
  struct mmsghdr msgs[RX_BATCH];
  for (int i = 0; i < RX_BATCH; i++) {
    iov[i].iov_base = &frames[i];
    iov[i].iov_len = sizeof frames[i];
  }
  item_t *chunk = NULL;
  int end_errno = 0;
  for (;;) {
    struct pollfd p[2] = {{.fd = s->fd, .events = POLLIN}, {.fd = s->stop_fd, .events = POLLIN}};
    if (poll(p, 2, -1) < 0) {
      if (errno == EINTR) continue;
      end_errno = errno;
      break;
    }
    /* On close: one last drain, so frames the kernel took before close() are delivered, not discarded. */
    int stopping = p[1].revents != 0;
    /* Drain what the kernel holds, then hand it over: one chunk per wake-up on a quiet bus, full chunks on a busy one. */
    for (;;) {
      memset(msgs, 0, sizeof msgs);
      for (int i = 0; i < RX_BATCH; i++) {
        msgs[i].msg_hdr.msg_iov = &iov[i];
        msgs[i].msg_hdr.msg_iovlen = 1;
        msgs[i].msg_hdr.msg_control = control[i];
        msgs[i].msg_hdr.msg_controllen = sizeof control[i];
      }
      int n = recvmmsg(s->fd, msgs, RX_BATCH, MSG_DONTWAIT, NULL);
      if (n < 0) {
        if (errno == EAGAIN || errno == EWOULDBLOCK) break;
        if (errno == EINTR) continue;
        end_errno = errno;
        goto done;
      }
      for (int i = 0; i < n; i++) {
        ssize_t nbytes = msgs[i].msg_len;
        if (nbytes != CAN_MTU && nbytes != CANFD_MTU) { /* CAN XL is not enabled: cannot happen, but never unseen */
          atomic_fetch_add(&s->user_dropped, 1);
          continue;
        }
        const struct timeval *tv = NULL;
        for (struct cmsghdr *c = CMSG_FIRSTHDR(&msgs[i].msg_hdr); c; c = CMSG_NXTHDR(&msgs[i].msg_hdr, c)) {
          if (c->cmsg_level == SOL_SOCKET && c->cmsg_type == SO_TIMESTAMP) tv = (const struct timeval *)CMSG_DATA(c);
        }
        if (atomic_load(&s->pending_bytes) > MAX_PENDING_BYTES) {
          atomic_fetch_add(&s->user_dropped, 1);
          continue;
        }
        if (chunk && chunk->used + HEADER + CANFD_MAX_DLEN > CHUNK_BYTES) {
          if (post(s, chunk) < 0) {
            chunk = NULL;
            goto done;
          }
          chunk = NULL;
        }
        if (!chunk && !(chunk = new_chunk())) {
          atomic_fetch_add(&s->user_dropped, 1);
          continue;
        }
        pack(chunk, &frames[i], nbytes, tv);
      }
      if (n < RX_BATCH) break;
    }
    if (chunk) {
      int r = post(s, chunk);
      chunk = NULL;
      if (r < 0) goto done;
    }
    if (stopping) break;
  }
done:
  if (chunk) {
    if (post(s, chunk) < 0) chunk = NULL;
  }
  item_t *end = calloc(1, sizeof *end);
  if (end) {
    end->end_errno = end_errno;
    post(s, end);
  }
  napi_release_threadsafe_function(s->tsfn, napi_tsfn_release);
  return NULL;
}

/* Runs on the JS thread for each item the receive thread posted, in order. */
static void deliver(napi_env env, napi_value on_chunk, void *context, void *data) {
  sock_t *s = context;
  item_t *it = data;
  if (env == NULL) { /* shutting down: nothing to deliver to */
    free(it->bytes);
    free(it);
    return;
  }
  napi_value undefined;
  napi_get_undefined(env, &undefined);
  if (it->bytes) {
    atomic_fetch_sub(&s->pending_bytes, it->used);
    napi_value args[3];
    void *dst;
    if (napi_create_arraybuffer(env, it->used, &dst, &args[0]) == napi_ok) {
      memcpy(dst, it->bytes, it->used);
      napi_create_uint32(env, it->count, &args[1]);
      napi_create_uint32(env, it->errors, &args[2]);
      napi_call_function(env, undefined, on_chunk, 3, args, NULL);
    } else
      atomic_fetch_add(&s->user_dropped, it->count);
    free(it->bytes);
  } else {
    napi_value fn, arg;
    if (napi_get_reference_value(env, s->on_end, &fn) == napi_ok && fn) {
      napi_create_int32(env, it->end_errno, &arg);
      napi_call_function(env, undefined, fn, 1, &arg, NULL);
    }
  }
  free(it);
}

static void tsfn_finalize(napi_env env, void *data, void *hint) {
  (void)data;
  sock_t *s = hint;
  if (s->on_end) {
    napi_delete_reference(env, s->on_end);
    s->on_end = NULL;
  }
  if (s->self) {
    napi_delete_reference(env, s->self);
    s->self = NULL;
  }
}

/* ---- JS functions ---- */

static void stop_and_close(sock_t *s) {
  if (s->receiving && !s->joined) {
    uint64_t one = 1;
    ssize_t w = write(s->stop_fd, &one, sizeof one);
    (void)w;
    pthread_join(s->thread, NULL);
    s->joined = 1;
  }
  if (s->fd >= 0) close(s->fd);
  if (s->stop_fd >= 0) close(s->stop_fd);
  s->fd = s->stop_fd = -1;
}

static void sock_finalize(napi_env env, void *data, void *hint) {
  (void)env;
  (void)hint;
  sock_t *s = data;
  stop_and_close(s);
  free(s);
}

static napi_value js_open(napi_env env, napi_callback_info info) {
  size_t argc = 3;
  napi_value argv[3];
  CHECK(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  char name[IFNAMSIZ];
  size_t len;
  if (napi_get_value_string_utf8(env, argv[0], name, sizeof name, &len) != napi_ok) {
    napi_throw_type_error(env, NULL, "interface name must be a string");
    return NULL;
  }
  bool receive_own = false;
  napi_get_value_bool(env, argv[1], &receive_own);
  int fd = socket(PF_CAN, SOCK_RAW | SOCK_NONBLOCK | SOCK_CLOEXEC, CAN_RAW);
  if (fd < 0) return throw_errno(env, "socket", errno);
  int one = 1, own = receive_own ? 1 : 0;
  /* Receive nothing until receive() sets the filters: a bus used only to send must not queue what it never reads. */
  if (setsockopt(fd, SOL_CAN_RAW, CAN_RAW_FILTER, NULL, 0) < 0 ||
      setsockopt(fd, SOL_CAN_RAW, CAN_RAW_FD_FRAMES, &one, sizeof one) < 0 ||
      setsockopt(fd, SOL_CAN_RAW, CAN_RAW_RECV_OWN_MSGS, &own, sizeof own) < 0 ||
      setsockopt(fd, SOL_SOCKET, SO_TIMESTAMP, &one, sizeof one) < 0) {
    int e = errno;
    close(fd);
    return throw_errno(env, "setsockopt", e);
  }
  /* A bigger socket buffer on request, as candump -r: SO_RCVBUFFORCE where permitted (CAP_NET_ADMIN), else SO_RCVBUF,
     which the kernel caps at net.core.rmem_max (the caller compares with receiveBuffer() and says so). */
  uint32_t rcvbuf = 0;
  napi_get_value_uint32(env, argv[2], &rcvbuf);
  if (rcvbuf > 0) {
    int size = rcvbuf > INT32_MAX / 2 ? INT32_MAX / 2 : (int)rcvbuf;
    if (setsockopt(fd, SOL_SOCKET, SO_RCVBUFFORCE, &size, sizeof size) < 0 &&
        setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &size, sizeof size) < 0) {
      int e = errno;
      close(fd);
      return throw_errno(env, "setsockopt(SO_RCVBUF)", e);
    }
  }
  unsigned index = if_nametoindex(name);
  if (index == 0) {
    int e = errno;
    close(fd);
    return throw_errno(env, "if_nametoindex", e);
  }
  struct sockaddr_can addr = {.can_family = AF_CAN, .can_ifindex = (int)index};
  if (bind(fd, (struct sockaddr *)&addr, sizeof addr) < 0) {
    int e = errno;
    close(fd);
    return throw_errno(env, "bind", e);
  }
  int stop_fd = eventfd(0, EFD_CLOEXEC);
  if (stop_fd < 0) {
    int e = errno;
    close(fd);
    return throw_errno(env, "eventfd", e);
  }
  sock_t *s = calloc(1, sizeof *s);
  if (!s) {
    close(fd);
    close(stop_fd);
    return throw_errno(env, "calloc", ENOMEM);
  }
  s->fd = fd;
  s->stop_fd = stop_fd;
  napi_value handle;
  if (napi_create_external(env, s, sock_finalize, NULL, &handle) != napi_ok) {
    stop_and_close(s);
    free(s);
    return NULL;
  }
  return handle;
}

static napi_value js_receive(napi_env env, napi_callback_info info) {
  SOCKET_CALL(5);
  if (s->receiving || s->fd < 0) {
    napi_throw_error(env, NULL, "the socket is already receiving or closed");
    return NULL;
  }
  napi_typedarray_type type;
  size_t n;
  void *data;
  if (napi_get_typedarray_info(env, argv[1], &type, &n, &data, NULL, NULL) != napi_ok || type != napi_uint32_array || n % 2) {
    napi_throw_type_error(env, NULL, "filters must be a Uint32Array of id, mask pairs");
    return NULL;
  }
  uint32_t err_mask = 0;
  napi_get_value_uint32(env, argv[2], &err_mask);
  struct can_filter all = {.can_id = 0, .can_mask = 0};
  const struct can_filter *filters = n ? (const struct can_filter *)data : &all;
  socklen_t filters_len = n ? (socklen_t)(n / 2 * sizeof(struct can_filter)) : sizeof all;
  if (setsockopt(s->fd, SOL_CAN_RAW, CAN_RAW_FILTER, filters, filters_len) < 0) return throw_errno(env, "setsockopt(CAN_RAW_FILTER)", errno);
  if (setsockopt(s->fd, SOL_CAN_RAW, CAN_RAW_ERR_FILTER, &err_mask, sizeof err_mask) < 0)
    return throw_errno(env, "setsockopt(CAN_RAW_ERR_FILTER)", errno);
  napi_value resource_name;
  napi_create_string_utf8(env, "vgw-can-receive", NAPI_AUTO_LENGTH, &resource_name);
  if (napi_create_reference(env, argv[4], 1, &s->on_end) != napi_ok) return NULL;
  if (napi_create_reference(env, argv[0], 1, &s->self) != napi_ok) return NULL;
  if (napi_create_threadsafe_function(env, argv[3], NULL, resource_name, 0, 1, NULL, tsfn_finalize, s, deliver, &s->tsfn) != napi_ok)
    return NULL;
  int e = pthread_create(&s->thread, NULL, receive_loop, s);
  if (e) {
    napi_release_threadsafe_function(s->tsfn, napi_tsfn_abort);
    return throw_errno(env, "pthread_create", e);
  }
  /* Named so it can be told apart in top -H, and by vgw record, which lowers the priority of every other thread. */
  pthread_setname_np(s->thread, "vgw-can-rx");
  s->receiving = 1;
  return NULL;
}

static napi_value js_send(napi_env env, napi_callback_info info) {
  SOCKET_CALL(5);
  uint32_t can_id = 0, rtr_dlc = 0;
  int32_t fd_flags = -1;
  napi_get_value_uint32(env, argv[1], &can_id);
  napi_get_value_int32(env, argv[2], &fd_flags);
  napi_typedarray_type type;
  size_t len = 0;
  void *bytes = NULL;
  if (napi_get_typedarray_info(env, argv[3], &type, &len, &bytes, NULL, NULL) != napi_ok || type != napi_uint8_array) {
    napi_throw_type_error(env, NULL, "data must be a Uint8Array");
    return NULL;
  }
  napi_get_value_uint32(env, argv[4], &rtr_dlc);
  struct canfd_frame f;
  memset(&f, 0, sizeof f);
  f.can_id = can_id;
  size_t mtu = CAN_MTU;
  if (fd_flags >= 0) {
    if (len > CANFD_MAX_DLEN) len = CANFD_MAX_DLEN;
    f.flags = (uint8_t)fd_flags | CANFD_FDF;
    mtu = CANFD_MTU;
  } else if (len > CAN_MAX_DLEN)
    len = CAN_MAX_DLEN;
  f.len = (uint8_t)((can_id & CAN_RTR_FLAG) ? (rtr_dlc > CAN_MAX_DLEN ? CAN_MAX_DLEN : rtr_dlc) : len);
  if (len) memcpy(f.data, bytes, len);
  int result = 0;
  if (s->fd < 0) result = EBADF;
  else if (write(s->fd, &f, mtu) != (ssize_t)mtu) result = errno;
  napi_value out;
  napi_create_int32(env, result, &out);
  return out;
}

/* Up to this many frames per sendmmsg(); a longer batch takes several calls. */
#define TX_BATCH 64

static napi_value js_send_batch(napi_env env, napi_callback_info info) {
  SOCKET_CALL(3);
  napi_typedarray_type type;
  size_t len = 0, count = 0;
  void *frames = NULL, *sizes = NULL;
  if (napi_get_typedarray_info(env, argv[1], &type, &len, &frames, NULL, NULL) != napi_ok || type != napi_uint8_array ||
      napi_get_typedarray_info(env, argv[2], &type, &count, &sizes, NULL, NULL) != napi_ok || type != napi_uint8_array ||
      len < count * sizeof(struct canfd_frame)) {
    napi_throw_type_error(env, NULL, "frames must be a Uint8Array of canfd_frame slots, sizes a Uint8Array with one size per slot");
    return NULL;
  }
  struct mmsghdr msgs[TX_BATCH];
  struct iovec iov[TX_BATCH];
  int32_t sent = 0, result = 0;
  if (s->fd < 0) result = -EBADF;
  while (result == 0 && (size_t)sent < count) {
    unsigned n = 0;
    for (; n < TX_BATCH && (size_t)sent + n < count; n++) {
      size_t i = (size_t)sent + n;
      uint8_t size = ((uint8_t *)sizes)[i];
      iov[n].iov_base = (uint8_t *)frames + i * sizeof(struct canfd_frame);
      iov[n].iov_len = size == CANFD_MTU ? CANFD_MTU : CAN_MTU;
      memset(&msgs[n], 0, sizeof msgs[n]);
      msgs[n].msg_hdr.msg_iov = &iov[n];
      msgs[n].msg_hdr.msg_iovlen = 1;
    }
    int r = sendmmsg(s->fd, msgs, n, MSG_DONTWAIT);
    if (r < 0) result = sent ? 1 : -errno; /* the caller retries the rest, frame by frame, and gets the errno then */
    else {
      sent += r;
      if ((unsigned)r < n) result = 1;
    }
  }
  napi_value out;
  napi_create_int32(env, result < 0 ? result : sent, &out);
  return out;
}

static napi_value js_counters(napi_env env, napi_callback_info info) {
  SOCKET_CALL(1);
  napi_value out, k, u;
  napi_create_array_with_length(env, 2, &out);
  /* The kernel's count of frames it dropped for this socket (sk_drops), current also after the last frame received;
     SO_RXQ_OVFL would only report drops that a later received frame carries. */
  uint32_t meminfo[SK_MEMINFO_DROPS + 1] = {0};
  socklen_t len = sizeof meminfo;
  if (s->fd >= 0) getsockopt(s->fd, SOL_SOCKET, SO_MEMINFO, meminfo, &len);
  napi_create_double(env, (double)meminfo[SK_MEMINFO_DROPS], &k);
  napi_create_double(env, (double)atomic_load(&s->user_dropped), &u);
  napi_set_element(env, out, 0, k);
  napi_set_element(env, out, 1, u);
  return out;
}

static napi_value js_receive_buffer(napi_env env, napi_callback_info info) {
  SOCKET_CALL(1);
  int size = 0;
  socklen_t len = sizeof size;
  if (s->fd >= 0) getsockopt(s->fd, SOL_SOCKET, SO_RCVBUF, &size, &len);
  napi_value out;
  /* The kernel reports twice what was set (the other half is its bookkeeping, socket(7)): the size as asked for. */
  napi_create_int32(env, size / 2, &out);
  return out;
}

static napi_value js_close(napi_env env, napi_callback_info info) {
  SOCKET_CALL(1);
  stop_and_close(s);
  return NULL;
}

static napi_value js_strerror(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1], out;
  CHECK(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  int32_t err = 0;
  napi_get_value_int32(env, argv[0], &err);
  napi_create_string_utf8(env, strerror(err), NAPI_AUTO_LENGTH, &out);
  return out;
}

static void set_int(napi_env env, napi_value obj, const char *name, int v) {
  napi_value n;
  napi_create_int32(env, v, &n);
  napi_set_named_property(env, obj, name, n);
}

NAPI_MODULE_INIT() {
  napi_property_descriptor fns[] = {
      {"open", NULL, js_open, NULL, NULL, NULL, napi_default, NULL},
      {"receive", NULL, js_receive, NULL, NULL, NULL, napi_default, NULL},
      {"send", NULL, js_send, NULL, NULL, NULL, napi_default, NULL},
      {"sendBatch", NULL, js_send_batch, NULL, NULL, NULL, napi_default, NULL},
      {"counters", NULL, js_counters, NULL, NULL, NULL, napi_default, NULL},
      {"receiveBuffer", NULL, js_receive_buffer, NULL, NULL, NULL, napi_default, NULL},
      {"close", NULL, js_close, NULL, NULL, NULL, napi_default, NULL},
      {"strerror", NULL, js_strerror, NULL, NULL, NULL, napi_default, NULL},
  };
  napi_define_properties(env, exports, sizeof fns / sizeof fns[0], fns);
  napi_value layout;
  napi_create_object(env, &layout);
  set_int(env, layout, "header", HEADER);
  set_int(env, layout, "ext", F_EXT);
  set_int(env, layout, "rtr", F_RTR);
  set_int(env, layout, "fd", F_FD);
  set_int(env, layout, "brs", F_BRS);
  set_int(env, layout, "esi", F_ESI);
  set_int(env, layout, "err", F_ERR);
  napi_set_named_property(env, exports, "layout", layout);
  return exports;
}
