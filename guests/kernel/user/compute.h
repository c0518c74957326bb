/* The `compute` kernel: LCG fill, heapsort, CRC32 (reflected, poly 0xEDB88320)
 * and a final mix. Pure C, also built on the host (guests/tools/compute-ref.c) to get
 * COMPUTE_EXPECT. Every iteration computes the same value. */
#ifndef NL_COMPUTE_H
#define NL_COMPUTE_H

#define COMPUTE_EXPECT 0x7d07006bu /* `make -C guests check-compute` recomputes it */

static void crc32_table(unsigned int *t)
{
	for (unsigned int i = 0; i < 256; i++) {
		unsigned int c = i;
		for (int k = 0; k < 8; k++)
			c = (c & 1) ? 0xEDB88320u ^ (c >> 1) : c >> 1;
		t[i] = c;
	}
}

static unsigned int crc32(const unsigned int *t, const unsigned char *p, unsigned long n)
{
	unsigned int c = 0xFFFFFFFFu;
	for (unsigned long i = 0; i < n; i++)
		c = t[(c ^ p[i]) & 0xFF] ^ (c >> 8);
	return c ^ 0xFFFFFFFFu;
}

static void sift(unsigned int *a, unsigned long start, unsigned long end)
{
	unsigned long root = start;
	while (2 * root + 1 <= end) {
		unsigned long child = 2 * root + 1, sw = root;
		if (a[sw] < a[child])
			sw = child;
		if (child + 1 <= end && a[sw] < a[child + 1])
			sw = child + 1;
		if (sw == root)
			return;
		unsigned int tmp = a[root];
		a[root] = a[sw];
		a[sw] = tmp;
		root = sw;
	}
}

static void heapsort_u32(unsigned int *a, unsigned long n)
{
	for (long s = (long)(n - 2) / 2; s >= 0; s--)
		sift(a, (unsigned long)s, n - 1);
	for (unsigned long end = n - 1; end > 0; end--) {
		unsigned int tmp = a[0];
		a[0] = a[end];
		a[end] = tmp;
		sift(a, 0, end - 1);
	}
}

/* returns 0 if the sort check fails, otherwise the mixed checksum */
static unsigned int compute_round(unsigned int *a, unsigned long n, const unsigned int *t)
{
	unsigned long long x = 0x2545F4914F6CDD1DULL;
	for (unsigned long i = 0; i < n; i++) {
		x = x * 6364136223846793005ULL + 1442695040888963407ULL;
		a[i] = (unsigned int)(x >> 32);
	}
	heapsort_u32(a, n);
	for (unsigned long i = 1; i < n; i++)
		if (a[i - 1] > a[i])
			return 0;
	unsigned int c = crc32(t, (const unsigned char *)a, n * 4);
	unsigned int h = 2166136261u; /* FNV-1a over crc and a few elements */
	unsigned int v[4] = {c, a[0], a[n / 2], a[n - 1]};
	for (int i = 0; i < 4; i++)
		for (int k = 0; k < 4; k++)
			h = (h ^ ((v[i] >> (8 * k)) & 0xFF)) * 16777619u;
	return h | 1;
}
#endif
