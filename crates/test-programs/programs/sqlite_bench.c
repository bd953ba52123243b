// Benchmark program: an in-memory SQLite database, filled and queried
// (a table of 20,000 rows, an index, an aggregate, a join), printing one
// checksum line (after a first line once the database is open). Built for WASI with SQLite's amalgamation
// (`scripts/fetch-sqlite`; see `keel_test_programs::sqlite`).
#include <stdio.h>
#include "sqlite3.h"

static long long checksum = 0;

static int row(void *unused, int n, char **values, char **names) {
    (void)unused; (void)names;
    for (int i = 0; i < n; i++)
        for (const char *p = values[i] ? values[i] : ""; *p; p++) checksum = checksum * 31 + *p;
    return 0;
}

int main(void) {
    sqlite3 *db;
    char *err = 0;
    if (sqlite3_open(":memory:", &db) != SQLITE_OK) return 1;
    // A first line as soon as the database is open, as a tool reports
    // progress: the benchmark's time to first output.
    printf("sqlite %s: database open\n", sqlite3_libversion());
    fflush(stdout);
    const char *sql =
        "CREATE TABLE t(id INTEGER PRIMARY KEY, name TEXT, score REAL, grp INTEGER);"
        "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < 20000)"
        "  INSERT INTO t SELECT x, 'name' || (x * 7919 % 10007), (x * 31 % 1000) / 10.0, x % 97 FROM c;"
        "CREATE INDEX t_grp ON t(grp, score);"
        "CREATE TABLE g(grp INTEGER PRIMARY KEY, label TEXT);"
        "WITH RECURSIVE c(x) AS (SELECT 0 UNION ALL SELECT x + 1 FROM c WHERE x < 96)"
        "  INSERT INTO g SELECT x, 'group' || x FROM c;"
        "SELECT g.label, count(*), round(avg(t.score), 3), max(t.name) FROM t JOIN g USING (grp)"
        "  WHERE t.score > 20 GROUP BY g.label ORDER BY 2 DESC, 1 LIMIT 20;";
    if (sqlite3_exec(db, sql, row, 0, &err) != SQLITE_OK) {
        fprintf(stderr, "sqlite: %s\n", err);
        return 1;
    }
    sqlite3_close(db);
    printf("sqlite %s checksum %lld\n", sqlite3_libversion(), checksum);
    return 0;
}
