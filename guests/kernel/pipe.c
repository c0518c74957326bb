/* Pipes: a 512-byte ring per pipe; readers/writers block via sleep_on/wakeup. */
#include "pipe.h"
#include "proc.h"
#include "lib.h"

#define NPIPE 16
#define NFILE 64
#define PIPE_BUF_SIZE 512

struct pipe {
	u8 buf[PIPE_BUF_SIZE];
	u64 rpos, wpos;          /* free-running counters */
	int readers, writers, used;
};

struct file {
	struct pipe *pipe;
	int writable, refs;
};

static struct pipe pipes[NPIPE];
static struct file files[NFILE];

static struct file *file_alloc(struct pipe *p, int w)
{
	for (int i = 0; i < NFILE; i++) {
		if (!files[i].refs) {
			files[i] = (struct file){p, w, 1};
			return &files[i];
		}
	}
	return NULL;
}

int pipe_create(struct file **rd, struct file **wr)
{
	for (int i = 0; i < NPIPE; i++) {
		struct pipe *p = &pipes[i];
		if (p->used)
			continue;
		*rd = file_alloc(p, 0);
		if (!*rd)
			return -1;
		*wr = file_alloc(p, 1);
		if (!*wr) {
			(*rd)->refs = 0;
			return -1;
		}
		p->used = 1;
		p->rpos = p->wpos = 0;
		p->readers = p->writers = 1;
		return 0;
	}
	return -1;
}

void file_dup(struct file *f)
{
	f->refs++;
	if (f->writable)
		f->pipe->writers++;
	else
		f->pipe->readers++;
}

void file_close(struct file *f)
{
	struct pipe *p = f->pipe;
	if (f->writable)
		p->writers--;
	else
		p->readers--;
	f->refs--;
	if (!p->readers && !p->writers)
		p->used = 0;
	wakeup(p);
}

i64 file_read(struct file *f, u8 *buf, u64 n)
{
	struct pipe *p = f->pipe;
	if (f->writable)
		return -1;
	while (p->rpos == p->wpos) {
		if (!p->writers)
			return 0;
		sleep_on(p);
	}
	u64 k = 0;
	while (k < n && p->rpos != p->wpos)
		buf[k++] = p->buf[p->rpos++ % PIPE_BUF_SIZE];
	wakeup(p);
	return (i64)k;
}

i64 file_write(struct file *f, const u8 *buf, u64 n)
{
	struct pipe *p = f->pipe;
	if (!f->writable)
		return -1;
	u64 k = 0;
	while (k < n) {
		if (!p->readers)
			return k ? (i64)k : -1;
		if (p->wpos - p->rpos == PIPE_BUF_SIZE) {
			wakeup(p);
			sleep_on(p);
			continue;
		}
		p->buf[p->wpos++ % PIPE_BUF_SIZE] = buf[k++];
	}
	wakeup(p);
	return (i64)k;
}
