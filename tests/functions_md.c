/* functions_md.c — prints docs/functions.md, the built-in functions as the table of
 * dsl/builtins.c lists them (builtins_markdown).  The ctest functions_md compares its
 * output with the checked-in file, so the docs cannot fall behind the table. */
#include "builtins.h"

int main(void) {
    builtins_markdown(stdout);
    return fflush(stdout) != 0;
}
