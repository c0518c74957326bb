/* nestlab boot-info structure: handed to the 64-bit entry point in RSI.
 * Layout is documented byte-for-byte in docs/boot.md; keep the two in sync.
 * All addresses are physical and must lie below 4 GiB (identity-mapped at entry). */
#ifndef NL_BOOTINFO_H
#define NL_BOOTINFO_H

#define NLBI_MAGIC   0x49424C4Eu /* bytes "NLBI" in memory (little-endian) */
#define NLBI_VERSION 1u

#define NLBI_FLAG_MULTIBOOT 0x1u /* set only by the kernel's own multiboot shim */

#define NLBI_MEM_USABLE 1u       /* any other type = reserved */

/* ELF note carrying the 64-bit entry point: name "nestlab", this type,
 * desc = u64 physical address of entry64 (see boot.S). */
#define NL_NOTE_NAME    "nestlab"
#define NL_NOTE_ENTRY64 1

#ifndef __ASSEMBLER__
#include "types.h"

struct nl_mmap_entry {           /* 24 bytes */
	u64 base;                    /* +0  physical base */
	u64 length;                  /* +8  length in bytes */
	u32 type;                    /* +16 1 = usable RAM, other = reserved */
	u32 reserved;                /* +20 must be 0 */
};

struct nl_bootinfo {             /* 48 bytes, 8-byte aligned */
	u32 magic;                   /* +0  NLBI_MAGIC */
	u32 version;                 /* +4  NLBI_VERSION */
	u32 size;                    /* +8  sizeof(struct nl_bootinfo) = 48 */
	u32 flags;                   /* +12 0 from an external loader */
	u64 cmdline_addr;            /* +16 physical address of the command line (may be 0) */
	u64 cmdline_len;             /* +24 length in bytes, no NUL needed */
	u64 mmap_addr;               /* +32 physical address of nl_mmap_entry[] */
	u32 mmap_count;              /* +40 number of entries */
	u32 mmap_entry_size;         /* +44 = 24 */
};
_Static_assert(sizeof(struct nl_mmap_entry) == 24, "mmap entry size");
_Static_assert(sizeof(struct nl_bootinfo) == 48, "bootinfo size");
#endif

/* byte offsets, for assembly */
#define NLBI_OFF_MAGIC      0
#define NLBI_OFF_VERSION    4
#define NLBI_OFF_SIZE       8
#define NLBI_OFF_FLAGS      12
#define NLBI_OFF_CMDLINE    16
#define NLBI_OFF_CMDLINE_LEN 24
#define NLBI_OFF_MMAP       32
#define NLBI_OFF_MMAP_COUNT 40
#define NLBI_OFF_MMAP_ESIZE 44
#define NLBI_SIZE           48
#define NLBI_MMAP_ESIZE     24

#endif
