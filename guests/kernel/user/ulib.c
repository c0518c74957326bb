#include "ulib.h"

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

void uputs(const char *s)
{
	u64 n = 0;
	while (s[n])
		n++;
	u_write(1, s, n);
}
