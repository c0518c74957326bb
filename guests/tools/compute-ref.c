/* Host reference for the `compute` workload: prints the expected checksum. */
#include <stdio.h>
#include "../kernel/user/compute.h"
int main(void)
{
	unsigned int t[256], a[1024];
	crc32_table(t);
	unsigned int r = compute_round(a, 1024, t);
	printf("computed=0x%08x expected=0x%08x %s\n", r, COMPUTE_EXPECT, r == COMPUTE_EXPECT ? "OK" : "MISMATCH");
	return r != COMPUTE_EXPECT;
}
