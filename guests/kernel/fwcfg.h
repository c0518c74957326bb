#ifndef NL_FWCFG_H
#define NL_FWCFG_H
#include "types.h"
struct fwcfg_info { u32 cpus; u64 ram; };
int fwcfg_probe(struct fwcfg_info *fi);   /* 0 = signature "QEMU" found */
#endif
