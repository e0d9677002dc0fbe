/* csv.c — reading numeric CSV files into an F32 [rows, cols] tensor.
 *
 * One example a row, fields separated by commas, optional blanks around fields, LF or
 * CRLF line ends, blank lines allowed at the end only, and a UTF-8 byte order mark (as
 * spreadsheet programs write) skipped.  A first row with any non-numeric field is a
 * header and skipped; after that every field must be a number strtod reads completely
 * and every row must have as many fields as the first.  Errors give "FILE:LINE: ...".
 */
#include "nnr.h"

#include <errno.h>
#include <float.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

typedef enum { FIELD_NUMBER, FIELD_EMPTY, FIELD_TEXT, FIELD_RANGE } field_kind;

typedef struct reader {
    const char *path;
    long        line;                    /* 1-based number of the line being read */
    int         cols;                    /* fields per row; 0 until the first row */
    float      *v;                       /* rows * cols values read so far */
    int64_t     n, cap;
    float      *row;                     /* the current row's values */
    int         row_cap;
} reader;

static char *trim(char *s) {
    while (*s == ' ' || *s == '\t') s++;
    size_t n = strlen(s);
    while (n > 0 && strchr(" \t\r\n", s[n - 1])) s[--n] = 0;
    return s;
}

static field_kind parse_field(char *text, float *out) {
    char *s = trim(text), *end;
    if (!*s) return FIELD_EMPTY;
    errno = 0;
    double d = strtod(s, &end);
    if (*end) return FIELD_TEXT;
    /* ERANGE with a large result is overflow; with a tiny one, a harmless underflow. */
    if ((errno == ERANGE && fabs(d) > 1) || (isfinite(d) && fabs(d) > FLT_MAX)) return FIELD_RANGE;
    *out = (float)d;
    return FIELD_NUMBER;
}

static int push_value(reader *r, float x) {
    if (r->n == r->cap) {
        int64_t cap = r->cap ? 2 * r->cap : 1024;
        float *v = realloc(r->v, (size_t)cap * sizeof *v);
        if (!v) {
            nnr_set_error("%s:%ld: out of memory", r->path, r->line);
            return -1;
        }
        r->v = v;
        r->cap = cap;
    }
    r->v[r->n++] = x;
    return 0;
}

static int push_row_slot(reader *r, int k) {
    if (k < r->row_cap) return 0;
    int cap = r->row_cap ? 2 * r->row_cap : 64;
    float *row = realloc(r->row, (size_t)cap * sizeof *row);
    if (!row) {
        nnr_set_error("%s:%ld: out of memory", r->path, r->line);
        return -1;
    }
    r->row = row;
    r->row_cap = cap;
    return 0;
}

/* Parses one non-blank line.  Splits in place at the commas. */
static int parse_line(reader *r, char *line) {
    int nf = 0, any_text = 0, bad = 0;         /* bad: 1-based first field not a number */
    field_kind bad_kind = FIELD_NUMBER;
    char *bad_text = NULL;
    for (char *s = line, *next; s; s = next) {
        if ((next = strchr(s, ','))) *next++ = 0;
        if (push_row_slot(r, nf)) return -1;
        field_kind k = parse_field(s, &r->row[nf++]);
        any_text |= k == FIELD_TEXT;
        if (k != FIELD_NUMBER && !bad) bad = nf, bad_kind = k, bad_text = trim(s);
    }
    int first = r->cols == 0;
    if (first && any_text) {                              /* a header */
        r->cols = nf;
        return 0;
    }
    if (first) r->cols = nf;
    if (nf != r->cols) {
        nnr_set_error("%s:%ld: expected %d fields, found %d", r->path, r->line, r->cols, nf);
        return -1;
    }
    if (bad) {
        const char *why = bad_kind == FIELD_EMPTY ? "is empty"
                        : bad_kind == FIELD_RANGE ? "is out of range for F32"
                                                  : "is not a number";
        nnr_set_error("%s:%ld: field %d '%.40s' %s", r->path, r->line, bad, bad_text, why);
        return -1;
    }
    for (int i = 0; i < nf; i++)
        if (push_value(r, r->row[i])) return -1;
    return 0;
}

static int read_lines(reader *r, FILE *f) {
    char *line = NULL;
    size_t cap = 0;
    long blank = 0;                      /* first blank line not yet followed by data */
    int rc = 0;
    while (rc == 0 && getline(&line, &cap, f) >= 0) {
        r->line++;
        char *s = line;
        if (r->line == 1 && strncmp(s, "\xEF\xBB\xBF", 3) == 0) s += 3;
        if (!*trim(s)) {
            if (!blank) blank = r->line;
            continue;
        }
        if (blank) {
            nnr_set_error("%s:%ld: empty line inside the data", r->path, blank);
            rc = -1;
        } else {
            rc = parse_line(r, s);
        }
    }
    if (rc == 0 && ferror(f)) {
        nnr_set_error("%s: read failed: %s", r->path, strerror(errno));
        rc = -1;
    }
    free(line);
    return rc;
}

int nnr_csv_read(const char *path, nnr_tensor *out) {
    memset(out, 0, sizeof *out);
    FILE *f = fopen(path, "r");
    if (!f) {
        nnr_set_error("%s: cannot open: %s", path, strerror(errno));
        return -1;
    }
    reader r = {.path = path};
    int rc = read_lines(&r, f);
    fclose(f);
    free(r.row);
    if (rc == 0 && r.n == 0) {
        nnr_set_error("%s: no data rows", path);
        rc = -1;
    }
    if (rc) {
        free(r.v);
        return -1;
    }
    out->dtype = NNR_F32;
    out->rank = 2;
    out->shape[0] = r.n / r.cols;
    out->shape[1] = r.cols;
    out->data = r.v;
    return 0;
}
