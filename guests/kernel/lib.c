/* Freestanding string helpers. REP STOSQ/MOVSQ are used for whole pages. */
#include "lib.h"

void *memset(void *d, int c, size_t n)
{
	u8 *p = d;
	while (n--)
		*p++ = (u8)c;
	return d;
}

void *memcpy(void *d, const void *s, size_t n)
{
	u8 *a = d;
	const u8 *b = s;
	while (n--)
		*a++ = *b++;
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
