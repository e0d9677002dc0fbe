/* plot.c — `m plot run.csv -o curves.svg`: the learning curves of a train --log file as a
 * standalone SVG, written by hand (no library).  "-" reads the log from standard input or
 * writes the SVG to standard output.
 *
 * The log has a header row naming its columns (epoch, train_loss, test_loss,
 * test_accuracy, seconds, with a validation split val_loss, val_accuracy, then lr and the
 * quoted optimizer); columns are found by name, so other columns and their order do not
 * matter, and a field left empty was not measured.  The SVG has two panels side by side: the losses (train,
 * val, test) and the accuracies (val, test) against the epoch, each with axes, "nice"
 * ticks (1, 2 or 5 times a power of ten), gridlines, axis labels, a title and a legend.
 * A curve with no values is left out of its panel and its legend; an unmeasured epoch
 * breaks its line.
 */
#include "nnr.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#define SVG_W    960
#define SVG_H    420
#define PANEL_W  (SVG_W / 2)
#define MARGIN_L 70
#define MARGIN_R 20
#define MARGIN_T 50
#define MARGIN_B 60

typedef enum { C_EPOCH, C_TRAIN_LOSS, C_VAL_LOSS, C_TEST_LOSS, C_VAL_ACC, C_TEST_ACC, NCURVE_COLS } col_id;
static const char *const col_names[NCURVE_COLS] = {"epoch", "train_loss", "val_loss", "test_loss",
                                                   "val_accuracy", "test_accuracy"};

/* The log's columns of interest; NAN where a field is empty or the column is absent. */
typedef struct curves {
    double *v[NCURVE_COLS];          /* v[c][row] */
    int     rows, cap;
} curves;

static void curves_free(curves *cv) {
    for (int c = 0; c < NCURVE_COLS; c++) free(cv->v[c]);
}

/* The next field of a CSV line, NUL-terminated in place, its quotes removed ("" inside
 * quotes is one quote); *s moves past it and its comma, to NULL after the last field. */
static char *next_field(char **s) {
    char *start = *s, *w = start, *r = start;
    if (*r == '"') {
        for (r++; *r && !(*r == '"' && r[1] != '"'); r++) {
            if (*r == '"') r++;
            *w++ = *r;
        }
        if (*r == '"') r++;
    } else {
        while (*r && *r != ',') *w++ = *r++;
    }
    char *rest = *r == ',' ? r + 1 : NULL;
    *w = '\0';
    start[strcspn(start, "\r\n")] = '\0';
    *s = rest;
    return start;
}

/* Which of our columns each field of the header is (-1: not one of them). */
static int parse_header(const char *path, char *line, int *which, int cap, int *nfields) {
    int n = 0, have_epoch = 0;
    for (char *rest = line; rest;) {
        char *s = next_field(&rest);
        if (n == cap) break;
        which[n] = -1;
        for (int c = 0; c < NCURVE_COLS; c++)
            if (strcmp(s, col_names[c]) == 0) which[n] = c;
        have_epoch |= which[n] == C_EPOCH;
        n++;
    }
    if (!have_epoch) {
        nnr_set_error("%s: no 'epoch' column in the header; plot reads the file train --log "
                      "writes", path);
        return -1;
    }
    *nfields = n;
    return 0;
}

static int grow(const char *path, curves *cv) {
    if (cv->rows < cv->cap) return 0;
    int cap = cv->cap ? 2 * cv->cap : 64;
    for (int c = 0; c < NCURVE_COLS; c++) {
        double *p = realloc(cv->v[c], (size_t)cap * sizeof *p);
        if (!p) {
            nnr_set_error("%s: out of memory", path);
            return -1;
        }
        cv->v[c] = p;
    }
    cv->cap = cap;
    return 0;
}

static int parse_row(const char *path, long lineno, char *line, const int *which, int nfields,
                     curves *cv) {
    if (grow(path, cv)) return -1;
    int r = cv->rows, f = 0;
    for (int c = 0; c < NCURVE_COLS; c++) cv->v[c][r] = NAN;
    for (char *rest = line; rest && f < nfields; f++) {
        char *s = next_field(&rest);
        if (which[f] < 0 || !*s) continue;
        char *end;
        double x = strtod(s, &end);
        if (*end || !isfinite(x)) {
            nnr_set_error("%s:%ld: field '%.40s' of column %s is not a number", path, lineno, s,
                          col_names[which[f]]);
            return -1;
        }
        cv->v[which[f]][r] = x;
    }
    if (isnan(cv->v[C_EPOCH][r])) {
        nnr_set_error("%s:%ld: no epoch number", path, lineno);
        return -1;
    }
    cv->rows++;
    return 0;
}

static int read_log(const char *path, curves *cv) {
    int is_stdin = strcmp(path, "-") == 0;
    FILE *f = is_stdin ? stdin : fopen(path, "r");
    if (!f) {
        nnr_set_error("%s: %s", path, strerror(errno));
        return -1;
    }
    char *line = NULL;
    size_t cap = 0;
    int which[64], nfields = 0, rc = 0;
    long lineno = 0;
    while (rc == 0 && getline(&line, &cap, f) >= 0) {
        lineno++;
        if (lineno == 1) rc = parse_header(path, line, which, 64, &nfields);
        else if (line[strspn(line, " \t\r\n")]) rc = parse_row(path, lineno, line, which, nfields, cv);
    }
    free(line);
    if (!is_stdin) fclose(f);
    if (rc == 0 && lineno == 0) {
        nnr_set_error("%s: empty file", path);
        rc = -1;
    } else if (rc == 0 && cv->rows == 0) {
        nnr_set_error("%s: no epochs logged yet", path);
        rc = -1;
    }
    return rc;
}

/* ---- drawing ------------------------------------------------------------------------- */

typedef struct axis { double lo, hi, step; } axis;

static double nice_step(double span, int target) {
    double raw = span / target, p = pow(10, floor(log10(raw))), m = raw / p;
    return (m <= 1 ? 1 : m <= 2 ? 2 : m <= 5 ? 5 : 10) * p;
}

/* An axis covering [lo, hi] with round ends and about `target` ticks. */
static axis make_axis(double lo, double hi, int target, int integral) {
    if (!(hi > lo)) {
        double pad = fabs(lo) > 0 ? fabs(lo) * 0.1 : 0.5;
        lo -= pad;
        hi += pad;
    }
    axis a;
    a.step = nice_step(hi - lo, target);
    if (integral && a.step < 1) a.step = 1;
    a.lo = floor(lo / a.step + 1e-9) * a.step;
    a.hi = ceil(hi / a.step - 1e-9) * a.step;
    return a;
}

typedef struct panel {
    double x0, y0, w, h;             /* the plotting area in SVG coordinates */
    axis   ax, ay;
} panel;

static double px(const panel *p, double x) { return p->x0 + (x - p->ax.lo) / (p->ax.hi - p->ax.lo) * p->w; }
static double py(const panel *p, double y) { return p->y0 + p->h - (y - p->ay.lo) / (p->ay.hi - p->ay.lo) * p->h; }

static void tick_label(char *buf, size_t cap, double v, double step) {
    int decimals = step >= 1 ? 0 : (int)ceil(-log10(step) - 1e-9);
    snprintf(buf, cap, "%.*f", decimals, fabs(v) < step * 1e-9 ? 0.0 : v);
}

static void draw_axes(FILE *f, const panel *p, const char *title, const char *ylabel) {
    char buf[32];
    fprintf(f, "  <text x=\"%.1f\" y=\"%.1f\" text-anchor=\"middle\" font-size=\"16\" "
               "font-weight=\"bold\">%s</text>\n", p->x0 + p->w / 2, p->y0 - 20, title);
    for (double y = p->ay.lo; y <= p->ay.hi + p->ay.step * 1e-6; y += p->ay.step) {
        fprintf(f, "  <line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" stroke=\"#dddddd\"/>\n",
                p->x0, py(p, y), p->x0 + p->w, py(p, y));
        tick_label(buf, sizeof buf, y, p->ay.step);
        fprintf(f, "  <text x=\"%.1f\" y=\"%.1f\" text-anchor=\"end\" font-size=\"12\">%s</text>\n",
                p->x0 - 6, py(p, y) + 4, buf);
    }
    for (double x = p->ax.lo; x <= p->ax.hi + p->ax.step * 1e-6; x += p->ax.step) {
        fprintf(f, "  <line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" stroke=\"#000000\"/>\n",
                px(p, x), p->y0 + p->h, px(p, x), p->y0 + p->h + 5);
        tick_label(buf, sizeof buf, x, p->ax.step);
        fprintf(f, "  <text x=\"%.1f\" y=\"%.1f\" text-anchor=\"middle\" font-size=\"12\">%s</text>\n",
                px(p, x), p->y0 + p->h + 19, buf);
    }
    fprintf(f, "  <rect x=\"%.1f\" y=\"%.1f\" width=\"%.1f\" height=\"%.1f\" fill=\"none\" "
               "stroke=\"#000000\"/>\n", p->x0, p->y0, p->w, p->h);
    fprintf(f, "  <text x=\"%.1f\" y=\"%.1f\" text-anchor=\"middle\" font-size=\"13\">epoch</text>\n",
            p->x0 + p->w / 2, p->y0 + p->h + 40);
    fprintf(f, "  <text x=\"%.1f\" y=\"%.1f\" text-anchor=\"middle\" font-size=\"13\" "
               "transform=\"rotate(-90 %.1f %.1f)\">%s</text>\n", p->x0 - 50, p->y0 + p->h / 2,
            p->x0 - 50, p->y0 + p->h / 2, ylabel);
}

static int has_values(const curves *cv, int c) {
    for (int r = 0; r < cv->rows; r++)
        if (!isnan(cv->v[c][r])) return 1;
    return 0;
}

/* One curve: polylines between measured points (a gap breaks the line) and markers. */
static void draw_curve(FILE *f, const panel *p, const curves *cv, int c, const char *color) {
    fprintf(f, "  <g class=\"curve\" id=\"%s\" stroke=\"%s\" fill=\"%s\">\n", col_names[c], color, color);
    int open = 0;
    for (int r = 0; r < cv->rows; r++) {
        double y = cv->v[c][r];
        if (isnan(y)) {
            if (open) fprintf(f, "\"/>\n");
            open = 0;
            continue;
        }
        if (!open) fprintf(f, "    <polyline fill=\"none\" stroke-width=\"2\" points=\"");
        fprintf(f, "%s%.1f,%.1f", open ? " " : "", px(p, cv->v[C_EPOCH][r]), py(p, y));
        open = 1;
    }
    if (open) fprintf(f, "\"/>\n");
    for (int r = 0; r < cv->rows; r++)
        if (!isnan(cv->v[c][r]))
            fprintf(f, "    <circle cx=\"%.1f\" cy=\"%.1f\" r=\"3\"/>\n", px(p, cv->v[C_EPOCH][r]),
                    py(p, cv->v[c][r]));
    fprintf(f, "  </g>\n");
}

static const char *color_of(int c) {
    return c == C_TRAIN_LOSS ? "#1f77b4" : c == C_VAL_LOSS || c == C_VAL_ACC ? "#2ca02c" : "#d62728";
}

static const char *label_of(int c) {
    return c == C_TRAIN_LOSS ? "train" : c == C_VAL_LOSS || c == C_VAL_ACC ? "validation" : "test";
}

/* Whether the curves' points in the right 40% of the panel lie mostly in its upper half,
 * where a top-right legend would cover them. */
static int right_side_high(const panel *p, const curves *cv, const int *cols, int n) {
    int high = 0, low = 0;
    for (int i = 0; i < n; i++)
        for (int r = 0; r < cv->rows; r++) {
            double y = cv->v[cols[i]][r];
            if (isnan(y) || px(p, cv->v[C_EPOCH][r]) < p->x0 + 0.6 * p->w) continue;
            if (py(p, y) < p->y0 + p->h / 2) high++;
            else low++;
        }
    return high > low;
}

/* The legend, in the right-hand corner (top or bottom) the curves leave free. */
static void draw_legend(FILE *f, const panel *p, const curves *cv, const int *cols, int n) {
    int shown = 0;
    for (int i = 0; i < n; i++) shown += has_values(cv, cols[i]);
    if (!shown) return;
    double x = p->x0 + p->w - 110, y = p->y0 + 8;
    if (right_side_high(p, cv, cols, n)) y = p->y0 + p->h - 8 - (8 + 18 * shown);
    fprintf(f, "  <g class=\"legend\">\n    <rect x=\"%.1f\" y=\"%.1f\" width=\"102\" height=\"%d\" "
               "fill=\"#ffffff\" fill-opacity=\"0.85\" stroke=\"#999999\"/>\n", x, y, 8 + 18 * shown);
    for (int i = 0, k = 0; i < n; i++) {
        if (!has_values(cv, cols[i])) continue;
        double ly = y + 16 + 18 * k++;
        fprintf(f, "    <line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" stroke=\"%s\" "
                   "stroke-width=\"2\"/>\n", x + 8, ly - 4, x + 32, ly - 4, color_of(cols[i]));
        fprintf(f, "    <text x=\"%.1f\" y=\"%.1f\" font-size=\"12\">%s</text>\n", x + 38, ly,
                label_of(cols[i]));
    }
    fprintf(f, "  </g>\n");
}

/* The y range over the given columns; empty panels get [0, 1]. */
static void y_range(const curves *cv, const int *cols, int n, double *lo, double *hi) {
    *lo = INFINITY;
    *hi = -INFINITY;
    for (int i = 0; i < n; i++)
        for (int r = 0; r < cv->rows; r++) {
            double v = cv->v[cols[i]][r];
            if (isnan(v)) continue;
            *lo = fmin(*lo, v);
            *hi = fmax(*hi, v);
        }
    if (*lo > *hi) *lo = 0, *hi = 1;
}

static void draw_panel(FILE *f, const curves *cv, int index, const char *title, const char *ylabel,
                       const int *cols, int n, axis ax) {
    panel p = {index * PANEL_W + MARGIN_L, MARGIN_T, PANEL_W - MARGIN_L - MARGIN_R,
               SVG_H - MARGIN_T - MARGIN_B, ax, {0, 1, 1}};
    double lo, hi;
    y_range(cv, cols, n, &lo, &hi);
    p.ay = make_axis(lo, hi, 6, 0);
    fprintf(f, " <g class=\"panel\" id=\"%s\">\n", title);
    draw_axes(f, &p, title, ylabel);
    for (int i = 0; i < n; i++)
        if (has_values(cv, cols[i])) draw_curve(f, &p, cv, cols[i], color_of(cols[i]));
    draw_legend(f, &p, cv, cols, n);
    fprintf(f, " </g>\n");
}

static void write_svg(FILE *f, const curves *cv, const char *source) {
    double lo = INFINITY, hi = -INFINITY;
    for (int r = 0; r < cv->rows; r++) {
        lo = fmin(lo, cv->v[C_EPOCH][r]);
        hi = fmax(hi, cv->v[C_EPOCH][r]);
    }
    axis ax = make_axis(lo, hi, 8, 1);
    fprintf(f, "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
               "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"%d\" height=\"%d\" "
               "viewBox=\"0 0 %d %d\" font-family=\"sans-serif\">\n", SVG_W, SVG_H, SVG_W, SVG_H);
    fprintf(f, " <title>learning curves of ");
    for (const char *s = source; *s; s++) {            /* the path, XML-escaped */
        if (*s == '<') fputs("&lt;", f);
        else if (*s == '>') fputs("&gt;", f);
        else if (*s == '&') fputs("&amp;", f);
        else fputc(*s, f);
    }
    fprintf(f, "</title>\n <rect width=\"%d\" height=\"%d\" fill=\"#ffffff\"/>\n", SVG_W, SVG_H);
    static const int loss_cols[] = {C_TRAIN_LOSS, C_VAL_LOSS, C_TEST_LOSS};
    static const int acc_cols[] = {C_VAL_ACC, C_TEST_ACC};
    draw_panel(f, cv, 0, "loss", "loss", loss_cols, 3, ax);
    draw_panel(f, cv, 1, "accuracy", "accuracy", acc_cols, 2, ax);
    fprintf(f, "</svg>\n");
}

int nnr_plot_svg(const char *csv_path, const char *svg_path) {
    curves cv = {0};
    int rc = read_log(csv_path, &cv), to_stdout = strcmp(svg_path, "-") == 0;
    FILE *f = NULL;
    if (rc == 0 && !(f = to_stdout ? stdout : fopen(svg_path, "w"))) {
        nnr_set_error("%s: %s", svg_path, strerror(errno));
        rc = -1;
    }
    if (rc == 0) {
        write_svg(f, &cv, strcmp(csv_path, "-") ? csv_path : "standard input");
        if (ferror(f) | (to_stdout ? fflush(f) : fclose(f))) {
            nnr_set_error("%s: write failed: %s", to_stdout ? "standard output" : svg_path,
                          strerror(errno));
            rc = -1;
        }
    }
    curves_free(&cv);
    return rc;
}
