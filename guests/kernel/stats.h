/* Event counters, printed as a STATS line after each workload (cross-check for
 * the simulator's own counters). */
#ifndef NL_STATS_H
#define NL_STATS_H
#include "types.h"
struct kstats {
	u64 ticks, switches, syscalls, demand_faults, cow_copies, cow_reuse, forks, execs, blk_irqs;
};
extern struct kstats kstats;
#endif
