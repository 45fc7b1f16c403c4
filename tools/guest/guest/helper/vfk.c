/*
 * vfk: the guest checks' small static helper. It touches a PCI device the way a driver's
 * first steps do, from user space: BARs through the sysfs resourceN files (mmap, so each CPU
 * access is a real MMIO access the VMM either maps or traps), DMA buffers whose guest
 * physical address comes from /proc/self/pagemap. Built with gcc -static at test time.
 *
 *   vfk rd <bdf> <bar> <offset> <1|2|4|8>            print the value read
 *   vfk wr <bdf> <bar> <offset> <1|2|4|8> <value>
 *   vfk fill <bdf> <bar> <offset> <bytes> <seed>      write a pseudo-random pattern (32-bit words)
 *   vfk verify <bdf> <bar> <offset> <bytes> <seed>    check it; print the first differing word
 *   vfk gvtg-pvinfo | gvtg-aperture ...               GVT-g (gvtg.c)
 *   vfk nvidia ...                                    the NVIDIA vGPU (nvidia.c)
 *   vfk io-burst <port> <count>                       back-to-back outb, then inb (ioport.c)
 *   vfk i915-exec <card> <requests>                   stores on every i915 engine (i915.c)
 *   vfk i915-hang <card>                              a refused request, the reset, recovery (i915.c)
 *
 * Output is "key=value" lines; the exit status is 0 on success, 1 on a failed check, 2 on
 * bad usage or a system error (with the reason on stderr).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "vfk.h"

void die(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	fputs("vfk: ", stderr);
	vfprintf(stderr, fmt, ap);
	fputc('\n', stderr);
	va_end(ap);
	exit(2);
}

uint64_t num(const char *s)
{
	char *end;
	errno = 0;
	uint64_t v = strtoull(s, &end, 0);
	if (errno || *end || end == s)
		die("\"%s\" is not a number", s);
	return v;
}

struct bar map_bar(const char *bdf, int index, uint64_t offset, uint64_t length)
{
	char path[256];
	struct stat st;
	struct bar b;
	snprintf(path, sizeof(path), "/sys/bus/pci/devices/%s/resource%d", bdf, index);
	int fd = open(path, O_RDWR | O_SYNC);
	if (fd < 0)
		die("open %s: %s", path, strerror(errno));
	if (fstat(fd, &st) < 0)
		die("stat %s: %s", path, strerror(errno));
	if (offset + length > (uint64_t)st.st_size)
		die("0x%" PRIx64 "+0x%" PRIx64 " is outside BAR%d (0x%" PRIx64 " bytes)", offset, length, index,
		    (uint64_t)st.st_size);
	uint64_t page = offset & ~(uint64_t)4095;
	b.len = (offset - page) + length;
	b.len = (b.len + 4095) & ~(uint64_t)4095;
	b.map = mmap(NULL, b.len, PROT_READ | PROT_WRITE, MAP_SHARED, fd, (off_t)page);
	if (b.map == MAP_FAILED)
		die("mmap %s at 0x%" PRIx64 ": %s", path, page, strerror(errno));
	close(fd);
	b.p = (volatile uint8_t *)b.map + (offset - page);
	b.size = (uint64_t)st.st_size;
	return b;
}

uint64_t rd(volatile void *p, int width)
{
	switch (width) {
	case 1: return *(volatile uint8_t *)p;
	case 2: return *(volatile uint16_t *)p;
	case 4: return *(volatile uint32_t *)p;
	case 8: return *(volatile uint64_t *)p;
	}
	die("width %d is not 1, 2, 4 or 8", width);
	return 0;
}

void wr(volatile void *p, int width, uint64_t v)
{
	switch (width) {
	case 1: *(volatile uint8_t *)p = (uint8_t)v; return;
	case 2: *(volatile uint16_t *)p = (uint16_t)v; return;
	case 4: *(volatile uint32_t *)p = (uint32_t)v; return;
	case 8: *(volatile uint64_t *)p = v; return;
	}
	die("width %d is not 1, 2, 4 or 8", width);
}

uint32_t pattern_word(uint32_t seed, uint32_t i)
{
	/* xorshift32 of seed and index: any word can be checked alone. */
	uint32_t x = seed ^ (i * 0x9e3779b9u) ^ 0xa5a5a5a5u;
	x ^= x << 13;
	x ^= x >> 17;
	x ^= x << 5;
	return x;
}

double seconds(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

uint64_t dma_page(void **out)
{
	void *buf;
	if (posix_memalign(&buf, 4096, 4096))
		die("no memory for a DMA page");
	memset(buf, 0, 4096);
	if (mlock(buf, 4096) < 0)
		die("mlock: %s", strerror(errno));
	int fd = open("/proc/self/pagemap", O_RDONLY);
	if (fd < 0)
		die("open /proc/self/pagemap: %s", strerror(errno));
	uint64_t entry;
	off_t at = (off_t)((uintptr_t)buf / 4096) * 8;
	if (pread(fd, &entry, 8, at) != 8)
		die("read /proc/self/pagemap: %s", strerror(errno));
	close(fd);
	/* pagemap: bit 63 present, bits 0-54 the page frame (0 without CAP_SYS_ADMIN). */
	if (!(entry >> 63) || !(entry & ((1ULL << 55) - 1)))
		die("the DMA page has no page frame in /proc/self/pagemap (not root?)");
	*out = buf;
	return (entry & ((1ULL << 55) - 1)) * 4096;
}

static int cmd_rw(int argc, char **argv, int write)
{
	if (argc != (write ? 7 : 6))
		die("usage: vfk %s <bdf> <bar> <offset> <width>%s", argv[1], write ? " <value>" : "");
	uint64_t off = num(argv[4]);
	int width = (int)num(argv[5]);
	struct bar b = map_bar(argv[2], (int)num(argv[3]), off, (uint64_t)width);
	if (write)
		wr(b.p, width, num(argv[6]));
	else
		printf("0x%0*" PRIx64 "\n", width * 2, rd(b.p, width));
	return 0;
}

static int cmd_pattern(int argc, char **argv, int check)
{
	if (argc != 7)
		die("usage: vfk %s <bdf> <bar> <offset> <bytes> <seed>", argv[1]);
	uint64_t off = num(argv[4]), len = num(argv[5]);
	uint32_t seed = (uint32_t)num(argv[6]);
	if (off % 4 || len % 4)
		die("offset and length must be multiples of 4");
	struct bar b = map_bar(argv[2], (int)num(argv[3]), off, len);
	volatile uint32_t *w = (volatile uint32_t *)b.p;
	double t0 = seconds();
	for (uint64_t i = 0; i < len / 4; i++) {
		if (!check) {
			w[i] = pattern_word(seed, (uint32_t)i);
			continue;
		}
		uint32_t got = w[i], want = pattern_word(seed, (uint32_t)i);
		if (got != want) {
			printf("mismatch_offset=0x%" PRIx64 "\nmismatch_read=0x%08x\nmismatch_expected=0x%08x\n",
			       off + i * 4, got, want);
			return 1;
		}
	}
	double t = seconds() - t0;
	printf("%s_bytes=%" PRIu64 "\n%s_mib_per_s=%.1f\n", check ? "verified" : "written", len,
	       check ? "verified" : "written", t > 0 ? (double)len / t / 1048576.0 : 0.0);
	return 0;
}

int main(int argc, char **argv)
{
	if (argc < 2)
		die("usage: vfk rd|wr|fill|verify|gvtg-pvinfo|gvtg-aperture|nvidia|io-burst ...");
	const char *c = argv[1];
	if (!strcmp(c, "rd"))
		return cmd_rw(argc, argv, 0);
	if (!strcmp(c, "wr"))
		return cmd_rw(argc, argv, 1);
	if (!strcmp(c, "fill"))
		return cmd_pattern(argc, argv, 0);
	if (!strcmp(c, "verify"))
		return cmd_pattern(argc, argv, 1);
	if (!strcmp(c, "gvtg-pvinfo") || !strcmp(c, "gvtg-aperture"))
		return cmd_gvtg(argc, argv);
	if (!strcmp(c, "nvidia"))
		return cmd_nvidia(argc, argv);
	if (!strcmp(c, "io-burst"))
		return cmd_io_burst(argc, argv);
	if (!strcmp(c, "i915-exec"))
		return cmd_i915_exec(argc, argv);
	if (!strcmp(c, "i915-hang"))
		return cmd_i915_hang(argc, argv);
	die("unknown command \"%s\"", c);
	return 2;
}
