/* arena.h — one bump allocator per compilation.
 *
 * Every AST node, IR node, string and table of a compilation comes from one arena that
 * the driver frees once at exit: passes never free, so no pass owns memory and nothing
 * leaks when a pass stops early on an error. */
#ifndef NNC_ARENA_H
#define NNC_ARENA_H
#include <stddef.h>

typedef struct arena_block arena_block;
typedef struct arena { arena_block *head; } arena;

void *arena_alloc(arena *a, size_t size);                 /* zeroed, 16-byte aligned */
void *arena_grow(arena *a, void *old, size_t old_size, size_t new_size);
char *arena_strdup(arena *a, const char *s);
char *arena_strndup(arena *a, const char *s, size_t n);
char *arena_printf(arena *a, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void  arena_free(arena *a);

/* A growable array of pointers in an arena. */
typedef struct ptrvec { void **v; int n, cap; } ptrvec;
void ptrvec_push(arena *a, ptrvec *pv, void *p);
#endif
