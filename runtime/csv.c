/* csv.c — reading numeric CSV files into an F32 [rows, cols] tensor.
 *
 * One example a row, fields separated by commas, optional blanks around fields, LF, CRLF
 * or CR-only line ends (old Mac files, as pandas reads them), blank lines allowed at the
 * end only, and a UTF-8 byte order mark (as spreadsheet programs write) skipped.  UTF-16
 * files (a byte order mark FF FE or FE FF, or NUL bytes) are refused with a message that
 * says so.
 *
 * The first row is a header when none of its fields reads as a number (names, or empty);
 * a first row that mixes numbers with other text is an error, since it is more likely a
 * corrupt data row than a header.  Every later field must be a finite decimal number:
 * [sign] digits [. digits] [e [sign] digits].  Hexadecimal (0x10, which strtod would take
 * as 16), inf, nan, a value beyond F32's range and an empty field are errors, and every
 * row must have as many fields as the first.  Errors give "FILE:LINE: field N 'TEXT' ...".
 *
 * One column named in the header may be kept as text as well (nnr_csv_read_text): a label
 * column of class names ("setosa").  Its fields may be any non-empty text; those that are
 * not numbers read as NaN, and the caller decides from the text what they mean.
 */
#include "nnr.h"

#include <ctype.h>
#include <errno.h>
#include <float.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

typedef enum {
    FIELD_NUMBER, FIELD_EMPTY, FIELD_TEXT, FIELD_RANGE, FIELD_HEX, FIELD_NONFINITE
} field_kind;

typedef struct reader {
    const char *path;
    long        line;                    /* 1-based number of the line being read */
    int         cols;                    /* fields per row; 0 until the first row */
    float      *v;                       /* rows * cols values read so far */
    int64_t     n, cap;
    float      *row;                     /* the current row's values */
    char      **field;                   /* and its fields' text, trimmed */
    int         row_cap;
    char      **names;                   /* the header row's fields; NULL: no header */
    const char *keep;                    /* the header name of the column kept as text */
    int         keep_col;                /* its index; -1: none (yet) */
    char       *text;                    /* its fields, each NUL-terminated, row after row */
    size_t      text_len, text_cap;
} reader;

static char *trim(char *s) {
    while (*s == ' ' || *s == '\t') s++;
    size_t n = strlen(s);
    while (n > 0 && (s[n - 1] == ' ' || s[n - 1] == '\t')) s[--n] = 0;
    return s;
}

/* [sign] digits [. digits] [e [sign] digits], with a digit before or after the point:
 * what a CSV writer prints, and nothing else strtod would also take. */
static int is_decimal(const char *s) {
    int digits = 0;
    if (*s == '+' || *s == '-') s++;
    for (; isdigit((unsigned char)*s); s++) digits++;
    if (*s == '.')
        for (s++; isdigit((unsigned char)*s); s++) digits++;
    if (!digits) return 0;
    if (*s == 'e' || *s == 'E') {
        s++;
        if (*s == '+' || *s == '-') s++;
        if (!isdigit((unsigned char)*s)) return 0;
        while (isdigit((unsigned char)*s)) s++;
    }
    return *s == 0;
}

static field_kind classify_text(const char *s) {
    const char *u = *s == '+' || *s == '-' ? s + 1 : s;
    if (strcasecmp(u, "inf") == 0 || strcasecmp(u, "infinity") == 0 || strcasecmp(u, "nan") == 0)
        return FIELD_NONFINITE;
    if (u[0] == '0' && (u[1] == 'x' || u[1] == 'X') && isxdigit((unsigned char)u[2]))
        return FIELD_HEX;
    return FIELD_TEXT;
}

static field_kind parse_field(const char *s, float *out) {
    if (!*s) return FIELD_EMPTY;
    if (!is_decimal(s)) return classify_text(s);
    errno = 0;
    double d = strtod(s, NULL);
    /* ERANGE with a large result is overflow; with a tiny one, a harmless underflow. */
    if ((errno == ERANGE && fabs(d) > 1) || fabs(d) > FLT_MAX) return FIELD_RANGE;
    *out = (float)d;
    return FIELD_NUMBER;
}

static const char *field_problem(field_kind k) {
    switch (k) {
    case FIELD_EMPTY:     return "is empty";
    case FIELD_RANGE:     return "is out of range for F32";
    case FIELD_HEX:       return "is hexadecimal; only decimal numbers are read";
    case FIELD_NONFINITE: return "is not finite; data values must be finite numbers";
    default:              return "is not a number";
    }
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
    if (row) r->row = row;
    char **field = row ? realloc(r->field, (size_t)cap * sizeof *field) : NULL;
    if (!field) {
        nnr_set_error("%s:%ld: out of memory", r->path, r->line);
        return -1;
    }
    r->field = field;
    r->row_cap = cap;
    return 0;
}

/* The kept column's field of the current row, appended to r->text. */
static int push_text(reader *r, const char *s) {
    size_t n = strlen(s) + 1;
    if (r->text_len + n > r->text_cap) {
        size_t cap = r->text_cap ? 2 * r->text_cap : 4096;
        while (cap < r->text_len + n) cap *= 2;
        char *t = realloc(r->text, cap);
        if (!t) {
            nnr_set_error("%s:%ld: out of memory", r->path, r->line);
            return -1;
        }
        r->text = t;
        r->text_cap = cap;
    }
    memcpy(r->text + r->text_len, s, n);
    r->text_len += n;
    return 0;
}

/* The kept texts as `rows` pointers and a NULL, followed by the text, in one allocation. */
static char **kept_texts(reader *r, int64_t rows) {
    char **v = malloc((size_t)(rows + 1) * sizeof *v + r->text_len);
    if (!v) {
        nnr_set_error("%s: out of memory", r->path);
        return NULL;
    }
    char *t = memcpy((char *)(v + rows + 1), r->text, r->text_len);
    for (int64_t i = 0; i < rows; i++) {
        v[i] = t;
        t += strlen(t) + 1;
    }
    v[rows] = NULL;
    return v;
}

/* One row's fields: how many, and the first of each sort that matters for the header
 * rule and the messages (1-based; 0: none). */
typedef struct row_scan {
    int nf, first_text, first_numeric, first_bad;
    field_kind bad_kind;
} row_scan;

/* Splits line in place at its commas and parses every field into r->row. */
static int scan_row(reader *r, char *line, row_scan *sc) {
    memset(sc, 0, sizeof *sc);
    for (char *s = line, *next; s; s = next) {
        if ((next = strchr(s, ','))) *next++ = 0;
        if (push_row_slot(r, sc->nf)) return -1;
        r->field[sc->nf] = trim(s);
        field_kind k = parse_field(r->field[sc->nf], &r->row[sc->nf]);
        if (sc->nf == r->keep_col && k != FIELD_NUMBER && k != FIELD_EMPTY) {
            r->row[sc->nf] = NAN;        /* text, such as a class name: the caller reads it */
            k = FIELD_NUMBER;
        }
        sc->nf++;
        if (k == FIELD_TEXT && !sc->first_text) sc->first_text = sc->nf;
        if (k != FIELD_TEXT && k != FIELD_EMPTY && !sc->first_numeric) sc->first_numeric = sc->nf;
        if (k != FIELD_NUMBER && !sc->first_bad) sc->first_bad = sc->nf, sc->bad_kind = k;
    }
    return 0;
}

/* The header's fields, surrounding double quotes dropped, as one allocation: nf
 * pointers, then the text they point into. */
static int keep_header(reader *r, int nf) {
    size_t bytes = 0;
    for (int i = 0; i < nf; i++) bytes += strlen(r->field[i]) + 1;
    if (!(r->names = malloc((size_t)(nf + 1) * sizeof *r->names + bytes))) {
        nnr_set_error("%s:%ld: out of memory", r->path, r->line);
        return -1;
    }
    char *text = (char *)(r->names + nf + 1);
    for (int i = 0; i < nf; i++) {
        size_t n = strlen(strcpy(text, r->field[i]));
        r->names[i] = text;
        if (n >= 2 && text[0] == '"' && text[n - 1] == '"') text[n - 1] = 0, r->names[i]++;
        text += n + 1;
    }
    r->names[nf] = NULL;
    return 0;
}

/* The first row: a header when it has text and nothing that reads as a number. */
static int first_row(reader *r, const row_scan *sc, int *is_header) {
    *is_header = sc->first_text && !sc->first_numeric;
    if (*is_header) {
        if (keep_header(r, sc->nf)) return -1;
        for (int i = 0; r->keep && i < sc->nf && r->keep_col < 0; i++)
            if (strcmp(r->names[i], r->keep) == 0) r->keep_col = i;
        return 0;
    }
    if (!sc->first_text) return 0;
    nnr_set_error("%s:%ld: field %d '%.40s' is not a number, but field %d '%.40s' is: a first row "
                  "is a header only when none of its fields is a number", r->path, r->line,
                  sc->first_text, r->field[sc->first_text - 1], sc->first_numeric,
                  r->field[sc->first_numeric - 1]);
    return -1;
}

/* Parses one non-blank line.  Splits in place at the commas. */
static int parse_line(reader *r, char *line) {
    row_scan sc;
    if (scan_row(r, line, &sc)) return -1;
    if (r->cols == 0) {
        int is_header;
        if (first_row(r, &sc, &is_header)) return -1;
        r->cols = sc.nf;
        if (is_header) return 0;
    }
    if (sc.nf != r->cols) {
        nnr_set_error("%s:%ld: expected %d fields, found %d", r->path, r->line, r->cols, sc.nf);
        return -1;
    }
    if (sc.first_bad) {
        nnr_set_error("%s:%ld: field %d '%.40s' %s", r->path, r->line, sc.first_bad,
                      r->field[sc.first_bad - 1], field_problem(sc.bad_kind));
        return -1;
    }
    for (int i = 0; i < sc.nf; i++)
        if (push_value(r, r->row[i])) return -1;
    return r->keep_col >= 0 ? push_text(r, r->field[r->keep_col]) : 0;
}

/* UTF-16 text reads as bytes with a NUL in every other place; it is refused by name,
 * since "not a number" would hide the real problem. */
static int check_encoding(const char *path, const unsigned char *b, int64_t len) {
    if (len >= 2 && ((b[0] == 0xFF && b[1] == 0xFE) || (b[0] == 0xFE && b[1] == 0xFF))) {
        nnr_set_error("%s: the file is UTF-16 text (byte order mark %02X %02X); save it as "
                      "UTF-8 (or ASCII) CSV", path, b[0], b[1]);
        return -1;
    }
    const unsigned char *nul = memchr(b, 0, (size_t)len);
    if (!nul) return 0;
    long line = 1;
    for (const unsigned char *p = b; p < nul; p++)
        line += *p == '\n' || (*p == '\r' && p[1] != '\n');
    nnr_set_error("%s:%ld: a NUL byte (offset %lld): the file looks like UTF-16 text or binary "
                  "data; save it as UTF-8 (or ASCII) CSV", path, line, (long long)(nul - b));
    return -1;
}

/* The next line of buf (NUL-terminated in place, its LF, CRLF or CR dropped), or NULL at
 * the end; *at moves past it. */
static char *next_line(char *buf, int64_t len, int64_t *at) {
    if (*at >= len) return NULL;
    char *line = buf + *at;
    int64_t i = *at;
    while (i < len && buf[i] != '\n' && buf[i] != '\r') i++;
    *at = i + 1 + (i + 1 < len && buf[i] == '\r' && buf[i + 1] == '\n');
    buf[i] = 0;                          /* buf has a spare byte past len */
    return line;
}

static int read_lines(reader *r, char *buf, int64_t len) {
    long blank = 0;                      /* first blank line not yet followed by data */
    int64_t at = 0;
    if (len >= 3 && memcmp(buf, "\xEF\xBB\xBF", 3) == 0) at = 3;
    for (char *line; (line = next_line(buf, len, &at));) {
        r->line++;
        if (!*trim(line)) {
            if (!blank) blank = r->line;
            continue;
        }
        if (blank) {
            nnr_set_error("%s:%ld: empty line inside the data", r->path, blank);
            return -1;
        }
        if (parse_line(r, line)) return -1;
    }
    return 0;
}

int nnr_csv_read_text(const char *path, nnr_tensor *out, char ***names, const char *keep,
                      char ***texts) {
    memset(out, 0, sizeof *out);
    if (names) *names = NULL;
    if (texts) *texts = NULL;
    unsigned char *buf;
    int64_t len;
    if (nnr_read_file(path, &buf, &len)) return -1;
    reader r = {.path = path, .keep = texts ? keep : NULL, .keep_col = -1};
    int rc = check_encoding(path, buf, len) || read_lines(&r, (char *)buf, len) ? -1 : 0;
    if (rc == 0 && r.n == 0) {
        nnr_set_error("%s: no data rows%s", path, r.names ? " after its header row" : "");
        rc = -1;
    }
    if (rc == 0 && r.keep_col >= 0 && !(*texts = kept_texts(&r, r.n / r.cols))) rc = -1;
    free(buf);
    free(r.row);
    free(r.field);
    free(r.text);
    if (rc == 0 && names) *names = r.names;
    else free(r.names);
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

int nnr_csv_read_named(const char *path, nnr_tensor *out, char ***names) {
    return nnr_csv_read_text(path, out, names, NULL, NULL);
}

int nnr_csv_read(const char *path, nnr_tensor *out) { return nnr_csv_read_named(path, out, NULL); }
