/*
 * vfk i915-exec <card> <requests>: real work on every engine i915 exposes, the way
 * intel-gpu-tools' gem_exec_store does it, through the DRM uapi alone.
 *
 * The engines come from DRM_IOCTL_I915_QUERY (DRM_I915_QUERY_ENGINE_INFO); two contexts map
 * them all (I915_CONTEXT_PARAM_ENGINES), so execbuf's ring selector is the engine's index, and
 * each context has its own PPGTT. On each engine each context gets a data object of one page
 * and a batch object holding <requests> batches of 64 bytes. Request k runs in context
 * LANE(k) (pairs alternate: 0 1 in the first, 2 3 in the second...), one
 * DRM_IOCTL_I915_GEM_EXECBUFFER2 starting at batch k, which stores the distinct value
 * VALUE(engine, k) into dword k of that context's data object with the gen8 form of
 * MI_STORE_DWORD_IMM (64-bit address, filled in by a relocation) and ends with
 * MI_BATCH_BUFFER_END; dword k of the other context's object must stay 0. Every odd request
 * first jumps with MI_BATCH_BUFFER_START to the second half of its 64 bytes (a chained batch,
 * its address relocated too) — unless i915 refuses the chain with EINVAL: on gen9 it parses
 * blitter batches itself (i915_cmd_parser.c), and allows MI_BATCH_BUFFER_START only back to a
 * command already executed; that engine's odd requests then start at the store half directly,
 * and its line says chain_refused=EINVAL.
 *
 * The first request of each context on each engine goes first and binds the objects (its
 * relocations are applied); once it is done the batches are rewritten with the addresses
 * execbuf reported, so the other requests' relocations hold already. Those are interleaved over
 * the engines, so the engines run at once and each engine's two contexts queue behind each
 * other; then each data object is waited for (DRM_IOCTL_I915_GEM_WAIT, bounded) and read back
 * (DRM_IOCTL_I915_GEM_PREAD).
 *
 * Output, one line per engine:
 *   engine=<i> class=<c> instance=<n> name=<rcs0...> requests=<N> chained=<M> correct=<K> wait_ms=<t>
 *   contexts=2 stray=<S> [chain_refused=EINVAL] [timed_out=1]
 * and a first_bad line naming the first wrong dword of an engine that has one. Exit 1 when
 * any value is wrong or a wait timed out, 2 on a refused ioctl (with errno on stderr).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include <linux/sync_file.h>

#include <i915_drm.h>

#include "vfk.h"

/* Gen8+ commands (intel-gpu-tools lib/intel_reg.h, the kernel's intel_gpu_commands.h). */
#define MI_STORE_DWORD_IMM_GEN8 ((0x20u << 23) | 2) /* 4 dwords: address lo, hi, value */
#define MI_BATCH_BUFFER_START_GEN8 ((0x31u << 23) | 1) /* 3 dwords */
#define MI_BATCH_PPGTT (1u << 8) /* the address is in the context's PPGTT */
#define MI_BATCH_BUFFER_END (0x0au << 23)
#define MI_NOOP 0u

#define SLOT 64 /* bytes per request's batch */
#define CHAIN_AT 32 /* where a chained request's second batch starts in its slot */
#define MAX_ENGINES 16
#define MAX_REQUESTS 1024 /* dwords of the one-page data object */
#define CONTEXTS 2
#define WAIT_NS (20ll * 1000 * 1000 * 1000)

static const char *const class_names[] = { "rcs", "bcs", "vcs", "vecs", "ccs" };

static uint32_t value_of(int engine, int k)
{
	return 0x5a000000u | ((uint32_t)engine << 16) | (uint32_t)k;
}

static void xioctl(int fd, unsigned long req, void *arg, const char *what)
{
	int r;
	do
		r = ioctl(fd, req, arg);
	while (r < 0 && (errno == EINTR || errno == EAGAIN));
	if (r < 0)
		die("%s: %s", what, strerror(errno));
}

static uint32_t gem_create(int fd, uint64_t size)
{
	struct drm_i915_gem_create c = { .size = size };
	xioctl(fd, DRM_IOCTL_I915_GEM_CREATE, &c, "DRM_IOCTL_I915_GEM_CREATE");
	return c.handle;
}

static void gem_rw(int fd, uint32_t handle, void *data, uint64_t size, int write)
{
	if (write) {
		struct drm_i915_gem_pwrite p = { .handle = handle, .size = size, .data_ptr = (uintptr_t)data };
		xioctl(fd, DRM_IOCTL_I915_GEM_PWRITE, &p, "DRM_IOCTL_I915_GEM_PWRITE");
	} else {
		struct drm_i915_gem_pread p = { .handle = handle, .size = size, .data_ptr = (uintptr_t)data };
		xioctl(fd, DRM_IOCTL_I915_GEM_PREAD, &p, "DRM_IOCTL_I915_GEM_PREAD");
	}
}

/* What one context uses on one engine: its own objects, at addresses of its own PPGTT. */
struct lane {
	uint32_t data, batch;
	uint64_t data_offset, batch_offset; /* GPU addresses, as execbuf last reported them */
	uint64_t written_data, written_batch; /* the addresses the batches hold */
};

struct engine {
	struct i915_engine_class_instance ci;
	char name[16];
	struct lane lane[CONTEXTS];
	int chained;
	int chain_refused; /* i915 refused a chained batch on this engine (errno) */
};

/* Request k runs in context LANE(k): pairs of requests alternate, so a pair is one plain, one chained. */
#define LANE(k) (((k) >> 1) & 1)

/* The engines i915 reports, in its order. */
static int query_engines(int fd, struct engine *out)
{
	struct drm_i915_query_item item = { .query_id = DRM_I915_QUERY_ENGINE_INFO };
	struct drm_i915_query q = { .num_items = 1, .items_ptr = (uintptr_t)&item };
	xioctl(fd, DRM_IOCTL_I915_QUERY, &q, "DRM_IOCTL_I915_QUERY (size)");
	if (item.length <= 0)
		die("DRM_I915_QUERY_ENGINE_INFO: %s", strerror(-item.length));
	struct drm_i915_query_engine_info *info = calloc(1, (size_t)item.length);
	if (!info)
		die("out of memory");
	item.data_ptr = (uintptr_t)info;
	xioctl(fd, DRM_IOCTL_I915_QUERY, &q, "DRM_IOCTL_I915_QUERY (engines)");
	if (item.length <= 0)
		die("DRM_I915_QUERY_ENGINE_INFO: %s", strerror(-item.length));
	int n = 0;
	for (uint32_t i = 0; i < info->num_engines && n < MAX_ENGINES; i++) {
		struct i915_engine_class_instance ci = info->engines[i].engine;
		out[n].ci = ci;
		snprintf(out[n].name, sizeof(out[n].name), "%s%u",
			 ci.engine_class < 5 ? class_names[ci.engine_class] : "engine", ci.engine_instance);
		n++;
	}
	free(info);
	return n;
}

/* Open the card and list its engines into e (MAX_ENGINES of them); how many there are. */
static int open_engines(const char *card, int *fd, struct engine *e)
{
	*fd = open(card, O_RDWR | O_CLOEXEC);
	if (*fd < 0)
		die("open %s: %s", card, strerror(errno));
	memset(e, 0, MAX_ENGINES * sizeof(*e));
	return query_engines(*fd, e);
}

/* One context whose engine map is every engine found: execbuf's ring selector is the index. */
static uint32_t context_with_engines(int fd, const struct engine *e, int n)
{
	I915_DEFINE_CONTEXT_PARAM_ENGINES(engines, MAX_ENGINES);
	memset(&engines, 0, sizeof(engines));
	for (int i = 0; i < n; i++)
		engines.engines[i] = e[i].ci;
	struct drm_i915_gem_context_create_ext_setparam p = {
		.base = { .name = I915_CONTEXT_CREATE_EXT_SETPARAM },
		.param = {
			.param = I915_CONTEXT_PARAM_ENGINES,
			.size = sizeof(uint64_t) + n * sizeof(struct i915_engine_class_instance),
			.value = (uintptr_t)&engines,
		},
	};
	struct drm_i915_gem_context_create_ext c = {
		.flags = I915_CONTEXT_CREATE_FLAGS_USE_EXTENSIONS,
		.extensions = (uintptr_t)&p,
	};
	xioctl(fd, DRM_IOCTL_I915_GEM_CONTEXT_CREATE_EXT, &c, "DRM_IOCTL_I915_GEM_CONTEXT_CREATE_EXT");
	return c.ctx_id;
}

/*
 * Batch k of an engine: a store of VALUE into data dword k, chained for odd k. The addresses in
 * it are the ones presumed for the objects (`written_*`); a relocation whose presumed offset is
 * the object's real one is left as written (execbuf's contract), any other is rewritten.
 */
static void write_batches(int fd, struct lane *l, int idx, int requests)
{
	uint64_t size = (uint64_t)requests * SLOT;
	uint32_t *b = calloc(1, size);
	if (!b)
		die("out of memory");
	for (int k = 0; k < requests; k++) {
		uint32_t *s = b + k * SLOT / 4;
		uint32_t *store = s;
		if (k & 1) {
			uint64_t to = l->batch_offset + (uint64_t)k * SLOT + CHAIN_AT;
			s[0] = MI_BATCH_BUFFER_START_GEN8 | MI_BATCH_PPGTT;
			s[1] = (uint32_t)to;
			s[2] = (uint32_t)(to >> 32);
			s[3] = MI_BATCH_BUFFER_END; /* never reached */
			store = s + CHAIN_AT / 4;
		}
		uint64_t at = l->data_offset + 4u * (uint64_t)k;
		store[0] = MI_STORE_DWORD_IMM_GEN8;
		store[1] = (uint32_t)at;
		store[2] = (uint32_t)(at >> 32);
		store[3] = value_of(idx, k);
		store[4] = MI_BATCH_BUFFER_END;
		store[5] = MI_NOOP;
	}
	gem_rw(fd, l->batch, b, size, 1);
	free(b);
	l->written_data = l->data_offset;
	l->written_batch = l->batch_offset;
}

static int execbuf(int fd, struct drm_i915_gem_execbuffer2 *eb)
{
	int r;
	do
		r = ioctl(fd, DRM_IOCTL_I915_GEM_EXECBUFFER2, eb);
	while (r < 0 && (errno == EINTR || errno == EAGAIN));
	return r < 0 ? errno : 0;
}

static void submit(int fd, const uint32_t *ctx, struct engine *e, int idx, int k)
{
	struct lane *l = &e->lane[LANE(k)];
	struct drm_i915_gem_relocation_entry reloc[2];
	int nreloc = 0;
	uint32_t slot = (uint32_t)k * SLOT;
	uint32_t store = slot;
	int chain = (k & 1) && !e->chain_refused;
	memset(reloc, 0, sizeof(reloc));
	if ((k & 1) && !chain)
		store = slot + CHAIN_AT;
	if (chain) {
		reloc[nreloc++] = (struct drm_i915_gem_relocation_entry){
			.target_handle = l->batch,
			.offset = slot + 4,
			.delta = slot + CHAIN_AT,
			.presumed_offset = l->written_batch,
		};
	}
	reloc[nreloc++] = (struct drm_i915_gem_relocation_entry){
		.target_handle = l->data,
		.offset = store + 4,
		.delta = 4u * (uint32_t)k,
		.presumed_offset = l->written_data,
		.read_domains = I915_GEM_DOMAIN_INSTRUCTION,
		.write_domain = I915_GEM_DOMAIN_INSTRUCTION,
	};
	struct drm_i915_gem_exec_object2 obj[2] = {
		{ .handle = l->data, .offset = l->data_offset, .flags = EXEC_OBJECT_WRITE },
		{ .handle = l->batch, .offset = l->batch_offset, .relocation_count = nreloc,
		  .relocs_ptr = (uintptr_t)reloc },
	};
	struct drm_i915_gem_execbuffer2 eb = {
		.buffers_ptr = (uintptr_t)obj,
		.buffer_count = 2,
		.batch_start_offset = chain ? slot : store,
		.batch_len = chain ? SLOT : SLOT - (store - slot),
		.flags = (uint64_t)idx,
		.rsvd1 = ctx[LANE(k)],
	};
	int err = execbuf(fd, &eb);
	if (err == EINVAL && chain && e->chained == 0) {
		/* The first chained batch of this engine: i915's own parser refuses chains here. */
		e->chain_refused = err;
		submit(fd, ctx, e, idx, k);
		return;
	}
	if (err)
		die("DRM_IOCTL_I915_GEM_EXECBUFFER2 on %s (request %d): %s", e->name, k, strerror(err));
	l->data_offset = obj[0].offset;
	l->batch_offset = obj[1].offset;
	if (chain)
		e->chained++;
}

/* Wait for a lane's data object to be idle; 1 when the bound passed first. */
static int wait_idle(int fd, const struct engine *e, const struct lane *l, double *waited)
{
	double w0 = seconds();
	struct drm_i915_gem_wait w = { .bo_handle = l->data, .timeout_ns = WAIT_NS };
	int timed_out = 0;
	if (ioctl(fd, DRM_IOCTL_I915_GEM_WAIT, &w) < 0) {
		if (errno != ETIME)
			die("DRM_IOCTL_I915_GEM_WAIT on %s: %s", e->name, strerror(errno));
		timed_out = 1;
	}
	*waited = seconds() - w0;
	return timed_out;
}

int cmd_i915_exec(int argc, char **argv)
{
	if (argc != 4)
		die("usage: vfk i915-exec <card> <requests>");
	int requests = (int)num(argv[3]);
	if (requests < 4 || requests > MAX_REQUESTS)
		die("requests must be 4..%d", MAX_REQUESTS);
	int fd;
	struct engine e[MAX_ENGINES];
	int n = open_engines(argv[2], &fd, e);
	if (n == 0)
		die("i915 reports no engines");
	uint32_t ctx[CONTEXTS];
	for (int c = 0; c < CONTEXTS; c++)
		ctx[c] = context_with_engines(fd, e, n);
	printf("engines=%d contexts=%d\n", n, CONTEXTS);
	for (int i = 0; i < n; i++)
		for (int c = 0; c < CONTEXTS; c++) {
			e[i].lane[c].data = gem_create(fd, 4096);
			e[i].lane[c].batch = gem_create(fd, (uint64_t)requests * SLOT);
			write_batches(fd, &e[i].lane[c], i, requests);
		}
	double t0 = seconds();
	/*
	 * The first request of each context on each engine (0 and 2) binds its objects, its
	 * relocations applied; the batches are then rewritten with the addresses execbuf reported,
	 * so the other requests' relocations hold already.
	 */
	double waited;
	for (int i = 0; i < n; i++) {
		submit(fd, ctx, &e[i], i, 0);
		submit(fd, ctx, &e[i], i, 2);
	}
	for (int i = 0; i < n; i++)
		for (int c = 0; c < CONTEXTS; c++) {
			struct lane *l = &e[i].lane[c];
			if (wait_idle(fd, &e[i], l, &waited))
				die("the first request of context %d on %s did not complete in %lld s", c, e[i].name,
				    WAIT_NS / 1000000000);
			if (l->data_offset != l->written_data || l->batch_offset != l->written_batch)
				write_batches(fd, l, i, requests);
		}
	for (int k = 1; k < requests; k++)
		for (int i = 0; i < n; i++)
			if (k != 2)
				submit(fd, ctx, &e[i], i, k);
	printf("submitted=%d seconds=%.3f\n", requests * n, seconds() - t0);
	int bad = 0;
	for (int i = 0; i < n; i++) {
		uint32_t got[CONTEXTS][MAX_REQUESTS];
		int timed_out = 0;
		double total = 0;
		for (int c = 0; c < CONTEXTS; c++) {
			timed_out |= wait_idle(fd, &e[i], &e[i].lane[c], &waited);
			total += waited;
			gem_rw(fd, e[i].lane[c].data, got[c], 4u * (uint32_t)requests, 0);
		}
		/* Right: the value in its context's object, and nothing at that dword in the other's. */
		int correct = 0, stray = 0, first = -1;
		for (int k = 0; k < requests; k++) {
			int ok = got[LANE(k)][k] == value_of(i, k);
			if (got[!LANE(k)][k] != 0) {
				stray++;
				ok = 0;
			}
			if (ok)
				correct++;
			else if (first < 0)
				first = k;
		}
		printf("engine=%d class=%u instance=%u name=%s requests=%d chained=%d correct=%d wait_ms=%.1f "
		       "contexts=%d stray=%d%s%s\n",
		       i, e[i].ci.engine_class, e[i].ci.engine_instance, e[i].name, requests, e[i].chained, correct,
		       total * 1000, CONTEXTS, stray, e[i].chain_refused ? " chain_refused=EINVAL" : "",
		       timed_out ? " timed_out=1" : "");
		if (first >= 0)
			printf("first_bad=%s dword=%d context=%d got=0x%08" PRIx32 " other=0x%08" PRIx32 " want=0x%08" PRIx32
			       "\n",
			       e[i].name, first, LANE(first), got[LANE(first)][first], got[!LANE(first)][first],
			       value_of(i, first));
		if (timed_out || correct != requests)
			bad = 1;
	}
	close(fd);
	return bad;
}

/*
 * vfk i915-hang <card>: a request whose batch starts with a command the vGPU's audit refuses (MI
 * opcode 0x3f, which no engine knows; a real engine stops on it too) is the guest's error: the
 * store after it never runs, i915 finds the engine hung and resets it, the request's fence ends
 * in an error and the context is blamed; then a new context's store on the same engine completes.
 *
 *   hang_engine=rcs0 hang_fence_status=<errno, negative> hang_store=0x<the dword the store after
 *   the refused command would have written> batch_active=<requests lost by the context> reset_count=<resets>
 *   after_reset_value=0x<value> after_reset_ok=<0|1>
 */
#define MI_INVALID (0x3fu << 23)
#define HANG_VALUE 0xbad00bad
#define GOOD_VALUE 0x600d600d

/* One batch of `words` on engine 0 of `ctx`, storing into `data`; the out-fence's fd. */
static int submit_words(int fd, uint32_t ctx, uint32_t data, const uint32_t *words, int n, uint32_t store_at)
{
	uint32_t batch = gem_create(fd, 4096);
	gem_rw(fd, batch, (void *)words, 4u * (uint32_t)n, 1);
	struct drm_i915_gem_relocation_entry reloc = {
		.target_handle = data,
		.offset = store_at,
		.presumed_offset = (uint64_t)-1, /* always relocated */
		.read_domains = I915_GEM_DOMAIN_INSTRUCTION,
		.write_domain = I915_GEM_DOMAIN_INSTRUCTION,
	};
	struct drm_i915_gem_exec_object2 obj[2] = {
		{ .handle = data, .flags = EXEC_OBJECT_WRITE },
		{ .handle = batch, .relocation_count = 1, .relocs_ptr = (uintptr_t)&reloc },
	};
	struct drm_i915_gem_execbuffer2 eb = {
		.buffers_ptr = (uintptr_t)obj,
		.buffer_count = 2,
		.batch_len = 4u * (uint32_t)n,
		.flags = I915_EXEC_FENCE_OUT, /* engine 0 of the context's map */
		.rsvd1 = ctx,
	};
	xioctl(fd, DRM_IOCTL_I915_GEM_EXECBUFFER2_WR, &eb, "DRM_IOCTL_I915_GEM_EXECBUFFER2_WR");
	struct drm_gem_close c = { .handle = batch };
	xioctl(fd, DRM_IOCTL_GEM_CLOSE, &c, "DRM_IOCTL_GEM_CLOSE");
	return (int)(eb.rsvd2 >> 32);
}

static int fence_status(int fence)
{
	struct sync_file_info info;
	memset(&info, 0, sizeof(info));
	if (ioctl(fence, SYNC_IOC_FILE_INFO, &info) < 0)
		die("SYNC_IOC_FILE_INFO: %s", strerror(errno));
	return info.status;
}

int cmd_i915_hang(int argc, char **argv)
{
	if (argc != 3)
		die("usage: vfk i915-hang <card>");
	int fd;
	struct engine e[MAX_ENGINES];
	int n = open_engines(argv[2], &fd, e);
	int rcs = -1;
	for (int i = 0; i < n; i++)
		if (e[i].ci.engine_class == I915_ENGINE_CLASS_RENDER && e[i].ci.engine_instance == 0)
			rcs = i;
	if (rcs < 0)
		die("i915 reports no render engine");
	uint32_t ctx = context_with_engines(fd, &e[rcs], 1);
	uint32_t data = gem_create(fd, 4096);
	/* The engine stops at the refused command: the store after it must not run. */
	const uint32_t bad[] = { MI_INVALID, MI_NOOP, MI_STORE_DWORD_IMM_GEN8, 0, 0, HANG_VALUE, MI_BATCH_BUFFER_END, MI_NOOP };
	int fence = submit_words(fd, ctx, data, bad, 8, 12);
	struct drm_i915_gem_wait w = { .bo_handle = data, .timeout_ns = WAIT_NS };
	if (ioctl(fd, DRM_IOCTL_I915_GEM_WAIT, &w) < 0)
		die("the refused request on %s was not ended by a reset within %lld s: %s", e[rcs].name,
		    WAIT_NS / 1000000000, strerror(errno));
	uint32_t got = 0;
	gem_rw(fd, data, &got, 4, 0);
	struct drm_i915_reset_stats rs = { .ctx_id = ctx };
	xioctl(fd, DRM_IOCTL_I915_GET_RESET_STATS, &rs, "DRM_IOCTL_I915_GET_RESET_STATS");
	printf("hang_engine=%s\nhang_fence_status=%d\nhang_store=0x%08" PRIx32 "\nbatch_active=%u\nreset_count=%u\n",
	       e[rcs].name, fence_status(fence), got, rs.batch_active, rs.reset_count);
	close(fence);
	/* The engine works again: a new context's store completes. */
	uint32_t ctx2 = context_with_engines(fd, &e[rcs], 1);
	uint32_t data2 = gem_create(fd, 4096);
	const uint32_t good[] = { MI_STORE_DWORD_IMM_GEN8, 0, 0, GOOD_VALUE, MI_BATCH_BUFFER_END, MI_NOOP };
	fence = submit_words(fd, ctx2, data2, good, 6, 4);
	w = (struct drm_i915_gem_wait){ .bo_handle = data2, .timeout_ns = WAIT_NS };
	if (ioctl(fd, DRM_IOCTL_I915_GEM_WAIT, &w) < 0)
		die("the request after the reset on %s did not complete in %lld s: %s", e[rcs].name,
		    WAIT_NS / 1000000000, strerror(errno));
	gem_rw(fd, data2, &got, 4, 0);
	int status = fence_status(fence);
	close(fence);
	printf("after_reset_value=0x%08" PRIx32 "\nafter_reset_fence_status=%d\nafter_reset_ok=%d\n", got, status,
	       got == GOOD_VALUE && status == 1);
	close(fd);
	return got == GOOD_VALUE && status == 1 ? 0 : 1;
}
