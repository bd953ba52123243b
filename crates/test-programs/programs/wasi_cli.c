// A small command-line program for `keel run` tests: prints its arguments
// and an environment variable, copies `in/input.txt` to `out/copy.txt`
// (upper-cased), lists `in/`, and exits with the status given as argv[1].
// It also says whether stdout is a terminal: programs such as brotli
// refuse to write binary data to one, so a pipe must not look like one.
#include <ctype.h>
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

int main(int argc, char **argv) {
    for (int i = 0; i < argc; i++) printf("arg %d: %s\n", i, argv[i]);
    const char *who = getenv("WHO");
    printf("WHO=%s\n", who ? who : "(unset)");
    printf("stdout is a terminal: %d\n", isatty(1));
    FILE *in = fopen("in/input.txt", "r");
    if (!in) { perror("open in/input.txt"); return 10; }
    FILE *out = fopen("out/copy.txt", "w");
    if (!out) { perror("open out/copy.txt"); fclose(in); return 11; }
    int c;
    while ((c = fgetc(in)) != EOF) fputc(toupper(c), out);
    fclose(in);
    fclose(out);
    DIR *d = opendir("in");
    if (d) {
        struct dirent *e;
        int n = 0;
        while ((e = readdir(d))) if (e->d_name[0] != '.') n++;
        closedir(d);
        printf("in/ has %d entries\n", n);
    }
    if (argc > 1 && strcmp(argv[1], "crash") == 0) {
        volatile int *p = (int *)0x7fffffff;
        return *p;
    }
    return argc > 1 ? atoi(argv[1]) : 0;
}
