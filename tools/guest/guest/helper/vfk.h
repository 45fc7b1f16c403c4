/* The helper's shared parts: BAR mapping, MMIO accessors, patterns, DMA pages. */
#ifndef VFK_H
#define VFK_H
#include <stdint.h>

struct bar {
	void *map;             /* the mmap of the whole window */
	uint64_t len;          /* its length */
	volatile uint8_t *p;   /* the byte at the offset asked for */
	uint64_t size;         /* the BAR's size (the resource file's) */
};

void die(const char *fmt, ...) __attribute__((noreturn, format(printf, 1, 2)));
uint64_t num(const char *s);
/* Map BARn of device bdf (0000:00:05.0) from offset for length bytes (page-rounded). */
struct bar map_bar(const char *bdf, int index, uint64_t offset, uint64_t length);
uint64_t rd(volatile void *p, int width);
void wr(volatile void *p, int width, uint64_t v);
uint32_t pattern_word(uint32_t seed, uint32_t i);
double seconds(void);
/* A zeroed, locked page of this process and its guest physical address. */
uint64_t dma_page(void **out);

/* Commands in their own files. */
int cmd_gvtg(int argc, char **argv);
int cmd_nvidia(int argc, char **argv);
int cmd_io_burst(int argc, char **argv);
int cmd_i915_exec(int argc, char **argv);
int cmd_i915_hang(int argc, char **argv);

#endif
