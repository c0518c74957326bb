/* QEMU fw_cfg, legacy I/O interface: selector 0x510 (16-bit), data 0x511. */
#include "fwcfg.h"
#include "x86.h"

static void fw_read(u16 sel, u8 *buf, int n)
{
	outw(0x510, sel);
	for (int i = 0; i < n; i++)
		buf[i] = inb(0x511);
}

int fwcfg_probe(struct fwcfg_info *fi)
{
	u8 sig[4];
	fw_read(0x0000, sig, 4);
	if (sig[0] != 'Q' || sig[1] != 'E' || sig[2] != 'M' || sig[3] != 'U')
		return -1;
	u8 b[8];
	fw_read(0x0005, b, 2);
	fi->cpus = b[0] | (b[1] << 8);
	fw_read(0x0003, b, 8);
	fi->ram = 0;
	for (int i = 7; i >= 0; i--)
		fi->ram = (fi->ram << 8) | b[i];
	return 0;
}
