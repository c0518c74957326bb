#ifndef NL_PIPE_H
#define NL_PIPE_H
#include "types.h"

struct file;
int pipe_create(struct file **rd, struct file **wr);
void file_dup(struct file *f);
void file_close(struct file *f);
i64 file_read(struct file *f, u8 *buf, u64 n);
i64 file_write(struct file *f, const u8 *buf, u64 n);
#endif
