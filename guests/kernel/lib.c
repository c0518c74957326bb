/* Freestanding string helpers. memset and memcpy are ERMS-style `rep stosb` / `rep movsb`, as
 * Linux's memset_erms/memcpy_erms: the CPU moves whole lines per step (fast strings) and charges
 * them as such (docs/cost-model.md, insn.rep_*), where a byte loop retires 4-5 instructions per
 * byte. REP STOSQ/MOVSQ are used for whole pages. */
#include "lib.h"

void *memset(void *d, int c, size_t n)
{
	void *p = d;
	__asm__ volatile("rep stosb" : "+D"(p), "+c"(n) : "a"(c) : "memory");
	return d;
}

void *memcpy(void *d, const void *s, size_t n)
{
	void *a = d;
	__asm__ volatile("rep movsb" : "+D"(a), "+S"(s), "+c"(n) : : "memory");
	return d;
}

int memcmp(const void *a, const void *b, size_t n)
{
	const u8 *x = a, *y = b;
	for (; n; n--, x++, y++)
		if (*x != *y)
			return *x - *y;
	return 0;
}

size_t strlen(const char *s)
{
	size_t n = 0;
	while (s[n])
		n++;
	return n;
}

int strncmp(const char *a, const char *b, size_t n)
{
	for (; n; n--, a++, b++) {
		if (*a != *b)
			return (u8)*a - (u8)*b;
		if (!*a)
			return 0;
	}
	return 0;
}

void zero_page(void *p)
{
	u64 cnt = 512, *d = p;
	__asm__ volatile("rep stosq" : "+D"(d), "+c"(cnt) : "a"(0UL) : "memory");
}

void copy_page(void *dst, const void *src)
{
	u64 cnt = 512;
	void *d = dst;
	const void *s = src;
	__asm__ volatile("rep movsq" : "+D"(d), "+S"(s), "+c"(cnt) : : "memory");
}
