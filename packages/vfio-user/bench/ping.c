/*
 * The floor of the vfio-user benchmarks: the least a request/response over a UNIX socket can
 * cost on this machine, with the message sizes of a 4-byte REGION_READ (a 32-byte request, a
 * 36-byte reply). Compiled by the bench with the machine's cc; nothing else is built from it.
 *
 *   ping serve <socket> [poll-us]
 *       A minimal vfio-user device: answers VERSION, DEVICE_GET_INFO, DEVICE_GET_REGION_INFO,
 *       DEVICE_GET_IRQ_INFO, REGION_READ and REGION_WRITE (256 bytes of config space, a 4 KiB
 *       BAR 0 of plain memory), acknowledges SET_IRQS, DEVICE_RESET and DMA_MAP/UNMAP, refuses
 *       the rest with ENOSYS. One connection at a time, until killed. It is the bare floor when
 *       the C client below talks to it, and the served device when a TypeScript client does.
 *       With poll-us, before each blocking read of a request it polls (poll(2), no timeout) for
 *       that long, unless it may run on one CPU only: the way our TypeScript server waits in
 *       place (native/poll.c), in C, so that what the polling itself gains can be told apart.
 *
 *   ping client <socket> <requests> <warmup> [region [offset]]
 *       Negotiates VERSION, then sends <warmup> and then <requests> 4-byte REGION_READs one
 *       after another, timing each of the latter with CLOCK_MONOTONIC, and prints one JSON line:
 *       {"requests":n,"medianNs":..,"p99Ns":..,"worstNs":..,"meanNs":..}.
 *
 *   ping multi <socket> <requests> <warmup> <writes>
 *       The same, but each timed request is a batch as QEMU posts it: one REGION_WRITE_MULTI of
 *       <writes> 4-byte writes to BAR 0 (No_reply set), then a 4-byte config REGION_READ whose
 *       reply says the batch was applied. The device answers REGION_WRITE_MULTI and offers
 *       "write_multiple" in its VERSION reply.
 *
 * Layouts: QEMU docs/interop/vfio-user.rst (header, VERSION, REGION_READ) and linux/vfio.h
 * (vfio_device_info, vfio_region_info, vfio_irq_info).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <poll.h>
#include <sched.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

enum {
	CMD_VERSION = 1,
	CMD_DMA_MAP = 2,
	CMD_DMA_UNMAP = 3,
	CMD_DEVICE_GET_INFO = 4,
	CMD_DEVICE_GET_REGION_INFO = 5,
	CMD_DEVICE_GET_IRQ_INFO = 7,
	CMD_DEVICE_SET_IRQS = 8,
	CMD_REGION_READ = 9,
	CMD_REGION_WRITE = 10,
	CMD_DEVICE_RESET = 13,
	CMD_REGION_WRITE_MULTI = 15,
};

#define HEADER_SIZE 16
#define F_TYPE_REPLY 1u
#define F_NO_REPLY (1u << 4)
#define F_ERROR (1u << 5)
#define RW_SIZE 16 /* offset u64, region u32, count u32 */
/* REGION_WRITE_MULTI (QEMU hw/vfio-user/protocol.h): wr_cnt u64, then VFIO_USER_MULTI_MAX
 * entries at most of {offset u64, region u32, count u32, data[VFIO_USER_MULTI_DATA = 8]}. */
#define MULTI_HEADER 8
#define MULTI_ENTRY 24
#define MULTI_DATA 8
#define MULTI_MAX 200
#define MAX_MSG (1u << 20)

#define CONFIG_REGION 7 /* VFIO_PCI_CONFIG_REGION_INDEX */
#define NUM_REGIONS 9	/* VFIO_PCI_NUM_REGIONS without the VGA region's successors */
#define NUM_IRQS 5	/* VFIO_PCI_NUM_IRQS */

struct header {
	uint16_t msg_id;
	uint16_t command;
	uint32_t msg_size;
	uint32_t flags;
	uint32_t error;
};

static void die(const char *what)
{
	fprintf(stderr, "ping: %s: %s\n", what, strerror(errno));
	exit(1);
}

static int read_full(int fd, void *buf, size_t n)
{
	uint8_t *p = buf;
	while (n > 0) {
		ssize_t r = read(fd, p, n);
		if (r == 0)
			return 0;
		if (r < 0) {
			if (errno == EINTR)
				continue;
			return -1;
		}
		p += r;
		n -= (size_t)r;
	}
	return 1;
}

static int write_full(int fd, const void *buf, size_t n)
{
	const uint8_t *p = buf;
	while (n > 0) {
		ssize_t r = write(fd, p, n);
		if (r < 0) {
			if (errno == EINTR)
				continue;
			return -1;
		}
		p += r;
		n -= (size_t)r;
	}
	return 0;
}

static void put32(uint8_t *p, uint32_t v) { memcpy(p, &v, 4); }
static void put64(uint8_t *p, uint64_t v) { memcpy(p, &v, 8); }
static uint32_t get32(const uint8_t *p) { uint32_t v; memcpy(&v, p, 4); return v; }
static uint64_t get64(const uint8_t *p) { uint64_t v; memcpy(&v, p, 8); return v; }

static struct sockaddr_un address_of(const char *path)
{
	struct sockaddr_un sa;
	memset(&sa, 0, sizeof sa);
	sa.sun_family = AF_UNIX;
	if (strlen(path) >= sizeof sa.sun_path) {
		fprintf(stderr, "ping: socket path too long: %s\n", path);
		exit(2);
	}
	strcpy(sa.sun_path, path);
	return sa;
}

/* ---- the device ------------------------------------------------------------------------------ */

static uint8_t config[256];
static uint8_t bar0[4096];
static uint8_t in[MAX_MSG + HEADER_SIZE];
static uint8_t out[MAX_MSG + HEADER_SIZE];

static uint8_t *region_bytes(uint32_t region, uint32_t *size)
{
	if (region == CONFIG_REGION) {
		*size = sizeof config;
		return config;
	}
	if (region == 0) {
		*size = sizeof bar0;
		return bar0;
	}
	*size = 0;
	return NULL;
}

/* Reply to the message in `in`; returns the reply's size (0: none). */
static size_t answer(const struct header *h, const uint8_t *payload, uint32_t len)
{
	struct header *r = (struct header *)out;
	uint8_t *p = out + HEADER_SIZE;
	uint32_t n = 0;
	uint32_t error = 0;
	uint32_t size;
	uint8_t *bytes;

	switch (h->command) {
	case CMD_VERSION: {
		static const char json[] = "{\"capabilities\":{\"max_msg_fds\":8,\"max_data_xfer_size\":1048576,\"write_multiple\":true}}";
		p[0] = 0; p[1] = 0; /* major 0 */
		p[2] = 2; p[3] = 0; /* minor 2 */
		memcpy(p + 4, json, sizeof json); /* with its NUL */
		n = 4 + sizeof json;
		break;
	}
	case CMD_DEVICE_GET_INFO:
		put32(p, 16);
		put32(p + 4, (1u << 0) | (1u << 1)); /* VFIO_DEVICE_FLAGS_RESET | VFIO_DEVICE_FLAGS_PCI */
		put32(p + 8, NUM_REGIONS);
		put32(p + 12, NUM_IRQS);
		n = 16;
		break;
	case CMD_DEVICE_GET_REGION_INFO: {
		uint32_t index = len >= 12 ? get32(payload + 8) : ~0u;
		if (index >= NUM_REGIONS) {
			error = EINVAL;
			break;
		}
		bytes = region_bytes(index, &size);
		memset(p, 0, 32);
		put32(p, 32);
		put32(p + 4, bytes ? 3u : 0u); /* VFIO_REGION_INFO_FLAG_READ | _WRITE */
		put32(p + 8, index);
		put64(p + 16, size);
		put64(p + 24, (uint64_t)index << 40);
		n = 32;
		break;
	}
	case CMD_DEVICE_GET_IRQ_INFO: {
		uint32_t index = len >= 12 ? get32(payload + 8) : ~0u;
		if (index >= NUM_IRQS) {
			error = EINVAL;
			break;
		}
		put32(p, 16);
		put32(p + 4, index == 0 ? 0xdu : 0x1u); /* EVENTFD (| MASKABLE | AUTOMASKED for INTx) */
		put32(p + 8, index);
		put32(p + 12, index == 0 ? 1 : 0);
		n = 16;
		break;
	}
	case CMD_REGION_READ:
	case CMD_REGION_WRITE: {
		if (len < RW_SIZE) {
			error = EINVAL;
			break;
		}
		uint64_t offset = get64(payload);
		uint32_t region = get32(payload + 8);
		uint32_t count = get32(payload + 12);
		bytes = region_bytes(region, &size);
		if (!bytes || offset > size || count > size - offset ||
		    (h->command == CMD_REGION_WRITE && len != RW_SIZE + count)) {
			error = EINVAL;
			break;
		}
		memcpy(p, payload, RW_SIZE);
		n = RW_SIZE;
		if (h->command == CMD_REGION_READ) {
			memcpy(p + RW_SIZE, bytes + offset, count);
			n += count;
		} else {
			memcpy(bytes + offset, payload + RW_SIZE, count);
		}
		break;
	}
	case CMD_REGION_WRITE_MULTI: {
		uint64_t count = len >= MULTI_HEADER ? get64(payload) : 0;
		if (count < 1 || count > MULTI_MAX || len != MULTI_HEADER + count * MULTI_ENTRY) {
			error = EINVAL;
			break;
		}
		for (uint64_t i = 0; i < count && !error; i++) {
			const uint8_t *e = payload + MULTI_HEADER + i * MULTI_ENTRY;
			uint64_t offset = get64(e);
			uint32_t n = get32(e + 12);
			bytes = region_bytes(get32(e + 8), &size);
			if (!bytes || n > MULTI_DATA || offset > size || n > size - offset)
				error = EINVAL;
			else
				memcpy(bytes + offset, e + 16, n);
		}
		break;
	}
	case CMD_DEVICE_SET_IRQS:
	case CMD_DEVICE_RESET:
	case CMD_DMA_MAP:
	case CMD_DMA_UNMAP:
		break;
	default:
		error = ENOSYS;
	}
	if (h->flags & F_NO_REPLY)
		return 0;
	r->msg_id = h->msg_id;
	r->command = h->command;
	r->flags = F_TYPE_REPLY | (error ? F_ERROR : 0);
	r->error = error;
	if (error)
		n = 0;
	r->msg_size = HEADER_SIZE + n;
	return HEADER_SIZE + n;
}

/* serve's poll-us, in ns. */
static uint64_t poll_ns;

static uint64_t now_ns(void)
{
	struct timespec t;
	clock_gettime(CLOCK_MONOTONIC, &t);
	return (uint64_t)t.tv_sec * 1000000000u + (uint64_t)t.tv_nsec;
}

/* Poll for fd to become readable for up to poll_ns; the blocking read after does the rest. */
static void poll_readable(int fd)
{
	struct pollfd pfd = {.fd = fd, .events = POLLIN};
	uint64_t until = now_ns() + poll_ns;
	while (poll(&pfd, 1, 0) == 0 && now_ns() < until)
		;
}

static void serve_connection(int fd)
{
	cpu_set_t cpus;
	int polling = poll_ns > 0 && sched_getaffinity(0, sizeof cpus, &cpus) == 0 && CPU_COUNT(&cpus) > 1;
	for (;;) {
		struct header h;
		if (polling)
			poll_readable(fd);
		if (read_full(fd, in, HEADER_SIZE) <= 0)
			return;
		memcpy(&h, in, HEADER_SIZE);
		if (h.msg_size < HEADER_SIZE || h.msg_size > sizeof in)
			return;
		uint32_t len = h.msg_size - HEADER_SIZE;
		if (len > 0 && read_full(fd, in + HEADER_SIZE, len) <= 0)
			return;
		size_t n = answer(&h, in + HEADER_SIZE, len);
		if (n > 0 && write_full(fd, out, n) < 0)
			return;
	}
}

static _Noreturn void serve(const char *path)
{
	struct sockaddr_un sa = address_of(path);
	int s = socket(AF_UNIX, SOCK_STREAM, 0);
	if (s < 0)
		die("socket");
	unlink(path);
	if (bind(s, (struct sockaddr *)&sa, sizeof sa) < 0)
		die("bind");
	if (listen(s, 4) < 0)
		die("listen");
	/* vendor 0x1af4, device 0x10f0, class 0xff0000, as the TypeScript bench device */
	config[0] = 0xf4; config[1] = 0x1a; config[2] = 0xf0; config[3] = 0x10;
	config[8] = 1; config[11] = 0xff;
	printf("ready\n");
	fflush(stdout);
	for (;;) {
		int c = accept(s, NULL, NULL);
		if (c < 0) {
			if (errno == EINTR)
				continue;
			die("accept");
		}
		serve_connection(c);
		close(c);
	}
}

/* ---- the client ------------------------------------------------------------------------------ */

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
	return x < y ? -1 : x > y;
}

/* One request and its whole reply; the reply's header is checked. */
static void round_trip(int fd, const uint8_t *req, size_t req_len, uint16_t id, size_t reply_len)
{
	if (write_full(fd, req, req_len) < 0)
		die("write");
	if (read_full(fd, in, HEADER_SIZE) <= 0)
		die("read reply header");
	struct header h;
	memcpy(&h, in, HEADER_SIZE);
	if (h.msg_id != id || (h.flags & F_ERROR) || h.msg_size < HEADER_SIZE || h.msg_size > sizeof in) {
		fprintf(stderr, "ping: bad reply to message %u: id %u flags 0x%x error %u size %u\n", id,
			h.msg_id, h.flags, h.error, h.msg_size);
		exit(1);
	}
	if (h.msg_size > HEADER_SIZE && read_full(fd, in + HEADER_SIZE, h.msg_size - HEADER_SIZE) <= 0)
		die("read reply");
	if (reply_len && h.msg_size != reply_len) {
		fprintf(stderr, "ping: reply of %u bytes, %zu expected\n", h.msg_size, reply_len);
		exit(1);
	}
}

static int client(const char *path, long requests, long warmup, uint32_t region, uint64_t offset,
		  uint32_t writes)
{
	struct sockaddr_un sa = address_of(path);
	int fd = socket(AF_UNIX, SOCK_STREAM, 0);
	if (fd < 0)
		die("socket");
	if (connect(fd, (struct sockaddr *)&sa, sizeof sa) < 0)
		die("connect");

	static const char json[] = "{\"capabilities\":{\"max_msg_fds\":8}}";
	uint8_t version[HEADER_SIZE + 4 + sizeof json];
	struct header vh = { 0, CMD_VERSION, sizeof version, 0, 0 };
	memcpy(version, &vh, HEADER_SIZE);
	version[16] = 0; version[17] = 0; version[18] = 2; version[19] = 0;
	memcpy(version + 20, json, sizeof json);
	round_trip(fd, version, sizeof version, 0, 0);

	uint8_t req[HEADER_SIZE + RW_SIZE];
	struct header rh = { 0, CMD_REGION_READ, sizeof req, 0, 0 };
	memset(req + HEADER_SIZE, 0, RW_SIZE);
	put64(req + HEADER_SIZE, offset);
	put32(req + HEADER_SIZE + 8, region);
	put32(req + HEADER_SIZE + 12, 4);
	/* The batch: `writes` 4-byte writes to BAR 0, one after another, posted (No_reply). */
	static uint8_t multi[HEADER_SIZE + MULTI_HEADER + MULTI_MAX * MULTI_ENTRY];
	size_t multi_len = HEADER_SIZE + MULTI_HEADER + (size_t)writes * MULTI_ENTRY;
	struct header mh = { 0, CMD_REGION_WRITE_MULTI, (uint32_t)multi_len, F_NO_REPLY, 0 };
	memset(multi, 0, sizeof multi);
	put64(multi + HEADER_SIZE, writes);
	for (uint32_t i = 0; i < writes; i++) {
		uint8_t *e = multi + HEADER_SIZE + MULTI_HEADER + i * MULTI_ENTRY;
		put64(e, (uint64_t)(i * 4) % sizeof bar0);
		put32(e + 8, 0);
		put32(e + 12, 4);
		put32(e + 16, i);
	}
	if (writes > 0) {
		/* COMMAND.MEMORY on (config offset 4), as a guest driver has it before it writes BAR 0. */
		uint8_t on[HEADER_SIZE + RW_SIZE + 2];
		struct header wh = { 0xffff, CMD_REGION_WRITE, sizeof on, 0, 0 };
		memcpy(on, &wh, HEADER_SIZE);
		memset(on + HEADER_SIZE, 0, RW_SIZE + 2);
		put64(on + HEADER_SIZE, 4);
		put32(on + HEADER_SIZE + 8, CONFIG_REGION);
		put32(on + HEADER_SIZE + 12, 2);
		on[HEADER_SIZE + RW_SIZE] = 2; /* PCI_COMMAND_MEMORY */
		round_trip(fd, on, sizeof on, 0xffff, HEADER_SIZE + RW_SIZE);
	}
	uint64_t *lat = malloc(sizeof(uint64_t) * (size_t)requests);
	if (!lat)
		die("malloc");
	/* VFIOKIT_BENCH_SLOW_NS: the start (CLOCK_MONOTONIC) and length of each timed request slower
	 * than that many ns go to stderr after the run, to lay beside a trace of the same clock. */
	const char *slow_env = getenv("VFIOKIT_BENCH_SLOW_NS");
	uint64_t slow_ns = slow_env ? strtoull(slow_env, NULL, 10) : 0;
	enum { SLOW_MAX = 4096 };
	static uint64_t slow_at[SLOW_MAX], slow_len[SLOW_MAX];
	static long slow_index[SLOW_MAX];
	long slow = 0;
	uint64_t timed_from = 0;
	uint16_t id = 1;
	for (long i = 0; i < warmup + requests; i++, id++) {
		uint64_t t0 = now_ns();
		if (i == warmup)
			timed_from = t0;
		if (writes > 0) {
			mh.msg_id = id++;
			memcpy(multi, &mh, HEADER_SIZE);
			if (write_full(fd, multi, multi_len) < 0)
				die("write");
		}
		rh.msg_id = id;
		memcpy(req, &rh, HEADER_SIZE);
		round_trip(fd, req, sizeof req, id, HEADER_SIZE + RW_SIZE + 4);
		uint64_t t1 = now_ns();
		if (i >= warmup) {
			lat[i - warmup] = t1 - t0;
			if (slow_ns && t1 - t0 > slow_ns && slow < SLOW_MAX) {
				slow_index[slow] = i - warmup;
				slow_at[slow] = t0;
				slow_len[slow++] = t1 - t0;
			}
		}
	}
	if (slow_ns)
		fprintf(stderr, "timed %llu %llu\n", (unsigned long long)timed_from, (unsigned long long)now_ns());
	for (long k = 0; k < slow; k++)
		fprintf(stderr, "slow %ld %llu %llu\n", slow_index[k], (unsigned long long)slow_at[k],
			(unsigned long long)slow_len[k]);
	if (writes > 0) {
		/* Every batch was applied: the last write of the last batch reads back. */
		uint32_t last = writes - 1;
		rh.msg_id = id;
		memcpy(req, &rh, HEADER_SIZE);
		put64(req + HEADER_SIZE, (uint64_t)(last * 4) % sizeof bar0);
		put32(req + HEADER_SIZE + 8, 0);
		round_trip(fd, req, sizeof req, id, HEADER_SIZE + RW_SIZE + 4);
		if (get32(in + HEADER_SIZE + RW_SIZE) != last) {
			fprintf(stderr, "ping: BAR 0 reads 0x%x after the batches, 0x%x expected\n",
				get32(in + HEADER_SIZE + RW_SIZE), last);
			exit(1);
		}
	}
	close(fd);
	double sum = 0;
	for (long i = 0; i < requests; i++)
		sum += (double)lat[i];
	qsort(lat, (size_t)requests, sizeof lat[0], cmp_u64);
	/* nearest-rank percentiles */
	long p50 = (requests + 1) / 2 - 1;
	long p99 = (requests * 99 + 99) / 100 - 1;
	printf("{\"requests\":%ld,\"medianNs\":%llu,\"p99Ns\":%llu,\"worstNs\":%llu,\"meanNs\":%.1f}\n",
	       requests, (unsigned long long)lat[p50], (unsigned long long)lat[p99],
	       (unsigned long long)lat[requests - 1], sum / (double)requests);
	free(lat);
	return 0;
}

int main(int argc, char **argv)
{
	if ((argc == 3 || argc == 4) && strcmp(argv[1], "serve") == 0) {
		long us = argc == 4 ? atol(argv[3]) : 0;
		if (us < 0 || us > 1000000) {
			fprintf(stderr, "ping: poll-us must be 0 to 1000000\n");
			return 2;
		}
		poll_ns = (uint64_t)us * 1000u;
		serve(argv[2]);
	}
	if (argc >= 5 && argc <= 7 && strcmp(argv[1], "client") == 0) {
		long requests = atol(argv[3]);
		long warmup = atol(argv[4]);
		uint32_t region = argc > 5 ? (uint32_t)strtoul(argv[5], NULL, 0) : CONFIG_REGION;
		uint64_t offset = argc > 6 ? strtoull(argv[6], NULL, 0) : 0;
		if (requests < 1 || warmup < 0) {
			fprintf(stderr, "ping: requests must be at least 1, warmup at least 0\n");
			return 2;
		}
		return client(argv[2], requests, warmup, region, offset, 0);
	}
	if (argc == 6 && strcmp(argv[1], "multi") == 0) {
		long requests = atol(argv[3]);
		long warmup = atol(argv[4]);
		long writes = atol(argv[5]);
		if (requests < 1 || warmup < 0 || writes < 1 || writes > MULTI_MAX) {
			fprintf(stderr, "ping: requests must be at least 1, warmup at least 0, writes 1 to %d\n",
				MULTI_MAX);
			return 2;
		}
		return client(argv[2], requests, warmup, CONFIG_REGION, 0, (uint32_t)writes);
	}
	fprintf(stderr, "usage: ping serve <socket> [poll-us]\n"
			"       ping client <socket> <requests> <warmup> [region [offset]]\n"
			"       ping multi <socket> <requests> <warmup> <writes>\n");
	return 2;
}
