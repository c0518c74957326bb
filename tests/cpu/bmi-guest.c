/*
 * A guest-level check of the BMI1/BMI2/ADX/MOVBE/LZCNT instructions: compiled with
 * -O2 -mbmi -mbmi2 -madx -mmovbe -mlzcnt, run both on the host and on nestlab's CPU
 * (tests/cpu/bmi-guest.test.ts), which must return the same checksum. Freestanding: no data,
 * no calls out, so the flat .text runs anywhere.
 */
typedef unsigned long u64;
typedef unsigned int u32;

static inline u64 adcx_adox(u64 a, u64 b, u64 c, u64 d)
{
	/* Two carry chains through CF (ADCX) and OF (ADOX), as multi-precision code uses them. */
	__asm__("xor %%r8d, %%r8d\n\t"
		"adcx %2, %0\n\t"
		"adox %3, %1\n\t"
		"adcx %3, %0\n\t"
		"adox %2, %1"
		: "+r"(a), "+r"(b)
		: "r"(c), "r"(d)
		: "r8", "cc");
	return a ^ (b << 1);
}

static __attribute__((noipa)) u64 bmi_mix(u64 a, u64 b, u64 c, const u64 *m)
{
	u64 r = 0;
	r += a << (b & 63);                            /* shlx */
	r ^= a >> (c & 63);                            /* shrx */
	r += (u64)((long)a >> (b & 63));               /* sarx */
	r ^= ~a & b;                                   /* andn */
	r += b & (b - 1);                              /* blsr */
	r ^= a & -a;                                   /* blsi */
	r += c ^ (c - 1);                              /* blsmsk */
	r ^= __builtin_ia32_bzhi_di(b, c);             /* bzhi */
	r += __builtin_ia32_pdep_di(a, b);             /* pdep */
	r ^= __builtin_ia32_pext_di(a, c);             /* pext */
	r += __builtin_ia32_bextr_u64(a, c);           /* bextr */
	unsigned __int128 p = (unsigned __int128)a * b;/* mulx */
	r ^= (u64)(p >> 64) + (u64)p;
	r += (a >> 13) | (a << 51);                    /* rorx */
	r ^= __builtin_bswap64(*m);                    /* movbe */
	r += (u64)__builtin_ia32_tzcnt_u64(a);         /* tzcnt */
	r ^= (u64)__builtin_ia32_lzcnt_u64(b);         /* lzcnt */
	u32 a32 = (u32)a, b32 = (u32)b;
	r += (u64)(a32 << (c & 31)) + (u64)__builtin_ia32_pdep_si(a32, b32) + (u64)__builtin_ia32_bzhi_si(b32, (u32)c);
	r ^= adcx_adox(a, b, c, r);
	return r;
}

/* xorshift inputs biased to edge values; returns a checksum of bmi_mix over n rounds. */
u64 bmi_run(u64 seed, u64 n)
{
	u64 x = seed | 1, sum = 0, m[1];
	for (u64 i = 0; i < n; i++) {
		x ^= x << 13;
		x ^= x >> 7;
		x ^= x << 17;
		u64 a = x, b = x * 0x9e3779b97f4a7c15UL, c = (x >> 3) ^ i;
		if ((i & 7) == 0)
			a = 0;
		if ((i & 7) == 1)
			b = ~0UL;
		if ((i & 15) == 2)
			c = i;
		m[0] = x ^ i;
		__asm__ volatile("" ::: "memory");
		sum = (sum << 1 | sum >> 63) ^ bmi_mix(a, b, c, m);
	}
	return sum;
}
