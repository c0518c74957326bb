#ifndef NL_WORKLOAD_H
#define NL_WORKLOAD_H
#include "types.h"
extern const char *const workload_names[];
void workload_result(int w, u64 iters, u64 cycles);
void workload_fail(int w, const char *reason);
int run_workload(int w, u64 iters);   /* 0 = passed */
int run_kread_selftest(void);         /* workload=kread: user reads of kernel addresses; 0 = passed */
#endif
