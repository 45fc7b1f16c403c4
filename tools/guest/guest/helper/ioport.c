/*
 * vfk io-burst <port> <count>: <count> back-to-back outb to an I/O port, then one inb of it.
 * Each outb to a vfio-user device without mmapped regions is a posted write in QEMU's client
 * (hw/vfio-user/device.c): sent without waiting, so a burst fills QEMU's send queue and, when
 * the server offers write_multiple, is coalesced into REGION_WRITE_MULTI messages. The inb is
 * not posted: it comes after every write, so it must read the last value written.
 */
#define _GNU_SOURCE
#include <inttypes.h>
#include <stdio.h>
#include <sys/io.h>

#include "vfk.h"

int cmd_io_burst(int argc, char **argv)
{
	if (argc != 4)
		die("usage: vfk io-burst <port> <count>");
	uint64_t port = num(argv[2]);
	uint64_t count = num(argv[3]);
	if (port > 0xffff || count == 0)
		die("port 0x%" PRIx64 " or count %" PRIu64 " is out of range", port, count);
	if (ioperm((unsigned long)port, 1, 1) != 0)
		die("ioperm(0x%" PRIx64 ") failed (needs root)", port);
	uint8_t last = 0;
	double t0 = seconds();
	for (uint64_t i = 0; i < count; i++) {
		last = (uint8_t)(i * 37 + 11);
		outb(last, (unsigned short)port);
	}
	uint8_t got = inb((unsigned short)port);
	double t = seconds() - t0;
	printf("writes=%" PRIu64 "\nlast=%u\nread=%u\nseconds=%.3f\n", count, last, got, t);
	return got == last ? 0 : 1;
}
