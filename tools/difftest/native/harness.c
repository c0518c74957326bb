/*
 * nestlab difftest native harness: runs generated x86-64 instruction sequences on the host CPU.
 *
 * Usage:
 *   harness features                       print host CPU features the generator cares about
 *   harness run CODE DATA DATA_SIZE        read test cases from stdin, write results to stdout
 *
 * Addresses are hexadecimal. CODE (32 KiB, RWX) and the data page(s) holding DATA..DATA+DATA_SIZE
 * are mapped at exactly those addresses (MAP_FIXED_NOREPLACE), so register values that hold
 * addresses are identical to the emulator's. The data pages are zeroed before each case; the
 * bytes of those pages outside the data area are returned as a 32-bit FNV-1a hash.
 *
 * Input record (little-endian):  u32 codeLen, u32 codeOffset, u64 regs[16], u64 rflags,
 *                                u8 data[DATA_SIZE], u8 code[codeLen]
 * Output record:                 u32 status (0, or the signal number), u32 hash of the rest of the pages,
 *                                u64 regs[16], u64 rflags, u64 faultRip, u64 faultAddr (si_addr),
 *                                u8 data[DATA_SIZE]
 *
 * Each case: the code is copied to CODE + codeOffset followed by `jmp [rip+0]; dq dt_exit`; the trampoline
 * saves the callee-saved registers and the host RSP, loads RFLAGS and all 16 GPRs (RSP too),
 * jumps to the code; dt_exit stores all 16 GPRs, restores the host RSP, stores RFLAGS and returns.
 * SIGSEGV/SIGILL/SIGFPE/SIGBUS/SIGTRAP are caught (on an alternate stack) and reported per case,
 * with the registers and RFLAGS at the faulting instruction (from the signal context) and the
 * data area as the fault left it.
 */
#define _GNU_SOURCE
#include <cpuid.h>
#include <setjmp.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <ucontext.h>
#include <unistd.h>

#ifndef MAP_FIXED_NOREPLACE
#define MAP_FIXED_NOREPLACE 0x100000
#endif

#define CODE_SIZE 0x8000
#define MAX_DATA 0x10000

struct state {
  uint64_t r[16];
  uint64_t rflags;
};

struct state g_in, g_out;
uint64_t g_host_rsp;
uint64_t g_code;

void dt_enter(void);
void dt_exit(void);

__asm__(
    ".text\n"
    ".globl dt_enter\n"
    ".type dt_enter, @function\n"
    "dt_enter:\n"
    "  push %rbx\n"
    "  push %rbp\n"
    "  push %r12\n"
    "  push %r13\n"
    "  push %r14\n"
    "  push %r15\n"
    "  mov %rsp, g_host_rsp(%rip)\n"
    "  pushq g_in+128(%rip)\n"
    "  popfq\n"
    "  mov g_in+0(%rip), %rax\n"
    "  mov g_in+8(%rip), %rcx\n"
    "  mov g_in+16(%rip), %rdx\n"
    "  mov g_in+24(%rip), %rbx\n"
    "  mov g_in+40(%rip), %rbp\n"
    "  mov g_in+48(%rip), %rsi\n"
    "  mov g_in+56(%rip), %rdi\n"
    "  mov g_in+64(%rip), %r8\n"
    "  mov g_in+72(%rip), %r9\n"
    "  mov g_in+80(%rip), %r10\n"
    "  mov g_in+88(%rip), %r11\n"
    "  mov g_in+96(%rip), %r12\n"
    "  mov g_in+104(%rip), %r13\n"
    "  mov g_in+112(%rip), %r14\n"
    "  mov g_in+120(%rip), %r15\n"
    "  mov g_in+32(%rip), %rsp\n"
    "  jmp *g_code(%rip)\n"
    ".globl dt_exit\n"
    ".type dt_exit, @function\n"
    "dt_exit:\n"
    "  mov %rax, g_out+0(%rip)\n"
    "  mov %rcx, g_out+8(%rip)\n"
    "  mov %rdx, g_out+16(%rip)\n"
    "  mov %rbx, g_out+24(%rip)\n"
    "  mov %rsp, g_out+32(%rip)\n"
    "  mov %rbp, g_out+40(%rip)\n"
    "  mov %rsi, g_out+48(%rip)\n"
    "  mov %rdi, g_out+56(%rip)\n"
    "  mov %r8, g_out+64(%rip)\n"
    "  mov %r9, g_out+72(%rip)\n"
    "  mov %r10, g_out+80(%rip)\n"
    "  mov %r11, g_out+88(%rip)\n"
    "  mov %r12, g_out+96(%rip)\n"
    "  mov %r13, g_out+104(%rip)\n"
    "  mov %r14, g_out+112(%rip)\n"
    "  mov %r15, g_out+120(%rip)\n"
    "  mov g_host_rsp(%rip), %rsp\n"
    "  pushfq\n"
    "  popq g_out+128(%rip)\n"
    "  cld\n"
    "  pop %r15\n"
    "  pop %r14\n"
    "  pop %r13\n"
    "  pop %r12\n"
    "  pop %rbp\n"
    "  pop %rbx\n"
    "  ret\n");

static sigjmp_buf g_jmp;
static volatile sig_atomic_t g_sig;
static volatile uint64_t g_fault_rip;
static volatile uint64_t g_fault_addr;

static struct state g_fault;

static void on_signal(int sig, siginfo_t *si, void *uctx) {
  ucontext_t *uc = (ucontext_t *)uctx;
  const greg_t *g = uc->uc_mcontext.gregs;
  static const int order[16] = {REG_RAX, REG_RCX, REG_RDX, REG_RBX, REG_RSP, REG_RBP, REG_RSI, REG_RDI,
                                REG_R8,  REG_R9,  REG_R10, REG_R11, REG_R12, REG_R13, REG_R14, REG_R15};
  for (int k = 0; k < 16; k++) g_fault.r[k] = (uint64_t)g[order[k]];
  g_fault.rflags = (uint64_t)g[REG_EFL];
  g_sig = sig;
  g_fault_rip = (uint64_t)g[REG_RIP];
  g_fault_addr = (uint64_t)(uintptr_t)si->si_addr;
  siglongjmp(g_jmp, 1);
}

static void die(const char *msg) {
  fprintf(stderr, "difftest harness: %s\n", msg);
  exit(2);
}

static void features(void) {
  unsigned a, b, c, d;
  unsigned maxl = __get_cpuid_max(0, 0);
  unsigned maxe = __get_cpuid_max(0x80000000, 0);
  int popcnt = 0, movbe = 0, bmi1 = 0, bmi2 = 0, adx = 0, lzcnt = 0, lahf = 0;
  char vendor[13] = {0};
  __cpuid(0, a, b, c, d);
  memcpy(vendor, &b, 4);
  memcpy(vendor + 4, &d, 4);
  memcpy(vendor + 8, &c, 4);
  if (maxl >= 1) {
    __cpuid(1, a, b, c, d);
    popcnt = (c >> 23) & 1;
    movbe = (c >> 22) & 1;
  }
  if (maxl >= 7) {
    __cpuid_count(7, 0, a, b, c, d);
    bmi1 = (b >> 3) & 1;
    bmi2 = (b >> 8) & 1;
    adx = (b >> 19) & 1;
  }
  if (maxe >= 0x80000001) {
    __cpuid(0x80000001, a, b, c, d);
    lahf = c & 1;
    lzcnt = (c >> 5) & 1;
  }
  printf("vendor=%s popcnt=%d movbe=%d bmi1=%d bmi2=%d adx=%d lzcnt=%d lahf=%d\n", vendor, popcnt, movbe, bmi1, bmi2,
         adx, lzcnt, lahf);
}

static int read_full(void *p, size_t n) {
  size_t got = fread(p, 1, n, stdin);
  if (got == n) return 1;
  if (got == 0 && feof(stdin)) return 0;
  die("truncated input");
  return 0;
}

int main(int argc, char **argv) {
  if (argc >= 2 && strcmp(argv[1], "features") == 0) {
    features();
    return 0;
  }
  if (argc != 5 || strcmp(argv[1], "run") != 0) die("usage: harness features | harness run CODE DATA DATA_SIZE");
  uint64_t code = strtoull(argv[2], 0, 16);
  uint64_t data = strtoull(argv[3], 0, 16);
  size_t dsize = (size_t)strtoull(argv[4], 0, 16);
  if (dsize == 0 || dsize > MAX_DATA) die("bad data size");
  uint64_t dpage = data & ~(uint64_t)0xfff;
  size_t dmap = ((data + dsize + 0xfff) & ~(uint64_t)0xfff) - dpage;

  void *cp = mmap((void *)code, CODE_SIZE, PROT_READ | PROT_WRITE | PROT_EXEC,
                  MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE, -1, 0);
  if (cp == MAP_FAILED || (uint64_t)cp != code) die("cannot map the code area at its fixed address");
  void *dp = mmap((void *)dpage, dmap, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE, -1, 0);
  if (dp == MAP_FAILED || (uint64_t)dp != dpage) die("cannot map the data area at its fixed address");

  static char altstack[65536];
  stack_t ss;
  ss.ss_sp = altstack;
  ss.ss_size = sizeof altstack;
  ss.ss_flags = 0;
  if (sigaltstack(&ss, 0) != 0) die("sigaltstack");
  struct sigaction sa;
  memset(&sa, 0, sizeof sa);
  sa.sa_sigaction = on_signal;
  sa.sa_flags = SA_SIGINFO | SA_ONSTACK;
  sigemptyset(&sa.sa_mask);
  int sigs[] = {SIGSEGV, SIGILL, SIGFPE, SIGBUS, SIGTRAP};
  for (unsigned k = 0; k < sizeof sigs / sizeof sigs[0]; k++)
    if (sigaction(sigs[k], &sa, 0) != 0) die("sigaction");

  static uint8_t out[8 + 136 + 16 + MAX_DATA];
  static uint8_t hdr[8];
  uint8_t *cbase = (uint8_t *)code;
  uint64_t exit_addr = (uint64_t)(uintptr_t)&dt_exit;
  for (;;) {
    alarm(60); /* a runaway case must not hang the tester */
    if (!read_full(hdr, 8)) break;
    uint32_t clen, coff;
    memcpy(&clen, hdr, 4);
    memcpy(&coff, hdr + 4, 4);
    if (clen > CODE_SIZE - 64 || coff > CODE_SIZE - 64 - clen) die("code too long");
    if (!read_full(&g_in, sizeof g_in)) die("truncated input");
    memset((void *)dpage, 0, dmap);
    if (!read_full((void *)data, dsize)) die("truncated input");
    uint8_t *cbuf = cbase + coff;
    g_code = code + coff;
    if (clen && !read_full(cbuf, clen)) die("truncated input");
    /* jmp qword [rip+0]; dq dt_exit */
    cbuf[clen] = 0xff;
    cbuf[clen + 1] = 0x25;
    memset(cbuf + clen + 2, 0, 4);
    memcpy(cbuf + clen + 6, &exit_addr, 8);
    g_sig = 0;
    g_fault_rip = 0;
    g_fault_addr = 0;
    uint32_t status = 0;
    if (sigsetjmp(g_jmp, 1) == 0) {
      dt_enter();
    } else {
      status = (uint32_t)g_sig;
      g_out = g_fault;
    }
    uint32_t hash = 0x811c9dc5u;
    for (size_t k = 0; k < dmap; k++) {
      uint64_t a = dpage + k;
      if (a >= data && a < data + dsize) continue;
      hash = (hash ^ ((uint8_t *)dpage)[k]) * 16777619u;
    }
    memcpy(out, &status, 4);
    memcpy(out + 4, &hash, 4);
    memcpy(out + 8, &g_out, 136);
    uint64_t fr = g_fault_rip;
    memcpy(out + 144, &fr, 8);
    uint64_t fa = g_fault_addr;
    memcpy(out + 152, &fa, 8);
    memcpy(out + 160, (void *)data, dsize);
    if (fwrite(out, 1, 160 + dsize, stdout) != 160 + dsize) die("write failed");
  }
  fflush(stdout);
  return 0;
}
