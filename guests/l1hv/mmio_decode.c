/*
 * Decoding the instruction of an MMIO access: the MOV forms compilers emit for volatile loads
 * and stores (SDM vol. 2: 88/89 store r, 8A/8B load r, C6/C7 store imm, 0F B6/B7 MOVZX), with
 * the operand-size and REX prefixes. Only what the exit needs: length, size, direction, register.
 */
#include "l1hv.h"

/* Length of the ModRM, SIB and displacement bytes at `p` (64-bit addressing). */
static int modrm_len(const u8 *p, int n)
{
	if (n < 1)
		return -1;
	u8 modrm = p[0];
	int mod = modrm >> 6, rm = modrm & 7, len = 1;
	if (mod == 3)
		return len;
	if (rm == 4) {  /* SIB */
		if (n < 2)
			return -1;
		len++;
		if (mod == 0 && (p[1] & 7) == 5)
			len += 4;
	} else if (mod == 0 && rm == 5) {
		len += 4;  /* RIP-relative */
	}
	if (mod == 1)
		len += 1;
	else if (mod == 2)
		len += 4;
	return len;
}

int mmio_decode(const u8 *code, int n, struct mmio_insn *out)
{
	int i = 0, opsize16 = 0;
	u8 rex = 0;
	while (i < n && (code[i] == 0x66 || code[i] == 0x2e || code[i] == 0x3e || code[i] == 0x26 ||
			 code[i] == 0x64 || code[i] == 0x65 || code[i] == 0x36)) {
		if (code[i] == 0x66)
			opsize16 = 1;
		i++;
	}
	if (i < n && (code[i] & 0xf0) == 0x40)
		rex = code[i++];
	if (i >= n)
		return -1;
	u8 op = code[i++];
	int wide = (rex & 8) ? 8 : opsize16 ? 2 : 4;
	out->zero_extend = 0;
	out->imm = 0;
	if (op == 0x0f) {
		if (i >= n)
			return -1;
		u8 op2 = code[i++];
		if (op2 != 0xb6 && op2 != 0xb7)
			return -1;
		out->size = op2 == 0xb6 ? 1 : 2;
		out->write = 0;
		out->zero_extend = 1;
	} else if (op == 0x88 || op == 0x89 || op == 0x8a || op == 0x8b) {
		out->size = (op & 1) ? (u8)wide : 1;
		out->write = op == 0x88 || op == 0x89;
	} else if (op == 0xc6 || op == 0xc7) {
		out->size = op == 0xc6 ? 1 : (u8)wide;
		out->write = 1;
	} else {
		return -1;
	}
	int m = modrm_len(code + i, n - i);
	if (m < 0)
		return -1;
	u8 modrm = code[i];
	out->reg = (u8)(((modrm >> 3) & 7) | ((rex & 4) ? 8 : 0));
	i += m;
	if (op == 0xc6 || op == 0xc7) {
		int isz = op == 0xc6 ? 1 : out->size == 2 ? 2 : 4;
		if (i + isz > n)
			return -1;
		u64 imm = 0;
		for (int k = isz - 1; k >= 0; k--)
			imm = (imm << 8) | code[i + k];
		if (isz == 4 && out->size == 8 && (imm & 0x80000000u))
			imm |= 0xffffffff00000000ul;  /* sign-extended imm32 */
		out->imm = imm;
		out->reg = 0xff;
		i += isz;
	}
	/* byte registers 4-7 without REX are AH/CH/DH/BH: the kernel's accessors never use them */
	if (out->size == 1 && !rex && out->reg >= 4 && out->reg < 8 && out->reg != 0xff)
		return -1;
	out->len = (u8)i;
	return 0;
}
