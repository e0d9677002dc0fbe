/* source.h — a model file held in memory, with its lines indexed so that diagnostics
 * and generated-code comments can quote the line a construct comes from. */
#ifndef NNC_SOURCE_H
#define NNC_SOURCE_H
#include "arena.h"

typedef struct source {
    const char *path;        /* as given on the command line */
    const char *text;        /* NUL-terminated; embedded NULs are kept in len */
    size_t      len;
    int         nlines;
    const char **line;       /* line[i] starts line i+1 */
} source;

/* Reads PATH ("-" for standard input); NULL with errno set on failure. */
source *source_read(arena *a, const char *path);
source *source_from_string(arena *a, const char *path, const char *text);
/* Line `lineno` (1-based) without its newline; *n receives its length. */
const char *source_line(const source *s, int lineno, int *n);
#endif
