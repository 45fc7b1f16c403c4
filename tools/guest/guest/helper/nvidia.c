/*
 * vfk nvidia <bdf> <seed>
 *   The first steps of a driver on a vfiokit NVIDIA vGPU (packages/nvidia-vgpu/src/abi.ts): the
 *   BAR0 identity registers (trapped), the host RPC handshake through the mailbox page of BAR0
 *   (mapped: requests and responses are plain memory, only the doorbell traps), framebuffer
 *   allocation, a pattern through BAR1, a channel whose push buffer (in BAR1) copies and fills
 *   framebuffer memory and releases a semaphore; every byte checked through BAR1.
 */
#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "vfk.h"

/* abi.ts */
#define REG_ID 0x000
#define REG_VERSION 0x004
#define REG_FB_SIZE_LO 0x008
#define REG_FB_SIZE_HI 0x00c
#define REG_INTR_STATUS 0x010
#define REG_INTR_ENABLE 0x014
#define REG_RPC_DOORBELL 0x020
#define REG_RPC_STATUS 0x024
#define REG_TYPE_ID 0x028
#define REG_CHANNEL_BASE 0x100
#define CHANNEL_STRIDE 0x10
#define CH_PUT 0x0
#define CH_GET 0x4
#define CH_STATE 0x8
#define CH_ERROR 0xc
#define MAILBOX_OFFSET 0x1000
#define MAILBOX_RESPONSE 0x800
#define VGPU_MAGIC 0x5047564eu
#define VGPU_INTERFACE_VERSION 0x00010000u
#define INTR_ALL 7u
#define RPC_STATUS_DONE 1u
#define RPC_VERSION_HANDSHAKE 1u
#define RPC_ALLOC_FB 2u
#define RPC_CHANNEL_CREATE 4u
#define RPC_OK 0u
#define METHOD_SEM_RELEASE 0x01u
#define METHOD_MEMSET 0x02u
#define METHOD_COPY 0x03u
#define METHOD_FLAG_AWAKEN 1u
#define METHOD(op, flags) (((uint32_t)(op) << 24) | (flags))

#define BUFFER (16u * 1024u)
#define MEMSET_VALUE 0xfeedf00du
#define SEMAPHORE_VALUE 0x600du

static volatile uint8_t *regs;
static volatile uint32_t *mailbox;
static uint32_t sequence = 1;

static uint32_t reg(uint32_t off) { return (uint32_t)rd(regs + off, 4); }
static void set_reg(uint32_t off, uint32_t v) { wr(regs + off, 4, v); }

/* One RPC: request words into the mapped mailbox, the doorbell, then the mapped response. */
static uint32_t rpc(uint32_t fn, const uint32_t *params, unsigned nparams, uint32_t *out, unsigned nout)
{
	uint32_t seq = sequence++;
	mailbox[0] = fn;
	mailbox[1] = 12 + nparams * 4;
	mailbox[2] = seq;
	for (unsigned i = 0; i < nparams; i++)
		mailbox[3 + i] = params[i];
	set_reg(REG_RPC_DOORBELL, 12 + nparams * 4);
	volatile uint32_t *resp = mailbox + MAILBOX_RESPONSE / 4;
	uint32_t status = reg(REG_RPC_STATUS);
	if (status != RPC_STATUS_DONE)
		printf("rpc_%u_status=%u\n", fn, status);
	if (resp[2] != seq) {
		printf("FAIL: RPC %u answered sequence %u, not %u\n", fn, resp[2], seq);
		return 0xffffffffu;
	}
	for (unsigned i = 0; i < nout; i++)
		out[i] = resp[3 + i];
	set_reg(REG_INTR_STATUS, INTR_ALL);
	return resp[0];
}

int cmd_nvidia(int argc, char **argv)
{
	if (argc != 4)
		die("usage: vfk nvidia <bdf> <seed>");
	const char *bdf = argv[2];
	uint32_t seed = (uint32_t)num(argv[3]);
	struct bar b0 = map_bar(bdf, 0, 0, 0x2000);
	regs = b0.p;
	mailbox = (volatile uint32_t *)(b0.p + MAILBOX_OFFSET);

	uint32_t id = reg(REG_ID), version = reg(REG_VERSION), type = reg(REG_TYPE_ID);
	uint64_t fb = (uint64_t)reg(REG_FB_SIZE_LO) | (uint64_t)reg(REG_FB_SIZE_HI) << 32;
	printf("id=0x%08x\nversion=0x%08x\ntype_id=%u\nfb_bytes=%" PRIu64 "\n", id, version, type, fb);
	if (id != VGPU_MAGIC) {
		printf("FAIL: BAR0 ID reads 0x%08x, not NVGP (0x%08x)\n", id, VGPU_MAGIC);
		return 1;
	}
	/*
	 * Interrupts stay disabled (INTR_ENABLE 0): without a driver nothing would take them, and
	 * QEMU 10.2's vfio-user-pci stops using every BAR mapping at the first INTx and never
	 * re-arms them (it has no x-intx-mmap-timeout-ms; hw/vfio/pci.c vfio_intx_interrupt). The
	 * status bits still latch, and completion is polled.
	 */
	set_reg(REG_INTR_ENABLE, 0);
	uint32_t want = VGPU_INTERFACE_VERSION, host_version = 0;
	uint32_t r = rpc(RPC_VERSION_HANDSHAKE, &want, 1, &host_version, 1);
	printf("handshake_result=%u\nhost_version=0x%08x\n", r, host_version);
	if (r != RPC_OK) {
		printf("FAIL: the version handshake answered %u\n", r);
		return 1;
	}
	uint64_t at[4];
	const uint32_t sizes[4] = { BUFFER, BUFFER, BUFFER, 4096 };
	for (int i = 0; i < 4; i++) {
		uint32_t params[4] = { sizes[i], 0, 0, 0 }, words[2] = { 0, 0 };
		r = rpc(RPC_ALLOC_FB, params, 4, words, 2);
		if (r != RPC_OK) {
			printf("FAIL: framebuffer allocation %d of %u bytes answered %u\n", i, sizes[i], r);
			return 1;
		}
		at[i] = (uint64_t)words[0] | (uint64_t)words[1] << 32;
	}
	uint64_t src = at[0], dst = at[1], fill = at[2], pb = at[3];
	printf("alloc_src=0x%" PRIx64 "\nalloc_dst=0x%" PRIx64 "\nalloc_fill=0x%" PRIx64 "\nalloc_pb=0x%" PRIx64 "\n",
	       src, dst, fill, pb);

	struct bar b1 = map_bar(bdf, 1, 0, pb + 4096);
	volatile uint32_t *fbw = (volatile uint32_t *)b1.p;
	for (unsigned i = 0; i < BUFFER / 4; i++)
		fbw[src / 4 + i] = pattern_word(seed, i);
	uint32_t cparams[3] = { (uint32_t)pb, (uint32_t)(pb >> 32), 4096 }, channel = 0;
	r = rpc(RPC_CHANNEL_CREATE, cparams, 3, &channel, 1);
	if (r != RPC_OK) {
		printf("FAIL: channel creation answered %u\n", r);
		return 1;
	}
	uint64_t semaphore = pb + 2048;
	const uint32_t methods[] = {
		METHOD(METHOD_COPY, 0),     (uint32_t)dst,  (uint32_t)src,      BUFFER,
		METHOD(METHOD_MEMSET, 0),   (uint32_t)fill, BUFFER,             MEMSET_VALUE,
		METHOD(METHOD_SEM_RELEASE, METHOD_FLAG_AWAKEN), (uint32_t)semaphore, SEMAPHORE_VALUE,
	};
	const unsigned nmethods = sizeof(methods) / sizeof(methods[0]);
	for (unsigned i = 0; i < nmethods; i++)
		fbw[pb / 4 + i] = methods[i];
	set_reg(REG_CHANNEL_BASE + channel * CHANNEL_STRIDE + CH_PUT, nmethods * 4);
	double start = seconds();
	while (fbw[semaphore / 4] != SEMAPHORE_VALUE && seconds() - start < 10.0)
		usleep(1000);
	uint32_t get = reg(REG_CHANNEL_BASE + channel * CHANNEL_STRIDE + CH_GET);
	uint32_t state = reg(REG_CHANNEL_BASE + channel * CHANNEL_STRIDE + CH_STATE);
	uint32_t error = reg(REG_CHANNEL_BASE + channel * CHANNEL_STRIDE + CH_ERROR);
	uint32_t intr = reg(REG_INTR_STATUS);
	printf("channel=%u\nch_get=%u\nch_state=%u\nch_error=%u\nintr_status=0x%x\n", channel, get, state, error,
	       intr);
	if (fbw[semaphore / 4] != SEMAPHORE_VALUE) {
		printf("FAIL: the semaphore release never reached BAR1 (channel state %u, error %u)\n", state, error);
		return 1;
	}
	for (unsigned i = 0; i < BUFFER / 4; i++) {
		if (fbw[dst / 4 + i] != pattern_word(seed, i)) {
			printf("FAIL: the copied buffer differs at word %u\n", i);
			return 1;
		}
		if (fbw[fill / 4 + i] != MEMSET_VALUE) {
			printf("FAIL: the memset buffer differs at word %u\n", i);
			return 1;
		}
	}
	set_reg(REG_INTR_STATUS, INTR_ALL);
	printf("copied_bytes=%u\nfilled_bytes=%u\nsemaphore=0x%x\n", BUFFER, BUFFER, SEMAPHORE_VALUE);
	return 0;
}
