/* wasi_files.c: file and directory operations inside a preopened directory (argv[1]): create, write,
 * read, seek, stat, truncate, times, append, readdir (many entries, so the buffer refills), rename,
 * symlink/readlink, unlink, mkdir/rmdir. Prints one line per step; exits 1 at the first failure.
 * Leaves <dir>/keep.txt behind for the test script to inspect on the host. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static char base[256];

static const char *at(const char *rel) {
    static char buf[4][512];
    static int k;
    k = (k + 1) % 4;
    snprintf(buf[k], sizeof buf[k], "%s/%s", base, rel);
    return buf[k];
}

#define CHECK(cond, ...)                                                                                     \
    do {                                                                                                     \
        if (!(cond)) {                                                                                       \
            printf("FAIL line %d: %s (errno %d %s)\n", __LINE__, #cond, errno, strerror(errno));              \
            exit(1);                                                                                         \
        }                                                                                                    \
    } while (0)

static int cmp(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

int main(int argc, char **argv) {
    CHECK(argc == 2);
    snprintf(base, sizeof base, "%s", argv[1]);
    char buf[256];

    CHECK(mkdir(at("d"), 0755) == 0);
    struct stat sb;
    CHECK(stat(at("d"), &sb) == 0 && S_ISDIR(sb.st_mode));
    CHECK(mkdir(at("d"), 0755) < 0 && errno == EEXIST);
    printf("ok mkdir\n");

    FILE *f = fopen(at("d/a.txt"), "w");
    CHECK(f);
    CHECK(fputs("hello world\n", f) >= 0);
    CHECK(fclose(f) == 0);
    int fd = open(at("d/a.txt"), O_RDWR);
    CHECK(fd >= 0);
    CHECK(lseek(fd, 6, SEEK_SET) == 6);
    CHECK(read(fd, buf, 5) == 5 && !memcmp(buf, "world", 5));
    CHECK(lseek(fd, 0, SEEK_CUR) == 11);
    CHECK(lseek(fd, 0, SEEK_END) == 12);
    CHECK(pwrite(fd, "HELLO", 5, 0) == 5);
    CHECK(pread(fd, buf, 11, 0) == 11 && !memcmp(buf, "HELLO world", 11));
    CHECK(lseek(fd, 0, SEEK_CUR) == 12); /* pread/pwrite leave the position alone */
    CHECK(fstat(fd, &sb) == 0 && sb.st_size == 12 && S_ISREG(sb.st_mode));
    printf("ok write read seek pread pwrite fstat\n");

    CHECK(ftruncate(fd, 5) == 0);
    CHECK(stat(at("d/a.txt"), &sb) == 0 && sb.st_size == 5);
    struct timespec ts[2] = {{.tv_sec = 1000000000, .tv_nsec = 0}, {.tv_sec = 1234567890, .tv_nsec = 500}};
    CHECK(futimens(fd, ts) == 0);
    CHECK(stat(at("d/a.txt"), &sb) == 0 && sb.st_mtim.tv_sec == 1234567890 && sb.st_atim.tv_sec == 1000000000);
    struct timespec ts2[2] = {{.tv_nsec = UTIME_OMIT}, {.tv_sec = 1500000000, .tv_nsec = 0}};
    CHECK(utimensat(AT_FDCWD, at("d/a.txt"), ts2, 0) == 0);
    CHECK(stat(at("d/a.txt"), &sb) == 0 && sb.st_mtim.tv_sec == 1500000000 && sb.st_atim.tv_sec == 1000000000);
    CHECK(close(fd) == 0);
    printf("ok truncate times\n");

    fd = open(at("d/a.txt"), O_WRONLY | O_APPEND);
    CHECK(fd >= 0);
    CHECK(write(fd, "+tail", 5) == 5);
    CHECK(close(fd) == 0);
    fd = open(at("d/a.txt"), O_RDONLY);
    CHECK(fd >= 0 && read(fd, buf, sizeof buf) == 10 && !memcmp(buf, "HELLO+tail", 10));
    CHECK(write(fd, "x", 1) < 0); /* opened read-only: no write right */
    CHECK(close(fd) == 0);
    CHECK(open(at("d/a.txt"), O_WRONLY | O_CREAT | O_EXCL, 0644) < 0 && errno == EEXIST);
    CHECK(open(at("d/missing.txt"), O_RDONLY) < 0 && errno == ENOENT);
    CHECK(open(at("d/a.txt/x"), O_RDONLY) < 0 && errno == ENOTDIR);
    printf("ok append excl errors\n");

    CHECK(rename(at("d/a.txt"), at("d/b.txt")) == 0);
    CHECK(access(at("d/a.txt"), F_OK) < 0 && errno == ENOENT);
    CHECK(access(at("d/b.txt"), F_OK) == 0);
    printf("ok rename\n");

    CHECK(symlink("b.txt", at("d/link")) == 0);
    ssize_t n = readlink(at("d/link"), buf, sizeof buf);
    CHECK(n == 5 && !memcmp(buf, "b.txt", 5));
    CHECK(lstat(at("d/link"), &sb) == 0 && S_ISLNK(sb.st_mode));
    CHECK(stat(at("d/link"), &sb) == 0 && S_ISREG(sb.st_mode) && sb.st_size == 10);
    fd = open(at("d/link"), O_RDONLY);
    CHECK(fd >= 0 && read(fd, buf, 5) == 5 && !memcmp(buf, "HELLO", 5));
    close(fd);
    printf("ok symlink readlink\n");

    for (int i = 0; i < 150; i++) {
        char name[64];
        snprintf(name, sizeof name, "d/file-with-a-longish-name-%03d.txt", i);
        fd = open(at(name), O_WRONLY | O_CREAT | O_TRUNC, 0644);
        CHECK(fd >= 0 && close(fd) == 0);
    }
    DIR *dir = opendir(at("d"));
    CHECK(dir);
    char *names[200];
    int count = 0;
    struct dirent *de;
    while ((de = readdir(dir)) && count < 200)
        if (strcmp(de->d_name, ".") && strcmp(de->d_name, ".."))
            names[count++] = strdup(de->d_name);
    CHECK(closedir(dir) == 0);
    qsort(names, (size_t)count, sizeof names[0], cmp);
    CHECK(count == 152); /* b.txt, link and 150 files */
    CHECK(!strcmp(names[0], "b.txt") && !strcmp(names[151], "link"));
    for (int i = 0; i < 150; i++) {
        char name[64];
        snprintf(name, sizeof name, "file-with-a-longish-name-%03d.txt", i);
        CHECK(!strcmp(names[1 + i], name));
        CHECK(unlink(at(strcat(strcpy(buf, "d/"), name))) == 0);
    }
    for (int i = 0; i < count; i++)
        free(names[i]);
    printf("ok readdir %d entries\n", count);

    CHECK(rmdir(at("d")) < 0 && errno == ENOTEMPTY);
    CHECK(unlink(at("d")) < 0);
    CHECK(unlink(at("d/link")) == 0);
    CHECK(unlink(at("d/b.txt")) == 0);
    CHECK(rmdir(at("d")) == 0);
    CHECK(stat(at("d"), &sb) < 0 && errno == ENOENT);
    printf("ok unlink rmdir\n");

    f = fopen(at("keep.txt"), "w");
    CHECK(f && fprintf(f, "written by the guest\n") > 0 && fclose(f) == 0);
    printf("files: all ok\n");
    return 0;
}
