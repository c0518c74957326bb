/* Assembly helpers shared by vmx_run.S and devproc_entry.S: the System V callee-saved registers. */
#ifndef L1_CALLS_H
#define L1_CALLS_H
#define PUSH_CALLEE_SAVED pushq %rbx; pushq %rbp; pushq %r12; pushq %r13; pushq %r14; pushq %r15
#define POP_CALLEE_SAVED popq %r15; popq %r14; popq %r13; popq %r12; popq %rbp; popq %rbx
#endif
