#ifndef NL_TYPES_H
#define NL_TYPES_H
typedef unsigned char u8;
typedef unsigned short u16;
typedef unsigned int u32;
typedef unsigned long u64;
typedef signed char i8;
typedef short i16;
typedef int i32;
typedef long i64;
typedef unsigned long size_t;
typedef unsigned long uintptr_t;
#define NULL ((void *)0)
#endif
