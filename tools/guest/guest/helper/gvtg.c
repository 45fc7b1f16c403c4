/*
 * vfk gvtg-pvinfo <bdf>
 *   Read the PVINFO page through BAR0 as i915_detect_vgpu() and intel_vgt_balloon() do
 *   (i915_pvinfo.h: VGT_PVINFO_PAGE 0x78000; magic "VGTvGTvG", version, vgt_id, the
 *   ballooning ranges of mappable and hidden graphics memory, fence count).
 *
 * vfk gvtg-aperture <bdf> <bytes> <seed>
 *   Through the BAR2 mapping at the start of the vGPU's mappable range: write <bytes> of a
 *   pattern and read it back; then make the vGPU read what the guest wrote there and write
 *   where the guest reads: a ring and a batch written through the aperture (GGTT entries
 *   present for their pages) whose MI_STORE_DATA_IMMs carry pattern words into a hidden-GM
 *   page backed by guest RAM, and whose XY_COLOR_BLT fills an aperture page that the guest
 *   then reads through its mapping.
 */
#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "vfk.h"

/* i915_pvinfo.h */
#define VGT_PVINFO_PAGE 0x78000
#define VGT_MAGIC 0x4776544776544776ULL
#define PV_VERSION_MAJOR 0x08
#define PV_VERSION_MINOR 0x0a
#define PV_VGT_ID 0x0c
#define PV_VGT_CAPS 0x10
#define PV_MAPPABLE_BASE 0x40
#define PV_MAPPABLE_SIZE 0x44
#define PV_NONMAPPABLE_BASE 0x48
#define PV_NONMAPPABLE_SIZE 0x4c
#define PV_FENCE_NUM 0x50
/* gvt.h / gtt.c: the GGTT view in BAR0 from 8 MiB, one 8-byte gen8 PTE per 4 KiB page. */
#define GTT_START (8u << 20)
#define GEN8_PAGE_PRESENT ((uint64_t)1)
/* intel_engine_regs.h: the render ring, RENDER_RING_BASE 0x2000. */
#define RING_TAIL 0x2030
#define RING_HEAD 0x2034
#define RING_START 0x2038
#define RING_CTL 0x203c
#define RING_VALID 1u
#define HEAD_ADDR 0x001ffffcu
/* i915_reg.h: GT interrupts, bank 0. */
#define GEN8_MASTER_IRQ 0x44200
#define GEN8_GT_IMR0 0x44304
#define GEN8_GT_IIR0 0x44308
#define GEN8_GT_IER0 0x4430c
#define GT_RENDER_USER_INTERRUPT 1u
/* intel_gpu_commands.h */
#define MI_INSTR(op, flags) (((uint32_t)(op) << 23) | (flags))
#define MI_NOOP MI_INSTR(0x00, 0)
#define MI_USER_INTERRUPT MI_INSTR(0x02, 0)
#define MI_BATCH_BUFFER_END MI_INSTR(0x0a, 0)
#define MI_STORE_DATA_IMM MI_INSTR(0x20, 0)
#define MI_USE_GGTT (1u << 22)
#define MI_BATCH_BUFFER_START_GEN8 MI_INSTR(0x31, 1)
#define XY_COLOR_BLT_CMD ((2u << 29) | (0x50u << 22))
#define BLT_WRITE_ALPHA (1u << 21)
#define BLT_WRITE_RGB (1u << 20)

#define PAGE 4096u
#define STORES 32
#define BLIT_COLOR 0xff2080c0u

struct pvinfo {
	uint64_t magic;
	uint32_t major, minor, id, caps, map_base, map_size, hi_base, hi_size, fences;
};

static struct pvinfo read_pvinfo(volatile uint8_t *mmio)
{
	volatile uint8_t *pv = mmio + VGT_PVINFO_PAGE;
	struct pvinfo p;
	p.magic = (uint64_t)rd(pv, 4) | (uint64_t)rd(pv + 4, 4) << 32;
	p.major = (uint32_t)rd(pv + PV_VERSION_MAJOR, 2);
	p.minor = (uint32_t)rd(pv + PV_VERSION_MINOR, 2);
	p.id = (uint32_t)rd(pv + PV_VGT_ID, 4);
	p.caps = (uint32_t)rd(pv + PV_VGT_CAPS, 4);
	p.map_base = (uint32_t)rd(pv + PV_MAPPABLE_BASE, 4);
	p.map_size = (uint32_t)rd(pv + PV_MAPPABLE_SIZE, 4);
	p.hi_base = (uint32_t)rd(pv + PV_NONMAPPABLE_BASE, 4);
	p.hi_size = (uint32_t)rd(pv + PV_NONMAPPABLE_SIZE, 4);
	p.fences = (uint32_t)rd(pv + PV_FENCE_NUM, 4);
	return p;
}

static int cmd_pvinfo(int argc, char **argv)
{
	if (argc != 3)
		die("usage: vfk gvtg-pvinfo <bdf>");
	struct bar b0 = map_bar(argv[2], 0, VGT_PVINFO_PAGE, PAGE);
	struct pvinfo p = read_pvinfo(b0.p - VGT_PVINFO_PAGE);
	char magic[9];
	memcpy(magic, &p.magic, 8);
	magic[8] = 0;
	printf("magic=0x%016" PRIx64 "\nmagic_text=%s\nversion=%u.%u\nvgt_id=%u\ncaps=0x%x\n", p.magic, magic,
	       p.major, p.minor, p.id, p.caps);
	printf("mappable_base=0x%x\nmappable_size=0x%x\nnonmappable_base=0x%x\nnonmappable_size=0x%x\nfences=%u\n",
	       p.map_base, p.map_size, p.hi_base, p.hi_size, p.fences);
	return p.magic == VGT_MAGIC ? 0 : 1;
}

static void pte(volatile uint8_t *mmio, uint32_t gm, uint64_t gpa)
{
	wr(mmio + GTT_START + (gm / PAGE) * 8, 8, gpa | GEN8_PAGE_PRESENT);
}

static int cmd_aperture(int argc, char **argv)
{
	if (argc != 5)
		die("usage: vfk gvtg-aperture <bdf> <bytes> <seed>");
	const char *bdf = argv[2];
	uint64_t bytes = num(argv[3]);
	uint32_t seed = (uint32_t)num(argv[4]);
	struct bar b0 = map_bar(bdf, 0, 0, 16u << 20);
	volatile uint8_t *mmio = b0.p;
	struct pvinfo p = read_pvinfo(mmio);
	if (p.magic != VGT_MAGIC)
		die("no vGT magic in PVINFO: not a GVT-g vGPU");
	if (bytes < 3 * PAGE || bytes > p.map_size || bytes % PAGE)
		die("%" PRIu64 " bytes do not fit the mappable range of 0x%x bytes in whole pages (3 at least)", bytes,
		    p.map_size);

	/* 1. The guest alone: a pattern through the mapping, read back. */
	struct bar b2 = map_bar(bdf, 2, p.map_base, bytes);
	volatile uint32_t *ap = (volatile uint32_t *)b2.p;
	double t0 = seconds();
	for (uint64_t i = 0; i < bytes / 4; i++)
		ap[i] = pattern_word(seed, (uint32_t)i);
	double t1 = seconds();
	for (uint64_t i = 0; i < bytes / 4; i++)
		if (ap[i] != pattern_word(seed, (uint32_t)i)) {
			printf("FAIL: aperture word at 0x%" PRIx64 " reads 0x%08x, wrote 0x%08x\n", p.map_base + i * 4,
			       ap[i], pattern_word(seed, (uint32_t)i));
			return 1;
		}
	double t2 = seconds();
	printf("aperture_bytes=%" PRIu64 "\naperture_write_mib_s=%.0f\naperture_read_mib_s=%.0f\n", bytes,
	       (double)bytes / 1048576.0 / (t1 - t0), (double)bytes / 1048576.0 / (t2 - t1));

	/* 2. The vGPU reads what the guest wrote and writes where the guest reads. */
	void *host_page[4];
	uint64_t gpa[4];
	for (int i = 0; i < 4; i++)
		gpa[i] = dma_page(&host_page[i]);
	uint32_t ring_gm = p.map_base, batch_gm = p.map_base + PAGE, blit_gm = p.map_base + 2 * PAGE;
	uint32_t store_gm = p.hi_base;
	pte(mmio, ring_gm, gpa[1]);
	pte(mmio, batch_gm, gpa[2]);
	pte(mmio, blit_gm, gpa[3]);
	pte(mmio, store_gm, gpa[0]);
	uint64_t back = rd(mmio + GTT_START + (store_gm / PAGE) * 8, 8);
	if (back != (gpa[0] | GEN8_PAGE_PRESENT)) {
		printf("FAIL: the GGTT entry for GM 0x%x reads 0x%" PRIx64 ", wrote 0x%" PRIx64 "\n", store_gm, back,
		       gpa[0] | GEN8_PAGE_PRESENT);
		return 1;
	}
	volatile uint32_t *ring = ap, *batch = ap + PAGE / 4, *blit = ap + 2 * PAGE / 4;
	for (unsigned i = 0; i < PAGE / 4; i++)
		blit[i] = 0;
	unsigned n = 0;
	for (unsigned i = 0; i < STORES; i++) {
		batch[n++] = MI_STORE_DATA_IMM | MI_USE_GGTT | (4 - 2);
		batch[n++] = store_gm + 4 * i;
		batch[n++] = 0;
		batch[n++] = pattern_word(seed ^ 0x5a5a, i);
	}
	/* 256 x 4 pixels of 32 bpp at a 1024-byte pitch: exactly the blit page. */
	batch[n++] = XY_COLOR_BLT_CMD | BLT_WRITE_ALPHA | BLT_WRITE_RGB | (7 - 2);
	batch[n++] = (3u << 24) | (0xf0u << 16) | 1024u;
	batch[n++] = 0;
	batch[n++] = (4u << 16) | 256u;
	batch[n++] = blit_gm;
	batch[n++] = 0;
	batch[n++] = BLIT_COLOR;
	batch[n++] = MI_USER_INTERRUPT;
	batch[n++] = MI_BATCH_BUFFER_END;
	ring[0] = MI_BATCH_BUFFER_START_GEN8;
	ring[1] = batch_gm;
	ring[2] = 0;
	ring[3] = MI_NOOP;

	wr(mmio + GEN8_GT_IMR0, 4, ~GT_RENDER_USER_INTERRUPT);
	wr(mmio + GEN8_GT_IER0, 4, GT_RENDER_USER_INTERRUPT);
	wr(mmio + GEN8_GT_IIR0, 4, 0xffffffffu);
	wr(mmio + RING_CTL, 4, 0);
	wr(mmio + RING_HEAD, 4, 0);
	wr(mmio + RING_START, 4, ring_gm);
	wr(mmio + RING_CTL, 4, RING_VALID);
	wr(mmio + RING_TAIL, 4, 16);

	volatile uint32_t *stored = host_page[0];
	double start = seconds();
	unsigned ok = 0;
	while (seconds() - start < 10.0) {
		ok = 0;
		for (unsigned i = 0; i < STORES; i++)
			ok += stored[i] == pattern_word(seed ^ 0x5a5a, i);
		if (ok == STORES && (rd(mmio + GEN8_GT_IIR0, 4) & GT_RENDER_USER_INTERRUPT))
			break;
		usleep(2000);
	}
	uint32_t iir = (uint32_t)rd(mmio + GEN8_GT_IIR0, 4);
	uint32_t head = (uint32_t)rd(mmio + RING_HEAD, 4) & HEAD_ADDR;
	printf("ring_head=%u\niir=0x%x\nstores_landed=%u\n", head, iir, ok);
	if (ok != STORES) {
		printf("FAIL: %u of %d dwords the guest wrote into the aperture batch reached guest RAM through "
		       "the vGPU (RING_HEAD %u, IIR 0x%x)\n",
		       ok, STORES, head, iir);
		return 1;
	}
	if (!(iir & GT_RENDER_USER_INTERRUPT)) {
		printf("FAIL: the batch ran but MI_USER_INTERRUPT did not latch in GT IIR\n");
		return 1;
	}
	for (unsigned i = 0; i < PAGE / 4; i++)
		if (blit[i] != BLIT_COLOR) {
			printf("FAIL: aperture word %u of the blit page reads 0x%08x, not the blit colour 0x%08x\n", i,
			       blit[i], BLIT_COLOR);
			return 1;
		}
	wr(mmio + GEN8_GT_IIR0, 4, iir);
	printf("gpu_read_aperture=%d dwords of a batch written through the aperture\n", STORES);
	printf("gpu_wrote_aperture=%u bytes blitted, read through the aperture\n", PAGE);
	return 0;
}

int cmd_gvtg(int argc, char **argv)
{
	if (!strcmp(argv[1], "gvtg-pvinfo"))
		return cmd_pvinfo(argc, argv);
	return cmd_aperture(argc, argv);
}
